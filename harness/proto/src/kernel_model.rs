//! What a famfs kernel does with a GET_FMAP or GET_DAXDEV reply, as a pure
//! function of the profile and the bytes.
//!
//! The fmap rules follow the V10 table, checked in this order:
//!
//! 1. reply longer than the kernel's buffer: refused by /dev/fuse
//!    ([`KernelVerdict::ReplyRejected`]: write() EINVAL, open() EIO);
//! 2. payload under 32 bytes: EINVAL (`fmap_size` profiles: EIO, the size
//!    probe's own check);
//! 3. (`fmap_size` profiles) `fmap_size` beyond the buffer the kernel
//!    offered: EFBIG above the retry limit, else a retry with a buffer of
//!    exactly `fmap_size` ([`KernelVerdict::Retry`]); on the retry itself a
//!    size beyond that buffer is EINVAL (the fmap grew);
//! 4. `nextents` 0 or above the profile's maximum: ERANGE;
//! 5. `ext_type` not SIMPLE/INTERLEAVE, or INTERLEAVE where the profile has
//!    none: EINVAL;
//! 6. extent by extent, in wire order: the record must be inside the
//!    payload; an interleaved header needs `chunk_size` a multiple of the
//!    alignment, `nbytes` non-zero and `nstrips` in 1..=max, then each of its
//!    strips is checked like a simple extent; a simple extent or strip needs
//!    `devindex` below the profile's limit and `offset`, `len` aligned
//!    (all EINVAL);
//! 7. the sum of extent lengths (`nbytes` for interleaved extents, added
//!    with 64-bit wrap-around) at least `file_size`: EINVAL.
//!
//! Only the errno is observable from user space; the [`Rule`] is the
//! model's account of which check fired first.
//!
//! Not checked (accepted, and listed as [`Unchecked`] notes in the
//! summary): `fmap_version`, `file_type`, reserved fields, trailing bytes,
//! `file_size` of 2^63 or more, `offset + len` wrapping, overlapping
//! extents, `chunk_size` 0 (it is a multiple of anything), zero-length
//! extents, strips shorter in total than `nbytes`, and (`fmap_size`
//! profiles) an `fmap_size` that differs from the payload without exceeding
//! it. Extents past the end of the device are not checked either but need
//! the device size, which this crate does not know.

use crate::abi::{DaxdevOut, FmapHeader, FmapInterleaveExt, FmapSimpleExt, Wire};
use crate::errno::{EFBIG, EINVAL, EIO, ERANGE};
use crate::fmap::{EXT_INTERLEAVE, EXT_SIMPLE, FMAP_VERSION, HEADER_SIZE, RECORD_SIZE};
use crate::profile::Profile;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

/// A validation rule of the kernel's fmap parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Payload shorter than the 32-byte header.
    ShortHeader,
    /// (`fmap_size` profiles) a reply shorter than the header: the size
    /// probe cannot read `fmap_size`, EIO before any parsing.
    ShortReply,
    /// `fmap_size` above the profile's retry limit (EFBIG).
    FmapTooBig,
    /// (`fmap_size` profiles) the retry's reply names a bigger `fmap_size`
    /// than the buffer the first reply asked for: EINVAL, no third request.
    FmapGrew,
    /// `nextents` is 0 or above `max_extents` (ERANGE).
    ExtentCount,
    /// `ext_type` is neither SIMPLE nor INTERLEAVE.
    ExtType,
    /// INTERLEAVE under a profile without interleaving.
    InterleaveUnsupported,
    /// An extent, interleaved header or strip runs past the payload.
    PastPayload,
    /// `chunk_size` not a multiple of the alignment.
    ChunkSize,
    /// Interleaved extent with `nbytes` 0.
    ZeroNbytes,
    /// `nstrips` 0 or above `max_strips`.
    StripCount,
    /// `devindex` at or above the profile's limit. (For values of 32 or
    /// more the V10 kernel shifts by the index before this check: weak
    /// spot 3.)
    DevIndex,
    /// `offset` not aligned.
    MisalignedOffset,
    /// `len` not aligned.
    MisalignedLen,
    /// Extent lengths add up to less than `file_size`.
    ShortOfFileSize,
}

