//! Parsers that cannot panic: structure-aware fuzzing of every input the
//! harness reads from a person or a machine, on the stable toolchain.
//!
//! cargo-fuzz needs nightly; this needs nothing. Each target makes inputs
//! two ways: from the format's grammar ([`yamlgen`], or a target's own
//! generator for logs, fmaps and JSON) and by mutating the real examples of
//! the repository ([`mutate`]: bit flips, truncation, spliced lines,
//! swapped values, deleted keys, huge numbers, odd unicode). Every input
//! goes through the same entry point the harness uses, and must give `Ok`
//! or an error, never a panic; an error about a file must name the file and
//! the line (`file:LINE`), the way an editor jumps to it.
//!
//! A target is a [`Fuzz`]; [`drive`] runs one for a time or a number of
//! inputs and counts what happened ([`Stats`]). The targets are listed in
//! [`TARGETS`], each with a `run` (`fn(&mut Rng, &Budget) -> Result<Stats>`)
//! and a `replay` of one saved input: `cargo xtask fuzz-parsers` and
//! `tests/fuzz_parsers.rs` both use them, and the inputs that once broke a
//! parser live in `tests/fuzz-regressions/<target>/`.

pub mod mutate;
pub mod protocol;
pub mod rng;
pub mod yamlgen;

mod cases;
mod fmap;
mod inputs;
mod kconfig;
mod kernels;
mod kmsg;
mod scenario;
mod selftest;
mod summary;

pub use rng::Rng;

use anyhow::Result;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one input did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed.
    Accepted,
    /// Refused with this message, which names where (when the input is a
    /// file with lines) or needs not.
    Rejected(String),
    /// Refused with a message about a file that does not name the file and
    /// line: a finding.
    Unlocated(String),
}

/// A fuzz target: makes inputs and feeds them to a parser.
pub trait Fuzz {
    /// One input, from the grammar or mutated from a real example.
    fn input(&mut self, rng: &mut Rng) -> Vec<u8>;
    /// Feeds one input to the parser (and to what consumes its result).
    fn parse(&mut self, input: &[u8]) -> Outcome;
}

/// How long a run goes on: until the deadline or after this many inputs,
/// whichever comes first (neither: one input).
#[derive(Debug, Clone, Default)]
pub struct Budget {
    pub duration: Option<Duration>,
    pub inputs: Option<u64>,
}

impl Budget {
    pub fn time(d: Duration) -> Budget {
        Budget {
            duration: Some(d),
            inputs: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    Panic,
    /// An error about a file that does not say where in it.
    Unlocated,
}

/// An input that broke the property, and how.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: FindingKind,
    /// The panic message with its source location, or the error text.
    pub message: String,
    pub input: Vec<u8>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Stats {
    pub target: &'static str,
    pub inputs: u64,
    /// Inputs the parser refused (with a located error).
    pub rejected: u64,
    pub panics: u64,
    pub unlocated: u64,
    /// Different error messages (numbers folded), at most [`MAX_DISTINCT`].
    pub distinct_errors: usize,
    pub elapsed: Duration,
    /// The slowest single input.
    pub slowest: Duration,
    /// One input per distinct panic or error message, at most 20.
    pub findings: Vec<Finding>,
}

/// Distinct error messages counted before the set stops growing.
pub const MAX_DISTINCT: usize = 100_000;

impl Stats {
    pub fn failed(&self) -> bool {
        self.panics > 0 || self.unlocated > 0
    }

    pub fn per_second(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A registered target.
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&mut Rng, &Budget) -> Result<Stats>,
    /// Feeds one saved input (a regression file) to the parser.
    pub replay: fn(&[u8]) -> Result<Option<Finding>>,
}

macro_rules! target {
    ($name:literal, $about:literal, $make:path) => {
        Target {
            name: $name,
            about: $about,
            run: |rng, budget| Ok(drive($name, &mut $make()?, rng, budget)),
            replay: |input| Ok(replay_with(&mut $make()?, input)),
        }
    };
}

/// Every target, in the order a full run takes them.
pub const TARGETS: &[Target] = &[
    target!(
        "case",
        "case files: the `# ---` YAML header (case.rs)",
        cases::Cases::new
    ),
    target!(
        "scenario",
        "famfs server scenarios, resolved and served (server/scenario.rs)",
        scenario::Scenarios::new
    ),
    target!(
        "named-kernel",
        "named kernels, kernel-configs/kernels/*.yaml (kernel/named.rs)",
        kernels::Named::new
    ),
    target!(
        "matrix",
        "nightly matrices, kernel-configs/matrix/*.yaml (nightly.rs)",
        kernels::Matrices::new
    ),
    target!(
        "kconfig",
        "config fragments, .config and Kconfig text (kernel/config.rs)",
        kconfig::Kconfig::new
    ),
    target!(
        "fmap",
        "GET_FMAP / GET_DAXDEV replies and FUSE records, every profile (famfs-proto)",
        fmap::Fmaps::new
    ),
    target!(
        "kmsg",
        "kernel logs: lines, reports, titles, case windows (judge/)",
        kmsg::Logs::new
    ),
    target!(
        "summary",
        "summary.json for compare and merge (report/)",
        summary::Summaries::new
    ),
    target!(
        "topologies",
        "named topologies, images/topologies.yaml (topologies.rs)",
        inputs::Topologies::new
    ),
    target!(
        "image",
        "initramfs specs, images/*.yaml (image/initramfs.rs)",
        inputs::Images::new
    ),
];

/// Fails on purpose (see [`selftest`]); chosen only by name.
pub const SELFTEST: Target = target!(
    "selftest",
    "fails on purpose: a panic on `!`, an error without its line on `?`",
    selftest::Faulty::new
);

/// The names of the targets a full run takes.
pub fn names() -> Vec<&'static str> {
    TARGETS.iter().map(|t| t.name).collect()
}

/// Every name `--target` accepts: the targets and `selftest`.
pub fn selectable() -> Vec<&'static str> {
    let mut v = names();
    v.push(SELFTEST.name);
    v
}

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS
        .iter()
        .chain(std::iter::once(&SELFTEST))
        .find(|t| t.name == name)
}

