//! Human-readable dump of fmap bytes, for `fmap decode` and for failure
//! reports.

use crate::fmap::{ext_type_name, file_type_name, walk, Record};
use crate::kernel_model::{judge_exchange, KernelVerdict};
use crate::profile::Profile;
use std::fmt::Write;

const MIB: u64 = 1 << 20;

/// A byte count in MiB, exact when it is a whole number of MiB.
pub fn fmt_mib(n: u64) -> String {
    if n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else {
        format!("{:.3} MiB", n as f64 / MIB as f64)
    }
}

/// Multi-line description of `bytes` as a GET_FMAP reply under `profile`:
/// header fields, every extent and strip with its byte offset, hex offsets
/// and sizes, trailing bytes, any structural decode error, then the
/// kernel's verdict and the accepted-but-unchecked oddities.
pub fn describe(profile: &Profile, bytes: &[u8]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "fmap: {} bytes, profile {}", bytes.len(), profile.name);
    let layout = walk(bytes);
    if let Some(h) = layout.header {
        let ft = file_type_name(h.file_type).unwrap_or("undefined");
        let et = ext_type_name(h.ext_type).unwrap_or("undefined");
        let word12 = if profile.has_fmap_size() {
            "fmap_size"
        } else {
            "reserved0"
        };
        let _ = writeln!(
            s,
            "header: file_type {} ({ft}), version {}, ext_type {} ({et}), nextents {}",
            h.file_type, h.fmap_version, h.ext_type, h.nextents
        );
        let _ = writeln!(
            s,
            "        file_size {:#x} ({}), {word12} {:#x}, reserved {:#x}, reserved1 {:#x}",
            h.file_size,
            fmt_mib(h.file_size),
            h.reserved0,
            h.reserved,
            h.reserved1
        );
    }
    for it in &layout.items {
        match it.record {
            Record::Extent(e) | Record::Strip(e) => {
                let (indent, label) = match it.strip {
                    None => ("", format!("extent {}", it.extent)),
                    Some(st) => ("    ", format!("strip {st}")),
                };
                let _ = write!(
                    s,
                    "{indent}{label} @{}: devindex {}, offset {:#x}, len {:#x} ({})",
                    it.offset,
                    e.devindex,
                    e.offset,
                    e.len,
                    fmt_mib(e.len)
                );
                if e.reserved != 0 {
                    let _ = write!(s, ", reserved {:#x}", e.reserved);
                }
                s.push('\n');
            }
            Record::Interleave(ih) => {
                let _ = write!(
                    s,
                    "interleaved extent {} @{}: nstrips {}, chunk_size {:#x} ({}), nbytes {:#x} ({})",
                    it.extent,
                    it.offset,
                    ih.nstrips,
                    ih.chunk_size,
                    fmt_mib(u64::from(ih.chunk_size)),
                    ih.nbytes,
                    fmt_mib(ih.nbytes)
                );
                if ih.reserved != 0 {
                    let _ = write!(s, ", reserved {:#x}", ih.reserved);
                }
                s.push('\n');
            }
        }
    }
    match &layout.error {
        Some(e) => {
            let _ = writeln!(s, "decode error: {e}");
        }
        None if layout.end < bytes.len() => {
            let _ = writeln!(
                s,
                "trailing: {} bytes at offset {}",
                bytes.len() - layout.end,
                layout.end
            );
        }
        None => {}
    }
    let verdict = judge_exchange(profile, bytes, None);
    let _ = writeln!(s, "verdict: {verdict}");
    if let KernelVerdict::Accept(sum) = &verdict {
        for u in &sum.unchecked {
            let _ = writeln!(s, "not checked: {u}");
        }
    }
    s
}
