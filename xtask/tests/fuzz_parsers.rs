//! `cargo xtask fuzz-parsers` through the real binary: its table, the exit
//! status of a clean run (0), of a parser that breaks (1: the `selftest`
//! target, which fails on purpose) and of bad arguments (2).

mod common;
use common::xtask;

#[test]
fn a_short_run_prints_its_figures_and_exits_0() {
    let t = tempfile::tempdir().unwrap();
    let save = t.path().to_str().unwrap();
    let o = xtask(&[
        "fuzz-parsers",
        "--duration",
        "2s",
        "--target",
        "fmap",
        "--target",
        "image",
        "--seed",
        "7",
        "--save",
        save,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("seed 7"), "{err}");
    let head = out.lines().next().unwrap_or("");
    for col in [
        "target",
        "inputs",
        "panics",
        "unlocated",
        "distinct errors",
        "inputs/s",
    ] {
        assert!(head.contains(col), "{head}");
    }
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][0], "fmap");
    assert_eq!(rows[1][0], "image");
    for r in &rows {
        let inputs: u64 = r[1].parse().unwrap();
        assert!(inputs > 0, "{out}");
        assert_eq!(r[2], "0", "panics: {out}");
        assert_eq!(r[3], "0", "unlocated: {out}");
    }
    // Nothing broke, so nothing was saved.
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

#[test]
fn inputs_end_a_target_before_its_time() {
    let o = xtask(&[
        "fuzz-parsers",
        "--duration",
        "10m",
        "--inputs",
        "50",
        "--target",
        "kconfig",
        "--seed",
        "1",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["kconfig", "50"], "{out}");
}

#[test]
fn a_bad_target_or_duration_exits_2_and_says_why() {
    let o = xtask(&["fuzz-parsers", "--target", "nope", "--duration", "1s"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope") && err.contains("--target"), "{err}");
    // The valid names are listed.
    assert!(err.contains("fmap") && err.contains("scenario"), "{err}");
    let o = xtask(&["fuzz-parsers", "--duration", "10 parsecs"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown unit"), "{err}");
}

#[test]
fn a_broken_parser_exits_1_and_keeps_its_inputs() {
    let t = tempfile::tempdir().unwrap();
    let o = xtask(&[
        "fuzz-parsers",
        "--target",
        "selftest",
        "--inputs",
        "200",
        "--seed",
        "3",
        "--save",
        t.path().to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["selftest", "200"], "{out}");
    assert_ne!(row[2], "0", "panics: {out}");
    assert_ne!(row[3], "0", "unlocated: {out}");
    assert!(
        out.contains("Panic: ") && out.contains("falls over"),
        "{out}"
    );
    // One input per distinct finding, named by kind, holding the input.
    let mut saved: Vec<(String, Vec<u8>)> = std::fs::read_dir(t.path().join("selftest"))
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    saved.sort();
    assert_eq!(saved.len(), 2, "{saved:?}");
    let panic = saved.iter().find(|(n, _)| n.starts_with("panic-")).unwrap();
    assert_eq!(panic.1, b"!");
    let unlocated = saved
        .iter()
        .find(|(n, _)| n.starts_with("unlocated-"))
        .unwrap();
    assert_eq!(unlocated.1, b"?");
    assert!(
        out.contains(&t.path().join("selftest").display().to_string()),
        "{out}"
    );
}
