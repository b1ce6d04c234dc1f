//! Kernel coverage through the real binary, on the famfs V10 kernel's
//! coverage variant (built once into the cache): a run writes each case's
//! counts, the merged tracefile, the HTML report and the famfs.c line; a
//! run with one more case reaches lines the first did not, and `coverage
//! diff` names them.

mod common;
use common::{text, xtask};

use std::path::{Path, PathBuf};

/// A coverage run of `filters` on famfs-v10 into `results`: its directory.
fn coverage_run(results: &Path, filters: &[&str]) -> PathBuf {
    let r = results.display().to_string();
    let mut args = vec![
        "test-vm",
        "--kernel",
        "famfs-v10",
        "--coverage",
        "--results",
        &r,
    ];
    args.extend(filters);
    let out = xtask(&args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}\n{err}", text(&out.stdout));
    let line = err
        .lines()
        .find(|l| l.starts_with("[harness] coverage: ") && l.contains(" fs/fuse/famfs.c: lines "))
        .unwrap_or_else(|| panic!("no famfs.c coverage line in\n{err}"));
    let hit: usize = line
        .split("lines ")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(hit > 50, "famfs.c lines reached: {line}");
    std::fs::canonicalize(results.join("latest")).unwrap()
}

#[test]
fn a_coverage_run_writes_counts_per_case_and_merged_and_diff_names_what_a_case_added() {
    let t = tempfile::tempdir().unwrap();
    let a = coverage_run(&t.path().join("a"), &["famfs/001"]);
    for f in [
        "cases/famfs-001/coverage.info",
        "coverage/total.info",
        "coverage/summary.txt",
        "coverage/html/index.html",
    ] {
        assert!(a.join(f).is_file(), "{} missing", a.join(f).display());
    }
    let info = std::fs::read_to_string(a.join("coverage/total.info")).unwrap();
    assert!(
        info.contains("/fs/fuse/famfs.c\n") && info.contains("/fs/dax.c\n"),
        "{info:.400}"
    );
    assert!(!info.contains("/include/"), "headers are left out");
    // famfs/020's capability trials take paths famfs/001 does not (a
    // refused capability, forced mode): they add famfs.c or inode.c lines.
    let b = coverage_run(&t.path().join("b"), &["famfs/001", "famfs/020"]);
    let out = xtask(&[
        "coverage",
        "diff",
        &a.display().to_string(),
        &b.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    let b_only = diff
        .split(&format!("reached by {} only:\n", b.display()))
        .nth(1)
        .unwrap_or_else(|| panic!("{diff}"));
    assert!(
        b_only.contains("/fs/fuse/") && b_only.contains(" lines: "),
        "{diff}"
    );
    // Not a coverage run: one clear error, exit 2.
    let out = xtask(&[
        "coverage",
        "diff",
        &t.path().display().to_string(),
        &b.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a coverage run"),
        "{}",
        text(&out.stderr)
    );
}
