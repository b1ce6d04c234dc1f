//! famfs FUSE test harness: build a kernel from verified config fragments,
//! boot it in QEMU with emulated dax devices, run fstests-style cases in the
//! guest and report them as test results.
//!
//! The folders are the stages data flows through, one way:
//!
//! | stage | folder | owns | never |
//! |---|---|---|---|
//! | kernel | `kernel/` | fragments, sources, patch series, named kernels, builds | boots anything |
//! | image | `image/` | the guest program and the initramfs | knows about cases' verdicts |
//! | vm | `vm/` | accelerator probe, QEMU and virtme-ng launch, monitoring | judges a case |
//! | guest | `guest/` | what runs inside the VM: device setup, the case runner, tools | runs on the host |
//! | judge | `judge/` | kernel reports and titles, symbolization, case windows, verdicts | launches anything |
//! | report | `report/` | results directory, JUnit, libtest trials, progress | decides a verdict |
//!
//! `contract/` is what host and guest agree on (the run plan, the messages,
//! exit codes, environment variables, the topology); both sides import it.
//! `case` reads case files, `topologies` the named machines, `run` ties the stages together, `server/` is the
//! famfs FUSE server (famfsd) the cases start in the guest. Modules without
//! the `host` feature are what the static guest program is built from.

// Shared by host and guest.
pub mod base;
pub mod contract;
pub mod guest;
pub mod server;

// Host side.
#[cfg(feature = "host")]
pub mod commands;
#[cfg(feature = "host")]
pub mod events;
#[cfg(feature = "host")]
pub mod exec;
#[cfg(feature = "host")]
pub mod fuzz;
#[cfg(feature = "host")]
pub mod image;
#[cfg(feature = "host")]
pub mod judge;
#[cfg(feature = "host")]
pub mod kernel;
#[cfg(feature = "host")]
pub mod plan;
#[cfg(feature = "host")]
pub mod report;
#[cfg(feature = "host")]
pub mod run;
#[cfg(feature = "host")]
pub mod vm;
