//! Judging: what the kernel log says (findings, shared with the guest
//! runner, which reads its own kernel log) and what a case's result is
//! (verdicts, host only). Nothing here launches or writes anything.

pub mod kmsg;
#[cfg(feature = "host")]
pub mod verdict;
