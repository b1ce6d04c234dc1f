//! The faults a scenario can inject, and how each one changes a reply.
//!
//! [`Fault`] is externally tagged: the variant name is the key a scenario
//! writes (`fault: never_reply`, `fault: {nextents: 33}`), so serde's list
//! of variants is the list of valid fault names in error messages.
//!
//! fmap faults edit the [`RawFmap`] of the file before it is encoded, so
//! several of them compose; the few that depend on the final length
//! (truncation, oversize, the `fmap_size` word) run after all edits.

use famfs_proto::abi::{DaxdevOut, Wire, DAXDEV_NAME_LEN};
use famfs_proto::fmap::{Extents, Record, HEADER_SIZE, RECORD_SIZE};
use famfs_proto::{Fmap, Profile, RawFmap};
use serde::{Deserialize, Serialize};

use super::scenario::{Errno, Size};

/// Path used by `daxdev_nonexistent`.
pub const NONEXISTENT_DAXDEV: &str = "/dev/fh-no-such-daxdev";
/// A path that exists but is not a character device (`daxdev_not_chardev`).
pub const NOT_CHARDEV: &str = "/dev";
/// A character device that is not a dax device (`daxdev_non_dax`).
pub const NON_DAX_CHARDEV: &str = "/dev/null";
/// Filler byte of `trailing_bytes` and `oversize`, easy to spot in dumps.
pub const FILL: u8 = 0xa5;

/// Selects an extent, or for interleaved fmaps a strip of one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Extent index (default 0).
    #[serde(default)]
    pub extent: u32,
    /// Strip index within an interleaved extent (default 0).
    #[serde(default)]
    pub strip: Option<u32>,
}

/// `misaligned_offset` / `misaligned_len`: add `by` (default 4K) to the field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Misalign {
    #[serde(default)]
    pub extent: u32,
    #[serde(default)]
    pub strip: Option<u32>,
    #[serde(default)]
    pub by: Option<Size>,
}

/// A value for a field of an extent or strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetValue {
    pub value: Size,
    #[serde(default)]
    pub extent: u32,
    #[serde(default)]
    pub strip: Option<u32>,
}

/// A value for a field of an interleaved extent header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtValue {
    pub value: Size,
    #[serde(default)]
    pub extent: u32,
}

/// An extent selector for fields of interleaved extent headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtentOnly {
    #[serde(default)]
    pub extent: u32,
}

/// Bytes written over the encoded fmap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub offset: usize,
    /// Hex digits, e.g. `"ffff0000"`.
    pub hex: String,
}

/// A notification sent after the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyStore {
    /// Target file (default: the request's node).
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub offset: Option<Size>,
    /// Data to store (default: 4K of 0x5a unless `len` says otherwise).
    #[serde(default)]
    pub data: Option<String>,
    /// Length of generated data when `data` is absent.
    #[serde(default)]
    pub len: Option<Size>,
    /// Wait this long after the reply before sending.
    #[serde(default)]
    pub after_ms: Option<u64>,
}

/// NOTIFY_INVAL_INODE after the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInval {
    #[serde(default)]
    pub node: Option<String>,
    /// Negative: invalidate attributes only.
    #[serde(default)]
    pub offset: i64,
    /// 0 or negative: to the end of the file.
    #[serde(default)]
    pub len: i64,
    #[serde(default)]
    pub after_ms: Option<u64>,
}

/// A push of a dax device with `FUSE_DEV_IOC_DAXDEV_OPEN` (push profiles),
/// made when the rule fires, on top of the pushes `push:` schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushFault {
    /// Slot to push into.
    #[serde(default)]
    pub index: u64,
    /// What to open and push (default: the `daxdevs` path of `index`,
    /// else of index 0): `/dev/null` for a non-dax character device, a
    /// regular file, another dax device.
    #[serde(default)]
    pub path: Option<String>,
    /// Push an fd number that is not open instead.
    #[serde(default)]
    pub bad_fd: bool,
    /// Push before the reply is written (default: after it).
    #[serde(default)]
    pub before_reply: bool,
}

