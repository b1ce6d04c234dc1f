//! The image stage: the static guest program (`guest_program`) and the
//! initramfs described by `images/default.yaml` (`initramfs`, written as a
//! newc archive by `cpio`), cached by content. It knows nothing of kernels
//! or verdicts.

pub mod cpio;
pub mod famfs_user;
pub mod guest_program;
pub mod initramfs;
