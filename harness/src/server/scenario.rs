//! Scenario files: the YAML a case hands to the server, and its resolution
//! into a [`Config`] the dispatcher can serve without further checks.
//!
//! Parsing reports syntax errors, unknown fields and bad values with
//! `file:line:col`. Resolution (paths that must exist, faults that must fit
//! the request and the file they target) reports through the locations kept
//! in [`Spanned`] fields, so both kinds of error point into the file.
//! The format is documented in `cases/scenarios/README.md`.

use super::fault::{Fault, FaultClass};
use anyhow::{anyhow, Context, Result};
use famfs_proto::abi::{self, init_flags, OpKind};
use famfs_proto::fmap::{Extents, InterleavedExtent};
use famfs_proto::{Fmap, Opcode, Profile, SimpleExtent};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------
// Scalars with their own syntax
// ---------------------------------------------------------------------------

pub use famfs_proto::Size;

/// Permission bits, always read as octal text (`0644`, `644`, `0o644`),
/// because YAML would read a plain `644` as decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim();
        let t = t.strip_prefix("0o").unwrap_or(t);
        match u32::from_str_radix(t, 8) {
            Ok(m) if m <= 0o7777 => Ok(Mode(m)),
            _ => Err(de::Error::custom(format!(
                "bad mode '{s}': expected octal permission bits such as 0644 or 0755"
            ))),
        }
    }
}

/// An errno given by name (`EIO`) or number (`5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Errno(pub i32);

/// Errno names the scenario accepts: every Linux errno name.
pub fn errno_names() -> Vec<&'static str> {
    famfs_proto::errno::TABLE.iter().map(|(n, _)| *n).collect()
}

