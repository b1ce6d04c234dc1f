//! One fuzzed file: its fmap as famfsd's scenario writes it, plus faults
//! from famfsd's vocabulary for what the fmap's own fields cannot say
//! (header fields, counts, framing, the server's error replies, a broken
//! GET_DAXDEV reply). Made valid from the profile's geometry, then broken
//! one field at a time towards its boundaries.

use crate::fuzz::Rng;
use famfs_proto::Profile;
use serde::{Deserialize, Serialize};

const MIB: u64 = 1 << 20;
/// Generated extents stay inside the first 64 MiB of the device: the part
/// each batch fills with the address pattern.
pub const AREA: u64 = 64 * MIB;

/// A simple extent or a strip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ext {
    pub dev: u32,
    pub offset: u64,
    pub len: u64,
}

/// An interleaved extent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IExt {
    pub chunk_size: u64,
    pub nbytes: u64,
    pub strips: Vec<Ext>,
}

/// One file's fmap and faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extents: Vec<Ext>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interleave: Vec<IExt>,
    /// Header `file_size` (default: the sum of the lengths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// The size LOOKUP and GETATTR give (default: the fmap's file_size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attr_size: Option<u64>,
    /// GET_FMAP faults, each a fault value as the scenario writes it
    /// (`{nextents: 0}`, `oversize`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    /// A GET_DAXDEV reply fault (the file then gets a mount of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daxfault: Option<String>,
    /// The mutations that made it, in order (weights follow what found
    /// something).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<String>,
}

fn size(v: u64) -> String {
    if v != 0 && v.is_multiple_of(MIB) && v < (1 << 40) {
        format!("{}M", v / MIB)
    } else {
        format!("\"{v:#x}\"")
    }
}

fn ext_yaml(e: &Ext) -> String {
    format!(
        "{{dev: {}, offset: {}, len: {}}}",
        e.dev,
        size(e.offset),
        size(e.len)
    )
}

impl Input {
    /// The scenario's tree entry for this file at `path` (two-space
    /// indented list item).
    pub fn entry(&self, path: &str) -> String {
        let list = |v: Vec<String>| v.join(", ");
        let body = if self.interleave.is_empty() {
            format!(
                "extents: [{}]",
                list(self.extents.iter().map(ext_yaml).collect())
            )
        } else {
            let ie = |i: &IExt| {
                format!(
                    "{{chunk_size: {}, nbytes: {}, strips: [{}]}}",
                    size(i.chunk_size),
                    size(i.nbytes),
                    list(i.strips.iter().map(ext_yaml).collect())
                )
            };
            format!(
                "interleave: [{}]",
                list(self.interleave.iter().map(ie).collect())
            )
        };
        let fs = self
            .file_size
            .map(|s| format!(", file_size: {}", size(s)))
            .unwrap_or_default();
        let attr = self
            .attr_size
            .map(|s| format!("    size: {}\n", size(s)))
            .unwrap_or_default();
        let mut out = format!("  - path: {path}\n{attr}    fmap: {{{body}{fs}}}\n");
        if !self.faults.is_empty() {
            let f: Vec<String> = self
                .faults
                .iter()
                .map(|f| format!("{{fault: {f}}}"))
                .collect();
            out += &format!("    faults: [{}]\n", f.join(", "));
        }
        out
    }

    /// A whole scenario serving these files as /f0, /f1... on `dax`.
    /// A GET_DAXDEV fault applies to the connection: only a lone file
    /// should carry one.
    pub fn scenario(files: &[&Input], dax: &str, what: &str) -> String {
        let mut s = format!(
            "description: {what}\ndaxdevs: {{0: {dax}}}\nttl: {{entry_ms: 3600000, attr_ms: 3600000}}\ntree:\n"
        );
        for (i, f) in files.iter().enumerate() {
            s += &f.entry(&format!("/f{i}"));
        }
        let dax: Vec<String> = files
            .iter()
            .filter_map(|f| f.daxfault.as_ref())
            .map(|d| format!("{{fault: {d}, nth: 1}}"))
            .collect();
        if !dax.is_empty() {
            s += &format!("faults: [{}]\n", dax.join(", "));
        }
        s
    }

    /// Records in the fmap (extents, interleaved headers and strips) plus
    /// faults: what minimisation makes smaller.
    pub fn weight(&self) -> usize {
        self.extents.len()
            + self
                .interleave
                .iter()
                .map(|i| 1 + i.strips.len())
                .sum::<usize>()
            + 2 * self.faults.len()
            + 2 * usize::from(self.daxfault.is_some())
            + usize::from(self.file_size.is_some())
            + usize::from(self.attr_size.is_some())
    }

