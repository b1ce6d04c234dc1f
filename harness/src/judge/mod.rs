//! The judge stage: the reports grouped from kernel log lines (`reports`),
//! their source lines (`symbolize`), crash triage (`triage`), and case
//! verdicts (`verdict`). [`Judge`] is its one entry point: a case's raw
//! result and kernel log in, a verdict out. Nothing here launches anything.

pub mod reports;
pub mod symbolize;
pub mod triage;
pub mod verdict;

use crate::contract::windows::Windows;
use crate::contract::CaseReport;
use crate::events::note;
use crate::kernel::build::KernelArtifacts;
use crate::plan::case::Case;
use reports::KernelReport;
use std::collections::BTreeMap;
use std::path::PathBuf;
use verdict::{Outcome, Verdict};

/// Turns what a run saw into verdicts, for one kernel and one set of cases:
/// the case's expectations, the kernel's reports (with source lines when
/// its vmlinux has debug info) and the kernel's known defects.
pub struct Judge<'a> {
    cases: &'a BTreeMap<&'a str, &'a Case>,
    kernel: &'a KernelArtifacts,
    /// Opened at the first report, when the kernel has debug info.
    symbolizer: std::cell::OnceCell<Option<symbolize::Symbolizer>>,
}

impl<'a> Judge<'a> {
    pub fn new(kernel: &'a KernelArtifacts, cases: &'a BTreeMap<&'a str, &'a Case>) -> Judge<'a> {
        Judge {
            cases,
            kernel,
            symbolizer: std::cell::OnceCell::new(),
        }
    }

    /// The case named `id`, if it is one of the run's.
    pub fn case_of(&self, id: &str) -> Option<&'a Case> {
        self.cases.get(id).copied()
    }

    /// Reports of some kernel log lines, with source lines when the
    /// kernel's vmlinux has debug info.
    pub fn reports<'l>(&self, lines: impl IntoIterator<Item = &'l str>) -> Vec<KernelReport> {
        let mut rs = reports::parse(lines);
        if !rs.is_empty() {
            if let Some(s) = self.symbolizer.get_or_init(|| open_symbolizer(self.kernel)) {
                s.symbolize(&mut rs);
            }
        }
        rs
    }

    /// The verdict on a case's report from the guest, or on one the host
    /// made for a case whose VM went down (`lost`; `extra` is added to a
    /// failure's reasons), with the kernel reports it carries. None for a
    /// case that is not the run's.
    pub fn case(
        &self,
        r: &CaseReport,
        lost: bool,
        extra: Option<String>,
    ) -> Option<(Verdict, Vec<KernelReport>)> {
        let case = self.case_of(&r.id)?;
        let found = self.reports(r.kmsg.iter().map(String::as_str));
        let id = crate::contract::base_id(&r.id);
        let known: Vec<_> = self
            .kernel
            .known_defects
            .iter()
            .filter(|d| d.case == id)
            .collect();
        let mut v = verdict::apply_known_defects(
            verdict::from_report(case, r, &found),
            &found,
            lost,
            &known,
        );
        if let Some(x) = extra.filter(|_| v.outcome == Outcome::Fail) {
            v.reasons.push(x);
        }
        Some((v, found))
    }

    /// Reports on a boot's console outside every case window (boot, between
    /// cases, after the last one, shutdown).
    pub fn outside_cases(&self, console: &str) -> Vec<KernelReport> {
        let lines: Vec<&str> = console.lines().collect();
        outside(&Windows::of(&lines), &self.reports(lines.iter().copied()))
    }
}

/// One outcome for a trial with no report to judge.
pub fn plain(outcome: Outcome, reasons: Vec<String>) -> Verdict {
    Verdict {
        outcome: outcome.clone(),
        reasons,
        raw_outcome: outcome,
        diff: None,
    }
}

/// The verdict of a boot group's trial from the reports outside its cases,
/// each with its boot; not run when the group never booted.
pub fn boot_trial(outside: &[(u32, KernelReport)], booted: bool) -> Verdict {
    let reasons: Vec<String> = outside
        .iter()
        .map(|(b, r)| {
            let place = match r.ts {
                Some(t) => format!("boot {b}, {t:.1}s after boot"),
                None => format!("boot {b}"),
            };
            format!("kernel: {} (outside every case: {place})", r.title)
        })
        .collect();
    match (reasons.is_empty(), booted) {
        (false, _) => plain(Outcome::Fail, reasons),
        (true, true) => plain(Outcome::Pass, reasons),
        (true, false) => plain(
            Outcome::NotRun,
            vec!["this boot group did not boot".to_string()],
        ),
    }
}

/// Reports outside every case window.
pub fn outside(w: &Windows, reports: &[KernelReport]) -> Vec<KernelReport> {
    reports
        .iter()
        .filter(|r| w.case_at(r.line).is_none())
        .cloned()
        .collect()
}

/// The symbolizer for a kernel's vmlinux, if it has debug info; the trees
/// it was compiled in are cut from source paths.
pub fn open_symbolizer(k: &KernelArtifacts) -> Option<symbolize::Symbolizer> {
    let vmlinux = k.vmlinux.as_ref()?;
    let mut trees: Vec<PathBuf> = Vec::new();
    if let Some(s) = &k.source {
        trees.push(s.path.clone());
        trees.extend(s.parent.clone());
    }
    trees.extend(k.build_dir.clone());
    match symbolize::Symbolizer::open(vmlinux, &trees) {
        Ok(s) => s,
        Err(e) => {
            note(format!("reports are not symbolized: {e:#}"));
            None
        }
    }
}