impl<'de> Deserialize<'de> for Errno {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Errno;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an errno name such as EIO or a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Errno, E> {
                i32::try_from(v)
                    .map(Errno)
                    .map_err(|_| E::custom(format!("errno {v} does not fit in 32 bits")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Errno, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Errno, E> {
                if let Ok(n) = v.trim().parse::<i32>() {
                    return Ok(Errno(n));
                }
                famfs_proto::errno::errno_by_name(v.trim())
                    .map(Errno)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "unknown errno '{v}'; use a number or one of: {}",
                            errno_names().join(", ")
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// Names of INIT capability bits, index = bit position.
fn init_flag_table() -> Vec<(u32, String)> {
    (0..64u32)
        .filter_map(|b| {
            let n = abi::init_flag_names(1u64 << b, None).pop()?;
            (!n.starts_with("bit ")).then_some((b, n))
        })
        .collect()
}

/// An INIT capability by name (`ATOMIC_O_TRUNC`, `FUSE_` prefix optional)
/// or by bit number (`44`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitFlag(pub u32);

impl InitFlag {
    pub fn mask(self) -> u64 {
        1u64 << self.0
    }
}

impl<'de> Deserialize<'de> for InitFlag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = InitFlag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an INIT flag name such as ATOMIC_O_TRUNC or a bit number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<InitFlag, E> {
                if v < 64 {
                    Ok(InitFlag(v as u32))
                } else {
                    Err(E::custom(format!("INIT flag bit {v} is not below 64")))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<InitFlag, E> {
                self.visit_u64(u64::try_from(v).unwrap_or(u64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<InitFlag, E> {
                let name = v.trim().to_ascii_uppercase();
                let name = name.strip_prefix("FUSE_").unwrap_or(&name);
                let table = init_flag_table();
                table
                    .iter()
                    .find(|(_, n)| n == name)
                    .map(|(b, _)| InitFlag(*b))
                    .ok_or_else(|| {
                        let names: Vec<&str> = table.iter().map(|(_, n)| n.as_str()).collect();
                        E::custom(format!(
                            "unknown INIT flag '{v}'; valid names: {} (or a bit number 0..63)",
                            names.join(", ")
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// Which requests a rule applies to: a standard opcode, the profile's
/// famfs opcodes by role, or a raw number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpSel {
    Std(Opcode),
    GetFmap,
    GetDaxdev,
    Raw(u32),
}

/// Every opcode name a rule may use.
pub fn op_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = (1..=64u32)
        .chain([4096])
        .filter_map(Opcode::from_u32)
        .map(Opcode::name)
        .collect();
    v.extend(["GET_FMAP", "GET_DAXDEV"]);
    v
}

impl OpSel {
    /// Whether a request of this kind (classified by the server's profile)
    /// and raw number is selected.
    pub fn matches(self, opcode: u32, kind: OpKind) -> bool {
        match self {
            OpSel::Std(op) => kind == OpKind::Std(op),
            OpSel::GetFmap => kind == OpKind::GetFmap,
            OpSel::GetDaxdev => kind == OpKind::GetDaxdev,
            OpSel::Raw(n) => n == opcode,
        }
    }

    pub fn name(self) -> String {
        match self {
            OpSel::Std(op) => op.name().to_string(),
            OpSel::GetFmap => "GET_FMAP".into(),
            OpSel::GetDaxdev => "GET_DAXDEV".into(),
            OpSel::Raw(n) => format!("opcode {n}"),
        }
    }
}

impl<'de> Deserialize<'de> for OpSel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OpSel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an opcode name such as GET_FMAP or LOOKUP, or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OpSel, E> {
                u32::try_from(v)
                    .map(OpSel::Raw)
                    .map_err(|_| E::custom(format!("opcode {v} does not fit in 32 bits")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OpSel, E> {
                self.visit_u64(u64::try_from(v).unwrap_or(u64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OpSel, E> {
                let up = v.trim().to_ascii_uppercase();
                let name = up.strip_prefix("FUSE_").unwrap_or(&up);
                match name {
                    "GET_FMAP" => return Ok(OpSel::GetFmap),
                    "GET_DAXDEV" => return Ok(OpSel::GetDaxdev),
                    _ => {}
                }
                (1..=64u32)
                    .chain([4096])
                    .filter_map(Opcode::from_u32)
                    .find(|op| op.name() == name)
                    .map(OpSel::Std)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "unknown opcode '{v}'; valid names: {} (or a number)",
                            op_names().join(", ")
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// The profile a scenario names: a built-in name, a `custom:` string, or a
/// table of overrides. Resolved while parsing so an unknown name is
/// reported at its position with the list of valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileField(pub Profile);

impl<'de> Deserialize<'de> for ProfileField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ProfileField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a profile name (famfs-6.14, v10, next, custom:...) or a table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProfileField, E> {
                Profile::parse(v).map(ProfileField).map_err(E::custom)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, m: A) -> Result<ProfileField, A::Error> {
                let c = famfs_proto::CustomProfile::deserialize(
                    de::value::MapAccessDeserializer::new(m),
                )?;
                c.resolve().map(ProfileField).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------

/// A scenario file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free text for people reading the file.
    #[serde(default)]
    pub description: Option<String>,
    /// Protocol profile; `v10` when absent.
    #[serde(default)]
    pub profile: Option<Spanned<ProfileField>>,
    #[serde(default)]
    pub init: InitSpec,
    /// Device index -> path: served by GET_DAXDEV, or pushed (push profiles).
    #[serde(default)]
    pub daxdevs: BTreeMap<u32, Spanned<String>>,
    /// When the `daxdevs` are pushed under a push profile.
    #[serde(default)]
    pub push: PushMode,
    #[serde(default)]
    pub tree: Vec<NodeSpec>,
    /// Request rules not tied to one tree entry.
    #[serde(default)]
    pub faults: Vec<RuleSpec>,
    #[serde(default)]
    pub ttl: TtlSpec,
}

/// How the server answers INIT.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitSpec {
    #[serde(default)]
    pub famfs: FamfsMode,
    /// Capabilities requested on top of the defaults, each only if the
    /// kernel offered it.
    #[serde(default)]
    pub flags: Vec<InitFlag>,
    /// Capabilities set in the reply whether offered or not.
    #[serde(default)]
    pub force_flags: Vec<InitFlag>,
    /// Minor version of the reply (default: the kernel's, at most 46).
    #[serde(default)]
    pub minor: Option<u32>,
    /// `max_write` of the reply (default 128K).
    #[serde(default)]
    pub max_write: Option<Spanned<Size>>,
    #[serde(default)]
    pub malformed: Option<InitMalformed>,
}

/// What to do with the famfs capability bit in the INIT reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamfsMode {
    /// Echo the bit if the kernel offered it (what famfs_fused does).
    #[default]
    Echo,
    /// Never set it: the kernel must then run the mount without famfs.
    Withhold,
    /// Set it even when not offered: the kernel must ignore it.
    Force,
}

/// When famfsd pushes its `daxdevs` under a push profile (`next`). famfs's
/// own daemon pushes at lookup; pushing at mount is the other way a daemon
/// can make every device known before any file is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushMode {
    /// Right after the INIT reply that turns famfs on.
    #[default]
    Mount,
    /// Before answering the first LOOKUP of a file whose fmap names the
    /// device.
    Lookup,
    /// Never (only `push` faults push).
    Never,
}

/// Broken INIT replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitMalformed {
    /// Only major and minor (8 bytes): every flag reads as 0.
    TooShort,
    /// `INIT_EXT` left out of `flags`, so `flags2` (and the famfs bit above
    /// bit 31) must be ignored.
    NoInitExt,
    /// Major 8 instead of 7: the kernel must refuse the connection.
    BadMajor,
    /// 128 bytes instead of 64: longer than the kernel's buffer.
    Oversize,
}

/// Attribute and entry cache lifetimes sent in replies.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlSpec {
    #[serde(default = "one_second")]
    pub entry_ms: u64,
    #[serde(default = "one_second")]
    pub attr_ms: u64,
}

fn one_second() -> u64 {
    1000
}

impl Default for TtlSpec {
    fn default() -> Self {
        TtlSpec {
            entry_ms: 1000,
            attr_ms: 1000,
        }
    }
}

/// `type:` of a tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeType {
    File,
    Dir,
}

/// One tree entry. Parent directories are created implicitly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Absolute path inside the mount, e.g. `/dir/file`.
    pub path: Spanned<String>,
    /// Inferred when absent: a file if `size`, `fmap` or `content` is given.
    #[serde(rename = "type", default)]
    pub kind: Option<NodeType>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    /// Size reported by LOOKUP/GETATTR (default: the fmap's file size or
    /// the content length).
    #[serde(default)]
    pub size: Option<Size>,
    #[serde(default)]
    pub fmap: Option<Spanned<FmapSpec>>,
    /// Plain data served through READ (files without an fmap).
    #[serde(default)]
    pub content: Option<String>,
    /// Rules for requests about this file; the path is implied.
    #[serde(default)]
    pub faults: Vec<RuleSpec>,
    /// The file does not exist until the kernel CREATEs it (LOOKUP ENOENT,
    /// not listed); CREATE then answers with its entry and an open file,
    /// and WRITE to it is taken (counted, not kept).
    #[serde(default)]
    pub create: bool,
}

/// A file's fmap: exactly one of `extents` and `interleave`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FmapSpec {
    #[serde(default)]
    pub extents: Option<Vec<ExtentSpec>>,
    /// A long simple extent list written compactly.
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    #[serde(default)]
    pub interleave: Option<Vec<InterleaveSpec>>,
    /// Header `file_size` (default: the entry's size).
    #[serde(default)]
    pub file_size: Option<Size>,
    /// Header `file_type`: 0 regular, 1 superblock, 2 log.
    #[serde(default)]
    pub file_type: Option<u8>,
}

/// `count` simple extents on device 0. Extent `i` is `lens[i % lens.len()]`
/// long and starts at `base + ((i * step) % slots) * slot`: the file walks
/// a window of `slots` device slots, `step` apart, so a file far larger than
/// the device still names only the device's first bytes, and consecutive
/// extents land on different slots (an extent boundary is a jump on the
/// device). `slot` defaults to the largest of `lens`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    pub count: u32,
    pub lens: Vec<Size>,
    #[serde(default)]
    pub base: Size,
    pub slots: u64,
    #[serde(default = "one")]
    pub step: u64,
    #[serde(default)]
    pub slot: Option<Size>,
}

fn one() -> u64 {
    1
}

impl GenerateSpec {
    fn extents(&self) -> std::result::Result<Vec<SimpleExtent>, String> {
        if self.lens.is_empty() || self.slots == 0 {
            return Err("generate needs at least one length in `lens` and `slots` above 0".into());
        }
        if self.count > 1_000_000 {
            return Err(format!("generate: count {} is above 1000000", self.count));
        }
        let slot = self
            .slot
            .map_or_else(|| self.lens.iter().map(|l| l.0).max().unwrap_or(0), |s| s.0);
        // Checked: base, slot and slots come from the file, and an offset
        // past 2^64 is a mistake in it (offset_wrap is the fault for that).
        (0..u64::from(self.count))
            .map(|i| {
                let k = i.wrapping_mul(self.step) % self.slots;
                let offset = k
                    .checked_mul(slot)
                    .and_then(|o| o.checked_add(self.base.0))
                    .ok_or_else(|| {
                        format!(
                            "generate: extent {i} would start past 2^64 (base + {k} x slot {slot})"
                        )
                    })?;
                Ok(SimpleExtent {
                    devindex: 0,
                    reserved: 0,
                    offset,
                    len: self.lens[(i % self.lens.len() as u64) as usize].0,
                })
            })
            .collect()
    }
}

/// A simple extent or a strip.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtentSpec {
    #[serde(default)]
    pub dev: u32,
    pub offset: Size,
    pub len: Size,
}

/// An interleaved extent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterleaveSpec {
    pub chunk_size: Spanned<Size>,
    pub nbytes: Size,
    pub strips: Vec<ExtentSpec>,
}

/// A fault rule: which requests, which occurrences, what to do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Opcode selected; defaults to the fault's natural request
    /// (GET_FMAP for fmap faults, GET_DAXDEV for daxdev faults, GETATTR for
    /// `attr_size`, and GET_FMAP for any other fault on a tree entry).
    #[serde(default)]
    pub op: Option<Spanned<OpSel>>,
    /// Only requests about this path (LOOKUP: the name looked up).
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// Only GET_DAXDEV requests for this device index.
    #[serde(default)]
    pub index: Option<u32>,
    /// Only the nth matching request (1-based).
    #[serde(default)]
    pub nth: Option<u64>,
    /// The nth matching request and every later one.
    #[serde(default)]
    pub from: Option<u64>,
    /// At most this many firings.
    #[serde(default)]
    pub times: Option<u64>,
    pub fault: Spanned<Fault>,
}

// ---------------------------------------------------------------------------
// Resolved form
// ---------------------------------------------------------------------------

/// A tree entry after resolution; the node id is its index + 1.
#[derive(Debug, Clone)]
pub struct Node {
    pub nodeid: u64,
    pub parent: u64,
    pub name: String,
    pub path: String,
    /// Permission bits only; the type comes from `kind`.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub kind: NodeKind,
    /// Made by CREATE (`create: true`): hidden until then, takes WRITE.
    pub created_by_kernel: bool,
}

impl Node {
    /// Device indices the node's fmap names (none for other nodes).
    pub fn fmap_devices(&self) -> Vec<u64> {
        let NodeKind::File {
            fmap: Some(fmap), ..
        } = &self.kind
        else {
            return Vec::new();
        };
        let mut d: Vec<u64> = match &fmap.extents {
            Extents::Simple(e) => e.iter().map(|e| u64::from(e.devindex)).collect(),
            Extents::Interleave(x) => x
                .iter()
                .flat_map(|x| x.strips.iter().map(|e| u64::from(e.devindex)))
                .collect(),
        };
        d.sort_unstable();
        d.dedup();
        d
    }
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Dir {
        children: BTreeMap<String, u64>,
    },
    File {
        content: Option<Vec<u8>>,
        fmap: Option<Fmap>,
    },
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir { .. })
    }

    /// `st_mode` with the type bits.
    pub fn mode(&self) -> u32 {
        let t = if self.is_dir() {
            libc::S_IFDIR
        } else {
            libc::S_IFREG
        };
        t | self.perm
    }

    pub fn fmap(&self) -> Option<&Fmap> {
        match &self.kind {
            NodeKind::File { fmap, .. } => fmap.as_ref(),
            NodeKind::Dir { .. } => None,
        }
    }
}

/// Which occurrences of matching requests a rule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    Every,
    Nth(u64),
    From(u64),
}

/// A rule ready for matching.
#[derive(Debug, Clone)]
pub struct Rule {
    pub op: OpSel,
    /// Node id the request must be about.
    pub node: Option<u64>,
    /// GET_DAXDEV index the request must carry.
    pub index: Option<u32>,
    pub when: Occurrence,
    pub times: Option<u64>,
    pub fault: Fault,
    /// The fault's name as written (the serde variant name), for the log.
    pub name: String,
    /// Node id notifications go to when the fault names one.
    pub notify_node: Option<u64>,
}

/// Resolved INIT behaviour.
#[derive(Debug, Clone)]
pub struct InitConfig {
    pub famfs: FamfsMode,
    /// Requested if offered (defaults plus `flags`).
    pub want: u64,
    /// Set regardless of the offer.
    pub force: u64,
    pub minor: Option<u32>,
    pub max_write: u32,
    pub malformed: Option<InitMalformed>,
}

/// Capabilities every reply asks for when offered: parallel reads and
/// READDIRPLUS chosen by the kernel, so both directory paths get used.
pub const DEFAULT_WANT: u64 =
    init_flags::ASYNC_READ | init_flags::DO_READDIRPLUS | init_flags::READDIRPLUS_AUTO;

/// Everything the dispatcher needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// File the scenario came from (for messages).
    pub source: PathBuf,
    pub profile: Profile,
    pub init: InitConfig,
    pub daxdevs: BTreeMap<u32, String>,
    pub push: PushMode,
    /// Index 0 is the root (node id 1).
    pub nodes: Vec<Node>,
    pub rules: Vec<Rule>,
    pub ttl: TtlSpec,
}

fn at(file: &Path, loc: &Location) -> String {
    format!("{}:{}:{}", file.display(), loc.line(), loc.column())
}

macro_rules! fail_at {
    ($file:expr, $loc:expr, $($arg:tt)*) => {
        return Err(anyhow!("{}: {}", at($file, $loc), format!($($arg)*)))
    };
}

impl Scenario {
    /// Parses scenario text; `file` names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Scenario> {
        crate::base::yaml::parse(file, text, 0)
    }

    /// Reads and parses a scenario file.
    pub fn load(file: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading scenario {}", file.display()))?;
        Scenario::parse(file, &text)
    }
}

impl Config {
    /// Reads, parses and resolves a scenario file. `profile` (a name or
    /// `custom:` spec) replaces the file's profile.
    pub fn load(file: &Path, profile: Option<&str>) -> Result<Config> {
        let s = Scenario::load(file)?;
        let p = match profile {
            Some(name) => Some(Profile::parse(name).map_err(|e| anyhow!("--profile: {e}"))?),
            None => None,
        };
        Config::resolve(file, s, p)
    }

    /// Parses and resolves scenario text.
    pub fn from_text(file: &Path, text: &str, profile: Option<Profile>) -> Result<Config> {
        Config::resolve(file, Scenario::parse(file, text)?, profile)
    }

    /// Checks a parsed scenario and builds the node table and rules.
    pub fn resolve(file: &Path, s: Scenario, profile: Option<Profile>) -> Result<Config> {
        let profile = profile
            .or_else(|| s.profile.as_ref().map(|p| p.value.0.clone()))
            .unwrap_or_else(Profile::v10);

        let mut daxdevs = BTreeMap::new();
        for (idx, path) in &s.daxdevs {
            if path.value.len() >= abi::DAXDEV_NAME_LEN {
                fail_at!(
                    file,
                    &path.referenced,
                    "daxdev path of {} bytes does not fit in {} bytes with a NUL (use the daxdev_unterminated fault for that)",
                    path.value.len(),
                    abi::DAXDEV_NAME_LEN
                );
            }
            daxdevs.insert(*idx, path.value.clone());
        }

        let init = InitConfig {
            famfs: s.init.famfs,
            want: s.init.flags.iter().fold(DEFAULT_WANT, |m, f| m | f.mask()),
            force: s.init.force_flags.iter().fold(0, |m, f| m | f.mask()),
            minor: s.init.minor,
            // Spanned, so that a value too large points at its line.
            max_write: match &s.init.max_write {
                Some(m) => match u32::try_from(m.value.0) {
                    Ok(n) => n,
                    Err(_) => fail_at!(
                        file,
                        &m.referenced,
                        "init.max_write {} does not fit in 32 bits",
                        m.value.0
                    ),
                },
                None => 128 * 1024,
            },
            malformed: s.init.malformed,
        };

        let nodes = build_tree(file, &s.tree)?;
        let by_path: BTreeMap<&str, u64> =
            nodes.iter().map(|n| (n.path.as_str(), n.nodeid)).collect();

        let mut rules = Vec::new();
        for r in &s.faults {
            rules.push(resolve_rule(file, r, None, &nodes, &by_path)?);
        }
        for spec in &s.tree {
            let node = by_path[normalize(&spec.path.value).unwrap().as_str()];
            for r in &spec.faults {
                rules.push(resolve_rule(file, r, Some(node), &nodes, &by_path)?);
            }
        }

        Ok(Config {
            source: file.to_path_buf(),
            profile,
            init,
            daxdevs,
            push: s.push,
            nodes,
            rules,
            ttl: s.ttl,
        })
    }

    /// The node with this id.
    pub fn node(&self, nodeid: u64) -> Option<&Node> {
        nodeid
            .checked_sub(1)
            .and_then(|i| self.nodes.get(i as usize))
    }

    /// The node at this absolute path.
    pub fn lookup_path(&self, path: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.path == path)
    }
}

/// Checks a path and removes a trailing slash; `None` if it is not an
/// absolute path of plain components.
fn normalize(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts
        .iter()
        .any(|p| *p == "." || *p == ".." || p.len() > 255)
    {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

fn build_fmap(file: &Path, spec: &Spanned<FmapSpec>, size: Option<u64>) -> Result<Fmap> {
    let f = &spec.value;
    let simple = |e: &ExtentSpec| SimpleExtent {
        devindex: e.dev,
        reserved: 0,
        offset: e.offset.0,
        len: e.len.0,
    };
    let extents = match (&f.extents, &f.interleave, &f.generate) {
        (Some(v), None, None) => Extents::Simple(v.iter().map(simple).collect()),
        (None, None, Some(g)) => match g.extents() {
            Ok(v) => Extents::Simple(v),
            Err(why) => fail_at!(file, &spec.referenced, "{why}"),
        },
        (None, Some(v), None) => {
            let mut out = Vec::new();
            for ie in v {
                let Ok(chunk) = u32::try_from(ie.chunk_size.value.0) else {
                    fail_at!(
                        file,
                        &ie.chunk_size.referenced,
                        "chunk_size {} does not fit in 32 bits",
                        ie.chunk_size.value.0
                    );
                };
                out.push(InterleavedExtent::new(
                    chunk,
                    ie.nbytes.0,
                    ie.strips.iter().map(simple).collect(),
                ));
            }
            Extents::Interleave(out)
        }
        _ => fail_at!(
            file,
            &spec.referenced,
            "an fmap needs exactly one of `extents` (simple), `generate` (simple) and `interleave`"
        ),
    };
    let total = match &extents {
        Extents::Simple(v) => v.iter().fold(0u64, |a, e| a.wrapping_add(e.len)),
        Extents::Interleave(v) => v.iter().fold(0u64, |a, e| a.wrapping_add(e.nbytes)),
    };
    let file_size = f.file_size.map(|s| s.0).or(size).unwrap_or(total);
    let mut fmap = match extents {
        Extents::Simple(v) => Fmap::simple(file_size, v),
        Extents::Interleave(v) => Fmap::interleaved(file_size, v),
    };
    if let Some(t) = f.file_type {
        fmap.file_type = t;
    }
    Ok(fmap)
}

fn build_tree(file: &Path, specs: &[NodeSpec]) -> Result<Vec<Node>> {
    let entries = tree_entries(file, specs)?;
    let ids: BTreeMap<&str, u64> = entries
        .keys()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i as u64 + 1))
        .collect();
    let mut nodes = Vec::with_capacity(entries.len());
    for (path, spec) in &entries {
        nodes.push(build_node(file, path, *spec, &ids)?);
    }
    link_children(file, &mut nodes, &entries)?;
    Ok(nodes)
}

/// Path -> the entry's spec, with parents filled in as plain directories
/// (`None`).
fn tree_entries<'a>(
    file: &Path,
    specs: &'a [NodeSpec],
) -> Result<BTreeMap<String, Option<&'a NodeSpec>>> {
    let mut entries: BTreeMap<String, Option<&NodeSpec>> = BTreeMap::new();
    entries.insert("/".into(), None);
    for spec in specs {
        let Some(path) = normalize(&spec.path.value) else {
            fail_at!(
                file,
                &spec.path.referenced,
                "path '{}' must be absolute, without '.' or '..' components",
                spec.path.value
            );
        };
        if let Some(Some(_)) = entries.get(&path) {
            fail_at!(
                file,
                &spec.path.referenced,
                "path '{path}' appears twice in the tree"
            );
        }
        entries.insert(path, Some(spec));
    }
    let implied: Vec<String> = entries.keys().flat_map(|p| parents(p)).collect();
    for p in implied {
        entries.entry(p).or_insert(None);
    }
    Ok(entries)
}

