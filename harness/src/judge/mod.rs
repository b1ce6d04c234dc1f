//! Judging: the kernel log's lines (shared with the guest runner, which
//! reads its own kernel log), the reports grouped from them and their source
//! lines, taint, and case verdicts (host only). Nothing here launches
//! anything.

#[cfg(feature = "host")]
pub mod reports;
#[cfg(feature = "host")]
pub mod symbolize;
#[cfg(feature = "host")]
pub mod triage;
#[cfg(feature = "host")]
pub mod verdict;
#[cfg(feature = "host")]
pub mod windows;