    fn lengths(&self) -> u64 {
        self.extents
            .iter()
            .map(|e| e.len)
            .chain(self.interleave.iter().map(|i| i.nbytes))
            .fold(0u64, u64::wrapping_add)
    }
}

/// Distinct aligned slots of `align` in the pattern area.
fn slots(rng: &mut Rng, n: usize, align: u64) -> Vec<u64> {
    let total = (AREA / align) as usize;
    let mut all: Vec<u64> = (0..total as u64).collect();
    for i in 0..n.min(total) {
        let j = i + rng.below(total - i);
        all.swap(i, j);
    }
    all.truncate(n.min(total));
    all
}

/// A valid fmap of random geometry for `p`: 1 to the profile's extent
/// limit (at most 32) non-overlapping simple extents, or interleaved
/// extents where the profile has them; the file ends anywhere in the last
/// extent.
pub fn fresh(rng: &mut Rng, p: &Profile) -> Input {
    let interleave = p.interleave && rng.chance(1, 3);
    fresh_shaped(rng, p, interleave)
}

/// [`fresh`] with simple or interleaved extents, as asked (simple where
/// the profile has no interleave).
pub fn fresh_shaped(rng: &mut Rng, p: &Profile, interleave: bool) -> Input {
    let a = p.alignment.max(4096);
    let limit = p.max_extents.clamp(1, 32) as usize;
    let mut i = Input {
        extents: vec![],
        interleave: vec![],
        file_size: None,
        attr_size: None,
        faults: vec![],
        daxfault: None,
        ops: vec!["fresh".into()],
    };
    if interleave && p.interleave {
        let n = rng.between(1, 2);
        let mut free = slots(rng, 16, 2 * a).into_iter();
        for _ in 0..n {
            let strips = rng.between(1, 4.min(p.max_strips as usize));
            let chunks = rng.between(1, 2) as u64;
            let len = chunks * a;
            let strips: Vec<Ext> = (0..strips)
                .filter_map(|_| free.next())
                .map(|s| Ext {
                    dev: 0,
                    offset: s * 2 * a,
                    len,
                })
                .collect();
            i.interleave.push(IExt {
                chunk_size: a,
                nbytes: len * strips.len() as u64,
                strips,
            });
        }
    } else {
        let n = if rng.chance(1, 8) {
            limit
        } else {
            rng.between(1, 4.min(limit))
        };
        // Slots of one or two alignments, each extent inside its own.
        let slot = if (n as u64) * 2 * a <= AREA { 2 * a } else { a };
        let lens: Vec<u64> = (0..n)
            .map(|_| a * rng.between(1, (slot / a) as usize) as u64)
            .collect();
        i.extents = slots(rng, n, slot)
            .into_iter()
            .zip(lens)
            .map(|(s, len)| Ext {
                dev: 0,
                offset: s * slot,
                len,
            })
            .collect();
    }
    // End anywhere in the last extent: on its boundary, a page or a byte
    // short of it.
    let total = i.lengths();
    let last = i
        .extents
        .last()
        .map(|e| e.len)
        .or(i.interleave.last().map(|x| x.nbytes))
        .unwrap_or(a);
    i.file_size = match rng.below(4) {
        0 => None,
        1 => Some(total - 4096 * rng.below((last / 4096) as usize) as u64),
        2 => Some(total - rng.below(4096) as u64),
        _ => Some(total - rng.below(last as usize) as u64),
    }
    .filter(|&s| s > 0);
    i
}

/// The mutation operators, by name.
pub const OPS: &[&str] = &[
    "offset",
    "len",
    "dev",
    "file-size",
    "attr-size",
    "chunk-size",
    "nbytes",
    "count",
    "strips",
    "header",
    "framing",
    "server-error",
    "daxdev",
    "overlap",
];

/// Values near the edges of a field of `bits` bits, around `v`.
fn edges(rng: &mut Rng, v: u64, align: u64, bits: u32) -> u64 {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let c = [
        0,
        1,
        4096,
        align - 1,
        v.wrapping_add(4096),
        v.wrapping_add(1),
        v.wrapping_sub(4096),
        1 << 31,
        1 << 32,
        1 << 63,
        0u64.wrapping_sub(align),
        u64::MAX,
        rng.next_u64(),
    ];
    *rng.pick(&c) & max
}

/// A place to change: a simple extent, or a strip of an interleaved one.
fn pick_ext<'a>(rng: &mut Rng, i: &'a mut Input) -> Option<&'a mut Ext> {
    if !i.extents.is_empty() {
        let k = rng.below(i.extents.len());
        return i.extents.get_mut(k);
    }
    let k = rng.below(i.interleave.len().max(1));
    let x = i.interleave.get_mut(k)?;
    let s = rng.below(x.strips.len().max(1));
    x.strips.get_mut(s)
}

