//! Judge a case: its exit, its output against the golden file, and the
//! kernel log. A clean exit with matching output still fails when the
//! kernel complained while the case ran.

use crate::contract::{CaseExit, CaseReport};
use crate::judge::reports::{KernelReport, ReportKind};
use crate::plan::case::Case;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    NotRun,
    /// Failed the way the case declares it must (a harness self-check).
    ExpectedFail,
    /// Hit a known defect of the kernel under test, with exactly the listed
    /// report title(s); does not fail the run.
    KnownFail,
    /// The harness could not run it (the VM never reached the guest
    /// runner): no verdict on the case; the run exits 2.
    Error,
}

impl Outcome {
    /// Does this outcome fail the run?
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Error)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Why it failed (each reason one line), or why it did not run.
    pub reasons: Vec<String>,
    /// What the case would be without its `expect:` (for self-checks).
    pub raw_outcome: Outcome,
    pub diff: Option<String>,
}

impl Verdict {
    pub fn message(&self) -> String {
        self.reasons.join("\n")
    }
}

/// `expect.fail` names a kind (`WARNING`, `KASAN`, ...) or a whole title.
fn report_matches(r: &KernelReport, want: &str) -> bool {
    ReportKind::by_label(want) == Some(r.kind) || r.title == want
}

/// The reason line of one kernel report.
pub fn report_reason(r: &KernelReport) -> String {
    format!("kernel: {}", r.title)
}

/// Judge a case from its report and the kernel reports of its window.
pub fn from_report(case: &Case, r: &CaseReport, reports: &[KernelReport]) -> Verdict {
    let mut reasons = Vec::new();
    let mut diff = None;
    match &r.exit {
        CaseExit::Exited { code: 0 } => {}
        // The case's own `FAIL: why` (from `_fail`) says more than its status.
        CaseExit::Exited { code } => reasons.push(match fail_line(&r.output) {
            Some(why) => format!("{why} (exit status {code})"),
            None => format!("exit status {code}"),
        }),
        CaseExit::Signaled { signal } => reasons.push(format!("killed by signal {signal}")),
        CaseExit::TimedOut { after_s } => {
            reasons.push(format!("timed out after {after_s:.1}s (killed)"))
        }
        CaseExit::SpawnFailed { error } => reasons.push(format!("could not start: {error}")),
        CaseExit::Lost { reason } => reasons.push(match reports.first() {
            Some(first) => format!("{}: {reason}", first.title),
            None => format!("{reason}; no kernel report on the console"),
        }),
    }
    if let Some(e) = &r.reset_error {
        reasons.push(format!(
            "the devices could not be reset after the case: {e}"
        ));
    }
    // Losing the VM is what a crash looks like; it does not stand in the way
    // of an expected crash.
    let lost = matches!(r.exit, CaseExit::Lost { .. }) as usize;
    let mut kernel: Vec<String> = reports.iter().map(report_reason).collect();
    // Taint is the catch-all: the kernel complained in a way no pattern knows.
    if reports.is_empty() {
        if let (Some(before), Some(after)) = (r.taint_before, r.taint_after) {
            let new = after & !before;
            if new != 0 {
                kernel.push(format!(
                    "kernel: taint {} appeared without a report the harness recognises (see kmsg.log)",
                    crate::contract::taint::describe(new)
                ));
            }
        }
    }
    if let Some(why) = &r.notrun {
        if reasons.is_empty() && kernel.is_empty() {
            return Verdict {
                outcome: Outcome::NotRun,
                reasons: vec![why.clone()],
                raw_outcome: Outcome::NotRun,
                diff: None,
            };
        }
    } else if reasons.is_empty() {
        let got = case.filter(&r.output);
        let want = case.filter(&case.golden);
        if got != want {
            let d = unified_diff(&want, &got, &format!("{}.out", case.id), "output");
            reasons.push("output differs from the golden file".into());
            diff = Some(d);
        }
    }
    let other_reasons = reasons.len() - lost;
    reasons.extend(kernel);
    let raw = if reasons.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    if let Some(exp) = &case.meta.expect {
        // Exactly the named report: another report beside it, or a failure
        // of another kind, is not the expected failure.
        let matched = !reports.is_empty() && reports.iter().all(|k| report_matches(k, &exp.fail));
        if matched && other_reasons == 0 {
            return Verdict {
                outcome: Outcome::ExpectedFail,
                reasons: std::iter::once(format!("expected failure seen: {}", exp.fail))
                    .chain(reasons)
                    .collect(),
                raw_outcome: raw,
                diff,
            };
        }
        let mut rs = vec![format!(
            "expected the harness to fail this case with exactly `{}`, but it did not",
            exp.fail
        )];
        rs.extend(reasons);
        return Verdict {
            outcome: Outcome::Fail,
            reasons: rs,
            raw_outcome: raw,
            diff,
        };
    }
    Verdict {
        outcome: raw.clone(),
        reasons,
        raw_outcome: raw,
        diff,
    }
}

