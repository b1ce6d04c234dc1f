//! Code that runs inside the guest: the case runner, device helpers the
//! cases call, and the famfs capability gate (on famfsd, `server/`). Built into the static `fh-guest`
//! binary; the host side never calls it except in tests.

pub mod capability;
pub mod coverage;
pub mod datapath;
pub mod dax;
pub mod fuse_record;
pub mod fuzz;
pub mod mmap;
pub mod phases;
pub mod runner;
pub mod sys;
pub mod tools;
