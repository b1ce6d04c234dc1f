//! The kernel stage: config fragments and their verification (`config`),
//! where a tree comes from (`source`: Debian's package, a user tree, a git
//! commit), patch series applied on a base (`patches`), named kernels
//! (`named`), cached builds (`build`), and `resolve`, the one entry point
//! that turns any kernel input into a built kernel: a bzImage, a .config
//! and a vmlinux. It never boots anything.

pub mod abi;
pub mod build;
pub mod config;
pub mod named;
pub mod patches;
pub mod resolve;
pub mod source;