impl Rule {
    /// Every rule, in the order the kernel checks them.
    pub const ALL: [Rule; 15] = [
        Rule::ShortHeader,
        Rule::ShortReply,
        Rule::FmapTooBig,
        Rule::FmapGrew,
        Rule::ExtentCount,
        Rule::ExtType,
        Rule::InterleaveUnsupported,
        Rule::PastPayload,
        Rule::ChunkSize,
        Rule::ZeroNbytes,
        Rule::StripCount,
        Rule::DevIndex,
        Rule::MisalignedOffset,
        Rule::MisalignedLen,
        Rule::ShortOfFileSize,
    ];

    /// The errno open() sees when this rule fires.
    pub fn errno(self) -> i32 {
        match self {
            Rule::ExtentCount => ERANGE,
            Rule::FmapTooBig => EFBIG,
            Rule::ShortReply => EIO,
            _ => EINVAL,
        }
    }

    /// Stable kebab-case name (for reports and scenario files).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ShortHeader => "short-header",
            Rule::ShortReply => "short-reply",
            Rule::FmapTooBig => "fmap-too-big",
            Rule::FmapGrew => "fmap-grew",
            Rule::ExtentCount => "extent-count",
            Rule::ExtType => "ext-type",
            Rule::InterleaveUnsupported => "interleave-unsupported",
            Rule::PastPayload => "past-payload",
            Rule::ChunkSize => "chunk-size",
            Rule::ZeroNbytes => "zero-nbytes",
            Rule::StripCount => "strip-count",
            Rule::DevIndex => "devindex",
            Rule::MisalignedOffset => "misaligned-offset",
            Rule::MisalignedLen => "misaligned-len",
            Rule::ShortOfFileSize => "short-of-file-size",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An extent, or a strip of an interleaved extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Place {
    pub extent: u32,
    pub strip: Option<u32>,
}

impl Place {
    fn extent(extent: u32) -> Self {
        Place {
            extent,
            strip: None,
        }
    }
    fn strip(extent: u32, strip: u32) -> Self {
        Place {
            extent,
            strip: Some(strip),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.strip {
            None => write!(f, "extent {}", self.extent),
            Some(s) => write!(f, "extent {} strip {}", self.extent, s),
        }
    }
}

/// Why the kernel refuses an fmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Positive errno that open() returns.
    pub errno: i32,
    pub rule: Rule,
    /// Byte offset of the offending field (for `PastPayload`: of the
    /// record that does not fit).
    pub offset: usize,
    /// The extent or strip concerned, if any.
    pub place: Option<Place>,
    /// The offending value (for `PastPayload` and `ShortHeader`: the
    /// payload length; for `ShortOfFileSize`: the sum of lengths).
    pub value: u64,
}

/// Something the kernel accepted without checking; each one is a
/// condition a fault-injecting case may want to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unchecked {
    /// `fmap_version` other than 1.
    FmapVersion(u16),
    /// `file_type` other than REG, SUPERBLOCK, LOG.
    FileType(u8),
    /// A non-zero reserved field at `offset`.
    Reserved { offset: usize, value: u64 },
    /// Bytes after the last record.
    TrailingBytes { offset: usize, count: usize },
    /// `fmap_size` that differs from the payload length (but does not
    /// exceed it, which would have caused a retry).
    FmapSizeMismatch { fmap_size: u32, len: usize },
    /// `file_size` of 2^63 or more (weak spot 7).
    HugeFileSize(u64),
    /// `offset + len` wraps around 2^64 (weak spot 7).
    Overflow { place: Place, offset: u64, len: u64 },
    /// Two ranges on one device overlap (weak spot 9).
    Overlap {
        devindex: u32,
        first: Place,
        second: Place,
    },
    /// Interleaved extent with `chunk_size` 0 (weak spot 1).
    ChunkSizeZero { extent: u32 },
    /// Extent or strip of length 0.
    ZeroLength { place: Place },
    /// An interleaved extent whose strips hold fewer bytes than `nbytes`,
    /// so some file offsets map past the end of a strip (weak spot 7).
    StripsShort {
        extent: u32,
        nbytes: u64,
        strips_total: u64,
    },
    /// Interleaved extents whose `nbytes` add up to less than the file
    /// size while their strips cover it: offsets past `nbytes` map nothing.
    NbytesShort { nbytes: u64, file_size: u64 },
    /// An interleaved extent other than the last whose `nbytes` is not a
    /// multiple of the alignment: the next one starts mid-page.
    NbytesUnaligned { extent: u32, nbytes: u64 },
}

