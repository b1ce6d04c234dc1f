//! The results directory of a run: a JUnit XML for CI, a JSON summary for
//! tools, and per case its output, expected output, diff, kernel log slice
//! and the console log of its boot. Nothing is deleted on failure.

use crate::contract::CaseReport;
use crate::judge::reports::KernelReport;
use crate::judge::verdict::{Outcome, Verdict};
use crate::plan::case::Case;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub outcome: Outcome,
    pub raw_outcome: Outcome,
    pub reasons: Vec<String>,
    pub duration_ms: u64,
    /// Boot number (1-based) the case ran in; None when it never ran.
    pub boot: Option<u32>,
    /// The kernel reports of the case's window (for a boot trial: outside
    /// every case); the first one's title is the failure's headline.
    pub reports: Vec<KernelReport>,
    /// Directory with the case's files, relative to the run directory.
    pub dir: String,
    /// Where the case's time went (ms per phase; see `CaseReport::phases`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub phases: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootRecord {
    pub index: u32,
    pub topology: String,
    pub backend: crate::vm::Backend,
    pub accel: crate::vm::Accel,
    pub end: crate::vm::BootEnd,
    /// Launch to the runner's Hello, to its devices being ready (Setup),
    /// and to the first case result.
    pub hello_ms: Option<u64>,
    #[serde(default)]
    pub setup_ms: Option<u64>,
    pub first_result_ms: Option<u64>,
    pub duration_ms: u64,
    pub console_log: String,
    pub reports_outside_cases: Vec<KernelReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
    pub notrun: u32,
    pub expected_fail: u32,
    /// Cases that hit a known defect of the kernel with its listed report.
    #[serde(default)]
    pub known_fail: u32,
    /// Cases the harness could not run (a boot that never reached the runner).
    #[serde(default)]
    pub errors: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    pub kernel: serde_json::Value,
    pub backend: crate::vm::Backend,
    /// None when nothing was booted (the kernel was not available).
    pub accel: Option<crate::vm::Accel>,
    pub profile: String,
    pub boots: Vec<BootRecord>,
    pub cases: Vec<CaseResult>,
    pub counts: Counts,
    pub duration_ms: u64,
}

/// What a run in the background streams to a test list: each result as
/// it is known, then the end (with the error that stopped the run).
pub enum Streamed {
    Result(CaseResult),
    End(Option<String>),
}

/// A run id that sorts by time and cannot clash between concurrent runs.
pub fn run_id() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        std::process::id()
    )
}

impl Summary {
    /// The summary of a run starting in `dir`, before any result.
    pub fn new(
        dir: &RunDir,
        kernel: &crate::kernel::build::KernelArtifacts,
        backend: crate::vm::Backend,
        accel: Option<crate::vm::Accel>,
        profile: &str,
    ) -> Result<Summary> {
        Ok(Summary {
            run_id: dir
                .root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kernel: serde_json::to_value(kernel)?,
            backend,
            accel,
            profile: profile.to_string(),
            boots: vec![],
            cases: vec![],
            counts: Default::default(),
            duration_ms: 0,
        })
    }

    /// Boots by number and trials in schedule order (`order`), however the
    /// boot groups' results interleaved; counted, with the run's duration.
    pub fn finish(&mut self, order: &[String], took: std::time::Duration) {
        self.boots.sort_by_key(|b| b.index);
        let pos: std::collections::HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        self.cases
            .sort_by_key(|c| pos.get(c.id.as_str()).copied().unwrap_or(usize::MAX));
        self.duration_ms = took.as_millis() as u64;
        self.count();
    }

    /// The summary.json of the run directory `root`.
    pub fn read(root: &Path) -> Result<Summary> {
        let p = root.join("summary.json");
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }

    /// A summary of these results alone (tests of what reads summaries).
    #[cfg(test)]
    pub fn of(cases: Vec<CaseResult>) -> Summary {
        let mut s = Summary {
            run_id: "r".into(),
            kernel: serde_json::Value::Null,
            backend: crate::vm::Backend::Qemu,
            accel: None,
            profile: "v10".into(),
            boots: vec![],
            cases,
            counts: Default::default(),
            duration_ms: 0,
        };
        s.count();
        s
    }

