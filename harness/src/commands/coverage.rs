//! `cargo xtask coverage diff RUN_A RUN_B`: the kernel lines one coverage
//! run reached and the other did not, each way (what a new case added,
//! what a kernel change left untested).

use crate::report::coverage::Coverage;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// A run directory's merged tracefile.
fn load(run: &Path) -> Result<Coverage> {
    let info = run.join("coverage/total.info");
    let text = std::fs::read_to_string(&info).with_context(|| {
        format!(
            "reading {}: not a coverage run (cargo xtask test-vm --coverage writes it)",
            info.display()
        )
    })?;
    Coverage::from_lcov(&text, &info)
}

/// `12-14, 20` from `[12, 13, 14, 20]`.
fn ranges(lines: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        while j + 1 < lines.len() && lines[j + 1] == lines[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            lines[i].to_string()
        } else {
            format!("{}-{}", lines[i], lines[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

/// What `only` holds, under a heading, a line a file.
fn render(heading: &str, only: &BTreeMap<String, Vec<u32>>) -> String {
    let mut s = format!("{heading}:\n");
    if only.is_empty() {
        s += "  none\n";
    }
    for (path, lines) in only {
        s += &format!("  {path}: {} lines: {}\n", lines.len(), ranges(lines));
    }
    s
}

pub fn diff(a: &Path, b: &Path) -> Result<String> {
    let (ca, cb) = (load(a)?, load(b)?);
    Ok(render(
        &format!("reached by {} only", a.display()),
        &ca.reached_only(&cb),
    ) + &render(
        &format!("reached by {} only", b.display()),
        &cb.reached_only(&ca),
    ))
}

pub fn main(a: &Path, b: &Path) -> Result<i32> {
    print!("{}", diff(a, b)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_the_lines_each_run_alone_reached() {
        let t = tempfile::tempdir().unwrap();
        let run = |name: &str, da: &str| {
            let d = t.path().join(name).join("coverage");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("total.info"),
                format!("SF:/s/fs/fuse/famfs.c\n{da}end_of_record\n"),
            )
            .unwrap();
            t.path().join(name)
        };
        let a = run("a", "DA:10,1\nDA:11,1\nDA:12,1\nDA:20,1\nDA:30,0\n");
        let b = run("b", "DA:10,1\nDA:11,0\nDA:12,0\nDA:20,0\nDA:30,4\n");
        let out = diff(&a, &b).unwrap();
        assert!(
            out.contains("only:\n  /s/fs/fuse/famfs.c: 3 lines: 11-12, 20\n"),
            "{out}"
        );
        assert!(
            out.ends_with("only:\n  /s/fs/fuse/famfs.c: 1 lines: 30\n"),
            "{out}"
        );
        let e = diff(&t.path().join("none"), &b).unwrap_err();
        assert!(format!("{e:#}").contains("not a coverage run"), "{e:#}");
    }
}
