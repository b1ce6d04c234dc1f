//! GET_FMAP and GET_DAXDEV reply payloads, and the other FUSE records the
//! server decodes, under every built-in profile (and custom ones): the
//! kernel model ([`famfs_proto::kernel_verdict`], retries,
//! [`famfs_proto::judge_exchange`], [`famfs_proto::daxdev_verdict`]), the
//! lenient decoder and its file layout ([`famfs_proto::Fmap::decode`],
//! `segments`), the dump (`describe`) and the record decoders of `abi`.
//!
//! An input is the payload itself, or `custom:SPEC` and a newline before
//! it to judge it under that profile instead of the built-in ones.
//! Payloads are built from the wire grammar (an [`Fmap`] with edge values,
//! then tampered with through [`RawFmap`]) or are byte mutations of those.

use super::{Fuzz, Outcome, Rng};
use anyhow::Result;
use famfs_proto::abi::{self, DaxdevOut, FmapHeader, InHeader, InitIn, Wire};
use famfs_proto::fmap::{walk, Record};
use famfs_proto::{Fmap, InterleavedExtent, Profile, RawFmap, SimpleExtent};

pub struct Fmaps {
    profiles: Vec<Profile>,
}

impl Fmaps {
    pub fn new() -> Result<Fmaps> {
        Ok(Fmaps {
            profiles: Profile::builtins(),
        })
    }
}

fn extent(rng: &mut Rng) -> SimpleExtent {
    let aligned = |rng: &mut Rng| (rng.below(64) as u64) << 21;
    let mut e = SimpleExtent::new(aligned(rng), aligned(rng).max(2 << 20));
    if rng.chance(1, 4) {
        e.offset = rng.edgy_u64();
    }
    if rng.chance(1, 4) {
        e.len = rng.edgy_u64();
    }
    if rng.chance(1, 6) {
        e.devindex = rng.edgy_u64() as u32;
    }
    if rng.chance(1, 10) {
        e.reserved = rng.next_u64() as u32;
    }
    e
}

/// An fmap from the grammar, with edge values in some fields.
fn fmap(rng: &mut Rng) -> Fmap {
    let mut f = if rng.chance(1, 2) {
        let n = rng.small(40);
        let v: Vec<SimpleExtent> = (0..n).map(|_| extent(rng)).collect();
        let total = v.iter().fold(0u64, |a, e| a.wrapping_add(e.len));
        Fmap::simple(total, v)
    } else {
        let n = rng.small(6);
        let v: Vec<InterleavedExtent> = (0..n)
            .map(|_| {
                let strips = (0..rng.small(8)).map(|_| extent(rng)).collect();
                let chunk = match rng.below(4) {
                    0 => 0,
                    1 => rng.next_u64() as u32,
                    _ => 2 << 20,
                };
                InterleavedExtent::new(chunk, rng.edgy_u64(), strips)
            })
            .collect();
        let total = v.iter().fold(0u64, |a, e| a.wrapping_add(e.nbytes));
        Fmap::interleaved(total, v)
    };
    if rng.chance(1, 4) {
        f.file_size = rng.edgy_u64();
    }
    if rng.chance(1, 8) {
        f.file_type = rng.next_u64() as u8;
        f.version = rng.next_u64() as u16;
        f.reserved0 = rng.edgy_u64() as u32;
        f.reserved1 = rng.edgy_u64();
    }
    f
}

/// A tampered encoding: counts, types and sizes that disagree with the
/// records, cut or padded bytes, patched words.
fn tampered(rng: &mut Rng, profile: &Profile) -> Vec<u8> {
    let mut raw: RawFmap = fmap(rng).to_raw(profile);
    for _ in 0..rng.small(3) {
        match rng.below(9) {
            0 => {
                raw.set_nextents(rng.edgy_u64() as u32);
            }
            1 => {
                raw.set_ext_type(rng.below(4) as u32);
            }
            2 => {
                raw.set_fmap_size(rng.edgy_u64() as u32);
            }
            3 => {
                let n = raw.body_len();
                raw.truncate(rng.below(n + 1));
            }
            4 => {
                let n = rng.small(64);
                let b = rng.bytes(n);
                raw.append(&b);
            }
            5 => {
                let at = rng.below(raw.body_len() + 8);
                let b = rng.edgy_u64().to_le_bytes();
                raw.patch(at, &b[..rng.between(1, 8)]);
            }
            6 => {
                if let Some(h) = raw.interleave_mut(rng.small(3)) {
                    h.nstrips = rng.edgy_u64() as u32;
                }
            }
            7 => {
                // An interleaved header among simple extents, or the reverse.
                let r = if rng.chance(1, 2) {
                    Record::Interleave(abi::FmapInterleaveExt {
                        nstrips: rng.edgy_u64() as u32,
                        chunk_size: rng.edgy_u64() as u32,
                        nbytes: rng.edgy_u64(),
                        reserved: 0,
                    })
                } else {
                    let e = extent(rng);
                    Record::Extent(abi::FmapSimpleExt {
                        devindex: e.devindex,
                        reserved: e.reserved,
                        offset: e.offset,
                        len: e.len,
                    })
                };
                raw.push(r);
            }
            _ => {
                raw.sync_fmap_size();
            }
        }
    }
    raw.to_bytes()
}

