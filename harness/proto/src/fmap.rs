//! The fmap message: a typed model, its encoder, a lenient decoder that
//! reports structure (not validity: see [`crate::verdict`]), and a raw
//! builder that can produce any malformed byte sequence.

use crate::abi::{FmapHeader, FmapInterleaveExt, FmapSimpleExt, Wire};
use crate::profile::Profile;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `file_type` of a regular file.
pub const FILE_TYPE_REG: u8 = 0;
/// `file_type` of the famfs superblock file.
pub const FILE_TYPE_SUPERBLOCK: u8 = 1;
/// `file_type` of the famfs log file.
pub const FILE_TYPE_LOG: u8 = 2;
/// `ext_type` of a list of simple extents.
pub const EXT_SIMPLE: u32 = 0;
/// `ext_type` of a list of interleaved extents.
pub const EXT_INTERLEAVE: u32 = 1;
/// The only `fmap_version` defined so far.
pub const FMAP_VERSION: u16 = 1;

/// Size of the fmap header.
pub const HEADER_SIZE: usize = FmapHeader::SIZE;
/// Size of a simple extent, a strip, or an interleaved extent header.
pub const RECORD_SIZE: usize = FmapSimpleExt::SIZE;
const _: () = assert!(FmapSimpleExt::SIZE == FmapInterleaveExt::SIZE);

/// Name of a `file_type` value, if defined.
pub fn file_type_name(t: u8) -> Option<&'static str> {
    match t {
        FILE_TYPE_REG => Some("REG"),
        FILE_TYPE_SUPERBLOCK => Some("SUPERBLOCK"),
        FILE_TYPE_LOG => Some("LOG"),
        _ => None,
    }
}

/// Name of an `ext_type` value, if defined.
pub fn ext_type_name(t: u32) -> Option<&'static str> {
    match t {
        EXT_SIMPLE => Some("SIMPLE"),
        EXT_INTERLEAVE => Some("INTERLEAVE"),
        _ => None,
    }
}

fn default_version() -> u16 {
    FMAP_VERSION
}

/// A range of a dax device: an extent of a simple fmap or a strip of an
/// interleaved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleExtent {
    #[serde(default)]
    pub devindex: u32,
    #[serde(default)]
    pub reserved: u32,
    pub offset: u64,
    pub len: u64,
}

impl SimpleExtent {
    /// An extent on device 0.
    pub fn new(offset: u64, len: u64) -> Self {
        SimpleExtent {
            devindex: 0,
            reserved: 0,
            offset,
            len,
        }
    }

    fn to_abi(self) -> FmapSimpleExt {
        FmapSimpleExt {
            devindex: self.devindex,
            reserved: self.reserved,
            offset: self.offset,
            len: self.len,
        }
    }
}

impl From<FmapSimpleExt> for SimpleExtent {
    fn from(e: FmapSimpleExt) -> Self {
        SimpleExtent {
            devindex: e.devindex,
            reserved: e.reserved,
            offset: e.offset,
            len: e.len,
        }
    }
}

/// An interleaved extent: `nbytes` of file data spread over the strips in
/// `chunk_size` pieces. `nstrips` on the wire is `strips.len()` (use
/// [`RawFmap`] to lie about it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterleavedExtent {
    pub chunk_size: u32,
    pub nbytes: u64,
    #[serde(default)]
    pub reserved: u64,
    pub strips: Vec<SimpleExtent>,
}

impl InterleavedExtent {
    pub fn new(chunk_size: u32, nbytes: u64, strips: Vec<SimpleExtent>) -> Self {
        InterleavedExtent {
            chunk_size,
            nbytes,
            reserved: 0,
            strips,
        }
    }

    /// Number of strips as encoded.
    pub fn nstrips(&self) -> u32 {
        self.strips.len() as u32
    }

    fn header(&self) -> FmapInterleaveExt {
        FmapInterleaveExt {
            nstrips: self.nstrips(),
            chunk_size: self.chunk_size,
            nbytes: self.nbytes,
            reserved: self.reserved,
        }
    }
}