    pub fn count(&mut self) {
        let mut c = Counts::default();
        for r in &self.cases {
            match r.outcome {
                Outcome::Pass => c.passed += 1,
                Outcome::Fail => c.failed += 1,
                Outcome::NotRun => c.notrun += 1,
                Outcome::ExpectedFail => c.expected_fail += 1,
                Outcome::KnownFail => c.known_fail += 1,
                Outcome::Error => c.errors += 1,
            }
        }
        self.counts = c;
    }
}

pub struct RunDir {
    pub root: PathBuf,
    _lock: Option<crate::base::cache::Lock>,
}

/// Delete the oldest run directories of `results_root/runs` so that `keep`
/// remain (0 keeps all). Runs still in progress (locked) are never touched,
/// nor is the one `latest` names. Returns what was deleted.
pub fn prune(results_root: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(vec![]);
    }
    let runs = results_root.join("runs");
    let Ok(rd) = std::fs::read_dir(&runs) else {
        return Ok(vec![]);
    };
    let latest = std::fs::read_link(results_root.join("latest"))
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_os_string()));
    let mut dirs: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    // Run ids begin with their UTC start time: name order is age order.
    dirs.sort();
    let excess = dirs.len().saturating_sub(keep);
    let mut gone = Vec::new();
    for d in dirs.into_iter().take(excess) {
        if d.file_name().map(|n| n.to_os_string()) == latest {
            continue;
        }
        let lockfile = d.join(".lock");
        let guard = if lockfile.exists() {
            match crate::base::cache::Lock::try_acquire(&lockfile)? {
                Some(g) => Some(g),
                None => continue, // a run in progress
            }
        } else {
            None
        };
        std::fs::remove_dir_all(&d).with_context(|| format!("pruning {}", d.display()))?;
        drop(guard);
        gone.push(d);
    }
    Ok(gone)
}

pub fn case_dir_name(id: &str) -> String {
    id.replace('/', "-")
}

