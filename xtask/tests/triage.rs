//! `cargo xtask triage` through the real binary: its output, JSON, and each
//! documented exit status (0 no report, 1 reports, 2 unreadable input).

mod common;
use common::xtask;

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../harness/tests/corpus")
        .join(name)
}

#[test]
fn a_console_log_with_a_crash_prints_its_report_and_exits_1() {
    let log = corpus("default/lkdtm-003.1.log");
    let o = xtask(&["triage", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(": 1 kernel report\n"), "{out}");
    assert!(
        out.contains("#1 kernel BUG in lkdtm_BUG [BUG] (in case lkdtm/003"),
        "{out}"
    );
    assert!(out.contains("Kernel panic - not syncing"), "{out}");
    // JSON: the same report, with its case.
    let o = xtask(&["triage", log.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reports"][0]["title"], "kernel BUG in lkdtm_BUG");
    assert_eq!(v["reports"][0]["kind"], "bug");
    assert_eq!(v["reports"][0]["case"], "lkdtm/003");
    assert_eq!(v["reports"][0]["rip"]["func"], "lkdtm_BUG");
    assert_eq!(v["symbolized"], false);
}

#[test]
fn a_clean_log_exits_0_and_a_missing_one_2() {
    let t = tempfile::tempdir().unwrap();
    let clean = t.path().join("clean.log");
    std::fs::write(
        &clean,
        "[    0.1][    T1] Linux version 7.3.4\n[    0.2][    T1] Please report a bug\n",
    )
    .unwrap();
    let o = xtask(&["triage", clean.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains(": 0 kernel reports"));
    let missing = t.path().join("nope.log");
    let o = xtask(&["triage", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope.log"), "{err}");
}

#[test]
fn a_vmlinux_without_debug_info_is_a_note_and_a_non_elf_an_error() {
    let log = corpus("default/lkdtm-001.1.log");
    // Any ELF file without .debug_info: strip a copy of a system binary.
    let t = tempfile::tempdir().unwrap();
    let elf = t.path().join("vmlinux");
    std::fs::copy("/bin/true", &elf).unwrap();
    let st = Command::new("strip")
        .args(["--strip-debug", elf.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = xtask(&[
        "triage",
        log.to_str().unwrap(),
        "--vmlinux",
        elf.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("has no debug info"), "{err}");
    let bad = t.path().join("not-elf");
    std::fs::write(&bad, "text").unwrap();
    let o = xtask(&[
        "triage",
        log.to_str().unwrap(),
        "--vmlinux",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an ELF file"));
}
