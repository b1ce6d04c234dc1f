//! `cargo xtask bisect --kernel-git` on a real kernel history: Debian's
//! linux-source-7.3 as the first commit, the famfs V10 series
//! (../shared/kernels/famfs-v10-7.3) as one commit per patch, and a
//! regression of the tests' own (tests/patches/dax-page-aligned-mappings.patch)
//! planted after the second patch. The bisect must name the planted
//! commit, having judged the commit before it good. Every step after the
//! first is a build of that commit seeded from the closest one built
//! before.
//!
//! Nightly, not in `.ci/run`: the first build of the history is a cold
//! kernel build (docs/reproduce.md has the times). Run it with
//! `cargo test -p xtask --test bisect_kernel -- --ignored`. The repository
//! is kept in target/famfs-harness/bisect-kernel, so a second run reuses
//! its exported trees and builds.

mod common;
use common::{root, text, xtask};
use std::path::{Path, PathBuf};
use std::process::Command;

fn git(repo: &Path, work_tree: Option<&Path>, args: &[&str]) -> String {
    let mut c = Command::new("git");
    c.arg("--git-dir").arg(repo.join(".git"));
    if let Some(w) = work_tree {
        c.arg("--work-tree").arg(w).current_dir(w);
    }
    let o = c
        .args([
            "-c",
            "user.name=harness",
            "-c",
            "user.email=harness@localhost",
        ])
        .args(["-c", "core.compression=0"])
        .args(args)
        .output()
        .expect("running git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Commit `patch` on the index alone (no checkout of the tree is needed),
/// with the patch's subject line as the message.
fn commit_patch(repo: &Path, patch: &Path) -> String {
    git(
        repo,
        None,
        &["apply", "--cached", &patch.display().to_string()],
    );
    let text = std::fs::read_to_string(patch).unwrap();
    let subject = text
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .or_else(|| text.lines().next())
        .unwrap();
    // `[PATCH 3/8] famfs_fuse: ...` -> `famfs_fuse: ...`
    let subject = match subject.strip_prefix('[') {
        Some(rest) => rest.split_once("] ").map_or(subject, |(_, s)| s),
        None => subject,
    };
    git(repo, None, &["commit", "-q", "-m", subject]);
    git(repo, None, &["rev-parse", "HEAD"])
}

/// The history, made once: base, V10 patches 1-2, the planted regression,
/// V10 patches 3-8. Returns the repository, the base commit, the commit
/// before the planted one, the planted commit and the tip.
fn history() -> (PathBuf, String, String, String, String) {
    let repo = root().join("target/famfs-harness/bisect-kernel/repo");
    let done = repo.join("commits.txt");
    if let Ok(t) = std::fs::read_to_string(&done) {
        let c: Vec<&str> = t.split_whitespace().collect();
        if c.len() == 4 {
            return (repo, c[0].into(), c[1].into(), c[2].into(), c[3].into());
        }
    }
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(&repo).unwrap();
    let cache = famfs_harness::base::cache::Cache::open(None).unwrap();
    let src = famfs_harness::kernel::source::fetch_debian(
        &cache,
        famfs_harness::kernel::source::DEFAULT_PACKAGE,
        &mut |l| eprintln!("{l}"),
    )
    .unwrap();
    let t = std::time::Instant::now();
    git(&repo, None, &["init", "-q"]);
    // The tree's files are read in place: Debian's source is not touched.
    git(&repo, Some(&src.dir), &["add", "-A", "-f"]);
    git(
        &repo,
        None,
        &[
            "commit",
            "-q",
            "-m",
            "Linux 7.3.4 (Debian linux-source-7.3)",
        ],
    );
    let base = git(&repo, None, &["rev-parse", "HEAD"]);
    let series = root().join("../shared/kernels/famfs-v10-7.3");
    let patches: Vec<PathBuf> = std::fs::read_to_string(series.join("series"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| series.join(l.trim()))
        .collect();
    assert_eq!(patches.len(), 8, "the V10 series has 8 patches");
    let (mut before, mut planted, mut tip) = (String::new(), String::new(), String::new());
    for (i, p) in patches.iter().enumerate() {
        tip = commit_patch(&repo, p);
        if i == 1 {
            before = tip.clone();
            planted = commit_patch(
                &repo,
                &root().join("xtask/tests/patches/dax-page-aligned-mappings.patch"),
            );
        }
    }
    eprintln!(
        "bisect-kernel: history of 10 commits made in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    std::fs::write(&done, format!("{base} {before} {planted} {tip}\n")).unwrap();
    (repo, base, before, planted, tip)
}

#[test]
#[ignore = "nightly: a cold kernel build and four seeded ones (about 13 min here)"]
fn bisect_names_the_planted_commit_in_the_v10_history() {
    if !root()
        .join("../shared/kernels/famfs-v10-7.3/series")
        .exists()
    {
        panic!("../shared/kernels/famfs-v10-7.3 is missing: this test needs the V10 series");
    }
    let (repo, base, before, planted, tip) = history();
    let t = std::time::Instant::now();
    let repo_arg = repo.display().to_string();
    let o = xtask(&[
        "bisect",
        "--kernel-git",
        &repo_arg,
        "--good",
        &base,
        "--bad",
        &tip,
        "dax/001",
    ]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    eprintln!("{err}\n{out}");
    eprintln!(
        "bisect-kernel: bisect took {:.0} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    // Each step's test output comes first; the answer is the last lines.
    let answer = format!(
        "first bad commit: {planted} dax: check mappings against the page size (a planted regression)"
    );
    assert!(out.lines().any(|l| l == answer), "{out}");
    // No skipped commit sits between the last good one and the planted one.
    assert!(!out.contains("or one of the skipped commits"), "{out}");
    // Each end judged as it is, the planted commit bad, the V10 commit
    // before it good: the answer rests on a step of each kind.
    let steps: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("[harness] bisect step"))
        .collect();
    let step = |commit: &str, verdict: &str| {
        assert!(
            steps
                .iter()
                .any(|l| l.contains(&commit[..12]) && l.contains(verdict)),
            "no step judged {commit} {verdict}:\n{}",
            steps.join("\n")
        )
    };
    step(&tip, "-> bad (failed)");
    step(&base, "-> good (passed)");
    step(&planted, "-> bad (failed)");
    step(&before, "-> good (passed)");
}