/// `input` with one field moved towards a boundary by operator `op`.
pub fn mutate(rng: &mut Rng, input: &Input, op: &str, p: &Profile) -> Input {
    let a = p.alignment.max(4096);
    let mut i = input.clone();
    i.ops.push(op.to_string());
    let total = i.lengths();
    match op {
        "offset" => {
            if let Some(e) = pick_ext(rng, &mut i) {
                e.offset = edges(rng, e.offset, a, 64);
            }
        }
        "len" => {
            if let Some(e) = pick_ext(rng, &mut i) {
                e.len = edges(rng, e.len, a, 64);
            }
        }
        "dev" => {
            let v = *rng.pick(&[1, 2, 31, 32, 33, 40, 63, 64, 1 << 31, u32::MAX]);
            if let Some(e) = pick_ext(rng, &mut i) {
                e.dev = v;
            }
        }
        "file-size" => {
            let c = [
                0,
                1,
                total.wrapping_add(1),
                total.wrapping_add(4096),
                total.wrapping_add(a),
                1 << 32,
                1 << 63,
                (1 << 63) + a,
                u64::MAX,
            ];
            let v = *rng.pick(&c);
            i.file_size = Some(v);
            // Past 2^63 - 1 the attribute size would stop the LOOKUP:
            // mostly keep it sane, so that the fmap's own check is reached.
            if v > i64::MAX as u64 && rng.chance(3, 4) {
                i.attr_size = Some(total);
            }
        }
        "attr-size" => {
            let c = [
                0,
                1,
                total.wrapping_add(4096),
                1 << 62,
                i64::MAX as u64,
                1 << 63,
                u64::MAX,
            ];
            i.attr_size = Some(*rng.pick(&c));
        }
        "chunk-size" | "nbytes" if !i.interleave.is_empty() => {
            let k = rng.below(i.interleave.len());
            let x = &mut i.interleave[k];
            if op == "chunk-size" {
                x.chunk_size = *rng.pick(&[0, 1, 4096, a / 2, a + 4096, 3 * a, 1 << 31]);
            } else {
                x.nbytes = edges(rng, x.nbytes, a, 64);
            }
        }
        "overlap" => {
            // One extent (or strip) moved onto another's device range.
            let places: Vec<Ext> = i
                .extents
                .iter()
                .chain(i.interleave.iter().flat_map(|x| &x.strips))
                .cloned()
                .collect();
            let from = rng.pick(&places).offset;
            if let Some(e) = pick_ext(rng, &mut i) {
                e.offset = from;
            }
            if places.len() == 1 {
                let mut twin = places[0].clone();
                twin.offset = from;
                if i.interleave.is_empty() {
                    i.extents.push(twin);
                }
            }
        }
        op if fault(rng, &mut i, op, p) => {}
        // An interleave operator on simple extents: on a fresh
        // interleaved file instead (where the profile has them).
        "chunk-size" | "nbytes" | "strips" if p.interleave => {
            let mut f = fresh_shaped(rng, p, true);
            f.ops = i.ops.clone();
            return mutate(rng, &f, op, p);
        }
        // An operator that does not apply to this profile: a fresh file.
        _ => return fresh(rng, p),
    }
    i
}

/// The operators that add a fault of famfsd's vocabulary (counts, header
/// fields, framing, server errors, a GET_DAXDEV reply) to `i`; false when
/// `op` is not one of them or does not apply here.
fn fault(rng: &mut Rng, i: &mut Input, op: &str, p: &Profile) -> bool {
    match op {
        "count" => {
            let max = u64::from(p.max_extents);
            let v = *rng.pick(&[0, max, max + 1, u64::from(u32::MAX)]);
            i.faults.push(format!("{{nextents: {v}}}"));
        }
        "strips" if !i.interleave.is_empty() => {
            let max = u64::from(p.max_strips);
            let v = *rng.pick(&[0, max, max + 1, u64::from(u32::MAX)]);
            let k = rng.below(i.interleave.len());
            i.faults
                .push(format!("{{nstrips: {{value: {v}, extent: {k}}}}}"));
        }
        "header" => {
            let f = rng.pick(&[
                "{ext_type: 1}",
                "{ext_type: 2}",
                "{ext_type: 4294967295}",
                "{fmap_version: 7}",
                "{file_type: 9}",
                "{fmap_size: 8192}",
                "{fmap_size: 16777217}",
            ]);
            i.faults.push(f.to_string());
        }
        "framing" => {
            let f = rng.pick(&[
                "{short_payload: 0}",
                "{short_payload: 16}",
                "{short_payload: 31}",
                "truncated_extents",
                "{trailing_bytes: 1}",
                "{trailing_bytes: 24}",
                "oversize",
                "header_only",
            ]);
            i.faults.push(f.to_string());
        }
        "server-error" => {
            let f = rng.pick(&[
                "{error: EIO}",
                "{error: ENOENT}",
                "{error: ENOSYS}",
                "{error: ENOMEM}",
                "{error_with_payload: EIO}",
            ]);
            i.faults.push(f.to_string());
        }
        "daxdev"
            if p.daxdev_reply_size > 0
                && matches!(p.daxdev, famfs_proto::profile::DaxdevSource::Pull) =>
        {
            let f = rng.pick(&[
                "daxdev_empty_name",
                "daxdev_not_chardev",
                "daxdev_non_dax",
                "daxdev_nonexistent",
                "daxdev_unterminated",
                "{daxdev_reply_size: 279}",
            ]);
            i.daxfault = Some(f.to_string());
        }
        _ => return false,
    }
    true
}

