//! Guest tools for famfs mmap cases: fault granularity counted with the
//! kernel's `fs_dax` tracepoints, accesses that may end in a signal (run in
//! a child so the case sees the signal's name), MAP_SHARED writes, and the
//! operations a mapping must survive (mprotect, mremap, MADV_DONTNEED).

use crate::guest::sys::{errno_name, Mapping};
use crate::guest::tools::pattern_word;
use anyhow::{bail, Context, Result};
use rustix::mm::{MapFlags, ProtFlags};

const PMD: usize = 2 << 20;
const PAGE: usize = 4096;
const TRACING: &str = "/sys/kernel/tracing";

type Map = Mapping;

/// An address range of `len` bytes starting 2 MiB aligned (plus `skew`),
/// reserved PROT_NONE so that a MAP_FIXED mapping there replaces only
/// what we own. The kernel picks unaligned addresses for famfs otherwise.
fn aligned_window(len: usize, skew: usize) -> Result<*mut u8> {
    // SAFETY: an anonymous PROT_NONE reservation; it is never unmapped as a
    // whole (the process is a short-lived tool).
    let base = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len + 2 * PMD,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::NORESERVE,
        )
    }
    .context("reserving address space")? as usize;
    Ok((base.next_multiple_of(PMD) + skew) as *mut u8)
}

fn tracing_dir() -> Result<&'static str> {
    if !std::path::Path::new(TRACING).join("events").exists() {
        rustix::mount::mount(
            "nodev",
            TRACING,
            "tracefs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .context("mounting tracefs on /sys/kernel/tracing")?;
    }
    Ok(TRACING)
}

fn write_sys(path: &str, v: &str) -> Result<()> {
    std::fs::write(path, v).with_context(|| format!("writing {v:?} to {path}"))
}

/// `fault-count FILE FILE_OFF LEN aligned|unaligned`: map LEN bytes of FILE
/// at a 2 MiB-aligned address (or one page past it), read one word of every
/// page, and count this process's successful DAX faults by size from the
/// `fs_dax` tracepoints: "pmd faults N, pte faults M".
pub fn fault_count(file: &str, file_off: u64, len: usize, how: &str) -> Result<String> {
    let skew = match how {
        "aligned" => 0,
        "unaligned" => PAGE,
        other => bail!("fault-count: `{other}` is not aligned or unaligned"),
    };
    let t = tracing_dir()?;
    let events = ["dax_pmd_fault_done", "dax_pte_fault_done"];
    for e in events {
        let p = format!("{t}/events/fs_dax/{e}/enable");
        if !std::path::Path::new(&p).exists() {
            bail!(
                "no tracepoint fs_dax/{e}: the kernel needs CONFIG_FS_DAX and CONFIG_EVENT_TRACING"
            );
        }
        write_sys(&p, "1")?;
    }
    write_sys(&format!("{t}/trace"), "")?;
    write_sys(&format!("{t}/tracing_on"), "1")?;
    let f = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
    let at = aligned_window(len, skew)?;
    let m = Map::new(&f, Some(at), len, file_off, false, false)
        .map_err(|e| anyhow::anyhow!("mmap {file}: {e}"))?;
    for page in (0..len).step_by(PAGE) {
        m.word(page);
    }
    for e in events {
        write_sys(&format!("{t}/events/fs_dax/{e}/enable"), "0")?;
    }
    let trace = std::fs::read_to_string(format!("{t}/trace"))?;
    let me = format!("-{} ", std::process::id());
    let count = |event: &str| {
        trace
            .lines()
            .filter(|l| l.contains(&me) && l.contains(&format!("{event}:")))
            .filter(|l| l.contains("NOPAGE") && !l.contains("FALLBACK"))
            .count()
    };
    Ok(format!(
        "pmd faults {}, pte faults {}\n",
        count(events[0]),
        count(events[1])
    ))
}

/// What one access did, as the case prints it.
fn describe_word(w: u64, dev_guess: u64) -> String {
    if w == pattern_word(dev_guess) {
        "device data".into()
    } else {
        format!("{w:#018x}")
    }
}

