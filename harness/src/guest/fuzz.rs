//! `fuzz-files`: exercise every file of a fuzzed famfsd scenario the way a
//! reader would, and say what the kernel did ([`Observation`]). Each file
//! runs in a child (`fuzz-file`), watched for a task stuck in D state;
//! the kernel log lines it caused go with its observation.

use super::mmap;
use super::sys::{errno_name, KmsgCursor};
use super::tools::pattern_word;
use crate::contract::fuzz::{Observation, Probe, BEGIN};
use crate::server::scenario::Config;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Exit status of `fuzz-files` when a task hung: the boot is spoiled.
pub const HUNG: i32 = 4;
/// Reads per file, at most.
const PROBES: usize = 12;
/// Faults per file, at most.
const FAULTS: usize = 4;

/// The scenario's fmap files, in tree order.
fn fmap_files(cfg: &Config) -> Vec<String> {
    use crate::server::scenario::NodeKind;
    cfg.nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::File { fmap: Some(_), .. }))
        .map(|n| n.path.clone())
        .collect()
}

/// Whether the scenario breaks its GET_DAXDEV replies (the fuzzer gives
/// only replies that name no usable device).
pub fn daxdev_refused(cfg: &Config) -> bool {
    use crate::server::fault::FaultClass;
    cfg.rules
        .iter()
        .any(|r| r.fault.class() == FaultClass::Daxdev)
}