impl Unchecked {
    /// Every [`Unchecked::kind`].
    pub const KINDS: [&'static str; 13] = [
        "fmap-version",
        "file-type",
        "reserved",
        "trailing-bytes",
        "fmap-size-mismatch",
        "huge-file-size",
        "offset-wrap",
        "overlap",
        "chunk-size-zero",
        "zero-length",
        "strips-short",
        "nbytes-short",
        "nbytes-unaligned",
    ];

    /// Stable kebab-case name of the condition, without its values: what
    /// findings about it are grouped by.
    pub fn kind(&self) -> &'static str {
        match self {
            Unchecked::FmapVersion(_) => "fmap-version",
            Unchecked::FileType(_) => "file-type",
            Unchecked::Reserved { .. } => "reserved",
            Unchecked::TrailingBytes { .. } => "trailing-bytes",
            Unchecked::FmapSizeMismatch { .. } => "fmap-size-mismatch",
            Unchecked::HugeFileSize(_) => "huge-file-size",
            Unchecked::Overflow { .. } => "offset-wrap",
            Unchecked::Overlap { .. } => "overlap",
            Unchecked::ChunkSizeZero { .. } => "chunk-size-zero",
            Unchecked::ZeroLength { .. } => "zero-length",
            Unchecked::StripsShort { .. } => "strips-short",
            Unchecked::NbytesShort { .. } => "nbytes-short",
            Unchecked::NbytesUnaligned { .. } => "nbytes-unaligned",
        }
    }
}

impl fmt::Display for Unchecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unchecked::FmapVersion(v) => write!(f, "fmap_version {v} (not 1)"),
            Unchecked::FileType(t) => write!(f, "file_type {t} (undefined)"),
            Unchecked::Reserved { offset, value } => {
                write!(f, "reserved field at offset {offset} is {value:#x}")
            }
            Unchecked::TrailingBytes { offset, count } => {
                write!(f, "{count} trailing bytes at offset {offset}")
            }
            Unchecked::FmapSizeMismatch { fmap_size, len } => {
                write!(f, "fmap_size {fmap_size} but payload is {len} bytes")
            }
            Unchecked::HugeFileSize(s) => write!(f, "file_size {s:#x} is 2^63 or more"),
            Unchecked::Overflow { place, offset, len } => {
                write!(f, "{place}: offset {offset:#x} + len {len:#x} wraps")
            }
            Unchecked::Overlap {
                devindex,
                first,
                second,
            } => {
                write!(f, "{first} and {second} overlap on device {devindex}")
            }
            Unchecked::ChunkSizeZero { extent } => write!(f, "extent {extent}: chunk_size 0"),
            Unchecked::ZeroLength { place } => write!(f, "{place}: length 0"),
            Unchecked::NbytesUnaligned { extent, nbytes } => write!(
                f,
                "extent {extent}: nbytes {nbytes:#x} is not a multiple of the alignment and an extent follows"
            ),
            Unchecked::NbytesShort { nbytes, file_size } => write!(
                f,
                "interleaved extents map {nbytes:#x} bytes of a {file_size:#x}-byte file"
            ),
            Unchecked::StripsShort {
                extent,
                nbytes,
                strips_total,
            } => write!(
                f,
                "extent {extent}: strips hold {strips_total:#x} bytes, nbytes is {nbytes:#x}"
            ),
        }
    }
}

/// What an accepted fmap gives the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FmapSummary {
    pub ext_type: u32,
    pub nextents: u32,
    /// Becomes the inode's i_size.
    pub file_size: u64,
    /// Sum of extent lengths (wrapping).
    pub total_len: u64,
    /// Device indices referenced, ascending: the kernel sends GET_DAXDEV
    /// for each one it does not know yet.
    pub devices: Vec<u32>,
    /// Bytes covered by header and records.
    pub consumed: usize,
    /// Accepted oddities, in the order they were found.
    pub unchecked: Vec<Unchecked>,
}

/// The kernel's reaction to one GET_FMAP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum KernelVerdict {
    /// The fmap is installed; open() succeeds.
    Accept(FmapSummary),
    /// The fmap is refused; open() fails with `errno`.
    Reject(Rejection),
    /// The reply does not fit the kernel's buffer: the server's write()
    /// fails with EINVAL and the request completes with EIO (open() EIO).
    ReplyRejected { len: usize, limit: usize },
    /// `fmap_size` exceeds the reply: the kernel asks again with a buffer
    /// of `fmap_size` bytes (see [`kernel_verdict_retry`]).
    Retry { fmap_size: u32 },
}

