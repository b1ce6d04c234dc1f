//! The xtask subcommands' logic, one file each; `xtask` is only the clap
//! layer over them. A command composes the stages (and `run`), never the
//! other way round.

pub mod authoring;
pub mod bench;
pub mod bisect;
pub mod bless;
pub mod compare;
pub mod coverage;
pub mod fmap;
pub mod fuzz_fmap;
pub mod fuzz_fmap_report;
pub mod fuzz_parsers;
pub mod kernel;
pub mod merge;
pub mod mutants;
pub mod mutate;
pub mod nightly;
pub mod shell;
pub mod test_vm;
pub mod triage;
