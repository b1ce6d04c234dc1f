//! The fmap fuzzer's oracle: what the guest saw of one file
//! ([`Observation`]) against what a correct kernel does with the fmap
//! famfsd serves for it ([`super::expect`]). Used on the host while
//! fuzzing and in the guest when a finding is replayed as a case, so both
//! judge alike. Kernel reports are judged by the host's crash detector,
//! not here.

use super::expect::{
    attr_size_expectation, exchange, expectation_of, fmap_of, Exchange, Expectation,
};
use super::scenario::Config;
use crate::contract::fuzz::Observation;
use anyhow::Result;
use famfs_proto::kernel_model::KernelVerdict;

/// One way the kernel did not do what a correct kernel does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// Stable name of the kind of disagreement, without values: findings
    /// are grouped by it (`open ok where a correct kernel refuses:
    /// chunk-size-zero`).
    pub class: String,
    /// The line a person reads, with the values.
    pub text: String,
}

/// The model's account of one file and how the kernel differed from it.
#[derive(Debug, Clone)]
pub struct Judged {
    pub expect: Expectation,
    /// The model's rules and conditions this fmap reached (`rule:devindex`,
    /// `unchecked:overlap`, `accept`, `server-error`): rule coverage.
    pub reached: Vec<String>,
    pub disagreements: Vec<Disagreement>,
}

/// Every rule and condition of the model a kernel of profile `p` can
/// reach: what rule coverage counts against.
pub fn model_keys(p: &famfs_proto::Profile) -> Vec<String> {
    use famfs_proto::kernel_model::{Rule, Unchecked};
    let sized = p.retry_limit.is_some();
    let rules = Rule::ALL.into_iter().filter(|r| match r {
        Rule::ShortReply | Rule::FmapTooBig | Rule::FmapGrew => sized,
        Rule::ChunkSize | Rule::ZeroNbytes | Rule::StripCount => p.interleave,
        Rule::InterleaveUnsupported => !p.interleave,
        _ => true,
    });
    let kinds = Unchecked::KINDS.into_iter().filter(|k| match *k {
        "chunk-size-zero" | "strips-short" | "nbytes-short" | "nbytes-unaligned" => p.interleave,
        "fmap-size-mismatch" => sized,
        _ => true,
    });
    let pull = matches!(p.daxdev, famfs_proto::profile::DaxdevSource::Pull);
    ["accept", "server-error", "reply-rejected", "attr-size"]
        .into_iter()
        .map(str::to_string)
        .chain(sized.then(|| "retry".to_string()))
        .chain(pull.then(|| "daxdev-refused".to_string()))
        .chain(std::iter::once("past-device-end".to_string()))
        .chain(rules.map(|r| format!("rule:{}", r.as_str())))
        .chain(kinds.map(|k| format!("unchecked:{k}")))
        .collect()
}

/// Rules and conditions of the model that a file's exchange reaches (None:
/// a file whose attributes no kernel takes).
fn reached(x: Option<&Exchange>) -> Vec<String> {
    let Some(x) = x else {
        return vec!["attr-size".into()];
    };
    if x.error != 0 {
        return vec!["server-error".into()];
    }
    match &x.verdict {
        KernelVerdict::Accept(s) => std::iter::once("accept".to_string())
            .chain(
                s.unchecked
                    .iter()
                    .map(|u| format!("unchecked:{}", u.kind())),
            )
            .collect(),
        KernelVerdict::Reject(r) => vec![format!("rule:{}", r.rule.as_str())],
        KernelVerdict::ReplyRejected { .. } => vec!["reply-rejected".into()],
        KernelVerdict::Retry { .. } => vec!["retry".into()],
    }
}

