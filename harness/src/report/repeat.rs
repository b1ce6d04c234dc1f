//! `--repeat N`: the selection run N times over, iteration after iteration,
//! in as few boots as its topologies allow (a crash still restarts the VM),
//! and per trial how often it passed and failed. Every iteration keeps its
//! own results directory, so each failing one has its artifacts.
//! `--until-fail` runs one iteration per run until one fails.

use super::results::CaseResult;
use crate::judge::verdict::Outcome;
use crate::plan::case::{base_id, Case};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// The cases to run: the whole selection once per iteration, in order
/// (`ID#1` for every trial, then `ID#2`, ...), as fstests' `-I` does.
pub fn iterations(cases: &[Case], n: u32) -> Vec<Case> {
    (1..=n)
        .flat_map(|k| cases.iter().map(move |c| c.iteration(k)))
        .collect()
}

/// One trial's record over all iterations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tally {
    pub id: String,
    pub runs: u32,
    /// Passed, or failed exactly as the case declares it must.
    pub passed: u32,
    /// Failed, or could not be run by the harness (an error).
    pub failed: u32,
    /// Hit the kernel's known defect.
    pub known: u32,
    pub notrun: u32,
    /// failed / (runs - notrun), 0 when nothing ran.
    pub failure_rate: f64,
    /// The failing iterations' result directories, relative to the run.
    pub failing: Vec<String>,
}

/// Per trial (boot trials left out), in the order the trials first ran;
/// the results may come from one run or from several (`--until-fail`).
pub fn tally<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Vec<Tally> {
    let mut out: Vec<Tally> = Vec::new();
    for r in results.into_iter().filter(|r| !r.id.starts_with("boot/")) {
        let id = base_id(&r.id);
        let i = match out.iter().position(|t| t.id == id) {
            Some(i) => i,
            None => {
                out.push(Tally {
                    id: id.to_string(),
                    runs: 0,
                    passed: 0,
                    failed: 0,
                    known: 0,
                    notrun: 0,
                    failure_rate: 0.0,
                    failing: vec![],
                });
                out.len() - 1
            }
        };
        let t = &mut out[i];
        t.runs += 1;
        match r.outcome {
            Outcome::Pass | Outcome::ExpectedFail => t.passed += 1,
            Outcome::KnownFail => t.known += 1,
            Outcome::NotRun => t.notrun += 1,
            Outcome::Fail | Outcome::Error => {
                t.failed += 1;
                t.failing.push(r.dir.clone());
            }
        }
    }
    for t in &mut out {
        let ran = t.runs - t.notrun;
        t.failure_rate = if ran == 0 {
            0.0
        } else {
            f64::from(t.failed) / f64::from(ran)
        };
    }
    out
}

/// `repeat.json` in the run directory.
pub fn write(dir: &Path, tallies: &[Tally]) -> Result<()> {
    let path = dir.join("repeat.json");
    std::fs::write(&path, serde_json::to_string_pretty(tallies)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// One line per trial, for the terminal.
pub fn render(tallies: &[Tally]) -> String {
    let width = tallies.iter().map(|t| t.id.len()).max().unwrap_or(0);
    tallies
        .iter()
        .map(|t| {
            let mut line = format!(
                "{:width$}  {} runs: {} passed, {} failed ({:.0}%)",
                t.id,
                t.runs,
                t.passed,
                t.failed,
                100.0 * t.failure_rate
            );
            if t.known > 0 {
                line += &format!(", {} known failures", t.known);
            }
            if t.notrun > 0 {
                line += &format!(", {} not run", t.notrun);
            }
            line + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::results::Summary;

    fn result(id: &str, outcome: Outcome) -> CaseResult {
        CaseResult {
            id: id.into(),
            outcome: outcome.clone(),
            raw_outcome: outcome,
            reasons: vec![],
            duration_ms: 1,
            boot: Some(1),
            reports: vec![],
            dir: format!("cases/{}", super::super::results::case_dir_name(id)),
            phases: Default::default(),
        }
    }

    #[test]
    fn iterations_run_the_selection_over_and_tallies_count_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases");
        let cases: Vec<Case> = crate::plan::case::discover(&root)
            .unwrap()
            .into_iter()
            .filter(|c| c.id.starts_with("dax/"))
            .take(2)
            .collect();
        let ids: Vec<String> = iterations(&cases, 2).into_iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            vec![
                format!("{}#1", cases[0].id),
                format!("{}#1", cases[1].id),
                format!("{}#2", cases[0].id),
                format!("{}#2", cases[1].id),
            ]
        );
        let s = Summary::of(vec![
            result("a/001#1", Outcome::Pass),
            result("b/001[x]#1", Outcome::KnownFail),
            result("boot/1", Outcome::Pass),
            result("a/001#2", Outcome::Fail),
            result("b/001[x]#2", Outcome::NotRun),
            result("a/001#3", Outcome::ExpectedFail),
        ]);
        let t = tally(&s.cases);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].id.as_str(), t[0].runs, t[0].passed, t[0].failed),
            ("a/001", 3, 2, 1)
        );
        assert!((t[0].failure_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(t[0].failing, vec!["cases/a-001#2".to_string()]);
        assert_eq!((t[1].known, t[1].notrun, t[1].failure_rate), (1, 1, 0.0));
        let text = render(&t);
        assert!(
            text.contains("a/001     3 runs: 2 passed, 1 failed (33%)\n"),
            "{text}"
        );
        assert!(text.contains("1 known failures, 1 not run"), "{text}");
    }
}
