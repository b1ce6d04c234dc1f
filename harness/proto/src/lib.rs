//! Wire formats for testing famfs over FUSE: FUSE message layouts, the
//! famfs fmap and daxdev messages, protocol profiles for the famfs kernel
//! versions, and a model of how the kernel judges an fmap.
//!
//! Pure data and byte conversion: no files, sockets or system calls.
//!
//! - [`abi`]: fixed-size FUSE/famfs structs, opcodes, INIT flags, reply
//!   and notification framing, directory records.
//! - [`profile`]: per-kernel numbers (capability bit, famfs opcodes,
//!   limits), chosen by name or given explicitly.
//! - [`fmap`]: typed fmap model, encoder, lenient decoder, raw builder.
//! - [`kernel_model`]: what the kernel does with a GET_FMAP / GET_DAXDEV reply.
//! - [`push`]: what the kernel does with pushed dax devices (`next`).
//! - [`describe`](mod@describe): readable dump of fmap bytes.
//! - [`errno`]: Linux errno numbers.
//! - [`size`]: the one size syntax (`4096`, `0x1000`, `4K`, `2M`, `1G`).
//!
//! ```
//! use famfs_proto::{errno, kernel_verdict, Fmap, Profile, Rule, SimpleExtent};
//!
//! let v10 = Profile::by_name("v10").unwrap();
//! let fmap = Fmap::simple(4 << 20, vec![SimpleExtent::new(0, 4 << 20)]);
//! assert!(kernel_verdict(&v10, &fmap.encode(&v10)).is_accept());
//!
//! // Claim two extents but send one: open() would fail with EINVAL.
//! let bytes = fmap.to_raw(&v10).set_nextents(2).to_bytes();
//! let verdict = kernel_verdict(&v10, &bytes);
//! assert_eq!(verdict.open_errno(), Some(errno::EINVAL));
//! assert_eq!(verdict.rule(), Some(Rule::PastPayload));
//! ```

// The workspace's minimum Rust (1.85) predates `u64::is_multiple_of`.
#![allow(clippy::manual_is_multiple_of)]

pub mod abi;
pub mod describe;
pub mod errno;
pub mod fmap;
pub mod kernel_model;
pub mod profile;
pub mod push;
pub mod size;

pub use abi::{AbiError, DaxdevOut, OpKind, Opcode, Wire};
pub use describe::describe;
pub use fmap::{DecodeError, Decoded, Extents, Fmap, InterleavedExtent, RawFmap, SimpleExtent};
pub use kernel_model::{
    daxdev_verdict, judge_exchange, kernel_verdict, kernel_verdict_retry, DaxdevVerdict,
    FmapSummary, KernelVerdict, Rejection, Rule, Unchecked,
};
pub use profile::{
    CustomProfile, DaxdevSource, HeaderVariant, Profile, ProfileError, ProfileSpec, UnknownProfile,
};
pub use push::{Allowed, DaxDriver, DaxTable, PushObject, Slot};
pub use size::Size;
