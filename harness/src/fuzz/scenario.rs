//! famfs server scenarios (`cases/scenarios/*.yaml`): parsed and resolved
//! by [`Config::from_text`], then served the way famsd builds its GET_FMAP
//! and GET_DAXDEV replies, so that a scenario the resolver accepts cannot
//! make the server panic either.

use super::yamlgen::{self, Schema};
use super::{as_text, examples, located, Fuzz, Outcome, Rng};
use crate::server::fault::{finish_fmap, FaultClass, FmapPost};
use crate::server::{Config, Fault};
use anyhow::Result;
use famfs_proto::abi::{DaxdevOut, Wire};
use famfs_proto::Profile;
use std::path::PathBuf;

fn sizes() -> Schema {
    Schema::Num(&[
        "0",
        "2M",
        "4M",
        "4096",
        "4K",
        "1G",
        "3M",
        "0x200000",
        "2097152",
        "18446744073709551615",
        "0xfffffffffff00000",
        "9223372036854775808",
    ])
}

fn small() -> Schema {
    Schema::Num(&[
        "0",
        "1",
        "2",
        "3",
        "31",
        "32",
        "33",
        "255",
        "256",
        "65536",
        "4294967295",
        "18446744073709551615",
    ])
}

fn extent() -> Schema {
    Schema::Map(vec![
        ("dev", small()),
        ("offset", sizes()),
        ("len", sizes()),
    ])
}

fn fault() -> Schema {
    let at = || {
        Schema::Map(vec![
            ("extent", small()),
            ("strip", small()),
            ("by", sizes()),
            ("value", small()),
        ])
    };
    let errno = || {
        Schema::OneOf(vec![
            Schema::Str(&["EIO", "ENOENT", "EINVAL", "ENOSPC", "EBOGUS", "eio"]),
            small(),
        ])
    };
    let node = Schema::Str(&["/f", "/d", "/nowhere", "f", "/d/e"]);
    let units = Schema::Enum(&[
        "nextents_over_max",
        "truncated_extents",
        "short_of_file_size",
        "huge_file_size",
        "oversize",
        "overlap",
        "header_only",
        "daxdev_empty_name",
        "daxdev_nonexistent",
        "daxdev_not_chardev",
        "daxdev_non_dax",
        "daxdev_unterminated",
        "never_reply",
    ]);
    let one = |k: &'static str, v: Schema| Schema::Map(vec![(k, v)]);
    Schema::OneOf(vec![
        units,
        one("short_payload", small()),
        one("nextents", small()),
        one("ext_type", small()),
        one("misaligned_offset", at()),
        one("misaligned_len", at()),
        one("devindex", at()),
        one("nstrips", at()),
        one("nstrips_over_max", at()),
        one("chunk_size", at()),
        one("nbytes", at()),
        one("file_size", sizes()),
        one("offset_wrap", at()),
        one("trailing_bytes", small()),
        one("fmap_version", small()),
        one("file_type", small()),
        one("fmap_size", small()),
        one(
            "patch",
            Schema::Map(vec![
                ("offset", small()),
                (
                    "hex",
                    Schema::Str(&["ff", "00ff00ff", "f", "zz", "", "ffff ffff", "é0"]),
                ),
            ]),
        ),
        one(
            "daxdev_path",
            Schema::Str(&["/dev/dax0.0", "", "/dev/null"]),
        ),
        one(
            "daxdev_reply_size",
            Schema::Num(&["0", "100", "264", "300", "4096"]),
        ),
        one("attr_size", sizes()),
        one("error", errno()),
        one("raw_error", Schema::Num(&["1", "-600", "0", "-5"])),
        one("error_with_payload", errno()),
        one("len_mismatch", Schema::Num(&["1", "-1", "-16", "8"])),
        one("delay", Schema::Num(&["0", "10", "100"])),
        one("exit", small()),
        one(
            "push",
            Schema::Map(vec![
                ("index", small()),
                ("path", Schema::Str(&["/dev/dax0.0", "/dev/null", "/tmp"])),
                ("bad_fd", Schema::Bool),
                ("before_reply", Schema::Bool),
            ]),
        ),
        one(
            "notify_store",
            Schema::Map(vec![
                ("node", node.clone()),
                ("offset", sizes()),
                ("data", Schema::Str(&["abc", ""])),
                ("len", sizes()),
                ("after_ms", small()),
            ]),
        ),
        one(
            "notify_inval_inode",
            Schema::Map(vec![
                ("node", node),
                ("offset", Schema::Num(&["0", "-1", "4096"])),
                ("len", Schema::Num(&["0", "-1", "4096"])),
                ("after_ms", small()),
            ]),
        ),
    ])
}