thread_local! {
    /// Set while this thread runs a guarded input: its panics are recorded,
    /// not printed.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records the panics of guarded inputs
/// and leaves every other panic to the previous hook: tests running beside
/// a fuzz run keep their output.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                prev(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into `Err(message with location)`.
fn guarded<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    install_hook();
    GUARDED.with(|g| g.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    r.map_err(|_| {
        PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "panic without a message".into())
    })
}

/// Feeds one input, guarded: the finding it makes, if any.
pub fn replay_with(t: &mut dyn Fuzz, input: &[u8]) -> Option<Finding> {
    match guarded(|| t.parse(input)) {
        Err(message) => Some(Finding {
            kind: FindingKind::Panic,
            message,
            input: input.to_vec(),
        }),
        Ok(Outcome::Unlocated(message)) => Some(Finding {
            kind: FindingKind::Unlocated,
            message,
            input: input.to_vec(),
        }),
        Ok(_) => None,
    }
}

/// An input still running after this long is a hang: the watchdog saves it
/// and ends the process (a thread cannot be stopped).
pub const HANG: Duration = Duration::from_secs(60);

/// The input being run, for the watchdog.
struct Current {
    serial: AtomicU64,
    input: Mutex<Vec<u8>>,
    done: AtomicBool,
}

fn watchdog(name: &'static str, cur: Arc<Current>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut seen = (u64::MAX, Instant::now());
        while !cur.done.load(Ordering::Relaxed) {
            std::thread::park_timeout(Duration::from_millis(200));
            let s = cur.serial.load(Ordering::Relaxed);
            if s != seen.0 {
                seen = (s, Instant::now());
            } else if seen.1.elapsed() > HANG && !cur.done.load(Ordering::Relaxed) {
                let input = cur.input.lock().map(|i| i.clone()).unwrap_or_default();
                let path = std::env::temp_dir().join(format!("fuzz-parsers-hang-{name}"));
                let _ = std::fs::write(&path, &input);
                eprintln!(
                    "fuzz {name}: one input has run for over {} s: a hang; saved in {}",
                    HANG.as_secs(),
                    path.display()
                );
                std::process::exit(1);
            }
        }
    })
}

/// Folds numbers out of an error message, so that `extent 3` and `extent 4`
/// count as one kind of error.
fn shape(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(160));
    let mut digit = false;
    for c in msg.chars().take(160) {
        if c.is_ascii_digit() {
            if !digit {
                out.push('N');
            }
            digit = true;
        } else {
            digit = false;
            out.push(c);
        }
    }
    out
}