/// One fault. Grouped by the reply it changes; see [`Fault::class`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    // --- fmap (GET_FMAP) -------------------------------------------------
    /// Cut the payload to this many bytes (below the 32-byte header).
    ShortPayload(usize),
    /// Header `nextents` set to this value, records untouched.
    Nextents(u32),
    /// `nextents` one above the profile's maximum.
    NextentsOverMax,
    /// Header `ext_type` set to this value.
    ExtType(u32),
    /// The last extent record cut in half, so it runs past the payload.
    TruncatedExtents,
    /// An extent or strip offset moved off the alignment.
    MisalignedOffset(Misalign),
    /// An extent or strip length made unaligned.
    MisalignedLen(Misalign),
    /// An extent or strip `devindex` (1 for "not 0", 32+ for the shift).
    Devindex(SetValue),
    /// `nstrips` of an interleaved extent.
    Nstrips(ExtValue),
    /// `nstrips` one above the profile's maximum.
    NstripsOverMax(ExtentOnly),
    /// `chunk_size` of an interleaved extent (0 or unaligned).
    ChunkSize(ExtValue),
    /// `nbytes` of an interleaved extent.
    Nbytes(ExtValue),
    /// Header `file_size` one alignment unit above the sum of lengths.
    ShortOfFileSize,
    /// Header `file_size` set to this value.
    FileSize(Size),
    /// Header `file_size` of 2^63, the last extent (or `nbytes`) stretched
    /// so the lengths still add up to it.
    HugeFileSize,
    /// An offset of 2^64 minus the alignment, so offset + len wraps.
    OffsetWrap(Target),
    /// Padded to one byte more than the kernel's buffer.
    Oversize,
    /// A second extent (or strip) mapping the same device range as the first.
    Overlap,
    /// This many bytes appended after the last record.
    TrailingBytes(usize),
    /// Header `fmap_version`.
    FmapVersion(u16),
    /// Header `file_type`.
    FileType(u8),
    /// Header word at offset 12 (`fmap_size` in profiles that have it).
    FmapSize(u32),
    /// Only the 32-byte header, whatever the buffer (its `fmap_size`
    /// still names the whole fmap): the size probe's reply sent when the
    /// fmap would have fit.
    HeaderOnly,
    /// Raw bytes written at an offset of the encoded fmap.
    Patch(Patch),

    // --- GET_DAXDEV ------------------------------------------------------
    /// An empty name.
    DaxdevEmptyName,
    /// A path that does not exist.
    DaxdevNonexistent,
    /// A path that is not a character device.
    DaxdevNotChardev,
    /// A character device that is not a dax device (`/dev/null`).
    DaxdevNonDax,
    /// 256 name bytes with no NUL.
    DaxdevUnterminated,
    /// This path instead of the configured one.
    DaxdevPath(String),
    /// The reply payload cut or zero-padded to this many bytes.
    DaxdevReplySize(usize),

    // --- attributes (GETATTR, SETATTR, LOOKUP) ----------------------------
    /// The size in the returned attributes.
    AttrSize(Size),

    // --- any request -------------------------------------------------------
    /// An error reply with this errno (sent negated).
    Error(Errno),
    /// An error reply with exactly this header `error` value (e.g. 1 or
    /// -600, which /dev/fuse refuses).
    RawError(i32),
    /// An error reply that also carries 8 payload bytes.
    ErrorWithPayload(Errno),
    /// Header `len` off by this many bytes from what is written.
    LenMismatch(i32),
    /// Sleep this many milliseconds before replying.
    Delay(u64),
    /// Never reply; the request stays pending.
    NeverReply,
    /// The process exits with this status while the request is pending.
    Exit(i32),
    /// A dax device push (`FUSE_DEV_IOC_DAXDEV_OPEN`) around the reply.
    Push(PushFault),
    /// NOTIFY_STORE after the reply.
    NotifyStore(NotifyStore),
    /// NOTIFY_INVAL_INODE after the reply.
    NotifyInvalInode(NotifyInval),
}

/// Which reply a fault changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    Fmap,
    Daxdev,
    Attr,
    Generic,
}

/// Work left for after all fmap edits.
#[derive(Debug, Default, Clone, Copy)]
pub struct FmapPost {
    pub truncate_last: bool,
    pub header_only: bool,
    pub oversize: bool,
    pub fmap_size_set: bool,
}

fn target_record(
    raw: &mut RawFmap,
    extent: u32,
    strip: Option<u32>,
) -> Option<&mut famfs_proto::abi::FmapSimpleExt> {
    let interleaved = raw
        .records
        .iter()
        .any(|r| matches!(r, Record::Interleave(_)));
    if interleaved {
        raw.strip_mut(extent as usize, strip.unwrap_or(0) as usize)
    } else if strip.is_some() {
        None
    } else {
        raw.extent_mut(extent as usize)
    }
}

fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() & 1 != 0 {
        return Err(format!("hex '{s}' has an odd number of digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex '{s}'")))
        .collect()
}

