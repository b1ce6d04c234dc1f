//! `--baseline DIR`: what changed against an earlier run of the same
//! selection (a nightly against last night): new failures, fixed trials,
//! trials that stopped running, new kernel report titles, and trials that
//! got slower beyond a threshold. Any of these but "fixed" is a
//! regression, and the exit status says so.

use super::results::{CaseResult, Summary};
use crate::judge::verdict::Outcome;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The summary of a run directory, or of the run a results directory's
/// `latest` names.
pub fn load(dir: &Path) -> Result<Summary> {
    let candidates = [dir.join("summary.json"), dir.join("latest/summary.json")];
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        bail!(
            "--baseline {}: not a results directory (no summary.json, nor latest/summary.json); give a run directory or the --results directory of an earlier run",
            dir.display()
        );
    };
    // Bytes, not a String: invalid UTF-8 is then an error with its line.
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // file:line:column, as for the YAML inputs (serde_json counts from 1;
    // 0 means it knows no line).
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: not a summary this harness wrote: {e}",
            path.display(),
            e.line().max(1),
            e.column()
        )
    })
}

/// What changed, trial by trial (boot trials left out: their numbering
/// follows the selection).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Changes {
    pub new_failures: Vec<String>,
    pub fixed: Vec<String>,
    pub new_notrun: Vec<String>,
    /// `trial: title` for report titles the baseline did not have there.
    pub new_titles: Vec<String>,
    /// `trial: 1.2 s -> 3.4 s`.
    pub slower: Vec<String>,
}

impl Changes {
    pub fn regressed(&self) -> bool {
        !(self.new_failures.is_empty()
            && self.new_notrun.is_empty()
            && self.new_titles.is_empty()
            && self.slower.is_empty())
    }

    /// For the terminal: one line per change, or `no change`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (what, list) in [
            ("new failure", &self.new_failures),
            ("fixed", &self.fixed),
            ("no longer run", &self.new_notrun),
            ("new report", &self.new_titles),
            ("slower", &self.slower),
        ] {
            for x in list {
                out += &format!("{what}: {x}\n");
            }
        }
        if out.is_empty() {
            out = "no change\n".into();
        }
        out
    }
}

fn failed(o: &Outcome) -> bool {
    o.is_failure()
}

/// Compare `now` with `before`. A trial slower by more than `slower_pct`
/// percent (and by more than a second, below which TCG noise rules) is
/// a timing regression.
pub fn compare(before: &Summary, now: &Summary, slower_pct: u32) -> Changes {
    let trials = |s: &Summary| -> BTreeMap<String, CaseResult> {
        s.cases
            .iter()
            .filter(|r| !r.id.starts_with("boot/"))
            .map(|r| (r.id.clone(), r.clone()))
            .collect()
    };
    let (old, new) = (trials(before), trials(now));
    let mut c = Changes::default();
    for (id, r) in &new {
        let prev = old.get(id);
        let was_failing = prev.is_some_and(|p| failed(&p.outcome));
        if failed(&r.outcome) && !was_failing {
            c.new_failures.push(id.clone());
        }
        if was_failing && !failed(&r.outcome) && r.outcome != Outcome::NotRun {
            c.fixed.push(id.clone());
        }
        if r.outcome == Outcome::NotRun && prev.is_some_and(|p| p.outcome != Outcome::NotRun) {
            c.new_notrun.push(id.clone());
        }
        let before_titles: Vec<&str> = prev
            .map(|p| p.reports.iter().map(|k| k.title.as_str()).collect())
            .unwrap_or_default();
        for k in &r.reports {
            if !before_titles.contains(&k.title.as_str()) {
                c.new_titles.push(format!("{id}: {}", k.title));
            }
        }
        if let Some(p) = prev.filter(|p| p.outcome != Outcome::NotRun && p.duration_ms > 0) {
            // In u128: durations come from a file and may be anything.
            let limit = u128::from(p.duration_ms) * (100 + u128::from(slower_pct)) / 100;
            if u128::from(r.duration_ms) > limit
                && r.duration_ms > p.duration_ms.saturating_add(1000)
            {
                c.slower.push(format!(
                    "{id}: {:.1} s -> {:.1} s",
                    p.duration_ms as f64 / 1000.0,
                    r.duration_ms as f64 / 1000.0
                ));
            }
        }
    }
    c.new_titles.dedup();
    c
}

