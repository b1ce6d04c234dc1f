//! What every stage stands on: YAML with file:line errors, child processes
//! and signals, the cache outside the checkout, host packages. Nothing here
//! knows about kernels, cases or VMs.

pub mod proc;
pub mod yaml;

#[cfg(feature = "host")]
pub mod cache;
#[cfg(feature = "host")]
pub mod hostdeps;

/// Bytes as lower-case hex: cache keys and digests on the host, gcov data
/// the guest sends.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