/// The sum of extent lengths (`nbytes` for interleaved extents), with
/// 64-bit wrap-around like the kernel's.
fn records_total(raw: &RawFmap) -> u64 {
    raw.records.iter().fold(0u64, |a, r| match r {
        Record::Extent(e) => a.wrapping_add(e.len),
        Record::Interleave(h) => a.wrapping_add(h.nbytes),
        Record::Strip(_) => a,
    })
}

/// The last extent, or interleaved extent header, of `raw`.
fn last_extent(raw: &mut RawFmap) -> Option<&mut Record> {
    raw.records
        .iter_mut()
        .rev()
        .find(|r| !matches!(r, Record::Strip(_)))
}

/// `huge_file_size`: a `file_size` of 2^63.
fn huge_file_size(raw: &mut RawFmap, p: &Profile) {
    // Stretch the last extent so the lengths still cover the size:
    // otherwise the sum check rejects the fmap first and the unchecked
    // size never reaches the kernel.
    let huge = 1u64 << 63;
    let others = {
        let mut r = raw.clone();
        match last_extent(&mut r) {
            Some(Record::Extent(e)) => e.len = 0,
            Some(Record::Interleave(h)) => h.nbytes = 0,
            _ => {}
        }
        records_total(&r)
    };
    let need = huge
        .wrapping_sub(others)
        .checked_next_multiple_of(p.alignment)
        .unwrap_or(huge);
    match last_extent(raw) {
        Some(Record::Extent(e)) => e.len = need,
        Some(Record::Interleave(h)) => h.nbytes = need,
        _ => {}
    }
    raw.set_file_size(huge);
}

/// `overlap`: simple, repeat extent 0; interleaved, repeat strip 0 of
/// extent 0 right after it. Counts follow the new record. False if there
/// is nothing to repeat.
fn overlap(raw: &mut RawFmap) -> bool {
    match raw.records.first().copied() {
        Some(Record::Extent(e)) => {
            raw.records.push(Record::Extent(e));
            raw.header.nextents = raw.header.nextents.wrapping_add(1);
        }
        Some(Record::Interleave(_)) => {
            let Some(Record::Strip(s)) = raw.records.get(1).copied() else {
                return false;
            };
            raw.records.insert(2, Record::Strip(s));
            let h = raw
                .interleave_mut(0)
                .expect("record 0 is an interleaved header");
            h.nstrips = h.nstrips.wrapping_add(1);
        }
        _ => return false,
    }
    true
}

impl Fault {
    pub fn class(&self) -> FaultClass {
        use Fault::*;
        match self {
            ShortPayload(_) | Nextents(_) | NextentsOverMax | ExtType(_) | TruncatedExtents
            | MisalignedOffset(_) | MisalignedLen(_) | Devindex(_) | Nstrips(_)
            | NstripsOverMax(_) | ChunkSize(_) | Nbytes(_) | ShortOfFileSize | FileSize(_)
            | HugeFileSize | OffsetWrap(_) | Oversize | Overlap | TrailingBytes(_)
            | FmapVersion(_) | FileType(_) | FmapSize(_) | HeaderOnly | Patch(_) => {
                FaultClass::Fmap
            }
            DaxdevEmptyName | DaxdevNonexistent | DaxdevNotChardev | DaxdevNonDax
            | DaxdevUnterminated | DaxdevPath(_) | DaxdevReplySize(_) => FaultClass::Daxdev,
            AttrSize(_) => FaultClass::Attr,
            Error(_) | RawError(_) | ErrorWithPayload(_) | LenMismatch(_) | Delay(_)
            | NeverReply | Exit(_) | Push(_) | NotifyStore(_) | NotifyInvalInode(_) => {
                FaultClass::Generic
            }
        }
    }

