//! The famfs capability gate and the report of a plain FUSE session, both
//! on the project's one FUSE server (famfsd) and its one record format (the
//! INIT record and the JSON-lines request log).
//!
//! The gate mounts famfsd with a one-file scenario, sees what the kernel
//! offers in INIT, opens the file and watches for the profile's GET_FMAP: a
//! bit alone proves nothing (upstream 7.3 uses bits 42 and 43 for
//! FUSE_REQUEST_TIMEOUT and FUSE_HAS_IO_URING_BUFPOOL).

use crate::contract::FamfsBuild;
use crate::server::{Config, ExitMode, InitRecord, Mounted, RequestRecord};
use anyhow::{bail, Context, Result};
use famfs_proto::{abi::init_flags, Opcode, Profile};
use std::path::Path;

/// The file the gate opens; its fmap names a device that is not there, so
/// a famfs kernel accepts the fmap, asks for the device once, and nothing
/// ever touches memory.
const GATE_SCENARIO: &str = "\
description: the famfs capability gate
daxdevs: {0: /dev/fh-gate-no-such-device}
tree:
  - path: /f
    fmap: {extents: [{offset: 0, len: 2M}]}
";

/// What the capability gate found.
#[derive(Debug, Clone)]
pub struct Capability {
    pub init: InitRecord,
    /// Opening a regular file produced the profile's GET_FMAP request.
    pub get_fmap_seen: bool,
}

impl Capability {
    /// famfs is usable with this profile: the bit is offered AND the kernel
    /// acts on it.
    pub fn usable(&self) -> bool {
        self.init.famfs_offered && self.get_fmap_seen
    }

    pub fn describe(&self) -> String {
        let r = &self.init;
        match (r.famfs_offered, self.get_fmap_seen) {
            (true, true) => format!("famfs capability offered and used ({} profile, INIT bit {})", r.profile, r.famfs_bit),
            (false, _) => format!("famfs capability not offered ({} profile, INIT bit {})", r.profile, r.famfs_bit),
            (true, false) => format!(
                "INIT bit {} is offered but opening a file sends no GET_FMAP (opcode of the {} profile): the bit means something else on this kernel",
                r.famfs_bit, r.profile
            ),
        }
    }
}

/// Does the build say this kernel must do famfs under profile `p`? `Ok`
/// with the evidence, or `Err` with why not, in a kernel developer's words.
/// Only the .config and the source decide: a kernel that does not do what
/// its build says is broken, not "not run".
pub fn famfs_expected(build: &FamfsBuild, p: &Profile) -> std::result::Result<String, String> {
    if !build.configured {
        return Err(match build.abi.as_deref() {
            Some("none") => format!("this kernel has no famfs ({})", build.evidence),
            _ => "this kernel was built without famfs: CONFIG_FUSE_FAMFS_DAX is not set in its .config".into(),
        });
    }
    let abi = build.abi.as_deref().filter(|a| *a != "none");
    match abi.map(Profile::by_name) {
        Some(Ok(k)) if !same_abi(&k, p) => Err(format!(
            "this kernel's famfs speaks the {} ABI ({}), not the {} profile's (INIT bit {}, GET_FMAP {}, devices {}): run with --profile auto or --profile {}",
            k.name,
            build.evidence,
            p.name,
            p.flag_bit,
            p.get_fmap,
            if p.pushes_daxdevs() { "pushed" } else { "asked for with GET_DAXDEV" },
            k.name
        )),
        Some(Ok(_)) => Ok(format!("CONFIG_FUSE_FAMFS_DAX=y and {}", build.evidence)),
        _ => Ok(format!(
            "CONFIG_FUSE_FAMFS_DAX=y ({}; the {} profile is taken as its ABI)",
            build.evidence, p.name
        )),
    }
}

/// Two profiles a kernel cannot tell apart at the capability: the same
/// INIT bit, GET_FMAP opcode and way of learning devices.
fn same_abi(a: &Profile, b: &Profile) -> bool {
    a.flag_bit == b.flag_bit && a.get_fmap == b.get_fmap && a.daxdev == b.daxdev
}

/// What the famfs gate of a case decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// famfs works as the build says: the case runs.
    Usable(String),
    /// The kernel truly lacks it (not built, another ABI): not run.
    NotRun(String),
    /// The build says famfs must work under this profile, and it does not.
    Broken(String),
}

