//! The other YAML a person hands the harness: named topologies
//! (`images/topologies.yaml`, loaded by [`crate::topologies::Table::load`]
//! from a scratch checkout, then asked for `NAME[:SIZE][:MODE]` specs as
//! `--topology` gives them) and initramfs specs (`images/*.yaml`, by
//! [`crate::image::initramfs::load_spec`]).

use super::yamlgen::{self, Schema};
use super::{as_text, examples, located, mutate, Fuzz, Outcome, Rng};
use anyhow::Result;
use std::path::PathBuf;

fn yaml_input(rng: &mut Rng, examples: &[String], schema: &Schema) -> Vec<u8> {
    if rng.chance(1, 2) {
        super::mutated(rng, examples)
    } else {
        let doc = yamlgen::document(rng, schema);
        if rng.chance(1, 4) {
            let donor = rng.pick(examples).clone();
            mutate::text(rng, &doc, &donor)
        } else {
            doc.into_bytes()
        }
    }
}

pub fn topologies_schema() -> Schema {
    Schema::dict(
        Schema::Str(&["nvdimm", "cxl", "two-dax", "large", "x:y", ""]),
        Schema::Map(vec![
            ("description", Schema::Str(&["a machine"])),
            (
                "kind",
                Schema::Enum(&["nvdimm", "memmap", "cxl", "cxl-volatile"]),
            ),
            (
                "size",
                Schema::Num(&["512M", "256M", "5G", "3M", "0", "1T"]),
            ),
            ("devices", Schema::Num(&["1", "2", "4", "5", "0"])),
        ]),
    )
}

pub struct Topologies {
    _dir: tempfile::TempDir,
    root: PathBuf,
    path: PathBuf,
    examples: Vec<String>,
    schema: Schema,
}

impl Topologies {
    pub fn new() -> Result<Topologies> {
        let ex = examples("images", |n| n == "topologies.yaml")?;
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let path = root.join(crate::topologies::FILE);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        Ok(Topologies {
            _dir: dir,
            root,
            path,
            examples: ex.into_iter().map(|(_, t)| t).collect(),
            schema: topologies_schema(),
        })
    }
}

impl Fuzz for Topologies {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        yaml_input(rng, &self.examples, &self.schema)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if std::fs::write(&self.path, as_text(input).as_bytes()).is_err() {
            return Outcome::Accepted;
        }
        match crate::topologies::Table::load(&self.root) {
            Ok(t) => {
                let _ = t.names();
                // `--topology` specs: errors name the spec, not the file.
                let names: Vec<String> = t.entries.keys().cloned().collect();
                for (i, n) in names.iter().enumerate().take(4) {
                    let spec = match (i + input.len()) % 6 {
                        0 => n.clone(),
                        1 => format!("{n}:512M"),
                        2 => format!("{n}:3M:fsdev"),
                        3 => format!("{n}:18446744073709551615G"),
                        4 => format!("{n}::devdax:"),
                        _ => format!("{n}x"),
                    };
                    if let Ok(c) = t.choose(&spec) {
                        let _ = c.topology().describe();
                    }
                }
                Outcome::Accepted
            }
            Err(e) => located(&e, &self.path),
        }
    }
}

pub fn image_schema() -> Schema {
    let words = || {
        Schema::list(Schema::Str(&[
            "ndctl", "daxctl", "fh-guest", "", "../x", "/abs",
        ]))
    };
    Schema::Map(vec![
        ("busybox", Schema::Str(&["busybox", "/bin/busybox", ""])),
        ("programs", words()),
        ("harness", words()),
        ("init", Schema::Str(&["init.sh", "", "../init"])),
        (
            "dirs",
            Schema::list(Schema::Str(&["/proc", "/sys", "rel", "/"])),
        ),
    ])
}

pub struct Images {
    _dir: tempfile::TempDir,
    path: PathBuf,
    examples: Vec<String>,
    schema: Schema,
}

impl Images {
    pub fn new() -> Result<Images> {
        let ex = examples("images", |n| n.ends_with(".yaml") && n != "topologies.yaml")?;
        let dir = tempfile::tempdir()?;
        Ok(Images {
            path: dir.path().join("fuzz.yaml"),
            _dir: dir,
            examples: ex.into_iter().map(|(_, t)| t).collect(),
            schema: image_schema(),
        })
    }
}

impl Fuzz for Images {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        yaml_input(rng, &self.examples, &self.schema)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if std::fs::write(&self.path, as_text(input).as_bytes()).is_err() {
            return Outcome::Accepted;
        }
        match crate::image::initramfs::load_spec(&self.path) {
            Ok(_) => Outcome::Accepted,
            Err(e) => located(&e, &self.path),
        }
    }
}
