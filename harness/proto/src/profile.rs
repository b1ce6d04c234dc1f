//! famfs protocol profiles: the numbers and limits that differ between famfs
//! kernel versions, kept as data and selected by name.
//!
//! Every other module reads these values from a [`Profile`]; none hard-codes
//! a capability bit, a famfs opcode or an fmap limit.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const MIB: u64 = 1 << 20;

/// Meaning of the fmap header's u32 at offset 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderVariant {
    /// Reserved, never checked (V10 and earlier).
    Reserved0,
    /// `fmap_size`: the full length of the fmap, which may exceed the
    /// reply and make the kernel ask again with a bigger buffer.
    FmapSize,
}

/// How the kernel learns which dax device an extent's index means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaxdevSource {
    /// The kernel asks with GET_DAXDEV on the first open that needs it.
    Pull,
    /// The daemon pushes each device with the /dev/fuse ioctl
    /// `FUSE_DEV_IOC_DAXDEV_OPEN`; GET_DAXDEV is never sent.
    Push,
}

/// The protocol numbers and limits of one famfs kernel version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name used to select the profile (or the custom spec it came from).
    pub name: String,
    /// Position of the famfs capability in the 64-bit INIT flags.
    pub flag_bit: u32,
    /// GET_FMAP opcode.
    pub get_fmap: u32,
    /// GET_DAXDEV opcode.
    pub get_daxdev: u32,
    /// Largest accepted `nextents`; 0 or more than this gives ERANGE.
    /// `u32::MAX`: no cap of its own (the reply buffer bounds the count).
    pub max_extents: u32,
    /// Largest accepted `nstrips` of an interleaved extent.
    pub max_strips: u32,
    /// What the header word at offset 12 means.
    pub header: HeaderVariant,
    /// Bytes of GET_FMAP request payload (0: header only).
    pub get_fmap_in_size: u32,
    /// Alignment of extent offsets, lengths and chunk sizes.
    pub alignment: u64,
    /// Largest GET_FMAP reply payload of the first request; longer replies
    /// are refused by /dev/fuse.
    pub max_reply: u32,
    /// With `FmapSize` headers: largest `fmap_size` the kernel retries with
    /// (above: EFBIG). `None`: no retry.
    pub retry_limit: Option<u32>,
    /// Whether interleaved extents are accepted at all.
    pub interleave: bool,
    /// Device indices at or above this are rejected (1: only index 0).
    pub devindex_limit: u32,
    /// Exact GET_DAXDEV reply payload size.
    pub daxdev_reply_size: u32,
    /// Pulled with GET_DAXDEV or pushed by the daemon.
    pub daxdev: DaxdevSource,
    /// Slots of the connection's device table (a push at or above: EINVAL).
    pub daxdev_slots: u32,
}

/// Names of the built-in profiles, in the order they are documented.
const NAMES: [&str; 3] = ["famfs-6.14", "v10", "next"];

/// Prefix of an explicit profile spec (see [`Profile::parse`]).
pub const CUSTOM_PREFIX: &str = "custom:";

/// Keys accepted in a `custom:` spec.
pub const CUSTOM_KEYS: [&str; 18] = [
    "base",
    "name",
    "flag",
    "flag_bit",
    "get_fmap",
    "get_daxdev",
    "max_extents",
    "max_strips",
    "header",
    "get_fmap_in_size",
    "alignment",
    "max_reply",
    "retry_limit",
    "interleave",
    "devindex_limit",
    "daxdev_reply_size",
    "daxdev",
    "daxdev_slots",
];

/// A profile name that is none of the built-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProfile {
    pub name: String,
}

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown protocol profile '{}'; valid profiles: {}, or {}key=value,...",
            self.name,
            NAMES.join(", "),
            CUSTOM_PREFIX
        )
    }
}

impl std::error::Error for UnknownProfile {}

