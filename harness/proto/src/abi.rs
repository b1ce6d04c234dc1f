//! FUSE and famfs message layouts (x86-64, little-endian) with explicit byte
//! encoding and decoding.
//!
//! Every struct here is `#[repr(C)]` so its Rust size can be checked against
//! the wire size at compile time, but no struct is ever transmuted: each field
//! is written and read as little-endian bytes, in declaration order. The
//! layouts follow FUSE 7.46 (Linux 7.3) plus the famfs additions.
//!
//! Numbers that depend on the famfs kernel version (capability bit, GET_FMAP
//! and GET_DAXDEV opcodes, limits) are not here: they live in
//! [`crate::profile::Profile`].

use crate::profile::Profile;
use std::fmt;

/// FUSE major version a server answers with.
pub const KERNEL_VERSION: u32 = 7;
/// FUSE minor version of the headers these layouts come from (Linux 7.3).
pub const KERNEL_MINOR_VERSION: u32 = 46;
/// Node id of the mount's root directory.
pub const ROOT_ID: u64 = 1;
/// Smallest read buffer the kernel accepts on /dev/fuse.
pub const MIN_READ_BUFFER: usize = 8192;

/// Error from decoding a fixed-size message or a record stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbiError {
    /// `what` needs `need` bytes but only `got` were available.
    Short {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// The request header's `len` does not match the bytes read.
    LenMismatch { declared: u32, got: usize },
    /// A directory record at `offset` declares a name running past the buffer.
    DirentName {
        offset: usize,
        namelen: u32,
        available: usize,
    },
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiError::Short { what, need, got } => write!(
                f,
                "{what}: need {need} bytes, got {got} (short by {})",
                need - got
            ),
            AbiError::LenMismatch { declared, got } => {
                write!(
                    f,
                    "fuse_in_header.len is {declared} but {got} bytes were read"
                )
            }
            AbiError::DirentName {
                offset,
                namelen,
                available,
            } => write!(
                f,
                "dirent at offset {offset}: namelen {namelen} but only {available} bytes follow"
            ),
        }
    }
}

impl std::error::Error for AbiError {}

/// A fixed-size wire message.
pub trait Wire: Sized + Copy {
    /// The C name of the struct, used in error messages.
    const NAME: &'static str;
    /// Encoded size in bytes (equal to the `#[repr(C)]` size).
    const SIZE: usize;
    /// Appends the little-endian encoding to `out`.
    fn write_to(&self, out: &mut Vec<u8>);
    /// Decodes from the first `SIZE` bytes of `bytes`; extra bytes are ignored.
    fn decode(bytes: &[u8]) -> Result<Self, AbiError>;

    /// Encodes into a new buffer of exactly `SIZE` bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::SIZE);
        self.write_to(&mut v);
        v
    }

    /// Decodes a prefix and returns the rest (for payloads that carry a
    /// struct followed by names or data).
    fn split(bytes: &[u8]) -> Result<(Self, &[u8]), AbiError> {
        let v = Self::decode(bytes)?;
        Ok((v, &bytes[Self::SIZE..]))
    }
}

/// Little-endian field codec; private so every layout goes through the
/// `wire_struct!` macro and its size checks.
trait LeField: Sized {
    const LEN: usize;
    fn put(&self, out: &mut Vec<u8>);
    /// `b` holds at least `LEN` bytes.
    fn get(b: &[u8]) -> Self;
}

