//! Where a run's time went, read from its summary alone: per boot (launch
//! to the runner, the runner's device setup, what follows the last case),
//! per trial (the phases the guest measured), added up per case group.
//! `cargo xtask bench suite` prints it and keeps the last measurement of a
//! selection to print the change against.

use crate::report::results::{CaseResult, Summary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The columns, in the order a run spends them.
pub const COLUMNS: [&str; 12] = [
    "boot", "ready", "setup", "daemon", "mount", "body", "wait", "teardown", "reset", "tail",
    "shutdown", "fresh",
];

/// Milliseconds per column.
pub type Split = BTreeMap<String, u64>;

/// The measurement of one run: the run's wall time, per group and per
/// trial the split, how many boots.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Timing {
    pub run_ms: u64,
    pub boots: usize,
    /// Boots beyond the first of a run: fresh boots and restarts.
    pub extra_boots: usize,
    pub groups: BTreeMap<String, Split>,
    pub trials: BTreeMap<String, Split>,
    /// Outcome per trial, to show that a faster run saw the same.
    #[serde(default)]
    pub outcomes: BTreeMap<String, String>,
}

/// `famfs/041[x]` -> `famfs`; boot trials -> `boot`.
pub fn group_of(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

// Sums saturate: the milliseconds come from a summary file, which may
// hold anything up to u64::MAX.
fn total(s: &Split) -> u64 {
    s.values().fold(0, |a, v| a.saturating_add(*v))
}

fn bump(into: &mut Split, k: &str, v: u64) {
    let e = into.entry(k.to_string()).or_default();
    *e = e.saturating_add(v);
}

fn add(into: &mut Split, from: &Split) {
    for (k, v) in from {
        bump(into, k, *v);
    }
}

/// A case's phases; one without any (not run, or from an older guest)
/// counts its whole duration as body.
fn trial_split(c: &CaseResult) -> Split {
    if c.phases.is_empty() {
        return [("body".to_string(), c.duration_ms)]
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .collect();
    }
    c.phases.clone()
}

/// Read a summary into a [`Timing`]. A boot's own time (launch to the
/// runner, device setup, after the last case) goes to the group of the
/// first case it ran; every boot after a run's first also counts its boot
/// and setup time as `fresh` (what a fresh boot or a restart cost), not as
/// `boot` and `ready`.
pub fn of(s: &Summary) -> Timing {
    let mut t = Timing {
        run_ms: s.duration_ms,
        boots: s.boots.len(),
        extra_boots: s.boots.len().saturating_sub(1),
        ..Default::default()
    };
    for c in &s.cases {
        t.outcomes
            .insert(c.id.clone(), format!("{:?}", c.outcome).to_lowercase());
        if c.id.starts_with("boot/") {
            continue;
        }
        let split = trial_split(c);
        add(
            t.groups.entry(group_of(&c.id).to_string()).or_default(),
            &split,
        );
        t.trials.insert(c.id.clone(), split);
    }
    for (i, b) in s.boots.iter().enumerate() {
        let in_boot: Vec<&CaseResult> = s
            .cases
            .iter()
            .filter(|c| c.boot == Some(b.index) && !c.id.starts_with("boot/"))
            .collect();
        let Some(first) = in_boot.first() else {
            continue;
        };
        let hello = b.hello_ms.unwrap_or(b.duration_ms).min(b.duration_ms);
        let setup = b.setup_ms.unwrap_or(hello).clamp(hello, b.duration_ms);
        let cases = in_boot
            .iter()
            .fold(0u64, |a, c| a.saturating_add(total(&trial_split(c))));
        let rest = b.duration_ms.saturating_sub(setup.saturating_add(cases));
        let g = t.groups.entry(group_of(&first.id).to_string()).or_default();
        if i == 0 {
            bump(g, "boot", hello);
            bump(g, "ready", setup - hello);
        } else {
            bump(g, "fresh", setup);
        }
        bump(g, "shutdown", rest);
    }
    t
}

fn secs(ms: u64) -> String {
    format!("{:.1}", ms as f64 / 1000.0)
}

/// The table a person reads: one row per group with its total and each
/// column, then the slowest trials with their largest phases.
pub fn render(t: &Timing, slowest: usize) -> String {
    let mut out = String::new();
    let mut head = format!("{:<12} {:>6} {:>8}", "group", "trials", "total");
    for c in COLUMNS {
        head.push_str(&format!(" {c:>8}"));
    }
    out.push_str(&head);
    out.push('\n');
    let mut all = Split::new();
    for (g, split) in &t.groups {
        let n = t.trials.keys().filter(|id| group_of(id) == g).count();
        out.push_str(&row(g, n, split));
        add(&mut all, split);
    }
    out.push_str(&row("all", t.trials.len(), &all));
    out.push_str(&format!("slowest {slowest} trials (s):\n"));
    out.push_str(&render_trials(t, slowest));
    out
}

/// One line per trial, slowest first (at most `n`): its total and its
/// phases of a tenth of a second or more, largest first.
pub fn render_trials(t: &Timing, n: usize) -> String {
    let mut trials: Vec<(&String, &Split)> = t.trials.iter().collect();
    trials.sort_by_key(|(id, s)| (std::cmp::Reverse(total(s)), id.to_string()));
    let mut out = String::new();
    for (id, s) in trials.into_iter().take(n) {
        let mut parts: Vec<(&String, &u64)> = s.iter().filter(|(_, v)| **v >= 100).collect();
        parts.sort_by_key(|(k, v)| (std::cmp::Reverse(**v), k.to_string()));
        let parts: Vec<String> = parts
            .iter()
            .map(|(k, v)| format!("{k} {}", secs(**v)))
            .collect();
        out.push_str(&format!(
            "  {:<40} {:>7}  {}\n",
            id,
            secs(total(s)),
            parts.join(", ")
        ));
    }
    out
}

fn row(name: &str, trials: usize, split: &Split) -> String {
    let mut r = format!("{:<12} {:>6} {:>8}", name, trials, secs(total(split)));
    for c in COLUMNS {
        r.push_str(&format!(" {:>8}", secs(split.get(c).copied().unwrap_or(0))));
    }
    r.push('\n');
    r
}

/// The change against an earlier measurement of the same selection: run
/// time, each group's total, trials whose time moved by a second or more,
/// and trials whose outcome differs.
pub fn compare(before: &Timing, now: &Timing) -> String {
    let ratio = |a: u64, b: u64| {
        if a == 0 {
            "-".to_string()
        } else {
            format!("{:.2}x", b as f64 / a as f64)
        }
    };
    let mut out = format!(
        "run time {} s -> {} s ({})\n",
        secs(before.run_ms),
        secs(now.run_ms),
        ratio(before.run_ms, now.run_ms)
    );
    for (g, s) in &now.groups {
        let b = before.groups.get(g).map(total).unwrap_or(0);
        out.push_str(&format!(
            "  {g:<12} {} s -> {} s ({})\n",
            secs(b),
            secs(total(s)),
            ratio(b, total(s))
        ));
    }
    // i128: the difference of two u64 always fits.
    let mut moved: Vec<(i128, &String)> = now
        .trials
        .iter()
        .filter_map(|(id, s)| {
            let b = before.trials.get(id).map(total)?;
            let d = i128::from(total(s)) - i128::from(b);
            (d.abs() >= 1000).then_some((d, id))
        })
        .collect();
    moved.sort_by_key(|(d, id)| (*d, id.to_string()));
    for (d, id) in moved {
        out.push_str(&format!("  {id}: {:+.1} s\n", d as f64 / 1000.0));
    }
    for (id, o) in &now.outcomes {
        match before.outcomes.get(id) {
            Some(b) if b != o => out.push_str(&format!("  outcome of {id}: {b} -> {o}\n")),
            None => out.push_str(&format!("  new trial {id}: {o}\n")),
            _ => {}
        }
    }
    for id in before.outcomes.keys() {
        if !now.outcomes.contains_key(id) {
            out.push_str(&format!("  trial gone: {id}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::verdict::Outcome;
    use crate::report::results::BootRecord;

    fn case(id: &str, boot: u32, phases: &[(&str, u64)]) -> CaseResult {
        CaseResult {
            id: id.into(),
            outcome: Outcome::Pass,
            raw_outcome: Outcome::Pass,
            reasons: vec![],
            duration_ms: phases.iter().map(|p| p.1).sum(),
            boot: Some(boot),
            reports: vec![],
            dir: String::new(),
            phases: phases.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn boot(index: u32, hello: u64, setup: u64, duration: u64) -> BootRecord {
        serde_json::from_value(serde_json::json!({
            "index": index, "topology": "t", "backend": "qemu", "accel": "tcg",
            "end": {"kind": "completed"}, "hello_ms": hello, "setup_ms": setup,
            "first_result_ms": null, "duration_ms": duration,
            "console_log": "", "reports_outside_cases": []
        }))
        .unwrap()
    }

    fn summary() -> Summary {
        let mut s = Summary::of(vec![
            case(
                "famfs/001",
                1,
                &[("body", 1000), ("daemon", 500), ("tail", 250)],
            ),
            case("famfs/002", 1, &[("body", 2000), ("wait", 3000)]),
            case("famfs-user/001", 2, &[("mount", 4000), ("body", 1000)]),
        ]);
        s.boots = vec![boot(1, 2000, 3000, 10_000), boot(2, 2500, 4000, 11_000)];
        s.duration_ms = 21_500;
        s
    }

    #[test]
    fn boots_and_phases_add_up_per_group() {
        let t = of(&summary());
        let f = &t.groups["famfs"];
        assert_eq!(f["boot"], 2000);
        assert_eq!(f["ready"], 1000);
        assert_eq!(f["body"], 3000);
        assert_eq!(f["wait"], 3000);
        // 10 s boot: 3 s to setup, 6.75 s of cases, 0.25 s after them.
        assert_eq!(f["shutdown"], 250);
        let u = &t.groups["famfs-user"];
        assert_eq!(u["fresh"], 4000, "the second boot is a fresh boot");
        assert_eq!(u.get("boot"), None);
        assert_eq!(u["shutdown"], 11_000 - 4000 - 5000);
        assert_eq!((t.boots, t.extra_boots), (2, 1));
        // Every millisecond of both boots is somewhere.
        let all: u64 = t.groups.values().flat_map(|s| s.values()).sum();
        assert_eq!(all, 21_000);
        let table = render(&t, 2);
        assert!(table.contains("famfs-user"), "{table}");
        assert!(
            table.contains("famfs/002") && table.contains("wait 3.0, body 2.0"),
            "{table}"
        );
        assert!(!table.contains("famfs/001 "), "only the 2 slowest: {table}");
    }

    #[test]
    fn the_change_names_moved_trials_and_changed_outcomes() {
        let before = of(&summary());
        let mut s = summary();
        s.cases[1].phases.insert("wait".into(), 100);
        s.cases[2].outcome = Outcome::Fail;
        s.duration_ms = 18_600;
        let now = of(&s);
        let c = compare(&before, &now);
        assert!(c.contains("run time 21.5 s -> 18.6 s (0.87x)"), "{c}");
        assert!(c.contains("famfs/002: -2.9 s"), "{c}");
        assert!(c.contains("outcome of famfs-user/001: pass -> fail"), "{c}");
        assert!(!c.contains("famfs/001:"), "{c}");
        assert_eq!(
            compare(&now, &now).lines().count(),
            3,
            "run and groups only"
        );
    }
}