/// `mmap-touch FILE OFF read|write|write-private|poison [DEV_OFF]`: one
/// access through a mapping of the page holding OFF (the process dies of
/// the signal the kernel sends; `mmap-probe` reports it). A read prints
/// whether the word is the device data at DEV_OFF; `poison` reads the page,
/// reports a memory failure of it (MADV_HWPOISON) and reads it again;
/// `watch` asks for early memory-failure signals (PR_MCE_KILL_EARLY: a
/// failure reported by another process signals this one at once, as it
/// would not by default), reads the page, creates `watching` in the working
/// directory, waits there for `go` (something else happens to the page
/// meanwhile) and reads it again.
pub fn touch(file: &str, off: u64, op: &str, dev_off: Option<u64>) -> Result<String> {
    let write = !matches!(op, "read" | "poison" | "watch");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(write && op != "write-private")
        .open(file)
        .with_context(|| format!("opening {file}"))?;
    let page = off & !(PAGE as u64 - 1);
    let m = match Map::new(&f, None, PAGE, page, write, op == "write-private") {
        Ok(m) => m,
        Err(e) => return Ok(format!("mmap failed {e}\n")),
    };
    let at = (off - page) as usize & !7;
    if op == "watch" {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_MCE_KILL,
                libc::PR_MCE_KILL_SET,
                libc::PR_MCE_KILL_EARLY,
                0,
                0,
            )
        };
        if r != 0 {
            bail!(
                "prctl(PR_MCE_KILL_EARLY): {}",
                std::io::Error::last_os_error()
            );
        }
        m.word(at);
        std::fs::write("watching", "").context("creating `watching`")?;
        if !crate::guest::sys::wait_for("go", std::time::Duration::from_secs(300)) {
            bail!("mmap-touch watch: no `go` after 300 s");
        }
    }
    Ok(match op {
        "read" | "watch" => {
            let w = m.word(at);
            match dev_off {
                Some(d) => format!("ok, {}\n", describe_word(w, d)),
                None => "ok\n".into(),
            }
        }
        "write" | "write-private" => {
            m.set_word(at, !m.word(at));
            "ok\n".into()
        }
        "poison" => {
            // A memory failure of the mapped page (MADV_HWPOISON, as root):
            // the kernel may kill us right here (action required), or the
            // next access must.
            m.word(at);
            // SAFETY: the range is this mapping's page, owned by `m`.
            let r = unsafe {
                rustix::mm::madvise(m.as_ptr().cast(), PAGE, rustix::mm::Advice::LinuxHwPoison)
            };
            if let Err(e) = r {
                return Ok(format!(
                    "madvise(MADV_HWPOISON) failed {}\n",
                    errno_name(e.raw_os_error())
                ));
            }
            let w = m.word(at);
            match dev_off {
                Some(d) => format!("poisoned page still readable, {}\n", describe_word(w, d)),
                None => "poisoned page still readable\n".into(),
            }
        }
        other => bail!("mmap-touch: `{other}` is not read, watch, write, write-private or poison"),
    })
}

/// `mmap-probe FILE OFF OP [DEV_OFF]`: run `mmap-touch` in a child and
/// print "OP OFF: " and what happened: its line, or the signal it died of.
pub fn probe(file: &str, off: u64, op: &str, dev_off: Option<u64>) -> Result<String> {
    use std::os::unix::process::ExitStatusExt;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(["mmap-touch", file, &off.to_string(), op]);
    if let Some(d) = dev_off {
        cmd.arg(d.to_string());
    }
    let out = cmd.output().context("running mmap-touch")?;
    let what = match (out.status.code(), out.status.signal()) {
        (Some(0), _) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        (_, Some(s)) => crate::base::proc::signal_name(s),
        (Some(c), _) => format!("exit {c}: {}", String::from_utf8_lossy(&out.stderr).trim()),
        _ => "unknown end".into(),
    };
    Ok(format!("{op} {off}: {what}\n"))
}

