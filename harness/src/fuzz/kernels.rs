//! Named kernels (`kernel-configs/kernels/*.yaml`) and nightly matrices
//! (`kernel-configs/matrix/*.yaml`), loaded from scratch files through the
//! loaders a run uses: [`crate::kernel::named::load`] (from a scratch
//! checkout, so relative paths resolve inside it) and
//! [`crate::nightly::Matrix::load`] (against this checkout's kernels and
//! topologies).

use super::yamlgen::{self, Schema};
use super::{as_text, examples, located, Fuzz, Outcome, Rng};
use anyhow::Result;
use std::path::PathBuf;

/// The named-kernel grammar.
pub fn named_schema() -> Schema {
    let case = Schema::Str(&[
        "famfs/010",
        "famfs/010[chunk-size-0]",
        "famfs/999",
        "x",
        "famfs/010[",
    ]);
    Schema::Map(vec![
        ("description", Schema::Str(&["famfs V10 on 7.3.4", "", " "])),
        (
            "base",
            Schema::Str(&[
                "debian",
                "tree:../linux",
                "git:../linux@v7.3",
                "git:../linux",
                "git:@",
                "tree:",
                "svn:x",
            ]),
        ),
        (
            "patches",
            Schema::OneOf(vec![
                Schema::Str(&["../shared/series", "kernel-configs/patches/fix", ""]),
                Schema::list(Schema::Str(&["a/series", "/abs/series"])),
            ]),
        ),
        ("allow-fuzz", Schema::Bool),
        (
            "fragments",
            Schema::list(Schema::Str(&["default", "debug", "+debug", "x.config"])),
        ),
        (
            "known-defects",
            Schema::list(Schema::Map(vec![
                ("case", case.clone()),
                (
                    "title",
                    Schema::Str(&["WARNING in f", "", "divide error in g"]),
                ),
                ("output", Schema::list(Schema::Str(&["Bus error", ""]))),
                ("why", Schema::Str(&["a defect", ""])),
            ])),
        ),
        (
            "expunge",
            Schema::list(Schema::Map(vec![
                ("case", case),
                ("why", Schema::Str(&["hangs", ""])),
            ])),
        ),
        ("famfs-user", Schema::Str(&["../shared/famfs-user"])),
    ])
}

/// The matrix grammar.
pub fn matrix_schema() -> Schema {
    let topologies = || {
        Schema::list(Schema::Str(&[
            "nvdimm",
            "cxl",
            "cxl:512M",
            "cxl:3M",
            "large:fsdev",
            "two-dax:devdax",
            "memmap:0",
            "nvdimm::",
            "bogus",
            ":",
        ]))
    };
    Schema::Map(vec![
        (
            "kernels",
            Schema::list(Schema::Str(&["default", "famfs-v10", "debug", "nope", ""])),
        ),
        (
            "profiles",
            Schema::list(Schema::Str(&[
                "auto",
                "v10",
                "next",
                "famfs-6.14",
                "custom:max_extents=3",
                "custom:alignment=3",
                "v9",
            ])),
        ),
        (
            "selections",
            Schema::list(Schema::Map(vec![
                ("name", Schema::Str(&["smoke", "famfs", "", "a/b", "dax"])),
                (
                    "filters",
                    Schema::list(Schema::Str(&["dax/", "fuse/", "selftest/001"])),
                ),
                ("groups", Schema::list(Schema::Str(&["famfs", "dax"]))),
                ("skip", Schema::list(Schema::Str(&["famfs/010"]))),
                ("topologies", topologies()),
            ])),
        ),
        ("topologies", topologies()),
    ])
}

pub struct Named {
    _dir: tempfile::TempDir,
    root: PathBuf,
    path: PathBuf,
    examples: Vec<String>,
    schema: Schema,
}

impl Named {
    pub fn new() -> Result<Named> {
        let ex = examples("kernel-configs/kernels", |n| n.ends_with(".yaml"))?;
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let kernels = crate::kernel::named::dir(&root);
        std::fs::create_dir_all(&kernels)?;
        Ok(Named {
            path: kernels.join("fuzz.yaml"),
            _dir: dir,
            root,
            examples: ex.into_iter().map(|(_, t)| t).collect(),
            schema: named_schema(),
        })
    }
}

fn yaml_input(rng: &mut Rng, examples: &[String], schema: &Schema) -> Vec<u8> {
    if rng.chance(1, 2) {
        super::mutated(rng, examples)
    } else {
        let doc = yamlgen::document(rng, schema);
        if rng.chance(1, 4) {
            let donor = rng.pick(examples).clone();
            super::mutate::text(rng, &doc, &donor)
        } else {
            doc.into_bytes()
        }
    }
}

impl Fuzz for Named {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        yaml_input(rng, &self.examples, &self.schema)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if std::fs::write(&self.path, as_text(input).as_bytes()).is_err() {
            return Outcome::Accepted;
        }
        match crate::kernel::named::load(&self.root, "fuzz") {
            Ok(k) => {
                let ids = [
                    "famfs/010".to_string(),
                    "famfs/010[chunk-size-0]".to_string(),
                ];
                match k.check_cases(&ids) {
                    Ok(()) => Outcome::Accepted,
                    Err(e) => located(&e, &self.path),
                }
            }
            Err(e) => located(&e, &self.path),
        }
    }
}

pub struct Matrices {
    _dir: tempfile::TempDir,
    path: PathBuf,
    checkout: PathBuf,
    examples: Vec<String>,
    schema: Schema,
}

impl Matrices {
    pub fn new() -> Result<Matrices> {
        let ex = examples("kernel-configs/matrix", |n| n.ends_with(".yaml"))?;
        let dir = tempfile::tempdir()?;
        Ok(Matrices {
            path: dir.path().join("fuzz.yaml"),
            _dir: dir,
            checkout: crate::image::guest_program::workspace_root(),
            examples: ex.into_iter().map(|(_, t)| t).collect(),
            schema: matrix_schema(),
        })
    }
}

impl Fuzz for Matrices {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        yaml_input(rng, &self.examples, &self.schema)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if std::fs::write(&self.path, as_text(input).as_bytes()).is_err() {
            return Outcome::Accepted;
        }
        match crate::nightly::Matrix::load(&self.path, &self.checkout) {
            Ok(m) => {
                let _ = m.cells();
                Outcome::Accepted
            }
            Err(e) => located(&e, &self.path),
        }
    }
}