/// Runs `t` within `budget`: every input guarded, every error checked for
/// its location, a watchdog for hangs.
pub fn drive(name: &'static str, t: &mut dyn Fuzz, rng: &mut Rng, budget: &Budget) -> Stats {
    let start = Instant::now();
    let mut st = Stats {
        target: name,
        inputs: 0,
        rejected: 0,
        panics: 0,
        unlocated: 0,
        distinct_errors: 0,
        elapsed: Duration::ZERO,
        slowest: Duration::ZERO,
        findings: Vec::new(),
    };
    let cur = Arc::new(Current {
        serial: AtomicU64::new(0),
        input: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    });
    let dog = watchdog(name, cur.clone());
    let mut errors: HashSet<String> = HashSet::new();
    let mut found: HashSet<String> = HashSet::new();
    let limit = budget.inputs.unwrap_or(if budget.duration.is_none() {
        1
    } else {
        u64::MAX
    });
    while st.inputs < limit && budget.duration.is_none_or(|d| start.elapsed() < d) {
        let input = t.input(rng);
        if let Ok(mut c) = cur.input.lock() {
            c.clear();
            c.extend_from_slice(&input);
        }
        cur.serial.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let out = guarded(|| t.parse(&input));
        st.slowest = st.slowest.max(t0.elapsed());
        st.inputs += 1;
        let (kind, message) = match out {
            Ok(Outcome::Accepted) => continue,
            Ok(Outcome::Rejected(m)) => {
                st.rejected += 1;
                if errors.len() < MAX_DISTINCT {
                    errors.insert(shape(&m));
                }
                continue;
            }
            Ok(Outcome::Unlocated(m)) => {
                st.unlocated += 1;
                if errors.len() < MAX_DISTINCT {
                    errors.insert(shape(&m));
                }
                (FindingKind::Unlocated, m)
            }
            Err(m) => {
                st.panics += 1;
                (FindingKind::Panic, m)
            }
        };
        // One saved input per kind of failure (a panic's site, an error's
        // shape), so that one bug does not fill the report.
        let key = match kind {
            FindingKind::Panic => m_site(&message),
            FindingKind::Unlocated => shape(&message),
        };
        if st.findings.len() < 20 && found.insert(key) {
            st.findings.push(Finding {
                kind,
                message,
                input,
            });
        }
    }
    cur.done.store(true, Ordering::Relaxed);
    dog.thread().unpark();
    let _ = dog.join();
    st.distinct_errors = errors.len();
    st.elapsed = start.elapsed();
    st
}

/// `panicked at FILE:LINE:COL:` of a panic message, the site that panicked.
fn m_site(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_string()
}

/// Does `msg` name `file` with a line number (`file:LINE`, LINE >= 1)?
pub fn names_line(msg: &str, file: &str) -> bool {
    msg.match_indices(file).any(|(i, _)| {
        let rest = &msg[i + file.len()..];
        let digits: String = rest
            .strip_prefix(':')
            .unwrap_or("")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<u64>().is_ok_and(|n| n >= 1)
    })
}

/// An error about `file`: rejected when it says where, a finding when not.
pub fn located(e: &anyhow::Error, file: &Path) -> Outcome {
    let msg = format!("{e:#}");
    if names_line(&msg, &file.display().to_string()) {
        Outcome::Rejected(msg)
    } else {
        Outcome::Unlocated(msg)
    }
}

/// Text of an input: files the harness reads as UTF-8 refuse anything
/// else before parsing, so invalid bytes are replaced.
pub fn as_text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

