//! Running host programs: errors that say which command failed and show its
//! output, and children in their own process group so a timeout or Ctrl-C
//! takes down everything they started (QEMU, virtiofsd, vng's helpers).

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Run a command to completion; on failure the error carries its output tail.
pub fn run_logged(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
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

/// Make the child lead its own process group (so killpg reaches grandchildren).
pub fn own_process_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0)
}

/// Send SIGKILL to a whole process group.
pub fn kill_group(pgid: u32) {
    unsafe {
        libc::killpg(pgid as i32, libc::SIGKILL);
    }
}

static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static HANDLER: AtomicBool = AtomicBool::new(false);

/// Process groups to kill if the harness is interrupted.
pub fn register_group(pgid: u32) {
    GROUPS.lock().unwrap().push(pgid);
    install_signal_handler();
}

pub fn unregister_group(pgid: u32) {
    GROUPS.lock().unwrap().retain(|g| *g != pgid);
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe calls: try_lock, killpg, _exit.
    if let Ok(g) = GROUPS.try_lock() {
        for pg in g.iter() {
            unsafe {
                libc::killpg(*pg as i32, libc::SIGKILL);
            }
        }
    }
    unsafe { libc::_exit(128 + sig) };
}

fn install_signal_handler() {
    if HANDLER.swap(true, Ordering::SeqCst) {
        return;
    }
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, on_signal as *const () as libc::sighandler_t);
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
