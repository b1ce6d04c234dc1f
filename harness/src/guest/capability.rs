//! The famfs capability gate and the report of a plain FUSE session, both
//! on the project's one FUSE server (famfsd) and its one record format (the
//! INIT record and the JSON-lines request log).
//!
//! The gate mounts famfsd with a one-file scenario, sees what the kernel
//! offers in INIT, opens the file and watches for the profile's GET_FMAP: a
//! bit alone proves nothing (upstream 7.3 uses bits 42 and 43 for
//! FUSE_REQUEST_TIMEOUT and FUSE_HAS_IO_URING_BUFPOOL).

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
/// numbers of `p` (the kernel's own, whatever profile the server used):
/// famfs mode `on` only when the kernel offered the bit, the reply echoed
/// it, and the reply is one the kernel takes (major 7, minor >= 6,
/// `INIT_EXT` in `flags`). A reply of only major and minor (8 bytes, the
/// oldest `fuse_init_out`) is a valid reply without flags. Nothing can be
/// read when the reply is refused (wrong major, an error), or when it
/// claims a minor below 9: the kernel then expects the older, shorter
/// reply structures, and famfsd sends 7.46 ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitVerdict {
    pub famfs: bool,
    pub connection: bool,
    pub why: String,
}

pub fn init_verdict(rec: &InitRecord, p: &Profile) -> InitVerdict {
    use crate::server::scenario::InitMalformed;
    let bit = 1u64 << p.flag_bit;
    let refused = match rec.malformed {
        Some(InitMalformed::BadMajor) => Some("a reply with major 8"),
        _ if rec.reply_len == 0 => Some("an error reply"),
        _ if rec.reply_minor < 9 => Some("minor below 9 (older reply structures than famfsd's)"),
        _ => None,
    };
    if let Some(why) = refused {
        return InitVerdict {
            famfs: false,
            connection: false,
            why: format!("INIT answered with {why}: nothing on the mount can be read"),
        };
    }
    let offered = rec.offered & bit != 0;
    let echoed = rec.replied & bit != 0;
    // An 8-byte reply carries no flags at all.
    let short = rec.malformed == Some(InitMalformed::TooShort);
    let echoed = echoed && !short;
    let ext = rec.replied & init_flags::INIT_EXT != 0
        && !short
        && rec.malformed != Some(InitMalformed::NoInitExt);
    let minor_ok = rec.reply_minor >= 6;
    let famfs = offered && echoed && ext && minor_ok;
    InitVerdict {
        famfs,
        connection: true,
        why: format!(
            "bit {} offered: {offered}, echoed: {echoed}, INIT_EXT: {ext}, minor {} >= 6: {minor_ok}",
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
        let v = init_verdict(&record(init, offer), &Profile::v10());
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
        assert!(!init_verdict(&r, &Profile::famfs_6_14()).famfs);
    }
}
