//! `cargo xtask compare BASELINE RUN`: what changed between two runs; exit
//! 101 on a regression.

use crate::report::baseline as b;
use anyhow::Result;
use std::path::Path;

pub fn main(baseline: &Path, run: &Path, slower_than: u32) -> Result<i32> {
    let (before, now) = (b::load(baseline)?, b::load(run)?);
    let changes = b::compare(&before, &now, slower_than);
    print!("{}", changes.render());
    Ok(if changes.regressed() { 101 } else { 0 })
}
