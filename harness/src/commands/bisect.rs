//! `cargo xtask bisect`: the first commit between a good and a bad one at
//! which a case fails the way it fails at the bad end, the harness judging
//! each step. The commits are a kernel tree's (`--kernel-git`: each step
//! builds that commit, incrementally from the last) or a cases tree's
//! (`--cases-git`: a case or daemon regression on a fixed kernel).
//! good = the case passes; bad = it fails with the bad end's first report
//! title (or, without reports, fails at all); skip = the kernel does not
//! build, the case is not run, or it fails another way.

use crate::kernel::resolve::KernelChoice;
use crate::plan::select::Selection;
use crate::report::results::Summary;
use crate::run::Options;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which tree the commits belong to.
#[derive(Debug, Clone)]
pub enum Subject {
    Kernel(PathBuf),
    Cases(PathBuf),
}

impl Subject {
    fn repo(&self) -> &Path {
        match self {
            Subject::Kernel(r) | Subject::Cases(r) => r,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Good,
    Bad,
    Skip,
}

/// One judged commit.
#[derive(Debug, Clone)]
pub struct Judged {
    pub commit: String,
    pub subject: String,
    pub step: Step,
    pub why: String,
}

/// The answer: the first bad commit, and every step on the way.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub first_bad: Judged,
    pub steps: Vec<Judged>,
    /// Skipped commits right before the first bad one: it may be any of
    /// them.
    pub maybe: Vec<String>,
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The full id of a ref that names a commit, or an error saying so.
fn commit(repo: &Path, r: &str) -> Result<String> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{r}^{{commit}}"),
        ],
    )
    .ok()
    .filter(|s| !s.is_empty())
    .with_context(|| format!("{r}: not a commit in {}", repo.display()))
}

/// Run the case at one commit and judge it against `want` (the bad end's
/// failure signature; None while judging the bad end itself).
fn judge(
    base: &Options,
    subject: &Subject,
    commit: &str,
    case: &str,
    want: Option<&str>,
    scratch: &Path,
) -> (Step, String) {
    let mut opts = base.clone();
    opts.results_root = scratch.join("runs-of").join(&commit[..12]);
    let export = scratch.join("trees").join(&commit[..12]);
    match subject {
        Subject::Kernel(repo) => {
            opts.kernel.choice = KernelChoice::Git {
                repo: repo.clone(),
                rev: commit.into(),
            }
        }
        Subject::Cases(repo) => {
            let ok = std::fs::create_dir_all(&export).is_ok()
                && Command::new("sh")
                    .arg("-c")
                    .arg("git -C \"$1\" archive \"$2\" | tar -x -C \"$3\"")
                    .args([
                        "sh",
                        &repo.display().to_string(),
                        commit,
                        &export.display().to_string(),
                    ])
                    .status()
                    .is_ok_and(|s| s.success());
            if !ok {
                return (Step::Skip, "the commit's tree could not be exported".into());
            }
            let cases = export.join("cases");
            opts.cases = Some(if cases.is_dir() {
                cases
            } else {
                export.clone()
            });
        }
    }
    let sel = Selection {
        filters: vec![case.into()],
        exact: true,
        ..Default::default()
    };
    let cases = match crate::plan::select::select(&opts.cases_dir(), &sel) {
        Ok(c) => c,
        Err(e) => return (Step::Skip, format!("no such case here: {e:#}")),
    };
    let args = libtest_mimic::Arguments {
        quiet: true,
        ..Default::default()
    };
    let run = match crate::run::prepare(&opts) {
        Ok(p) => crate::run::trials(p, cases, &args),
        Err(e) => return (Step::Skip, format!("the kernel did not build: {e:#}")),
    };
    let s: Summary = match run {
        Ok(o) => o.summary,
        Err(e) => return (Step::Skip, format!("the run failed: {e:#}")),
    };
    let Some(r) = s.cases.iter().find(|r| r.id == case) else {
        return (Step::Skip, "the case has no result".into());
    };
    use crate::judge::verdict::Outcome as O;
    let sig = r
        .reports
        .first()
        .map(|k| k.title.clone())
        .unwrap_or_else(|| "failed".into());
    match (&r.outcome, want) {
        (O::Pass, _) => (Step::Good, "passed".into()),
        (O::NotRun, _) => (Step::Skip, format!("not run: {}", r.reasons.join("; "))),
        (o, None) if o.is_failure() => (Step::Bad, sig),
        (o, Some(w)) if o.is_failure() && sig == w => (Step::Bad, sig),
        (_, _) => (Step::Skip, format!("failed another way: {sig}")),
    }
}

