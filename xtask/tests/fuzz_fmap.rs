//! The famfs protocol fuzzer through the real binary on the famfs V10
//! kernel (cached): a short run with a fixed seed must find what V10's
//! weak spots make of generated fmaps, minimise each finding, and write
//! cases that `test-vm --cases` replays (and that fail as the finding
//! says); bad arguments are refused before anything boots.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("CI", "1")
        .output()
        .expect("running xtask")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_short_run_finds_minimises_and_writes_replayable_cases() {
    let t = tempfile::tempdir().unwrap();
    let res = t.path().join("fuzz");
    let r = res.display().to_string();
    let out = xtask(&[
        "fuzz",
        "fmap",
        "--kernel",
        "famfs-v10",
        "--duration",
        "75s",
        "--seed",
        "5",
        "--results",
        &r,
    ]);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    // Findings: exit 1.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{err}");
    assert!(
        stdout.starts_with("fmap fuzzer: famfs-v10 (profile v10), seed 5, "),
        "{stdout}"
    );
    assert!(err.contains("fuzz: finding: "), "{err}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("stats.json")).unwrap()).unwrap();
    assert!(stats["files"].as_u64().unwrap() > 20, "{stats}");
    let reached = stats["reached"].as_object().unwrap();
    let hit = reached.values().filter(|v| v.as_u64() > Some(0)).count();
    assert!(hit >= 8, "model rules reached: {reached:?}");
    let findings = stats["findings"].as_array().unwrap();
    let classes: Vec<&str> = findings
        .iter()
        .map(|f| f["class"].as_str().unwrap())
        .collect();
    // V10 accepts what a correct kernel refuses: the generator breaks
    // fields towards 2^63 and 2^64 in every run of this length.
    assert!(
        classes
            .iter()
            .any(|c| c.starts_with("open ok where a correct kernel refuses: ")),
        "{classes:?}"
    );
    for f in findings {
        assert!(f["count"].as_u64() >= Some(1));
    }
    // Each finding is written out and replays as a case.
    let replay = res.join("replay");
    let n = std::fs::read_dir(replay.join("fuzz"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".out")
        })
        .count();
    assert_eq!(n, findings.len());
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
    // A finding is a failure of the kernel until it is listed or fixed.
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
    let failed = replayed.iter().filter(|c| c["outcome"] == "fail").count();
    // A finding seen only beside other files may pass alone; the rest fail.
    let alone = findings.iter().filter(|f| f["alone"] == true).count();
    assert!(failed >= alone.min(1) && failed > 0, "{summary}");
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
}