/// The extent list; its variant gives `ext_type` and its length `nextents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extents {
    Simple(Vec<SimpleExtent>),
    Interleave(Vec<InterleavedExtent>),
}

impl Extents {
    /// `ext_type` as encoded.
    pub fn ext_type(&self) -> u32 {
        match self {
            Extents::Simple(_) => EXT_SIMPLE,
            Extents::Interleave(_) => EXT_INTERLEAVE,
        }
    }

    /// Number of extents (not strips).
    pub fn len(&self) -> usize {
        match self {
            Extents::Simple(v) => v.len(),
            Extents::Interleave(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file's fmap. Reserved fields are kept so that fmaps with non-zero
/// reserved bytes can be expressed; `ext_type`, `nextents` and `nstrips`
/// are derived from the extents when encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fmap {
    #[serde(default)]
    pub file_type: u8,
    #[serde(default)]
    pub reserved: u8,
    #[serde(default = "default_version")]
    pub version: u16,
    pub file_size: u64,
    /// Header word at offset 12 when the profile treats it as reserved.
    /// Profiles with `fmap_size` there ignore this and write the real size.
    #[serde(default)]
    pub reserved0: u32,
    #[serde(default)]
    pub reserved1: u64,
    pub extents: Extents,
}

impl Fmap {
    /// A regular file made of simple extents.
    pub fn simple(file_size: u64, extents: Vec<SimpleExtent>) -> Self {
        Fmap {
            file_type: FILE_TYPE_REG,
            reserved: 0,
            version: FMAP_VERSION,
            file_size,
            reserved0: 0,
            reserved1: 0,
            extents: Extents::Simple(extents),
        }
    }

    /// A regular file made of interleaved extents.
    pub fn interleaved(file_size: u64, extents: Vec<InterleavedExtent>) -> Self {
        Fmap {
            extents: Extents::Interleave(extents),
            ..Fmap::simple(file_size, Vec::new())
        }
    }

    /// `nextents` as encoded.
    pub fn nextents(&self) -> u32 {
        self.extents.len() as u32
    }

    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        let records = match &self.extents {
            Extents::Simple(v) => v.len(),
            Extents::Interleave(v) => v.iter().map(|e| 1 + e.strips.len()).sum(),
        };
        HEADER_SIZE + records * RECORD_SIZE
    }

    /// The wire form for `profile`, as records that can still be tampered with.
    pub fn to_raw(&self, profile: &Profile) -> RawFmap {
        RawFmap::from_fmap(self, profile)
    }

    /// The wire form for `profile`.
    pub fn encode(&self, profile: &Profile) -> Vec<u8> {
        self.to_raw(profile).to_bytes()
    }

    /// Lenient decode: succeeds whenever the bytes have the structure of an
    /// fmap (a header, a known `ext_type`, and every announced extent and
    /// strip present), whether or not a kernel would accept it.
    pub fn decode(profile: &Profile, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let layout = walk(bytes);
        if let Some(e) = layout.error {
            return Err(e);
        }
        let h = layout.header.expect("a walk without error has a header");
        let extents = if h.ext_type == EXT_SIMPLE {
            Extents::Simple(
                layout
                    .items
                    .iter()
                    .filter_map(|it| match it.record {
                        Record::Extent(e) => Some(e.into()),
                        _ => None,
                    })
                    .collect(),
            )
        } else {
            let mut v: Vec<InterleavedExtent> = Vec::new();
            for it in &layout.items {
                match it.record {
                    Record::Interleave(ih) => v.push(InterleavedExtent {
                        chunk_size: ih.chunk_size,
                        nbytes: ih.nbytes,
                        reserved: ih.reserved,
                        strips: Vec::with_capacity(ih.nstrips as usize),
                    }),
                    Record::Strip(s) => v
                        .last_mut()
                        .expect("strips follow their extent")
                        .strips
                        .push(s.into()),
                    Record::Extent(_) => unreachable!("no simple extents in an interleaved fmap"),
                }
            }
            Extents::Interleave(v)
        };
        let (reserved0, fmap_size) = if profile.has_fmap_size() {
            (0, Some(h.reserved0))
        } else {
            (h.reserved0, None)
        };
        Ok(Decoded {
            fmap: Fmap {
                file_type: h.file_type,
                reserved: h.reserved,
                version: h.fmap_version,
                file_size: h.file_size,
                reserved0,
                reserved1: h.reserved1,
                extents,
            },
            fmap_size,
            trailing: bytes[layout.end..].to_vec(),
        })
    }
}

/// A run of file bytes stored contiguously on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub file_offset: u64,
    pub len: u64,
    pub devindex: u32,
    pub dev_offset: u64,
}

impl Fmap {
    /// Where each byte of the file lives, in file order, up to `file_size`
    /// and at most `max` runs: simple extents one after the other;
    /// interleaved extents chunk by chunk, round-robin over their strips.
    /// An interleaved extent with chunk size 0 maps nothing.
    pub fn segments(&self, max: usize) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut at = 0u64;
        let end = self.file_size;
        let push = |out: &mut Vec<Segment>, at: u64, len: u64, dev: u32, off: u64| {
            if at < end && out.len() < max {
                out.push(Segment {
                    file_offset: at,
                    len: len.min(end - at),
                    devindex: dev,
                    dev_offset: off,
                });
            }
        };
        match &self.extents {
            Extents::Simple(v) => {
                for e in v {
                    push(&mut out, at, e.len, e.devindex, e.offset);
                    at = at.saturating_add(e.len);
                }
            }
            Extents::Interleave(v) => {
                for e in v {
                    let (c, n) = (e.chunk_size as u64, e.strips.len() as u64);
                    if c == 0 || n == 0 {
                        at = at.saturating_add(e.nbytes);
                        continue;
                    }
                    // Chunks past `file_size` map nothing: stop there, or an
                    // extent whose `nbytes` dwarfs the file loops ~2^64 / c
                    // times. Offsets come from the wire and may be anything:
                    // file offsets saturate, device offsets wrap as the
                    // kernel's u64 arithmetic does.
                    for k in 0..e.nbytes.div_ceil(c) {
                        let file_offset = at.saturating_add(k * c);
                        if file_offset >= end || out.len() >= max {
                            break;
                        }
                        let s = &e.strips[(k % n) as usize];
                        // k < nbytes / c rounded up, so k * c < nbytes.
                        let len = c.min(e.nbytes - k * c);
                        push(
                            &mut out,
                            file_offset,
                            len,
                            s.devindex,
                            s.offset.wrapping_add((k / n) * c),
                        );
                    }
                    at = at.saturating_add(e.nbytes);
                }
            }
        }
        out
    }
}

