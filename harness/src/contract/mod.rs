//! The host/guest boundary as typed data: the plan the host hands the guest
//! runner, and the messages the runner sends back. Both sides use these
//! types; nothing crosses the boundary as ad-hoc text.
//!
//! Framing: one message a line, `FH1 <json>\n`. JSON escapes newlines, so a
//! line is a message; the prefix lets the same stream share a console with
//! kernel output, and a line cut short by a crash fails to parse and is
//! dropped rather than misread.

#[cfg(feature = "host")]
pub mod findings;
pub mod fuzz;
pub mod kmsg;
pub mod taint;
pub mod topology;
#[cfg(feature = "host")]
pub mod windows;

use crate::contract::topology::Topology;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PREFIX: &str = "FH1 ";
/// Name of the virtio-serial port the runner writes to.
pub const PORT_NAME: &str = "org.famfs.harness.0";

/// The trial an id names, without its `#k` iteration (`--repeat`): ids
/// are the names both sides and every report use.
pub fn base_id(id: &str) -> &str {
    id.split_once('#').map_or(id, |(base, _)| base)
}

/// What the guest runner is asked to do in one boot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunPlan {
    pub run_id: String,
    pub boot: u32,
    pub topology: Topology,
    /// Guest path of the directory holding the case files.
    pub cases_root: String,
    pub cases: Vec<PlannedCase>,
    /// Case timeouts are multiplied by this (TCG runs guest code slower).
    pub timeout_scale: f64,
    /// famfs protocol profile the cases should use.
    pub profile: String,
    /// Extra environment for every case.
    pub env: BTreeMap<String, String>,
    /// `cargo xtask shell`: no cases; a shell (or one command) instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<ShellPlan>,
}

/// A shell on the console in the environment a case has (its devices set
/// up, `FH_*` variables, the guest tools on PATH), instead of cases.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShellPlan {
    /// Run this with `sh -c` and leave with its status; interactive when
    /// absent.
    pub command: Option<String>,
    /// The case whose environment (and parameters) the shell gets.
    pub case: Option<PlannedCase>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlannedCase {
    pub id: String,
    /// Script path relative to `cases_root`.
    pub script: String,
    pub timeout_s: u64,
    /// Environment of this trial only (a parametrised case's values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// What the kernel under test was built to do about famfs, known on the
/// host before it boots: its .config and the famfs ABI its source defines.
/// The capability gate and the INIT expectations derive from this and the
/// daemon's credentials, never from what the running kernel offers. Cases
/// get it as JSON in [`env::FAMFS_BUILD`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct FamfsBuild {
    /// `CONFIG_FUSE_FAMFS_DAX=y` in the kernel's .config.
    pub configured: bool,
    /// The built-in profile the source's uapi header defines (`v10`,
    /// `next`, `famfs-6.14`, `none` for a source without famfs); absent
    /// when there is no source to read (a prebuilt image).
    pub abi: Option<String>,
    /// Where `abi` comes from, in a kernel developer's words.
    pub evidence: String,
}

impl FamfsBuild {
    /// From the cases' environment; `None` outside a harness run.
    pub fn from_env() -> Option<FamfsBuild> {
        serde_json::from_str(&std::env::var(env::FAMFS_BUILD).ok()?).ok()
    }
}

/// A dax device as the guest set it up for the cases.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaxDevice {
    pub path: String,
    pub size: u64,
    pub align: u64,
    pub driver: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum GuestMsg {
    Hello {
        release: String,
        cmdline: String,
        uptime_ms: u64,
        runner: String,
    },
    Setup {
        ok: bool,
        detail: String,
        devices: Vec<DaxDevice>,
    },
    CaseStart {
        id: String,
        uptime_ms: u64,
    },
    /// Output the running case wrote, in whole lines as it writes them, so
    /// that a case that takes the VM down keeps what it printed.
    CaseOutput {
        id: String,
        text: String,
    },
    CaseEnd(Box<CaseReport>),
    /// The runner ends the boot before its plan is done (a case left a
    /// process behind that cannot be killed); the host boots a fresh VM for
    /// the cases that did not run.
    Restart {
        reason: String,
    },
    /// Runner diagnostics worth keeping in the run log.
    Note {
        text: String,
    },
    Done {
        cases: u32,
    },
}

