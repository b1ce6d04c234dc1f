//! The guest runner: reads the plan, prepares the devices, runs each case
//! with a timeout between kernel-log markers, and reports typed results.

use super::sys::{self, KmsgCursor};
use crate::contract::{self, CaseExit, CaseReport, GuestMsg, PlannedCase, RunPlan};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Largest output or artifact kept per case; more is cut with a note.
const MAX_CAPTURE: usize = 1 << 20;
const MAX_ARTIFACT: usize = 256 << 10;

/// Where messages go: the named virtio-serial port, else the console.
pub struct ResultPort {
    out: std::fs::File,
    pub desc: String,
}

impl ResultPort {
    pub fn open(explicit: Option<&str>) -> Result<ResultPort> {
        if let Some(p) = explicit {
            let out = std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("opening channel {p}"))?;
            return Ok(ResultPort {
                out,
                desc: p.into(),
            });
        }
        if let Ok(rd) = std::fs::read_dir("/sys/class/virtio-ports") {
            for e in rd.flatten() {
                let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
                if name.trim() == contract::PORT_NAME {
                    let dev = format!("/dev/{}", e.file_name().to_string_lossy());
                    let out = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&dev)
                        .with_context(|| format!("opening {dev}"))?;
                    return Ok(ResultPort { out, desc: dev });
                }
            }
        }
        let out = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/console")
            .context("opening /dev/console")?;
        Ok(ResultPort {
            out,
            desc: "/dev/console".into(),
        })
    }

    pub fn send(&mut self, m: &GuestMsg) {
        let _ = self.out.write_all(contract::encode(m).as_bytes());
        let _ = self.out.flush();
    }
}

/// Entry point of `fh-guest run`.
pub fn main(plan_path: &str, channel_path: Option<&str>, tool: &Path) -> Result<()> {
    sys::ensure_mounts();
    let mut ch = ResultPort::open(channel_path)?;
    let plan: RunPlan = serde_json::from_str(
        &std::fs::read_to_string(plan_path).with_context(|| format!("reading plan {plan_path}"))?,
    )
    .with_context(|| format!("parsing plan {plan_path}"))?;
    ch.send(&GuestMsg::Hello {
        release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .into(),
        cmdline: std::fs::read_to_string("/proc/cmdline")
            .unwrap_or_default()
            .trim()
            .into(),
        uptime_ms: sys::uptime_ms(),
        runner: env!("CARGO_PKG_VERSION").into(),
    });
    let mut devices = Vec::new();
    let setup = match &plan.topology.pmem {
        None => Ok(()),
        Some(spec) => super::dax::setup_pmem(spec).map(|d| devices = d),
    };
    match &setup {
        Ok(()) => ch.send(&GuestMsg::Setup {
            ok: true,
            detail: plan.topology.describe(),
            devices: devices.clone(),
        }),
        Err(e) => ch.send(&GuestMsg::Setup {
            ok: false,
            detail: format!("{e:#}"),
            devices: vec![],
        }),
    }
    let mut ran = 0;
    if setup.is_ok() {
        for case in &plan.cases {
            ch.send(&GuestMsg::CaseStart {
                id: case.id.clone(),
                uptime_ms: sys::uptime_ms(),
            });
            let report = run_case(&plan, case, &devices, tool);
            ch.send(&GuestMsg::CaseEnd(report));
            ran += 1;
        }
    }
    ch.send(&GuestMsg::Done { cases: ran });
    Ok(())
}

fn case_env(
    plan: &RunPlan,
    case: &PlannedCase,
    devices: &[crate::contract::DaxDevice],
    tool: &Path,
    dir: &Path,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let root = Path::new(&plan.cases_root);
    env.insert(contract::env::CASE_ID.into(), case.id.clone());
    env.insert(contract::env::CASE_DIR.into(), dir.display().to_string());
    env.insert(
        "FH_ARTIFACTS".into(),
        dir.join("artifacts").display().to_string(),
    );
    env.insert(
        "FH_NOTRUN_FILE".into(),
        dir.join(".notrun").display().to_string(),
    );
    env.insert(contract::env::CASES.into(), plan.cases_root.clone());
    env.insert(
        "FH_COMMON".into(),
        root.join("common.sh").display().to_string(),
    );
    env.insert(contract::env::TOOL.into(), tool.display().to_string());
    env.insert(contract::env::PROFILE.into(), plan.profile.clone());
    env.insert(
        contract::env::TIMEOUT_SCALE.into(),
        format!("{}", plan.timeout_scale),
    );
    if let Some(d) = devices.first() {
        env.insert(contract::env::DAX.into(), d.path.clone());
        env.insert(
            "FH_DAX_NAME".into(),
            d.path.trim_start_matches("/dev/").to_string(),
        );
    }
    let tool_dir = tool
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    env.insert("PATH".into(), format!("{tool_dir}:{path}"));
    for (k, v) in &plan.env {
        env.insert(k.clone(), v.clone());
    }
    env
}

