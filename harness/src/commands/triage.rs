//! `cargo xtask triage CONSOLE_LOG`: the kernel reports of a console log,
//! titled and symbolized; exit 1 when there is one.

use anyhow::Result;
use std::path::Path;

pub fn main(console_log: &Path, vmlinux: Option<&Path>, json: bool) -> Result<i32> {
    let (t, note) = crate::judge::triage::triage(console_log, vmlinux)?;
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print!("{}", t.render());
    }
    Ok(if t.reports.is_empty() { 0 } else { 1 })
}
