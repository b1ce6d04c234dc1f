//! famfs FUSE test harness: build a kernel from verified config fragments,
//! boot it in QEMU with emulated dax devices, run fstests-style cases in the
//! guest and report them as test results.
//!
//! Data flows one way: `config` -> `source`/`kbuild` -> `image` -> `vm`
//! (`qemu`, `vng`) -> `channel` (typed guest messages) -> `verdict` ->
//! `results`/`ui`. The guest side lives in `guest`.

pub mod cache;
pub mod config;
pub mod hostdeps;
pub mod kbuild;
pub mod proc;
pub mod source;
pub mod ui;
pub mod channel;
pub mod guest;
pub mod kmsg;
pub mod topology;
pub mod cpio;
pub mod image;
pub mod yaml;
pub mod accel;
pub mod case;
pub mod guestbuild;
pub mod verdict;
pub mod vm;
pub mod vng;
pub mod results;
pub mod run;
pub mod trials;
pub mod bench;
