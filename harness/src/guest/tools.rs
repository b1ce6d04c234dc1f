//! Small file tools the cases call through `fh-guest`, with output stable
//! across busybox and coreutils (golden files compare it).

use super::sys::{errno_name, Mapping};
use anyhow::{Context, Result};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn errno_of(e: &std::io::Error) -> String {
    errno_name(e.raw_os_error().unwrap_or(0))
}

/// `file PATH`: size and mode, then the content (or why it can't be read).
pub fn file(path: &str) -> String {
    let md = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return format!("stat {path}: failed {}\n", errno_of(&e)),
    };
    let mut out = format!("size {} mode {:o}\n", md.size(), md.mode() & 0o7777);
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return out + &format!("open: failed {}\n", errno_of(&e)),
    };
    let mut buf = Vec::new();
    match f.read_to_end(&mut buf) {
        Ok(n)
            if buf
                .iter()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) =>
        {
            out.push_str(&format!(
                "read {n} bytes:\n{}",
                String::from_utf8_lossy(&buf)
            ));
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(n) => out.push_str(&format!("read {n} bytes (binary)\n")),
        Err(e) => out.push_str(&format!("read: failed {}\n", errno_of(&e))),
    }
    out
}

/// `dax-attr PATH`: whether the kernel serves the file through DAX, as
/// statx reports it (STATX_ATTR_DAX).
pub fn dax_attr(path: &str) -> String {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    match statx(CWD, path, AtFlags::empty(), StatxFlags::BASIC_STATS) {
        Err(e) => format!("statx {path}: failed {}\n", errno_name(e.raw_os_error())),
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::DAX) => {
            let dax = st.stx_attributes.contains(StatxAttributes::DAX);
            format!("{}\n", if dax { "dax" } else { "not dax" })
        }
        Ok(_) => "dax attribute not reported\n".into(),
    }
}

/// Count requests in a famfsd JSON-lines log by opcode name; `NAME@PATH`
/// counts only the requests of that opcode for that file.
pub fn log_counts(log: &str, names: &[String]) -> Result<String> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {log}"))?;
    let mut counts = vec![0usize; names.len()];
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{log}: not JSON: {line}"))?;
        if v.get("event").and_then(|e| e.as_str()) != Some("request") {
            continue;
        }
        let name = v.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let path = v.get("path").and_then(|n| n.as_str()).unwrap_or("");
        for (i, n) in names.iter().enumerate() {
            let hit = match n.split_once('@') {
                Some((op, p)) => op == name && p == path,
                None => n == name,
            };
            if hit {
                counts[i] += 1;
            }
        }
    }
    Ok(names
        .iter()
        .zip(counts)
        .map(|(n, c)| format!("{n} {c}\n"))
        .collect())
}

/// The pattern word stored at device byte offset `off` (a multiple of 8):
/// each word names its own device address, so data read through a famfs
/// file shows which device offset it really came from.
pub fn pattern_word(off: u64) -> u64 {
    let mut z = off.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `pattern-fill DEV OFFSET LEN`: write the pattern into a devdax device.
pub fn pattern_fill(dev: &str, off: u64, len: usize) -> Result<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .with_context(|| format!("opening {dev}"))?;
    let mut m = match Mapping::shared(&f, len, off, true) {
        Ok(m) => m,
        Err(e) => return Ok(format!("mmap {dev}: failed {e}\n")),
    };
    for (i, w) in m.words_mut().iter_mut().enumerate() {
        *w = pattern_word(off + 8 * i as u64);
    }
    Ok(format!("filled {len} bytes at device offset {off}\n"))
}

/// `file-write FILE FILE_OFFSET LEN DEV_OFFSET SEED`: write(2) the pattern
/// of the device at DEV_OFFSET XOR SEED at FILE_OFFSET (one pwrite): the
/// count the kernel returned, or the errno. `pattern-check` with the same
/// seed finds the bytes.
pub fn file_write(
    path: &str,
    file_off: u64,
    len: usize,
    dev_off: u64,
    seed: u64,
) -> Result<String> {
    let f = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) => {
            return Ok(format!(
                "open {path} for writing: failed {}\n",
                errno_of(&e)
            ))
        }
    };
    let buf: Vec<u8> = (0..len as u64)
        .step_by(8)
        .flat_map(|i| (pattern_word(dev_off + i) ^ seed).to_le_bytes())
        .take(len)
        .collect();
    Ok(match rustix::io::pwrite(&f, &buf, file_off) {
        Ok(n) => format!("write {len} bytes at file offset {file_off}: {n}\n"),
        Err(e) => format!(
            "write {len} bytes at file offset {file_off}: {}\n",
            errno_name(e.raw_os_error())
        ),
    })
}