fn rule(with_path: bool) -> Schema {
    let mut fields = vec![
        (
            "op",
            Schema::OneOf(vec![
                Schema::Str(&[
                    "GET_FMAP",
                    "GET_DAXDEV",
                    "LOOKUP",
                    "GETATTR",
                    "SETATTR",
                    "READ",
                    "OPEN",
                    "fuse_lookup",
                    "BOGUS",
                ]),
                Schema::Num(&["1", "56", "4096", "4294967296"]),
            ]),
        ),
        ("index", small()),
        ("nth", small()),
        ("from", small()),
        ("times", small()),
        ("fault", fault()),
    ];
    if with_path {
        fields.push((
            "path",
            Schema::Str(&["/f", "/d", "/d/e", "/nowhere", "rel"]),
        ));
    }
    Schema::Map(fields)
}

/// The `profile:` value: a builtin or `custom:` name, or a map of
/// overrides; kept apart so the top-level grammar reads as a list of keys.
fn profile() -> Schema {
    Schema::OneOf(vec![
        Schema::Str(&[
            "v10",
            "next",
            "famfs-6.14",
            "v11",
            "custom:base=next,max_extents=3",
            "custom:alignment=0",
            "custom:alignment=4096,max_reply=64",
            "custom:flag=64",
            "custom:header=fmap_size,retry_limit=100",
            "custom:max_reply=0",
            "custom:daxdev_reply_size=0",
            "custom:",
        ]),
        Schema::Map(vec![
            ("base", Schema::Str(&["v10", "next", "famfs-6.14", "x"])),
            ("name", Schema::Str(&["mine"])),
            ("flag_bit", Schema::Num(&["44", "63", "64"])),
            ("get_fmap", Schema::Num(&["56", "0"])),
            ("get_daxdev", Schema::Num(&["57", "56"])),
            ("max_extents", small()),
            ("max_strips", small()),
            ("header", Schema::Enum(&["reserved0", "fmap_size"])),
            ("get_fmap_in_size", Schema::Num(&["0", "8", "16"])),
            ("alignment", Schema::Num(&["4096", "2M", "0", "3", "1"])),
            ("max_reply", Schema::Num(&["0", "32", "4096", "65536"])),
            ("retry_limit", Schema::Num(&["~", "0", "100", "65536"])),
            ("interleave", Schema::Bool),
            ("devindex_limit", small()),
            ("daxdev_reply_size", Schema::Num(&["0", "264", "16", "300"])),
            ("daxdev", Schema::Enum(&["pull", "push"])),
            ("daxdev_slots", Schema::Num(&["0", "1", "64", "65"])),
        ]),
    ])
}

/// An `init:` flag list (`flags`, `force_flags`): names and raw bit
/// numbers, both of which the resolver must accept or refuse cleanly.
fn init_flags() -> Schema {
    Schema::list(Schema::OneOf(vec![
        Schema::Str(&[
            "ATOMIC_O_TRUNC",
            "FUSE_WRITEBACK_CACHE",
            "writeback_cache",
            "BOGUS",
        ]),
        Schema::Num(&["0", "44", "63", "64"]),
    ]))
}

/// A node's `fmap:`: explicit extents, generated ones or interleaved
/// strips; the deepest part of the grammar, so it gets its own function.
fn fmap() -> Schema {
    Schema::Map(vec![
        ("extents", Schema::list(extent())),
        (
            "generate",
            Schema::Map(vec![
                (
                    "count",
                    Schema::Num(&["1", "2", "4", "64", "1000", "1000001", "0"]),
                ),
                ("lens", Schema::list(sizes())),
                ("base", sizes()),
                ("slots", small()),
                ("step", small()),
                ("slot", sizes()),
            ]),
        ),
        (
            "interleave",
            Schema::list(Schema::Map(vec![
                ("chunk_size", sizes()),
                ("nbytes", sizes()),
                ("strips", Schema::list(extent())),
            ])),
        ),
        ("file_size", sizes()),
        ("file_type", small()),
    ])
}

/// One `tree:` entry: a file or directory with its attributes, fmap,
/// content and per-node fault rules.
fn node() -> Schema {
    Schema::Map(vec![
        (
            "path",
            Schema::Str(&["/f", "/d", "/d/e", "/", "/d/", "rel", "/a/../b", "/f/g"]),
        ),
        ("type", Schema::Enum(&["file", "dir"])),
        (
            "mode",
            Schema::Str(&["0644", "0o755", "644", "9", "077777", "0x1"]),
        ),
        ("uid", small()),
        ("gid", small()),
        ("size", sizes()),
        ("fmap", fmap()),
        ("content", Schema::Str(&["hello\n", ""])),
        ("faults", Schema::list(rule(false))),
        ("create", Schema::Bool),
    ])
}

/// The `init:` section: how the server answers FUSE_INIT (famfs flag
/// handling, forced flags, malformed replies).
fn init() -> Schema {
    Schema::Map(vec![
        ("famfs", Schema::Enum(&["echo", "withhold", "force"])),
        ("flags", init_flags()),
        ("force_flags", init_flags()),
        ("minor", Schema::Num(&["46", "0", "999"])),
        ("max_write", Schema::Num(&["128K", "4294967296", "0"])),
        (
            "malformed",
            Schema::Enum(&["too_short", "no_init_ext", "bad_major", "oversize"]),
        ),
    ])
}

