//! `cargo xtask bless [ID...]`: golden files from a run's output; each
//! written file on stdout, or why there was nothing to bless.

use anyhow::Result;
use std::path::Path;

pub fn main(cases: &Path, run: &Path, ids: &[String]) -> Result<i32> {
    let done = super::authoring::bless(cases, run, ids)?;
    if done.is_empty() {
        println!(
            "nothing to bless in {}: no trial failed on its output alone",
            run.display()
        );
    }
    for b in done {
        println!("{} <- {}", b.golden.display(), b.from.join(", "));
    }
    Ok(0)
}
