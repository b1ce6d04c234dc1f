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

pub struct Stage {
    name: String,
    start: Instant,
    bar: Option<ProgressBar>,
    last_plain: Instant,
    plain_every: Duration,
}

impl Stage {
    pub fn start(name: &str) -> Stage {
        let bar = if interactive() {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}").unwrap());
            b.set_prefix(name.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            Some(b)
        } else {
            say(&format!("{name}: started"));
            None
        };
        Stage { name: name.into(), start: Instant::now(), bar, last_plain: Instant::now(), plain_every: Duration::from_secs(30) }
    }

    /// Latest line of the stage's output; shown live, or every 30 s in CI.
    pub fn update(&mut self, line: &str) {
        if let Some(b) = &self.bar {
            b.set_message(line.trim().to_string());
        } else if self.last_plain.elapsed() >= self.plain_every {
            self.last_plain = Instant::now();
            say(&format!("{}: {:.0}s elapsed, last: {}", self.name, self.start.elapsed().as_secs_f64(), line.trim()));
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn finish(self, outcome: &str) {
        let msg = format!("{}: {outcome} in {:.1}s", self.name, self.start.elapsed().as_secs_f64());
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        say(&msg);
    }
}