/// `mmap-write FILE OFF LEN SEED`: fill LEN bytes at OFF through a shared
/// writable mapping with the pattern XOR SEED (as `pattern-check` with a
/// seed expects it at the same device offsets), then msync.
pub fn write_pattern(
    file: &str,
    off: u64,
    len: usize,
    dev_off: u64,
    seed: u64,
    read_first: bool,
) -> Result<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .with_context(|| format!("opening {file} read-write"))?;
    let m = match Map::new(&f, None, len, off, true, false) {
        Ok(m) => m,
        Err(e) => return Ok(format!("mmap: failed {e}\n")),
    };
    if read_first {
        let sum = (0..len).step_by(PAGE).fold(0u64, |a, i| a ^ m.word(i));
        std::hint::black_box(sum);
    }
    for i in (0..len).step_by(8) {
        m.set_word(i, pattern_word(dev_off + i as u64) ^ seed);
    }
    // SAFETY: the range is this mapping.
    unsafe { rustix::mm::msync(m.as_ptr().cast(), len, rustix::mm::MsyncFlags::SYNC) }
        .map_err(|e| anyhow::anyhow!("msync: {}", errno_name(e.raw_os_error())))?;
    let how = if read_first {
        ", each page read first"
    } else {
        ""
    };
    Ok(format!(
        "wrote {len} bytes at file offset {off} through MAP_SHARED{how}\n"
    ))
}

/// The pages `mmap-random` visits: `n` page offsets of a file of `size`
/// bytes, drawn with splitmix64 from `seed` (so `write` and a later
/// `check` with the same seed visit the same pages, in the same order).
fn random_pages(seed: u64, n: usize, size: u64) -> Vec<u64> {
    let pages = size / PAGE as u64;
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % pages * PAGE as u64
        })
        .collect()
}

