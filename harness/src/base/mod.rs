//! What every stage stands on: YAML with file:line errors, child processes
//! and signals, the cache outside the checkout, host packages. Nothing here
//! knows about kernels, cases or VMs.

pub mod proc;
pub mod yaml;

#[cfg(feature = "host")]
pub mod cache;
#[cfg(feature = "host")]
pub mod hostdeps;