/// Result of [`Fmap::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub fmap: Fmap,
    /// The header's `fmap_size`, for profiles that have one.
    pub fmap_size: Option<u32>,
    /// Bytes after the last strip or extent.
    pub trailing: Vec<u8>,
}

/// Why bytes do not have the structure of an fmap. Offsets are byte
/// offsets into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the 32-byte header.
    Short { need: usize, got: usize },
    /// `ext_type` (at offset 4) is neither SIMPLE nor INTERLEAVE.
    BadExtType { ext_type: u32, offset: usize },
    /// Extent `index` (a simple extent or an interleaved extent header)
    /// starts at `offset` but only `got` of its `need` bytes are there.
    TruncatedExtent {
        index: u32,
        offset: usize,
        need: usize,
        got: usize,
    },
    /// Strip `strip` of interleaved extent `extent` is cut short likewise.
    TruncatedStrip {
        extent: u32,
        strip: u32,
        offset: usize,
        need: usize,
        got: usize,
    },
}

impl DecodeError {
    /// Byte offset the error refers to.
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::Short { .. } => 0,
            DecodeError::BadExtType { offset, .. }
            | DecodeError::TruncatedExtent { offset, .. }
            | DecodeError::TruncatedStrip { offset, .. } => offset,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Short { need, got } => {
                write!(f, "fmap header: need {need} bytes, got {got}")
            }
            DecodeError::BadExtType { ext_type, offset } => {
                write!(f, "ext_type {ext_type} at offset {offset} is neither SIMPLE (0) nor INTERLEAVE (1)")
            }
            DecodeError::TruncatedExtent {
                index,
                offset,
                need,
                got,
            } => {
                write!(
                    f,
                    "extent {index} at offset {offset}: need {need} bytes, got {got}"
                )
            }
            DecodeError::TruncatedStrip {
                extent,
                strip,
                offset,
                need,
                got,
            } => write!(
                f,
                "extent {extent} strip {strip} at offset {offset}: need {need} bytes, got {got}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One 24-byte record of the fmap body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A simple extent.
    Extent(FmapSimpleExt),
    /// The header of an interleaved extent.
    Interleave(FmapInterleaveExt),
    /// A strip of the preceding interleaved extent.
    Strip(FmapSimpleExt),
}

impl Record {
    fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Record::Extent(e) | Record::Strip(e) => e.write_to(out),
            Record::Interleave(h) => h.write_to(out),
        }
    }
}