/// Smaller inputs that may still show what `i` shows, smallest change
/// first: each fault dropped, the file size left to default, each extent
/// or strip dropped, the first half of the extents dropped.
pub fn reductions(i: &Input) -> Vec<Input> {
    let mut out = Vec::new();
    let mut push = |c: Input| {
        if c != *i && !out.contains(&c) && (!c.extents.is_empty() || !c.interleave.is_empty()) {
            out.push(c);
        }
    };
    if i.extents.len() > 2 {
        let mut c = i.clone();
        c.extents.drain(..i.extents.len() / 2);
        push(c);
        let mut c = i.clone();
        c.extents.truncate(i.extents.len() / 2);
        push(c);
    }
    for k in 0..i.faults.len() {
        let mut c = i.clone();
        c.faults.remove(k);
        push(c);
    }
    if i.daxfault.is_some() {
        let mut c = i.clone();
        c.daxfault = None;
        push(c);
    }
    if i.file_size.is_some() {
        let mut c = i.clone();
        c.file_size = None;
        push(c);
    }
    if i.attr_size.is_some() {
        let mut c = i.clone();
        c.attr_size = None;
        push(c);
    }
    for k in 0..i.extents.len() {
        let mut c = i.clone();
        c.extents.remove(k);
        push(c);
    }
    for k in 0..i.interleave.len() {
        if i.interleave.len() > 1 {
            let mut c = i.clone();
            c.interleave.remove(k);
            push(c);
        }
        for s in 0..i.interleave[k].strips.len() {
            if i.interleave[k].strips.len() > 1 {
                let mut c = i.clone();
                c.interleave[k].strips.remove(s);
                push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::scenario::Config;
    use std::path::Path;

    #[test]
    fn fresh_and_mutated_inputs_are_scenarios_famfsd_takes_and_fresh_ones_are_valid() {
        let p = Profile::by_name("v10").unwrap();
        let mut rng = Rng::new(7);
        for n in 0..300 {
            let f = fresh(&mut rng, &p);
            let y = Input::scenario(&[&f], "/dev/dax0.0", "t");
            let cfg = Config::from_text(Path::new("t.yaml"), &y, None)
                .unwrap_or_else(|e| panic!("{e:#}\n{y}"));
            let e = crate::server::expect::open_expectation(cfg, "/f0").unwrap();
            assert_eq!(e.token(), "ok", "input {n} is not valid: {}\n{y}", e.why);
            let op = OPS[n % OPS.len()];
            let m = mutate(&mut rng, &f, op, &p);
            let y = Input::scenario(&[&f, &m], "/dev/dax0.0", "t");
            Config::from_text(Path::new("t.yaml"), &y, None)
                .unwrap_or_else(|e| panic!("{op}: {e:#}\n{y}"));
            for r in reductions(&m) {
                assert!(r.weight() <= m.weight(), "{r:?} from {m:?}");
            }
        }
    }

    #[test]
    fn a_fresh_file_may_have_as_many_extents_as_the_profile_allows() {
        let p = Profile::by_name("v10").unwrap();
        let mut rng = Rng::new(3);
        let most = (0..200).map(|_| fresh(&mut rng, &p).extents.len()).max();
        assert_eq!(most, Some(32));
    }

    #[test]
    fn the_same_seed_makes_the_same_inputs() {
        let p = Profile::by_name("v10").unwrap();
        let make = || {
            let mut rng = Rng::new(42);
            (0..20)
                .map(|k| {
                    let f = fresh(&mut rng, &p);
                    mutate(&mut rng, &f, OPS[k % OPS.len()], &p)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(make(), make());
    }
}