/// Apply the kernel's known defects for this case (`known`, from the
/// named kernel's file) to a verdict. The case is a known failure only when
/// it produced every listed report title and every listed output line, and
/// nothing else went wrong: no other report, no other failure (a VM lost to
/// the crash itself aside), no diff line the entries do not list. A
/// different or extra report or line, or a listed one that did not appear
/// (the defect was fixed, or the case no longer reaches it), fails it.
/// An intermittent entry (a race) counts only in a run where its report
/// appeared; then the output entries are not required, since the crash
/// cut the case short.
pub fn apply_known_defects(
    v: Verdict,
    findings: &[KernelReport],
    lost: bool,
    known: &[&crate::kernel::named::KnownDefect],
) -> Verdict {
    let titles: Vec<&str> = findings.iter().map(|f| f.title.as_str()).collect();
    let appeared = |k: &crate::kernel::named::KnownDefect| {
        k.title.as_deref().is_some_and(|t| titles.contains(&t))
    };
    let race_seen = known.iter().any(|k| k.intermittent && appeared(k));
    let known: Vec<&crate::kernel::named::KnownDefect> = known
        .iter()
        .copied()
        .filter(|k| !k.intermittent || appeared(k))
        .collect();
    if known.is_empty() || v.outcome == Outcome::NotRun {
        return v;
    }
    let known_titles: Vec<&str> = known.iter().filter_map(|k| k.title.as_deref()).collect();
    let added: Vec<&str> = v
        .diff
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| &l[1..])
        .collect();
    let mut reasons = Vec::new();
    for k in &known {
        let gone = k.title.as_deref().is_some_and(|t| !titles.contains(&t))
            || !race_seen && k.output.iter().any(|o| !added.contains(&o.as_str()));
        if gone {
            let what = match (&k.title, k.output.is_empty()) {
                (Some(t), true) => format!("the report `{t}`"),
                (Some(t), false) => format!("the report `{t}` and the output {:?}", k.output),
                (None, _) => format!("the output {:?}", k.output),
            };
            reasons.push(format!(
                "known defect did not reproduce: expected {what} ({}); if the defect is fixed, remove the entry",
                k.at
            ));
        }
    }
    for f in findings
        .iter()
        .filter(|f| !known_titles.contains(&f.title.as_str()))
    {
        reasons.push(format!(
            "kernel report beside the known defect: {}",
            f.title
        ));
    }
    let known_lines: Vec<&str> = known
        .iter()
        .flat_map(|k| k.output.iter().map(String::as_str))
        .collect();
    for l in added.iter().filter(|l| !known_lines.contains(l)) {
        reasons.push(format!("output beside the known defect: {l}"));
    }
    if v.diff.is_some() && known_lines.is_empty() {
        reasons.push("output differs from the golden file beside the known defect".into());
    }
    // Reasons other than the kernel's reports, a lost VM, and a golden diff
    // that the entries explain.
    let diff_reason = v.diff.is_some() as usize;
    let kernel_reasons = findings.len() + lost as usize + diff_reason;
    let other = v.reasons.len().saturating_sub(kernel_reasons);
    if reasons.is_empty() && other == 0 {
        let mut rs: Vec<String> = known
            .iter()
            .map(|k| {
                format!(
                    "known defect: {} ({}): {}",
                    k.title.clone().unwrap_or_else(|| k.output.join(" / ")),
                    k.at,
                    k.why
                )
            })
            .collect();
        rs.extend(v.reasons);
        return Verdict {
            outcome: Outcome::KnownFail,
            reasons: rs,
            raw_outcome: v.raw_outcome,
            diff: v.diff,
        };
    }
    // Say which of the two it is: the case now does what a correct kernel
    // does (the defect is gone), or it fails some other way.
    let headline = if v.raw_outcome == Outcome::Pass {
        "unexpected pass: the case passed where a known defect was listed"
    } else {
        "different failure: the case failed, but not (only) as the known defect says"
    };
    reasons.insert(0, headline.to_string());
    reasons.extend(v.reasons);
    Verdict {
        outcome: Outcome::Fail,
        reasons,
        raw_outcome: v.raw_outcome,
        diff: v.diff,
    }
}