impl KernelVerdict {
    pub fn is_accept(&self) -> bool {
        matches!(self, KernelVerdict::Accept(_))
    }

    /// Errno open() returns, or `None` if it succeeds or the exchange is
    /// not over (retry).
    pub fn open_errno(&self) -> Option<i32> {
        match self {
            KernelVerdict::Accept(_) | KernelVerdict::Retry { .. } => None,
            KernelVerdict::Reject(r) => Some(r.errno),
            KernelVerdict::ReplyRejected { .. } => Some(EIO),
        }
    }

    /// Errno of the server's write() of the reply, if it fails.
    pub fn write_errno(&self) -> Option<i32> {
        match self {
            KernelVerdict::ReplyRejected { .. } => Some(EINVAL),
            _ => None,
        }
    }

    /// The rule that fired, for fmap rejections.
    pub fn rule(&self) -> Option<Rule> {
        self.rejection().map(|r| r.rule)
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            KernelVerdict::Reject(r) => Some(r),
            _ => None,
        }
    }

    pub fn summary(&self) -> Option<&FmapSummary> {
        match self {
            KernelVerdict::Accept(s) => Some(s),
            _ => None,
        }
    }

    /// Short name of the outcome: `accept`, `retry`, `reply-too-long`, or
    /// the rule name.
    pub fn outcome_name(&self) -> &'static str {
        match self {
            KernelVerdict::Accept(_) => "accept",
            KernelVerdict::Retry { .. } => "retry",
            KernelVerdict::ReplyRejected { .. } => "reply-too-long",
            KernelVerdict::Reject(r) => r.rule.as_str(),
        }
    }
}

fn errno_label(e: i32) -> String {
    format!("{} ({e})", crate::errno::errno_name(e).unwrap_or("?"))
}

impl fmt::Display for KernelVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelVerdict::Accept(s) => write!(
                f,
                "ACCEPT: {} extent(s), file_size {:#x}, total length {:#x}, devices {:?}",
                s.nextents, s.file_size, s.total_len, s.devices
            ),
            KernelVerdict::Reject(r) => {
                write!(f, "REJECT {} by rule {}", errno_label(r.errno), r.rule)?;
                if let Some(p) = r.place {
                    write!(f, " at {p}")?;
                }
                if r.value < 0x10000 {
                    write!(f, " (offset {}, value {})", r.offset, r.value)
                } else {
                    write!(f, " (offset {}, value {:#x})", r.offset, r.value)
                }
            }
            KernelVerdict::ReplyRejected { len, limit } => write!(
                f,
                "REPLY REJECTED: {len} bytes > {limit}: write() {}, open() {}",
                errno_label(EINVAL),
                errno_label(EIO)
            ),
            KernelVerdict::Retry { fmap_size } => {
                write!(f, "RETRY: kernel asks again with a {fmap_size}-byte buffer")
            }
        }
    }
}

/// The kernel's reaction to the first GET_FMAP reply payload `bytes`.
pub fn kernel_verdict(profile: &Profile, bytes: &[u8]) -> KernelVerdict {
    judge_reply(profile, bytes, profile.max_reply as usize, true)
}

/// The kernel's reaction to the reply of its single retry, made with a
/// buffer of `buffer_size` bytes (the first reply's `fmap_size`). There is
/// no further retry: the payload is parsed as it is.
pub fn kernel_verdict_retry(profile: &Profile, buffer_size: u32, bytes: &[u8]) -> KernelVerdict {
    judge_reply(profile, bytes, buffer_size as usize, false)
}

/// A whole GET_FMAP exchange: the first reply and, if the kernel retries,
/// the second. Stays `Retry` when a retry is due but `second` is `None`.
pub fn judge_exchange(profile: &Profile, first: &[u8], second: Option<&[u8]>) -> KernelVerdict {
    match (kernel_verdict(profile, first), second) {
        (KernelVerdict::Retry { fmap_size }, Some(b)) => {
            kernel_verdict_retry(profile, fmap_size, b)
        }
        (v, _) => v,
    }
}