/// Why a profile name or spec could not be turned into a [`Profile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    Unknown(UnknownProfile),
    /// A `custom:` key that does not exist.
    BadKey {
        key: String,
    },
    /// A `custom:` value that does not parse for its key.
    BadValue {
        key: String,
        value: String,
    },
    /// The numbers parse but do not make a usable profile.
    Invalid {
        name: String,
        why: String,
    },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Unknown(u) => u.fmt(f),
            ProfileError::BadKey { key } => write!(
                f,
                "unknown key '{key}' in custom profile; valid keys: {}",
                CUSTOM_KEYS.join(", ")
            ),
            ProfileError::BadValue { key, value } => {
                write!(f, "bad value '{value}' for key '{key}' in custom profile")
            }
            ProfileError::Invalid { name, why } => write!(f, "profile '{name}' is invalid: {why}"),
        }
    }
}

impl std::error::Error for ProfileError {}

impl From<UnknownProfile> for ProfileError {
    fn from(u: UnknownProfile) -> Self {
        ProfileError::Unknown(u)
    }
}

impl Profile {
    /// The V10 series (2026): bit 43, opcodes 54/55, 32 extents / 32 strips.
    pub fn v10() -> Profile {
        Profile {
            name: "v10".into(),
            flag_bit: 43,
            get_fmap: 54,
            get_daxdev: 55,
            max_extents: 32,
            max_strips: 32,
            header: HeaderVariant::Reserved0,
            get_fmap_in_size: 0,
            alignment: 2 * MIB,
            max_reply: 4096,
            retry_limit: None,
            interleave: true,
            devindex_limit: 1,
            daxdev_reply_size: 280,
            daxdev: DaxdevSource::Pull,
            daxdev_slots: 24,
        }
    }

    /// The 2025 libfuse `famfs-6.14` era: bit 42, opcodes 53/54,
    /// 2 extents / 16 strips, otherwise V10 messages.
    pub fn famfs_6_14() -> Profile {
        Profile {
            name: "famfs-6.14".into(),
            flag_bit: 42,
            get_fmap: 53,
            get_daxdev: 54,
            max_extents: 2,
            max_strips: 16,
            ..Profile::v10()
        }
    }

    /// The revision after V10 (`../kernels/famfs-next-7.3/`): header word
    /// 12 is `fmap_size`, GET_FMAP carries an 8-byte request with the
    /// buffer size (a page first), the kernel retries once with a buffer of
    /// `fmap_size` (at most 16 MiB, else EFBIG), interleaved extents are
    /// rejected, no extent cap but the buffer, and the daemon pushes dax
    /// devices into 64 slots with `FUSE_DEV_IOC_DAXDEV_OPEN` (GET_DAXDEV is
    /// never sent; its number stays V10's so a log can still name it).
    pub fn next() -> Profile {
        Profile {
            name: "next".into(),
            max_extents: u32::MAX,
            header: HeaderVariant::FmapSize,
            get_fmap_in_size: 8,
            retry_limit: Some(16 << 20),
            interleave: false,
            daxdev: DaxdevSource::Push,
            daxdev_slots: 64,
            ..Profile::v10()
        }
    }

    /// Whether the kernel caps `nextents` itself (else only the buffer does).
    pub fn has_extent_cap(&self) -> bool {
        self.max_extents != u32::MAX
    }

    /// Whether the daemon pushes dax devices (no GET_DAXDEV).
    pub fn pushes_daxdevs(&self) -> bool {
        self.daxdev == DaxdevSource::Push
    }

