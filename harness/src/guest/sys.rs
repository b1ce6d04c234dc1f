//! Small system helpers for the guest: leaving QEMU with a status, kernel
//! log access, mounting the pseudo file systems.

use anyhow::{Context, Result};
use std::ffi::CString;
use std::io::Write;

pub use crate::contract::exit::{
    DEBUG_EXIT_PORT, EXIT_PROBE_OK, EXIT_RUNNER_DONE, EXIT_RUNNER_ERROR,
};

/// Write `code` to the isa-debug-exit port. Without the device the write is
/// ignored and this returns, so callers fall back to powering off.
pub fn debug_exit(code: u8) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        if libc::ioperm(DEBUG_EXIT_PORT as libc::c_ulong, 4, 1) == 0 {
            std::arch::asm!("out dx, al", in("dx") DEBUG_EXIT_PORT, in("al") code, options(nomem, nostack));
        }
    }
}

/// End the guest: debug-exit first, then power off (PID 1 must never return).
pub fn leave_guest(code: u8) -> ! {
    let _ = std::io::stdout().flush();
    unsafe { libc::sync() };
    debug_exit(code);
    unsafe {
        libc::reboot(libc::RB_POWER_OFF);
    }
    std::process::exit(code as i32)
}

pub fn mount(src: &str, target: &str, fstype: &str, data: Option<&str>) -> Result<()> {
    std::fs::create_dir_all(target).ok();
    let c = |s: &str| CString::new(s).unwrap();
    let (s, t, f) = (c(src), c(target), c(fstype));
    let d = data.map(c);
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ptr(),
            0,
            d.as_ref()
                .map(|d| d.as_ptr() as *const libc::c_void)
                .unwrap_or(std::ptr::null()),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(e).with_context(|| format!("mount -t {fstype} {src} {target}"));
        }
    }
    Ok(())
}

pub fn is_mounted(target: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(target))
        })
        .unwrap_or(false)
}

/// Mount what the runner and the cases need, where it is not mounted yet
/// (virtme-ng has already mounted most of it).
pub fn ensure_mounts() {
    let want = [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("debugfs", "/sys/kernel/debug", "debugfs"),
    ];
    for (src, target, fs) in want {
        if !is_mounted(target) {
            let _ = mount(src, target, fs, None);
        }
    }
}

/// Append a line to the kernel log (visible on the console and in slices).
pub fn kmsg_write(text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = f.write_all(text.as_bytes());
    }
}

/// A reader positioned at the end of the kernel log: what it returns later
/// is exactly what was logged after it was opened.
pub struct KmsgCursor {
    fd: i32,
}

impl KmsgCursor {
    pub fn at_end() -> Result<KmsgCursor> {
        let path = CString::new("/dev/kmsg").unwrap();
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("opening /dev/kmsg");
        }
        unsafe { libc::lseek(fd, 0, libc::SEEK_END) };
        Ok(KmsgCursor { fd })
    }

    /// Records since the cursor, as console-style lines.
    pub fn read_new(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n =
                unsafe { libc::read(self.fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EPIPE) {
                    // Records were overwritten before we read them; go on.
                    out.push("[harness] kernel log records were lost (ring buffer wrapped)".into());
                    continue;
                }
                break; // EAGAIN: nothing more
            }
            if n == 0 {
                break;
            }
            let rec = String::from_utf8_lossy(&buf[..n as usize]);
            if let Some(l) = crate::judge::kmsg::record_to_line(&rec) {
                out.push(l);
            }
        }
        out
    }
}

impl Drop for KmsgCursor {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

pub fn uptime_ms() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .map(|s| (s * 1000.0) as u64)
        .unwrap_or(0)
}

/// Errno name for messages that cases compare against golden output.
pub fn errno_name(e: i32) -> String {
    famfs_proto::errno::errno_name(e)
        .map(str::to_string)
        .unwrap_or_else(|| format!("errno {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::ENODEV), "ENODEV");
        assert_eq!(errno_name(9999), "errno 9999");
    }
}