/// The checkout's files matching `dir/*` whose name passes `keep`, sorted
/// (the real examples a target mutates).
pub fn examples(rel_dir: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<(PathBuf, String)>> {
    let dir = crate::image::guest_program::workspace_root().join(rel_dir);
    let mut out = Vec::new();
    let rd = std::fs::read_dir(&dir)
        .map_err(|e| anyhow::anyhow!("reading examples in {}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_file() && keep(&name) {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                out.push((e.path(), t));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        anyhow::bail!("no examples in {}", dir.display());
    }
    Ok(out)
}

/// An example, mutated (the donor lends lines and tails).
pub fn mutated(rng: &mut Rng, examples: &[String]) -> Vec<u8> {
    let a = rng.pick(examples);
    let b = rng.pick(examples);
    mutate::text(rng, a, b)
}

/// `10m`, `2s`, `1h`, `90` (seconds), `500ms`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: a duration is a number and a unit: 500ms, 10s, 10m, 1h"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("`{s}`: unknown unit `{u}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// The head of the table `cargo xtask fuzz-parsers` prints.
pub fn header() -> String {
    format!(
        "{:<13} {:>10} {:>7} {:>10} {:>16} {:>9} {:>9}\n",
        "target", "inputs", "panics", "unlocated", "distinct errors", "inputs/s", "time"
    )
}

/// One target's line of the table.
pub fn row(st: &Stats) -> String {
    format!(
        "{:<13} {:>10} {:>7} {:>10} {:>16} {:>9.0} {:>8.1}s\n",
        st.target,
        st.inputs,
        st.panics,
        st.unlocated,
        st.distinct_errors,
        st.per_second(),
        st.elapsed.as_secs_f64()
    )
}

/// The whole table.
pub fn render(stats: &[Stats]) -> String {
    let mut s = header();
    for st in stats {
        s.push_str(&row(st));
    }
    s
}

/// Runs the named targets (all when none is named) one after another, each
/// from `seed` within `budget`; prints the table and each finding, saving
/// its input under `save/<target>/`. What `cargo xtask fuzz-parsers` does.
pub fn campaign(
    names: &[String],
    seed: u64,
    budget: &Budget,
    save: &Path,
    out: &mut dyn std::io::Write,
) -> Result<Vec<Stats>> {
    let chosen: Vec<&Target> = if names.is_empty() {
        TARGETS.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                target(n).ok_or_else(|| {
                    anyhow::anyhow!("no fuzz target `{n}` (targets: {})", names_list())
                })
            })
            .collect::<Result<_>>()?
    };
    write!(out, "{}", header())?;
    let mut all = Vec::new();
    for t in chosen {
        let st = (t.run)(&mut Rng::new(seed), budget)?;
        write!(out, "{}", row(&st))?;
        let files = save_findings(save, &st)?;
        for (f, p) in st.findings.iter().zip(&files) {
            let first = f.message.lines().take(2).collect::<Vec<_>>().join(" ");
            writeln!(out, "  {:?}: {first}\n    input: {}", f.kind, p.display())?;
        }
        out.flush()?;
        all.push(st);
    }
    Ok(all)
}

fn names_list() -> String {
    names().join(", ")
}

/// Writes each finding's input under `dir/<target>/`, returning the files.
pub fn save_findings(dir: &Path, st: &Stats) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let d = dir.join(st.target);
    for (i, f) in st.findings.iter().enumerate() {
        std::fs::create_dir_all(&d)?;
        let kind = match f.kind {
            FindingKind::Panic => "panic",
            FindingKind::Unlocated => "unlocated",
        };
        let p = d.join(format!("{kind}-{i}"));
        std::fs::write(&p, &f.input)?;
        out.push(p);
    }
    Ok(out)
}

/// Replays every file of `dir/<target>/` for each target: the inputs that
/// once broke a parser. Returns (files replayed, findings).
pub fn replay_dir(dir: &Path) -> Result<(usize, Vec<(PathBuf, Finding)>)> {
    let mut n = 0;
    let mut bad = Vec::new();
    for t in TARGETS {
        let d = dir.join(t.name);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.is_file()) {
            let input = std::fs::read(&f)?;
            n += 1;
            if let Some(finding) = (t.replay)(&input)? {
                bad.push((f, finding));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && target(&name).is_none() {
                anyhow::bail!(
                    "{}: not a fuzz target (targets: {})",
                    e.path().display(),
                    names().join(", ")
                );
            }
        }
    }
    Ok((n, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_file_and_line() {
        assert!(names_line("x/a.yaml:3:1: bad", "x/a.yaml"));
        assert!(names_line("reading: x/a.yaml:12 bad", "x/a.yaml"));
        assert!(!names_line("x/a.yaml: bad", "x/a.yaml"));
        assert!(!names_line("x/a.yaml:0:0: bad", "x/a.yaml"));
        assert!(!names_line("bad", "x/a.yaml"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e400").is_err());
    }

    #[test]
    fn shapes_fold_numbers() {
        assert_eq!(shape("extent 3 at 24"), shape("extent 41 at 0"));
        assert_ne!(shape("extent 3"), shape("strip 3"));
    }
}