    /// Names accepted by [`Profile::by_name`].
    pub fn names() -> &'static [&'static str] {
        &NAMES
    }

    /// All built-in profiles.
    pub fn builtins() -> Vec<Profile> {
        vec![Profile::famfs_6_14(), Profile::v10(), Profile::next()]
    }

    /// A built-in profile by name.
    pub fn by_name(name: &str) -> Result<Profile, UnknownProfile> {
        match name {
            "famfs-6.14" => Ok(Profile::famfs_6_14()),
            "v10" => Ok(Profile::v10()),
            "next" => Ok(Profile::next()),
            _ => Err(UnknownProfile {
                name: name.to_string(),
            }),
        }
    }

    /// A built-in name, or an explicit spec for a kernel under development:
    /// `custom:flag=44,get_fmap=56,get_daxdev=57,max_extents=32,max_strips=32`.
    /// A spec starts from `base=` (default `v10`) and overrides the given
    /// keys ([`CUSTOM_KEYS`]); numbers may be decimal or `0x` hex. The
    /// profile's name is the spec itself unless `name=` is given.
    pub fn parse(spec: &str) -> Result<Profile, ProfileError> {
        let spec = spec.trim();
        let Some(body) = spec.strip_prefix(CUSTOM_PREFIX) else {
            return Ok(Profile::by_name(spec)?);
        };
        let mut pairs = Vec::new();
        for item in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| ProfileError::BadValue {
                key: item.to_string(),
                value: String::new(),
            })?;
            pairs.push((k.trim(), v.trim()));
        }
        let mut custom = CustomProfile::default();
        for (k, v) in pairs {
            let num = || parse_num(v).ok_or_else(|| bad(k, v));
            let num32 = || {
                parse_num(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| bad(k, v))
            };
            match k {
                "base" => custom.base = Some(v.to_string()),
                "name" => custom.name = Some(v.to_string()),
                "flag" | "flag_bit" => custom.flag_bit = Some(num32()?),
                "get_fmap" => custom.get_fmap = Some(num32()?),
                "get_daxdev" => custom.get_daxdev = Some(num32()?),
                "max_extents" => custom.max_extents = Some(num32()?),
                "max_strips" => custom.max_strips = Some(num32()?),
                "header" => {
                    custom.header = Some(match v {
                        "reserved0" => HeaderVariant::Reserved0,
                        "fmap_size" => HeaderVariant::FmapSize,
                        _ => return Err(bad(k, v)),
                    })
                }
                "get_fmap_in_size" => custom.get_fmap_in_size = Some(num32()?),
                "alignment" => custom.alignment = Some(num()?),
                "max_reply" => custom.max_reply = Some(num32()?),
                "retry_limit" => {
                    custom.retry_limit = Some(match v {
                        "none" | "0" => None,
                        _ => Some(num32()?),
                    })
                }
                "interleave" => {
                    custom.interleave = Some(match v {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        _ => return Err(bad(k, v)),
                    })
                }
                "devindex_limit" => custom.devindex_limit = Some(num32()?),
                "daxdev_reply_size" => custom.daxdev_reply_size = Some(num32()?),
                "daxdev" => {
                    custom.daxdev = Some(match v {
                        "pull" => DaxdevSource::Pull,
                        "push" => DaxdevSource::Push,
                        _ => return Err(bad(k, v)),
                    })
                }
                "daxdev_slots" => custom.daxdev_slots = Some(num32()?),
                _ => return Err(ProfileError::BadKey { key: k.to_string() }),
            }
        }
        if custom.name.is_none() {
            custom.name = Some(spec.to_string());
        }
        custom.resolve()
    }

    /// The capability as a mask of the 64-bit INIT flags.
    pub fn flag_mask(&self) -> u64 {
        1u64 << self.flag_bit
    }

    /// Whether a 64-bit INIT flag set (the kernel's offer or the server's
    /// reply) carries this profile's famfs capability.
    pub fn has_flag(&self, flags: u64) -> bool {
        flags & self.flag_mask() != 0
    }

    /// Whether the header word at offset 12 is `fmap_size`.
    pub fn has_fmap_size(&self) -> bool {
        self.header == HeaderVariant::FmapSize
    }

    /// Checks that the numbers make a usable profile.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let why = if self.flag_bit >= 64 {
            Some("flag bit must be below 64".to_string())
        } else if self.get_fmap == self.get_daxdev {
            Some("GET_FMAP and GET_DAXDEV must differ".to_string())
        } else if self.get_fmap == 0 || self.get_daxdev == 0 {
            Some("opcode 0 is not valid".to_string())
        } else if self.max_extents == 0 {
            Some("max_extents must be at least 1".to_string())
        } else if self.alignment == 0 || !self.alignment.is_power_of_two() {
            Some("alignment must be a power of two".to_string())
        } else if self.retry_limit.is_some() && !self.has_fmap_size() {
            Some("retry_limit needs header=fmap_size".to_string())
        } else if self.daxdev_slots == 0 || self.daxdev_slots > 64 {
            Some("daxdev_slots must be 1..=64".to_string())
        } else {
            None
        };
        match why {
            Some(why) => Err(ProfileError::Invalid {
                name: self.name.clone(),
                why,
            }),
            None => Ok(()),
        }
    }
}