/// The directories above a normalized path, nearest first, up to `/`.
fn parents(path: &str) -> Vec<String> {
    let mut parents = Vec::new();
    let mut cur = path;
    while let Some(i) = cur.rfind('/') {
        cur = &cur[..i];
        parents.push(if cur.is_empty() {
            "/".to_string()
        } else {
            cur.to_string()
        });
        if cur.is_empty() {
            break;
        }
    }
    parents
}

/// The node at `path` (`spec`: `None` for an implied directory); `ids`:
/// every path's node id.
fn build_node(
    file: &Path,
    path: &str,
    spec: Option<&NodeSpec>,
    ids: &BTreeMap<&str, u64>,
) -> Result<Node> {
    let (parent, name) = match path.rfind('/') {
        _ if path == "/" => (1, String::new()),
        Some(0) => (1, path[1..].to_string()),
        Some(i) => (ids[&path[..i]], path[i + 1..].to_string()),
        None => unreachable!("normalized paths are absolute"),
    };
    let is_file = match spec {
        None => false,
        Some(s) => spec_is_file(file, path, s)?,
    };
    if path == "/" && is_file {
        let s = spec.expect("a file entry has a spec");
        fail_at!(file, &s.path.referenced, "the root must be a directory");
    }
    let (kind, size) = if is_file {
        file_kind(file, path, spec.expect("a file entry has a spec"))?
    } else {
        (
            NodeKind::Dir {
                children: BTreeMap::new(),
            },
            0,
        )
    };
    let create = spec.is_some_and(|s| s.create);
    if create && !is_file {
        let s = spec.expect("create comes from a spec");
        fail_at!(
            file,
            &s.path.referenced,
            "'{path}' has create: true but is not a file"
        );
    }
    let default_perm = if is_file { 0o644 } else { 0o755 };
    Ok(Node {
        nodeid: ids[path],
        parent,
        name,
        path: path.to_string(),
        perm: spec.and_then(|s| s.mode).map_or(default_perm, |m| m.0),
        uid: spec.and_then(|s| s.uid).unwrap_or(0),
        gid: spec.and_then(|s| s.gid).unwrap_or(0),
        size,
        kind,
        created_by_kernel: create,
    })
}

