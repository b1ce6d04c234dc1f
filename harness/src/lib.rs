//! famfs FUSE test harness: build a kernel from verified config fragments,
//! boot it in QEMU with emulated dax devices, run fstests-style cases in the
//! guest and report them as test results.
//!
//! The folders are the stages data flows through, one way, in this order
//! (docs/architecture.md walks one case through them). A module may import
//! its own stage and the stages above it in this table, never one below;
//! `harness/tests/architecture.rs` checks it.
//!
//! | rank | stage | folder | owns | entry point |
//! |---|---|---|---|---|
//! | 0 | base | `base/`, `events.rs`, `contract/` | YAML, processes, cache, host packages; progress events; what host and guest agree on (plan, messages, kernel log lines, taint, case markers) | - |
//! | 1 | famfsd | `server/` | the famfs FUSE server the cases start in the guest | `server::cli_main` |
//! | 2 | guest | `guest/` | what runs inside the VM: device setup, the case runner, tools | `fh-guest` |
//! | 3 | kernel | `kernel/` | fragments, sources, patch series, named kernels, builds | `kernel::resolve::resolve` |
//! | 4 | image | `image/` | the guest program, the initramfs, the famfs user space layer | `image::prepare` |
//! | 5 | vm | `vm/` | accelerator probe, QEMU and virtme-ng launch, monitoring | `vm::monitor` |
//! | 6 | plan | `plan/` | cases, named machines, selection, the schedule | `plan::schedule::Schedule::new` |
//! | 7 | exec | `exec/` | boots of a schedule, restarts, raw results | `exec::run` |
//! | 8 | judge | `judge/` | kernel reports and titles, symbolization, verdicts | `judge::Judge` |
//! | 9 | report | `report/` | results directory, JUnit, the recorder, the test list, the printer | `report::record`, `report::trials::present` |
//! | 10 | run | `run.rs` | the pipeline composing the stages | `run::prepare`, `run::execute`, `run::trials` |
//! | 11 | commands | `commands/`, `fuzz/` | the xtask subcommands' logic, the parser fuzzer | one function per command |
//!
//! What never happens: a stage prints (it emits `events`; `report::ui`
//! prints), exec judges (it hands raw results to a `Recorder`), the test
//! list drives the run (it consumes `run::start`'s stream), the guest side
//! (`server/`, `guest/`, the `fh-guest` binary) uses a host module (it is
//! built without the `host` feature, so the compiler refuses).

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