impl RunDir {
    /// `results_root/runs/<run_id>`, new (a run id in use is an error),
    /// locked while this run lives so that pruning leaves it alone.
    pub fn create(results_root: &Path, run_id: &str) -> Result<RunDir> {
        let runs = results_root.join("runs");
        std::fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
        // Ids hold the process id; one process starting two runs within a
        // second gets `-2`, `-3`, ... rather than a shared directory.
        let mut root = runs.join(run_id);
        let mut n = 1;
        loop {
            match std::fs::create_dir(&root) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                    n += 1;
                    root = runs.join(format!("{run_id}-{n}"));
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", root.display())),
            }
        }
        let lock = crate::base::cache::Lock::try_acquire(&root.join(".lock"))?
            .with_context(|| format!("{} is locked by another run", root.display()))?;
        Ok(RunDir {
            root,
            _lock: Some(lock),
        })
    }

    /// A run directory written earlier (read-only use: bless, tests).
    pub fn open(root: &Path) -> RunDir {
        RunDir {
            root: root.to_path_buf(),
            _lock: None,
        }
    }

    /// Point `results_root/latest` at this run (atomically: a reader sees the
    /// old or the new link, never none). Done when the summary is written.
    pub fn mark_latest(&self) -> Result<()> {
        let (Some(runs), Some(name)) = (self.root.parent(), self.root.file_name()) else {
            return Ok(());
        };
        let Some(results_root) = runs.parent() else {
            return Ok(());
        };
        let tmp = results_root.join(format!(".latest.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(Path::new("runs").join(name), &tmp)?;
        std::fs::rename(&tmp, results_root.join("latest"))
            .with_context(|| format!("updating {}/latest", results_root.display()))
    }

    pub fn boot_dir(&self, n: u32) -> PathBuf {
        self.root.join("boots").join(n.to_string())
    }

    pub fn case_dir(&self, id: &str) -> PathBuf {
        self.root.join("cases").join(case_dir_name(id))
    }

    /// Write everything known about one case; returns the result record.
    pub fn write_case(
        &self,
        case: &Case,
        verdict: &Verdict,
        report: Option<&CaseReport>,
        boot: Option<u32>,
        reports: &[KernelReport],
    ) -> Result<CaseResult> {
        let dir = self.case_dir(&case.id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("expected.out"), &case.golden)?;
        write_verdict(&dir, verdict, reports)?;
        if let Some(d) = &verdict.diff {
            std::fs::write(dir.join("output.diff"), d)?;
        }
        if let Some(r) = report {
            std::fs::write(dir.join("output"), &r.output)?;
            std::fs::write(dir.join("kmsg.log"), r.kmsg.join("\n") + "\n")?;
            if !r.reset.is_empty() {
                std::fs::write(dir.join("cleanup.txt"), r.reset.join("\n") + "\n")?;
            }
            if !r.artifacts.is_empty() {
                let a = dir.join("artifacts");
                std::fs::create_dir_all(&a)?;
                for (name, body) in &r.artifacts {
                    // Names come from the guest; keep them inside the directory.
                    let safe = name.replace(['/', '\\'], "_");
                    std::fs::write(a.join(safe), body)?;
                }
            }
        }
        if let Some(b) = boot {
            let link = dir.join("console.log");
            let _ = std::fs::remove_file(&link);
            let _ = std::os::unix::fs::symlink(
                Path::new("../../boots")
                    .join(b.to_string())
                    .join("console.log"),
                &link,
            );
        }
        let mut res = self.result(
            &case.id,
            verdict,
            report.map(|r| r.duration_ms).unwrap_or(0),
            boot,
            reports,
            &dir,
        );
        if let Some(r) = report {
            res.phases = r.phases.clone();
        }
        Ok(res)
    }

    /// The record of one trial in the summary.
    fn result(
        &self,
        id: &str,
        verdict: &Verdict,
        duration_ms: u64,
        boot: Option<u32>,
        reports: &[KernelReport],
        dir: &Path,
    ) -> CaseResult {
        CaseResult {
            id: id.to_string(),
            outcome: verdict.outcome.clone(),
            raw_outcome: verdict.raw_outcome.clone(),
            reasons: verdict.reasons.clone(),
            duration_ms,
            boot,
            reports: reports.to_vec(),
            dir: dir
                .strip_prefix(&self.root)
                .unwrap_or(dir)
                .display()
                .to_string(),
            phases: Default::default(),
        }
    }

    /// A trial that is not a case (a boot group's reports outside cases).
    pub fn write_trial(
        &self,
        id: &str,
        verdict: &Verdict,
        reports: &[KernelReport],
    ) -> Result<CaseResult> {
        let dir = self.case_dir(id);
        std::fs::create_dir_all(&dir)?;
        write_verdict(&dir, verdict, reports)?;
        Ok(self.result(id, verdict, 0, None, reports, &dir))
    }

    pub fn write_summary(&self, s: &Summary) -> Result<()> {
        std::fs::write(
            self.root.join("summary.json"),
            serde_json::to_string_pretty(s)?,
        )?;
        std::fs::write(self.root.join("junit.xml"), junit(s, self)?)?;
        Ok(())
    }
}

/// `verdict.txt`, and `reports.txt` with every kernel report in full.
fn write_verdict(dir: &Path, verdict: &Verdict, reports: &[KernelReport]) -> Result<()> {
    std::fs::write(
        dir.join("verdict.txt"),
        format!("{:?}\n{}\n", verdict.outcome, verdict.message()),
    )?;
    if !reports.is_empty() {
        let text: Vec<String> = reports.iter().map(KernelReport::render).collect();
        std::fs::write(dir.join("reports.txt"), text.join("\n"))?;
    }
    Ok(())
}

/// What CI shows about the kernel: its name, release, source and every
/// applied patch with its content hash.
pub fn kernel_properties(kernel: &serde_json::Value) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut put = |k: &str, x: Option<&serde_json::Value>| {
        if let Some(s) = x.and_then(|x| x.as_str()).filter(|s| !s.is_empty()) {
            v.push((k.to_string(), s.to_string()));
        }
    };
    put("kernel.name", kernel.get("name"));
    put("kernel.release", kernel.get("release"));
    let src = kernel.get("source");
    put("kernel.source.kind", src.and_then(|s| s.get("kind")));
    put("kernel.source.package", src.and_then(|s| s.get("package")));
    put("kernel.source.commit", src.and_then(|s| s.get("commit")));
    put("kernel.source.series", src.and_then(|s| s.get("series")));
    put("kernel.key", kernel.get("key"));
    if let Some(f) = kernel.get("fragments").and_then(|f| f.as_array()) {
        let names: Vec<&str> = f.iter().filter_map(|x| x.as_str()).collect();
        v.push(("kernel.fragments".into(), names.join(",")));
    }
    for (i, p) in src
        .and_then(|s| s.get("patches"))
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = p.get("name").and_then(|x| x.as_str()).unwrap_or("");
        let sha = p.get("sha256").and_then(|x| x.as_str()).unwrap_or("");
        v.push((
            format!("kernel.patch.{:02}", i + 1),
            format!("{name} sha256:{sha}"),
        ));
    }
    v
}

