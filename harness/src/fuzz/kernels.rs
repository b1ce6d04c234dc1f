//! Named kernels (`kernel-configs/kernels/*.yaml`) and nightly matrices
//! (`kernel-configs/matrix/*.yaml`), loaded from scratch files through the
//! loaders a run uses: [`crate::kernel::named::load`] (from a scratch
//! checkout, so relative paths resolve inside it) and
//! [`crate::commands::nightly::Matrix::load`] (against this checkout's kernels and
//! topologies).

use super::yamlgen::{Schema, YamlFile};
use super::{located, Fuzz, Outcome, Rng};
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

pub struct Named(YamlFile);

impl Named {
    pub fn new() -> Result<Named> {
        let file = crate::kernel::named::dir(std::path::Path::new("")).join("fuzz.yaml");
        YamlFile::new(
            "kernel-configs/kernels",
            |n| n.ends_with(".yaml"),
            &file.to_string_lossy(),
            named_schema(),
        )
        .map(Named)
    }
}

impl Fuzz for Named {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        self.0.input(rng)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if !self.0.put(input) {
            return Outcome::Accepted;
        }
        match crate::kernel::named::load(&self.0.root, "fuzz") {
            Ok(k) => {
                let ids = [
                    "famfs/010".to_string(),
                    "famfs/010[chunk-size-0]".to_string(),
                ];
                match k.check_cases(&ids) {
                    Ok(()) => Outcome::Accepted,
                    Err(e) => located(&e, &self.0.path),
                }
            }
            Err(e) => located(&e, &self.0.path),
        }
    }
}

/// A matrix is checked against this checkout's kernels and topologies.
pub struct Matrices {
    file: YamlFile,
    checkout: PathBuf,
}

impl Matrices {
    pub fn new() -> Result<Matrices> {
        Ok(Matrices {
            file: YamlFile::new(
                "kernel-configs/matrix",
                |n| n.ends_with(".yaml"),
                "fuzz.yaml",
                matrix_schema(),
            )?,
            checkout: crate::image::guest_program::workspace_root(),
        })
    }
}

impl Fuzz for Matrices {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        self.file.input(rng)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if !self.file.put(input) {
            return Outcome::Accepted;
        }
        match crate::commands::nightly::Matrix::load(&self.file.path, &self.checkout) {
            Ok(m) => {
                let _ = m.cells();
                Outcome::Accepted
            }
            Err(e) => located(&e, &self.file.path),
        }
    }
}
