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
    // SAFETY: ioperm only changes this process's I/O permission bitmap; the
    // `out` runs only once access to the port was granted, touches no
    // memory, and on the debug-exit port ends the VM.
    unsafe {
        if libc::ioperm(DEBUG_EXIT_PORT as libc::c_ulong, 4, 1) == 0 {
            std::arch::asm!("out dx, al", in("dx") DEBUG_EXIT_PORT, in("al") code, options(nomem, nostack));
        }
    }
}

/// End the guest: debug-exit first, then power off (PID 1 must never return).
pub fn leave_guest(code: u8) -> ! {
    let _ = std::io::stdout().flush();
    rustix::fs::sync();
    debug_exit(code);
    let _ = rustix::system::reboot(rustix::system::RebootCommand::PowerOff);
    std::process::exit(code as i32)
}

pub fn mount(src: &str, target: &str, fstype: &str, data: Option<&str>) -> Result<()> {
    std::fs::create_dir_all(target).ok();
    let data = data
        .map(|d| CString::new(d).context("mount data contains a NUL byte"))
        .transpose()?;
    match rustix::mount::mount(
        src,
        target,
        fstype,
        rustix::mount::MountFlags::empty(),
        data.as_deref(),
    ) {
        Ok(()) | Err(rustix::io::Errno::BUSY) => Ok(()),
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("mount -t {fstype} {src} {target}")),
    }
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
    fd: std::os::fd::OwnedFd,
}

impl KmsgCursor {
    pub fn at_end() -> Result<KmsgCursor> {
        use rustix::fs::{open, seek, Mode, OFlags, SeekFrom};
        let fd = open(
            "/dev/kmsg",
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context("opening /dev/kmsg")?;
        seek(&fd, SeekFrom::End(0)).context("seeking to the end of /dev/kmsg")?;
        Ok(KmsgCursor { fd })
    }

    /// Records since the cursor, as console-style lines.
    pub fn read_new(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                // Records were overwritten before we read them; go on.
                Err(rustix::io::Errno::PIPE) => {
                    out.push("[harness] kernel log records were lost (ring buffer wrapped)".into());
                    continue;
                }
                Err(_) => break, // EAGAIN: nothing more
            };
            let rec = String::from_utf8_lossy(&buf[..n]);
            out.extend(crate::contract::kmsg::record_to_lines(&rec));
        }
        out
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

/// Wait until `path` exists, at most `timeout`: whether it does.
pub fn wait_for(path: &str, timeout: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if std::path::Path::new(path).exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::path::Path::new(path).exists()
}

/// Errno name for messages that cases compare against golden output.
pub fn errno_name(e: i32) -> String {
    famfs_proto::errno::errno_name(e)
        .map(str::to_string)
        .unwrap_or_else(|| format!("errno {e}"))
}

/// A mapping of a file or device, unmapped when dropped: the one wrapper
/// every guest tool maps through. `words` hands out plain slices (the tools
/// map dax devices and famfs files, whose contents only they change while
/// mapped); `word`/`set_word` are volatile single accesses, for the mmap
/// cases where the fault itself is what is tested.
pub struct Mapping {
    ptr: *mut u64,
    len: usize,
}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ[|PROT_WRITE], MAP_SHARED, fd, offset)`;
    /// the error is the errno's name.
    pub fn shared(
        fd: impl std::os::fd::AsFd,
        len: usize,
        offset: u64,
        write: bool,
    ) -> std::result::Result<Mapping, String> {
        Self::new(fd, None, len, offset, write, false)
    }

    /// `mmap(at, len, prot, MAP_SHARED or MAP_PRIVATE [| MAP_FIXED], fd,
    /// offset)`. `at` must lie in an address range the caller reserved and
    /// owns (see `guest::mmap`); the error is the errno's name.
    pub fn new(
        fd: impl std::os::fd::AsFd,
        at: Option<*mut u8>,
        len: usize,
        offset: u64,
        write: bool,
        private: bool,
    ) -> std::result::Result<Mapping, String> {
        use rustix::mm::{mmap, MapFlags, ProtFlags};
        let prot = if write {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        let mut flags = if private {
            MapFlags::PRIVATE
        } else {
            MapFlags::SHARED
        };
        if at.is_some() {
            flags |= MapFlags::FIXED;
        }
        // SAFETY: either the kernel picks the address, or `at` is inside a
        // reservation the caller owns, so nothing this program holds is
        // replaced; the mapping is only reached through this value and
        // unmapped exactly once, in Drop.
        match unsafe {
            mmap(
                at.unwrap_or(std::ptr::null_mut()).cast(),
                len,
                prot,
                flags,
                fd,
                offset,
            )
        } {
            Ok(p) => Ok(Mapping { ptr: p.cast(), len }),
            Err(e) => Err(errno_name(e.raw_os_error())),
        }
    }

    /// Take over a mapping made elsewhere (mremap's result).
    ///
    /// # Safety
    /// `ptr` must be the start of a live mapping of `len` bytes that nothing
    /// else unmaps.
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Mapping {
        Mapping {
            ptr: ptr.cast(),
            len,
        }
    }

    /// Give up ownership: the caller unmaps (or remaps) the range.
    pub fn into_raw(self) -> (*mut u8, usize) {
        let r = (self.ptr.cast(), self.len);
        std::mem::forget(self);
        r
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.cast()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 8 bytes at byte offset `off` (a multiple of 8 inside the
    /// mapping), read once: the fault, if any, happens here.
    pub fn word(&self, off: usize) -> u64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= self.len,
            "word {off} of {}",
            self.len
        );
        // SAFETY: checked above to lie inside the mapping, aligned.
        unsafe { std::ptr::read_volatile(self.ptr.add(off / 8)) }
    }

    /// Store the 8 bytes at byte offset `off` (a writable mapping).
    pub fn set_word(&self, off: usize, v: u64) {
        assert!(
            off.is_multiple_of(8) && off + 8 <= self.len,
            "word {off} of {}",
            self.len
        );
        // SAFETY: as in `word`; the mapping was made writable by the caller
        // (a read-only one faults with SIGSEGV, which the tool reports).
        unsafe { std::ptr::write_volatile(self.ptr.add(off / 8), v) }
    }

    /// The mapping as 64-bit words (a fault on a bad page is a SIGBUS, which
    /// the case sees, as it should).
    pub fn words(&self) -> &[u64] {
        // SAFETY: the mapping is `len` bytes, page aligned (so u64 aligned),
        // and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len / 8) }
    }

    /// The words, writable (for a mapping made with `write`).
    pub fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in `words`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len / 8) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range was mapped by `new` (or handed over through
        // `from_raw`) and no slice of it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
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