macro_rules! le_prim {
    ($($t:ty),*) => {$(
        impl LeField for $t {
            const LEN: usize = core::mem::size_of::<$t>();
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; core::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::LEN]);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
le_prim!(u8, u16, u32, u64, i32, i64);

impl<T: LeField + Copy, const N: usize> LeField for [T; N] {
    const LEN: usize = T::LEN * N;
    fn put(&self, out: &mut Vec<u8>) {
        for x in self {
            x.put(out);
        }
    }
    fn get(b: &[u8]) -> Self {
        core::array::from_fn(|i| T::get(&b[i * T::LEN..]))
    }
}

/// Declares a `#[repr(C)]` wire struct with its codec. Two compile-time
/// checks: the Rust size equals the documented wire size, and the fields add
/// up to it (so there is no hidden padding the codec would skip).
macro_rules! wire_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident ($cname:literal, $size:literal) {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name { $( $(#[$fm])* pub $f: $t ),* }

        const _: () = assert!(core::mem::size_of::<$name>() == $size);
        const _: () = assert!(0 $(+ <$t as LeField>::LEN)* == $size);

        impl LeField for $name {
            const LEN: usize = $size;
            fn put(&self, out: &mut Vec<u8>) {
                $( self.$f.put(out); )*
            }
            #[allow(unused_assignments)]
            fn get(b: &[u8]) -> Self {
                let mut at = 0usize;
                $(
                    let $f = <$t as LeField>::get(&b[at..]);
                    at += <$t as LeField>::LEN;
                )*
                $name { $($f),* }
            }
        }

        impl Wire for $name {
            const NAME: &'static str = $cname;
            const SIZE: usize = $size;
            fn write_to(&self, out: &mut Vec<u8>) {
                self.put(out);
            }
            fn decode(bytes: &[u8]) -> Result<Self, AbiError> {
                if bytes.len() < $size {
                    return Err(AbiError::Short { what: $cname, need: $size, got: bytes.len() });
                }
                Ok(<$name as LeField>::get(bytes))
            }
        }

        impl Default for $name {
            /// All fields zero.
            fn default() -> Self {
                <$name as LeField>::get(&[0u8; $size])
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

wire_struct! {
    /// Header of every request read from /dev/fuse.
    pub struct InHeader("fuse_in_header", 40) {
        pub len: u32,
        pub opcode: u32,
        pub unique: u64,
        pub nodeid: u64,
        pub uid: u32,
        pub gid: u32,
        pub pid: u32,
        /// Length of request extensions, in 8-byte units.
        pub total_extlen: u16,
        pub padding: u16,
    }
}

wire_struct! {
    /// Header of every reply and notification written to /dev/fuse.
    pub struct OutHeader("fuse_out_header", 16) {
        pub len: u32,
        /// 0, a negated errno (reply) or a notify code (notification).
        pub error: i32,
        pub unique: u64,
    }
}

// ---------------------------------------------------------------------------
// INIT
// ---------------------------------------------------------------------------

wire_struct! {
    /// INIT request payload (64 bytes once the kernel sets `INIT_EXT`).
    pub struct InitIn("fuse_init_in", 64) {
        pub major: u32,
        pub minor: u32,
        pub max_readahead: u32,
        pub flags: u32,
        pub flags2: u32,
        pub unused: [u32; 11],
    }
}

wire_struct! {
    /// INIT reply payload; the famfs capability bit travels in `flags2`
    /// (offset 32) whenever it is above bit 31.
    pub struct InitOut("fuse_init_out", 64) {
        pub major: u32,
        pub minor: u32,
        pub max_readahead: u32,
        pub flags: u32,
        pub max_background: u16,
        pub congestion_threshold: u16,
        pub max_write: u32,
        pub time_gran: u32,
        pub max_pages: u16,
        pub map_alignment: u16,
        pub flags2: u32,
        pub max_stack_depth: u32,
        pub request_timeout: u16,
        pub unused: [u16; 11],
    }
}

/// Size of the INIT payload sent by kernels older than `INIT_EXT`.
pub const INIT_IN_COMPAT_SIZE: usize = 16;

impl InitIn {
    /// The 64-bit capability set (`flags | flags2 << 32`).
    pub fn flags64(&self) -> u64 {
        combine_flags(self.flags, self.flags2)
    }

    /// Decodes an INIT payload that may be the short pre-`INIT_EXT` form;
    /// missing fields read as zero.
    pub fn decode_compat(bytes: &[u8]) -> Result<Self, AbiError> {
        if bytes.len() < INIT_IN_COMPAT_SIZE {
            return Err(AbiError::Short {
                what: Self::NAME,
                need: INIT_IN_COMPAT_SIZE,
                got: bytes.len(),
            });
        }
        let mut buf = [0u8; 64];
        let n = bytes.len().min(64);
        buf[..n].copy_from_slice(&bytes[..n]);
        Self::decode(&buf)
    }
}

impl InitOut {
    /// The 64-bit capability set (`flags | flags2 << 32`).
    pub fn flags64(&self) -> u64 {
        combine_flags(self.flags, self.flags2)
    }

    /// Stores a 64-bit capability set into `flags` and `flags2`.
    pub fn set_flags64(&mut self, flags: u64) {
        let (lo, hi) = split_flags(flags);
        self.flags = lo;
        self.flags2 = hi;
    }
}

/// Joins the two 32-bit INIT flag words into one 64-bit set.
pub fn combine_flags(flags: u32, flags2: u32) -> u64 {
    u64::from(flags) | (u64::from(flags2) << 32)
}

/// Splits a 64-bit INIT flag set into (`flags`, `flags2`).
pub fn split_flags(flags: u64) -> (u32, u32) {
    (flags as u32, (flags >> 32) as u32)
}

/// INIT capability bits as positions in the 64-bit set. The famfs bit is not
/// here: it is [`Profile::flag_mask`].
pub mod init_flags {
    pub const ASYNC_READ: u64 = 1 << 0;
    pub const POSIX_LOCKS: u64 = 1 << 1;
    pub const FILE_OPS: u64 = 1 << 2;
    pub const ATOMIC_O_TRUNC: u64 = 1 << 3;
    pub const EXPORT_SUPPORT: u64 = 1 << 4;
    pub const BIG_WRITES: u64 = 1 << 5;
    pub const DONT_MASK: u64 = 1 << 6;
    pub const SPLICE_WRITE: u64 = 1 << 7;
    pub const SPLICE_MOVE: u64 = 1 << 8;
    pub const SPLICE_READ: u64 = 1 << 9;
    pub const FLOCK_LOCKS: u64 = 1 << 10;
    pub const HAS_IOCTL_DIR: u64 = 1 << 11;
    pub const AUTO_INVAL_DATA: u64 = 1 << 12;
    pub const DO_READDIRPLUS: u64 = 1 << 13;
    pub const READDIRPLUS_AUTO: u64 = 1 << 14;
    pub const ASYNC_DIO: u64 = 1 << 15;
    pub const WRITEBACK_CACHE: u64 = 1 << 16;
    pub const NO_OPEN_SUPPORT: u64 = 1 << 17;
    pub const PARALLEL_DIROPS: u64 = 1 << 18;
    pub const HANDLE_KILLPRIV: u64 = 1 << 19;
    pub const POSIX_ACL: u64 = 1 << 20;
    pub const ABORT_ERROR: u64 = 1 << 21;
    pub const MAX_PAGES: u64 = 1 << 22;
    pub const CACHE_SYMLINKS: u64 = 1 << 23;
    pub const NO_OPENDIR_SUPPORT: u64 = 1 << 24;
    pub const EXPLICIT_INVAL_DATA: u64 = 1 << 25;
    pub const MAP_ALIGNMENT: u64 = 1 << 26;
    pub const SUBMOUNTS: u64 = 1 << 27;
    pub const HANDLE_KILLPRIV_V2: u64 = 1 << 28;
    pub const SETXATTR_EXT: u64 = 1 << 29;
    /// Set by the kernel; the reply must carry it for `flags2` to count.
    pub const INIT_EXT: u64 = 1 << 30;
    pub const INIT_RESERVED: u64 = 1 << 31;
    pub const SECURITY_CTX: u64 = 1 << 32;
    pub const HAS_INODE_DAX: u64 = 1 << 33;
    pub const CREATE_SUPP_GROUP: u64 = 1 << 34;
    pub const HAS_EXPIRE_ONLY: u64 = 1 << 35;
    pub const DIRECT_IO_ALLOW_MMAP: u64 = 1 << 36;
    pub const PASSTHROUGH: u64 = 1 << 37;
    pub const NO_EXPORT_SUPPORT: u64 = 1 << 38;
    pub const HAS_RESEND: u64 = 1 << 39;
    pub const ALLOW_IDMAP: u64 = 1 << 40;
    pub const OVER_IO_URING: u64 = 1 << 41;
    /// Upstream meaning of bit 42 (the famfs-6.14 profile reuses it).
    pub const REQUEST_TIMEOUT: u64 = 1 << 42;
    /// Upstream meaning of bit 43 (the V10 profile reuses it).
    pub const HAS_IO_URING_BUFPOOL: u64 = 1 << 43;

    pub(crate) const NAMES: [&str; 44] = [
        "ASYNC_READ",
        "POSIX_LOCKS",
        "FILE_OPS",
        "ATOMIC_O_TRUNC",
        "EXPORT_SUPPORT",
        "BIG_WRITES",
        "DONT_MASK",
        "SPLICE_WRITE",
        "SPLICE_MOVE",
        "SPLICE_READ",
        "FLOCK_LOCKS",
        "HAS_IOCTL_DIR",
        "AUTO_INVAL_DATA",
        "DO_READDIRPLUS",
        "READDIRPLUS_AUTO",
        "ASYNC_DIO",
        "WRITEBACK_CACHE",
        "NO_OPEN_SUPPORT",
        "PARALLEL_DIROPS",
        "HANDLE_KILLPRIV",
        "POSIX_ACL",
        "ABORT_ERROR",
        "MAX_PAGES",
        "CACHE_SYMLINKS",
        "NO_OPENDIR_SUPPORT",
        "EXPLICIT_INVAL_DATA",
        "MAP_ALIGNMENT",
        "SUBMOUNTS",
        "HANDLE_KILLPRIV_V2",
        "SETXATTR_EXT",
        "INIT_EXT",
        "INIT_RESERVED",
        "SECURITY_CTX",
        "HAS_INODE_DAX",
        "CREATE_SUPP_GROUP",
        "HAS_EXPIRE_ONLY",
        "DIRECT_IO_ALLOW_MMAP",
        "PASSTHROUGH",
        "NO_EXPORT_SUPPORT",
        "HAS_RESEND",
        "ALLOW_IDMAP",
        "OVER_IO_URING",
        "REQUEST_TIMEOUT",
        "HAS_IO_URING_BUFPOOL",
    ];
}

/// Names of the bits set in a 64-bit INIT flag set, for logs. With a
/// profile, its famfs bit is named `DAX_FMAP` instead of its upstream name;
/// unnamed bits print as `bit N`.
pub fn init_flag_names(flags: u64, profile: Option<&Profile>) -> Vec<String> {
    (0..64u32)
        .filter(|b| flags & (1u64 << b) != 0)
        .map(|b| {
            if profile.is_some_and(|p| p.flag_bit == b) {
                "DAX_FMAP".to_string()
            } else if let Some(n) = init_flags::NAMES.get(b as usize) {
                (*n).to_string()
            } else {
                format!("bit {b}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Opcodes
// ---------------------------------------------------------------------------

macro_rules! opcodes {
    ($($v:ident = $n:literal => $s:literal,)*) => {
        /// Standard FUSE opcodes (famfs opcodes are per profile, see
        /// [`classify_opcode`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum Opcode { $($v = $n,)* }

        impl Opcode {
            /// Maps a number to a standard opcode, if it is one.
            pub fn from_u32(n: u32) -> Option<Opcode> {
                match n { $($n => Some(Opcode::$v),)* _ => None }
            }
            /// Upper-case name without the `FUSE_` prefix.
            pub fn name(self) -> &'static str {
                match self { $(Opcode::$v => $s,)* }
            }
        }
    };
}

opcodes! {
    Lookup = 1 => "LOOKUP",
    Forget = 2 => "FORGET",
    Getattr = 3 => "GETATTR",
    Setattr = 4 => "SETATTR",
    Readlink = 5 => "READLINK",
    Symlink = 6 => "SYMLINK",
    Mknod = 8 => "MKNOD",
    Mkdir = 9 => "MKDIR",
    Unlink = 10 => "UNLINK",
    Rmdir = 11 => "RMDIR",
    Rename = 12 => "RENAME",
    Link = 13 => "LINK",
    Open = 14 => "OPEN",
    Read = 15 => "READ",
    Write = 16 => "WRITE",
    Statfs = 17 => "STATFS",
    Release = 18 => "RELEASE",
    Fsync = 20 => "FSYNC",
    Setxattr = 21 => "SETXATTR",
    Getxattr = 22 => "GETXATTR",
    Listxattr = 23 => "LISTXATTR",
    Removexattr = 24 => "REMOVEXATTR",
    Flush = 25 => "FLUSH",
    Init = 26 => "INIT",
    Opendir = 27 => "OPENDIR",
    Readdir = 28 => "READDIR",
    Releasedir = 29 => "RELEASEDIR",
    Fsyncdir = 30 => "FSYNCDIR",
    Getlk = 31 => "GETLK",
    Setlk = 32 => "SETLK",
    Setlkw = 33 => "SETLKW",
    Access = 34 => "ACCESS",
    Create = 35 => "CREATE",
    Interrupt = 36 => "INTERRUPT",
    Bmap = 37 => "BMAP",
    Destroy = 38 => "DESTROY",
    Ioctl = 39 => "IOCTL",
    Poll = 40 => "POLL",
    NotifyReply = 41 => "NOTIFY_REPLY",
    BatchForget = 42 => "BATCH_FORGET",
    Fallocate = 43 => "FALLOCATE",
    Readdirplus = 44 => "READDIRPLUS",
    Rename2 = 45 => "RENAME2",
    Lseek = 46 => "LSEEK",
    CopyFileRange = 47 => "COPY_FILE_RANGE",
    Setupmapping = 48 => "SETUPMAPPING",
    Removemapping = 49 => "REMOVEMAPPING",
    Syncfs = 50 => "SYNCFS",
    Tmpfile = 51 => "TMPFILE",
    Statx = 52 => "STATX",
    CopyFileRange64 = 53 => "COPY_FILE_RANGE_64",
    CuseInit = 4096 => "CUSE_INIT",
}

/// What a request opcode means under a given profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A standard FUSE opcode.
    Std(Opcode),
    /// The profile's GET_FMAP.
    GetFmap,
    /// The profile's GET_DAXDEV.
    GetDaxdev,
    /// Neither standard nor famfs under this profile.
    Unknown(u32),
}

/// Classifies an opcode. The famfs opcodes of `profile` take precedence over
/// standard numbers they collide with (a famfs kernel reuses them);
/// `None` means a kernel without famfs.
pub fn classify_opcode(opcode: u32, profile: Option<&Profile>) -> OpKind {
    if let Some(p) = profile {
        if opcode == p.get_fmap {
            return OpKind::GetFmap;
        }
        if opcode == p.get_daxdev {
            return OpKind::GetDaxdev;
        }
    }
    match Opcode::from_u32(opcode) {
        Some(op) => OpKind::Std(op),
        None => OpKind::Unknown(opcode),
    }
}

/// Name of an opcode under a profile (`None`: a kernel without famfs), or
/// `"UNKNOWN"`.
pub fn opcode_name(opcode: u32, profile: Option<&Profile>) -> &'static str {
    match classify_opcode(opcode, profile) {
        OpKind::Std(op) => op.name(),
        OpKind::GetFmap => "GET_FMAP",
        OpKind::GetDaxdev => "GET_DAXDEV",
        OpKind::Unknown(_) => "UNKNOWN",
    }
}

/// Notification codes, written in `OutHeader::error` with `unique` 0.
pub mod notify {
    pub const POLL: i32 = 1;
    pub const INVAL_INODE: i32 = 2;
    pub const INVAL_ENTRY: i32 = 3;
    pub const STORE: i32 = 4;
    pub const RETRIEVE: i32 = 5;
    pub const DELETE: i32 = 6;
    pub const RESEND: i32 = 7;
    pub const INC_EPOCH: i32 = 8;
    pub const PRUNE: i32 = 9;
}

/// Bits of `SetattrIn::valid`.
pub mod fattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    pub const FH: u32 = 1 << 6;
    pub const ATIME_NOW: u32 = 1 << 7;
    pub const MTIME_NOW: u32 = 1 << 8;
    pub const LOCKOWNER: u32 = 1 << 9;
    pub const CTIME: u32 = 1 << 10;
    pub const KILL_SUIDGID: u32 = 1 << 11;
}

/// Bits of `OpenOut::open_flags`.
pub mod fopen {
    pub const DIRECT_IO: u32 = 1 << 0;
    pub const KEEP_CACHE: u32 = 1 << 1;
    pub const NONSEEKABLE: u32 = 1 << 2;
    pub const CACHE_DIR: u32 = 1 << 3;
    pub const STREAM: u32 = 1 << 4;
    pub const NOFLUSH: u32 = 1 << 5;
    pub const PARALLEL_DIRECT_WRITES: u32 = 1 << 6;
    pub const PASSTHROUGH: u32 = 1 << 7;
}

/// `GetattrIn::getattr_flags`: `fh` is valid.
pub const GETATTR_FH: u32 = 1 << 0;
/// `ReleaseIn::release_flags`: flush before release.
pub const RELEASE_FLUSH: u32 = 1 << 0;
/// `ReleaseIn::release_flags`: drop flock locks.
pub const RELEASE_FLOCK_UNLOCK: u32 = 1 << 1;
/// `LkIn::lk_flags`: the lock is a flock(2) lock.
pub const LK_FLOCK: u32 = 1 << 0;
/// `Attr::flags`: per-inode DAX (virtio-fs, not famfs).
pub const ATTR_DAX: u32 = 1 << 1;

// ---------------------------------------------------------------------------
// Attributes and entries
// ---------------------------------------------------------------------------

wire_struct! {
    /// Inode attributes as carried in entry and attr replies.
    pub struct Attr("fuse_attr", 88) {
        pub ino: u64,
        pub size: u64,
        pub blocks: u64,
        pub atime: u64,
        pub mtime: u64,
        pub ctime: u64,
        pub atimensec: u32,
        pub mtimensec: u32,
        pub ctimensec: u32,
        pub mode: u32,
        pub nlink: u32,
        pub uid: u32,
        pub gid: u32,
        pub rdev: u32,
        pub blksize: u32,
        pub flags: u32,
    }
}

wire_struct! {
    /// Reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK (and first half of CREATE).
    pub struct EntryOut("fuse_entry_out", 128) {
        pub nodeid: u64,
        pub generation: u64,
        pub entry_valid: u64,
        pub attr_valid: u64,
        pub entry_valid_nsec: u32,
        pub attr_valid_nsec: u32,
        pub attr: Attr,
    }
}

wire_struct! {
    /// Reply to GETATTR and SETATTR.
    pub struct AttrOut("fuse_attr_out", 104) {
        pub attr_valid: u64,
        pub attr_valid_nsec: u32,
        pub dummy: u32,
        pub attr: Attr,
    }
}

wire_struct! {
    /// GETATTR request payload.
    pub struct GetattrIn("fuse_getattr_in", 16) {
        pub getattr_flags: u32,
        pub dummy: u32,
        pub fh: u64,
    }
}

wire_struct! {
    /// SETATTR request payload; `valid` says which fields count.
    pub struct SetattrIn("fuse_setattr_in", 88) {
        pub valid: u32,
        pub padding: u32,
        pub fh: u64,
        pub size: u64,
        pub lock_owner: u64,
        pub atime: u64,
        pub mtime: u64,
        pub ctime: u64,
        pub atimensec: u32,
        pub mtimensec: u32,
        pub ctimensec: u32,
        pub mode: u32,
        pub unused4: u32,
        pub uid: u32,
        pub gid: u32,
        pub unused5: u32,
    }
}

// ---------------------------------------------------------------------------
// Open, read, write, release
// ---------------------------------------------------------------------------

wire_struct! {
    /// OPEN and OPENDIR request payload.
    pub struct OpenIn("fuse_open_in", 8) {
        pub flags: u32,
        pub open_flags: u32,
    }
}

wire_struct! {
    /// CREATE request payload (the name follows, NUL-terminated).
    pub struct CreateIn("fuse_create_in", 16) {
        pub flags: u32,
        pub mode: u32,
        pub umask: u32,
        pub open_flags: u32,
    }
}

wire_struct! {
    /// Reply to OPEN and OPENDIR (CREATE replies `EntryOut` then this).
    pub struct OpenOut("fuse_open_out", 16) {
        pub fh: u64,
        pub open_flags: u32,
        pub backing_id: i32,
    }
}

wire_struct! {
    /// READ, READDIR and READDIRPLUS request payload.
    pub struct ReadIn("fuse_read_in", 40) {
        pub fh: u64,
        pub offset: u64,
        pub size: u32,
        pub read_flags: u32,
        pub lock_owner: u64,
        pub flags: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// WRITE request payload (the data follows).
    pub struct WriteIn("fuse_write_in", 40) {
        pub fh: u64,
        pub offset: u64,
        pub size: u32,
        pub write_flags: u32,
        pub lock_owner: u64,
        pub flags: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// Reply to WRITE.
    pub struct WriteOut("fuse_write_out", 8) {
        pub size: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// RELEASE and RELEASEDIR request payload.
    pub struct ReleaseIn("fuse_release_in", 24) {
        pub fh: u64,
        pub flags: u32,
        pub release_flags: u32,
        pub lock_owner: u64,
    }
}

wire_struct! {
    /// FLUSH request payload.
    pub struct FlushIn("fuse_flush_in", 24) {
        pub fh: u64,
        pub unused: u32,
        pub padding: u32,
        pub lock_owner: u64,
    }
}

wire_struct! {
    /// ACCESS request payload.
    pub struct AccessIn("fuse_access_in", 8) {
        pub mask: u32,
        pub padding: u32,
    }
}

// ---------------------------------------------------------------------------
// Forget, interrupt
// ---------------------------------------------------------------------------

wire_struct! {
    /// FORGET request payload (no reply).
    pub struct ForgetIn("fuse_forget_in", 8) {
        pub nlookup: u64,
    }
}

wire_struct! {
    /// One entry of a BATCH_FORGET request.
    pub struct ForgetOne("fuse_forget_one", 16) {
        pub nodeid: u64,
        pub nlookup: u64,
    }
}

wire_struct! {
    /// BATCH_FORGET request payload; `count` `ForgetOne` follow.
    pub struct BatchForgetIn("fuse_batch_forget_in", 8) {
        pub count: u32,
        pub dummy: u32,
    }
}

/// Decodes a BATCH_FORGET payload into its entries. The count must fit in
/// the payload.
pub fn parse_batch_forget(payload: &[u8]) -> Result<Vec<ForgetOne>, AbiError> {
    let (hdr, rest) = BatchForgetIn::split(payload)?;
    let need = hdr.count as usize * ForgetOne::SIZE;
    if rest.len() < need {
        return Err(AbiError::Short {
            what: ForgetOne::NAME,
            need,
            got: rest.len(),
        });
    }
    Ok(rest[..need]
        .chunks_exact(ForgetOne::SIZE)
        .map(|c| ForgetOne::decode(c).expect("chunk has the exact size"))
        .collect())
}

wire_struct! {
    /// INTERRUPT request payload: the `unique` of the request to interrupt.
    pub struct InterruptIn("fuse_interrupt_in", 8) {
        pub unique: u64,
    }
}

// ---------------------------------------------------------------------------
// Xattr, statfs, locks
// ---------------------------------------------------------------------------

wire_struct! {
    /// GETXATTR and LISTXATTR request payload (name follows for GETXATTR).
    pub struct GetxattrIn("fuse_getxattr_in", 8) {
        pub size: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// Reply to a GETXATTR/LISTXATTR size probe (`size` 0 in the request).
    pub struct GetxattrOut("fuse_getxattr_out", 8) {
        pub size: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// File system statistics.
    pub struct Kstatfs("fuse_kstatfs", 80) {
        pub blocks: u64,
        pub bfree: u64,
        pub bavail: u64,
        pub files: u64,
        pub ffree: u64,
        pub bsize: u32,
        pub namelen: u32,
        pub frsize: u32,
        pub padding: u32,
        pub spare: [u32; 6],
    }
}

wire_struct! {
    /// Reply to STATFS.
    pub struct StatfsOut("fuse_statfs_out", 80) {
        pub st: Kstatfs,
    }
}

wire_struct! {
    /// A lock range as carried by GETLK/SETLK.
    pub struct FileLock("fuse_file_lock", 24) {
        pub start: u64,
        pub end: u64,
        pub typ: u32,
        pub pid: u32,
    }
}

wire_struct! {
    /// GETLK, SETLK and SETLKW request payload.
    pub struct LkIn("fuse_lk_in", 48) {
        pub fh: u64,
        pub owner: u64,
        pub lk: FileLock,
        pub lk_flags: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// Reply to GETLK.
    pub struct LkOut("fuse_lk_out", 24) {
        pub lk: FileLock,
    }
}

// ---------------------------------------------------------------------------
// Directory records
// ---------------------------------------------------------------------------

wire_struct! {
    /// Fixed part of a READDIR record; the name follows, then zero padding
    /// up to a multiple of 8 bytes.
    pub struct DirentHeader("fuse_dirent", 24) {
        pub ino: u64,
        pub off: u64,
        pub namelen: u32,
        /// DT_* type (`mode >> 12` of the file type bits).
        pub typ: u32,
    }
}

/// Offset of the name in a READDIRPLUS record.
pub const DIRENTPLUS_NAME_OFFSET: usize = EntryOut::SIZE + DirentHeader::SIZE;

/// Rounds a record length up to the 8-byte boundary records are padded to.
pub const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Bytes a READDIR record with a name of `namelen` bytes occupies.
pub const fn dirent_size(namelen: usize) -> usize {
    align8(DirentHeader::SIZE + namelen)
}

/// Bytes a READDIRPLUS record with a name of `namelen` bytes occupies.
pub const fn direntplus_size(namelen: usize) -> usize {
    align8(DIRENTPLUS_NAME_OFFSET + namelen)
}

/// DT_* directory entry type from an `st_mode`.
pub const fn dirent_type(mode: u32) -> u32 {
    (mode & 0o170000) >> 12
}

/// Appends a READDIR record (header, name, zero padding).
pub fn push_dirent(buf: &mut Vec<u8>, ino: u64, off: u64, typ: u32, name: &[u8]) {
    let start = buf.len();
    DirentHeader {
        ino,
        off,
        namelen: name.len() as u32,
        typ,
    }
    .write_to(buf);
    buf.extend_from_slice(name);
    buf.resize(start + dirent_size(name.len()), 0);
}

/// Appends a READDIRPLUS record (entry, dirent header, name, zero padding).
/// The dirent's `ino` is taken from `entry.attr.ino`.
pub fn push_direntplus(buf: &mut Vec<u8>, entry: &EntryOut, off: u64, typ: u32, name: &[u8]) {
    let start = buf.len();
    entry.write_to(buf);
    DirentHeader {
        ino: entry.attr.ino,
        off,
        namelen: name.len() as u32,
        typ,
    }
    .write_to(buf);
    buf.extend_from_slice(name);
    buf.resize(start + direntplus_size(name.len()), 0);
}

/// A decoded directory record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    pub off: u64,
    pub typ: u32,
    pub name: Vec<u8>,
}

fn parse_records<T>(
    bytes: &[u8],
    plus: bool,
    mut each: impl FnMut(Option<EntryOut>, Dirent) -> T,
) -> Result<Vec<T>, AbiError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let (entry, rest) = if plus {
            let (e, r) = EntryOut::split(rest)?;
            (Some(e), r)
        } else {
            (None, rest)
        };
        let (h, rest) = DirentHeader::split(rest)?;
        let n = h.namelen as usize;
        if rest.len() < n {
            return Err(AbiError::DirentName {
                offset: at,
                namelen: h.namelen,
                available: rest.len(),
            });
        }
        out.push(each(
            entry,
            Dirent {
                ino: h.ino,
                off: h.off,
                typ: h.typ,
                name: rest[..n].to_vec(),
            },
        ));
        let size = if plus {
            direntplus_size(n)
        } else {
            dirent_size(n)
        };
        at += size;
    }
    Ok(out)
}

/// Decodes a READDIR reply payload.
pub fn parse_dirents(bytes: &[u8]) -> Result<Vec<Dirent>, AbiError> {
    parse_records(bytes, false, |_, d| d)
}

/// Decodes a READDIRPLUS reply payload.
pub fn parse_direntplus(bytes: &[u8]) -> Result<Vec<(EntryOut, Dirent)>, AbiError> {
    parse_records(bytes, true, |e, d| {
        (e.expect("plus records carry an entry"), d)
    })
}

// ---------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------

wire_struct! {
    /// NOTIFY_INVAL_INODE payload.
    pub struct NotifyInvalInodeOut("fuse_notify_inval_inode_out", 24) {
        pub ino: u64,
        pub off: i64,
        pub len: i64,
    }
}

wire_struct! {
    /// NOTIFY_INVAL_ENTRY payload (name follows, NUL-terminated).
    pub struct NotifyInvalEntryOut("fuse_notify_inval_entry_out", 16) {
        pub parent: u64,
        pub namelen: u32,
        pub flags: u32,
    }
}

wire_struct! {
    /// NOTIFY_DELETE payload (name follows, NUL-terminated).
    pub struct NotifyDeleteOut("fuse_notify_delete_out", 24) {
        pub parent: u64,
        pub child: u64,
        pub namelen: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// NOTIFY_STORE payload (`size` data bytes follow).
    pub struct NotifyStoreOut("fuse_notify_store_out", 24) {
        pub nodeid: u64,
        pub offset: u64,
        pub size: u32,
        pub padding: u32,
    }
}

// ---------------------------------------------------------------------------
// famfs
// ---------------------------------------------------------------------------

wire_struct! {
    /// fmap message header. `reserved0` is `fmap_size` in profiles whose
    /// header variant says so ([`crate::profile::HeaderVariant::FmapSize`]).
    pub struct FmapHeader("fmap header", 32) {
        pub file_type: u8,
        pub reserved: u8,
        pub fmap_version: u16,
        pub ext_type: u32,
        pub nextents: u32,
        pub reserved0: u32,
        pub file_size: u64,
        pub reserved1: u64,
    }
}

wire_struct! {
    /// A simple extent, also used for the strips of an interleaved extent.
    pub struct FmapSimpleExt("fmap simple extent", 24) {
        pub devindex: u32,
        pub reserved: u32,
        pub offset: u64,
        pub len: u64,
    }
}

wire_struct! {
    /// Header of an interleaved extent; `nstrips` strips follow it.
    pub struct FmapInterleaveExt("fmap interleaved extent", 24) {
        pub nstrips: u32,
        pub chunk_size: u32,
        pub nbytes: u64,
        pub reserved: u64,
    }
}

wire_struct! {
    /// GET_FMAP request payload in profiles that carry one: the size of
    /// the reply buffer the kernel offers.
    pub struct GetFmapIn("GET_FMAP request", 8) {
        pub size: u32,
        pub padding: u32,
    }
}

wire_struct! {
    /// The argument of `FUSE_DEV_IOC_DAXDEV_OPEN` (`struct fuse_backing_map`
    /// with its union read as the device index): the daemon pushes the dax
    /// device open on `fd` into slot `daxdev_index` of the connection.
    pub struct DaxdevOpen("fuse_backing_map", 16) {
        pub fd: i32,
        /// Ignored by the kernel at hand.
        pub flags: u32,
        pub daxdev_index: u64,
    }
}

/// `_IOW(229, 4, struct fuse_backing_map)`: the /dev/fuse ioctl that pushes
/// a dax device (next profile).
pub const FUSE_DEV_IOC_DAXDEV_OPEN: u32 = 0x4010_e504;

/// Length of `DaxdevOut::name`.
pub const DAXDEV_NAME_LEN: usize = 256;

wire_struct! {
    /// GET_DAXDEV reply: the path of the dax device for one index.
    pub struct DaxdevOut("fuse_daxdev_out", 280) {
        /// Ignored by the kernel.
        pub index: u16,
        pub reserved0: u16,
        pub reserved1: u32,
        pub reserved2: u64,
        pub reserved3: u64,
        pub name: [u8; 256],
    }
}

/// A path does not fit in `DaxdevOut::name` with its terminating NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTooLong {
    pub len: usize,
}

impl fmt::Display for NameTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "daxdev name of {} bytes does not fit in {} bytes with a NUL",
            self.len, DAXDEV_NAME_LEN
        )
    }
}

impl std::error::Error for NameTooLong {}

impl DaxdevOut {
    /// A well-formed reply: `path` followed by NUL padding. Paths of 256
    /// bytes or more are refused because they would leave no NUL.
    pub fn with_path(index: u16, path: &str) -> Result<Self, NameTooLong> {
        let b = path.as_bytes();
        if b.len() >= DAXDEV_NAME_LEN {
            return Err(NameTooLong { len: b.len() });
        }
        let mut name = [0u8; DAXDEV_NAME_LEN];
        name[..b.len()].copy_from_slice(b);
        Ok(DaxdevOut {
            index,
            name,
            ..Default::default()
        })
    }

    /// A reply with exactly these 256 name bytes, NUL or not (fault
    /// injection: a name without NUL makes the kernel read past it).
    pub fn with_raw_name(index: u16, name: [u8; DAXDEV_NAME_LEN]) -> Self {
        DaxdevOut {
            index,
            name,
            ..Default::default()
        }
    }

    /// The name up to its first NUL, or all 256 bytes if there is none.
    pub fn name_bytes(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(DAXDEV_NAME_LEN);
        &self.name[..end]
    }

    /// Whether the name is NUL-terminated within its 256 bytes.
    pub fn name_terminated(&self) -> bool {
        self.name.contains(&0)
    }
}

// ---------------------------------------------------------------------------
// Requests, replies and notifications
// ---------------------------------------------------------------------------

/// Splits one request read from /dev/fuse into header and payload, checking
/// that the header's `len` matches what was read.
pub fn split_request(bytes: &[u8]) -> Result<(InHeader, &[u8]), AbiError> {
    let (h, rest) = InHeader::split(bytes)?;
    if h.len as usize != bytes.len() {
        return Err(AbiError::LenMismatch {
            declared: h.len,
            got: bytes.len(),
        });
    }
    Ok((h, rest))
}

fn message(unique: u64, error: i32, payload: &[u8]) -> Vec<u8> {
    let len = OutHeader::SIZE + payload.len();
    let mut v = Vec::with_capacity(len);
    OutHeader {
        len: len as u32,
        error,
        unique,
    }
    .write_to(&mut v);
    v.extend_from_slice(payload);
    v
}

/// A success reply: out header (error 0, correct `len`) then `payload`.
pub fn reply(unique: u64, payload: &[u8]) -> Vec<u8> {
    message(unique, 0, payload)
}

/// A success reply carrying one fixed-size struct.
pub fn reply_with<T: Wire>(unique: u64, value: &T) -> Vec<u8> {
    reply(unique, &value.to_bytes())
}

/// An error reply for a positive errno (written as `-errno`, no payload).
pub fn reply_error(unique: u64, errno: i32) -> Vec<u8> {
    message(unique, -errno, &[])
}

/// A notification: `unique` 0, the notify code in `error`, then `payload`.
pub fn notification(code: i32, payload: &[u8]) -> Vec<u8> {
    message(0, code, payload)
}