impl FromStr for Profile {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::parse(s)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extents = if self.has_extent_cap() {
            self.max_extents.to_string()
        } else {
            "uncapped".to_string()
        };
        let devices = match self.daxdev {
            DaxdevSource::Pull => format!("GET_DAXDEV {}", self.get_daxdev),
            DaxdevSource::Push => "devices pushed".to_string(),
        };
        write!(
            f,
            "{} (bit {}, GET_FMAP {}, {}, {} extents / {} strips{})",
            self.name,
            self.flag_bit,
            self.get_fmap,
            devices,
            extents,
            self.max_strips,
            if self.interleave { "" } else { ", simple only" }
        )
    }
}

fn bad(k: &str, v: &str) -> ProfileError {
    ProfileError::BadValue {
        key: k.to_string(),
        value: v.to_string(),
    }
}

fn parse_num(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// A profile given field by field (e.g. in scenario YAML): a built-in base
/// plus the fields that differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProfile {
    /// Built-in profile to start from; `v10` when absent.
    pub base: Option<String>,
    pub name: Option<String>,
    #[serde(alias = "flag")]
    pub flag_bit: Option<u32>,
    pub get_fmap: Option<u32>,
    pub get_daxdev: Option<u32>,
    pub max_extents: Option<u32>,
    pub max_strips: Option<u32>,
    pub header: Option<HeaderVariant>,
    pub get_fmap_in_size: Option<u32>,
    pub alignment: Option<u64>,
    pub max_reply: Option<u32>,
    /// `Some(None)` removes the base's retry.
    #[serde(default, with = "double_option")]
    pub retry_limit: Option<Option<u32>>,
    pub interleave: Option<bool>,
    pub devindex_limit: Option<u32>,
    pub daxdev_reply_size: Option<u32>,
    pub daxdev: Option<DaxdevSource>,
    pub daxdev_slots: Option<u32>,
}

impl CustomProfile {
    /// Applies the overrides to the base and validates the result.
    pub fn resolve(&self) -> Result<Profile, ProfileError> {
        let mut p = Profile::by_name(self.base.as_deref().unwrap_or("v10"))?;
        p.name = self.name.clone().unwrap_or_else(|| "custom".to_string());
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { p.$f = v; } )*};
        }
        set!(
            flag_bit,
            get_fmap,
            get_daxdev,
            max_extents,
            max_strips,
            header,
            get_fmap_in_size,
            alignment,
            max_reply,
            retry_limit,
            interleave,
            devindex_limit,
            daxdev_reply_size,
            daxdev,
            daxdev_slots
        );
        p.validate()?;
        Ok(p)
    }
}

/// How a scenario names its profile: a name or `custom:` string, or a
/// field-by-field [`CustomProfile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileSpec {
    Name(String),
    Custom(CustomProfile),
}

impl ProfileSpec {
    /// The profile this spec stands for.
    pub fn resolve(&self) -> Result<Profile, ProfileError> {
        match self {
            ProfileSpec::Name(n) => Profile::parse(n),
            ProfileSpec::Custom(c) => c.resolve(),
        }
    }
}

/// Keeps "absent" and "explicitly null" apart for `retry_limit`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<u32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(inner) => inner.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
        Option::<u32>::deserialize(d).map(Some)
    }
}
