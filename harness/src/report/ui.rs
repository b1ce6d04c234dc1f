//! The terminal side of the events stages emit (`crate::events`): a spinner
//! with stage, elapsed time and the last line of output on a terminal; plain
//! `[harness]` lines in CI and logs.

use crate::events::{self, Event, Subscription};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Print a harness status line (stderr, so stdout stays the test report).
pub fn say(msg: &str) {
    line(format!("[harness] {msg}"));
}

/// A change to the host (packages installed): written to the terminal
/// directly, so that a test harness capturing output does not hide it.
pub fn announce(msg: &str) {
    line(format!("[harness] {msg}"));
}

/// A warning: something was accepted or ignored that the user should fix.
pub fn warn(msg: &str) {
    line(format!("[harness] warning: {msg}"));
}

/// Lines said while a test list prints: libtest writes `test NAME ... `
/// and the result on one line, with the trial running in between, so a
/// line printed then would split it. They wait for the list's end.
static HELD: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn line(l: String) {
    use std::io::Write;
    if LISTING.load(Ordering::SeqCst) {
        HELD.lock().unwrap_or_else(|p| p.into_inner()).push(l);
    } else {
        let _ = writeln!(std::io::stderr(), "{l}");
    }
}

/// The terminal printer: every [`Event`] as a `[harness]` line on stderr,
/// long stages as a spinner on a terminal (a line every 30 s in CI and
/// logs). Subscribed once per process; later calls are no-ops.
pub fn install() {
    static INSTALLED: OnceLock<Subscription> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let printer = Mutex::new(Printer::default());
        events::subscribe(move |e| printer.lock().unwrap_or_else(|p| p.into_inner()).show(e))
    });
}

/// Per long stage: its spinner, or when it last printed a plain line.
struct Shown {
    bar: Option<ProgressBar>,
    start: Instant,
    last_plain: Instant,
}

#[derive(Default)]
struct Printer {
    stages: HashMap<String, Shown>,
}

impl Printer {
    fn show(&mut self, e: &Event) {
        match e {
            Event::Note(m) => say(m),
            Event::Warning(m) => warn(m),
            Event::HostChange(m) => announce(m),
            // A test list shows a trial's reports in its result.
            Event::Finding { .. } if LISTING.load(Ordering::SeqCst) => {}
            Event::Finding { trial, title } => say(&format!("{trial}: kernel: {title}")),
            Event::StageStarted { stage } => {
                let bar = if interactive() {
                    let b = ProgressBar::new_spinner();
                    b.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                            .unwrap(),
                    );
                    b.set_prefix(stage.clone());
                    b.enable_steady_tick(Duration::from_millis(200));
                    Some(b)
                } else {
                    say(&format!("{stage}: started"));
                    None
                };
                let now = Instant::now();
                self.stages.insert(
                    stage.clone(),
                    Shown {
                        bar,
                        start: now,
                        last_plain: now,
                    },
                );
            }
            Event::StageProgress {
                stage,
                line,
                progress,
            } => {
                let Some(s) = self.stages.get_mut(stage) else {
                    return;
                };
                let progress = progress
                    .as_ref()
                    .map(|p| format!("{p}, "))
                    .unwrap_or_default();
                if let Some(b) = &s.bar {
                    b.set_message(format!("{progress}{line}"));
                } else if s.last_plain.elapsed() >= PLAIN_EVERY {
                    s.last_plain = Instant::now();
                    say(&format!(
                        "{stage}: {progress}{:.0}s elapsed, last: {line}",
                        s.start.elapsed().as_secs_f64()
                    ));
                }
            }
            Event::StageDone {
                stage,
                outcome,
                secs,
            } => {
                if let Some(b) = self.stages.remove(stage).and_then(|s| s.bar) {
                    b.finish_and_clear();
                }
                say(&format!("{stage}: {outcome} in {secs:.1}s"));
            }
        }
    }
}

/// A test list is printing: its results carry the findings.
static LISTING: AtomicBool = AtomicBool::new(false);

/// Say whether a test list is printing (findings are then left to it, and
/// other lines are held until it ends, then printed in order).
pub fn set_listing(on: bool) {
    LISTING.store(on, Ordering::SeqCst);
    if !on {
        let held = std::mem::take(&mut *HELD.lock().unwrap_or_else(|p| p.into_inner()));
        for l in held {
            line(l);
        }
    }
}

/// How often a long stage prints a plain line when not on a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_said_while_a_list_prints_wait_for_its_end() {
        set_listing(true);
        say("boot 1: the VM stopped");
        assert_eq!(
            HELD.lock().unwrap().as_slice(),
            ["[harness] boot 1: the VM stopped"]
        );
        set_listing(false);
        assert!(HELD.lock().unwrap().is_empty());
    }

    #[test]
    fn the_printer_forgets_a_finished_stage() {
        let mut p = Printer::default();
        p.show(&Event::StageStarted { stage: "s".into() });
        assert!(p.stages.contains_key("s"));
        p.show(&Event::StageProgress {
            stage: "s".into(),
            line: "x".into(),
            progress: None,
        });
        p.show(&Event::StageDone {
            stage: "s".into(),
            outcome: "done".into(),
            secs: 1.0,
        });
        assert!(p.stages.is_empty());
    }
}
