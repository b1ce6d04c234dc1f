//! What a correct famfs kernel does when a file famfsd serves is opened:
//! the project's kernel model judges the GET_FMAP reply famfsd really sends
//! (faults applied), asked through the simulated kernel. Cases compare that
//! with what the kernel in the VM did, so their expectations are derived,
//! not copied by hand.
//!
//! The model describes V10's checks. Where V10 accepts what cannot be
//! mapped (chunk size 0, wrapping or huge offsets, short strips, empty
//! extents: its weak spots), a correct kernel refuses the fmap with EINVAL;
//! that is what is expected here, so the case stays right for a fixed
//! kernel and V10's behaviour is a known defect. Where the protocol leaves
//! a condition unchecked but a careful kernel may refuse it (overlapping
//! extents, an unknown `fmap_version` or `file_type`, reserved fields,
//! trailing bytes), both answers are correct: accepted (and served right),
//! or refused with EINVAL ([`Expectation::also`]).

use super::dispatch::Server;
use super::scenario::Config;
use super::sim;
use anyhow::{Context, Result};
use famfs_proto::kernel_model::{kernel_verdict, kernel_verdict_retry, KernelVerdict, Unchecked};

/// The expected result of open(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// `None`: the open succeeds; otherwise its errno.
    pub errno: Option<i32>,
    /// Why, in a line: the rule, the server's error, or the unchecked
    /// condition a correct kernel refuses.
    pub why: String,
    /// Other errnos a correct kernel may give instead (refusing what the
    /// protocol does not require it to accept).
    pub also: Vec<i32>,
    /// What decided it, as a stable name without values: the rule that
    /// fires (`devindex`), the unchecked condition a correct kernel
    /// refuses (`chunk-size-zero`), `server-error`, or `accepted`.
    pub cause: String,
}

fn errno_token(e: Option<i32>) -> String {
    match e {
        None => "ok".into(),
        Some(e) => famfs_proto::errno::errno_name(e)
            .map(str::to_string)
            .unwrap_or_else(|| format!("errno {e}")),
    }
}

impl Expectation {
    fn only(errno: Option<i32>, why: String, cause: &str) -> Expectation {
        Expectation {
            errno,
            why,
            also: vec![],
            cause: cause.into(),
        }
    }

    /// `ok`, or the errno's name: what cases print.
    pub fn token(&self) -> String {
        errno_token(self.errno)
    }