/// Whether a tree entry is a file: as its `type` says, else if it has a
/// size, fmap or content.
fn spec_is_file(file: &Path, path: &str, s: &NodeSpec) -> Result<bool> {
    Ok(match s.kind {
        Some(NodeType::File) => true,
        Some(NodeType::Dir) => {
            if s.size.is_some() || s.fmap.is_some() || s.content.is_some() {
                fail_at!(
                    file,
                    &s.path.referenced,
                    "'{path}' is a directory but has size, fmap or content"
                );
            }
            false
        }
        None => s.size.is_some() || s.fmap.is_some() || s.content.is_some(),
    })
}

/// A file entry's kind (fmap or content) and size.
fn file_kind(file: &Path, path: &str, s: &NodeSpec) -> Result<(NodeKind, u64)> {
    if s.fmap.is_some() && s.content.is_some() {
        fail_at!(file, &s.path.referenced, "'{path}' has both fmap and content; famfs data goes through the fmap, READ serves content");
    }
    let declared = s.size.map(|z| z.0);
    let fmap = match &s.fmap {
        Some(f) => Some(build_fmap(file, f, declared)?),
        None => None,
    };
    let content = s.content.as_ref().map(|c| c.as_bytes().to_vec());
    let size = declared
        .or(fmap.as_ref().map(|f| f.file_size))
        .or(content.as_ref().map(|c| c.len() as u64))
        .unwrap_or(0);
    Ok((NodeKind::File { content, fmap }, size))
}