fn reject(rule: Rule, offset: usize, place: Option<Place>, value: u64) -> KernelVerdict {
    KernelVerdict::Reject(Rejection {
        errno: rule.errno(),
        rule,
        offset,
        place,
        value,
    })
}

/// A device range seen while checking, for the overlap scan.
struct Range {
    devindex: u32,
    start: u64,
    end: u64,
    place: Place,
}

fn judge_reply(p: &Profile, b: &[u8], limit: usize, may_retry: bool) -> KernelVerdict {
    if b.len() > limit {
        return KernelVerdict::ReplyRejected {
            len: b.len(),
            limit,
        };
    }
    let h = match judge_header(p, b, limit, may_retry) {
        Ok(h) => h,
        Err(v) => return v,
    };
    let mut walk = Walk {
        p,
        b,
        at: HEADER_SIZE,
        sum: 0,
        file_size: h.file_size,
        notes: Vec::new(),
        ranges: Vec::new(),
    };
    let walked = if h.ext_type == EXT_SIMPLE {
        walk.simple_extents(h.nextents)
    } else {
        walk.interleaved_extents(h.nextents)
    };
    if let Err(v) = walked {
        return v;
    }
    if walk.sum < h.file_size {
        return reject(Rule::ShortOfFileSize, 16, None, walk.sum);
    }
    accept(p, &h, b.len(), walk)
}

/// Rules 2 to 5: the header's own checks, in the kernel's order. The
/// header when it passes, else the verdict (a rejection or a retry).
fn judge_header(
    p: &Profile,
    b: &[u8],
    limit: usize,
    may_retry: bool,
) -> Result<FmapHeader, KernelVerdict> {
    let short = if p.has_fmap_size() {
        Rule::ShortReply
    } else {
        Rule::ShortHeader
    };
    let Ok(h) = FmapHeader::decode(b) else {
        return Err(reject(short, 0, None, b.len() as u64));
    };
    // The size probe compares `fmap_size` with the buffer it offered, not
    // with what came back: a bigger size asks again (once), whatever the
    // reply held.
    if let (true, Some(max)) = (p.has_fmap_size(), p.retry_limit) {
        let size = h.reserved0;
        if size as usize > limit {
            if size > max {
                return Err(reject(Rule::FmapTooBig, 12, None, u64::from(size)));
            }
            if !may_retry {
                return Err(reject(Rule::FmapGrew, 12, None, u64::from(size)));
            }
            return Err(KernelVerdict::Retry { fmap_size: size });
        }
    }
    if h.nextents == 0 || h.nextents > p.max_extents {
        return Err(reject(Rule::ExtentCount, 8, None, u64::from(h.nextents)));
    }
    match h.ext_type {
        EXT_SIMPLE => {}
        EXT_INTERLEAVE if p.interleave => {}
        EXT_INTERLEAVE => {
            return Err(reject(
                Rule::InterleaveUnsupported,
                4,
                None,
                u64::from(h.ext_type),
            ))
        }
        t => return Err(reject(Rule::ExtType, 4, None, u64::from(t))),
    }
    Ok(h)
}

/// Rule 6, the walk over the extents in wire order: where it is, the sum of
/// extent lengths so far, the notes taken and the device ranges seen.
struct Walk<'a> {
    p: &'a Profile,
    b: &'a [u8],
    at: usize,
    sum: u64,
    /// The header's `file_size`.
    file_size: u64,
    notes: Vec<Unchecked>,
    ranges: Vec<Range>,
}

