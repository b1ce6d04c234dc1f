//! Guest tools for the famfs data-path benchmark: bandwidth of read() and
//! of mmap over a file or a devdax device, and the open+close rate of a
//! file. Each prints one `key value` line the host's `bench famfs` reads.

use anyhow::{bail, Context, Result};
use std::time::Instant;

const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

/// A deterministic sequence of page indexes below `pages` (an LCG): the
/// same "random" accesses on every target, so their times compare.
fn random_pages(pages: usize, n: usize) -> Vec<usize> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) as usize) % pages
        })
        .collect()
}

/// `bw KEY PATH LEN read|mmap seq|rand`: read LEN bytes of PATH (in 1 MiB
/// reads or by touching every word of a mapping; `rand`: one 4 KiB page at
/// a time, LEN/4K pages in a fixed pseudo-random order) and print
/// `KEY MB/s`. The mapping is faulted in once before timing, so both
/// targets are timed on populated page tables.
pub fn bandwidth(key: &str, path: &str, len: usize, how: &str, order: &str) -> Result<String> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    let pages: Vec<usize> = match order {
        "seq" => (0..len / PAGE).collect(),
        "rand" => random_pages(len / PAGE, len / PAGE),
        other => bail!("bw: `{other}` is not seq or rand"),
    };
    let mut sum = 0u64;
    let secs = match how {
        "read" => {
            let step = if order == "seq" { CHUNK } else { PAGE };
            let mut buf = vec![0u8; step];
            let t = Instant::now();
            if order == "seq" {
                let mut off = 0;
                while off < len {
                    let n = rustix::io::pread(&f, &mut buf, off as u64)?;
                    anyhow::ensure!(n > 0, "read {path}: end of file at {off}");
                    sum = sum.wrapping_add(buf[0] as u64);
                    off += n;
                }
            } else {
                for p in &pages {
                    rustix::io::pread(&f, &mut buf, (p * PAGE) as u64)?;
                    sum = sum.wrapping_add(buf[0] as u64);
                }
            }
            t.elapsed().as_secs_f64()
        }
        "mmap" => {
            let m = crate::guest::sys::Mapping::shared(&f, len, 0, false)
                .map_err(|e| anyhow::anyhow!("mmap {path}: {e}"))?;
            let all = m.words();
            let words = |page: usize| {
                all[page * PAGE / 8..(page + 1) * PAGE / 8]
                    .iter()
                    .fold(0u64, |a, w| a.wrapping_add(*w))
            };
            for pg in 0..len / PAGE {
                sum = sum.wrapping_add(words(pg));
            }
            let t = Instant::now();
            for pg in &pages {
                sum = sum.wrapping_add(words(*pg));
            }
            t.elapsed().as_secs_f64()
        }
        other => bail!("bw: `{other}` is not read or mmap"),
    };
    std::hint::black_box(sum);
    Ok(format!(
        "{key} {:.1}\n",
        (len as f64 / (1 << 20) as f64) / secs.max(1e-9)
    ))
}

/// `open-rate KEY PATH N`: open and close PATH N times; print `KEY
/// opens/s`.
pub fn open_rate(key: &str, path: &str, n: u32) -> Result<String> {
    // The first open may be cold (LOOKUP, GET_FMAP): not timed.
    drop(std::fs::File::open(path).with_context(|| format!("opening {path}"))?);
    let t = Instant::now();
    for _ in 0..n {
        drop(std::fs::File::open(path)?);
    }
    Ok(format!(
        "{key} {:.0}\n",
        n as f64 / t.elapsed().as_secs_f64().max(1e-9)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_pages_stay_in_range_and_repeat() {
        let a = random_pages(512, 1000);
        assert!(a.iter().all(|p| *p < 512));
        assert_eq!(a, random_pages(512, 1000));
        assert!(a.iter().collect::<std::collections::BTreeSet<_>>().len() > 300);
    }

    #[test]
    fn bandwidth_and_open_rate_print_their_key() {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), vec![1u8; 1 << 20]).unwrap();
        let p = t.path().to_str().unwrap();
        for how in ["read", "mmap"] {
            for order in ["seq", "rand"] {
                let line = bandwidth("k", p, 1 << 20, how, order).unwrap();
                let v: f64 = line.strip_prefix("k ").unwrap().trim().parse().unwrap();
                assert!(v > 0.0, "{line}");
            }
        }
        assert!(open_rate("o", p, 10).unwrap().starts_with("o "));
    }
}
