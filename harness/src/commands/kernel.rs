//! `cargo xtask kernel`: build (or with `--check` configure and verify) the
//! kernel a run would use and print its description.

use crate::run::Options;
use anyhow::{Context, Result};

pub fn main(opts: &Options, check: bool) -> Result<i32> {
    let mut opts = opts.clone();
    opts.kernel.config_only = check;
    crate::run::ensure_host(&opts)?;
    let cache = crate::base::cache::Cache::open(opts.cache_root.as_deref())?;
    let art = crate::kernel::resolve::resolve(&opts.kernel, &opts.root, &cache)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&art).context("printing the kernel description")?
    );
    Ok(0)
}
