//! `cargo xtask fuzz-parsers`: every parser target for a time or a number
//! of inputs; exit 1 when a target found something (kept under `save`).

use crate::fuzz;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

pub fn main(
    targets: &[String],
    duration: Duration,
    inputs: Option<u64>,
    seed: Option<u64>,
    save: Option<PathBuf>,
) -> Result<i32> {
    let seed = seed.unwrap_or_else(fuzz::Rng::seed_from_time);
    let root = crate::image::guest_program::workspace_root();
    let save = save.unwrap_or_else(|| root.join("target/fuzz-parsers"));
    eprintln!(
        "[harness] fuzz-parsers: seed {seed}, {duration:?} or {} inputs per target",
        inputs.map_or("unlimited".into(), |n| n.to_string())
    );
    let budget = fuzz::Budget {
        duration: Some(duration),
        inputs,
    };
    let stats = fuzz::campaign(targets, seed, &budget, &save, &mut std::io::stdout())?;
    Ok(if stats.iter().any(fuzz::Stats::failed) {
        1
    } else {
        0
    })
}
