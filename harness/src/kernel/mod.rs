//! The kernel stage: config fragments and their verification (`config`),
//! where a tree comes from (`source`: Debian's package, a user tree, a git
//! commit), patch series applied on a base (`patches`), named kernels
//! (`named`) and cached builds (`build`). It produces a bzImage, a .config
//! and a vmlinux; it never boots anything.

pub mod abi;
pub mod build;
pub mod config;
pub mod named;
pub mod patches;
pub mod source;
