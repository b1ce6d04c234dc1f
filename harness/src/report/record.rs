//! The run's recorder: what the exec stage hands over is judged
//! ([`Judge`]), written into the run directory, and sent on as a record
//! ([`Recorded`]) to whoever assembles the summary and streams results.

use super::results::{BootRecord, CaseResult, RunDir};
use crate::contract::CaseReport;
use crate::events::{emit, note, Event};
use crate::exec::{BootLog, Recorder, Unreported};
use crate::judge::reports::KernelReport;
use crate::judge::verdict::{Outcome, Verdict};
use crate::judge::{self, Judge};
use crate::plan::schedule::boot_trial;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

/// What a recorder sends on: results in the order they are known, and each
/// boot's record.
pub enum Recorded {
    Result(CaseResult),
    Boot(BootRecord),
}

/// One per boot-group worker.
pub struct RunRecorder<'a> {
    pub dir: &'a RunDir,
    pub judge: Judge<'a>,
    pub tx: Sender<Recorded>,
    /// Reports outside every case in the current boot group: (boot, report).
    outside: Vec<(u32, KernelReport)>,
}

impl<'a> RunRecorder<'a> {
    pub fn new(dir: &'a RunDir, judge: Judge<'a>, tx: Sender<Recorded>) -> RunRecorder<'a> {
        RunRecorder {
            dir,
            judge,
            tx,
            outside: Vec::new(),
        }
    }

    /// Write one trial's verdict and send its record on.
    pub fn write(
        &mut self,
        id: &str,
        v: &Verdict,
        report: Option<&CaseReport>,
        boot: Option<u32>,
        reports: &[KernelReport],
    ) -> Result<()> {
        let case = self
            .judge
            .case_of(id)
            .with_context(|| format!("unknown case {id}"))?;
        let res = self.dir.write_case(case, v, report, boot, reports)?;
        if let Some(r) = report.filter(|r| !r.coverage.is_empty()) {
            let dir = self.dir.root.join(&res.dir);
            if let Err(e) = super::coverage::write_case(&dir, &r.coverage, id) {
                note(format!("{id}: coverage not kept: {e:#}"));
            }
        }
        for r in reports {
            emit(Event::Finding {
                trial: id.to_string(),
                title: r.title.clone(),
            });
        }
        let _ = self.tx.send(Recorded::Result(res));
        Ok(())
    }
}

impl Recorder for RunRecorder<'_> {
    fn boot_dir(&self, n: u32) -> PathBuf {
        self.dir.boot_dir(n)
    }

    fn case(
        &mut self,
        r: &CaseReport,
        lost: bool,
        boot: u32,
        extra: Option<String>,
    ) -> Result<bool> {
        let Some((v, reports)) = self.judge.case(r, lost, extra) else {
            return Ok(false);
        };
        self.write(&r.id, &v, Some(r), Some(boot), &reports)?;
        Ok(matches!(
            v.outcome,
            Outcome::ExpectedFail | Outcome::KnownFail
        ))
    }

    fn unreported(
        &mut self,
        ids: Vec<String>,
        why: Unreported,
        reasons: &[String],
        boot: Option<u32>,
        report: Option<&CaseReport>,
    ) -> Result<()> {
        let outcome = match why {
            Unreported::NotRun => Outcome::NotRun,
            Unreported::Error => Outcome::Error,
            Unreported::Fail => Outcome::Fail,
        };
        for id in ids {
            let v = judge::plain(outcome.clone(), reasons.to_vec());
            self.write(&id, &v, report, boot, &[])?;
        }
        Ok(())
    }

    fn boot(&mut self, b: &BootLog) -> Vec<String> {
        let outside = self.judge.outside_cases(&b.console_text);
        let bdir = self.dir.boot_dir(b.index);
        if let Err(e) = write_reports(&bdir.join("reports.txt"), &outside) {
            note(format!("boot {}: writing reports.txt: {e:#}", b.index));
        }
        let console = &b.console;
        let _ = self.tx.send(Recorded::Boot(BootRecord {
            index: b.index,
            topology: b.topology.clone(),
            backend: b.backend,
            accel: b.accel,
            end: b.end.clone(),
            hello_ms: b.hello_ms,
            setup_ms: b.setup_ms,
            first_result_ms: b.first_result_ms,
            duration_ms: b.duration_ms,
            console_log: console
                .strip_prefix(&self.dir.root)
                .unwrap_or(console)
                .display()
                .to_string(),
            reports_outside_cases: outside.clone(),
        }));
        let titles = outside.iter().map(|r| r.title.clone()).collect();
        // A boot that never reached the runner is infrastructure: its
        // reports are shown when it is retried, not the boot trial's.
        let interrupted = matches!(b.end, crate::vm::BootEnd::Interrupted { .. });
        if b.reached_runner || interrupted {
            self.outside
                .extend(outside.into_iter().map(|r| (b.index, r)));
        }
        titles
    }

    fn group_done(&mut self, n: usize, booted: bool) -> Result<()> {
        let outside = std::mem::take(&mut self.outside);
        let v = judge::boot_trial(&outside, booted);
        let reports: Vec<KernelReport> = outside.into_iter().map(|(_, r)| r).collect();
        let res = self.dir.write_trial(&boot_trial(n), &v, &reports)?;
        let _ = self.tx.send(Recorded::Result(res));
        Ok(())
    }
}

/// Reports as a person reads them, in a file beside the logs.
fn write_reports(path: &Path, reports: &[KernelReport]) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = reports.iter().map(KernelReport::render).collect();
    std::fs::write(path, text.join("\n"))?;
    Ok(())
}