/// Judge `obs` against the model. `daxdev_refused`: the scenario's
/// GET_DAXDEV reply names no usable device, so the file must be unusable
/// (open fails, or every access does), whatever its fmap.
pub fn judge(cfg: Config, obs: &Observation, daxdev_refused: bool) -> Result<Judged> {
    let path = obs.path.as_str();
    // One simulated exchange per file: the expectation, the rules reached
    // and the served fmap all come from it.
    let (expect, x) = match attr_size_expectation(&cfg, path) {
        Some(e) => (e, None),
        None => {
            let x = exchange(cfg.clone(), path)?;
            (expectation_of(&x), Some(x))
        }
    };
    let mut reached = reached(x.as_ref());
    let fmap = x.as_ref().and_then(|x| fmap_of(&cfg.profile, x));
    let mut d = Vec::new();
    let mut say = |class: String, text: String| d.push(Disagreement { class, text });
    if let Some(e) = &obs.error {
        say("the exercise failed".into(), format!("{path}: {e}"));
    }
    if let Some(w) = &obs.hang {
        say(
            format!("task hung in {w}"),
            format!("{path}: a task stayed in uninterruptible sleep at {w}"),
        );
    }
    let tokens: Vec<String> = expect.tokens().split(' ').map(str::to_string).collect();
    if daxdev_refused {
        reached.push("daxdev-refused".into());
        let usable = obs.open == "ok"
            && obs
                .reads
                .iter()
                .chain(&obs.faults)
                .any(|p| p.got == "data" || p.got == "other");
        if usable {
            say(
                "a file whose device GET_DAXDEV did not give is readable".into(),
                format!("{path}: readable, but the GET_DAXDEV reply names no usable device"),
            );
        }
    } else if obs.open == "EINVAL" && expect.errno.is_none() && past_device(fmap.as_ref(), obs) {
        // The protocol leaves extents past the device's end to the I/O
        // path (EFAULT, SIGBUS); a kernel that checks them at open is
        // right too.
        reached.push("past-device-end".into());
    } else if !tokens.contains(&obs.open) {
        let want = expect.tokens().replace(' ', " or ");
        let class = match (obs.open.as_str(), expect.errno) {
            ("ok", _) => format!("open ok where a correct kernel refuses: {}", expect.cause),
            (_, None) => "a valid fmap refused".to_string(),
            (got, Some(_)) => format!(
                "open {got} where a correct kernel gives {want}: {}",
                expect.cause
            ),
        };
        say(
            class,
            format!(
                "{path}: open {}, but a correct kernel gives {want} ({})",
                obs.open, expect.why
            ),
        );
    } else if obs.open == "ok" && data(fmap.as_ref(), obs, &mut say) {
        reached.push("past-device-end".into());
    }
    if let Some(again) = &obs.reopen {
        if *again != obs.open && obs.hang.is_none() {
            say(
                "the second open differs from the first".into(),
                format!(
                    "{path}: open {} then {again}: the fmap is the same both times",
                    obs.open
                ),
            );
        }
    }
    Ok(Judged {
        expect,
        reached,
        disagreements: d,
    })
}

/// Whether the fmap served for the observed file maps bytes past the end
/// of its device (known only from the guest's `dev_size`).
fn past_device(fmap: Option<&famfs_proto::Fmap>, obs: &Observation) -> bool {
    let (Some(end), Some(fmap)) = (obs.dev_size, fmap) else {
        return false;
    };
    // Whole extents and strips, as the kernel sees them, not only the
    // part the file size reaches.
    let all: Vec<&famfs_proto::SimpleExtent> = match &fmap.extents {
        famfs_proto::Extents::Simple(v) => v.iter().collect(),
        famfs_proto::Extents::Interleave(v) => v.iter().flat_map(|x| &x.strips).collect(),
    };
    all.into_iter().any(|e| past_end(e, end))
}

/// Whether an extent (or strip) runs past a device of `end` bytes, or its
/// end wraps.
fn past_end(e: &famfs_proto::SimpleExtent, end: u64) -> bool {
    e.offset.checked_add(e.len).is_none_or(|x| x > end)
}

/// Whether the extent holding file offset `off` (for interleaved fmaps:
/// any strip) runs past a device of `end` bytes.
fn runs_past(fmap: &famfs_proto::Fmap, off: u64, end: u64) -> bool {
    match &fmap.extents {
        famfs_proto::Extents::Simple(v) => {
            let mut at = 0u64;
            v.iter().any(|e| {
                let here = off >= at && off - at < e.len;
                at = at.saturating_add(e.len);
                here && past_end(e, end)
            })
        }
        famfs_proto::Extents::Interleave(v) => {
            v.iter().flat_map(|x| &x.strips).any(|e| past_end(e, end))
        }
    }
}