/// A unified diff with three lines of context around each change, so a
/// one-line change in a long output is a short hunk, not the whole file.
pub fn unified_diff(a: &str, b: &str, a_name: &str, b_name: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(3)
        .header(a_name, b_name)
        .to_string()
}

/// The last `FAIL: why` line a case printed (`_fail`), without the prefix.
fn fail_line(output: &str) -> Option<&str> {
    output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("FAIL: "))
        .map(str::trim)
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::reports::ReportKind;

    fn case(expect: Option<&str>) -> Case {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("g/001");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let exp = expect
            .map(|e| format!("# expect: {{ fail: {e} }}\n"))
            .unwrap_or_default();
        std::fs::write(&p, format!("# ---\n# description: d\n{exp}# filters: [{{ regex: 'pid \\d+', replace: 'pid N' }}]\n# ---\n")).unwrap();
        std::fs::write(t.path().join("g/001.out"), "hello pid 1\n").unwrap();
        crate::plan::case::load(t.path(), &p).unwrap()
    }

    /// A case report and the kernel reports of its window.
    struct R(CaseReport, Vec<KernelReport>);

    fn report(code: i32, out: &str, reports: Vec<KernelReport>) -> R {
        R(
            CaseReport {
                duration_ms: 1,
                ..CaseReport::new("g/001", CaseExit::Exited { code }, out.into())
            },
            reports,
        )
    }

    fn judge(c: &Case, r: &R) -> Verdict {
        super::from_report(c, &r.0, &r.1)
    }

    fn kreport(kind: ReportKind, title: &str) -> KernelReport {
        KernelReport {
            kind,
            title: title.into(),
            header: "x".into(),
            text: vec![],
            rip: None,
            frames: vec![],
            ts: None,
            line: 0,
        }
    }

    fn warn() -> KernelReport {
        kreport(ReportKind::Warning, "WARNING in lkdtm_WARNING")
    }

    #[test]
    fn pass_fail_and_kernel_findings() {
        let c = case(None);
        assert_eq!(
            judge(&c, &report(0, "hello pid 42\n", vec![])).outcome,
            Outcome::Pass
        );
        let v = judge(&c, &report(0, "bye\n", vec![]));
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.diff.unwrap().contains("-hello pid N\n+bye\n"));
        let v = judge(&c, &report(0, "hello pid 42\n", vec![warn()]));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.reasons,
            vec!["kernel: WARNING in lkdtm_WARNING".to_string()]
        );
        let v = judge(&c, &report(3, "", vec![]));
        assert_eq!(
            v.reasons,
            vec!["exit status 3".to_string()],
            "no golden diff noise after a failed exit"
        );
        let v = judge(
            &c,
            &report(1, "hello\nFAIL: first\nFAIL: famfs is broken: x\n", vec![]),
        );
        assert_eq!(
            v.reasons,
            vec!["famfs is broken: x (exit status 1)".to_string()],
            "the case's last FAIL line is the reason"
        );
    }

    #[test]
    fn notrun_unless_the_kernel_complained() {
        let c = case(None);
        let mut r = report(0, "", vec![]);
        r.0.notrun = Some("no famfs".into());
        assert_eq!(judge(&c, &r).outcome, Outcome::NotRun);
        r.1.push(warn());
        assert_eq!(judge(&c, &r).outcome, Outcome::Fail);
    }

    #[test]
    fn expected_failures() {
        let c = case(Some("WARNING"));
        let v = judge(&c, &report(0, "hello pid 1\n", vec![warn()]));
        assert_eq!(v.outcome, Outcome::ExpectedFail);
        assert_eq!(v.raw_outcome, Outcome::Fail);
        let v = judge(&c, &report(0, "hello pid 1\n", vec![]));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.raw_outcome, Outcome::Pass);
        // Failing for another reason is not the expected failure.
        let v = judge(&c, &report(0, "other\n", vec![warn()]));
        assert_eq!(v.outcome, Outcome::Fail);
    }

    #[test]
    fn expectations_are_exact() {
        // A lockdep report is not a WARNING, though its header says WARNING.
        let c = case(Some("WARNING"));
        let lockdep = kreport(ReportKind::Lockdep, "possible deadlock in f");
        let v = judge(&c, &report(0, "hello pid 1\n", vec![lockdep.clone()]));
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        // A KASAN report beside the expected WARNING spoils it.
        let kasan = kreport(ReportKind::Kasan, "KASAN: slab-out-of-bounds Write in f");
        let v = judge(&c, &report(0, "hello pid 1\n", vec![warn(), kasan.clone()]));
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        // A whole title matches; a piece of one does not.
        let c = case(Some("'WARNING in lkdtm_WARNING'"));
        let v = judge(&c, &report(0, "hello pid 1\n", vec![warn()]));
        assert_eq!(v.outcome, Outcome::ExpectedFail, "{:?}", v.reasons);
        // (and is refused when the case is loaded, with the closest kind).
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("g/001");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        for (bad, hint) in [("lkdtm_WARNING", ""), ("WARNNG", "did you mean `WARNING`")] {
            std::fs::write(
                &p,
                format!("# ---\n# description: d\n# expect: {{ fail: {bad} }}\n# ---\n"),
            )
            .unwrap();
            std::fs::write(t.path().join("g/001.out"), "").unwrap();
            let e = format!("{:#}", crate::plan::case::load(t.path(), &p).unwrap_err());
            assert!(
                e.contains("001:3: expect.fail: `") && e.contains(hint),
                "{e}"
            );
        }
        // Kind names are case-insensitive.
        let c = case(Some("kasan"));
        let v = judge(&c, &report(0, "hello pid 1\n", vec![kasan]));
        assert_eq!(v.outcome, Outcome::ExpectedFail, "{:?}", v.reasons);
    }

    #[test]
    fn new_taint_without_a_report_fails_naming_the_bits() {
        let c = case(None);
        let mut r = report(0, "hello pid 1\n", vec![]);
        r.0.taint_before = Some(1 << 9);
        r.0.taint_after = Some((1 << 9) | (1 << 5));
        let v = judge(&c, &r);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.reasons[0].contains("B (bad page referenced") && !v.reasons[0].contains("W ("),
            "{:?}",
            v.reasons
        );
        // An old bit, or a new bit with its report, adds nothing.
        r.0.taint_after = Some(1 << 9);
        assert_eq!(judge(&c, &r).outcome, Outcome::Pass);
        r.0.taint_after = Some((1 << 9) | (1 << 5));
        r.1.push(kreport(ReportKind::Bug, "BUG: Bad page state in f"));
        assert_eq!(
            judge(&c, &r).reasons,
            vec!["kernel: BUG: Bad page state in f"]
        );
    }

    #[test]
    fn an_expected_crash_may_take_the_vm_down() {
        let c = case(Some("BUG"));
        let mut r = report(0, "", vec![kreport(ReportKind::Bug, "kernel BUG in f")]);
        r.0.exit = CaseExit::Lost {
            reason: "panic".into(),
        };
        let v = judge(&c, &r);
        assert_eq!(v.outcome, Outcome::ExpectedFail, "{:?}", v.reasons);
        // Without the expectation it is a plain failure naming both.
        let v = judge(&case(None), &r);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.reasons[0] == "kernel BUG in f: panic" && v.reasons[1] == "kernel: kernel BUG in f",
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn diff_shape() {
        assert_eq!(
            unified_diff("a\nb\nc\n", "a\nc\nd\n", "x", "y"),
            "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n c\n+d\n"
        );
        // A one-line change in 500 lines is one short hunk.
        let a: String = (0..500).map(|i| format!("line {i}\n")).collect();
        let b = a.replace("line 250\n", "line 250 changed\n");
        let d = unified_diff(&a, &b, "x", "y");
        assert_eq!(d.lines().count(), 2 + 1 + 3 + 2 + 3, "{d}");
    }

    fn defect(title: &str) -> crate::kernel::named::KnownDefect {
        crate::kernel::named::KnownDefect {
            case: "c/001".into(),
            title: Some(title.into()),
            output: vec![],
            intermittent: false,
            why: "V10 defect".into(),
            at: "k.yaml:7".into(),
        }
    }

    #[test]
    fn an_intermittent_defect_counts_only_when_its_report_appears() {
        let c = case(None);
        let w = warn();
        let mut race = defect(&w.title);
        race.intermittent = true;
        let wrong = crate::kernel::named::KnownDefect {
            case: "c/001".into(),
            title: None,
            output: vec!["bye".into()],
            intermittent: false,
            why: "no SIGBUS".into(),
            at: "k.yaml:9".into(),
        };
        // The race not hit: the entry asks nothing; the case passes, or
        // fails only as its other entries say.
        let v = apply_known_defects(
            judge(&c, &report(0, "hello pid 1\n", vec![])),
            &[],
            false,
            &[&race],
        );
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        let v = apply_known_defects(
            judge(&c, &report(0, "bye\n", vec![])),
            &[],
            false,
            &[&race, &wrong],
        );
        assert_eq!(v.outcome, Outcome::KnownFail, "{:?}", v.reasons);
        // The race hit: its report, and the output the crash cut short is
        // not required.
        let v = apply_known_defects(
            judge(&c, &report(0, "", vec![w.clone()])),
            std::slice::from_ref(&w),
            true,
            &[&race, &wrong],
        );
        assert_eq!(v.outcome, Outcome::KnownFail, "{:?}", v.reasons);
        // Another report in its place still fails.
        let mut other = warn();
        other.title = "WARNING in something_else".into();
        let v = apply_known_defects(
            judge(&c, &report(0, "bye\n", vec![other.clone()])),
            &[other],
            false,
            &[&race, &wrong],
        );
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
    }

    #[test]
    fn known_defects_need_exactly_their_reports() {
        let c = case(None);
        let w = warn();
        let k = defect(&w.title);
        // The listed report and nothing else: a known failure.
        let v = apply_known_defects(
            judge(&c, &report(0, "hello pid 1\n", vec![w.clone()])),
            std::slice::from_ref(&w),
            false,
            &[&k],
        );
        assert_eq!(v.outcome, Outcome::KnownFail, "{:?}", v.reasons);
        assert!(
            v.reasons[0].contains("known defect") && v.reasons[0].contains("k.yaml:7"),
            "{:?}",
            v.reasons
        );
        // The report disappeared: the defect was fixed, the entry must go.
        let v = apply_known_defects(
            judge(&c, &report(0, "hello pid 1\n", vec![])),
            &[],
            false,
            &[&k],
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.reasons[0].starts_with("unexpected pass:")
                && v.reasons[1].contains("did not reproduce"),
            "{:?}",
            v.reasons
        );
        // Another report beside it.
        let mut other = warn();
        other.title = "WARNING in something_else".into();
        let v = apply_known_defects(
            judge(
                &c,
                &report(0, "hello pid 1\n", vec![w.clone(), other.clone()]),
            ),
            &[w.clone(), other.clone()],
            false,
            &[&k],
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.reasons[0].starts_with("different failure:")
                && v.reasons
                    .iter()
                    .any(|r| r.contains("beside the known defect") && r.contains("something_else")),
            "{:?}",
            v.reasons
        );
        // A different title only.
        let v = apply_known_defects(
            judge(&c, &report(0, "hello pid 1\n", vec![other.clone()])),
            &[other],
            false,
            &[&k],
        );
        assert_eq!(v.outcome, Outcome::Fail);
        // The report plus a wrong output: the case failed for more than the defect.
        let v = apply_known_defects(
            judge(&c, &report(0, "bye\n", vec![w.clone()])),
            std::slice::from_ref(&w),
            false,
            &[&k],
        );
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        // A defect that shows as a wrong result: its diff lines are listed.
        let out_defect = crate::kernel::named::KnownDefect {
            case: "c/001".into(),
            title: None,
            output: vec!["bye".into()],
            intermittent: false,
            why: "V10 accepts it".into(),
            at: "k.yaml:9".into(),
        };
        let v = apply_known_defects(
            judge(&c, &report(0, "bye\n", vec![])),
            &[],
            false,
            &[&out_defect],
        );
        assert_eq!(v.outcome, Outcome::KnownFail, "{:?}", v.reasons);
        let v = apply_known_defects(
            judge(&c, &report(0, "bye\nmore\n", vec![])),
            &[],
            false,
            &[&out_defect],
        );
        assert_eq!(v.outcome, Outcome::Fail, "{:?}", v.reasons);
        assert!(v
            .reasons
            .iter()
            .any(|r| r.contains("output beside the known defect: more")));
        let v = apply_known_defects(
            judge(&c, &report(0, "hello pid 1\n", vec![])),
            &[],
            false,
            &[&out_defect],
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.reasons[0].starts_with("unexpected pass:")
                && v.reasons[1].contains("did not reproduce"),
            "{:?}",
            v.reasons
        );
        // No entry: unchanged.
        let v0 = judge(&c, &report(0, "hello pid 1\n", vec![w.clone()]));
        assert_eq!(
            apply_known_defects(v0.clone(), &[w], false, &[]).outcome,
            v0.outcome
        );
    }
}
