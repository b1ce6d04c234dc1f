//! Progress for long stages: a spinner with stage, elapsed time and the last
//! line of output on a terminal; plain timestamped lines in CI and logs.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Print a harness status line (stderr, so stdout stays the test report).
pub fn say(msg: &str) {
    eprintln!("[harness] {msg}");
}

/// A change to the host (packages installed): written to the terminal
/// directly, so that a test harness capturing output does not hide it.
pub fn announce(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "[harness] {msg}");
}

/// A warning: something was accepted or ignored that the user should fix.
pub fn warn(msg: &str) {
    eprintln!("[harness] warning: {msg}");
}

pub struct Stage {
    name: String,
    start: Instant,
    bar: Option<ProgressBar>,
    last_plain: Instant,
    plain_every: Duration,
    /// Lines matching this count as units of work (objects compiled).
    unit: Option<&'static regex::Regex>,
    done: u64,
    estimate: Option<u64>,
}

impl Stage {
    pub fn start(name: &str) -> Stage {
        let bar = if interactive() {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}").unwrap(),
            );
            b.set_prefix(name.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            Some(b)
        } else {
            say(&format!("{name}: started"));
            None
        };
        Stage {
            name: name.into(),
            start: Instant::now(),
            bar,
            last_plain: Instant::now(),
            plain_every: Duration::from_secs(30),
            unit: None,
            done: 0,
            estimate: None,
        }
    }

    /// Count output lines matching `unit` as work done, out of `estimate`
    /// when one is known, and show the count, percentage and ETA.
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
                let eta = if self.done == 0 {
                    None
                } else {
                    Some(elapsed / self.done as f64 * total.saturating_sub(shown) as f64)
                };
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

    /// Latest line of the stage's output; shown live, or every 30 s in CI.
    pub fn update(&mut self, line: &str) {
        if self.unit.is_some_and(|u| u.is_match(line)) {
            self.done += 1;
        }
        let progress = self
            .progress()
            .map(|p| format!("{p}, "))
            .unwrap_or_default();
        if let Some(b) = &self.bar {
            b.set_message(format!("{progress}{}", line.trim()));
        } else if self.last_plain.elapsed() >= self.plain_every {
            self.last_plain = Instant::now();
            say(&format!(
                "{}: {progress}{:.0}s elapsed, last: {}",
                self.name,
                self.start.elapsed().as_secs_f64(),
                line.trim()
            ));
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn finish(self, outcome: &str) {
        let msg = format!(
            "{}: {outcome} in {:.1}s",
            self.name,
            self.start.elapsed().as_secs_f64()
        );
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        say(&msg);
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
    fn progress_counts_matching_lines_against_the_estimate() {
        static UNIT: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"^\s+CC\s").unwrap());
        let mut st = Stage::start("t");
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
        assert_eq!(human_secs(312.4), "5m12s");
        assert_eq!(human_secs(42.0), "42s");
    }
}