/// How the case process ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaseExit {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// Killed by the runner after this many seconds.
    TimedOut {
        after_s: f64,
    },
    /// The runner could not start it.
    SpawnFailed {
        error: String,
    },
    /// The VM went down while the case ran (set by the host, never sent by
    /// the guest): a panic, a crash of the runner, a host timeout.
    Lost {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseReport {
    pub id: String,
    pub exit: CaseExit,
    /// stdout and stderr of the case, interleaved as written.
    pub output: String,
    /// Set by `_notrun REASON` inside the case.
    pub notrun: Option<String>,
    /// Kernel log records from the case's start marker to its `done`
    /// marker (a short tail after the case ended included).
    pub kmsg: Vec<String>,
    /// /proc/sys/kernel/tainted before the case and after its tail.
    #[serde(default)]
    pub taint_before: Option<u64>,
    #[serde(default)]
    pub taint_after: Option<u64>,
    /// What the runner cleaned up after the case (processes it left).
    #[serde(default)]
    pub reset: Vec<String>,
    /// The devices could not be put back as the topology has them.
    #[serde(default)]
    pub reset_error: Option<String>,
    pub duration_ms: u64,
    /// Where the case's time went, in ms per phase (`daemon`, `mount`,
    /// `setup`, `wait`, `teardown` as the case's helpers mark them, `body`
    /// the rest of its script; `reset` and `tail` the runner's work after
    /// it). Read by `cargo xtask bench suite`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<String, u64>,
    /// Files the case left in its artifact directory: name -> content
    /// (small text files only; see the runner).
    pub artifacts: BTreeMap<String, String>,
    /// The kernel's gcov counts after the case (reset before it), when the
    /// kernel has gcov: each `.gcda` under /sys/kernel/debug/gcov by its
    /// path there, in hex.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub coverage: BTreeMap<String, String>,
}

impl CaseReport {
    /// A report of a case that ended with `exit` and printed `output`,
    /// nothing else known yet (kernel log, taint, artifacts empty).
    pub fn new(id: &str, exit: CaseExit, output: String) -> CaseReport {
        CaseReport {
            id: id.to_string(),
            exit,
            output,
            notrun: None,
            kmsg: vec![],
            taint_before: None,
            taint_after: None,
            reset: vec![],
            reset_error: None,
            duration_ms: 0,
            phases: Default::default(),
            artifacts: Default::default(),
            coverage: Default::default(),
        }
    }
}

pub fn encode(msg: &GuestMsg) -> String {
    format!(
        "{PREFIX}{}\n",
        serde_json::to_string(msg).expect("guest messages serialize")
    )
}

/// Parse one line of the stream; lines without the prefix (kernel output on
/// a shared console) and damaged lines give `None`.
pub fn decode_line(line: &str) -> Option<GuestMsg> {
    let line = line.trim_end_matches(['\r', '\n']);
    let idx = line.find(PREFIX)?;
    serde_json::from_str(&line[idx + PREFIX.len()..]).ok()
}

/// Incremental decoder for a growing stream (the port's backing file).
#[derive(Default)]
pub struct StreamDecoder {
    partial: String,
}

impl StreamDecoder {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<GuestMsg> {
        self.partial.push_str(&String::from_utf8_lossy(bytes));
        let mut out = Vec::new();
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            if let Some(m) = decode_line(&line) {
                out.push(m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_framing() {
        let m = GuestMsg::CaseEnd(Box::new(CaseReport {
            id: "dax/001".into(),
            exit: CaseExit::Exited { code: 0 },
            output: "line1\nline2 \"quoted\"\n".into(),
            notrun: None,
            kmsg: vec!["a".into()],
            taint_before: Some(0),
            taint_after: Some(512),
            reset: vec![],
            reset_error: None,
            duration_ms: 12,
            phases: [("body".to_string(), 10), ("tail".to_string(), 2)].into(),
            artifacts: Default::default(),
            coverage: Default::default(),
        }));
        let s = encode(&m);
        assert_eq!(s.matches('\n').count(), 1, "one message, one line");
        assert_eq!(decode_line(&s), Some(m.clone()));
        // A console line with CR and kernel noise before the prefix still decodes.
        let noisy = format!("[    1.0] x {}\r\n", s.trim_end());
        assert_eq!(decode_line(&noisy), Some(m));
        assert_eq!(decode_line("FH1 {\"msg\":\"done\",\"cas"), None);
        assert_eq!(decode_line("random kernel line"), None);
    }

    #[test]
    fn stream_decoder_handles_split_writes() {
        let a = encode(&GuestMsg::Done { cases: 3 });
        let b = encode(&GuestMsg::Note { text: "x".into() });
        let all = format!("{a}{b}");
        let mut d = StreamDecoder::default();
        let (p1, p2) = all.split_at(7);
        assert!(d.feed(p1.as_bytes()).is_empty());
        let got = d.feed(p2.as_bytes());
        assert_eq!(
            got,
            vec![
                GuestMsg::Done { cases: 3 },
                GuestMsg::Note { text: "x".into() }
            ]
        );
    }
}

/// How the guest leaves QEMU with a status: QEMU's isa-debug-exit device.
/// The guest writes a code to the port; QEMU exits with `(code << 1) | 1`.
pub mod exit {
    /// I/O port of QEMU's isa-debug-exit device (`iobase=0xf4`).
    pub const DEBUG_EXIT_PORT: u16 = 0xf4;
    /// Runner finished normally: QEMU exits with (0 << 1) | 1 = 1.
    pub const EXIT_RUNNER_DONE: u8 = 0;
    /// `shell`: the command's status S (0..=100) leaves as this + S.
    pub const EXIT_SHELL_BASE: u8 = 16;
    /// Runner hit an internal error: QEMU exits with 3.
    pub const EXIT_RUNNER_ERROR: u8 = 1;
    /// KVM probe boot reached user space: QEMU exits with 33.
    pub const EXIT_PROBE_OK: u8 = 16;

    /// QEMU's exit status for a value written to the debug-exit port.
    pub fn qemu_status_for(code: u8) -> i32 {
        ((code as i32) << 1) | 1
    }

    #[cfg(test)]
    #[test]
    fn debug_exit_status_mapping() {
        assert_eq!(qemu_status_for(EXIT_RUNNER_DONE), 1);
        assert_eq!(qemu_status_for(EXIT_RUNNER_ERROR), 3);
        assert_eq!(qemu_status_for(EXIT_PROBE_OK), 33);
    }
}

/// Environment variables the runner gives every case (documented for case
/// authors in cases/README.md).
pub mod env {
    pub const CASE_ID: &str = "FH_CASE_ID";
    pub const CASE_DIR: &str = "FH_CASE_DIR";
    pub const ARTIFACTS: &str = "FH_ARTIFACTS";
    pub const NOTRUN_FILE: &str = "FH_NOTRUN_FILE";
    pub const CASES: &str = "FH_CASES";
    pub const COMMON: &str = "FH_COMMON";
    pub const TOOL: &str = "FH_TOOL";
    pub const PROFILE: &str = "FH_PROFILE";
    pub const TIMEOUT_SCALE: &str = "FH_TIMEOUT_SCALE";
    pub const DAX: &str = "FH_DAX";
    pub const DAX_NAME: &str = "FH_DAX_NAME";
    /// The variables of the `i`-th dax device (0-based): FH_DAX and
    /// FH_DAX_NAME for the first, FH_DAX2 and FH_DAX2_NAME for the second...
    pub fn dax_vars(i: usize) -> (String, String) {
        if i == 0 {
            (DAX.into(), DAX_NAME.into())
        } else {
            (format!("{DAX}{}", i + 1), format!("{DAX}{}_NAME", i + 1))
        }
    }
    /// The symbols the kernel under test was built with, space separated.
    pub const KCONFIG: &str = "FH_KCONFIG";
    /// [`super::FamfsBuild`] as JSON.
    pub const FAMFS_BUILD: &str = "FH_FAMFS_BUILD";
    /// `DEV:INODE` of the pipe the runner reads the case's output from:
    /// `sync-output` has nothing to wait for when stdout is not that pipe.
    pub const OUTPUT_PIPE: &str = "FH_OUTPUT_PIPE";
    /// The name of the entry of a parametrised case; `FH_PARAM_<KEY>` are
    /// its values.
    pub const PARAM: &str = "FH_PARAM";
    /// Harness self-tests only: provoke an LKDTM report outside every case
    /// (`between:TYPE` after the first case, `shutdown:TYPE` after Done).
    pub const SELFTEST_HOOK: &str = "FH_SELFTEST_HOOK";
}

/// Lines the runner writes into the kernel log, so that the kernel log and
/// the console say which case was running when the kernel printed
/// something. A case's window runs from `start` to `done`; between `end`
/// and `done` is the case's tail (late reports from work it left behind).
pub mod marker {
    pub const RUNNER_START: &str = "fh: runner start";

    pub fn case(id: &str, what: &str) -> String {
        format!("fh: case {id} {what}")
    }

    /// `(case id, what)` of a marker message.
    pub fn parse(msg: &str) -> Option<(&str, &str)> {
        let rest = msg.trim().strip_prefix("fh: case ")?;
        let (id, what) = rest.rsplit_once(' ')?;
        matches!(what, "start" | "end" | "done").then_some((id, what))
    }

    /// A line a case prints to ask that everything it printed before be on
    /// the host (the runner answers with `sync_ack`); a case about to take
    /// the kernel down uses it so its output survives the crash.
    pub const SYNC_OUTPUT: &str = "\u{1}fh: sync output ";

    /// The token of a sync line, if `line` is one.
    pub fn sync_token(line: &[u8]) -> Option<String> {
        let line = std::str::from_utf8(line).ok()?.trim_end_matches('\n');
        let token = line.strip_prefix(SYNC_OUTPUT)?;
        (!token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| token.to_string())
    }

    /// The file whose existence answers the sync line with `token`.
    pub fn sync_ack(case_dir: &std::path::Path, token: &str) -> std::path::PathBuf {
        case_dir.join(format!(".fh-synced-{token}"))
    }

    #[cfg(test)]
    #[test]
    fn markers_round_trip() {
        assert_eq!(parse(&case("dax/001", "start")), Some(("dax/001", "start")));
        assert_eq!(parse("fh: case x/1 other"), None);
        assert_eq!(parse("WARNING: x"), None);
        let line = format!("{SYNC_OUTPUT}abc123\n");
        assert_eq!(sync_token(line.as_bytes()).as_deref(), Some("abc123"));
        assert_eq!(sync_token(format!("{SYNC_OUTPUT}../x\n").as_bytes()), None);
        assert_eq!(sync_token(b"fh: sync output abc\n"), None);
    }
}