/// Links children into their directories; a file cannot be a parent.
fn link_children(
    file: &Path,
    nodes: &mut [Node],
    entries: &BTreeMap<String, Option<&NodeSpec>>,
) -> Result<()> {
    for i in 1..nodes.len() {
        let (pid, name, nid) = (nodes[i].parent, nodes[i].name.clone(), nodes[i].nodeid);
        let parent_path = nodes[pid as usize - 1].path.clone();
        match &mut nodes[pid as usize - 1].kind {
            NodeKind::Dir { children } => {
                children.insert(name, nid);
            }
            NodeKind::File { .. } => {
                let child = entries[&nodes[i].path].expect("a child of a file was listed");
                fail_at!(
                    file,
                    &child.path.referenced,
                    "'{}' is inside '{parent_path}', which is a file",
                    nodes[i].path
                );
            }
        }
    }
    Ok(())
}

/// How far into a reply a fault may write (64 MiB).
pub const MAX_REPLY_EDIT: usize = 64 << 20;

fn resolve_rule(
    file: &Path,
    r: &RuleSpec,
    entry: Option<u64>,
    nodes: &[Node],
    by_path: &BTreeMap<&str, u64>,
) -> Result<Rule> {
    let fault = &r.fault.value;
    let floc = &r.fault.referenced;
    let name = fault.name();

    let when = match (r.nth, r.from) {
        (Some(_), Some(_)) => fail_at!(file, floc, "a rule takes `nth` or `from`, not both"),
        (Some(0), _) | (_, Some(0)) => fail_at!(file, floc, "`nth` and `from` count from 1"),
        (Some(n), None) => Occurrence::Nth(n),
        (None, Some(n)) => Occurrence::From(n),
        (None, None) => Occurrence::Every,
    };
    let node = rule_node(file, r, entry, by_path)?;
    let op = rule_op(file, r, entry, &name)?;
    check_rule_op(file, r, op, node, &name)?;
    check_fault(file, r, node, nodes, &name)?;
    let notify_node = notify_node(file, r, op, by_path)?;

    Ok(Rule {
        op,
        node,
        index: r.index,
        when,
        times: r.times,
        fault: fault.clone(),
        name,
        notify_node,
    })
}

