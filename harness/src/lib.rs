//! famfs FUSE test harness: build a kernel from verified config fragments,
//! boot it in QEMU with emulated dax devices, run fstests-style cases in the
//! guest and report them as test results.
//!
//! Data flows one way: `config` -> `source`/`kbuild` -> `image` -> `vm`
//! (`qemu`, `vng`) -> `channel` (typed guest messages) -> `verdict` ->
//! `results`/`trials`/`ui`. The guest side lives in `guest`; the modules
//! without the `host` feature are what the static guest program is built from.

// Shared by host and guest.
pub mod channel;
pub mod guest;
pub mod kmsg;
pub mod topology;
pub mod yaml;

// Host side.
#[cfg(feature = "host")]
pub mod accel;
#[cfg(feature = "host")]
pub mod bench;
#[cfg(feature = "host")]
pub mod cache;
#[cfg(feature = "host")]
pub mod case;
#[cfg(feature = "host")]
pub mod config;
#[cfg(feature = "host")]
pub mod cpio;
#[cfg(feature = "host")]
pub mod guestbuild;
#[cfg(feature = "host")]
pub mod hostdeps;
#[cfg(feature = "host")]
pub mod image;
#[cfg(feature = "host")]
pub mod kbuild;
#[cfg(feature = "host")]
pub mod kernels;
#[cfg(feature = "host")]
pub mod patches;
#[cfg(feature = "host")]
pub mod proc;
#[cfg(feature = "host")]
pub mod results;
#[cfg(feature = "host")]
pub mod run;
pub mod server;
#[cfg(feature = "host")]
pub mod source;
#[cfg(feature = "host")]
pub mod trials;
#[cfg(feature = "host")]
pub mod ui;
#[cfg(feature = "host")]
pub mod verdict;
#[cfg(feature = "host")]
pub mod vm;
#[cfg(feature = "host")]
pub mod vng;