/// The stamp `mmap-random write` puts in the word at file offset `off`:
/// it names the offset, so a page that shows up elsewhere in the file (two
/// file pages on one device page, a wrong extent) cannot pass for its own.
fn stamp(off: u64, seed: u64) -> u64 {
    off ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// `mmap-random FILE SEED N write|check`: faults at N pages of FILE drawn
/// at random (SEED) over the whole file, through one MAP_SHARED mapping of
/// all of it, in the drawn order, so the faults land all over the file's
/// extents (or strips). `write` maps it at a 2 MiB-aligned address (PMD
/// faults where the extents allow) and stamps every word of each page with
/// its file offset, then msyncs; `check` maps it one page off that
/// alignment (PTE faults only) and finds every stamp in its place, e.g.
/// after a remount. One line: what was done, or the first page that is
/// wrong and what it holds.
pub fn random(file: &str, seed: u64, n: usize, how: &str) -> Result<String> {
    let (write, skew) = match how {
        "write" => (true, 0),
        "check" => (false, PAGE),
        other => bail!("mmap-random: `{other}` is not write or check"),
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(file)
        .with_context(|| format!("opening {file}"))?;
    let size = f.metadata()?.len();
    if size < PAGE as u64 {
        bail!("{file}: {size} bytes, less than a page");
    }
    let len = size as usize / PAGE * PAGE;
    let m = match Map::new(&f, Some(aligned_window(len, skew)?), len, 0, write, false) {
        Ok(m) => m,
        Err(e) => return Ok(format!("mmap: failed {e}\n")),
    };
    let pages = random_pages(seed, n, size);
    for &p in &pages {
        for w in (0..PAGE as u64).step_by(8) {
            let off = p + w;
            if write {
                m.set_word(off as usize, stamp(off, seed));
            } else if m.word(off as usize) != stamp(off, seed) {
                let got = m.word(off as usize);
                // A stamp names its offset: undo it to say whose it is.
                let o = stamp(got, seed);
                let whose = if o < len as u64 && o.is_multiple_of(8) {
                    format!("the stamp of file offset {o:#x}")
                } else {
                    format!("{got:#018x}, no stamp")
                };
                return Ok(format!(
                    "page {p:#x} (fault {} of {n}): word {off:#x} holds {whose}\n",
                    pages.iter().position(|x| *x == p).unwrap_or(0) + 1
                ));
            }
        }
    }
    if write {
        // SAFETY: the range is this mapping.
        unsafe { rustix::mm::msync(m.as_ptr().cast(), len, rustix::mm::MsyncFlags::SYNC) }
            .map_err(|e| anyhow::anyhow!("msync: {}", errno_name(e.raw_os_error())))?;
    }
    let mib = size >> 20;
    Ok(match how {
        "write" => format!("{n} random pages of {mib} MiB stamped through an aligned mapping\n"),
        _ => format!(
            "{n} random pages of {mib} MiB hold their stamps through an unaligned mapping\n"
        ),
    })
}

/// Does every word of `m[from..from+len]` hold the device data at
/// `dev_off`...? The first bad word's offset otherwise.
fn first_bad(m: &Map, from: usize, len: usize, dev_off: u64) -> Option<usize> {
    (0..len)
        .step_by(8)
        .find(|i| m.word(from + i) != pattern_word(dev_off + *i as u64))
}

/// `mmap-ops FILE DEV_OFF`: on a file of at least 4 MiB whose first 4 MiB
/// are device bytes DEV_OFF.., check what a mapping must survive, one line
/// each: MADV_DONTNEED then re-fault, mprotect away and back, mremap to
/// twice the size (the new half faults in), and a MAP_PRIVATE write that
/// the file never sees.
pub fn ops(file: &str, dev_off: u64) -> Result<String> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
    let mut out = String::new();
    let verdict = |bad: Option<usize>| match bad {
        None => "same device data".to_string(),
        Some(o) => format!("WRONG data at offset {o}"),
    };
    // MADV_DONTNEED drops the page table entries; the next access faults
    // them in again from the fmap.
    let m = Map::new(&f, None, PMD, 0, false, false).map_err(|e| anyhow::anyhow!("mmap: {e}"))?;
    first_bad(&m, 0, PMD, dev_off);
    // SAFETY: the range is this mapping.
    unsafe { rustix::mm::madvise(m.as_ptr().cast(), PMD, rustix::mm::Advice::LinuxDontNeed) }
        .map_err(|e| anyhow::anyhow!("madvise: {}", errno_name(e.raw_os_error())))?;
    out += &format!(
        "MADV_DONTNEED then re-fault: {}\n",
        verdict(first_bad(&m, 0, PMD, dev_off))
    );
    // mprotect to nothing and back.
    // SAFETY: the range is this mapping.
    unsafe {
        rustix::mm::mprotect(m.as_ptr().cast(), PMD, rustix::mm::MprotectFlags::empty()).and_then(
            |_| rustix::mm::mprotect(m.as_ptr().cast(), PMD, rustix::mm::MprotectFlags::READ),
        )
    }
    .map_err(|e| anyhow::anyhow!("mprotect: {}", errno_name(e.raw_os_error())))?;
    out += &format!(
        "mprotect none then read: {}\n",
        verdict(first_bad(&m, 0, PMD, dev_off))
    );
    // mremap to 4 MiB: the second half is file bytes 2M-4M.
    let (old, _) = m.into_raw();
    // SAFETY: the old range was `m`'s, whose ownership ended above;
    // MAYMOVE lets the kernel pick the new place, which `grown` then owns.
    let grown = unsafe {
        rustix::mm::mremap(old.cast(), PMD, 2 * PMD, rustix::mm::MremapFlags::MAYMOVE)
            .map(|p| Map::from_raw(p.cast(), 2 * PMD))
    }
    .map_err(|e| anyhow::anyhow!("mremap: {}", errno_name(e.raw_os_error())))?;
    out += &format!(
        "mremap to 4 MiB: {}\n",
        verdict(first_bad(&grown, 0, 2 * PMD, dev_off))
    );
    drop(grown);
    // A private write is the writer's own copy.
    let p = Map::new(&f, None, PAGE, 0, true, true).map_err(|e| anyhow::anyhow!("mmap: {e}"))?;
    p.set_word(0, 0x5eed);
    let shared =
        Map::new(&f, None, PAGE, 0, false, false).map_err(|e| anyhow::anyhow!("mmap: {e}"))?;
    out += &format!(
        "MAP_PRIVATE write: the writer sees {}, a shared mapping sees {}\n",
        if p.word(0) == 0x5eed {
            "its write"
        } else {
            "no write"
        },
        describe_word(shared.word(0), dev_off)
    );
    Ok(out)
}

/// `mmap-hold FILE READY [GO DEV_OFF]`: map 2 MiB of FILE, touch its first
/// page, close the file and create READY. Without GO, sleep until killed
/// (a mapping that outlives the case's other steps). With GO, wait for that
/// file, then read the whole mapping (faulting in the pages not yet
/// touched) and print whether it is the device data at DEV_OFF.
pub fn hold(file: &str, ready: &str, go: Option<(&str, u64)>) -> Result<String> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
    let m = Map::new(&f, None, PMD, 0, false, false).map_err(|e| anyhow::anyhow!("mmap: {e}"))?;
    m.word(0);
    drop(f);
    std::fs::write(ready, "")?;
    let Some((go, dev_off)) = go else {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    };
    while !std::path::Path::new(go).exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(match first_bad(&m, 0, PMD, dev_off) {
        None => "the held mapping: device data\n".into(),
        Some(o) => format!("the held mapping: WRONG data at offset {o}\n"),
    })
}

