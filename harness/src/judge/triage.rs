//! Reports of any console log, including one from another machine: what
//! `cargo xtask triage` prints.

use super::reports::{self, KernelReport};
use crate::contract::windows::Windows;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// One report and where in the run it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Triaged {
    #[serde(flatten)]
    pub report: KernelReport,
    /// The case whose window holds the report; `None` outside cases (or in
    /// a log without the harness's markers).
    pub case: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Triage {
    pub log: String,
    /// Whether frames carry source lines.
    pub symbolized: bool,
    pub reports: Vec<Triaged>,
}

/// Read `log`, group its reports, and symbolize them when `vmlinux` has
/// debug info. A vmlinux without it is reported in `note`, not an error.
pub fn triage(log: &Path, vmlinux: Option<&Path>) -> Result<(Triage, Option<String>)> {
    let bytes = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut rs = reports::parse(lines.iter().copied());
    let mut note = None;
    let mut symbolized = false;
    if let Some(v) = vmlinux {
        match super::symbolize::Symbolizer::open(v, &[])? {
            Some(s) => {
                s.symbolize(&mut rs);
                symbolized = true;
            }
            None => {
                note = Some(format!(
                "{} has no debug info: frames are not symbolized (build with the debug fragment)",
                v.display()
            ))
            }
        }
    }
    let w = Windows::of(&lines);
    Ok((
        Triage {
            log: log.display().to_string(),
            symbolized,
            reports: rs
                .into_iter()
                .map(|r| Triaged {
                    case: w.case_at(r.line).map(str::to_string),
                    report: r,
                })
                .collect(),
        },
        note,
    ))
}

impl Triage {
    /// For a person: a count, then each report with its title first.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}: {} kernel report{}\n",
            self.log,
            self.reports.len(),
            if self.reports.len() == 1 { "" } else { "s" }
        );
        for (i, t) in self.reports.iter().enumerate() {
            let at = match (&t.case, t.report.ts) {
                (Some(c), Some(ts)) => format!("in case {c}, {ts:.3}s after boot"),
                (Some(c), None) => format!("in case {c}"),
                (None, Some(ts)) => format!("{ts:.3}s after boot"),
                (None, None) => format!("line {}", t.report.line + 1),
            };
            s.push_str(&format!(
                "\n#{} {} [{}] ({at})\n",
                i + 1,
                t.report.title,
                t.report.kind.label()
            ));
            s.push_str(&t.report.render_body());
        }
        s
    }
}
