//! Progress as typed events. A stage says what it is doing by emitting an
//! [`Event`]; whoever subscribed (the terminal printer in `report::ui`, a
//! test, a log) decides what to show. So no stage imports the report layer,
//! and a library caller can listen without scraping stderr.
//!
//! Events nobody listens to are dropped: the binaries subscribe the printer
//! at start-up (`report::ui::install`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a stage tells whoever listens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A status line: what is being done or was decided.
    Note(String),
    /// Something accepted or ignored that the user should fix.
    Warning(String),
    /// A change to the host (packages installed): shown even when a test
    /// harness captures output.
    HostChange(String),
    /// A long stage began (a kernel build, the famfs user space).
    StageStarted { stage: String },
    /// The stage's latest output line, and how far it got when it counts
    /// units ("812/2450 objects (33%), ETA 5m20s").
    StageProgress {
        stage: String,
        line: String,
        progress: Option<String>,
    },
    /// The stage ended: `outcome` is "done", "failed", "built", ...
    StageDone {
        stage: String,
        outcome: String,
        secs: f64,
    },
    /// The kernel reported something during a trial (the crash title).
    Finding { trial: String, title: String },
}

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

static LISTENERS: Mutex<Vec<(u64, Listener)>> = Mutex::new(Vec::new());
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Hand `e` to every listener, in the order they subscribed.
pub fn emit(e: Event) {
    let listeners: Vec<Listener> = LISTENERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    for l in listeners {
        l(&e);
    }
}

/// A status line ([`Event::Note`]).
pub fn note(text: impl Into<String>) {
    emit(Event::Note(text.into()));
}

/// A warning ([`Event::Warning`]).
pub fn warn(text: impl Into<String>) {
    emit(Event::Warning(text.into()));
}

/// Listening until the returned value is dropped.
pub struct Subscription(u64);

impl Drop for Subscription {
    fn drop(&mut self) {
        LISTENERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}

/// Call `f` with every event from now on.
#[must_use = "the listener is removed when the subscription is dropped"]
pub fn subscribe(f: impl Fn(&Event) + Send + Sync + 'static) -> Subscription {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    LISTENERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id, Arc::new(f)));
    Subscription(id)
}

/// A long stage: emits started, progress and done, and counts units of
/// work (objects compiled) against an estimate when it has one.
pub struct Stage {
    name: String,
    start: Instant,
    /// Lines matching this count as units of work.
    unit: Option<&'static regex::Regex>,
    done: u64,
    estimate: Option<u64>,
}

impl Stage {
    pub fn start(name: &str) -> Stage {
        emit(Event::StageStarted { stage: name.into() });
        Stage {
            name: name.into(),
            start: Instant::now(),
            unit: None,
            done: 0,
            estimate: None,
        }
    }

    /// Count output lines matching `unit` as work done, out of `estimate`
    /// when one is known.
    pub fn count_lines(&mut self, unit: &'static regex::Regex, estimate: Option<u64>) {
        self.unit = Some(unit);
        self.estimate = estimate;
    }

    /// Units counted so far.
    pub fn counted(&self) -> u64 {
        self.done
    }

    /// "812/2450 objects (33%), ETA 5m20s" or "812 objects".
    pub fn progress(&self) -> Option<String> {
        self.unit?;
        let elapsed = self.start.elapsed().as_secs_f64();
        Some(match self.estimate {
            Some(total) if total > 0 => {
                let shown = self.done.min(total.saturating_sub(1));
                let pct = shown * 100 / total;
                let eta = (self.done > 0)
                    .then(|| elapsed / self.done as f64 * total.saturating_sub(shown) as f64);
                match eta {
                    Some(eta) => {
                        format!("{shown}/{total} objects ({pct}%), ETA {}", human_secs(eta))
                    }
                    None => format!("{shown}/{total} objects ({pct}%)"),
                }
            }
            _ => format!("{} objects", self.done),
        })
    }

    /// The stage's latest output line.
    pub fn update(&mut self, line: &str) {
        if self.unit.is_some_and(|u| u.is_match(line)) {
            self.done += 1;
        }
        emit(Event::StageProgress {
            stage: self.name.clone(),
            line: line.trim().to_string(),
            progress: self.progress(),
        });
    }

    pub fn finish(self, outcome: &str) {
        emit(Event::StageDone {
            stage: self.name,
            outcome: outcome.into(),
            secs: self.start.elapsed().as_secs_f64(),
        });
    }
}

/// 312.4 -> "5m12s", 42.0 -> "42s".
pub fn human_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_counts_matching_lines_against_its_estimate_and_says_so() {
        static UNIT: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"^\s+CC\s").unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let _sub = subscribe(move |e| {
            if let Event::StageStarted { stage }
            | Event::StageProgress { stage, .. }
            | Event::StageDone { stage, .. } = e
            {
                if stage == "unit-test stage" {
                    s2.lock().unwrap().push(e.clone());
                }
            }
        });
        let mut st = Stage::start("unit-test stage");
        assert_eq!(st.progress(), None);
        st.count_lines(&UNIT, Some(4));
        st.update("  CC      a.o");
        st.update("  LD      vmlinux");
        st.update("  CC      b.o");
        assert_eq!(st.counted(), 2);
        let p = st.progress().unwrap();
        assert!(p.starts_with("2/4 objects (50%), ETA "), "{p}");
        // More objects than estimated never shows 100% before the end.
        for _ in 0..5 {
            st.update("  CC      c.o");
        }
        assert!(
            st.progress().unwrap().starts_with("3/4 objects (75%)"),
            "{:?}",
            st.progress()
        );
        st.count_lines(&UNIT, None);
        assert_eq!(st.progress().unwrap(), "7 objects");
        st.finish("done");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 10, "{seen:?}");
        assert!(matches!(&seen[0], Event::StageStarted { .. }));
        assert!(
            matches!(&seen[1], Event::StageProgress { line, progress: Some(p), .. } if line == "CC      a.o" && p.starts_with("1/4"))
        );
        assert!(matches!(&seen[9], Event::StageDone { outcome, .. } if outcome == "done"));
        assert_eq!(human_secs(312.4), "5m12s");
        assert_eq!(human_secs(42.0), "42s");
    }

    #[test]
    fn a_dropped_subscription_hears_nothing_more() {
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n2 = n.clone();
        let sub = subscribe(move |e| {
            if matches!(e, Event::Note(t) if t == "dropped-subscription probe") {
                n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        note("dropped-subscription probe");
        drop(sub);
        note("dropped-subscription probe");
        assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