/// The gate of every famfs case: what the build says (`build`; `None`
/// outside a harness run: the probe alone decides) against what the
/// kernel does for a mounter with CAP_SYS_RAWIO.
pub fn gate(profile: &Profile, build: Option<&FamfsBuild>, scratch: &Path) -> Result<Gate> {
    let expected = match build.map(|b| famfs_expected(b, profile)) {
        Some(Err(why)) => return Ok(Gate::NotRun(why)),
        Some(Ok(why)) => Some(why),
        None => None,
    };
    if !crate::server::has_cap_sys_rawio() {
        return Ok(Gate::NotRun(
            "the case runs without CAP_SYS_RAWIO, which famfs asks of the task that mounts".into(),
        ));
    }
    let cap = famfs_capability(profile, scratch)?;
    let Some(why) = expected else {
        return Ok(if cap.usable() {
            Gate::Usable(cap.describe())
        } else {
            Gate::NotRun(cap.describe())
        });
    };
    let bit = profile.flag_bit;
    Ok(match (cap.init.famfs_offered, cap.get_fmap_seen) {
        (true, true) => Gate::Usable(cap.describe()),
        (false, _) => Gate::Broken(format!(
            "famfs is broken: {why}, yet INIT does not offer bit {bit} to a mount by a task with CAP_SYS_RAWIO"
        )),
        (true, false) => Gate::Broken(format!(
            "famfs is broken: {why}; INIT offers bit {bit} and the daemon echoed it, yet opening a regular file sends no GET_FMAP (opcode {}): famfs mode never engages",
            profile.get_fmap
        )),
    })
}

/// Read a famfsd request log.
pub fn read_log(path: &Path) -> Result<Vec<RequestRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| l.contains("\"event\":\"request\"") || l.contains("\"event\": \"request\""))
        .map(|l| {
            serde_json::from_str(l)
                .with_context(|| format!("{}: not a request record: {l}", path.display()))
        })
        .collect()
}