    /// The name a scenario uses for this fault (the serde tag).
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(serde_json::Value::Object(m)) => m.keys().next().cloned().unwrap_or_default(),
            _ => String::new(),
        }
    }

    pub fn is_notify(&self) -> bool {
        matches!(self, Fault::NotifyStore(_) | Fault::NotifyInvalInode(_))
    }

    /// The path a notification names, if any.
    pub fn notify_path(&self) -> Option<&str> {
        match self {
            Fault::NotifyStore(n) => n.node.as_deref(),
            Fault::NotifyInvalInode(n) => n.node.as_deref(),
            _ => None,
        }
    }

    /// Checks that do not depend on a file.
    pub fn check_static(&self) -> Result<(), String> {
        match self {
            Fault::ShortPayload(n) if *n >= HEADER_SIZE => {
                Err(format!("length {n} must be below 32 (the header size)"))
            }
            Fault::Patch(p) => hex_bytes(&p.hex).map(|_| ()),
            Fault::DaxdevPath(p) if p.len() >= DAXDEV_NAME_LEN => Err(format!(
                "path of {} bytes leaves no room for a NUL in {DAXDEV_NAME_LEN} bytes; use daxdev_unterminated",
                p.len()
            )),
            Fault::Nstrips(v) if u32::try_from(v.value.0).is_err() => Err("value must fit in 32 bits".into()),
            Fault::ChunkSize(v) if u32::try_from(v.value.0).is_err() => Err("value must fit in 32 bits".into()),
            Fault::Devindex(v) if u32::try_from(v.value.0).is_err() => Err("value must fit in 32 bits".into()),
            Fault::Push(p) if p.bad_fd && p.path.is_some() => {
                Err("push: give a path or bad_fd, not both".into())
            }
            _ => Ok(()),
        }
    }

    /// Checks that the extent or strip the fault names exists in `fmap`.
    pub fn check_target(&self, fmap: &Fmap) -> Result<(), String> {
        let (extent, strip, interleave_only) = match self {
            Fault::MisalignedOffset(m) | Fault::MisalignedLen(m) => (m.extent, m.strip, false),
            Fault::Devindex(v) => (v.extent, v.strip, false),
            Fault::OffsetWrap(t) => (t.extent, t.strip, false),
            Fault::Nstrips(v) | Fault::ChunkSize(v) | Fault::Nbytes(v) => (v.extent, None, true),
            Fault::NstripsOverMax(e) => (e.extent, None, true),
            Fault::TruncatedExtents | Fault::Overlap => {
                return if fmap.extents.is_empty() {
                    Err("the fmap has no extents".into())
                } else {
                    Ok(())
                }
            }
            _ => return Ok(()),
        };
        match &fmap.extents {
            Extents::Simple(v) => {
                if interleave_only {
                    return Err("needs an interleaved fmap; this one has simple extents".into());
                }
                if strip.is_some() {
                    return Err("`strip` needs an interleaved fmap".into());
                }
                if extent as usize >= v.len() {
                    return Err(format!(
                        "extent {extent} does not exist ({} extents)",
                        v.len()
                    ));
                }
            }
            Extents::Interleave(v) => {
                let Some(e) = v.get(extent as usize) else {
                    return Err(format!(
                        "extent {extent} does not exist ({} extents)",
                        v.len()
                    ));
                };
                let s = strip.unwrap_or(0) as usize;
                if !interleave_only && s >= e.strips.len() {
                    return Err(format!(
                        "extent {extent} has no strip {s} ({} strips)",
                        e.strips.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies an fmap fault to `raw`; false if the fault found nothing to
    /// change (its target is missing in this fmap).
    pub fn apply_fmap(&self, raw: &mut RawFmap, p: &Profile, post: &mut FmapPost) -> bool {
        match self {
            Fault::ShortPayload(n) => {
                raw.truncate(*n);
            }
            Fault::Nextents(n) => {
                raw.set_nextents(*n);
            }
            Fault::NextentsOverMax => {
                raw.set_nextents(p.max_extents.saturating_add(1));
            }
            Fault::ExtType(t) => {
                raw.set_ext_type(*t);
            }
            Fault::TruncatedExtents => {
                if raw.records.is_empty() {
                    return false;
                }
                post.truncate_last = true;
            }
            Fault::MisalignedOffset(_)
            | Fault::MisalignedLen(_)
            | Fault::Devindex(_)
            | Fault::OffsetWrap(_) => return self.apply_record(raw, p),
            Fault::Nstrips(_)
            | Fault::NstripsOverMax(_)
            | Fault::ChunkSize(_)
            | Fault::Nbytes(_) => return self.apply_interleave(raw, p),
            Fault::ShortOfFileSize => {
                let total = records_total(raw);
                raw.set_file_size(total.wrapping_add(p.alignment));
            }
            Fault::FileSize(s) => {
                raw.set_file_size(s.0);
            }
            Fault::HugeFileSize => huge_file_size(raw, p),
            Fault::Oversize => post.oversize = true,
            Fault::HeaderOnly => post.header_only = true,
            Fault::Overlap => return overlap(raw),
            Fault::TrailingBytes(n) => {
                raw.append(&vec![FILL; *n]);
            }
            Fault::FmapVersion(v) => raw.header.fmap_version = *v,
            Fault::FileType(t) => raw.header.file_type = *t,
            Fault::FmapSize(n) => {
                raw.set_fmap_size(*n);
                post.fmap_size_set = true;
            }
            Fault::Patch(pt) => {
                let bytes = hex_bytes(&pt.hex).expect("checked when the scenario was resolved");
                raw.patch(pt.offset, &bytes);
            }
            _ => return false,
        }
        true
    }

    /// The faults on one simple extent or strip; false if it is missing.
    fn apply_record(&self, raw: &mut RawFmap, p: &Profile) -> bool {
        let (extent, strip) = match self {
            Fault::MisalignedOffset(m) | Fault::MisalignedLen(m) => (m.extent, m.strip),
            Fault::Devindex(v) => (v.extent, v.strip),
            Fault::OffsetWrap(t) => (t.extent, t.strip),
            _ => return false,
        };
        let Some(e) = target_record(raw, extent, strip) else {
            return false;
        };
        match self {
            Fault::MisalignedOffset(m) => {
                e.offset = e.offset.wrapping_add(m.by.map_or(4096, |b| b.0))
            }
            Fault::MisalignedLen(m) => e.len = e.len.wrapping_add(m.by.map_or(4096, |b| b.0)),
            Fault::Devindex(v) => e.devindex = v.value.0 as u32,
            Fault::OffsetWrap(_) => {
                e.offset = 0u64.wrapping_sub(p.alignment);
                if e.len == 0 {
                    e.len = p.alignment;
                }
            }
            _ => return false,
        }
        true
    }

    /// The faults on an interleaved extent's header; false if it is missing.
    fn apply_interleave(&self, raw: &mut RawFmap, p: &Profile) -> bool {
        let extent = match self {
            Fault::Nstrips(v) | Fault::ChunkSize(v) | Fault::Nbytes(v) => v.extent,
            Fault::NstripsOverMax(e) => e.extent,
            _ => return false,
        };
        let Some(h) = raw.interleave_mut(extent as usize) else {
            return false;
        };
        match self {
            Fault::Nstrips(v) => h.nstrips = v.value.0 as u32,
            Fault::NstripsOverMax(_) => h.nstrips = p.max_strips.saturating_add(1),
            Fault::ChunkSize(v) => h.chunk_size = v.value.0 as u32,
            Fault::Nbytes(v) => h.nbytes = v.value.0,
            _ => return false,
        }
        true
    }

    /// Applies a GET_DAXDEV fault to the reply payload. `configured` is the
    /// path of the index, if any.
    pub fn apply_daxdev(
        &self,
        payload: &mut Vec<u8>,
        index: u16,
        configured: Option<&str>,
    ) -> bool {
        let with = |path: &str| {
            DaxdevOut::with_path(index, path)
                .expect("checked length")
                .to_bytes()
        };
        match self {
            Fault::DaxdevEmptyName => *payload = with(""),
            Fault::DaxdevNonexistent => *payload = with(NONEXISTENT_DAXDEV),
            Fault::DaxdevNotChardev => *payload = with(NOT_CHARDEV),
            Fault::DaxdevNonDax => *payload = with(NON_DAX_CHARDEV),
            Fault::DaxdevPath(p) => *payload = with(p),
            Fault::DaxdevUnterminated => {
                let mut name = [b'A'; DAXDEV_NAME_LEN];
                let start = configured.unwrap_or("/dev/dax0.0").as_bytes();
                name[..start.len()].copy_from_slice(start);
                *payload = DaxdevOut::with_raw_name(index, name).to_bytes();
            }
            Fault::DaxdevReplySize(n) => payload.resize(*n, 0),
            _ => return false,
        }
        true
    }
}

/// Finishes an fmap after all edits: keeps `fmap_size` (where the profile
/// has it) equal to the length actually sent unless a fault set it, fits
/// the reply into the kernel's buffer (post-V10: a header alone announcing
/// the full size, so the kernel retries), then the length faults.
pub fn finish_fmap(raw: &mut RawFmap, p: &Profile, post: FmapPost, buffer: usize) -> Vec<u8> {
    let sized = p.has_fmap_size() && !post.fmap_size_set;
    if sized {
        raw.sync_fmap_size();
    }
    if post.oversize {
        let want = buffer + 1;
        let have = raw.body_len();
        if have < want {
            raw.append(&vec![FILL; want - have]);
        }
        if sized {
            raw.sync_fmap_size();
        }
    } else if post.truncate_last {
        let cut = raw.body_len() - raw.trailing.len() - RECORD_SIZE / 2;
        raw.trailing.clear();
        raw.truncate = Some(raw.truncate.map_or(cut, |t| t.min(cut)));
        if sized {
            raw.set_fmap_size(cut as u32);
        }
    } else if post.header_only || (sized && p.retry_limit.is_some() && raw.body_len() > buffer) {
        raw.truncate = Some(raw.truncate.map_or(HEADER_SIZE, |t| t.min(HEADER_SIZE)));
    }
    raw.to_bytes()
}
