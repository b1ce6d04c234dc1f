//! `cargo xtask merge RUN... --out DIR`: shards' runs as one; exit 2 on a
//! harness error in any, 101 on a failure.

use anyhow::Result;
use std::path::{Path, PathBuf};

pub fn main(runs: &[PathBuf], out: &Path) -> Result<i32> {
    let (dir, s) = crate::report::merge::merge(runs, out)?;
    let c = &s.counts;
    println!(
        "{}: {} trials from {} runs: {} passed, {} failed, {} not run, {} known failures, {} errors",
        dir.root.display(),
        s.cases.len(),
        runs.len(),
        c.passed,
        c.failed,
        c.notrun,
        c.known_fail,
        c.errors
    );
    Ok(if c.errors > 0 {
        2
    } else if c.failed > 0 {
        101
    } else {
        0
    })
}