/// Mount famfsd on `scratch/mnt`, see INIT, open a regular file, and say
/// whether the kernel offers and uses `profile`'s famfs capability.
pub fn famfs_capability(profile: &Profile, scratch: &Path) -> Result<Capability> {
    let mnt = scratch.join("mnt");
    std::fs::create_dir_all(&mnt)?;
    let (init_path, log_path) = (scratch.join("init.json"), scratch.join("requests.jsonl"));
    let cfg = Config::from_text(
        Path::new("capability-gate.yaml"),
        GATE_SCENARIO,
        Some(profile.clone()),
    )?;
    let m = Mounted::start(
        cfg,
        &mnt,
        "famfs-gate",
        Some(&log_path),
        Some(&init_path),
        ExitMode::Return,
        Default::default(),
    )
    .context("mounting the capability gate")?;
    let start = std::time::Instant::now();
    while !init_path.exists() {
        if m.running.finished() || start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = m.stop();
            bail!("no INIT from the kernel within 30 s of mounting the capability gate");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // A famfs kernel asks for the fmap on open (of a file the server
    // offered as famfs); the open may fail, which is fine.
    let _ = std::fs::File::open(mnt.join("f"));
    m.stop().context("unmounting the capability gate")?;
    let init: InitRecord = serde_json::from_str(&std::fs::read_to_string(&init_path)?)?;
    let get_fmap_seen = read_log(&log_path)?
        .iter()
        .any(|r| r.opcode == profile.get_fmap);
    Ok(Capability {
        init,
        get_fmap_seen,
    })
}

/// What a case prints about a plain FUSE session (stable text for golden
/// files). `famfs_kernel` says whether the kernel was built with famfs:
/// such a kernel must offer the capability (famfsd echoes it) and then ask
/// for the fmap on every open of a regular file (the session's file has no
/// fmap, so famfsd refuses and the open fails, and nothing is read); any
/// other kernel must neither offer it nor send a famfs opcode. The lines
/// read the same on both kinds of kernel when the kernel behaves; a wrong
/// behaviour prints what was seen.
pub fn report(init: &InitRecord, requests: &[RequestRecord], famfs_kernel: bool) -> Result<String> {
    if requests.is_empty() {
        bail!("famfsd recorded no requests at all");
    }
    let mut s = String::new();
    s.push_str(&format!(
        "INIT: major {} INIT_EXT {}\n",
        init.kernel_major,
        if init.offered & init_flags::INIT_EXT != 0 {
            "offered"
        } else {
            "not offered"
        }
    ));
    let judge = |what: String, got: String, want: String| {
        if got == want {
            format!("{what}: as the kernel must\n")
        } else {
            format!("{what}: {got}, but this kernel must give {want}\n")
        }
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    s.push_str(&judge(
        format!("famfs capability offered ({} profile)", init.profile),
        yes_no(init.famfs_offered),
        yes_no(famfs_kernel),
    ));
    // Count requests carrying the famfs opcodes of every known profile, so a
    // kernel speaking another numbering is caught too.
    let famfs_ops: Vec<u32> = Profile::builtins()
        .iter()
        .flat_map(|p| [p.get_fmap, p.get_daxdev])
        .collect();
    let famfs_requests = requests
        .iter()
        .filter(|r| famfs_ops.contains(&r.opcode))
        .count();
    let opens = requests
        .iter()
        .filter(|r| r.opcode == Opcode::Open as u32)
        .count();
    let want = if famfs_kernel { opens } else { 0 };
    s.push_str(&judge(
        "requests with a famfs opcode".into(),
        famfs_requests.to_string(),
        want.to_string(),
    ));
    for op in [Opcode::Lookup, Opcode::Open] {
        let seen = requests.iter().any(|r| r.opcode == op as u32);
        s.push_str(&format!("{} seen: {}\n", op.name(), yes_no(seen)));
    }
    let read = requests.iter().any(|r| r.opcode == Opcode::Read as u32);
    s.push_str(&judge(
        "READ seen".into(),
        yes_no(read),
        yes_no(!famfs_kernel),
    ));
    Ok(s)
}

/// What a correct kernel does after an INIT exchange, for the famfs
/// numbers of `p` (the kernel's own, whatever profile the server used).
///
/// `famfs_kernel` is what the build says (`famfs_expected`): the kernel
/// must offer the bit exactly when it is built with famfs under `p` and
/// the mounting task had CAP_SYS_RAWIO; `None` (no build known) takes the
/// kernel's offer as given. famfs mode is then `on` only when the bit is
/// offered, the reply echoes it (a daemon that echoes echoes what it must
/// be offered), and the reply is one the kernel takes (major 7, minor >=
/// 6, `INIT_EXT` in `flags`). A reply of only major and minor (8 bytes, the
/// oldest `fuse_init_out`) is a valid reply without flags. Nothing can be
/// read when the reply is refused (wrong major, an error), or when it
/// claims a minor below 9: the kernel then expects the older, shorter
/// reply structures, and famfsd sends 7.46 ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitVerdict {
    /// The kernel must offer the famfs bit.
    pub offer: bool,
    pub famfs: bool,
    pub connection: bool,
    pub why: String,
}

pub fn init_verdict(rec: &InitRecord, p: &Profile, famfs_kernel: Option<bool>) -> InitVerdict {
    use crate::server::scenario::{FamfsMode, InitMalformed};
    let bit = 1u64 << p.flag_bit;
    let rawio = rec.mounter_cap_sys_rawio.unwrap_or(true);
    let (offered, offer_why) = match famfs_kernel {
        Some(built) => (
            built && rawio,
            format!(
                "built with famfs for these numbers: {built}, mounter has CAP_SYS_RAWIO: {rawio}"
            ),
        ),
        None => (rec.offered & bit != 0, "as the kernel offered".into()),
    };
    let refused = match rec.malformed {
        Some(InitMalformed::BadMajor) => Some("a reply with major 8"),
        _ if rec.reply_len == 0 => Some("an error reply"),
        _ if rec.reply_minor < 9 => Some("minor below 9 (older reply structures than famfsd's)"),
        _ => None,
    };
    if let Some(why) = refused {
        return InitVerdict {
            offer: offered,
            famfs: false,
            connection: false,
            why: format!("INIT answered with {why}: nothing on the mount can be read"),
        };
    }
    // An echoing daemon of the kernel's numbering echoes exactly what it
    // is offered: judged by what the kernel must offer, not by what it did.
    let echoed = match rec.famfs_mode {
        FamfsMode::Echo if rec.famfs_bit == p.flag_bit => offered,
        _ => rec.replied & bit != 0,
    };
    // An 8-byte reply carries no flags at all.
    let short = rec.malformed == Some(InitMalformed::TooShort);
    let echoed = echoed && !short;
    let ext = rec.replied & init_flags::INIT_EXT != 0
        && !short
        && rec.malformed != Some(InitMalformed::NoInitExt);
    let minor_ok = rec.reply_minor >= 6;
    let famfs = offered && echoed && ext && minor_ok;
    InitVerdict {
        offer: offered,
        famfs,
        connection: true,
        why: format!(
            "bit {} must be offered: {offered} ({offer_why}), echoed: {echoed}, INIT_EXT: {ext}, minor {} >= 6: {minor_ok}",
            p.flag_bit, rec.reply_minor
        ),
    }
}

#[cfg(test)]
mod init_verdict_tests {
    use super::*;
    use crate::server::{Server, SimKernel};

    /// The INIT record famfsd writes for `init`, offered the famfs bit or not.
    fn record(init: &str, offer: bool) -> InitRecord {
        let yaml = format!("init: {init}\ntree: [{{path: /f, content: x}}]\n");
        let cfg = Config::from_text(Path::new("t.yaml"), &yaml, None).unwrap();
        let bit = cfg.profile.flag_mask();
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("init.json");
        let mut server = Server::new(cfg);
        server.set_init_record(path.clone());
        let (mut k, running) = SimKernel::start(server, 1).unwrap();
        // A malformed reply may not decode; the record is what counts.
        let _ = k.init(if offer { bit } else { 0 });
        running.stop();
        let _ = running.join();
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn verdict(init: &str, offer: bool) -> (bool, bool) {
        let v = init_verdict(&record(init, offer), &Profile::v10(), None);
        (v.famfs, v.connection)
    }

    #[test]
    fn famfs_is_on_only_when_offered_echoed_and_well_formed() {
        assert_eq!(verdict("{famfs: echo}", true), (true, true));
        assert_eq!(verdict("{famfs: echo}", false), (false, true));
        assert_eq!(verdict("{famfs: force}", false), (false, true));
        assert_eq!(verdict("{famfs: withhold}", true), (false, true));
        assert_eq!(
            verdict("{famfs: echo, malformed: no_init_ext}", true),
            (false, true)
        );
        assert_eq!(
            verdict("{famfs: echo, malformed: too_short}", true),
            (false, true)
        );
        assert_eq!(
            verdict("{famfs: echo, malformed: bad_major}", true),
            (false, false)
        );
        assert_eq!(verdict("{famfs: echo, minor: 5}", true), (false, false));
        assert_eq!(
            verdict("{famfs: echo, force_flags: [44, 63]}", true),
            (true, true)
        );
        // Another profile's bit is not V10's.
        let r = record("{famfs: echo}", true);
        assert!(!init_verdict(&r, &Profile::famfs_6_14(), None).famfs);
    }

    /// The build, not the kernel's offer, says what must be offered.
    #[test]
    fn the_offer_a_kernel_must_make_comes_from_its_build_and_the_mounter() {
        // The kernel did not offer; a famfs build must have: famfs on.
        let mut r = record("{famfs: echo}", false);
        r.mounter_cap_sys_rawio = Some(true);
        let v = init_verdict(&r, &Profile::v10(), Some(true));
        assert!(v.offer && v.famfs, "{v:?}");
        // Offered to a mounter without CAP_SYS_RAWIO: must not be, famfs off.
        let mut r = record("{famfs: echo}", true);
        r.mounter_cap_sys_rawio = Some(false);
        let v = init_verdict(&r, &Profile::v10(), Some(true));
        assert!(!v.offer && !v.famfs, "{v:?}");
        // No famfs in the build: nothing to offer, whatever the kernel did.
        let v = init_verdict(&record("{famfs: echo}", true), &Profile::v10(), Some(false));
        assert!(!v.offer && !v.famfs, "{v:?}");
        // A withholding daemon keeps famfs off on a famfs kernel.
        let v = init_verdict(
            &record("{famfs: withhold}", true),
            &Profile::v10(),
            Some(true),
        );
        assert!(v.offer && !v.famfs, "{v:?}");
    }

    fn build(configured: bool, abi: Option<&str>) -> FamfsBuild {
        FamfsBuild {
            configured,
            abi: abi.map(str::to_string),
            evidence: "the uapi says so".into(),
        }
    }

    #[test]
    fn famfs_is_expected_from_the_config_and_the_source_abi() {
        let v10 = Profile::v10();
        let e = famfs_expected(&build(false, Some("none")), &v10).unwrap_err();
        assert!(e.starts_with("this kernel has no famfs"), "{e}");
        let e = famfs_expected(&build(false, Some("v10")), &v10).unwrap_err();
        assert!(e.contains("CONFIG_FUSE_FAMFS_DAX is not set"), "{e}");
        assert!(famfs_expected(&build(true, Some("v10")), &v10).is_ok());
        // Another generation's numbers: the kernel lacks this ABI.
        let e = famfs_expected(&build(true, Some("next")), &v10).unwrap_err();
        assert!(
            e.contains("speaks the next ABI") && e.contains("--profile next"),
            "{e}"
        );
        let e = famfs_expected(&build(true, Some("v10")), &Profile::famfs_6_14()).unwrap_err();
        assert!(e.contains("INIT bit 42"), "{e}");
        // A prebuilt image: the profile given is taken as its ABI.
        let w = famfs_expected(&build(true, None), &v10).unwrap();
        assert!(w.contains("the v10 profile is taken"), "{w}");
    }
}