fn read_opt(p: &Path) -> Option<String> {
    std::fs::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// JUnit XML: one suite, one test case per case; not-run cases are skipped
/// with the reason; expected failures pass with the reason as output.
pub fn junit(s: &Summary, dir: &RunDir) -> Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("famfs-harness");
    let mut suite = TestSuite::new("famfs-harness");
    for (k, v) in kernel_properties(&s.kernel) {
        suite.add_property(quick_junit::Property::new(k, v));
    }
    for c in &s.cases {
        let status = match c.outcome {
            Outcome::Pass | Outcome::ExpectedFail => TestCaseStatus::success(),
            Outcome::KnownFail => {
                // A known defect passes the suite; its title stays visible.
                let mut st = TestCaseStatus::success();
                st.set_description(c.reasons.join("\n"));
                st
            }
            Outcome::NotRun => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(c.reasons.join("; "));
                st
            }
            Outcome::Error => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_message(c.reasons.first().cloned().unwrap_or_default());
                st.set_description(c.reasons.join("\n"));
                st
            }
            Outcome::Fail => {
                // A kernel report's title is what a dashboard groups by.
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                match c.reports.first() {
                    Some(r) => {
                        st.set_message(r.title.clone());
                        st.set_type(r.title.clone());
                    }
                    None => {
                        st.set_message(c.reasons.first().cloned().unwrap_or_default());
                    }
                }
                let case_dir = dir.root.join(&c.dir);
                let diff = read_opt(&case_dir.join("output.diff")).unwrap_or_default();
                let reports = read_opt(&case_dir.join("reports.txt")).unwrap_or_default();
                st.set_description(format!("{}\n{diff}{reports}", c.reasons.join("\n")));
                st
            }
        };
        let mut tc = TestCase::new(c.id.clone(), status);
        let (group, _) = c.id.split_once('/').unwrap_or(("cases", ""));
        tc.set_classname(format!("famfs-harness.{group}"));
        tc.set_time(std::time::Duration::from_millis(c.duration_ms));
        if let Some(out) = read_opt(&dir.root.join(&c.dir).join("output")) {
            tc.set_system_out(out);
        }
        if let Some(k) = read_opt(&dir.root.join(&c.dir).join("kmsg.log")) {
            tc.set_system_err(k);
        }
        suite.add_test_case(tc);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_name_the_process() {
        let id = run_id();
        let re = regex::Regex::new(r"^\d{8}-\d{6}-\d+$").unwrap();
        assert!(re.is_match(&id), "{id}");
        assert!(id.ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn run_ids_never_share_a_directory_and_pruning_keeps_the_newest() {
        let t = tempfile::tempdir().unwrap();
        let a = RunDir::create(t.path(), "20260101-000000-1").unwrap();
        let b = RunDir::create(t.path(), "20260101-000000-1").unwrap();
        assert_ne!(a.root, b.root);
        assert!(b.root.ends_with("20260101-000000-1-2"));
        b.mark_latest().unwrap();
        let c = RunDir::create(t.path(), "20260102-000000-1").unwrap();
        // `a` and `c` are in progress (locked) and `b` is latest: none goes.
        assert!(prune(t.path(), 1).unwrap().is_empty());
        // A child another test thread forks holds a copy of a lock's file
        // until it execs: a dropped lock may stay held for a moment.
        let prune_soon = |keep| {
            for _ in 0..100 {
                let gone = prune(t.path(), keep).unwrap();
                if !gone.is_empty() {
                    return gone;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            vec![]
        };
        drop(a);
        assert_eq!(prune_soon(1), vec![t.path().join("runs/20260101-000000-1")]);
        c.mark_latest().unwrap();
        drop(b);
        assert_eq!(prune_soon(1).len(), 1);
        assert!(t.path().join("runs/20260102-000000-1").exists());
        // 0 keeps everything.
        RunDir::create(t.path(), "20260103-000000-1").unwrap();
        assert!(prune(t.path(), 0).unwrap().is_empty());
    }
}