/// The node a rule is about: its tree entry's, or its `path`'s.
fn rule_node(
    file: &Path,
    r: &RuleSpec,
    entry: Option<u64>,
    by_path: &BTreeMap<&str, u64>,
) -> Result<Option<u64>> {
    let Some(p) = &r.path else {
        return Ok(entry);
    };
    if entry.is_some() {
        fail_at!(
            file,
            &p.referenced,
            "a rule on a tree entry has its path implied; remove `path`"
        );
    }
    match normalize(&p.value).and_then(|n| by_path.get(n.as_str()).copied()) {
        Some(id) => Ok(Some(id)),
        None => fail_at!(file, &p.referenced, "path '{}' is not in the tree", p.value),
    }
}

/// The requests a rule applies to: its `op`, else the one its fault's
/// class implies (a generic fault under a tree entry: GET_FMAP).
fn rule_op(file: &Path, r: &RuleSpec, entry: Option<u64>, name: &str) -> Result<OpSel> {
    Ok(match (&r.op, r.fault.value.class()) {
        (Some(op), _) => op.value,
        (None, FaultClass::Fmap) => OpSel::GetFmap,
        (None, FaultClass::Daxdev) => OpSel::GetDaxdev,
        (None, FaultClass::Attr) => OpSel::Std(Opcode::Getattr),
        (None, FaultClass::Generic) if entry.is_some() => OpSel::GetFmap,
        (None, FaultClass::Generic) => fail_at!(
            file,
            &r.fault.referenced,
            "fault `{name}` needs `op:` (the opcode name it applies to)"
        ),
    })
}

/// The fault fits the replies of `op`, and `node` and `index` fit the
/// requests of `op`.
fn check_rule_op(
    file: &Path,
    r: &RuleSpec,
    op: OpSel,
    node: Option<u64>,
    name: &str,
) -> Result<()> {
    let class = r.fault.value.class();
    let oploc = r.op.as_ref().map_or(&r.fault.referenced, |o| &o.referenced);
    let fits = match class {
        FaultClass::Fmap => matches!(op, OpSel::GetFmap),
        FaultClass::Daxdev => matches!(op, OpSel::GetDaxdev),
        FaultClass::Attr => matches!(
            op,
            OpSel::Std(Opcode::Getattr | Opcode::Setattr | Opcode::Lookup)
        ),
        FaultClass::Generic => true,
    };
    if !fits {
        let wants = match class {
            FaultClass::Fmap => "GET_FMAP",
            FaultClass::Daxdev => "GET_DAXDEV",
            _ => "GETATTR, SETATTR or LOOKUP",
        };
        fail_at!(
            file,
            oploc,
            "fault `{name}` applies to {wants} replies, not to {}",
            op.name()
        );
    }
    if op == OpSel::GetDaxdev && node.is_some() {
        fail_at!(file, oploc, "GET_DAXDEV requests carry a device index, not a file: put this rule under top-level `faults:` with `index:`");
    }
    if r.index.is_some() && op != OpSel::GetDaxdev {
        fail_at!(
            file,
            oploc,
            "`index` selects GET_DAXDEV requests; this rule is for {}",
            op.name()
        );
    }
    Ok(())
}

