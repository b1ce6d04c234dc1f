//! `cargo xtask new-case` and `cargo xtask bless` through the real binary,
//! on a scratch cases directory and a run directory written by the
//! harness's own results code.

mod common;
use common::xtask;

use famfs_harness::contract::{CaseExit, CaseReport};
use famfs_harness::judge::verdict;
use famfs_harness::report::results::{RunDir, Summary};
use std::path::Path;
use std::process::Command;

/// A run of `cases` in which each trial printed `outputs[id]`, judged as
/// the harness judges it.
fn fake_run(cases: &Path, run_root: &Path, outputs: &[(&str, &str)]) -> std::path::PathBuf {
    let all = famfs_harness::plan::case::discover(cases).unwrap();
    let dir = RunDir::create(run_root, "r1").unwrap();
    let mut summary = Summary {
        run_id: "r1".into(),
        kernel: serde_json::json!({}),
        backend: famfs_harness::vm::Backend::Qemu,
        accel: None,
        profile: "v10".into(),
        boots: vec![],
        cases: vec![],
        counts: Default::default(),
        duration_ms: 0,
    };
    for (id, out) in outputs {
        let c = all.iter().find(|c| c.id == *id).unwrap();
        let r = CaseReport::new(id, CaseExit::Exited { code: 0 }, out.to_string());
        let v = verdict::from_report(c, &r, &[]);
        summary
            .cases
            .push(dir.write_case(c, &v, Some(&r), Some(1), &[]).unwrap());
    }
    dir.write_summary(&summary).unwrap();
    dir.root
}

#[test]
fn new_case_then_bless_its_output() {
    let t = tempfile::tempdir().unwrap();
    let cases = t.path().join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::write(cases.join("common.sh"), "").unwrap();
    let o = xtask(&[
        "new-case",
        "famfs",
        "--description",
        "a check",
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("cases/famfs/001\n") && out.contains("cases/famfs/001.out"),
        "{out}"
    );
    let o = xtask(&["new-case", "famfs", "--cases", cases.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("famfs/002"));
    let o = xtask(&["new-case", "Bad", "--cases", cases.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a case group name"));

    // famfs/001 printed something new: bless takes it; famfs/002 passed.
    let run = fake_run(
        &cases,
        &t.path().join("results"),
        &[("famfs/001", "new output\n"), ("famfs/002", "")],
    );
    let o = xtask(&[
        "bless",
        "--run",
        run.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("001.out <- famfs/001"));
    assert_eq!(
        std::fs::read_to_string(cases.join("famfs/001.out")).unwrap(),
        "new output\n"
    );
    assert_eq!(
        std::fs::read_to_string(cases.join("famfs/002.out")).unwrap(),
        ""
    );
    // Nothing left to bless; an unknown trial is an error.
    let run = fake_run(
        &cases,
        &t.path().join("results2"),
        &[("famfs/001", "new output\n")],
    );
    let o = xtask(&[
        "bless",
        "--run",
        run.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to bless"));
    let o = xtask(&[
        "bless",
        "famfs/009",
        "--run",
        run.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("famfs/009: no such trial"));
}

#[test]
fn parametrised_trials_share_their_golden_file_only_when_they_agree() {
    let t = tempfile::tempdir().unwrap();
    let cases = t.path().join("cases");
    std::fs::create_dir_all(cases.join("g")).unwrap();
    std::fs::write(cases.join("common.sh"), "").unwrap();
    std::fs::write(
        cases.join("g/001"),
        "# ---\n# description: d\n# params: [{name: a}, {name: b}]\n# ---\n",
    )
    .unwrap();
    std::fs::write(cases.join("g/001.out"), "old\n").unwrap();
    let run = fake_run(
        &cases,
        &t.path().join("r"),
        &[("g/001[a]", "x\n"), ("g/001[b]", "y\n")],
    );
    let o = xtask(&[
        "bless",
        "--run",
        run.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("differ"),
        "{o:?}"
    );
    assert_eq!(
        std::fs::read_to_string(cases.join("g/001.out")).unwrap(),
        "old\n"
    );
    let run = fake_run(
        &cases,
        &t.path().join("r2"),
        &[("g/001[a]", "x\n"), ("g/001[b]", "x\n")],
    );
    let o = xtask(&[
        "bless",
        "g/001",
        "--run",
        run.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(cases.join("g/001.out")).unwrap(),
        "x\n"
    );
}

#[test]
fn new_case_writes_a_famfs_case_that_loads_and_serves_a_valid_scenario() {
    let t = tempfile::tempdir().unwrap();
    let cases = t.path().join("cases");
    std::fs::create_dir_all(cases.join("famfs")).unwrap();
    // The checkout's helpers: the script runs up to its scenario below.
    let common = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/common.sh");
    std::fs::copy(&common, cases.join("common.sh")).unwrap();
    // A plain case first: the famfs one takes the next number.
    let o = xtask(&["new-case", "famfs", "--cases", cases.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = xtask(&[
        "new-case",
        "famfs",
        "--template",
        "famfs",
        "--description",
        "/f reads through mmap",
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("cases/famfs/002\n") && out.contains("cases/famfs/002.out"),
        "{out}"
    );
    let script = cases.join("famfs/002");
    let c = famfs_harness::plan::case::load(&cases, &script).unwrap();
    assert_eq!(c.id, "famfs/002");
    assert_eq!(c.meta.description, "/f reads through mmap");
    assert!(c.in_group("famfs"), "{:?}", c.meta.groups);
    assert_eq!(c.meta.requires.pmem.as_deref(), Some("256M"));
    assert!(c.meta.requires.kconfig.iter().any(|k| k == "DEV_DAX_FSDEV"));
    let text = std::fs::read_to_string(&script).unwrap();
    for helper in ["_famfs_begin", "_famfsd_start scenario.yaml", "_expect "] {
        assert!(text.contains(helper), "no {helper} in\n{text}");
    }
    assert_eq!(
        std::fs::read_to_string(cases.join("famfs/002.out")).unwrap(),
        "/f through mmap: as the kernel must\n"
    );
    // It is among the checkout's kind of cases: discovered with the rest.
    let all = famfs_harness::plan::case::discover(&cases).unwrap();
    assert!(all.iter().any(|c| c.id == "famfs/002"));

    let st = Command::new("sh").arg("-n").arg(&script).status().unwrap();
    assert!(st.success(), "sh -n {}", script.display());
    // The scenario it writes resolves, and a correct kernel opens /f.
    let scratch = t.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let st = Command::new("sh")
        .arg(&script)
        .current_dir(&scratch)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("FH_SCENARIO_ONLY", "1")
        .env("FH_COMMON", cases.join("common.sh"))
        .env("FH_DAX", "/dev/dax0.0")
        .status()
        .unwrap();
    assert!(st.success(), "the script failed writing its scenario");
    for profile in ["v10", "next"] {
        let cfg = famfs_harness::server::scenario::Config::load(
            &scratch.join("scenario.yaml"),
            Some(profile),
        )
        .unwrap();
        let e = famfs_harness::server::expect::open_expectation(cfg, "/f").unwrap();
        assert_eq!(e.token(), "ok", "{profile}: {}", e.why);
    }

    // Only the templates there are.
    let o = xtask(&[
        "new-case",
        "famfs",
        "--template",
        "nope",
        "--cases",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("plain, famfs"),
        "{o:?}"
    );
}