/// `size-change FILE DEV_OFF stat|chmod|truncate`: with FILE open and its
/// first 2 MiB mapped and touched, make the kernel take a size from the
/// server again (`stat`: LOOKUP and GETATTR; `chmod`: a SETATTR of the mode
/// only; `truncate`: ftruncate to 1 MiB: a SETATTR of the size), print what that
/// returned, then read the first 4 KiB twice through the open descriptor
/// (`device data` when it is the device's bytes at DEV_OFF, else the errno).
pub fn size_change(file: &str, dev_off: u64, how: &str) -> Result<String> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
    let m = Map::shared(&f, PMD, 0, false).map_err(|e| anyhow::anyhow!("mmap: {e}"))?;
    m.word(0);
    let errno = |e: rustix::io::Errno| errno_name(e.raw_os_error());
    let mut out = match how {
        "stat" => match rustix::fs::stat(file) {
            Ok(st) => format!("stat: size {}\n", st.st_size),
            Err(e) => format!("stat: {}\n", errno(e)),
        },
        "chmod" => match rustix::fs::chmod(file, rustix::fs::Mode::from_raw_mode(0o600)) {
            Ok(()) => "chmod: ok\n".to_string(),
            Err(e) => format!("chmod: {}\n", errno(e)),
        },
        "truncate" => {
            let r = match std::fs::OpenOptions::new().write(true).open(file) {
                Ok(w) => match rustix::fs::ftruncate(&w, (PMD / 2) as u64) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => errno(e),
                },
                Err(e) => format!(
                    "open for writing failed {}",
                    errno_name(e.raw_os_error().unwrap_or(0))
                ),
            };
            let size = rustix::fs::fstat(&f).map(|st| st.st_size).unwrap_or(-1);
            format!("truncate to 1 MiB: {r}\nsize now: {size}\n")
        }
        other => bail!("size-change: `{other}` is not stat, chmod or truncate"),
    };
    for n in 1..=2 {
        let mut buf = vec![0u8; PAGE];
        let what = match rustix::io::pread(&f, &mut buf, 0) {
            Ok(got) if got < PAGE => format!("short, {got} bytes"),
            Ok(_) => {
                let same = buf.chunks_exact(8).enumerate().all(|(i, c)| {
                    u64::from_le_bytes(c.try_into().unwrap())
                        == pattern_word(dev_off + 8 * i as u64)
                });
                if same { "device data" } else { "WRONG data" }.to_string()
            }
            Err(e) => errno(e),
        };
        out += &format!("read {n}: {what}\n");
    }
    drop(m);
    Ok(out)
}