/// The fault's own checks: its target in the node's fmap, its values, and
/// how far into a reply it writes.
fn check_fault(
    file: &Path,
    r: &RuleSpec,
    node: Option<u64>,
    nodes: &[Node],
    name: &str,
) -> Result<()> {
    let fault = &r.fault.value;
    let floc = &r.fault.referenced;
    if let (FaultClass::Fmap, Some(id)) = (fault.class(), node) {
        let n = &nodes[id as usize - 1];
        let Some(fmap) = n.fmap() else {
            fail_at!(
                file,
                floc,
                "fault `{name}` needs an fmap but '{}' has none",
                n.path
            );
        };
        if let Err(why) = fault.check_target(fmap) {
            fail_at!(file, floc, "fault `{name}` on '{}': {why}", n.path);
        }
    }
    if let Err(why) = fault.check_static() {
        fail_at!(file, floc, "fault `{name}`: {why}");
    }
    // famfsd builds replies in memory: an edit reaching past every kernel
    // buffer would allocate gigabytes, or overflow, for nothing.
    let reach = match fault {
        Fault::Patch(p) => Some(p.offset.saturating_add(p.hex.len() / 2)),
        Fault::TrailingBytes(n) | Fault::DaxdevReplySize(n) => Some(*n),
        _ => None,
    };
    if let Some(n) = reach.filter(|&n| n > MAX_REPLY_EDIT) {
        fail_at!(
            file,
            floc,
            "fault `{name}` reaches byte {n} of the reply; replies end well before {MAX_REPLY_EDIT} (the largest kernel buffer is 16 MiB)"
        );
    }
    Ok(())
}

