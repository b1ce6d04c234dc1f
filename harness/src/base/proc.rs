//! Child processes in their own process group, so that a timeout, a case's
//! end or Ctrl-C takes down everything they started (QEMU, virtiofsd, vng's
//! helpers, a case's daemons). One helper for every launch: the host's
//! (make, QEMU, virtme-ng through duct) and the guest runner's (cases).
//! On the host, SIGINT/SIGTERM/SIGHUP kill every registered group before the
//! harness exits; the signals are received on a thread (signal-hook), so
//! no lock is ever taken inside a signal handler.

use anyhow::{bail, Context, Result};
use rustix::process::{kill_process_group, Pid, Signal};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Mutex;

/// Run a command to completion; on failure the error carries its output tail.
pub fn run_logged(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    checked(out, what)
}

/// A finished command's stdout, or an error with `what`, its status and
/// the last lines of its output (for commands run through xshell too).
pub fn checked(out: std::process::Output, what: &str) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .chain(stdout.lines())
            .rev()
            .take(15)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{what} failed ({}):\n  {}", out.status, tail.join("\n  "));
    }
    Ok(stdout)
}

/// Make the child lead its own process group (so a group kill reaches
/// grandchildren).
pub fn own_process_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0)
}

/// SIGKILL for the child when the harness thread that started it dies.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            Ok(())
        })
    }
}

/// Send SIGKILL to a whole process group (gone already is fine).
pub fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Process groups to kill if the harness is interrupted or dies.
pub fn register_group(pgid: u32) {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(pgid);
    #[cfg(feature = "host")]
    {
        signals::install();
        watchdog::tell(&format!("+g {pgid}"));
    }
}

pub fn unregister_group(pgid: u32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|g| *g != pgid);
    #[cfg(feature = "host")]
    watchdog::tell(&format!("-g {pgid}"));
}

/// A file (a pmem backing image) to delete if the harness dies before it
/// does; [`unregister_file`] once it is gone or kept on purpose.
pub fn register_file(path: &std::path::Path) {
    #[cfg(feature = "host")]
    watchdog::tell(&format!("+f {}", path.display()));
    #[cfg(not(feature = "host"))]
    let _ = path;
}

pub fn unregister_file(path: &std::path::Path) {
    #[cfg(feature = "host")]
    watchdog::tell(&format!("-f {}", path.display()));
    #[cfg(not(feature = "host"))]
    let _ = path;
}

static INTERRUPTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static WINDING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The signal (SIGINT, SIGTERM, SIGHUP) that interrupted the harness, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The conventional name of a signal number, for messages.
pub fn signal_name(sig: i32) -> String {
    match sig {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        6 => "SIGABRT".into(),
        7 => "SIGBUS".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// While a guard lives, the first SIGINT/SIGTERM/SIGHUP stops the VMs and
/// lets the run write its results (the caller then exits with 128 + the
/// signal); without one, or at the second signal, the harness exits at once.
pub struct WindDown(());

impl WindDown {
    pub fn begin() -> WindDown {
        #[cfg(feature = "host")]
        signals::install();
        WINDING_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
        WindDown(())
    }
}

impl Drop for WindDown {
    fn drop(&mut self) {
        WINDING_DOWN.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(feature = "host")]
pub mod signals {
    use std::sync::atomic::Ordering;
    use std::sync::Once;

    static INSTALL: Once = Once::new();

    fn kill_all() {
        for pg in super::GROUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            super::kill_group(*pg);
        }
    }

    /// A thread waits for SIGINT, SIGTERM or SIGHUP. The first one kills
    /// every registered group; a run in progress ([`super::WindDown`]) then
    /// records what happened and exits with 128 + the signal. A second
    /// signal, or a run that has not finished 60 s later, exits at once.
    pub fn install() {
        INSTALL.call_once(|| {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            else {
                return;
            };
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    kill_all();
                    let first = super::INTERRUPTED
                        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                    if !first || !super::WINDING_DOWN.load(Ordering::SeqCst) {
                        std::process::exit(128 + sig);
                    }
                    eprintln!(
                        "\n[harness] {}: stopping the VM and writing the results (again to stop at once)",
                        super::signal_name(sig)
                    );
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_secs(60));
                        eprintln!("[harness] the run did not stop within 60 s of the signal; exiting");
                        kill_all();
                        std::process::exit(128 + sig);
                    });
                }
            });
        });
    }
}

/// A shell that outlives the harness by design: it learns the process
/// groups and files the harness registers through a pipe, and when the pipe
/// closes (the harness exited, however: SIGKILL included) it kills the
/// groups still registered and deletes the files. Children also get
/// SIGKILL as their parent-death signal; this reaches their children too.
#[cfg(feature = "host")]
mod watchdog {
    use std::io::Write;
    use std::process::{ChildStdin, Command, Stdio};
    use std::sync::Mutex;

    const SCRIPT: &str = r#"trap '' INT TERM HUP
groups=' '
files=''
while IFS= read -r line; do
  arg=${line#?? }
  case $line in
    '+g '*) groups="$groups$arg " ;;
    '-g '*) groups=$(printf '%s' "$groups" | sed "s/ $arg / /g") ;;
    '+f '*) files="$files$arg
" ;;
    '-f '*) files=$(printf '%s' "$files" | grep -vxF -- "$arg"; printf x); files=${files%x} ;;
  esac
done
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
printf '%s' "$files" | while IFS= read -r f; do [ -n "$f" ] && rm -f -- "$f"; done
"#;

    static PIPE: Mutex<Option<ChildStdin>> = Mutex::new(None);

    /// Send one line; the watchdog starts at the first.
    pub fn tell(line: &str) {
        let mut pipe = PIPE.lock().unwrap_or_else(|e| e.into_inner());
        if pipe.is_none() {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(SCRIPT)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // Away from the terminal's process group: Ctrl-C is for the harness.
            super::own_process_group(&mut cmd);
            match cmd.spawn() {
                Ok(mut c) => *pipe = c.stdin.take(),
                Err(e) => {
                    eprintln!("[harness] warning: no watchdog for child processes: {e}");
                    return;
                }
            }
        }
        if let Some(p) = pipe.as_mut() {
            let _ = writeln!(p, "{line}");
            let _ = p.flush();
        }
    }
}

/// A spawned child whose process group dies with this guard.
pub struct GroupChild {
    pub child: Child,
    pub pgid: u32,
}

impl GroupChild {
    pub fn spawn(cmd: &mut Command, what: &str) -> Result<GroupChild> {
        own_process_group(cmd);
        die_with_parent(cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
        let pgid = child.id();
        register_group(pgid);
        Ok(GroupChild { child, pgid })
    }

    /// Kill the group, and reap the leader.
    pub fn kill(&mut self) {
        kill_group(self.pgid);
        let _ = self.child.wait();
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // Reap the leader, then make sure nothing of the group is left.
        kill_group(self.pgid);
        let _ = self.child.try_wait();
        unregister_group(self.pgid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_kill_reaches_grandchildren() {
        let t = tempfile::tempdir().unwrap();
        let pidfile = t.path().join("grandchild");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("sleep 300 & echo $! > {}; wait", pidfile.display()));
        let mut g = GroupChild::spawn(&mut cmd, "sh").unwrap();
        let start = std::time::Instant::now();
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            assert!(
                start.elapsed().as_secs() < 10,
                "the grandchild never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        g.kill();
        // The grandchild is gone (reaped by init, or a zombie briefly).
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
        };
        let start = std::time::Instant::now();
        while alive(grandchild) {
            assert!(
                start.elapsed().as_secs() < 5,
                "grandchild {grandchild} survived the group kill"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