/// The scenario grammar (cases/scenarios/README.md).
pub fn schema() -> Schema {
    Schema::Map(vec![
        ("description", Schema::Str(&["a scenario"])),
        ("profile", profile()),
        ("init", init()),
        (
            "daxdevs",
            Schema::dict(
                Schema::Num(&["0", "1", "31", "-1", "4294967296"]),
                Schema::Str(&["/dev/dax0.0", "/dev/dax1.0", ""]),
            ),
        ),
        ("push", Schema::Enum(&["mount", "lookup", "never"])),
        ("tree", Schema::list(node())),
        ("faults", Schema::list(rule(true))),
        (
            "ttl",
            Schema::Map(vec![("entry_ms", small()), ("attr_ms", small())]),
        ),
    ])
}

pub struct Scenarios {
    path: PathBuf,
    examples: Vec<String>,
    schema: Schema,
    profiles: Vec<Profile>,
}

impl Scenarios {
    pub fn new() -> Result<Scenarios> {
        let ex = examples("cases/scenarios", |n| n.ends_with(".yaml"))?;
        Ok(Scenarios {
            path: PathBuf::from("cases/scenarios/fuzz.yaml"),
            examples: ex.into_iter().map(|(_, t)| t).collect(),
            schema: schema(),
            profiles: Profile::builtins(),
        })
    }
}

/// Replies this large are not built: a custom profile may offer a buffer
/// of gigabytes, which the simulation would really allocate.
const SERVE_LIMIT: usize = 64 << 20;

/// The bytes a fault adds to a reply at most, `None` when that overflows.
fn growth(f: &Fault, buffer: usize) -> Option<usize> {
    match f {
        Fault::TrailingBytes(n) => Some(*n),
        Fault::Patch(p) => p.offset.checked_add(p.hex.len()),
        Fault::Oversize => buffer.checked_add(1),
        Fault::DaxdevReplySize(n) => Some(*n),
        _ => Some(64),
    }
}

/// Builds every GET_FMAP and GET_DAXDEV reply the scenario can make, as
/// famfsd does, and has the kernel model judge it.
fn serve(cfg: &Config) {
    let p = &cfg.profile;
    let buffer = p.max_reply as usize;
    for n in &cfg.nodes {
        let Some(fmap) = n.fmap() else {
            continue;
        };
        if fmap.encoded_len() > SERVE_LIMIT {
            continue;
        }
        let tmpl = fmap.to_raw(p);
        let plain = tmpl.to_bytes();
        let _ = famfs_proto::kernel_verdict(p, &plain).to_string();
        let rules: Vec<_> = cfg
            .rules
            .iter()
            .filter(|r| r.fault.class() == FaultClass::Fmap)
            .filter(|r| r.node.is_none_or(|id| id == n.nodeid))
            .collect();
        if rules.is_empty() {
            continue;
        }
        let bound = rules.iter().try_fold(plain.len(), |a, r| {
            growth(&r.fault, buffer).and_then(|g| a.checked_add(g))
        });
        // An overflowing size is built anyway: the server must not panic
        // on it, and it allocates nothing before the arithmetic.
        if bound.is_some_and(|b| b > SERVE_LIMIT) {
            continue;
        }
        let mut raw = tmpl.clone();
        let mut post = FmapPost::default();
        for r in &rules {
            r.fault.apply_fmap(&mut raw, p, &mut post);
        }
        let bytes = finish_fmap(&mut raw, p, post, buffer);
        let v = famfs_proto::judge_exchange(p, &bytes, Some(&plain));
        let _ = v.to_string();
    }
    for r in cfg
        .rules
        .iter()
        .filter(|r| r.fault.class() == FaultClass::Daxdev)
    {
        let index = r.index.unwrap_or(0);
        let configured = cfg.daxdevs.get(&index).map(String::as_str);
        let size = p.daxdev_reply_size as usize;
        if size > SERVE_LIMIT || growth(&r.fault, 0).is_none_or(|g| g > SERVE_LIMIT) {
            continue;
        }
        let Ok(d) = DaxdevOut::with_path(index as u16, configured.unwrap_or("")) else {
            continue;
        };
        let mut out = d.to_bytes();
        out.resize(size, 0);
        r.fault.apply_daxdev(&mut out, index as u16, configured);
        let _ = famfs_proto::daxdev_verdict(p, &out).errno();
    }
}

impl Fuzz for Scenarios {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        if rng.chance(1, 2) {
            super::mutated(rng, &self.examples)
        } else {
            let doc = yamlgen::document(rng, &self.schema);
            if rng.chance(1, 4) {
                let donor = rng.pick(&self.examples).clone();
                super::mutate::text(rng, &doc, &donor)
            } else {
                doc.into_bytes()
            }
        }
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        let text = as_text(input);
        // The file's own profile, and each built-in one as `--profile`.
        let which = input.len() % (self.profiles.len() + 1);
        let profile = self.profiles.get(which).cloned();
        match Config::from_text(&self.path, &text, profile) {
            Ok(cfg) => {
                serve(&cfg);
                let _ = cfg.lookup_path("/f");
                Outcome::Accepted
            }
            Err(e) => located(&e, &self.path),
        }
    }
}
