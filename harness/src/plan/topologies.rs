//! Named topologies (`images/topologies.yaml`): machines a run, a shell or
//! a nightly cell asks for by name (`NAME[:SIZE][:fsdev|:devdax]`). A name
//! decides the kind and number of pmem devices and a least size; each case
//! keeps its own size when larger, and its dax mode. A case that names its
//! kind (`requires.pmem_kind`) runs only on that kind.

use crate::contract::topology::{
    parse_size_mib, DaxMode, PmemKind, PmemSpec, Topology, ALIGN_2M, CXL_REGION_MIB,
};
use crate::plan::case::Case;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file, relative to the checkout.
pub const FILE: &str = "images/topologies.yaml";

/// One entry of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub description: String,
    pub kind: PmemKind,
    /// The least size of each device (default 512M, 256M for CXL).
    pub size: Option<String>,
    #[serde(default = "one")]
    pub devices: u32,
}

fn one() -> u32 {
    1
}

/// The named topologies of a checkout.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub entries: BTreeMap<String, Entry>,
}

impl Table {
    pub fn load(root: &Path) -> Result<Table> {
        let path = root.join(FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let entries: BTreeMap<String, Entry> = crate::base::yaml::parse(&path, &text, 0)?;
        if entries.is_empty() {
            // Line 1: the file as a whole names nothing.
            bail!("{}:1: no topology named", path.display());
        }
        for (name, e) in &entries {
            let at = format!(
                "{}:{}",
                path.display(),
                crate::base::yaml::line_of(&text, 1, &format!("{name}:"))
            );
            if let Some(s) = &e.size {
                let mib = parse_size_mib(s).map_err(|err| anyhow::anyhow!("{at}: {err}"))?;
                if e.kind.is_cxl() && mib % CXL_REGION_MIB != 0 {
                    bail!("{at}: size {s}: CXL regions come in multiples of 256M");
                }
            }
            if e.devices == 0 || e.devices > 4 {
                bail!("{at}: devices must be 1 to 4");
            }
            if e.devices > 1 && e.kind.is_cxl() {
                bail!("{at}: more than one CXL device is not supported; use nvdimm or memmap");
            }
        }
        Ok(Table { path, entries })
    }

    pub fn names(&self) -> String {
        self.entries.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// `NAME[:SIZE][:fsdev|:devdax]`, e.g. `cxl:512M`, `large:fsdev`.
    pub fn choose(&self, spec: &str) -> Result<Choice> {
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or_default();
        let Some(entry) = self.entries.get(name) else {
            let hint = crate::base::yaml::closest(name, self.entries.keys().map(String::as_str))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            bail!(
                "topology `{spec}`: no topology `{name}` in {} (one of {}){hint}",
                self.path.display(),
                self.names()
            );
        };
        let mut choice = Choice {
            name: name.to_string(),
            entry: entry.clone(),
            size_mib: None,
            mode: None,
        };
        for p in parts {
            match p {
                "fsdev" => choice.mode = Some(DaxMode::Fsdev),
                "devdax" => choice.mode = Some(DaxMode::Devdax),
                size => {
                    let mib = parse_size_mib(size)
                        .map_err(|e| anyhow::anyhow!("topology `{spec}`: {e}"))?;
                    if entry.kind.is_cxl() && mib % CXL_REGION_MIB != 0 {
                        bail!("topology `{spec}`: CXL regions come in multiples of 256M");
                    }
                    choice.size_mib = Some(mib);
                }
            }
        }
        Ok(choice)
    }
}

/// A named topology as a run asked for it.
#[derive(Debug, Clone)]
pub struct Choice {
    pub name: String,
    pub entry: Entry,
    /// `:SIZE` of the request.
    pub size_mib: Option<u64>,
    /// `:fsdev` / `:devdax` of the request (shells; cases keep their own).
    pub mode: Option<DaxMode>,
}

impl Choice {
    /// The least size of each device.
    fn least_mib(&self) -> u64 {
        self.size_mib
            .or_else(|| {
                self.entry
                    .size
                    .as_deref()
                    .and_then(|s| parse_size_mib(s).ok())
            })
            .unwrap_or(if self.entry.kind.is_cxl() {
                CXL_REGION_MIB
            } else {
                512
            })
    }

    /// The machine itself (a shell's).
    pub fn topology(&self) -> Topology {
        Topology {
            pmem: Some(PmemSpec {
                kind: self.entry.kind,
                size_mib: self.least_mib(),
                mode: self.mode.unwrap_or(DaxMode::Devdax),
                align: ALIGN_2M,
                devices: self.entry.devices,
            }),
        }
    }

    /// The machine `case` gets under this name, or why it cannot run on it.
    pub fn apply(&self, case: &Case) -> std::result::Result<Topology, String> {
        let Some(want) = &case.topology.pmem else {
            return Ok(case.topology.clone());
        };
        if let Some(k) = case.meta.requires.pmem_kind {
            if k != self.entry.kind {
                return Err(format!(
                    "the case needs {} pmem (requires.pmem_kind); topology `{}` has {} pmem",
                    k.name(),
                    self.name,
                    self.entry.kind.name()
                ));
            }
        }
        if want.devices > 1 && self.entry.kind.is_cxl() {
            return Err(format!(
                "the case needs {} dax devices (requires.dax_devices); topology `{}` has one CXL device",
                want.devices, self.name
            ));
        }
        let mut size_mib = want.size_mib.max(self.least_mib());
        if self.entry.kind.is_cxl() {
            size_mib = size_mib.div_ceil(CXL_REGION_MIB) * CXL_REGION_MIB;
        }
        Ok(Topology {
            pmem: Some(PmemSpec {
                kind: self.entry.kind,
                size_mib,
                mode: want.mode,
                align: want.align,
                devices: want.devices.max(self.entry.devices),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_shipped_table_names_every_kind() {
        let t = Table::load(&checkout()).unwrap();
        for name in [
            "nvdimm",
            "memmap",
            "cxl",
            "cxl-volatile",
            "two-dax",
            "large",
        ] {
            assert!(
                t.entries.contains_key(name),
                "{name} missing: {}",
                t.names()
            );
        }
        let large = t.choose("large").unwrap().topology().pmem.unwrap();
        assert!(large.size_mib >= 4096 + 256, "{large:?}");
        assert_eq!(
            t.choose("two-dax")
                .unwrap()
                .topology()
                .pmem
                .unwrap()
                .devices,
            2
        );
    }

    #[test]
    fn requests_by_name() {
        let t = Table::load(&checkout()).unwrap();
        let c = t.choose("cxl:512M:fsdev").unwrap().topology().pmem.unwrap();
        assert_eq!(
            (c.kind, c.size_mib, c.mode),
            (PmemKind::Cxl, 512, DaxMode::Fsdev)
        );
        assert_eq!(
            t.choose("cxl").unwrap().topology().pmem.unwrap().size_mib,
            256
        );
        assert_eq!(
            t.choose("memmap:256M")
                .unwrap()
                .topology()
                .pmem
                .unwrap()
                .size_mib,
            256
        );
        for bad in ["pmem", "cxl:300M", "nvdimm:3M", "nvdimm:x"] {
            let e = t.choose(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("topology `{bad}`: ")), "{e}");
        }
        let e = t.choose("cxl-volatil").unwrap_err().to_string();
        assert!(e.contains("did you mean `cxl-volatile`"), "{e}");
    }

    fn case(header: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("g")).unwrap();
        std::fs::write(
            dir.path().join("g/001"),
            format!("#!/bin/sh\n# ---\n# description: x\n{header}# ---\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("g/001.out"), "").unwrap();
        crate::plan::case::discover(dir.path()).unwrap().remove(0)
    }

    #[test]
    fn a_name_replaces_the_kind_and_keeps_size_and_mode() {
        let t = Table::load(&checkout()).unwrap();
        let fs = case("# requires:\n#   pmem: 768M\n#   dax_mode: fsdev\n");
        let got = t.choose("cxl").unwrap().apply(&fs).unwrap().pmem.unwrap();
        // 768M is three CXL regions; the mode is the case's.
        assert_eq!(
            (got.kind, got.size_mib, got.mode),
            (PmemKind::Cxl, 768, DaxMode::Fsdev)
        );
        let got = t
            .choose("two-dax")
            .unwrap()
            .apply(&fs)
            .unwrap()
            .pmem
            .unwrap();
        assert_eq!((got.kind, got.devices), (PmemKind::Nvdimm, 2));
        let small = case("# requires:\n#   pmem: 256M\n");
        let got = t
            .choose("large")
            .unwrap()
            .apply(&small)
            .unwrap()
            .pmem
            .unwrap();
        assert!(got.size_mib > 4096);
        let none = case("");
        assert_eq!(
            t.choose("cxl").unwrap().apply(&none).unwrap(),
            Topology::default()
        );
        let two = case("# requires:\n#   pmem: 256M\n#   dax_devices: 2\n");
        let e = t.choose("cxl").unwrap().apply(&two).unwrap_err();
        assert!(e.contains("needs 2 dax devices"), "{e}");
        let got = t
            .choose("memmap")
            .unwrap()
            .apply(&two)
            .unwrap()
            .pmem
            .unwrap();
        assert_eq!((got.kind, got.devices), (PmemKind::Memmap, 2));
        let pinned = case("# requires:\n#   pmem: 256M\n#   pmem_kind: cxl\n");
        let e = t.choose("memmap").unwrap().apply(&pinned).unwrap_err();
        assert_eq!(
            e,
            "the case needs cxl pmem (requires.pmem_kind); topology `memmap` has memmap pmem"
        );
    }

    #[test]
    fn bad_tables_are_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        for (text, want) in [
            (
                "a:\n  description: x\n  kind: nvdimm\nb:\n  description: y\n  kind: cxl\n  size: 300M\n",
                ":4: size 300M: CXL regions",
            ),
            (
                "a:\n  description: x\n  kind: nvdimm\n  devices: 9\n",
                ":1: devices must be 1 to 4",
            ),
            ("a:\n  description: x\n  kind: floppy\n", "floppy"),
            ("a:\n  description: x\n  kind: nvdimm\n  colour: red\n", "colour"),
        ] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            let e = format!("{:#}", Table::load(dir.path()).unwrap_err());
            assert!(e.contains(FILE) && e.contains(want), "{e}");
        }
    }
}
