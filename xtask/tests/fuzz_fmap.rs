//! The famfs protocol fuzzer through the real binary on the famfs V10
//! kernel (cached): a 40-second run with a fixed seed must find what V10's
//! weak spots make of generated fmaps, minimise each finding, and write
//! cases that `test-vm --cases` replays (and that fail as the finding
//! says); bad arguments are refused before anything boots.

mod common;
use common::{text, xtask};

#[test]
fn a_short_run_finds_minimises_and_writes_replayable_cases() {
    let t = tempfile::tempdir().unwrap();
    let res = t.path().join("fuzz");
    let r = res.display().to_string();
    // Nothing known: every finding is new (exit 1).
    let none = t.path().join("none.yaml");
    std::fs::write(&none, "# nothing known\n").unwrap();
    let n = none.display().to_string();
    let out = xtask(&[
        "fuzz",
        "fmap",
        "--kernel",
        "famfs-v10",
        "--duration",
        "30s",
        "--seed",
        "5",
        "--known",
        &n,
        "--results",
        &r,
    ]);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{err}");
    assert!(
        stdout.starts_with("fmap fuzzer: famfs-v10 (profile v10), seed 5, "),
        "{stdout}"
    );
    assert!(err.contains("fuzz: finding: "), "{err}");
    assert!(
        stdout.contains("NEW: not in kernel-configs/fuzz-known.yaml"),
        "{stdout}"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("stats.json")).unwrap()).unwrap();
    assert!(stats["files"].as_u64().unwrap() > 20, "{stats}");
    let reached = stats["reached"].as_object().unwrap();
    let hit = reached.values().filter(|v| v.as_u64() > Some(0)).count();
    assert!(hit >= 8, "model rules reached: {reached:?}");
    let findings = stats["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    assert_eq!(stats["new"].as_array().unwrap().len(), findings.len());
    // Each finding is written out and replays as a case that fails as
    // long as the finding exists.
    let replay = res.join("replay");
    let cases = std::fs::read_dir(replay.join("fuzz"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".out")
        })
        .count();
    assert_eq!(cases, findings.len());
    let rep = replay.display().to_string();
    let runs = t.path().join("replay-runs").display().to_string();
    let out = xtask(&[
        "test-vm",
        "--kernel",
        "famfs-v10",
        "--cases",
        &rep,
        "--results",
        &runs,
    ]);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(101), "{stdout}\n{err}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path().join("replay-runs/latest/summary.json")).unwrap(),
    )
    .unwrap();
    let replayed: Vec<&serde_json::Value> = summary["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("fuzz/"))
        .collect();
    assert_eq!(replayed.len(), findings.len());
    // A finding that showed on a file of its own fails its replay.
    for (f, c) in findings.iter().zip(&replayed) {
        if f["alone"] == true {
            assert_eq!(c["outcome"], "fail", "{}: {c}", f["class"]);
        }
    }

    // The corpus is read back; no time: no finding, exit 0.
    let out = xtask(&[
        "fuzz",
        "fmap",
        "--kernel",
        "famfs-v10",
        "--duration",
        "0s",
        "--seed",
        "5",
        "--results",
        &r,
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let kept = std::fs::read_dir(res.join("corpus")).unwrap().count();
    assert!(kept > 0);
    assert!(err.contains(&format!("({kept} inputs)")), "{err}");
}

#[test]
fn bad_arguments_are_refused_before_anything_boots() {
    let out = xtask(&["fuzz", "fmap", "--duration", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("soon"), "{}", text(&out.stderr));
    let out = xtask(&["fuzz", "fmap", "--partition", "3/2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--partition takes count:K/N or hash:K/N"),
        "{}",
        text(&out.stderr)
    );
    let out = xtask(&["fuzz", "fmap", "--batch", "0"]);
    assert_eq!(out.status.code(), Some(2));
    // A known-findings list that is not one: its file and line.
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("known.yaml");
    std::fs::write(&bad, "- class: x\n  kernels: [famfs-v10]\n  colour: red\n").unwrap();
    let out = xtask(&["fuzz", "fmap", "--known", &bad.display().to_string()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("known.yaml:3"), "{err}");
}