/// A record and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub offset: usize,
    /// Index of the extent (for a strip: of its interleaved extent).
    pub extent: u32,
    /// Index of the strip within its extent.
    pub strip: Option<u32>,
    pub record: Record,
}

/// What [`walk`] found: everything up to the first structural error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub header: Option<FmapHeader>,
    pub items: Vec<Item>,
    /// Offset just past the last complete record (trailing bytes start here).
    pub end: usize,
    pub error: Option<DecodeError>,
}

/// Walks the records an fmap announces, stopping at the first structural
/// error. Never allocates by the announced counts, so hostile counts are
/// cheap.
pub fn walk(bytes: &[u8]) -> Layout {
    let mut layout = Layout {
        header: None,
        items: Vec::new(),
        end: 0,
        error: None,
    };
    let h = match FmapHeader::decode(bytes) {
        Ok(h) => h,
        Err(_) => {
            layout.error = Some(DecodeError::Short {
                need: HEADER_SIZE,
                got: bytes.len(),
            });
            return layout;
        }
    };
    layout.header = Some(h);
    layout.end = HEADER_SIZE;
    let remaining = |at: usize| bytes.len().saturating_sub(at);
    match h.ext_type {
        EXT_SIMPLE => {
            for index in 0..h.nextents {
                let at = layout.end;
                let Ok(e) = FmapSimpleExt::decode(&bytes[at..]) else {
                    layout.error = Some(DecodeError::TruncatedExtent {
                        index,
                        offset: at,
                        need: RECORD_SIZE,
                        got: remaining(at),
                    });
                    return layout;
                };
                layout.items.push(Item {
                    offset: at,
                    extent: index,
                    strip: None,
                    record: Record::Extent(e),
                });
                layout.end += RECORD_SIZE;
            }
        }
        EXT_INTERLEAVE => {
            for index in 0..h.nextents {
                let at = layout.end;
                let Ok(ih) = FmapInterleaveExt::decode(&bytes[at..]) else {
                    layout.error = Some(DecodeError::TruncatedExtent {
                        index,
                        offset: at,
                        need: RECORD_SIZE,
                        got: remaining(at),
                    });
                    return layout;
                };
                layout.items.push(Item {
                    offset: at,
                    extent: index,
                    strip: None,
                    record: Record::Interleave(ih),
                });
                layout.end += RECORD_SIZE;
                for strip in 0..ih.nstrips {
                    let at = layout.end;
                    let Ok(s) = FmapSimpleExt::decode(&bytes[at..]) else {
                        layout.error = Some(DecodeError::TruncatedStrip {
                            extent: index,
                            strip,
                            offset: at,
                            need: RECORD_SIZE,
                            got: remaining(at),
                        });
                        return layout;
                    };
                    layout.items.push(Item {
                        offset: at,
                        extent: index,
                        strip: Some(strip),
                        record: Record::Strip(s),
                    });
                    layout.end += RECORD_SIZE;
                }
            }
        }
        other => {
            layout.error = Some(DecodeError::BadExtType {
                ext_type: other,
                offset: 4,
            });
        }
    }
    layout
}