/// The timeout scale of the run (TCG is slower).
fn scale() -> f64 {
    std::env::var(crate::contract::env::TIMEOUT_SCALE)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// `fuzz-files SCENARIO MOUNT PROFILE [--judge]`: one observation line per
/// file (with `--judge`: the model's verdict on it instead, as a replayed
/// case prints it). Exit [`HUNG`] after a file hung a task (the rest are
/// not done: the VM must restart).
pub fn files(scenario: &str, mount: &str, profile: Option<&str>, judge: bool) -> Result<i32> {
    let cfg = Config::load(Path::new(scenario), profile)?;
    let daxdev_refused = daxdev_refused(&cfg);
    for path in fmap_files(&cfg) {
        println!("{BEGIN}{path}");
        super::tools::sync_output()?;
        let mut kmsg = KmsgCursor::at_end()?;
        let mut obs = watch(scenario, &path, mount, profile)?;
        obs.kmsg = kmsg.read_new();
        if judge {
            let j = crate::server::oracle::judge(cfg.clone(), &obs, daxdev_refused)?;
            if j.disagreements.is_empty() {
                println!("{path}: as a correct kernel");
            }
            for d in j.disagreements {
                println!("{}", d.text);
            }
        } else {
            println!("{}", obs.line());
        }
        if obs.hang.is_some() {
            return Ok(HUNG);
        }
    }
    Ok(0)
}

/// Run `fuzz-file` for `path` in a child; a task of ours in D state at one
/// place for 3 s (x the timeout scale) is a hang: a correct kernel leaves D
/// within milliseconds here, nothing waits on a disk.
fn watch(scenario: &str, path: &str, mount: &str, profile: Option<&str>) -> Result<Observation> {
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(["fuzz-file", scenario, path, mount]);
    cmd.args(profile);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("starting fuzz-file")?;
    let stuck_for = Duration::from_secs_f64(3.0 * scale());
    let give_up = Duration::from_secs_f64(60.0 * scale());
    let start = Instant::now();
    let mut stuck: Option<(String, Instant)> = None;
    let hung = |w: String| Observation {
        path: path.into(),
        open: "hung".into(),
        hang: Some(w),
        ..Default::default()
    };
    loop {
        if child.try_wait()?.is_some() {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            return Ok(text
                .lines()
                .find_map(Observation::parse)
                .unwrap_or_else(|| Observation {
                    path: path.into(),
                    open: "?".into(),
                    error: Some(format!("fuzz-file ended {} without a result", out.status)),
                    ..Default::default()
                }));
        }
        match (d_state_wchan(), &stuck) {
            (Some(w), Some((was, since))) if *was == w => {
                if since.elapsed() >= stuck_for {
                    return Ok(hung(w));
                }
            }
            (Some(w), _) => stuck = Some((w, Instant::now())),
            (None, _) => stuck = None,
        }
        if start.elapsed() > give_up {
            let _ = child.kill();
            return Ok(hung("(no end after 60 s)".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where a user task of this VM sleeps uninterruptibly, if one does.
fn d_state_wchan() -> Option<String> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, ppid.
        let mut f = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace())?;
        let (state, ppid) = (f.next(), f.next());
        // Kernel threads are children of kthreadd (2) or are it.
        if state == Some("D") && ppid != Some("2") && pid != "2" {
            let w = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            return Some(if w.is_empty() { "?".into() } else { w });
        }
    }
    None
}

/// `fuzz-file SCENARIO PATH MOUNT [PROFILE]`: open, stat, reads and
/// faults at the sampled offsets, close, open again; one observation line.
pub fn file(scenario: &str, path: &str, mount: &str, profile: Option<&str>) -> Result<String> {
    let cfg = Config::load(Path::new(scenario), profile)?;
    let fmap = crate::server::expect::served_fmap(cfg, path)?;
    let full = format!("{mount}{path}");
    let mut obs = Observation {
        path: path.into(),
        dev_size: std::env::var(crate::contract::env::DAX_NAME)
            .ok()
            .and_then(|n| super::dax::device_info(&n).ok())
            .map(|d| d.size),
        ..Default::default()
    };
    let f = match std::fs::File::open(&full) {
        Err(e) => {
            obs.open = errno_name(e.raw_os_error().unwrap_or(0));
            obs.reopen = Some(super::tools::open_errno(&full));
            return Ok(obs.line());
        }
        Ok(f) => f,
    };
    obs.open = "ok".into();
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    obs.size = Some(size);
    obs.dax = match super::tools::dax_attr(&full).trim() {
        "dax" => Some(true),
        "not dax" => Some(false),
        _ => None,
    };
    let probes = fmap
        .as_ref()
        .map(|m| sample(m, size, path))
        .unwrap_or_default();
    for &(off, dev) in &probes {
        obs.reads.push(Probe {
            off,
            dev,
            got: read_at(&f, off, size, dev),
        });
    }
    // Faults cost a process each: the file's ends and the first
    // boundaries.
    let n = probes.len();
    let mut picks: Vec<usize> = [0, n.saturating_sub(1), 1, n / 2]
        .into_iter()
        .filter(|&k| k < n)
        .collect();
    picks.sort_unstable();
    picks.dedup();
    for &(off, dev) in picks.iter().take(FAULTS).map(|&k| &probes[k]) {
        let page = off & !4095;
        let line = mmap::probe(&full, page, "read", dev.map(|d| d - (off - page)))?;
        let got = line
            .split_once(": ")
            .map_or(line.as_str(), |(_, r)| r)
            .trim();
        let got = match got {
            g if g.starts_with("ok, device data") => "data".to_string(),
            g if g.starts_with("ok, 0x") => "other".to_string(),
            "ok" => "ok".to_string(),
            g => g.to_string(),
        };
        obs.faults.push(Probe {
            off: page,
            dev: dev.map(|d| d - (off - page)),
            got,
        });
    }
    drop(f);
    obs.reopen = Some(super::tools::open_errno(&full));
    Ok(obs.line())
}

/// Offsets to probe: the file's first and last page, each extent's (or
/// strip chunk's) first and last page for the first runs and the last one,
/// and two pseudo-random pages, each with the device offset the fmap names
/// for it (on device 0).
fn sample(fmap: &famfs_proto::Fmap, size: u64, path: &str) -> Vec<(u64, Option<u64>)> {
    let runs = fmap.segments(4096);
    let page = |o: u64| o & !4095;
    let mut offs = vec![0, page(size.saturating_sub(1))];
    for r in runs.iter().take(6).chain(runs.last()) {
        offs.push(page(r.file_offset));
        offs.push(page(r.file_offset.saturating_add(r.len).saturating_sub(1)));
    }
    let mut h = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    for _ in 0..2 {
        h = h
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if size > 0 {
            offs.push(page(h % size));
        }
    }
    offs.retain(|&o| o < size);
    offs.sort_unstable();
    offs.dedup();
    offs.truncate(PROBES);
    offs.into_iter()
        .map(|o| {
            let dev = runs
                .iter()
                .find(|r| o >= r.file_offset && o - r.file_offset < r.len && r.devindex == 0)
                .map(|r| r.dev_offset.wrapping_add(o - r.file_offset));
            (o, dev)
        })
        .collect()
}

/// pread a page (or to the end of the file) at `off`: `data`, `other`,
/// `short N` or the errno.
fn read_at(f: &std::fs::File, off: u64, size: u64, dev: Option<u64>) -> String {
    let len = (size - off).min(4096) as usize;
    let mut buf = vec![0u8; len];
    let n = match rustix::io::pread(f, &mut buf, off) {
        Ok(n) => n,
        Err(e) => return errno_name(e.raw_os_error()),
    };
    if n < len {
        return format!("short {n}");
    }
    let Some(dev) = dev else {
        return "ok".into();
    };
    let same = buf.iter().enumerate().all(|(i, b)| {
        let at = dev.wrapping_add(i as u64);
        pattern_word(at & !7).to_le_bytes()[(at & 7) as usize] == *b
    });
    if same { "data" } else { "other" }.into()
}