fn custom_spec(rng: &mut Rng) -> String {
    const VALS: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "32",
        "44",
        "56",
        "57",
        "64",
        "4096",
        "0x1000",
        "2097152",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "none",
        "true",
        "no",
        "fmap_size",
        "reserved0",
        "pull",
        "push",
        "next",
        "v10",
        "famfs-6.14",
        "",
        "x",
    ];
    let n = rng.between(0, 6);
    let items: Vec<String> = (0..n)
        .map(|_| {
            // Every key a spec takes, and one it does not.
            let key = if rng.chance(1, 19) {
                "bogus"
            } else {
                rng.pick(&famfs_proto::profile::CUSTOM_KEYS)
            };
            format!("{key}={}", rng.pick(VALS))
        })
        .collect();
    format!("custom:{}", items.join(","))
}

/// Splits an input into its profile spec (if it names one) and payload.
fn split(input: &[u8]) -> (Option<&str>, &[u8]) {
    if input.starts_with(b"custom:") {
        if let Some(nl) = input.iter().position(|&b| b == b'\n') {
            if let Ok(spec) = std::str::from_utf8(&input[..nl]) {
                return (Some(spec), &input[nl + 1..]);
            }
        }
    }
    (None, input)
}

/// Everything that reads these bytes, under one profile.
fn judge(p: &Profile, b: &[u8]) {
    let v = famfs_proto::kernel_verdict(p, b);
    let _ = (
        v.to_string(),
        v.open_errno(),
        v.write_errno(),
        v.outcome_name(),
    );
    // A retry with the buffer the first reply asked for, and odd buffers.
    let n = b.len() as u32;
    for buf in [n, n.saturating_sub(1), 0, 32, u32::MAX] {
        let _ = famfs_proto::kernel_verdict_retry(p, buf, b).to_string();
    }
    let _ = famfs_proto::judge_exchange(p, b, Some(b)).to_string();
    let _ = famfs_proto::judge_exchange(p, b, Some(&b[b.len() / 2..]));
    let _ = famfs_proto::describe(p, b);
    if let Ok(d) = Fmap::decode(p, b) {
        // The guest's fmap tools map file bytes to device bytes with this.
        let _ = d.fmap.segments(256);
        let again = d.fmap.encode(p);
        let _ = Fmap::decode(p, &again);
    }
    let _ = famfs_proto::daxdev_verdict(p, b).errno();
    let _ = abi::init_flag_names(u64::from_le_bytes(word(b)), Some(p));
    let _ = abi::classify_opcode(n, Some(p));
}

/// The first 8 bytes, zero-padded.
fn word(b: &[u8]) -> [u8; 8] {
    let mut w = [0u8; 8];
    let k = b.len().min(8);
    w[..k].copy_from_slice(&b[..k]);
    w
}

/// The record decoders, profile-free.
fn records(b: &[u8]) {
    let l = walk(b);
    let _ = (l.items.len(), l.error.map(|e| (e.to_string(), e.offset())));
    let _ = FmapHeader::decode(b);
    let _ = DaxdevOut::decode(b).map(|d| (d.name_terminated(), d.name_bytes().len()));
    let _ = abi::parse_dirents(b).map_err(|e| e.to_string());
    let _ = abi::parse_direntplus(b).map_err(|e| e.to_string());
    let _ = abi::parse_batch_forget(b).map_err(|e| e.to_string());
    let _ = abi::split_request(b).map_err(|e| e.to_string());
    let _ = InHeader::split(b);
    let _ = InitIn::decode_compat(b).map(|i| i.flags64());
}

impl Fuzz for Fmaps {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        let p = rng.pick(&self.profiles).clone();
        let mut b = match rng.below(10) {
            0..=3 => fmap(rng).encode(&p),
            4..=7 => tampered(rng, &p),
            8 => {
                let mut d = DaxdevOut::with_path(rng.below(4) as u16, "/dev/dax0.0")
                    .unwrap_or_default()
                    .to_bytes();
                d.truncate(rng.below(d.len() + 8));
                d
            }
            _ => {
                let n = rng.small(300);
                rng.bytes(n)
            }
        };
        for _ in 0..rng.small(2) {
            super::mutate::bytes(rng, &mut b, &[]);
        }
        if rng.chance(1, 8) {
            let mut spec = custom_spec(rng).into_bytes();
            spec.push(b'\n');
            spec.extend_from_slice(&b);
            return spec;
        }
        b
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        let (spec, b) = split(input);
        records(b);
        match spec {
            Some(s) => {
                if let Ok(p) = Profile::parse(s) {
                    let _ = p.to_string();
                    judge(&p, b);
                }
            }
            None => {
                for p in &self.profiles {
                    judge(p, b);
                }
            }
        }
        Outcome::Accepted
    }
}