/// The node a notification names (`node:`), if it names one.
fn notify_node(
    file: &Path,
    r: &RuleSpec,
    op: OpSel,
    by_path: &BTreeMap<&str, u64>,
) -> Result<Option<u64>> {
    let fault = &r.fault.value;
    let floc = &r.fault.referenced;
    let notify_node = match fault.notify_path() {
        Some(p) => match normalize(p).and_then(|n| by_path.get(n.as_str()).copied()) {
            Some(id) => Some(id),
            None => fail_at!(file, floc, "notification target '{p}' is not in the tree"),
        },
        None => None,
    };
    // GET_DAXDEV carries a device index where other requests carry the
    // node a notification would default to.
    if fault.is_notify() && notify_node.is_none() && op == OpSel::GetDaxdev {
        fail_at!(
            file,
            floc,
            "a notification on GET_DAXDEV needs `node:` (a path)"
        );
    }
    Ok(notify_node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Config::from_text(Path::new("s.yaml"), text, None) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("4096"), Ok(4096));
        assert_eq!(Size::parse("2M"), Ok(2 << 20));
        assert_eq!(Size::parse("1G"), Ok(1 << 30));
        assert_eq!(Size::parse("4K"), Ok(4096));
        assert_eq!(Size::parse("3MiB"), Ok(3 << 20));
        assert_eq!(Size::parse("0x200000"), Ok(2 << 20));
        assert!(Size::parse("3X").unwrap_err().contains("bad size '3X'"));
        assert!(Size::parse("M").is_err());
        assert!(Size::parse("").is_err());
        assert!(Size::parse("20000000T").unwrap_err().contains("64 bits"));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("tree:\n  - path: /a\n   size: 1\n");
        assert!(e.starts_with("s.yaml:3:4: "), "{e}");
        assert!(e.contains("did not find expected '-'"), "{e}");
        let e = err("tree: [\n  {path: /a\n");
        assert!(
            e.starts_with("s.yaml:2:3: ") && e.contains("unclosed"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_has_position_and_name() {
        let e = err("tree:\n  - path: /a\n    sise: 4K\n");
        assert!(e.starts_with("s.yaml:3:5: "), "{e}");
        assert!(e.contains("unknown field `sise`"), "{e}");
        assert!(e.contains("size"), "valid names listed: {e}");
        let e = err("bogus: 1\n");
        assert!(e.starts_with("s.yaml:1:1: "), "{e}");
    }

    #[test]
    fn bad_extent_offset_has_position() {
        let e = err(
            "tree:\n  - path: /f\n    fmap:\n      extents:\n        - {offset: 3X, len: 2M}\n",
        );
        assert!(e.starts_with("s.yaml:5:"), "{e}");
        assert!(e.contains("bad size '3X'"), "{e}");
    }

    #[test]
    fn unknown_fault_lists_valid_names() {
        let e = err("faults:\n  - op: GET_FMAP\n    fault: {nextentz: 3}\n");
        assert!(e.starts_with("s.yaml:3:"), "{e}");
        assert!(e.contains("unknown variant `nextentz`"), "{e}");
        for name in [
            "nextents",
            "chunk_size",
            "daxdev_unterminated",
            "never_reply",
            "notify_store",
        ] {
            assert!(e.contains(name), "missing {name} in: {e}");
        }
    }

    #[test]
    fn unknown_profile_lists_valid_ones() {
        let e = err("profile: v11\n");
        assert!(e.starts_with("s.yaml:1:10: "), "{e}");
        assert!(
            e.contains("'v11'") && e.contains("famfs-6.14, v10, next"),
            "{e}"
        );
        let e = err("profile:\n  base: v10\n  flagbit: 44\n");
        assert!(e.starts_with("s.yaml:3:3: "), "{e}");
        assert!(e.contains("flag_bit"), "{e}");
    }

    #[test]
    fn unknown_names_in_enums_and_tables() {
        let e = err("init:\n  famfs: maybe\n");
        assert!(
            e.starts_with("s.yaml:2:") && e.contains("echo") && e.contains("withhold"),
            "{e}"
        );
        let e = err("init:\n  flags: [ATOMIC_O_TRUNK]\n");
        assert!(
            e.starts_with("s.yaml:2:")
                && e.contains("ATOMIC_O_TRUNC")
                && e.contains("WRITEBACK_CACHE"),
            "{e}"
        );
        let e = err("faults:\n  - op: GET_FMAPP\n    fault: never_reply\n");
        assert!(
            e.starts_with("s.yaml:2:") && e.contains("GET_DAXDEV") && e.contains("LOOKUP"),
            "{e}"
        );
        let e = err("faults:\n  - op: OPEN\n    fault: {error: EIOO}\n");
        assert!(e.starts_with("s.yaml:3:") && e.contains("ENOENT"), "{e}");
        let e = err("init:\n  malformed: broken\n");
        assert!(e.contains("too_short") && e.contains("no_init_ext"), "{e}");
    }

    #[test]
    fn semantic_errors_point_into_the_file() {
        let e = err("faults:\n  - fault: never_reply\n");
        assert!(
            e.starts_with("s.yaml:2:") && e.contains("needs `op:`"),
            "{e}"
        );
        let e = err("faults:\n  - path: /nope\n    fault: {nextents: 0}\n");
        assert!(
            e.starts_with("s.yaml:2:") && e.contains("not in the tree"),
            "{e}"
        );
        let e =
            err("tree:\n  - path: /f\n    content: x\n    faults:\n      - fault: {nextents: 0}\n");
        assert!(e.starts_with("s.yaml:5:") && e.contains("has none"), "{e}");
        let e = err("tree:\n  - path: /f\n    fmap: {extents: [{offset: 0, len: 2M}]}\n    faults:\n      - fault: {chunk_size: {value: 0}}\n");
        assert!(
            e.starts_with("s.yaml:5:") && e.contains("interleaved"),
            "{e}"
        );
        let e = err("tree:\n  - path: /f\n    fmap: {extents: [{offset: 0, len: 2M}]}\n    faults:\n      - fault: {devindex: {value: 1, extent: 3}}\n");
        assert!(e.contains("extent 3"), "{e}");
        let e = err("faults:\n  - op: LOOKUP\n    fault: {nextents: 0}\n");
        assert!(e.starts_with("s.yaml:2:") && e.contains("GET_FMAP"), "{e}");
        let e = err("tree:\n  - path: /f\n    fmap: {}\n");
        assert!(
            e.starts_with("s.yaml:3:") && e.contains("exactly one"),
            "{e}"
        );
        let e = err("tree:\n  - path: /a\n  - path: /a/\n");
        assert!(e.starts_with("s.yaml:3:") && e.contains("twice"), "{e}");
        let e = err("tree:\n  - path: /f\n    content: x\n  - path: /f/g\n    content: y\n");
        assert!(
            e.starts_with("s.yaml:4:") && e.contains("which is a file"),
            "{e}"
        );
        let e =
            err("faults:\n  - op: GETATTR\n    nth: 1\n    from: 2\n    fault: {attr_size: 1G}\n");
        assert!(e.contains("not both"), "{e}");
        let e = err("faults:\n  - fault: {short_payload: 40}\n");
        assert!(e.contains("below 32"), "{e}");
        let e = err("faults:\n  - op: GET_DAXDEV\n    fault: {notify_store: {}}\n");
        assert!(
            e.starts_with("s.yaml:3:") && e.contains("needs `node:`"),
            "{e}"
        );
        let e = err("faults:\n  - {op: GET_DAXDEV, path: /f, fault: daxdev_non_dax}\ntree: [{path: /f, content: x}]\n");
        assert!(
            e.starts_with("s.yaml:2:") && e.contains("device index"),
            "{e}"
        );
        let e = err("faults:\n  - {op: GETATTR, index: 1, fault: never_reply}\n");
        assert!(e.contains("`index` selects GET_DAXDEV"), "{e}");
        let e = err("daxdevs: {0: /dev/dax0.0, 1: /x}\ntree: []\nfaults:\n  - {op: 3, fault: {attr_size: 1G}}\n");
        assert!(e.starts_with("s.yaml:4:") && e.contains("opcode 3"), "{e}");
        let e = err("tree:\n  - path: /f\n    mode: 0844\n");
        assert!(e.starts_with("s.yaml:3:") && e.contains("bad mode"), "{e}");
    }

    #[test]
    fn tree_and_defaults() {
        let c = Config::from_text(
            Path::new("s.yaml"),
            "tree:\n  - path: /d/e/f\n    fmap: {extents: [{offset: 2M, len: 4M}]}\n  - path: /t\n    content: hi\n    mode: '0600'\n",
            None,
        )
        .unwrap();
        assert_eq!(c.profile.name, "v10");
        let paths: Vec<&str> = c.nodes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["/", "/d", "/d/e", "/d/e/f", "/t"]);
        let f = c.lookup_path("/d/e/f").unwrap();
        assert_eq!((f.nodeid, f.parent, f.size, f.perm), (4, 3, 4 << 20, 0o644));
        assert_eq!(
            f.fmap().unwrap().extents,
            Extents::Simple(vec![SimpleExtent::new(2 << 20, 4 << 20)])
        );
        let t = c.lookup_path("/t").unwrap();
        assert_eq!(
            (t.size, t.perm, t.mode()),
            (2, 0o600, libc::S_IFREG | 0o600)
        );
        let root = c.node(1).unwrap();
        match &root.kind {
            NodeKind::Dir { children } => {
                assert_eq!(children.keys().collect::<Vec<_>>(), ["d", "t"])
            }
            _ => panic!("root is a dir"),
        }
        assert_eq!(c.init.want, DEFAULT_WANT);
    }
}