/// `pattern-check FILE FILE_OFFSET LEN DEV_OFFSET mmap|read [SEED]`: the
/// bytes of FILE at FILE_OFFSET must be the pattern of the device at
/// DEV_OFFSET (XOR SEED: what `mmap-write` wrote there).
pub fn pattern_check(
    path: &str,
    file_off: u64,
    len: usize,
    dev_off: u64,
    how: &str,
    seed: u64,
) -> Result<String> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Ok(format!("open {path}: failed {}\n", errno_of(&e))),
    };
    let data: Vec<u64> = match how {
        "mmap" => {
            match Mapping::shared(&f, len, file_off, false) {
                // A fault here is a SIGBUS: the case sees the signal, as it should.
                Ok(m) => m.words().to_vec(),
                Err(e) => return Ok(format!("mmap: failed {e}\n")),
            }
        }
        "read" => {
            let mut buf = vec![0u8; len];
            let n = match rustix::io::pread(&f, &mut buf, file_off) {
                Ok(n) => n,
                Err(e) => return Ok(format!("read: failed {}\n", errno_name(e.raw_os_error()))),
            };
            if n < len {
                return Ok(format!("read: short, {n} of {len} bytes\n"));
            }
            buf.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect()
        }
        other => anyhow::bail!("pattern-check: `{other}` is not mmap or read"),
    };
    let bad: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(i, w)| **w != pattern_word(dev_off + 8 * *i as u64) ^ seed)
        .map(|(i, _)| i)
        .collect();
    let what = if seed == 0 {
        "device data".to_string()
    } else {
        format!("written data (seed {seed:#x})")
    };
    Ok(match bad.first() {
        None => {
            format!("{how} {len} bytes at file offset {file_off}: {what} from offset {dev_off}\n")
        }
        Some(i) => format!(
            "{how} at file offset {file_off}: {} of {} words differ, first at byte {}\n",
            bad.len(),
            data.len(),
            i * 8
        ),
    })
}

/// `open-errno PATH`: `ok`, or the name of the errno open(2) fails with.
pub fn open_errno(path: &str) -> String {
    open_errno_with(path, "read").unwrap_or_else(|e| format!("{e:#}"))
}

/// `open-errno PATH [read|write|trunc]`: open read-only, read-write, or
/// read-write with O_TRUNC.
pub fn open_errno_with(path: &str, how: &str) -> Result<String> {
    let mut o = std::fs::OpenOptions::new();
    match how {
        "read" => o.read(true),
        "write" => o.read(true).write(true),
        "trunc" => o.read(true).write(true).truncate(true),
        other => anyhow::bail!("open-errno: `{other}` is not read, write or trunc"),
    };
    Ok(match o.open(path) {
        Ok(_) => "ok".into(),
        Err(e) => errno_of(&e),
    })
}

/// `fmap-check SCENARIO PATH FILE [PROFILE]`: every byte of FILE that the
/// fmap famfsd serves for PATH puts on device 0 reads (through read and
/// through mmap) as the device pattern at that place.
pub fn fmap_check(scenario: &str, path: &str, file: &str, profile: Option<&str>) -> Result<String> {
    let cfg = crate::server::scenario::Config::load(Path::new(scenario), profile)?;
    let Some(fmap) = crate::server::expect::served_fmap(cfg, path)? else {
        return Ok(format!("{path}: famfsd serves no fmap to check\n"));
    };
    // A few MiB per run are enough to see a wrong mapping.
    let runs: Vec<_> = fmap
        .segments(256)
        .into_iter()
        .filter(|s| s.devindex == 0)
        .collect();
    let mut out = String::new();
    if runs.is_empty() {
        // Nothing is mapped (chunk size 0...): touch the file anyway, as
        // any reader would.
        let line = match std::fs::File::open(file) {
            Err(e) => format!("open: failed {}", errno_of(&e)),
            Ok(f) => {
                let mut b = [0u8; 4096];
                match rustix::io::pread(&f, &mut b, 0) {
                    Ok(n) => format!("{n} bytes"),
                    Err(e) => format!("failed {}", errno_name(e.raw_os_error())),
                }
            }
        };
        return Ok(format!(
            "read at 0 of a file whose fmap maps nothing: {line}\n"
        ));
    }
    // One open file for the whole check: the inode (and the DAX entries its
    // faults made) stays while every run is read, as in a reader that keeps
    // the file open, whatever the FUSE caches drop between the opens below.
    let _held = std::fs::File::open(file).ok();
    for how in ["read", "mmap"] {
        let mut bytes = 0u64;
        let mut bad = None;
        for r in &runs {
            let len = r.len.min(4 << 20) as usize;
            let line = pattern_check(file, r.file_offset, len, r.dev_offset, how, 0)?;
            if !line.contains("device data from offset") {
                bad = Some(line);
                break;
            }
            bytes += len as u64;
        }
        out += &match bad {
            None => format!(
                "{how}: {} runs, {bytes} bytes: the device data the fmap names\n",
                runs.len()
            ),
            Some(line) => format!("{how}: {line}"),
        };
    }
    Ok(out)
}

