//! Cases as libtest-mimic trials: the usual test CLI (`--list`, `--exact`,
//! `--skip`, `--format`, exit status) over results that come from a VM.
//!
//! The run streams its results (`run::start`); each trial waits for its
//! case's result, so results print as the guest produces them. This module
//! only consumes the stream: it never drives the run.

use super::results::{run_id, CaseResult, RunDir, Streamed, Summary};
use crate::judge::verdict::Outcome;
use crate::plan::case::Case;
use anyhow::Result;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct Board {
    results: HashMap<String, CaseResult>,
    finished: Option<Result<(), String>>,
}

fn to_trial_outcome(r: &CaseResult, run_dir: &str) -> Result<Completion, Failed> {
    match r.outcome {
        Outcome::Pass | Outcome::ExpectedFail | Outcome::KnownFail => Ok(Completion::Completed),
        Outcome::NotRun => Ok(Completion::ignored_with(format!(
            "notrun: {}",
            r.reasons.join("; ")
        ))),
        Outcome::Error => Err(format!(
            "harness error: {}\nfiles: {}/{}",
            r.reasons.join("\n"),
            run_dir,
            r.dir
        )
        .into()),
        Outcome::Fail => {
            let mut msg = r.reasons.join("\n");
            let diff = std::path::Path::new(run_dir)
                .join(&r.dir)
                .join("output.diff");
            if let Ok(d) = std::fs::read_to_string(&diff) {
                msg.push('\n');
                msg.push_str(&d);
            }
            msg.push_str(&format!("\nfiles: {}/{}", run_dir, r.dir));
            Err(msg.into())
        }
    }
}

/// List the trials without building or booting anything.
pub fn list(cases: &[Case], args: &Arguments) -> libtest_mimic::Conclusion {
    let trials = cases
        .iter()
        .map(|c| Trial::test(c.id.clone(), || Ok(())))
        .collect();
    let mut args = output_args(args);
    args.list = true;
    libtest_mimic::run(&args, trials)
}

/// What a run of trials left: the test list's conclusion, the summary
/// (always written, also when the run stopped early), where the results
/// are, and the harness error that stopped the run, if one did.
pub struct RunOutcome {
    pub conclusion: libtest_mimic::Conclusion,
    pub summary: Summary,
    pub dir: PathBuf,
    pub error: Option<String>,
}

/// Show a run's results as trials, in `order`, each as soon as it arrives
/// on `results`. `args` carries output options (format, color, quiet);
/// filtering was done by `plan::select`.
pub fn present(
    order: Vec<String>,
    results: Receiver<Streamed>,
    run_dir: &Path,
    args: &Arguments,
) -> libtest_mimic::Conclusion {
    let mut args = output_args(args);
    args.test_threads = Some(1); // keep VM order, stream as results arrive
    let board = Arc::new((Mutex::new(Board::default()), Condvar::new()));
    let b2 = board.clone();
    // Moves the stream onto the board the trials wait on.
    std::thread::spawn(move || {
        let (m, cv) = &*b2;
        for s in results {
            let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
            match s {
                Streamed::Result(r) => {
                    g.results.insert(r.id.clone(), r);
                }
                Streamed::End(e) => g.finished = Some(e.map_or(Ok(()), Err)),
            }
            cv.notify_all();
        }
        let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
        g.finished
            .get_or_insert(Err("the run ended without saying how".into()));
        cv.notify_all();
    });
    let run_dir = run_dir.display().to_string();
    let trials = order
        .into_iter()
        .map(|id| {
            let board = board.clone();
            let run_dir = run_dir.clone();
            Trial::ignorable_test(id.clone(), move || {
                let (m, cv) = &*board;
                let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(r) = g.results.get(&id) {
                        return to_trial_outcome(r, &run_dir);
                    }
                    if let Some(done) = &g.finished {
                        return Err(match done {
                            Err(e) => format!("harness error before this case ran: {e}"),
                            Ok(()) => "the harness finished without a result for this case".into(),
                        }
                        .into());
                    }
                    g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
                }
            })
        })
        .collect();
    super::ui::set_listing(true);
    let c = libtest_mimic::run(&args, trials);
    super::ui::set_listing(false);
    c
}

/// libtest's output options only: selection is done by [`select`].
fn output_args(args: &Arguments) -> Arguments {
    Arguments {
        quiet: args.quiet,
        format: args.format,
        color: args.color,
        ..Default::default()
    }
}

/// Every case not run, with the reason (a named kernel whose fixture is
/// absent): results are written as for a run.
pub fn run_unavailable(
    results_root: &Path,
    backend: crate::vm::Backend,
    profile: &str,
    cases: &[Case],
    why: &str,
    args: &Arguments,
) -> Result<RunOutcome> {
    let dir = RunDir::create(results_root, &run_id())?;
    super::ui::say(&format!("notrun: {why}"));
    let mut summary = Summary {
        run_id: dir
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel: serde_json::json!({ "unavailable": why }),
        backend,
        accel: None,
        profile: profile.to_string(),
        boots: vec![],
        cases: vec![],
        counts: Default::default(),
        duration_ms: 0,
    };
    let v = crate::judge::plain(Outcome::NotRun, vec![why.to_string()]);
    for c in cases {
        summary.cases.push(dir.write_case(c, &v, None, None, &[])?);
    }
    summary.count();
    dir.write_summary(&summary)?;
    dir.mark_latest()?;
    let trials = cases
        .iter()
        .map(|c| {
            let why = format!("notrun: {why}");
            Trial::ignorable_test(c.id.clone(), move || Ok(Completion::ignored_with(why)))
        })
        .collect();
    Ok(RunOutcome {
        conclusion: libtest_mimic::run(&output_args(args), trials),
        summary,
        dir: dir.root.clone(),
        error: None,
    })
}