impl Walk<'_> {
    fn past(&self, place: Place) -> KernelVerdict {
        reject(Rule::PastPayload, self.at, Some(place), self.b.len() as u64)
    }

    /// The next simple extent or strip, decoded and checked; recorded for
    /// the later notes.
    fn range(&mut self, place: Place) -> Result<FmapSimpleExt, KernelVerdict> {
        let (p, at) = (self.p, self.at);
        let Ok(e) = FmapSimpleExt::decode(&self.b[at..]) else {
            return Err(self.past(place));
        };
        if e.devindex >= p.devindex_limit {
            return Err(reject(
                Rule::DevIndex,
                at,
                Some(place),
                u64::from(e.devindex),
            ));
        }
        if e.offset % p.alignment != 0 {
            return Err(reject(
                Rule::MisalignedOffset,
                at + 8,
                Some(place),
                e.offset,
            ));
        }
        if e.len % p.alignment != 0 {
            return Err(reject(Rule::MisalignedLen, at + 16, Some(place), e.len));
        }
        if e.reserved != 0 {
            self.notes.push(Unchecked::Reserved {
                offset: at + 4,
                value: u64::from(e.reserved),
            });
        }
        if e.len == 0 {
            self.notes.push(Unchecked::ZeroLength { place });
        }
        match e.offset.checked_add(e.len) {
            None => self.notes.push(Unchecked::Overflow {
                place,
                offset: e.offset,
                len: e.len,
            }),
            Some(end) => self.ranges.push(Range {
                devindex: e.devindex,
                start: e.offset,
                end,
                place,
            }),
        }
        self.at += RECORD_SIZE;
        Ok(e)
    }

    fn simple_extents(&mut self, nextents: u32) -> Result<(), KernelVerdict> {
        for i in 0..nextents {
            let e = self.range(Place::extent(i))?;
            self.sum = self.sum.wrapping_add(e.len);
        }
        Ok(())
    }

    /// V10 checks the file size against the sum of the strips' lengths,
    /// not of `nbytes` (famfs_fuse_meta_alloc); `nbytes` decides which
    /// file offsets an interleaved extent maps.
    fn interleaved_extents(&mut self, nextents: u32) -> Result<(), KernelVerdict> {
        let mut start = 0u64;
        for i in 0..nextents {
            let ih = self.interleave_header(i)?;
            let mut strips_total = 0u64;
            for s in 0..ih.nstrips {
                let e = self.range(Place::strip(i, s))?;
                strips_total = strips_total.saturating_add(e.len);
                self.sum = self.sum.wrapping_add(e.len);
            }
            // Offsets past the strips matter only inside the file.
            let mapped = start.saturating_add(strips_total);
            if strips_total < ih.nbytes && mapped < self.file_size {
                self.notes.push(Unchecked::StripsShort {
                    extent: i,
                    nbytes: ih.nbytes,
                    strips_total,
                });
            }
            // A following extent starts mid-page: no DAX mapping can put
            // its file pages where the fmap says.
            if i + 1 < nextents && ih.nbytes % self.p.alignment != 0 {
                self.notes.push(Unchecked::NbytesUnaligned {
                    extent: i,
                    nbytes: ih.nbytes,
                });
            }
            start = start.saturating_add(ih.nbytes);
        }
        if start < self.file_size && self.sum >= self.file_size {
            self.notes.push(Unchecked::NbytesShort {
                nbytes: start,
                file_size: self.file_size,
            });
        }
        Ok(())
    }

    /// Interleaved extent `i`'s header, decoded and checked.
    fn interleave_header(&mut self, i: u32) -> Result<FmapInterleaveExt, KernelVerdict> {
        let (p, at) = (self.p, self.at);
        let Ok(ih) = FmapInterleaveExt::decode(&self.b[at..]) else {
            return Err(self.past(Place::extent(i)));
        };
        let place = Some(Place::extent(i));
        if u64::from(ih.chunk_size) % p.alignment != 0 {
            return Err(reject(
                Rule::ChunkSize,
                at + 4,
                place,
                u64::from(ih.chunk_size),
            ));
        }
        if ih.nbytes == 0 {
            return Err(reject(Rule::ZeroNbytes, at + 8, place, 0));
        }
        if ih.nstrips == 0 || ih.nstrips > p.max_strips {
            return Err(reject(Rule::StripCount, at, place, u64::from(ih.nstrips)));
        }
        if ih.chunk_size == 0 {
            self.notes.push(Unchecked::ChunkSizeZero { extent: i });
        }
        if ih.reserved != 0 {
            self.notes.push(Unchecked::Reserved {
                offset: at + 16,
                value: ih.reserved,
            });
        }
        self.at += RECORD_SIZE;
        Ok(ih)
    }
}

/// An accepted reply's summary, with everything accepted without a check.
fn accept(p: &Profile, h: &FmapHeader, len: usize, mut walk: Walk) -> KernelVerdict {
    let mut head = unchecked_header(p, h, len);
    head.append(&mut walk.notes);
    head.extend(overlaps(&mut walk.ranges));
    if walk.at < len {
        head.push(Unchecked::TrailingBytes {
            offset: walk.at,
            count: len - walk.at,
        });
    }
    let devices: BTreeSet<u32> = walk.ranges.iter().map(|r| r.devindex).collect();
    KernelVerdict::Accept(FmapSummary {
        ext_type: h.ext_type,
        nextents: h.nextents,
        file_size: h.file_size,
        total_len: walk.sum,
        devices: devices.into_iter().collect(),
        consumed: walk.at,
        unchecked: head,
    })
}