/// An accepted fmap: the size, the DAX attribute and every probe. True
/// when a probe was past the device's end.
fn data(
    fmap: Option<&famfs_proto::Fmap>,
    obs: &Observation,
    say: &mut dyn FnMut(String, String),
) -> bool {
    let path = obs.path.as_str();
    let Some(fmap) = fmap else {
        return false;
    };
    let mut past = false;
    if let Some(size) = obs.size {
        if size != fmap.file_size {
            say(
                "the file size is not the fmap's file_size".into(),
                format!("{path}: size {size}, but the fmap says {}", fmap.file_size),
            );
        }
    }
    if obs.dax == Some(false) {
        say(
            "an fmap file without the DAX attribute".into(),
            format!("{path}: statx says not DAX"),
        );
    }
    let end = obs.dev_size.unwrap_or(u64::MAX);
    for (how, probes) in [("read", &obs.reads), ("fault", &obs.faults)] {
        for p in probes.iter().filter(|p| p.dev.is_some()) {
            let dev = p.dev.unwrap_or(0);
            let len = (obs.size.unwrap_or(0).saturating_sub(p.off)).min(4096);
            let kind = p.got.split(' ').next().unwrap_or("");
            // Past the device's end: EFAULT from read(), SIGBUS on a fault
            // (the protocol doc's I/O path errors).
            if dev.checked_add(len).is_none_or(|e| e > end) {
                past = true;
                let fine = match how {
                    "read" => matches!(kind, "EFAULT" | "short"),
                    _ => kind == "SIGBUS",
                };
                if !fine {
                    say(
                        format!("{how} past the device's end: {kind}"),
                        format!(
                            "{path}: {how} at {:#x} (device offset {dev:#x}, the device has {end:#x} bytes): {}, but a correct kernel gives {}",
                            p.off,
                            p.got,
                            if how == "read" { "EFAULT" } else { "SIGBUS" }
                        ),
                    );
                }
                continue;
            }
            if p.got == "data" {
                continue;
            }
            // Inside the device, on an extent that runs past its end: a
            // kernel may refuse the whole extent at I/O time (EIO,
            // SIGBUS) as well as serve the bytes.
            if runs_past(fmap, p.off, end)
                && matches!((how, kind), ("read", "EIO") | ("fault", "SIGBUS"))
            {
                past = true;
                continue;
            }
            say(
                format!("{how}: {kind} where the fmap maps device data"),
                format!(
                    "{path}: {how} at {:#x}: {}, but the fmap maps device offset {:#x}",
                    p.off,
                    p.got,
                    p.dev.unwrap_or(0)
                ),
            );
        }
    }
    past
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::fuzz::Probe;
    use std::path::Path;

    fn cfg(fmap: &str, faults: &str) -> Config {
        let y = format!(
            "daxdevs: {{0: /dev/dax0.0}}\ntree:\n  - path: /f\n    fmap: {fmap}\n    faults: [{faults}]\n"
        );
        Config::from_text(Path::new("t.yaml"), &y, None).unwrap()
    }

    fn obs(open: &str, reads: &[(u64, Option<u64>, &str)]) -> Observation {
        Observation {
            path: "/f".into(),
            open: open.into(),
            size: Some(4 << 20),
            dax: Some(true),
            reads: reads
                .iter()
                .map(|&(off, dev, got)| Probe {
                    off,
                    dev,
                    got: got.into(),
                })
                .collect(),
            reopen: Some(open.into()),
            ..Default::default()
        }
    }

    const GOOD: &str = "{extents: [{offset: 4M, len: 4M}]}";

    #[test]
    fn a_good_file_read_right_agrees() {
        let j = judge(
            cfg(GOOD, ""),
            &obs("ok", &[(0, Some(4 << 20), "data")]),
            false,
        )
        .unwrap();
        assert!(j.disagreements.is_empty(), "{:?}", j.disagreements);
        assert_eq!(j.reached, ["accept"]);
    }

    #[test]
    fn wrong_bytes_a_signal_and_a_wrong_verdict_are_each_named() {
        let j = judge(
            cfg(GOOD, ""),
            &obs(
                "ok",
                &[
                    (0, Some(4 << 20), "other"),
                    (4096, Some((4 << 20) + 4096), "EIO"),
                ],
            ),
            false,
        )
        .unwrap();
        let classes: Vec<&str> = j.disagreements.iter().map(|d| d.class.as_str()).collect();
        assert_eq!(
            classes,
            [
                "read: other where the fmap maps device data",
                "read: EIO where the fmap maps device data"
            ]
        );
        // Chunk size 0: V10 accepts it, a correct kernel refuses it.
        let zero = "{interleave: [{chunk_size: 0, nbytes: 4M, strips: [{offset: 0, len: 4M}]}]}";
        let j = judge(cfg(zero, ""), &obs("ok", &[]), false).unwrap();
        assert_eq!(j.disagreements.len(), 1);
        assert_eq!(
            j.disagreements[0].class,
            "open ok where a correct kernel refuses: chunk-size-zero"
        );
        assert!(j.reached.contains(&"unchecked:chunk-size-zero".to_string()));
        // A rule's errno, and an errno other than it.
        let j = judge(
            cfg(GOOD, "{fault: {nextents: 0}}"),
            &obs("ERANGE", &[]),
            false,
        )
        .unwrap();
        assert!(j.disagreements.is_empty());
        assert_eq!(j.reached, ["rule:extent-count"]);
        let j = judge(
            cfg(GOOD, "{fault: {nextents: 0}}"),
            &obs("EINVAL", &[]),
            false,
        )
        .unwrap();
        assert_eq!(
            j.disagreements[0].class,
            "open EINVAL where a correct kernel gives ERANGE: extent-count"
        );
    }

    #[test]
    fn past_the_device_end_reads_fault_and_an_open_may_refuse() {
        // Found by the fmap fuzzer: an aligned extent at 2^63 is accepted
        // and its bytes are past the device (EFAULT, SIGBUS).
        let far = "{extents: [{offset: \"0x8000000000000000\", len: 4M}]}";
        let mut o = obs("ok", &[(0, Some(1 << 63), "EFAULT")]);
        o.dev_size = Some(512 << 20);
        o.faults = vec![Probe {
            off: 0,
            dev: Some(1 << 63),
            got: "SIGBUS".into(),
        }];
        let j = judge(cfg(far, ""), &o, false).unwrap();
        assert!(j.disagreements.is_empty(), "{:?}", j.disagreements);
        o.reads[0].got = "data".into();
        let j = judge(cfg(far, ""), &o, false).unwrap();
        assert_eq!(j.disagreements[0].class, "read past the device's end: data");
        // Found by the fmap fuzzer: an extent of 2^63 bytes from 56M; the
        // bytes inside the device may be served or refused (EIO).
        let long = "{extents: [{offset: 56M, len: \"0x8000000000000000\"}], file_size: 4M}";
        let mut o = obs("ok", &[(0, Some(56 << 20), "EIO")]);
        (o.dev_size, o.size) = (Some(512 << 20), Some(4 << 20));
        let j = judge(cfg(long, ""), &o, false).unwrap();
        assert!(j.disagreements.is_empty(), "{:?}", j.disagreements);
        assert!(j.reached.contains(&"past-device-end".to_string()));
        o.reads[0].got = "ENXIO".into();
        let j = judge(cfg(long, ""), &o, false).unwrap();
        assert_eq!(
            j.disagreements[0].class,
            "read: ENXIO where the fmap maps device data"
        );
        let mut refused = obs("EINVAL", &[]);
        refused.dev_size = Some(512 << 20);
        let j = judge(cfg(far, ""), &refused, false).unwrap();
        assert!(j.disagreements.is_empty(), "{:?}", j.disagreements);
        // A strip of 2^63 bytes the file size never reaches still runs
        // past the device: refusing the fmap is right (found by the fuzzer:
        // V10 refuses it through its signed size arithmetic).
        let strip = "{interleave: [{chunk_size: 2M, nbytes: 4M, strips: [{offset: 60M, len: \"0x8000000000000000\"}]}], file_size: 2M}";
        let j = judge(cfg(strip, ""), &refused, false).unwrap();
        assert!(j.disagreements.is_empty(), "{:?}", j.disagreements);
        // Without the device's size the refusal is wrong.
        let j = judge(cfg(far, ""), &obs("EINVAL", &[]), false).unwrap();
        assert_eq!(j.disagreements[0].class, "a valid fmap refused");
    }

    #[test]
    fn a_refused_device_must_leave_the_file_unusable_and_a_hang_is_named() {
        let j = judge(
            cfg(GOOD, ""),
            &obs("ok", &[(0, Some(4 << 20), "EIO")]),
            true,
        )
        .unwrap();
        assert!(j.disagreements.is_empty(), "{:?}", j.disagreements);
        let j = judge(
            cfg(GOOD, ""),
            &obs("ok", &[(0, Some(4 << 20), "data")]),
            true,
        )
        .unwrap();
        assert_eq!(j.disagreements.len(), 1);
        let mut o = obs("ok", &[]);
        o.hang = Some("famfs_fuse_iomap_begin".into());
        o.reopen = None;
        let j = judge(cfg(GOOD, ""), &o, false).unwrap();
        assert_eq!(
            j.disagreements[0].class,
            "task hung in famfs_fuse_iomap_begin"
        );
    }
}
