//! Case files (`cases/GROUP/NNN`): the YAML header in `# ` comments
//! between two `# ---` lines, then the script. Loaded through
//! [`crate::plan::case::load`] from a scratch cases directory, the way a run
//! reads them.

use super::yamlgen::{self, Schema};
use super::{as_text, examples as examples_in, located, mutate, Fuzz, Outcome, Rng};
use anyhow::Result;
use std::path::PathBuf;

/// The header's grammar (cases/README.md).
pub fn schema() -> Schema {
    let kinds = Schema::Enum(&["nvdimm", "memmap", "cxl", "cxl-volatile"]);
    let sizes = Schema::Num(&["256M", "512M", "2M", "3M", "1G", "0", "5G", "768M"]);
    Schema::Map(vec![
        (
            "description",
            Schema::Str(&[
                "checks a thing",
                "",
                "  ",
                "fmap parsing, one trial per rule",
            ]),
        ),
        (
            "groups",
            Schema::list(Schema::Str(&[
                "quick",
                "dax",
                "famfs",
                "famfs-fmap",
                "explicit",
            ])),
        ),
        (
            "requires",
            Schema::Map(vec![
                ("pmem", sizes),
                ("pmem_kind", kinds),
                ("dax_devices", Schema::Num(&["1", "2", "4", "5", "0"])),
                ("famfs_user", Schema::Bool),
                ("dax_mode", Schema::Enum(&["devdax", "fsdev"])),
                (
                    "kconfig",
                    Schema::list(Schema::Str(&[
                        "DEV_DAX",
                        "!FUSE_FAMFS_DAX",
                        "CONFIG_FS_DAX",
                        "lower",
                        "!",
                        "",
                        "A B",
                    ])),
                ),
            ]),
        ),
        (
            "timeout",
            Schema::Num(&["60", "1", "0", "600", "-5", "1.5", "60s"]),
        ),
        (
            "expect",
            Schema::Map(vec![(
                "fail",
                Schema::Str(&[
                    "WARNING",
                    "KASAN",
                    "kasan",
                    "WARNING in dax_iomap_rw",
                    "WARNNG",
                    "BUG: soft lockup",
                    "fatal signal SIGSEGV in x",
                ]),
            )]),
        ),
        (
            "filters",
            Schema::list(Schema::Map(vec![
                (
                    "regex",
                    Schema::Str(&["\\d+ ms", "(", "[a-", "(?P<x>a)", ".*", "a{1000}{1000}"]),
                ),
                ("replace", Schema::Str(&["N ms", "$1", "${x}", "$"])),
            ])),
        ),
        (
            "params",
            Schema::list(Schema::OneOf(vec![
                Schema::Map(vec![
                    (
                        "name",
                        Schema::Str(&["a", "nextents-0", "Bad Name", "", "x.y_z"]),
                    ),
                    ("fresh_boot", Schema::Bool),
                    (
                        "fault",
                        Schema::Str(&["{nextents: 0}", "offset_wrap", "never_reply"]),
                    ),
                    ("size", Schema::Num(&["2M", "4096"])),
                ]),
                Schema::Str(&["a"]),
            ])),
        ),
        ("fresh_boot", Schema::Bool),
    ])
}

pub struct Cases {
    _dir: tempfile::TempDir,
    root: PathBuf,
    path: PathBuf,
    examples: Vec<String>,
    schema: Schema,
}

impl Cases {
    pub fn new() -> Result<Cases> {
        let cases = crate::image::guest_program::workspace_root().join("cases");
        let mut examples = Vec::new();
        for g in std::fs::read_dir(&cases)?.flatten() {
            if g.path().is_dir() {
                let rel = format!("cases/{}", g.file_name().to_string_lossy());
                let is_case = |n: &str| n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit());
                if let Ok(v) = examples_in(&rel, is_case) {
                    examples.extend(v.into_iter().map(|(_, t)| t));
                }
            }
        }
        anyhow::ensure!(
            !examples.is_empty(),
            "no case files under {}",
            cases.display()
        );
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("cases");
        let path = root.join("fuzz/001");
        std::fs::create_dir_all(root.join("fuzz"))?;
        std::fs::write(root.join("fuzz/001.out"), "")?;
        Ok(Cases {
            _dir: dir,
            root,
            path,
            examples,
            schema: schema(),
        })
    }
}

/// A YAML text as a case header, with the file around it.
fn as_case(rng: &mut Rng, yaml: &str) -> String {
    let mut s = String::new();
    if rng.chance(4, 5) {
        s.push_str("#!/bin/sh\n# SPDX-License-Identifier: MIT\n");
    }
    s.push_str("# ---\n");
    for l in yaml.lines() {
        match rng.below(40) {
            0 => s.push_str(l),                // a header line without `#`
            1 => s.push_str(&format!("#{l}")), // `#` without the space
            _ => s.push_str(&format!("# {l}")),
        }
        s.push('\n');
    }
    match rng.below(30) {
        0 => {}                    // never closed
        1 => s.push_str("#---\n"), // closed wrongly
        2 => s.push_str("# ---\n# ---\n"),
        _ => s.push_str("# ---\n"),
    }
    s.push_str(". \"$FH_COMMON\"\necho hi\n");
    s
}

impl Fuzz for Cases {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        match rng.below(10) {
            0..=4 => super::mutated(rng, &self.examples),
            5..=8 => {
                let yaml = yamlgen::document(rng, &self.schema);
                let text = as_case(rng, &yaml);
                if rng.chance(1, 3) {
                    let donor = rng.pick(&self.examples).clone();
                    mutate::text(rng, &text, &donor)
                } else {
                    text.into_bytes()
                }
            }
            _ => {
                // The header of one case and the lines of another.
                let a = rng.pick(&self.examples).clone();
                let b = rng.pick(&self.examples).clone();
                let cut = rng.below(a.len() + 1);
                let cut = (cut..=a.len())
                    .find(|&i| a.is_char_boundary(i))
                    .unwrap_or(a.len());
                let from = rng.below(b.len() + 1);
                let from = (from..=b.len())
                    .find(|&i| b.is_char_boundary(i))
                    .unwrap_or(b.len());
                format!("{}{}", &a[..cut], &b[from..]).into_bytes()
            }
        }
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        let text = as_text(input);
        if std::fs::write(&self.path, text.as_bytes()).is_err() {
            return Outcome::Accepted;
        }
        match crate::plan::case::load(&self.root, &self.path) {
            Ok(c) => {
                for t in c.expand() {
                    let _ = t.param_env();
                    let _ = t.fresh_boot();
                    let _ = t.filter("took 12 ms\nline two\n");
                    let _ = t.unmet_kconfig(&crate::kernel::config::DotConfig::default());
                }
                Outcome::Accepted
            }
            Err(e) => located(&e, &self.path),
        }
    }
}