/// An fmap as header plus records, every field settable, for fault
/// injection: counts need not match the records, bytes can be appended,
/// patched or cut off. [`RawFmap::to_bytes`] applies, in order: header and
/// records, `trailing`, `patches` (the buffer grows with zeros if a patch
/// reaches past it), then `truncate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFmap {
    pub header: FmapHeader,
    pub records: Vec<Record>,
    pub trailing: Vec<u8>,
    pub patches: Vec<(usize, Vec<u8>)>,
    pub truncate: Option<usize>,
}

impl RawFmap {
    /// Just a header, no records.
    pub fn new(header: FmapHeader) -> Self {
        RawFmap {
            header,
            records: Vec::new(),
            trailing: Vec::new(),
            patches: Vec::new(),
            truncate: None,
        }
    }

    /// The faithful encoding of `fmap` for `profile` (a starting point for
    /// tampering). With an `fmap_size` header, it holds the full length.
    pub fn from_fmap(fmap: &Fmap, profile: &Profile) -> Self {
        let mut records = Vec::new();
        match &fmap.extents {
            Extents::Simple(v) => records.extend(v.iter().map(|e| Record::Extent(e.to_abi()))),
            Extents::Interleave(v) => {
                for ie in v {
                    records.push(Record::Interleave(ie.header()));
                    records.extend(ie.strips.iter().map(|s| Record::Strip(s.to_abi())));
                }
            }
        }
        let header = FmapHeader {
            file_type: fmap.file_type,
            reserved: fmap.reserved,
            fmap_version: fmap.version,
            ext_type: fmap.extents.ext_type(),
            nextents: fmap.nextents(),
            reserved0: fmap.reserved0,
            file_size: fmap.file_size,
            reserved1: fmap.reserved1,
        };
        let mut raw = RawFmap {
            records,
            ..RawFmap::new(header)
        };
        if profile.has_fmap_size() {
            raw.sync_fmap_size();
        }
        raw
    }

    /// Length of header, records and trailing bytes (before patches and
    /// truncation).
    pub fn body_len(&self) -> usize {
        HEADER_SIZE + self.records.len() * RECORD_SIZE + self.trailing.len()
    }

    /// Byte offset of record `i`.
    pub fn record_offset(i: usize) -> usize {
        HEADER_SIZE + i * RECORD_SIZE
    }

