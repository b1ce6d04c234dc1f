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

/// Send SIGKILL to a whole process group (gone already is fine).
pub fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Process groups to kill if the harness is interrupted.
pub fn register_group(pgid: u32) {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(pgid);
    #[cfg(feature = "host")]
    signals::install();
}

pub fn unregister_group(pgid: u32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|g| *g != pgid);
}

#[cfg(feature = "host")]
mod signals {
    use std::sync::Once;

    static INSTALL: Once = Once::new();

    /// A thread waits for SIGINT, SIGTERM or SIGHUP, kills every registered
    /// group and exits with 128 + the signal, as a shell would report it.
    pub fn install() {
        INSTALL.call_once(|| {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            else {
                return;
            };
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    for pg in super::GROUPS
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                    {
                        super::kill_group(*pg);
                    }
                    std::process::exit(128 + sig);
                }
            });
        });
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