/// Run one case between kernel-log markers and collect everything about it.
pub fn run_case(
    plan: &RunPlan,
    case: &PlannedCase,
    devices: &[crate::contract::DaxDevice],
    tool: &Path,
) -> CaseReport {
    let dir = PathBuf::from("/tmp/fh-cases").join(case.id.replace('/', "_"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(dir.join("artifacts"));
    // WARN_ON_ONCE sites fire once per boot; re-arm them so each case sees its own.
    let _ = std::fs::write("/sys/kernel/debug/clear_warn_once", "1");
    let mut kmsg = KmsgCursor::at_end().ok();
    sys::kmsg_write(&format!("fh: case {} start\n", case.id));
    let start = Instant::now();
    let timeout = Duration::from_secs_f64(case.timeout_s as f64 * plan.timeout_scale.max(1.0));
    let script = Path::new(&plan.cases_root).join(&case.script);

    let (exit, output) = match spawn_and_wait(
        &script,
        &dir,
        case_env(plan, case, devices, tool, &dir),
        timeout,
    ) {
        Ok(r) => r,
        Err(e) => (
            CaseExit::SpawnFailed {
                error: format!("{e:#}"),
            },
            String::new(),
        ),
    };
    let duration_ms = start.elapsed().as_millis() as u64;
    cleanup_mounts_under(&dir);
    sys::kmsg_write(&format!("fh: case {} end\n", case.id));
    let lines = kmsg.as_mut().map(|k| k.read_new()).unwrap_or_default();
    let findings = crate::judge::kmsg::scan(lines.iter().map(String::as_str));
    let notrun = std::fs::read_to_string(dir.join(".notrun"))
        .ok()
        .map(|s| s.trim().to_string());
    CaseReport {
        id: case.id.clone(),
        exit,
        output,
        notrun,
        kmsg: lines,
        findings,
        duration_ms,
        artifacts: collect_artifacts(&dir.join("artifacts")),
    }
}

fn spawn_and_wait(
    script: &Path,
    dir: &Path,
    env: BTreeMap<String, String>,
    timeout: Duration,
) -> Result<(CaseExit, String)> {
    let (mut reader, writer) = std::io::pipe().context("creating the output pipe")?;
    let writer2 = writer.try_clone()?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(script)
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    crate::proc::own_process_group(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting /bin/sh {}", script.display()))?;
    drop(cmd); // close our copies of the pipe's write end
    let pgid = child.id();
    let collector = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf.len() < MAX_CAPTURE {
                        buf.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        }
        buf
    });
    let start = Instant::now();
    let mut sleep = Duration::from_millis(1);
    let exit = loop {
        if let Some(st) = child.try_wait()? {
            break match (st.code(), st.signal()) {
                (Some(c), _) => CaseExit::Exited { code: c },
                (None, Some(s)) => CaseExit::Signaled { signal: s },
                _ => CaseExit::Exited { code: -1 },
            };
        }
        if start.elapsed() >= timeout {
            crate::proc::kill_group(pgid);
            let _ = child.wait();
            break CaseExit::TimedOut {
                after_s: start.elapsed().as_secs_f64(),
            };
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    };
    // Whatever the case left running in its group goes now, so it cannot
    // hold the output pipe open or disturb the next case.
    crate::proc::kill_group(pgid);
    reap_orphans();
    // A process stuck in the kernel (D state) may keep the pipe open; don't
    // wait for it forever.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !collector.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = if collector.is_finished() {
        String::from_utf8_lossy(&collector.join().unwrap_or_default()).into_owned()
    } else {
        "[harness] output pipe still held open by a process that could not be killed\n".into()
    };
    if out.len() >= MAX_CAPTURE {
        out.push_str("\n[harness] output truncated\n");
    }
    Ok((exit, out))
}

/// As PID 1 the runner inherits orphans; collect the dead ones.
fn reap_orphans() {
    if std::process::id() != 1 {
        return;
    }
    while let Ok(Some(_)) = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG) {}
}

/// Detach mounts a case left under its directory (a FUSE mount whose
/// server was killed would otherwise block later cases).
fn cleanup_mounts_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|t| t.starts_with(&prefix))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = rustix::mount::unmount(t, rustix::mount::UnmountFlags::DETACH);
    }
}

fn collect_artifacts(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if !p.is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let mut data = std::fs::read(&p).unwrap_or_default();
        let cut = data.len() > MAX_ARTIFACT;
        data.truncate(MAX_ARTIFACT);
        let mut s = String::from_utf8_lossy(&data).into_owned();
        if cut {
            s.push_str("\n[harness] artifact truncated\n");
        }
        out.insert(name, s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str, timeout_ms: u64) -> (CaseExit, String) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("case");
        std::fs::write(&p, script).unwrap();
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
        spawn_and_wait(&p, t.path(), env, Duration::from_millis(timeout_ms)).unwrap()
    }

    #[test]
    fn output_is_interleaved_and_exit_codes_kept() {
        let (exit, out) = run("echo one\necho two >&2\necho three\nexit 7\n", 10_000);
        assert_eq!(exit, CaseExit::Exited { code: 7 });
        assert_eq!(out, "one\ntwo\nthree\n");
    }

    #[test]
    fn a_hanging_case_is_killed_with_its_children() {
        let start = Instant::now();
        // A background child holding the output pipe must not keep us waiting.
        let (exit, out) = run("echo started\nsleep 30 &\nsleep 30\n", 300);
        assert!(matches!(exit, CaseExit::TimedOut { .. }), "{exit:?}");
        assert_eq!(out, "started\n");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn signals_are_reported() {
        let (exit, _) = run("kill -SEGV $$\n", 10_000);
        assert_eq!(
            exit,
            CaseExit::Signaled {
                signal: libc::SIGSEGV
            }
        );
    }
}