    /// The bytes as a server would send them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body_len());
        self.header.write_to(&mut out);
        for r in &self.records {
            r.write_to(&mut out);
        }
        out.extend_from_slice(&self.trailing);
        for (at, data) in &self.patches {
            let end = at + data.len();
            if out.len() < end {
                out.resize(end, 0);
            }
            out[*at..end].copy_from_slice(data);
        }
        if let Some(n) = self.truncate {
            out.truncate(n);
        }
        out
    }

    /// Sets the header word at offset 12 to [`RawFmap::body_len`].
    pub fn sync_fmap_size(&mut self) -> &mut Self {
        self.header.reserved0 = self.body_len() as u32;
        self
    }

    /// Overrides `nextents` regardless of the records present.
    pub fn set_nextents(&mut self, n: u32) -> &mut Self {
        self.header.nextents = n;
        self
    }

    /// Overrides `ext_type` regardless of the records present.
    pub fn set_ext_type(&mut self, t: u32) -> &mut Self {
        self.header.ext_type = t;
        self
    }

    /// Sets the header word at offset 12 (`fmap_size` or `reserved0`).
    pub fn set_fmap_size(&mut self, n: u32) -> &mut Self {
        self.header.reserved0 = n;
        self
    }

    pub fn set_file_size(&mut self, n: u64) -> &mut Self {
        self.header.file_size = n;
        self
    }

    /// Cuts the output to `len` bytes.
    pub fn truncate(&mut self, len: usize) -> &mut Self {
        self.truncate = Some(len);
        self
    }

    /// Appends bytes after the records.
    pub fn append(&mut self, bytes: &[u8]) -> &mut Self {
        self.trailing.extend_from_slice(bytes);
        self
    }

    /// Overwrites bytes at `offset` in the output.
    pub fn patch(&mut self, offset: usize, bytes: &[u8]) -> &mut Self {
        self.patches.push((offset, bytes.to_vec()));
        self
    }

    /// Appends a record without touching any count.
    pub fn push(&mut self, r: Record) -> &mut Self {
        self.records.push(r);
        self
    }

    /// The `i`-th simple extent record.
    pub fn extent_mut(&mut self, i: usize) -> Option<&mut FmapSimpleExt> {
        self.records
            .iter_mut()
            .filter_map(|r| match r {
                Record::Extent(e) => Some(e),
                _ => None,
            })
            .nth(i)
    }

    /// The header of the `i`-th interleaved extent (e.g. to set `nstrips`
    /// or `chunk_size`).
    pub fn interleave_mut(&mut self, i: usize) -> Option<&mut FmapInterleaveExt> {
        self.records
            .iter_mut()
            .filter_map(|r| match r {
                Record::Interleave(h) => Some(h),
                _ => None,
            })
            .nth(i)
    }

    /// Strip `strip` of the `extent`-th interleaved extent, counting the
    /// strip records that follow its header.
    pub fn strip_mut(&mut self, extent: usize, strip: usize) -> Option<&mut FmapSimpleExt> {
        let start = self
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Record::Interleave(_)))
            .nth(extent)?
            .0;
        self.records[start + 1..]
            .iter_mut()
            .take_while(|r| matches!(r, Record::Strip(_)))
            .nth(strip)
            .map(|r| match r {
                Record::Strip(s) => s,
                _ => unreachable!(),
            })
    }
}

#[cfg(test)]
mod segment_tests {
    use super::*;
    const M: u64 = 1 << 20;

    #[test]
    fn simple_and_interleaved_segments() {
        let f = Fmap::simple(
            5 * M,
            vec![
                SimpleExtent::new(6 * M, 2 * M),
                SimpleExtent::new(2 * M, 4 * M),
            ],
        );
        let s = f.segments(100);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[1].file_offset, s[1].len, s[1].dev_offset),
            (2 * M, 3 * M, 2 * M)
        );
        // Two strips, 2M chunks: chunk k goes to strip k % 2, row k / 2.
        let f = Fmap::interleaved(
            8 * M,
            vec![InterleavedExtent::new(
                (2 * M) as u32,
                8 * M,
                vec![SimpleExtent::new(0, 4 * M), SimpleExtent::new(8 * M, 4 * M)],
            )],
        );
        let s: Vec<(u64, u64)> = f
            .segments(100)
            .iter()
            .map(|s| (s.file_offset, s.dev_offset))
            .collect();
        assert_eq!(
            s,
            vec![(0, 0), (2 * M, 8 * M), (4 * M, 2 * M), (6 * M, 10 * M)]
        );
        // Chunk size 0 maps nothing (and does not divide by it).
        let mut z = f.clone();
        if let Extents::Interleave(v) = &mut z.extents {
            v[0].chunk_size = 0;
        }
        assert!(z.segments(100).is_empty());
        assert_eq!(f.segments(3).len(), 3);
        // An extent far longer than the file (from the wire) stops at
        // file_size at once, and a device offset near the top wraps.
        let long = Fmap::interleaved(
            4 * M,
            vec![InterleavedExtent::new(
                (2 * M) as u32,
                u64::MAX,
                vec![SimpleExtent::new(u64::MAX - M, 2 * M)],
            )],
        );
        let s = long.segments(usize::MAX);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].dev_offset, M - 1);
    }
}
