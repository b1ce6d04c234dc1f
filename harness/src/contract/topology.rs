//! The machine a case needs, as data. Cases state requirements (a pmem
//! device of some size, its mode); the planner turns them into one topology
//! per boot; both launch backends turn a topology into QEMU arguments.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum PmemKind {
    /// QEMU NVDIMM backed by a host file (ACPI NFIT).
    Nvdimm,
    /// `memmap=SIZE!START` legacy pmem carved out of guest RAM.
    Memmap,
    /// A persistent CXL type-3 device behind a CXL host bridge (q35,cxl=on);
    /// the runner creates a region on it and a devdax namespace in that.
    Cxl,
    /// A volatile CXL type-3 device (QEMU >= 8): the runner creates a ram
    /// region, whose dax device is used as it comes (no namespace).
    CxlVolatile,
}

impl PmemKind {
    /// The oldest QEMU that emulates this kind, if not every one does.
    pub fn min_qemu(self) -> Option<(u32, u32)> {
        match self {
            PmemKind::CxlVolatile => Some((8, 0)),
            _ => None,
        }
    }
    pub fn is_cxl(self) -> bool {
        matches!(self, PmemKind::Cxl | PmemKind::CxlVolatile)
    }
    pub fn name(self) -> &'static str {
        match self {
            PmemKind::Nvdimm => "nvdimm",
            PmemKind::Memmap => "memmap",
            PmemKind::Cxl => "cxl",
            PmemKind::CxlVolatile => "cxl-volatile",
        }
    }
}

/// CXL regions come in multiples of 256 MiB.
pub const CXL_REGION_MIB: u64 = 256;

/// How the runner prepares the device before the cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum DaxMode {
    /// `/dev/daxN.M` bound to `device_dax` (mmap-able char device).
    Devdax,
    /// Bound to `fsdev_dax` (famfs mode).
    Fsdev,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct PmemSpec {
    pub kind: PmemKind,
    pub size_mib: u64,
    pub mode: DaxMode,
    /// Device alignment in bytes (2 MiB for PMD mappings).
    pub align: u64,
    /// How many such devices, each `size_mib` (FH_DAX, FH_DAX2, ...).
    #[serde(default = "one")]
    pub devices: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash, Default)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub pmem: Option<PmemSpec>,
}

pub const MIB: u64 = 1 << 20;
pub const ALIGN_2M: u64 = 2 * MIB;

/// Parse a size such as `256M`, `1G`, `2097152`, into MiB (must be whole
/// 2 MiB multiples: NVDIMM and devdax want 2 MiB alignment).
pub fn parse_size_mib(s: &str) -> Result<u64> {
    let bytes = famfs_proto::Size::parse(s).map_err(|e| anyhow::anyhow!("{e}"))?;
    if bytes == 0 || bytes % ALIGN_2M != 0 {
        bail!("size `{}` must be a non-zero multiple of 2M", s.trim());
    }
    Ok(bytes / MIB)
}

impl Topology {
    /// Can a case needing `need` run on this topology?
    pub fn satisfies(&self, need: &Topology) -> bool {
        match (&self.pmem, &need.pmem) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(have), Some(want)) => {
                have.kind == want.kind
                    && have.mode == want.mode
                    && have.align == want.align
                    && have.size_mib >= want.size_mib
                    && have.devices >= want.devices
            }
        }
    }

    /// Widen `self` so it also satisfies `need`, if the two are compatible.
    pub fn merge(&self, need: &Topology) -> Option<Topology> {
        match (&self.pmem, &need.pmem) {
            (_, None) => Some(self.clone()),
            (None, Some(_)) => Some(need.clone()),
            (Some(a), Some(b)) if a.kind == b.kind && a.mode == b.mode && a.align == b.align => {
                Some(Topology {
                    pmem: Some(PmemSpec {
                        size_mib: a.size_mib.max(b.size_mib),
                        devices: a.devices.max(b.devices),
                        ..a.clone()
                    }),
                })
            }
            _ => None,
        }
    }

    /// Guest RAM for this topology. memmap= pmem is carved from RAM above 4G.
    pub fn memory_mib(&self) -> u64 {
        match &self.pmem {
            Some(PmemSpec {
                kind: PmemKind::Memmap,
                size_mib,
                devices,
                ..
            }) => 4096 + size_mib * u64::from(*devices),
            _ => 1536,
        }
    }

    pub fn describe(&self) -> String {
        match &self.pmem {
            None => "no pmem".into(),
            Some(p) => format!(
                "{}{} pmem {} MiB as {:?}, align {} KiB",
                if p.devices > 1 {
                    format!("{} x ", p.devices)
                } else {
                    String::new()
                },
                p.kind.name(),
                p.size_mib,
                p.mode,
                p.align / 1024
            )
            .to_lowercase(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nv(size: u64) -> Topology {
        Topology {
            pmem: Some(PmemSpec {
                kind: PmemKind::Nvdimm,
                size_mib: size,
                mode: DaxMode::Devdax,
                align: ALIGN_2M,
                devices: 1,
            }),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_mib("256M").unwrap(), 256);
        assert_eq!(parse_size_mib("1G").unwrap(), 1024);
        assert_eq!(parse_size_mib("2097152").unwrap(), 2);
        assert!(parse_size_mib("3M")
            .unwrap_err()
            .to_string()
            .contains("multiple of 2M"));
        assert!(parse_size_mib("lots")
            .unwrap_err()
            .to_string()
            .contains("bad size 'lots'"));
    }

    #[test]
    fn merging_and_satisfying() {
        let none = Topology::default();
        assert!(nv(256).satisfies(&none));
        assert!(!none.satisfies(&nv(256)));
        assert!(nv(512).satisfies(&nv(256)));
        assert!(!nv(256).satisfies(&nv(512)));
        assert_eq!(nv(256).merge(&nv(512)), Some(nv(512)));
        assert_eq!(none.merge(&nv(2)), Some(nv(2)));
        let mut fs = nv(256);
        fs.pmem.as_mut().unwrap().mode = DaxMode::Fsdev;
        assert_eq!(nv(256).merge(&fs), None);
        let mut two = nv(256);
        two.pmem.as_mut().unwrap().devices = 2;
        assert!(!nv(512).satisfies(&two));
        assert_eq!(nv(512).merge(&two).unwrap().pmem.unwrap().devices, 2);
    }
}
