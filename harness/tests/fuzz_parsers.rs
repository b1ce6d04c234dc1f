//! The parsers cannot panic: every fuzz target (`famfs_harness::fuzz`) for
//! a few seconds from a fixed seed, the inputs that once broke a parser
//! (`tests/fuzz-regressions/<target>/`), and the driver itself, which must
//! catch a panic and an error that does not say where it is.
//! `FUZZ_SECS` changes the time per target, `FUZZ_SEED` the seed.

use famfs_harness::fuzz::{self, Budget, Finding, FindingKind, Rng};
use std::path::Path;
use std::time::Duration;

fn secs() -> f64 {
    std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6.0)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed)
}

fn show(f: &Finding) -> String {
    let input = String::from_utf8_lossy(&f.input);
    let cut: String = input.chars().take(600).collect();
    format!(
        "{:?}: {}\n  input ({} bytes): {cut:?}",
        f.kind,
        f.message,
        f.input.len()
    )
}

fn run(name: &str) {
    let t = fuzz::target(name).unwrap_or_else(|| panic!("no target {name}"));
    let mut rng = Rng::new(seed());
    let st = (t.run)(&mut rng, &Budget::time(Duration::from_secs_f64(secs())))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    eprint!("{}", fuzz::render(std::slice::from_ref(&st)));
    assert!(st.inputs > 0, "{name}: no input ran");
    let shown: Vec<String> = st.findings.iter().map(show).collect();
    assert!(
        !st.failed(),
        "{name}: {} panics, {} errors without file:line\n{}",
        st.panics,
        st.unlocated,
        shown.join("\n")
    );
}

#[test]
fn case_headers() {
    run("case");
}

#[test]
fn scenarios() {
    run("scenario");
}

#[test]
fn named_kernels() {
    run("named-kernel");
}

#[test]
fn matrices() {
    run("matrix");
}

#[test]
fn kconfig_text() {
    run("kconfig");
}

#[test]
fn fmap_replies() {
    run("fmap");
}

#[test]
fn kernel_logs() {
    run("kmsg");
}

#[test]
fn summaries() {
    run("summary");
}

#[test]
fn topologies() {
    run("topologies");
}

#[test]
fn image_specs() {
    run("image");
}

#[test]
fn every_target_is_tested_here() {
    let src = include_str!("fuzz_parsers.rs");
    for n in fuzz::names() {
        assert!(
            src.contains(&format!("run(\"{n}\")")),
            "target {n} has no test"
        );
    }
}

#[test]
fn regression_inputs_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let (n, bad) = fuzz::replay_dir(&dir).unwrap();
    let shown: Vec<String> = bad
        .iter()
        .map(|(p, f)| format!("{}: {}", p.display(), show(f)))
        .collect();
    assert!(bad.is_empty(), "{}", shown.join("\n"));
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

/// The `selftest` target panics on `!` and forgets the line on `?`: the
/// driver must count both and keep one input of each.
#[test]
fn the_driver_catches_panics_and_errors_without_a_line() {
    let budget = Budget {
        duration: None,
        inputs: Some(400),
    };
    let t = fuzz::target("selftest").unwrap();
    assert!(
        !fuzz::names().contains(&"selftest"),
        "a full run takes selftest"
    );
    let st = (t.run)(&mut Rng::new(1), &budget).unwrap();
    assert_eq!(st.inputs, 400);
    assert!(
        st.panics > 50 && st.unlocated > 50 && st.rejected > 50,
        "{st:?}"
    );
    assert!(st.failed());
    let kinds: Vec<FindingKind> = st.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::Panic) && kinds.contains(&FindingKind::Unlocated));
    let panic = st
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Panic)
        .unwrap();
    assert!(panic.message.contains("falls over"), "{}", panic.message);
    assert!(panic.message.contains("selftest.rs:"), "{}", panic.message);
    assert_eq!(panic.input, b"!");
    assert_eq!(st.distinct_errors, 2);
    // Replay of one input.
    assert!((t.replay)(b"b").unwrap().is_none());
    assert!((t.replay)(b"!").unwrap().is_some());
    assert!((t.replay)(b"?").unwrap().is_some());
}