/// `baseline.json` in the run directory.
pub fn write(dir: &Path, c: &Changes) -> Result<()> {
    let path = dir.join("baseline.json");
    std::fs::write(&path, serde_json::to_string_pretty(c)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::reports::KernelReport;

    fn r(id: &str, outcome: Outcome, ms: u64, titles: &[&str]) -> CaseResult {
        CaseResult {
            id: id.into(),
            outcome: outcome.clone(),
            raw_outcome: outcome,
            reasons: vec![],
            duration_ms: ms,
            boot: Some(1),
            reports: titles
                .iter()
                .map(|t| {
                    let mut k: KernelReport = serde_json::from_value(serde_json::json!({
                        "kind": "warning", "title": t, "header": "", "text": []
                    }))
                    .unwrap();
                    k.title = t.to_string();
                    k
                })
                .collect(),
            dir: String::new(),
            phases: Default::default(),
        }
    }

    fn summary(cases: Vec<CaseResult>) -> Summary {
        Summary::of(cases)
    }

    #[test]
    fn the_same_results_are_no_change_and_each_kind_of_change_is_named() {
        let before = summary(vec![
            r("a/001", Outcome::Pass, 2000, &[]),
            r("a/002", Outcome::Fail, 2000, &["WARNING in x"]),
            r("a/003", Outcome::Pass, 2000, &[]),
            r("a/004", Outcome::KnownFail, 2000, &["WARNING in y"]),
            r("a/005", Outcome::Pass, 2000, &[]),
            r("boot/1", Outcome::Pass, 9000, &[]),
        ]);
        let same = compare(&before, &before, 50);
        assert_eq!(same, Changes::default());
        assert!(!same.regressed());
        assert_eq!(same.render(), "no change\n");

        let now = summary(vec![
            r(
                "a/001",
                Outcome::Fail,
                2000,
                &["BUG: unable to handle page fault in f"],
            ),
            r("a/002", Outcome::Pass, 2000, &[]),
            r("a/003", Outcome::NotRun, 0, &[]),
            r("a/004", Outcome::KnownFail, 2000, &["WARNING in y"]),
            r("a/005", Outcome::Pass, 5000, &[]),
            r("a/006", Outcome::Fail, 100, &[]),
            r("boot/1", Outcome::Pass, 90000, &[]),
        ]);
        let c = compare(&before, &now, 50);
        assert_eq!(c.new_failures, ["a/001", "a/006"]);
        assert_eq!(c.fixed, ["a/002"]);
        assert_eq!(c.new_notrun, ["a/003"]);
        assert_eq!(
            c.new_titles,
            ["a/001: BUG: unable to handle page fault in f"]
        );
        assert_eq!(c.slower, ["a/005: 2.0 s -> 5.0 s"]);
        assert!(c.regressed());
        assert!(c.render().contains("fixed: a/002\n"));
        // Only a fix is no regression.
        let fixed_only = compare(
            &before,
            &summary(vec![r("a/002", Outcome::Pass, 2000, &[])]),
            50,
        );
        assert!(!fixed_only.regressed() && fixed_only.fixed == ["a/002"]);
    }

    #[test]
    fn a_directory_without_a_summary_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let e = load(t.path()).unwrap_err().to_string();
        assert!(e.contains("not a results directory"), "{e}");
        std::fs::write(t.path().join("summary.json"), "{}").unwrap();
        let e = format!("{:#}", load(t.path()).unwrap_err());
        assert!(e.contains("not a summary this harness wrote"), "{e}");
    }
}