/// `sync-output`: print a sync line on the case's output and wait until the
/// runner has sent everything printed before it to the host. A case about
/// to crash the kernel calls it so its output is not lost with the VM.
pub fn sync_output() -> Result<()> {
    use crate::contract::{env, marker};
    let dir = std::env::var(env::CASE_DIR).with_context(|| {
        format!(
            "sync-output: {} is not set (run it from a case)",
            env::CASE_DIR
        )
    })?;
    let scale: f64 = std::env::var(env::TIMEOUT_SCALE)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    // Output redirected away from the runner (to /dev/null, a file) never
    // reaches the host: nothing to wait for.
    let ours = std::env::var(env::OUTPUT_PIPE).ok();
    let stdout_id =
        rustix::fs::fstat(std::io::stdout()).map(|st| format!("{}:{}", st.st_dev, st.st_ino));
    if ours.is_none() || stdout_id.ok() != ours {
        return Ok(());
    }
    let token = format!(
        "{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let ack = marker::sync_ack(std::path::Path::new(&dir), &token);
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}{token}", marker::SYNC_OUTPUT)?;
        out.flush()?;
    }
    let limit = std::time::Duration::from_secs_f64(10.0 * scale.max(1.0));
    let start = std::time::Instant::now();
    while !ack.exists() {
        if start.elapsed() > limit {
            anyhow::bail!(
                "sync-output: the runner did not answer within {:.0} s (is stdout the case's output, not redirected?)",
                limit.as_secs_f64()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = std::fs::remove_file(&ack);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_names_its_offset() {
        assert_ne!(pattern_word(0), pattern_word(8));
        assert_eq!(pattern_word(4096), pattern_word(4096));
    }

    #[test]
    fn check_reads_back_a_file_written_with_the_pattern() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let dev_off = 2u64 << 20;
        let bytes: Vec<u8> = (0..8192u64)
            .step_by(8)
            .flat_map(|o| pattern_word(dev_off + o).to_le_bytes())
            .collect();
        std::fs::write(&p, &bytes).unwrap();
        let ps = p.display().to_string();
        assert_eq!(
            pattern_check(&ps, 0, 8192, dev_off, "read", 0).unwrap(),
            "read 8192 bytes at file offset 0: device data from offset 2097152\n"
        );
        assert_eq!(
            pattern_check(&ps, 0, 4096, dev_off, "mmap", 0).unwrap(),
            "mmap 4096 bytes at file offset 0: device data from offset 2097152\n"
        );
        assert!(pattern_check(&ps, 4096, 4096, 0, "read", 0)
            .unwrap()
            .contains("512 of 512 words differ"));
        assert!(file(&ps).starts_with("size 8192 mode 644\nread 8192 bytes (binary)"));
        assert!(file("/nonexistent").contains("failed ENOENT"));
    }

    #[test]
    fn counts_requests_by_name() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        std::fs::write(&p, "{\"event\":\"request\",\"name\":\"GET_FMAP\"}\n{\"event\":\"write_failed\",\"name\":\"GET_FMAP\"}\n{\"event\":\"request\",\"name\":\"OPEN\"}\n").unwrap();
        let out = log_counts(
            &p.display().to_string(),
            &["GET_FMAP".into(), "OPEN".into(), "READ".into()],
        )
        .unwrap();
        assert_eq!(out, "GET_FMAP 1\nOPEN 1\nREAD 0\n");
    }
}