/// `mmap-threads FILE LEN DEV_OFF N`: N threads of one process fault one
/// shared mapping of FILE's first LEN bytes at the same time, each starting
/// at another page and reading the first and last word of every page; the
/// line says whether all of them saw the device data at DEV_OFF.
pub fn threads(file: &str, len: usize, dev_off: u64, n: usize) -> Result<String> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
    let m = Map::shared(&f, len, 0, false).map_err(|e| anyhow::anyhow!("mmap: {e}"))?;
    let (base, pages) = (m.as_ptr() as usize, len / PAGE);
    let start = std::sync::Barrier::new(n);
    let bad = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..n {
            let (start, bad) = (&start, &bad);
            s.spawn(move || {
                start.wait();
                for i in 0..pages {
                    let page = (i + t * pages / n) % pages * PAGE;
                    for off in [page, page + PAGE - 8] {
                        // SAFETY: `off` is inside the mapping, which lives
                        // until the scope (and every thread) has ended; the
                        // read is volatile, as Mapping::word's is.
                        let w = unsafe { std::ptr::read_volatile((base + off) as *const u64) };
                        if w != pattern_word(dev_off + off as u64) {
                            bad.lock().unwrap_or_else(|e| e.into_inner()).push((t, off));
                            return;
                        }
                    }
                }
            });
        }
    });
    drop(m);
    let bad = bad.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(match bad.first() {
        None => format!("{n} threads faulting one mapping of {len} bytes: all saw the device data\n"),
        Some((t, off)) => format!(
            "{n} threads faulting one mapping of {len} bytes: {} saw other data (thread {t} at offset {off})\n",
            bad.len()
        ),
    })
}

/// `umount-errno PATH`: umount(2) and print "ok" or the errno's name.
pub fn umount_errno(path: &str) -> String {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::empty()) {
        Ok(()) => "umount: ok\n".into(),
        Err(e) => format!("umount: {}\n", errno_name(e.raw_os_error())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_pages_cover_the_file_and_repeat_with_the_seed() {
        let size = 512u64 << 20;
        let a = random_pages(7, 4096, size);
        assert_eq!(a, random_pages(7, 4096, size));
        assert_ne!(a, random_pages(8, 4096, size));
        assert!(a.iter().all(|p| p % PAGE as u64 == 0 && *p < size));
        // Spread over the file: every eighth of it gets some.
        for part in 0..8 {
            let lo = size / 8 * part;
            assert!(
                a.iter().any(|p| (lo..lo + size / 8).contains(p)),
                "part {part}"
            );
        }
        assert_ne!(stamp(0, 7), stamp(8, 7));
        assert_ne!(stamp(0, 7), stamp(0, 8));
        assert_eq!(stamp(stamp(0x1234_5678, 7), 7), 0x1234_5678);
    }

    /// A file holding the device pattern of `dev_off..`, one word spoiled
    /// at `spoil` if given.
    fn pattern_file(len: usize, dev_off: u64, spoil: Option<usize>) -> tempfile::NamedTempFile {
        let mut bytes = Vec::with_capacity(len);
        for off in (0..len).step_by(8) {
            let w = pattern_word(dev_off + off as u64);
            let w = if Some(off) == spoil { !w } else { w };
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    #[test]
    fn threads_see_the_pattern_or_name_where_they_did_not() {
        let good = pattern_file(1 << 20, 8 << 20, None);
        let p = good.path().to_str().unwrap();
        assert_eq!(
            threads(p, 1 << 20, 8 << 20, 4).unwrap(),
            "4 threads faulting one mapping of 1048576 bytes: all saw the device data\n"
        );
        let bad = pattern_file(1 << 20, 8 << 20, Some(3 * PAGE + PAGE - 8));
        let got = threads(bad.path().to_str().unwrap(), 1 << 20, 8 << 20, 4).unwrap();
        assert!(
            got.contains(": 4 saw other data") && got.contains("at offset 16376"),
            "{got}"
        );
    }
}
