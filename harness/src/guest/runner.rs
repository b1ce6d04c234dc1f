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

/// The port, shared by the main loop and the thread streaming a case's
/// output.
pub type SharedPort = std::sync::Arc<std::sync::Mutex<ResultPort>>;

fn send(port: &SharedPort, m: &GuestMsg) {
    port.lock().unwrap_or_else(|e| e.into_inner()).send(m);
}

/// How long the runner keeps reading the kernel log after a case ended
/// (work the case left behind reports late), and after the last case.
const CASE_TAIL: Duration = Duration::from_millis(250);
const FINAL_TAIL: Duration = Duration::from_millis(1000);

/// The hang detector's timeout while cases run: well inside a case's
/// timeout, so a hung case is named by the kernel's own report.
const HUNG_TASK_TIMEOUT_S: u32 = 30;
const HUNG_TASK_CHECK_S: u32 = 5;

/// Entry point of `fh-guest run`.
pub fn main(plan_path: &str, channel_path: Option<&str>, tool: &Path) -> Result<()> {
    sys::ensure_mounts();
    let port: SharedPort =
        std::sync::Arc::new(std::sync::Mutex::new(ResultPort::open(channel_path)?));
    let plan: RunPlan = serde_json::from_str(
        &std::fs::read_to_string(plan_path).with_context(|| format!("reading plan {plan_path}"))?,
    )
    .with_context(|| format!("parsing plan {plan_path}"))?;
    sys::kmsg_write(&format!("{}\n", contract::marker::RUNNER_START));
    arm_hang_detector();
    // Processes a case leaves behind become ours, to find, kill and reap.
    if rustix::process::set_child_subreaper(Some(rustix::process::getpid())).is_ok() {
        SUBREAPER.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    send(
        &port,
        &GuestMsg::Hello {
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
        },
    );
    let mut devices = Vec::new();
    let setup = match &plan.topology.pmem {
        None => Ok(()),
        Some(spec) => super::dax::setup_pmem(spec).map(|d| devices = d),
    };
    match &setup {
        Ok(()) => send(
            &port,
            &GuestMsg::Setup {
                ok: true,
                detail: plan.topology.describe(),
                devices: devices.clone(),
            },
        ),
        Err(e) => send(
            &port,
            &GuestMsg::Setup {
                ok: false,
                detail: format!("{e:#}"),
                devices: vec![],
            },
        ),
    }
    if let (Some(sh), true) = (&plan.shell, setup.is_ok()) {
        let status = run_shell(&plan, sh, &devices, tool, &port);
        sys::kmsg_write("fh: shell done\n");
        sys::debug_exit(contract::exit::EXIT_SHELL_BASE + status.min(100));
        return Ok(());
    }
    let mut ran = 0;
    if setup.is_ok() {
        for case in &plan.cases {
            send(
                &port,
                &GuestMsg::CaseStart {
                    id: case.id.clone(),
                    uptime_ms: sys::uptime_ms(),
                },
            );
            let (report, restart) = run_case(&plan, case, &devices, tool, &port, ran == 0);
            send(&port, &GuestMsg::CaseEnd(Box::new(report)));
            if ran == 0 {
                selftest_hook(&plan, "between");
            }
            ran += 1;
            if let Some(why) = restart {
                send(
                    &port,
                    &GuestMsg::Restart {
                        reason: format!("{} {why}", case.id),
                    },
                );
                break;
            }
        }
    }
    selftest_hook(&plan, "last");
    // Reports that arrive now are outside every case: give them a moment
    // to reach the log before the VM goes.
    std::thread::sleep(FINAL_TAIL);
    send(&port, &GuestMsg::Done { cases: ran });
    selftest_hook(&plan, "shutdown");
    Ok(())
}

/// The harness's own tests provoke kernel reports where no case can put
/// them (`FH_SELFTEST_HOOK=tail:WARNING,between:WARNING,...` in the plan's
/// environment): in the first case's tail (`tail`), after its `done`
/// marker (`between`), after the last case (`last`), after Done
/// (`shutdown`).
fn selftest_hook(plan: &RunPlan, when: &str) {
    let Some(hooks) = plan.env.get(contract::env::SELFTEST_HOOK) else {
        return;
    };
    for h in hooks.split(',') {
        if let Some(kind) = h.strip_prefix(when).and_then(|r| r.strip_prefix(':')) {
            let _ = std::fs::write("/sys/kernel/debug/provoke-crash/DIRECT", kind);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Make the kernel's hung-task detector fire within a case's timeout.
fn arm_hang_detector() {
    let dir = Path::new("/proc/sys/kernel");
    if dir.join("hung_task_timeout_secs").exists() {
        let _ = std::fs::write(
            dir.join("hung_task_timeout_secs"),
            HUNG_TASK_TIMEOUT_S.to_string(),
        );
        let _ = std::fs::write(
            dir.join("hung_task_check_interval_secs"),
            HUNG_TASK_CHECK_S.to_string(),
        );
    }
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
    env.insert(
        "FH_SPOILED_FILE".into(),
        dir.join(".spoiled").display().to_string(),
    );
    env.insert(
        "FH_PHASES_FILE".into(),
        dir.join(".phases").display().to_string(),
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
    for (i, d) in devices.iter().enumerate() {
        let (path, name) = contract::env::dax_vars(i);
        env.insert(path, d.path.clone());
        env.insert(name, d.path.trim_start_matches("/dev/").to_string());
    }
    let tool_dir = tool
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    env.insert("PATH".into(), format!("{tool_dir}:{path}"));
    for (k, v) in plan.env.iter().chain(&case.env) {
        env.insert(k.clone(), v.clone());
    }
    env
}

/// Run one case between kernel-log markers and collect everything about
/// it. Also returns why the boot must end after it, if it must.
pub fn run_case(
    plan: &RunPlan,
    case: &PlannedCase,
    devices: &[crate::contract::DaxDevice],
    tool: &Path,
    port: &SharedPort,
    first: bool,
) -> (CaseReport, Option<String>) {
    use crate::contract::marker;
    let dir = PathBuf::from("/tmp/fh-cases").join(case.id.replace('/', "_"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(dir.join("artifacts"));
    // WARN_ON_ONCE sites fire once per boot; re-arm them so each case sees its own.
    let _ = std::fs::write("/sys/kernel/debug/clear_warn_once", "1");
    super::coverage::reset();
    let taint_before = crate::contract::taint::read();
    let before = live_pids();
    let mut kmsg = KmsgCursor::at_end().ok();
    sys::kmsg_write(&format!("{}\n", marker::case(&case.id, "start")));
    let start = Instant::now();
    let start_up = sys::uptime_ms();
    let ran = execute_case(plan, case, devices, tool, port, &dir, &before);
    let duration_ms = start.elapsed().as_millis() as u64;
    let mut phases = super::phases::tally(
        &std::fs::read_to_string(dir.join(".phases")).unwrap_or_default(),
        start_up as f64 / 1000.0,
        sys::uptime_ms() as f64 / 1000.0,
    );
    let reset_start = Instant::now();
    let (reset, left) = after_case(ran.stray, ran.stuck, ran.left);
    cleanup_mounts_under(&dir);
    let reset_error = reset_devices(devices);
    // The case's counts include its unmounts and the device reset.
    let coverage = super::coverage::collect();
    phases.insert("reset".into(), reset_start.elapsed().as_millis() as u64);
    let tail_start = Instant::now();
    sys::kmsg_write(&format!("{}\n", marker::case(&case.id, "end")));
    if first {
        selftest_hook(plan, "tail");
    }
    std::thread::sleep(CASE_TAIL);
    let done = marker::case(&case.id, "done");
    sys::kmsg_write(&format!("{done}\n"));
    let lines = kmsg
        .as_mut()
        .map(|k| read_until(k, &done))
        .unwrap_or_default();
    phases.insert("tail".into(), tail_start.elapsed().as_millis() as u64);
    let notrun = std::fs::read_to_string(dir.join(".notrun"))
        .ok()
        .map(|s| s.trim().to_string());
    (
        CaseReport {
            id: case.id.clone(),
            exit: ran.exit,
            output: ran.output,
            notrun,
            kmsg: lines,
            taint_before,
            taint_after: crate::contract::taint::read(),
            reset,
            reset_error,
            duration_ms,
            phases,
            artifacts: collect_artifacts(&dir.join("artifacts")),
            coverage,
        },
        restart_reason(&left, &dir),
    )
}

/// How a case's script ended, and what it left behind.
struct CaseRun {
    exit: CaseExit,
    output: String,
    /// Processes of its group that survived the kill.
    left: Vec<String>,
    /// Processes that escaped its group, killed (`comm[pid] state`).
    stray: Vec<String>,
    /// Of those, the ones that could not be killed.
    stuck: Vec<String>,
}

/// Runs the case's script in `dir` with its timeout, streaming its output
/// to the host. `before`: the processes alive before it started.
fn execute_case(
    plan: &RunPlan,
    case: &PlannedCase,
    devices: &[crate::contract::DaxDevice],
    tool: &Path,
    port: &SharedPort,
    dir: &Path,
    before: &std::collections::BTreeSet<u32>,
) -> CaseRun {
    let timeout = Duration::from_secs_f64(case.timeout_s as f64 * plan.timeout_scale.max(1.0));
    let script = Path::new(&plan.cases_root).join(&case.script);
    let stream = {
        let port = port.clone();
        let id = case.id.clone();
        move |text: &str| {
            send(
                &port,
                &GuestMsg::CaseOutput {
                    id: id.clone(),
                    text: text.to_string(),
                },
            )
        }
    };
    // Before a hung case is killed, the kernel lists its blocked tasks
    // (a hang) and what every CPU is running (a livelock).
    let on_timeout = || {
        let _ = std::fs::write("/proc/sysrq-trigger", "w");
        let _ = std::fs::write("/proc/sysrq-trigger", "l");
    };
    // What the case left must not reach the next one: processes that
    // escaped its group (setsid daemons), its mounts, the devices' driver.
    // Done inside the case's window, so what it causes is the case's.
    let (mut stray, mut stuck) = (Vec::new(), Vec::new());
    let (exit, output, left) = match spawn_and_wait(
        &script,
        dir,
        case_env(plan, case, devices, tool, dir),
        timeout,
        Box::new(stream),
        &on_timeout,
        &mut || (stray, stuck) = kill_strays(before),
    ) {
        Ok(r) => r,
        Err(e) => (
            CaseExit::SpawnFailed {
                error: format!("{e:#}"),
            },
            String::new(),
            vec![],
        ),
    };
    CaseRun {
        exit,
        output,
        left,
        stray,
        stuck,
    }
}

/// The reset's account of the processes a case left, and every process
/// that could not be ended (`left` with the `stuck` strays).
fn after_case(
    stray: Vec<String>,
    stuck: Vec<String>,
    mut left: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let mut reset = Vec::new();
    if !stray.is_empty() {
        reset.push(format!(
            "killed processes the case left: {}",
            stray.join(", ")
        ));
    }
    if !stuck.is_empty() {
        // The hung-task detector would name the same stuck task again after
        // the case's window, as if outside every case; the boot ends after
        // this case anyway (the runner asks for a restart).
        let _ = std::fs::write("/proc/sys/kernel/hung_task_warnings", "0");
    }
    // One process may be in both lists (`comm[pid] state`; the state may
    // have changed between the two looks).
    let who = |d: &String| d.split(' ').next().unwrap_or_default().to_string();
    for p in stuck {
        if !left.iter().any(|l| who(l) == who(&p)) {
            left.push(p);
        }
    }
    (reset, left)
}

/// The kernel log up to our own `done` record: the console's window for
/// the case and this slice are the same lines.
fn read_until(k: &mut KmsgCursor, done: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        lines.extend(k.read_new());
        if lines.iter().any(|l: &String| l.ends_with(done)) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    lines
}

/// Why the next case needs a fresh VM: a process the case left cannot be
/// killed, or the case changed the machine for good (`_boot_spoiled`:
/// poisoned memory stays poisoned).
fn restart_reason(left: &[String], dir: &Path) -> Option<String> {
    if !left.is_empty() {
        Some(format!(
            "left processes that cannot be killed: {}",
            left.join(", ")
        ))
    } else {
        std::fs::read_to_string(dir.join(".spoiled"))
            .ok()
            .map(|s| format!("asked for a fresh VM: {}", s.trim()))
    }
}

/// `cargo xtask shell`: `sh -i` on the serial console as its controlling
/// terminal, or a command whose output goes to the host through the result
/// channel as a case's does (the serial line can drop the end of it), in
/// the environment the case would get; returns its exit status.
fn run_shell(
    plan: &RunPlan,
    sh: &contract::ShellPlan,
    devices: &[crate::contract::DaxDevice],
    tool: &Path,
    port: &SharedPort,
) -> u8 {
    let case = sh.case.clone().unwrap_or(PlannedCase {
        id: "shell".into(),
        script: String::new(),
        timeout_s: 0,
        env: BTreeMap::new(),
    });
    let dir = PathBuf::from("/tmp/fh-shell");
    let _ = std::fs::create_dir_all(dir.join("artifacts"));
    if let Some(command) = &sh.command {
        let script = dir.join(".command");
        if std::fs::write(&script, command).is_err() {
            return 100;
        }
        let port = port.clone();
        let sink = move |text: &str| {
            send(
                &port,
                &GuestMsg::CaseOutput {
                    id: "shell".into(),
                    text: text.to_string(),
                },
            )
        };
        let env = case_env(plan, &case, devices, tool, &dir);
        let forever = Duration::from_secs(365 * 24 * 3600);
        return match spawn_and_wait(
            &script,
            &dir,
            env,
            forever,
            Box::new(sink),
            &|| {},
            &mut || {},
        ) {
            Ok((CaseExit::Exited { code }, _, _)) => code.clamp(0, 100) as u8,
            _ => 100,
        };
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-i");
    cmd.current_dir(&dir)
        .env_clear()
        .envs(case_env(plan, &case, devices, tool, &dir))
        .env("PS1", "fh-guest:\\w# ")
        .env("TERM", "linux");
    // SAFETY: between fork and exec only async-signal-safe system calls on
    // the child's own state: a new session, then the serial console (fd 0,
    // opened below) as its controlling terminal.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            // SAFETY: fd 0 is open in the child (Command set it up).
            let stdin = std::os::fd::BorrowedFd::borrow_raw(0);
            let _ = rustix::process::ioctl_tiocsctty(stdin);
            Ok(())
        });
    }
    let tty = |w: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(w)
            .open("/dev/ttyS0")
            .or_else(|_| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(w)
                    .open("/dev/console")
            })
    };
    let (Ok(i), Ok(o), Ok(e), Ok(drain)) = (tty(false), tty(true), tty(true), tty(true)) else {
        return 100;
    };
    cmd.stdin(i).stdout(o).stderr(e);
    let status = match cmd.status() {
        Ok(st) => st.code().map_or(100, |c| c.clamp(0, 100) as u8),
        Err(_) => 100,
    };
    // The serial line sends what the shell wrote after it exits; leaving
    // the VM before that loses the end of the output.
    // SAFETY: tcdrain only waits on an open descriptor this function owns.
    unsafe {
        libc::tcdrain(std::os::fd::AsRawFd::as_raw_fd(&drain));
    }
    status
}

/// Output chunks as the case writes them, in whole lines.
type OutputSink = Box<dyn FnMut(&str) + Send>;

/// Run a case script to its end (or timeout), then kill its process group
/// and call `after_exit` (which kills what escaped the group, such as setsid
/// daemons) before collecting the output: nothing then holds the pipe open.
fn spawn_and_wait(
    script: &Path,
    dir: &Path,
    env: BTreeMap<String, String>,
    timeout: Duration,
    mut on_output: OutputSink,
    on_timeout: &dyn Fn(),
    after_exit: &mut dyn FnMut(),
) -> Result<(CaseExit, String, Vec<String>)> {
    let (mut reader, writer) = std::io::pipe().context("creating the output pipe")?;
    let writer2 = writer.try_clone()?;
    let pipe_id = rustix::fs::fstat(&writer)
        .map(|st| format!("{}:{}", st.st_dev, st.st_ino))
        .unwrap_or_default();
    let env_artifacts = env.get(contract::env::ARTIFACTS).map(PathBuf::from);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(script)
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .env(contract::env::OUTPUT_PIPE, pipe_id)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    crate::base::proc::own_process_group(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting /bin/sh {}", script.display()))?;
    drop(cmd); // close our copies of the pipe's write end
    let pgid = child.id();
    // Whole lines as they are sent, shared so that what was read survives a
    // process that cannot be killed keeping the pipe open past the end.
    let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let collector = {
        let captured = captured.clone();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || collect_output(&mut reader, &captured, &dir, &mut on_output))
    };
    let start = Instant::now();
    let mut sleep = Duration::from_millis(1);
    // Daemons the case starts are orphaned to the runner: note how each
    // ended in the case's artifacts while the case runs (it can read them).
    let exits = env_artifacts.map(|a| a.join(EXITS));
    let mut reaped_at = Instant::now();
    let exit = loop {
        if reaped_at.elapsed() >= Duration::from_millis(100) {
            reap_adopted(pgid, exits.as_deref());
            reaped_at = Instant::now();
        }
        if let Some(st) = child.try_wait()? {
            break match (st.code(), st.signal()) {
                (Some(c), _) => CaseExit::Exited { code: c },
                (None, Some(s)) => CaseExit::Signaled { signal: s },
                _ => CaseExit::Exited { code: -1 },
            };
        }
        if start.elapsed() >= timeout {
            on_timeout();
            crate::base::proc::kill_group(pgid);
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
    crate::base::proc::kill_group(pgid);
    reap_adopted(pgid, exits.as_deref());
    reap_orphans();
    after_exit();
    reap_adopted(pgid, exits.as_deref());
    // A process stuck in the kernel (D state) may keep the pipe open; don't
    // wait for it forever.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !collector.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let finished = collector.is_finished();
    if finished {
        let _ = collector.join();
    }
    let mut out =
        String::from_utf8_lossy(&captured.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    if !finished {
        out.push_str(
            "[harness] output pipe still held open by a process that could not be killed\n",
        );
    }
    if out.len() >= MAX_CAPTURE {
        out.push_str("\n[harness] output truncated\n");
    }
    reap_orphans();
    Ok((exit, out, survivors(pgid)))
}

/// Reads a case's output to its end: whole lines are kept (up to
/// MAX_CAPTURE) and sent as they come; a sync line (`fh-guest sync-output`)
/// is answered, once everything before it was sent, by creating its
/// acknowledgement file in the case directory, and is not kept.
fn collect_output(
    reader: &mut impl Read,
    captured: &std::sync::Mutex<Vec<u8>>,
    dir: &Path,
    on_output: &mut OutputSink,
) {
    let mut emit = |text: &[u8]| {
        let mut kept = captured.lock().unwrap_or_else(|e| e.into_inner());
        let room = MAX_CAPTURE.saturating_sub(kept.len());
        let text = &text[..text.len().min(room)];
        if !text.is_empty() {
            kept.extend_from_slice(text);
            drop(kept);
            on_output(&String::from_utf8_lossy(text));
        }
    };
    let mut pending = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        let mut lines = Vec::new();
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            match contract::marker::sync_token(&line) {
                Some(token) => {
                    emit(&lines);
                    lines.clear();
                    let _ = std::fs::write(contract::marker::sync_ack(dir, &token), "");
                }
                None => lines.extend_from_slice(&line),
            }
        }
        emit(&lines);
        // A line longer than the cap is kept as far as the cap goes.
        if pending.len() > MAX_CAPTURE {
            emit(&pending);
            pending.clear();
        }
    }
    emit(&pending);
}

/// One line of /proc/PID/stat, the fields the runner needs.
struct Proc {
    pid: u32,
    comm: String,
    state: String,
    ppid: u32,
    pgrp: u32,
    session: u32,
}

impl Proc {
    fn alive(&self) -> bool {
        self.state != "Z" && self.state != "X"
    }

    fn describe(&self) -> String {
        format!("{}[{}] state {}", self.comm, self.pid, self.state)
    }
}

/// Every process now.
fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[..close].split_once('(').map(|x| x.1).unwrap_or("");
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().unwrap_or("").to_string();
        let num = |x: Option<&str>| x.and_then(|v| v.parse().ok()).unwrap_or(0);
        let ppid = num(rest.next());
        let pgrp = num(rest.next());
        let session = num(rest.next());
        out.push(Proc {
            pid,
            comm: comm.to_string(),
            state,
            ppid,
            pgrp,
            session,
        });
    }
    out
}

/// Live (not zombie) processes still in a process group after SIGKILL:
/// they are stuck in the kernel, `comm[pid] state`.
fn survivors(pgid: u32) -> Vec<String> {
    // SIGKILL takes effect when the process next runs: give the group a
    // moment (a busy machine) before calling anything stuck.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left: Vec<String> = processes()
            .iter()
            .filter(|p| p.pgrp == pgid && p.alive())
            .map(Proc::describe)
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        reap_orphans();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live user-space processes now (kernel threads come and go: kthreadd,
/// 2, and its children are the kernel's).
fn user_processes() -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| p.pid != 2 && p.ppid != 2 && p.alive())
        .collect()
}

fn live_pids() -> std::collections::BTreeSet<u32> {
    user_processes().iter().map(|p| p.pid).collect()
}

/// Kill every user process that appeared since `before` (the runner and
/// its threads aside): daemons a case started with setsid escape its
/// process group. Returns what was killed, and what is still alive after
/// SIGKILL (stuck in the kernel).
fn kill_strays(before: &std::collections::BTreeSet<u32>) -> (Vec<String>, Vec<String>) {
    // /proc lists processes, not threads: the runner's threads are not here.
    let me = std::process::id();
    let new: Vec<Proc> = user_processes()
        .into_iter()
        .filter(|p| !before.contains(&p.pid) && p.pid != me)
        .collect();
    let killed: Vec<String> = new
        .iter()
        .map(|p| format!("{}[{}]", p.comm, p.pid))
        .collect();
    for p in &new {
        if let Some(pid) = rustix::process::Pid::from_raw(p.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut alive: Vec<u32> = new.iter().map(|p| p.pid).collect();
    loop {
        let now = live_pids();
        alive.retain(|p| now.contains(p));
        // The dead are zombies of ours (PID 1 adopts them): collect them.
        reap_orphans();
        if alive.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stuck = processes()
        .iter()
        .filter(|p| alive.contains(&p.pid))
        .map(Proc::describe)
        .collect();
    (killed, stuck)
}

/// Put every dax device back on the driver the topology set it up with.
fn reset_devices(devices: &[crate::contract::DaxDevice]) -> Option<String> {
    let mut errs = Vec::new();
    for d in devices {
        let name = d.path.trim_start_matches("/dev/");
        let now = super::dax::driver_of(name);
        if now != d.driver {
            if let Err(e) = super::dax::bind(name, &d.driver) {
                errs.push(format!(
                    "{name}: left on `{now}`, binding back to `{}` failed: {e:#}",
                    d.driver
                ));
            }
        }
    }
    (!errs.is_empty()).then(|| errs.join("; "))
}

/// Set once the runner is the child subreaper of everything the cases
/// start (orphans are reparented to it, not to init).
static SUBREAPER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Where [`reap_adopted`] notes exits, in a case's artifacts.
const EXITS: &str = "exits.txt";

fn is_reaper() -> bool {
    std::process::id() == 1 || SUBREAPER.load(std::sync::atomic::Ordering::Relaxed)
}

/// Reap the dead processes the runner adopted from the case whose process
/// group is `case` (left in that group, or escaped into a session of their
/// own, as daemons do; not the case's shell, which its `Child` waits for,
/// nor anything the runner started itself) and append how each ended to
/// `log`, one `comm[pid]: exit N` or `comm[pid]: killed by SIGNAME` line.
/// The line is written before the process is reaped, so a case that sees
/// the pid gone finds the line.
fn reap_adopted(case: u32, log: Option<&Path>) {
    use rustix::process::{waitid, waitpid, Pid, WaitId, WaitIdOptions, WaitOptions};
    // Only processes with us as parent are looked at: without being PID 1
    // or a subreaper there are none but our own.
    let me = std::process::id();
    let all = processes();
    // From /proc, not getsid(2): PID 1's session is 0, which is no Pid.
    let my_session = all.iter().find(|p| p.pid == me).map_or(0, |p| p.session);
    for p in all.into_iter().filter(|p| {
        p.ppid == me
            && p.pid != case
            && p.state == "Z"
            && (p.pgrp == case || p.session != my_session)
    }) {
        let Some(pid) = Pid::from_raw(p.pid as i32) else {
            continue;
        };
        let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        let Ok(Some(st)) = waitid(WaitId::Pid(pid), opts) else {
            continue;
        };
        let how = match (st.exit_status(), st.terminating_signal()) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(sig)) => match crate::contract::kmsg::signal_name(sig) {
                n if n.starts_with("SIG") => format!("killed by {n}"),
                n => format!("killed by signal {n}"),
            },
            _ => "ended".to_string(),
        };
        if let Some(log) = log {
            use std::io::Write;
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .and_then(|mut f| writeln!(f, "{}[{}]: {how}", p.comm, p.pid));
        }
        let _ = waitpid(Some(pid), WaitOptions::NOHANG);
    }
}

/// As PID 1 or subreaper the runner inherits orphans; collect the dead ones.
fn reap_orphans() {
    if !is_reaper() {
        return;
    }
    // wait(2), not waitpid(None): that one only sees our own process group.
    while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
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
        let (exit, out, left) = spawn_and_wait(
            &p,
            t.path(),
            env,
            Duration::from_millis(timeout_ms),
            Box::new(|_| {}),
            &|| {},
            &mut || {},
        )
        .unwrap();
        assert!(left.is_empty(), "{left:?}");
        (exit, out)
    }

    #[test]
    fn output_streams_in_whole_lines_before_the_case_ends() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("case");
        std::fs::write(&p, "printf 'one\\ntw'\nsleep 0.3\nprintf 'o\\nlast'\n").unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Instant)>::new()));
        let g2 = got.clone();
        let started = Instant::now();
        let timed_out = std::sync::atomic::AtomicBool::new(false);
        let (exit, out, _) = spawn_and_wait(
            &p,
            t.path(),
            [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
            Duration::from_secs(10),
            Box::new(move |s| g2.lock().unwrap().push((s.to_string(), Instant::now()))),
            &|| timed_out.store(true, std::sync::atomic::Ordering::SeqCst),
            &mut || {},
        )
        .unwrap();
        assert_eq!(exit, CaseExit::Exited { code: 0 });
        assert_eq!(out, "one\ntwo\nlast");
        let got = got.lock().unwrap();
        let texts: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(texts, vec!["one\n", "two\n", "last"]);
        // The first line arrived while the case was still sleeping.
        assert!(got[0].1.duration_since(started) < Duration::from_millis(300));
        assert!(!timed_out.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn a_sync_line_is_answered_after_the_lines_before_it_were_sent() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("case");
        let ack = contract::marker::sync_ack(t.path(), "t1");
        std::fs::write(
            &p,
            format!(
                "[ \"$(stat -L -c %d:%i /proc/$$/fd/1)\" = \"$FH_OUTPUT_PIPE\" ] || exit 8\n\
                 printf 'one\\n\\001fh: sync output t1\\n'\n\
                 n=0; while [ ! -e {ack} ]; do n=$((n+1)); [ $n -lt 500 ] || exit 7; sleep 0.01; done\n\
                 echo two\n",
                ack = ack.display()
            ),
        )
        .unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, bool)>::new()));
        let (g2, ack2) = (got.clone(), ack.clone());
        let (exit, out, _) = spawn_and_wait(
            &p,
            t.path(),
            [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
            Duration::from_secs(10),
            Box::new(move |s| g2.lock().unwrap().push((s.to_string(), ack2.exists()))),
            &|| {},
            &mut || {},
        )
        .unwrap();
        assert_eq!(exit, CaseExit::Exited { code: 0 });
        // The sync line is not output; the line before it was sent before
        // the answer appeared.
        assert_eq!(out, "one\ntwo\n");
        let got = got.lock().unwrap();
        assert_eq!(got[0], ("one\n".to_string(), false), "{got:?}");
        assert_eq!(got.last().unwrap().0, "two\n");
    }

    #[test]
    fn the_timeout_hook_runs_before_the_kill() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("case");
        std::fs::write(&p, "sleep 30\n").unwrap();
        let hooked = std::sync::atomic::AtomicBool::new(false);
        let (exit, _, left) = spawn_and_wait(
            &p,
            t.path(),
            [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
            Duration::from_millis(200),
            Box::new(|_| {}),
            &|| hooked.store(true, std::sync::atomic::Ordering::SeqCst),
            &mut || {},
        )
        .unwrap();
        assert!(matches!(exit, CaseExit::TimedOut { .. }));
        assert!(hooked.load(std::sync::atomic::Ordering::SeqCst));
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_case_reads_how_the_daemons_it_started_ended() {
        // This test process plays PID 1: orphans come to it. (SUBREAPER
        // stays unset: reap_orphans would take other tests' children.)
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
        let t = tempfile::tempdir().unwrap();
        let art = t.path().join("artifacts");
        std::fs::create_dir(&art).unwrap();
        let script = t.path().join("case");
        // Two daemons orphaned at once (their parent shell exits): one
        // dies of SIGSEGV, one exits 3. The case waits for the runner's
        // notes while it still runs.
        std::fs::write(
            &script,
            "sh -c '(sleep 0.2; sh -c \"kill -SEGV \\$\\$\") & (sleep 0.2; exit 3) & exit 0'\n\
             x=$FH_ARTIFACTS/exits.txt; n=0\n\
             while ! [ -f $x ] || [ $(wc -l < $x) -lt 2 ]; do\n\
               n=$((n+1)); [ $n -gt 100 ] && { echo timeout; break; }; sleep 0.05; done\n\
             sed 's/\\[[0-9]*\\]/[PID]/' $FH_ARTIFACTS/exits.txt | sort\n",
        )
        .unwrap();
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
        env.insert(
            contract::env::ARTIFACTS.to_string(),
            art.display().to_string(),
        );
        let (exit, out, _) = spawn_and_wait(
            &script,
            t.path(),
            env,
            Duration::from_secs(20),
            Box::new(|_| {}),
            &|| {},
            &mut || {},
        )
        .unwrap();
        assert_eq!(exit, CaseExit::Exited { code: 0 });
        assert_eq!(out, "sh[PID]: exit 3\nsh[PID]: killed by SIGSEGV\n");
    }

    #[test]
    fn survivors_finds_live_members_of_a_group() {
        let mut c = Command::new("sleep");
        c.arg("30");
        crate::base::proc::own_process_group(&mut c);
        let mut child = c.spawn().unwrap();
        let left = survivors(child.id());
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left[0].starts_with(&format!("sleep[{}]", child.id())),
            "{left:?}"
        );
        crate::base::proc::kill_group(child.id());
        let _ = child.wait();
        assert!(survivors(child.id()).is_empty());
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
