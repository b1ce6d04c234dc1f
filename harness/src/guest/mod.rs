//! Code that runs inside the guest: the case runner, device helpers the
//! cases call, and the probe FUSE server. Built into the static `fh-guest`
//! binary; the host side never calls it except in tests.

pub mod dax;
pub mod fuseprobe;
pub mod runner;
pub mod sys;
pub mod tools;
