//! `cargo xtask test-vm`: select cases, run them as a test list (once,
//! `--repeat`ed or `--until-fail`), and close with the counts, the known
//! failures and, against a baseline, what changed. Exit status: 0
//! (everything passed or was not run with a reason), 101 (a case failed),
//! 2 (harness error, including a boot that never reached the guest runner),
//! 128 + N (interrupted by signal N).

use crate::base::proc::{interrupted, signal_name};
use crate::judge::verdict::Outcome;
use crate::plan::case::Case;
use crate::plan::select::{select, Partition, Selection};
use crate::report::baseline;
use crate::report::trials::{self, RunOutcome};
use crate::run::Options;
use anyhow::Result;
use libtest_mimic::Arguments;
use std::path::PathBuf;

/// What `test-vm` was asked, past the run's own options.
pub struct Request {
    pub opts: Options,
    pub sel: Selection,
    pub partition: Option<String>,
    pub repeat: Option<u32>,
    pub until_fail: bool,
    /// `--until-fail`'s limit on iterations.
    pub max: u32,
    pub list: bool,
    /// Run directories kept (older ones are deleted).
    pub keep: usize,
    pub baseline: Option<PathBuf>,
    pub slower_than: u32,
}

pub fn main(req: &Request, args: &Arguments) -> Result<i32> {
    let partition = req.partition.as_deref().map(Partition::parse).transpose()?;
    let before = req.baseline.as_deref().map(baseline::load).transpose()?;
    let mut cases = select(&req.opts.cases_dir(), &req.sel)?;
    if let Some(p) = partition {
        let of = cases.len();
        cases = p.apply(cases);
        eprintln!(
            "[harness] partition {p}: {} of {of} selected cases",
            cases.len()
        );
    }
    if let Some(n) = req.repeat {
        cases = crate::report::repeat::iterations(&cases, n);
    }
    if req.list {
        let _ = trials::list(&cases, args);
        return Ok(0);
    }
    let mut earlier = Vec::new();
    let outcome = match iterate(req, cases, args, &mut earlier)? {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    close(req, &outcome, &earlier);
    if let Some(sig) = interrupted() {
        eprintln!(
            "[harness] interrupted by {}; results so far in {}",
            signal_name(sig),
            outcome.dir.display()
        );
        return Ok(128 + sig);
    }
    if let Some(e) = &outcome.error {
        eprintln!("error: {e}");
        return Ok(2);
    }
    let c = &outcome.summary.counts;
    if let Some(before) = &before {
        let changes = baseline::compare(before, &outcome.summary, req.slower_than);
        eprint!(
            "[harness] against the baseline (run {}):\n{}",
            before.run_id,
            changes.render()
        );
        if let Err(e) = baseline::write(&outcome.dir, &changes) {
            eprintln!("[harness] warning: {e:#}");
        }
        if c.errors == 0 {
            return Ok(if changes.regressed() { 101 } else { 0 });
        }
    }
    Ok(if c.errors > 0 {
        2
    } else if outcome.conclusion.has_failed() {
        101
    } else {
        0
    })
}

/// One run of `cases`; Err(code) when it ended before any ran.
fn run_once(
    opts: &Options,
    cases: Vec<Case>,
    args: &Arguments,
) -> Result<std::result::Result<RunOutcome, i32>> {
    Ok(Ok(match crate::run::prepare(opts) {
        Ok(prepared) => crate::run::trials(prepared, cases, args)?,
        Err(e) => {
            if let Some(sig) = interrupted() {
                eprintln!(
                    "[harness] interrupted by {} before any case ran: {e:#}",
                    signal_name(sig)
                );
                return Ok(Err(128 + sig));
            }
            match e.downcast_ref::<crate::kernel::named::Unavailable>() {
                Some(why) => unavailable(opts, &cases, &why.0, args)?,
                None => return Err(e),
            }
        }
    }))
}

/// The run once, or `--until-fail` iterations until one fails (the earlier
/// iterations' results go to `earlier`).
fn iterate(
    req: &Request,
    cases: Vec<Case>,
    args: &Arguments,
    earlier: &mut Vec<crate::report::results::CaseResult>,
) -> Result<std::result::Result<RunOutcome, i32>> {
    if !req.until_fail {
        return run_once(&req.opts, cases, args);
    }
    let mut k = 1;
    loop {
        let round = cases.iter().map(|c| c.iteration(k)).collect();
        let o = match run_once(&req.opts, round, args)? {
            Ok(o) => o,
            Err(code) => return Ok(Err(code)),
        };
        let stop = o.conclusion.has_failed()
            || o.error.is_some()
            || o.summary.counts.errors > 0
            || interrupted().is_some();
        if stop || k == req.max {
            eprintln!(
                "[harness] --until-fail: {} after iteration {k} (--max {})",
                if stop { "stopped" } else { "no failure" },
                req.max
            );
            return Ok(Ok(o));
        }
        earlier.extend(o.summary.cases);
        k += 1;
    }
}

/// The closing lines: per-trial tallies over iterations, known failures,
/// the counts; then old run directories are pruned.
fn close(req: &Request, outcome: &RunOutcome, earlier: &[crate::report::results::CaseResult]) {
    let s = &outcome.summary;
    if req.repeat.is_some() || req.until_fail {
        use crate::report::repeat;
        let tallies = repeat::tally(earlier.iter().chain(&s.cases));
        eprint!(
            "[harness] per trial over the iterations:\n{}",
            repeat::render(&tallies)
        );
        if let Err(e) = repeat::write(&outcome.dir, &tallies) {
            eprintln!("[harness] warning: {e:#}");
        }
    }
    for r in s.cases.iter().filter(|r| r.outcome == Outcome::KnownFail) {
        eprintln!(
            "[harness] known failure {}: {}",
            r.id,
            r.reasons.first().map(String::as_str).unwrap_or("")
        );
    }
    eprint!(
        "{}",
        crate::report::notrun::render(&crate::report::notrun::causes(s, &req.opts.root))
    );
    let c = &s.counts;
    eprintln!(
        "[harness] {} passed, {} failed, {} not run, {} expected failures, {} known failures, {} errors; results in {}",
        c.passed,
        c.failed,
        c.notrun,
        c.expected_fail,
        c.known_fail,
        c.errors,
        outcome.dir.display()
    );
    match crate::report::results::prune(&req.opts.results_root, req.keep) {
        Ok(gone) if !gone.is_empty() => eprintln!(
            "[harness] deleted {} old run directories (--keep {})",
            gone.len(),
            req.keep
        ),
        Ok(_) => {}
        Err(e) => eprintln!("[harness] warning: pruning old runs: {e:#}"),
    }
}

/// Every case not run, with the reason (a named kernel whose fixture is
/// absent): results are written as for a run.
pub fn unavailable(
    opts: &Options,
    cases: &[Case],
    why: &str,
    args: &Arguments,
) -> Result<RunOutcome> {
    let (root, backend) = (&opts.results_root, opts.exec.backend);
    trials::run_unavailable(root, backend, &opts.profile, cases, why, args)
}