    /// The token, then those of every other correct answer, space
    /// separated (`ok EINVAL`).
    pub fn tokens(&self) -> String {
        std::iter::once(self.token())
            .chain(self.also.iter().map(|&e| errno_token(Some(e))))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Conditions the protocol leaves unchecked that a careful kernel may still
/// refuse (EINVAL) without being wrong: nothing maps wrongly if it does.
fn may_be_refused(u: &Unchecked) -> bool {
    matches!(
        u,
        Unchecked::Overlap { .. }
            | Unchecked::NbytesShort { .. }
            | Unchecked::FmapVersion(_)
            | Unchecked::FileType(_)
            | Unchecked::Reserved { .. }
            | Unchecked::TrailingBytes { .. }
            | Unchecked::FmapSizeMismatch { .. }
    )
}

/// Conditions V10 lets through that no kernel can map correctly.
fn refused_by_a_correct_kernel(u: &Unchecked) -> bool {
    matches!(
        u,
        Unchecked::HugeFileSize(_)
            | Unchecked::Overflow { .. }
            | Unchecked::ChunkSizeZero { .. }
            | Unchecked::ZeroLength { .. }
            | Unchecked::StripsShort { .. }
            | Unchecked::NbytesUnaligned { .. }
    )
}

/// One GET_FMAP exchange as the simulated kernel saw it.
pub(super) struct Exchange {
    /// The server's error reply (negative errno), if it sent one.
    pub error: i32,
    /// The payload the verdict was made on (the retry's, after a retry).
    pub payload: Vec<u8>,
    pub verdict: KernelVerdict,
}

/// The dispatcher asked directly, as a kernel of the server's profile
/// would ask it (no socket: a reply of megabytes, as a 100,000-extent fmap
/// is, fits no socket buffer).
struct Asker {
    s: Server,
    unique: u64,
}

impl Asker {
    /// (header `error`, payload) of the reply to one request.
    fn call(&mut self, op: u32, nodeid: u64, payload: &[u8]) -> Result<(i32, Vec<u8>)> {
        use famfs_proto::abi::{OutHeader, Wire};
        self.unique += 2;
        let u = self.unique;
        for a in self.s.handle(&sim::request(op, u, nodeid, payload)) {
            if let super::dispatch::Action::Write(m) = a {
                let h = OutHeader::decode(&m).map_err(|e| anyhow::anyhow!("{e}"))?;
                if h.unique == u {
                    return Ok((h.error, m[OutHeader::SIZE..].to_vec()));
                }
            }
        }
        anyhow::bail!(
            "no reply to {} (the scenario withholds it)",
            famfs_proto::abi::opcode_name(op, None)
        )
    }
}

/// Ask famfsd for `path`'s fmap as a kernel of its profile does (retrying
/// when the profile says so) and judge the reply.
pub(super) fn exchange(cfg: Config, path: &str) -> Result<Exchange> {
    use famfs_proto::abi::{EntryOut, Wire};
    use famfs_proto::Opcode;
    let profile = cfg.profile.clone();
    let mut k = Asker {
        s: Server::new(cfg),
        unique: 0,
    };
    k.call(
        Opcode::Init as u32,
        0,
        &sim::init_payload(46, sim::KERNEL_OFFER | profile.flag_mask()),
    )
    .context("INIT")?;
    let mut node = famfs_proto::abi::ROOT_ID;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        let (e, p) = k.call(Opcode::Lookup as u32, node, &sim::name_payload(c))?;
        anyhow::ensure!(e == 0, "looking up {c} in {path}: error {e}");
        node = EntryOut::decode(&p)
            .map_err(|e| anyhow::anyhow!("looking up {c} in {path}: {e}"))?
            .nodeid;
    }
    let ask = |k: &mut Asker, buffer: u32| {
        k.call(
            profile.get_fmap,
            node,
            &sim::get_fmap_payload(&profile, buffer),
        )
        .context("GET_FMAP")
    };
    let (error, mut payload) = ask(&mut k, profile.max_reply)?;
    let mut verdict = kernel_verdict(&profile, &payload);
    if error == 0 {
        if let KernelVerdict::Retry { fmap_size } = verdict {
            let (_, p2) = ask(&mut k, fmap_size).context("the retry")?;
            payload = p2;
            verdict = kernel_verdict_retry(&profile, fmap_size, &payload);
        }
    }
    Ok(Exchange {
        error,
        payload,
        verdict,
    })
}

/// The fmap famfsd serves for `path` (faults applied), when it has the
/// structure of one.
pub fn served_fmap(cfg: Config, path: &str) -> Result<Option<famfs_proto::Fmap>> {
    let profile = cfg.profile.clone();
    Ok(fmap_of(&profile, &exchange(cfg, path)?))
}

/// The fmap an exchange carried, when it has the structure of one.
pub(super) fn fmap_of(profile: &famfs_proto::Profile, x: &Exchange) -> Option<famfs_proto::Fmap> {
    if x.error != 0 {
        return None;
    }
    famfs_proto::Fmap::decode(profile, &x.payload)
        .ok()
        .map(|d| d.fmap)
}

/// The attribute size famfsd gives `path` when no kernel can take it: a
/// FUSE kernel refuses any attribute whose size is above 2^63 - 1 (a
/// negative loff_t), so the file cannot even be looked up.
pub fn invalid_attr_size(cfg: &Config, path: &str) -> Option<u64> {
    cfg.nodes
        .iter()
        .find(|n| n.path == path)
        .map(|n| n.size)
        .filter(|&s| s > i64::MAX as u64)
}

/// What open(2) of `path` does on a correct kernel.
pub fn open_expectation(cfg: Config, path: &str) -> Result<Expectation> {
    match attr_size_expectation(&cfg, path) {
        Some(e) => Ok(e),
        None => Ok(expectation_of(&exchange(cfg, path)?)),
    }
}

/// The expectation for a file whose attributes no kernel takes (no
/// GET_FMAP is ever sent for it).
pub fn attr_size_expectation(cfg: &Config, path: &str) -> Option<Expectation> {
    invalid_attr_size(cfg, path).map(|size| {
        Expectation::only(
            Some(libc::EIO),
            format!(
                "attribute size {size:#x} is above 2^63 - 1: FUSE refuses the LOOKUP reply (EIO) before any GET_FMAP"
            ),
            "attr-size",
        )
    })
}

/// What open(2) does on a correct kernel after this GET_FMAP exchange.
pub(super) fn expectation_of(x: &Exchange) -> Expectation {
    if x.error != 0 {
        return Expectation::only(
            Some(-x.error),
            format!("the server answers GET_FMAP with error {}", x.error),
            "server-error",
        );
    }
    match &x.verdict {
        KernelVerdict::Accept(s) => {
            match s.unchecked.iter().find(|u| refused_by_a_correct_kernel(u)) {
                Some(u) => Expectation::only(
                    Some(libc::EINVAL),
                    format!("{u}: V10 does not check it; a correct kernel refuses"),
                    u.kind(),
                ),
                None => {
                    let mut e = Expectation::only(
                        None,
                        format!(
                            "accepted: {} extent(s), file size {}",
                            s.nextents, s.file_size
                        ),
                        "accepted",
                    );
                    if let Some(u) = s.unchecked.iter().find(|u| may_be_refused(u)) {
                        e.also.push(libc::EINVAL);
                        e.why += &format!(
                            "; {u}: the protocol does not require a kernel to accept it, so refusing it (EINVAL) is correct too"
                        );
                    }
                    e
                }
            }
        }
        KernelVerdict::Reject(rej) => Expectation::only(
            Some(rej.errno),
            match rej.place {
                Some(p) => format!("{} ({p}, value {:#x})", rej.rule, rej.value),
                None => format!("{} (value {:#x})", rej.rule, rej.value),
            },
            rej.rule.as_str(),
        ),
        KernelVerdict::ReplyRejected { .. } => Expectation::only(
            x.verdict.open_errno(),
            format!("{:?}", x.verdict),
            "reply-rejected",
        ),
        other => Expectation::only(other.open_errno(), format!("{other:?}"), "retry"),
    }
}

/// The push lines of a request log, each judged against what a correct
/// kernel of `profile` gives for the same sequence of pushes
/// ([`famfs_proto::DaxTable`]): `push 0 at mount: dax device on fsdev_dax:
/// ok`. A result the revision documents is printed as it is; another
/// correct one as `DOC (seen X, also correct)`; a wrong one as `X, but a
/// correct kernel gives DOC`.
pub fn push_report(profile: &famfs_proto::Profile, log: &str, famfs: Option<bool>) -> String {
    use famfs_proto::{DaxDriver, DaxTable, PushObject};
    let name = |r: i32| {
        if r == 0 {
            "ok".to_string()
        } else {
            famfs_proto::errno::errno_name(r)
                .map(str::to_string)
                .unwrap_or_else(|| format!("errno {r}"))
        }
    };
    let mut table = DaxTable::new(profile);
    let mut out = String::new();
    for line in log.lines() {
        let Ok(rec) = serde_json::from_str::<super::dispatch::PushRecord>(line) else {
            continue;
        };
        if rec.event != "push" {
            continue;
        }
        let why = match rec.req.why.as_str() {
            w @ ("mount" | "lookup") => format!("at {w}"),
            w => format!("by {w}"),
        };
        let head = format!("push {} {why}", rec.req.index);
        let object = match (rec.object, &rec.req.path) {
            (_, Some(p)) if rec.open_failed => {
                out += &format!("{head}: opening {p} failed: {}\n", name(rec.result));
                continue;
            }
            (Some(o), _) => o,
            (None, _) => PushObject::BadFd,
        };
        let what = match object {
            PushObject::BadFd => "an fd that is not open".to_string(),
            PushObject::NotChardev => "not a character device".to_string(),
            PushObject::NonDax => "a character device that is not dax".to_string(),
            PushObject::Dax { driver, .. } => format!(
                "dax device on {}",
                if driver == DaxDriver::Fsdev {
                    "fsdev_dax"
                } else {
                    "another driver"
                }
            ),
        };
        let famfs_on = match famfs {
            Some(on) => on && rec.req.after_init,
            None => rec.req.famfs_on,
        };
        let allowed = table.push(famfs_on, rec.req.index, object);
        let doc = name(allowed.documented());
        let verdict = if !allowed.allows(rec.result) {
            format!("{}, but a correct kernel gives {doc}", name(rec.result))
        } else if rec.result != allowed.documented() {
            format!("{doc} (seen {}, also correct)", name(rec.result))
        } else {
            doc
        };
        out += &format!("{head}: {what}: {verdict}\n");
    }
    if out.is_empty() {
        out = "no pushes\n".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn expect(yaml: &str) -> Expectation {
        let cfg = Config::from_text(Path::new("t.yaml"), yaml, None).unwrap();
        open_expectation(cfg, "/f").unwrap()
    }

    const FILE: &str = "daxdevs: {0: /dev/dax0.0}\ntree:\n  - path: /f\n    fmap: {extents: [{offset: 0, len: 2M}]}\n";

    #[test]
    fn an_attribute_size_above_2_63_fails_the_lookup_with_eio() {
        // Found by the fmap fuzzer: famfsd's default attribute size is the
        // fmap's file_size, and FUSE refuses 2^64 - 1 before GET_FMAP.
        let y = "daxdevs: {0: /dev/dax0.0}\ntree:\n  - path: /f\n    fmap: {extents: [{offset: 0, len: 2M}], file_size: \"0xffffffffffffffff\"}\n";
        let e = expect(y);
        assert_eq!(
            (e.token().as_str(), e.cause.as_str()),
            ("EIO", "attr-size"),
            "{e:?}"
        );
        // The same fmap file_size behind a sane attribute size reaches the
        // fmap checks: short of file size.
        let y = y.replace("    fmap:", "    size: 2M\n    fmap:");
        assert_eq!(expect(&y).token(), "EINVAL");
    }

    #[test]
    fn a_good_fmap_opens_and_rules_give_their_errno() {
        assert_eq!(expect(FILE).token(), "ok");
        let e = expect(&format!("{FILE}    faults: [{{fault: {{nextents: 0}}}}]\n"));
        assert_eq!(e.token(), "ERANGE", "{e:?}");
        let e = expect(&format!(
            "{FILE}    faults: [{{fault: {{misaligned_offset: {{}}}}}}]\n"
        ));
        assert_eq!(e.token(), "EINVAL", "{e:?}");
        let e = expect(&format!("{FILE}    faults: [{{fault: {{error: EIO}}}}]\n"));
        assert_eq!(e.token(), "EIO", "{e:?}");
    }

    #[test]
    fn the_served_fmap_is_what_the_kernel_would_map() {
        let cfg = Config::from_text(Path::new("t.yaml"), FILE, None).unwrap();
        let f = served_fmap(cfg, "/f").unwrap().unwrap();
        assert_eq!(f.file_size, 2 << 20);
        let cfg = Config::from_text(
            Path::new("t.yaml"),
            &format!("{FILE}    faults: [{{fault: {{error: EIO}}}}]\n"),
            None,
        )
        .unwrap();
        assert!(served_fmap(cfg, "/f").unwrap().is_none());
    }

    #[test]
    fn what_v10_leaves_unchecked_a_correct_kernel_refuses() {
        let e = expect(&format!(
            "{FILE}    faults: [{{fault: {{offset_wrap: {{}}}}}}]\n"
        ));
        assert_eq!(e.token(), "EINVAL");
        assert!(e.why.contains("a correct kernel refuses"), "{e:?}");
        // Tolerated oddities stay accepted, and refusing them is correct
        // too.
        let e = expect(&format!(
            "{FILE}    faults: [{{fault: {{trailing_bytes: 8}}}}]\n"
        ));
        assert_eq!(e.tokens(), "ok EINVAL", "{e:?}");
        assert!(e.why.contains("correct too"), "{e:?}");
        // Overlapping extents: accept and serve, or refuse.
        let e = expect("daxdevs: {0: /dev/dax0.0}\ntree:\n  - path: /f\n    fmap: {extents: [{offset: 0, len: 2M}, {offset: 0, len: 2M}]}\n");
        assert_eq!(e.tokens(), "ok EINVAL", "{e:?}");
        // A valid fmap has one answer.
        assert_eq!(expect(FILE).tokens(), "ok");
    }
}
