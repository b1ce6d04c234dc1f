//! The other YAML a person hands the harness: named topologies
//! (`images/topologies.yaml`, loaded by [`crate::plan::topologies::Table::load`]
//! from a scratch checkout, then asked for `NAME[:SIZE][:MODE]` specs as
//! `--topology` gives them) and initramfs specs (`images/*.yaml`, by
//! [`crate::image::initramfs::load_spec`]).

use super::yamlgen::{Schema, YamlFile};
use super::{located, Fuzz, Outcome, Rng};
use anyhow::Result;

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

pub struct Topologies(YamlFile);

impl Topologies {
    pub fn new() -> Result<Topologies> {
        YamlFile::new(
            "images",
            |n| n == "topologies.yaml",
            crate::plan::topologies::FILE,
            topologies_schema(),
        )
        .map(Topologies)
    }
}

impl Fuzz for Topologies {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        self.0.input(rng)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if !self.0.put(input) {
            return Outcome::Accepted;
        }
        match crate::plan::topologies::Table::load(&self.0.root) {
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
            Err(e) => located(&e, &self.0.path),
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

pub struct Images(YamlFile);

impl Images {
    pub fn new() -> Result<Images> {
        YamlFile::new(
            "images",
            |n| n.ends_with(".yaml") && n != "topologies.yaml",
            "fuzz.yaml",
            image_schema(),
        )
        .map(Images)
    }
}

impl Fuzz for Images {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        self.0.input(rng)
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        if !self.0.put(input) {
            return Outcome::Accepted;
        }
        match crate::image::initramfs::load_spec(&self.0.path) {
            Ok(_) => Outcome::Accepted,
            Err(e) => located(&e, &self.0.path),
        }
    }
}
