//! The kernel-input options through the real `xtask` binary: each bad input
//! gets one clear error (exit status 2) before anything is fetched or built,
//! and a named kernel whose fixture is absent reports its cases as not run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xtask(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args).env("CI", "1");
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.output().expect("running xtask")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn bad_kernel_inputs_are_one_clear_error_each() {
    let t = tempfile::tempdir().unwrap();
    let series = t.path().join("series");
    std::fs::write(&series, "# nothing yet\n").unwrap();
    let missing = t.path().join("missing-series");
    let no_repo = tempfile::tempdir().unwrap();
    let not_kernel = tempfile::tempdir().unwrap();
    std::fs::write(not_kernel.path().join("README"), "x").unwrap();
    git(not_kernel.path(), &["init", "-q"]);
    git(not_kernel.path(), &["add", "-A"]);
    git(not_kernel.path(), &["commit", "-qm", "x"]);
    let s = |p: &PathBuf| p.display().to_string();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--kernel-patches".into(), s(&missing)],
            format!("patch series {} does not exist", missing.display()),
        ),
        (
            vec!["--kernel-patches".into(), s(&series)],
            format!("{}: empty series", series.display()),
        ),
        (
            vec!["--kernel".into(), "no-such-kernel".into()],
            "unknown kernel `no-such-kernel`".into(),
        ),
        (
            vec![
                "--kernel-git".into(),
                s(&no_repo.path().to_path_buf()),
                "--ref".into(),
                "HEAD".into(),
            ],
            "is not a git repository".into(),
        ),
        (
            vec![
                "--kernel-git".into(),
                s(&not_kernel.path().to_path_buf()),
                "--ref".into(),
                "nope".into(),
            ],
            "ref `nope` does not exist".into(),
        ),
        (
            vec![
                "--kernel-git".into(),
                s(&not_kernel.path().to_path_buf()),
                "--ref".into(),
                "HEAD".into(),
            ],
            "is not a kernel tree".into(),
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["kernel", "--check"];
        a.extend(args.iter().map(String::as_str));
        let o = xtask(&a, None);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {e}");
        assert!(e.contains(&want), "{a:?}: wanted `{want}` in:\n{e}");
        assert_eq!(e.matches("error:").count(), 1, "{a:?}: one error: {e}");
    }
    // Contradictory choices are refused by the command line itself.
    let o = xtask(
        &[
            "kernel",
            "--check",
            "--kernel",
            "famfs-v10",
            "--fragments",
            "base",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

#[test]
fn a_patch_that_does_not_apply_names_patch_file_and_hunk() {
    // A series for some other tree: it cannot apply to 7.3.4's Makefile.
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("0001-bogus.patch"),
        "--- a/Makefile\n+++ b/Makefile\n@@ -1,3 +1,3 @@\n this line is not there\n-nor this one\n+but this one\n context\n",
    )
    .unwrap();
    std::fs::write(t.path().join("series"), "0001-bogus.patch\n").unwrap();
    let o = xtask(
        &[
            "kernel",
            "--check",
            "--kernel-patches",
            &t.path().join("series").display().to_string(),
        ],
        None,
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("patch 1/1 0001-bogus.patch")
            && e.contains("Makefile: hunk #1 FAILED")
            && e.contains("no patch applied before it"),
        "{e}"
    );
}

#[test]
fn a_named_kernel_without_its_fixture_reports_every_case_not_run() {
    // A named kernel (given by path) whose series is not there: the run
    // writes results, lists every case as not run with the reason, and
    // exits 0 without building or booting anything.
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("gone.yaml"),
        "description: a series that is not here\nbase: debian\npatches: target/no-such-fixture/series\nfragments: [default]\n",
    )
    .unwrap();
    let results = t.path().join("results");
    let o = xtask(
        &[
            "test-vm",
            "--kernel",
            &t.path().join("gone.yaml").display().to_string(),
            "--results",
            &results.display().to_string(),
            "dax/001",
        ],
        None,
    );
    let (out, e) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{e}");
    assert!(
        out.contains("dax/001") && out.contains("ignored") && out.contains("not available here"),
        "{out}"
    );
    let run = std::fs::read_dir(results.join("runs"))
        .unwrap()
        .flatten()
        .next()
        .expect("a run directory")
        .path();
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(
        summary.contains("no-such-fixture/series does not exist"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert!(
        junit.contains("skipped") && junit.contains("dax/001"),
        "{junit}"
    );
}
