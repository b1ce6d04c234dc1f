//! One boot group: boot (and boot again after crashes) until every case has
//! a result. A boot that never reaches the runner is infrastructure: shown,
//! retried once. A crash a case expects uses up no restart.

use super::boot::{self, BootResult};
use super::{Recorder, Request, Unreported};
use crate::contract::windows::Windows;
use crate::contract::{CaseExit, CaseReport};
use crate::events::note;
use crate::plan::schedule::BootGroup;
use crate::vm::{self, BootEnd};
use anyhow::{bail, Result};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Boot (and re-boot after crashes) until every case of the group has a
/// result. A boot that never reaches the runner is retried once.
pub fn run(
    req: &Request,
    group: &BootGroup,
    boot_no: &AtomicU32,
    rec: &mut dyn Recorder,
) -> Result<()> {
    let mut pending: VecDeque<String> = group.cases.iter().cloned().collect();
    let mut restarts = 0;
    let mut infra_retry_used = false;
    while !pending.is_empty() {
        let n = boot_no.fetch_add(1, Ordering::SeqCst) + 1;
        let b = boot::once(req, &group.topology, &mut pending, n, rec)?;
        if let BootEnd::Interrupted { signal } = b.end {
            return interrupted(b, signal, n, &mut pending, rec);
        }
        if !b.reached_runner {
            let (reason, tail) = infrastructure(&b, &rec.boot_dir(n));
            if !infra_retry_used {
                infra_retry_used = true;
                note(format!("boot {n}: {reason}; this is an infrastructure failure, retrying the boot once. Console tail:\n{tail}"));
                continue;
            }
            let why = format!(
                "boot failed twice before the guest runner started: {reason}; console log kept at {}",
                b.console.display()
            );
            let reasons = [why.clone(), format!("console tail:\n{tail}")];
            rec.unreported(
                pending.drain(..).collect(),
                Unreported::Error,
                &reasons,
                Some(n),
                None,
            )?;
            bail!("{why}\n--- console tail ---\n{tail}");
        }
        if pending.is_empty() {
            break;
        }
        let reason = match (&b.end, &b.restart) {
            (_, Some(why)) => format!("the runner ended the boot: {why}"),
            (BootEnd::Completed, None) => {
                let why = match &b.setup_failure {
                    Some(d) => format!("device setup in the guest failed: {d}"),
                    None => "the guest runner finished without running this case".into(),
                };
                let ids = pending.drain(..).collect();
                return rec.unreported(ids, Unreported::Fail, &[why], Some(n), None);
            }
            (BootEnd::Died { reason, .. } | BootEnd::TimedOut { reason }, None) => reason.clone(),
            (BootEnd::Interrupted { .. }, None) => unreachable!("handled above"),
        };
        // A crash the case was written to cause does not use up the
        // restarts a topology gets for crashes nobody expected.
        let mut expected_crash = b.restart.is_some();
        if let Some((cur, started)) = b.current {
            let tail = tail(&b.console_text, &rec.boot_dir(n), Some(&cur));
            // What the case's libtest line and JUnit message say.
            let how = match &b.end {
                BootEnd::TimedOut { reason } => format!("hung ({reason}; the VM was killed)"),
                _ => format!("crashed ({reason})"),
            };
            let report = lost_report(&cur, &how, &b.console_text, started.elapsed(), b.streamed);
            expected_crash |= rec.case(&report, true, n, Some(format!("console tail:\n{tail}")))?;
            pending.retain(|x| *x != cur);
        }
        if pending.is_empty() {
            break;
        }
        if restarts >= req.opts.max_restarts {
            let why = format!(
                "not run: the VM went down {} times; giving up on this topology",
                restarts + 1
            );
            let ids = pending.drain(..).collect();
            return rec.unreported(ids, Unreported::Fail, &[why], None, None);
        }
        if !expected_crash {
            restarts += 1;
        }
        // On a line of its own: the test list may be mid-line.
        eprintln!();
        note(format!(
            "boot {n}: {reason}; restarting the VM for {} remaining cases",
            pending.len()
        ));
    }
    Ok(())
}

/// The run was interrupted during boot `n`: the running case keeps what it
/// wrote and its kernel log so far; the rest are not run.
fn interrupted(
    b: BootResult,
    signal: i32,
    n: u32,
    pending: &mut VecDeque<String>,
    rec: &mut dyn Recorder,
) -> Result<()> {
    let sig = crate::base::proc::signal_name(signal);
    if let Some((cur, started)) = b.current {
        let ran = started.elapsed();
        let how = format!("interrupted by {sig}");
        let report = lost_report(&cur, &how, &b.console_text, ran, b.streamed);
        let why = format!(
            "interrupted by {sig} after {:.1}s; its output and kernel log so far are kept",
            ran.as_secs_f64()
        );
        rec.unreported(
            vec![cur.clone()],
            Unreported::NotRun,
            &[why],
            Some(n),
            Some(&report),
        )?;
        pending.retain(|x| *x != cur);
    }
    let why = format!("the run was interrupted by {sig}");
    rec.unreported(
        pending.drain(..).collect(),
        Unreported::NotRun,
        &[why],
        None,
        None,
    )
}

/// Why a boot never reached the runner, and the console's tail.
fn infrastructure(b: &BootResult, bdir: &Path) -> (String, String) {
    let reason = match &b.end {
        BootEnd::Died { reason, .. } | BootEnd::TimedOut { reason } => reason.clone(),
        BootEnd::Completed | BootEnd::Interrupted { .. } => {
            "the VM exited before the guest runner started".into()
        }
    };
    let reason = if b.outside.is_empty() {
        reason
    } else {
        format!("{reason}; the kernel reported: {}", b.outside.join("; "))
    };
    (reason, tail(&b.console_text, bdir, None))
}

/// The console's last lines and QEMU's own complaints (bad device
/// arguments are not on the console). With a case, the tail starts at its
/// start marker: what the case caused, not boot noise.
fn tail(console: &str, bdir: &Path, case: Option<&str>) -> String {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let from = case
        .and_then(|id| {
            let w = Windows::of(&lines);
            w.cases.iter().rev().find(|c| c.0 == id).map(|c| c.1)
        })
        .unwrap_or(0);
    let shown = &lines[from.max(lines.len().saturating_sub(40))..];
    let mut tail = shown.join("\n");
    let qemu_err = vm::tail(&bdir.join("qemu.stderr"), 10);
    if !qemu_err.trim().is_empty() {
        tail = format!("{tail}\n--- qemu stderr ---\n{qemu_err}");
    }
    tail
}

/// What the host knows of a case whose VM went down under it: the console
/// from the case's start marker on, and the output it streamed.
fn lost_report(id: &str, reason: &str, console: &str, ran: Duration, output: String) -> CaseReport {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let w = Windows::of(&lines);
    CaseReport {
        kmsg: w.slice(&lines, id).iter().map(|l| l.to_string()).collect(),
        duration_ms: ran.as_millis() as u64,
        ..CaseReport::new(
            id,
            CaseExit::Lost {
                reason: reason.into(),
            },
            output,
        )
    }
}