/// Bisect `good..bad` for `case`, logging each step through `log`.
pub fn bisect(
    base: &Options,
    subject: &Subject,
    good: &str,
    bad: &str,
    case: &str,
    log: &mut dyn FnMut(&Judged),
) -> Result<Outcome> {
    let repo = subject.repo();
    let (g, b) = (commit(repo, good)?, commit(repo, bad)?);
    if git(repo, &["merge-base", "--is-ancestor", &g, &b]).is_err() {
        bail!("--good {good} is not an ancestor of --bad {bad}");
    }
    let list = git(
        repo,
        &[
            "rev-list",
            "--ancestry-path",
            "--reverse",
            &format!("{g}..{b}"),
        ],
    )?;
    let commits: Vec<String> = list.lines().map(str::to_string).collect();
    if commits.is_empty() {
        bail!("--good {good} and --bad {bad} are the same commit");
    }
    let scratch = tempfile::Builder::new().prefix("fh-bisect-").tempdir()?;
    let mut steps = Vec::new();
    let mut judge_one = |c: &str, want: Option<&str>, steps: &mut Vec<Judged>| -> Judged {
        let (step, why) = judge(base, subject, c, case, want, scratch.path());
        let j = Judged {
            commit: c.to_string(),
            subject: git(repo, &["log", "-1", "--format=%s", c]).unwrap_or_default(),
            step,
            why,
        };
        log(&j);
        steps.push(j.clone());
        j
    };
    let bad_end = judge_one(&b, None, &mut steps);
    if bad_end.step != Step::Bad {
        bail!(
            "--bad {bad}: the case does not fail there ({})",
            bad_end.why
        );
    }
    let want = bad_end.why.clone();
    let good_end = judge_one(&g, Some(&want), &mut steps);
    if good_end.step != Step::Good {
        bail!(
            "--good {good}: the case does not pass there ({})",
            good_end.why
        );
    }
    // Invariant: everything before `lo` is good or skipped, `hi` is bad.
    let (mut lo, mut hi) = (0usize, commits.len() - 1);
    let mut skipped = std::collections::BTreeSet::new();
    while lo < hi {
        let candidates: Vec<usize> = (lo..hi).filter(|i| !skipped.contains(i)).collect();
        let Some(&mid) = candidates.get(candidates.len() / 2) else {
            break;
        };
        match judge_one(&commits[mid], Some(&want), &mut steps).step {
            Step::Good => lo = mid + 1,
            Step::Bad => hi = mid,
            Step::Skip => {
                skipped.insert(mid);
            }
        }
    }
    let first_bad = steps
        .iter()
        .rev()
        .find(|j| j.commit == commits[hi] && j.step == Step::Bad)
        .cloned()
        .unwrap_or_else(|| Judged {
            commit: commits[hi].clone(),
            subject: git(repo, &["log", "-1", "--format=%s", &commits[hi]]).unwrap_or_default(),
            step: Step::Bad,
            why: want.clone(),
        });
    let maybe = (lo..hi)
        .filter(|i| skipped.contains(i))
        .map(|i| commits[i].clone())
        .collect();
    Ok(Outcome {
        first_bad,
        steps,
        maybe,
    })
}

/// `cargo xtask bisect`: each step on stderr, the first bad commit on
/// stdout.
pub fn main(subject: &Subject, good: &str, bad: &str, case: &str) -> Result<i32> {
    let opts = Options::new(&crate::image::guest_program::workspace_root());
    let mut n = 0;
    let out = bisect(&opts, subject, good, bad, case, &mut |j| {
        n += 1;
        let what = match j.step {
            Step::Good => "good",
            Step::Bad => "bad",
            Step::Skip => "skip",
        };
        eprintln!(
            "[harness] bisect step {n}: {} {} -> {what} ({})",
            &j.commit[..12],
            j.subject,
            j.why
        );
    })?;
    let f = &out.first_bad;
    println!("first bad commit: {} {}", f.commit, f.subject);
    println!("  {case}: {}", f.why);
    if !out.maybe.is_empty() {
        println!(
            "  (or one of the skipped commits before it: {})",
            out.maybe.join(", ")
        );
    }
    Ok(0)
}