/// The header fields the kernel accepts without a check, when they are
/// off (`len`: the payload's length).
fn unchecked_header(p: &Profile, h: &FmapHeader, len: usize) -> Vec<Unchecked> {
    let mut head = Vec::new();
    if h.fmap_version != FMAP_VERSION {
        head.push(Unchecked::FmapVersion(h.fmap_version));
    }
    if crate::fmap::file_type_name(h.file_type).is_none() {
        head.push(Unchecked::FileType(h.file_type));
    }
    if h.reserved != 0 {
        head.push(Unchecked::Reserved {
            offset: 1,
            value: u64::from(h.reserved),
        });
    }
    if p.has_fmap_size() {
        if h.reserved0 as usize != len {
            head.push(Unchecked::FmapSizeMismatch {
                fmap_size: h.reserved0,
                len,
            });
        }
    } else if h.reserved0 != 0 {
        head.push(Unchecked::Reserved {
            offset: 12,
            value: u64::from(h.reserved0),
        });
    }
    if h.reserved1 != 0 {
        head.push(Unchecked::Reserved {
            offset: 24,
            value: h.reserved1,
        });
    }
    if h.file_size >= 1 << 63 {
        head.push(Unchecked::HugeFileSize(h.file_size));
    }
    head
}

/// Overlapping pairs among non-empty ranges: each range is reported once,
/// against the earlier range reaching furthest on the same device.
fn overlaps(ranges: &mut [Range]) -> Vec<Unchecked> {
    ranges.sort_by_key(|r| (r.devindex, r.start, r.place));
    let mut out = Vec::new();
    let mut reach: Option<(u32, u64, Place)> = None;
    for r in ranges.iter().filter(|r| r.end > r.start) {
        match reach {
            Some((dev, end, first)) if dev == r.devindex && r.start < end => {
                out.push(Unchecked::Overlap {
                    devindex: dev,
                    first,
                    second: r.place,
                });
                if r.end > end {
                    reach = Some((dev, r.end, r.place));
                }
            }
            _ => reach = Some((r.devindex, r.end, r.place)),
        }
    }
    out
}

/// The kernel's reaction to a GET_DAXDEV reply. Failures here never fail
/// the open() that caused the request; they show up at I/O time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DaxdevVerdict {
    /// A NUL-terminated name the kernel goes on to resolve as a path (with
    /// further errors that depend on the machine).
    Path(Vec<u8>),
    /// Empty name: EINVAL, the slot stays unknown and is asked again.
    EmptyName,
    /// No NUL in the 256 name bytes: the V10 kernel reads past the reply
    /// (weak spot 2); the outcome is undefined.
    Unterminated,
    /// Wrong reply length: write() EINVAL, the request completes with EIO.
    ReplyRejected { len: usize, expected: usize },
}

impl DaxdevVerdict {
    /// Errno the kernel's device lookup ends with, where the model knows it.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DaxdevVerdict::EmptyName => Some(EINVAL),
            DaxdevVerdict::ReplyRejected { .. } => Some(EIO),
            DaxdevVerdict::Path(_) | DaxdevVerdict::Unterminated => None,
        }
    }
}

/// Judges a GET_DAXDEV reply payload.
pub fn daxdev_verdict(profile: &Profile, bytes: &[u8]) -> DaxdevVerdict {
    let expected = profile.daxdev_reply_size as usize;
    if bytes.len() != expected {
        return DaxdevVerdict::ReplyRejected {
            len: bytes.len(),
            expected,
        };
    }
    let Ok(d) = DaxdevOut::decode(bytes) else {
        // A custom profile may expect fewer bytes than the struct holds.
        return DaxdevVerdict::ReplyRejected {
            len: bytes.len(),
            expected: DaxdevOut::SIZE,
        };
    };
    if !d.name_terminated() {
        DaxdevVerdict::Unterminated
    } else if d.name[0] == 0 {
        DaxdevVerdict::EmptyName
    } else {
        DaxdevVerdict::Path(d.name_bytes().to_vec())
    }
}
