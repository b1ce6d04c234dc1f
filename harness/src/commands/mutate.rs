//! `cargo xtask mutate`: which of a file's checks would the suite miss if
//! they broke? Each single-point mutant ([`super::mutants`]) of the lines a
//! coverage run reached is built as a patch on top of the kernel's series
//! (a seeded incremental variant), the trials that reached its line run on
//! it, and it is killed when the harness's verdict differs from the
//! unmutated kernel's: an outcome changed, a report appeared or went. The
//! results directory keeps one result per mutant, so a run resumes where it
//! stopped and shards (`--partition`) merge (`--merge`).

use super::mutants::{self, Mutant};
use crate::base::yaml;
use crate::events::note;
use crate::judge::verdict::Outcome;
use crate::plan::case::Case;
use crate::plan::select::{select, Partition, Selection};
use crate::report::coverage::Coverage;
use crate::report::results::{CaseResult, Summary};
use crate::run::Options;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `mutate` was asked.
pub struct Request {
    pub opts: Options,
    pub sel: Selection,
    /// The file to mutate, relative to the kernel tree (`fs/fuse/famfs.c`).
    pub file: String,
    /// Only these line ranges (inclusive); every reached line when empty.
    pub lines: Vec<(u32, u32)>,
    /// Start no mutant after this long (the rest stay for the next run).
    pub budget: Option<Duration>,
    pub partition: Option<Partition>,
    /// Orders the mutants (and so which `--max` keeps).
    pub seed: u64,
    pub max: Option<usize>,
    /// Where results are kept; the same directory resumes.
    pub results: PathBuf,
    /// A `test-vm --coverage` run of the same kernel and selection to take
    /// the reached lines from, instead of running one.
    pub coverage_run: Option<PathBuf>,
    /// Results directories of other shards to fold into `results`.
    pub merge: Vec<PathBuf>,
    /// Keep each mutant's tree and build (they are removed by default).
    pub keep_builds: bool,
}

/// What a mutation run is of: a resumed or merged run must match it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub kernel: String,
    pub file: String,
    /// sha256 of the file in the unmutated tree.
    pub source_sha256: String,
    pub seed: u64,
}

/// What a trial showed: its outcome and the titles of its reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub outcome: Outcome,
    pub titles: Vec<String>,
}

impl Seen {
    fn of(r: &CaseResult) -> Seen {
        Seen {
            outcome: r.outcome.clone(),
            titles: r.reports.iter().map(|k| k.title.clone()).collect(),
        }
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = serde_json::to_value(&self.outcome).unwrap_or_default();
        write!(f, "{}", o.as_str().unwrap_or("?"))?;
        for t in &self.titles {
            write!(f, " [{t}]")?;
        }
        Ok(())
    }
}

/// What became of a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A trial's verdict differed from the unmutated kernel's.
    Killed,
    /// Every trial that reached the line saw what it saw before.
    Survived,
    /// Triaged as changing no behaviour (`kernel-configs/mutants.yaml`).
    Equivalent,
    /// make failed: the mutant is not C the kernel compiles.
    NotCompiled,
}

/// One mutant's result, kept as `mutants/ID/result.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MutantResult {
    pub id: String,
    pub mutant: Mutant,
    pub status: Status,
    /// The trial that killed it, and what it saw before and after.
    pub killed_by: Option<String>,
    pub detail: String,
    /// The trials run on it (the most focused first; none after a kill).
    pub trials: Vec<String>,
    /// Patch, build and boot preparation.
    pub build_s: f64,
    pub run_s: f64,
    /// Its run directory (kept whatever became of the mutant).
    pub run: Option<PathBuf>,
}

impl MutantResult {
    /// A result not judged yet: survived until a trial says otherwise.
    fn new(id: &str, m: &Mutant, status: Status, detail: String) -> MutantResult {
        MutantResult {
            id: id.into(),
            mutant: m.clone(),
            status,
            killed_by: None,
            detail,
            trials: vec![],
            build_s: 0.0,
            run_s: 0.0,
            run: None,
        }
    }
}

/// A mutant triaged as equivalent: matched by its line's text before and
/// after (trimmed), so the entry holds wherever the line moves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Equivalent {
    pub file: String,
    pub before: String,
    pub after: String,
    /// The nearest non-blank line above (trimmed), for a line whose text
    /// alone is too common (`return 0;`).
    #[serde(default)]
    pub previous: Option<String>,
    pub why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Triage {
    equivalent: Vec<Equivalent>,
}

/// The triage of survivors, below the checkout.
pub const TRIAGE: &str = "kernel-configs/mutants.yaml";

/// The equivalent mutants listed in `root`'s [`TRIAGE`] (none when absent).
pub fn load_triage(root: &Path) -> Result<Vec<Equivalent>> {
    let path = root.join(TRIAGE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(yaml::parse::<Triage>(&path, &text, 0)?.equivalent),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn equivalent<'a>(
    list: &'a [Equivalent],
    file: &str,
    text: &str,
    m: &Mutant,
) -> Option<&'a Equivalent> {
    let above: Vec<&str> = text.lines().take(m.line as usize - 1).collect();
    let previous = above.iter().map(|l| l.trim()).rfind(|l| !l.is_empty());
    list.iter().find(|e| {
        e.file == file
            && e.before.trim() == m.before.trim()
            && e.after.trim() == m.after.trim()
            && e.previous
                .as_deref()
                .is_none_or(|p| Some(p.trim()) == previous)
    })
}

/// The unmutated kernel's runs: the reached lines per trial and what each
/// trial showed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Baseline {
    pub subject: Subject,
    pub coverage_run: PathBuf,
    pub run: PathBuf,
    /// Trials that reached each line of the file.
    pub reached: BTreeMap<u32, Vec<String>>,
    /// Lines of the file each trial reached (for the nearest case).
    pub lines_of: BTreeMap<String, usize>,
    pub seen: BTreeMap<String, Seen>,
}

/// The lines of `file` each trial of a coverage run reached.
pub fn reached_lines(run: &Path, file: &str) -> Result<BTreeMap<String, BTreeSet<u32>>> {
    let summary = Summary::read(run)?;
    let mut out = BTreeMap::new();
    for c in &summary.cases {
        let info = run.join(&c.dir).join("coverage.info");
        let Ok(text) = std::fs::read_to_string(&info) else {
            continue;
        };
        let cov = Coverage::from_lcov(&text, &info)?;
        let lines: BTreeSet<u32> = cov
            .files
            .iter()
            .filter(|(path, _)| path.ends_with(&format!("/{file}")) || *path == file)
            .flat_map(|(_, f)| f.lines.iter().filter(|(_, n)| **n > 0).map(|(l, _)| *l))
            .collect();
        out.insert(c.id.clone(), lines);
    }
    if out.is_empty() {
        bail!(
            "{}: no trial has coverage (run `cargo xtask test-vm --coverage` or let mutate run one)",
            run.display()
        );
    }
    Ok(out)
}

/// A small deterministic generator (xorshift64*): the order for a seed.
fn shuffled<T>(mut v: Vec<T>, seed: u64) -> Vec<T> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let j = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Every mutant of the reached lines with its id, in the seed's order,
/// `--max` of them, this shard's.
pub fn plan(
    text: &str,
    lines: &[(u32, u32)],
    reached: &BTreeSet<u32>,
    seed: u64,
    max: Option<usize>,
    partition: Option<&Partition>,
) -> Vec<(String, Mutant)> {
    let mut per_line: BTreeMap<(u32, String), usize> = BTreeMap::new();
    let all: Vec<(String, Mutant)> = mutants::of_file(text, lines, Some(reached))
        .into_iter()
        .map(|m| {
            let n = per_line.entry((m.line, m.kind.clone())).or_default();
            *n += 1;
            (m.id(*n), m)
        })
        .collect();
    let mut all = shuffled(all, seed);
    all.truncate(max.unwrap_or(usize::MAX));
    all.into_iter()
        .enumerate()
        .filter(|(i, (id, _))| partition.is_none_or(|p| p.keeps(*i, id)))
        .map(|(_, m)| m)
        .collect()
}

/// What the mutant's trials saw against the baseline: the first trial that
/// differs, with before and after.
pub fn judge(baseline: &BTreeMap<String, Seen>, ran: &[CaseResult]) -> Option<(String, String)> {
    ran.iter().find_map(|r| {
        let now = Seen::of(r);
        let before = baseline.get(&r.id)?;
        (now != *before).then(|| {
            let why = r
                .reasons
                .first()
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            (r.id.clone(), format!("{before} -> {now}{why}"))
        })
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> Result<T> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a mutate result", p.display()))
}

fn write_json<T: Serialize>(p: &Path, v: &T) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    crate::base::cache::write_atomic(p, serde_json::to_string_pretty(v)?.as_bytes())
}

/// The results kept in `dir`, by mutant id.
pub fn results_in(dir: &Path) -> Result<BTreeMap<String, MutantResult>> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir.join("mutants")) else {
        return Ok(out);
    };
    for e in rd {
        let p = e?.path().join("result.json");
        if p.exists() {
            let r: MutantResult = read_json(&p)?;
            out.insert(r.id.clone(), r);
        }
    }
    Ok(out)
}

/// The score over mutants that are neither equivalent nor uncompilable.
pub fn score(results: &BTreeMap<String, MutantResult>) -> (usize, usize) {
    let killed = results
        .values()
        .filter(|r| r.status == Status::Killed)
        .count();
    let survived = results
        .values()
        .filter(|r| r.status == Status::Survived)
        .count();
    (killed, killed + survived)
}

/// The report: the score, then each survivor as untested behaviour with
/// its nearest case, then every mutant.
pub fn render(
    subject: &Subject,
    base: &Baseline,
    results: &BTreeMap<String, MutantResult>,
    planned: usize,
) -> String {
    let (killed, counted) = score(results);
    let count = |s| results.values().filter(|r| r.status == s).count();
    let pct = if counted == 0 {
        0.0
    } else {
        100.0 * killed as f64 / counted as f64
    };
    let mut s = format!(
        "mutation score of {} on {}: {killed}/{counted} ({pct:.1}%) killed; {} survived, {} equivalent, {} not compiled; {} of {planned} mutants done\n",
        subject.file,
        subject.kernel,
        count(Status::Survived),
        count(Status::Equivalent),
        count(Status::NotCompiled),
        results.len(),
    );
    let mut by_line: Vec<&MutantResult> = results.values().collect();
    by_line.sort_by_key(|r| (r.mutant.line, r.id.clone()));
    let survivors: Vec<_> = by_line
        .iter()
        .filter(|r| r.status == Status::Survived)
        .collect();
    if !survivors.is_empty() {
        s += "untested behaviour (survivors):\n";
    }
    for r in survivors {
        s += &format!(
            "  {}:{}: {} ({}): `{}`; nearest case {}\n",
            subject.file,
            r.mutant.line,
            r.mutant.kind,
            r.mutant.change,
            r.mutant.after.trim(),
            nearest(base, r.mutant.line).unwrap_or("none"),
        );
    }
    s += "mutants:\n";
    for r in by_line {
        let st = serde_json::to_value(r.status).unwrap_or_default();
        s += &format!(
            "  {:<24} {:<13} {}{}\n",
            r.id,
            st.as_str().unwrap_or("?"),
            r.mutant.change,
            match &r.killed_by {
                Some(t) => format!("; killed by {t}: {}", r.detail),
                None if !r.detail.is_empty() => format!("; {}", r.detail),
                None => String::new(),
            }
        );
    }
    s
}

/// The trial that reached `line` and the fewest other lines of the file:
/// the case closest to the behaviour.
pub fn nearest(base: &Baseline, line: u32) -> Option<&str> {
    base.reached
        .get(&line)?
        .iter()
        .min_by_key(|t| (base.lines_of.get(*t).copied().unwrap_or(usize::MAX), *t))
        .map(String::as_str)
}

/// The kernel's name for the subject.
fn kernel_name(opts: &Options) -> String {
    match &opts.kernel.choice {
        crate::kernel::resolve::KernelChoice::Named(n) => n.clone(),
        other => format!("{other:?}"),
    }
}

/// Run `cases` on `opts`' kernel into `results/runs`: the summary, and the
/// error that stopped the run.
fn run_cases(opts: &Options, cases: &[Case]) -> Result<(crate::run::Prepared, Result<Summary>)> {
    let p = crate::run::prepare(opts)?;
    let ran = crate::run::execute(&p, cases, &mut |_| {});
    Ok((p, ran))
}

/// The unmutated kernel's coverage and verdicts: read back when kept,
/// run otherwise.
fn baseline(req: &Request, cases: &[Case]) -> Result<(Baseline, String)> {
    let path = req.results.join("baseline.json");
    let mut opts = req.opts.clone();
    opts.results_root = req.results.clone();
    opts.kernel.coverage = false;
    let kernel = kernel_name(&opts);
    if path.exists() {
        let b: Baseline = read_json(&path)?;
        let text = std::fs::read_to_string(req.results.join("source"))?;
        if b.subject.kernel != kernel || b.subject.file != req.file || b.subject.seed != req.seed {
            bail!(
                "{}: these results are of {} on {} with seed {}; give another --results for {} on {kernel} with seed {}",
                path.display(),
                b.subject.file,
                b.subject.kernel,
                b.subject.seed,
                req.file,
                req.seed
            );
        }
        return Ok((b, text));
    }
    note("mutate: the unmutated kernel first (its verdicts are the oracle)".to_string());
    let (p, ran) = run_cases(&opts, cases)?;
    let summary = ran.context("the unmutated kernel's run")?;
    let src = p
        .kernel
        .source
        .as_ref()
        .context("mutate needs a kernel built from source")?;
    let text = std::fs::read_to_string(src.path.join(&req.file))
        .with_context(|| format!("reading {} in {}", req.file, src.path.display()))?;
    let run = req.results.join("runs").join(&summary.run_id);
    let coverage_run = match &req.coverage_run {
        Some(r) => r.clone(),
        None => {
            note("mutate: a coverage run of the selection (the lines to mutate)".to_string());
            opts.kernel.coverage = true;
            let (_, cov) = run_cases(&opts, cases)?;
            let s = cov.context("the coverage run")?;
            req.results.join("runs").join(s.run_id)
        }
    };
    let per_trial = reached_lines(&coverage_run, &req.file)?;
    let mut reached: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (t, lines) in &per_trial {
        for l in lines {
            reached.entry(*l).or_default().push(t.clone());
        }
    }
    let b = Baseline {
        subject: Subject {
            kernel,
            file: req.file.clone(),
            source_sha256: crate::base::hex(&sha2::Sha256::digest(text.as_bytes())),
            seed: req.seed,
        },
        coverage_run,
        run,
        reached,
        lines_of: per_trial
            .iter()
            .map(|(t, l)| (t.clone(), l.len()))
            .collect(),
        seen: summary
            .cases
            .iter()
            .map(|c| (c.id.clone(), Seen::of(c)))
            .collect(),
    };
    std::fs::write(req.results.join("source"), &text)?;
    write_json(&path, &b)?;
    Ok((b, text))
}

/// What each trial of the unmutated kernel's run took (ms).
fn baseline_durations(run: &Path) -> BTreeMap<String, u64> {
    Summary::read(run)
        .map(|s| {
            s.cases
                .iter()
                .map(|c| (c.id.clone(), c.duration_ms))
                .collect()
        })
        .unwrap_or_default()
}

/// A mutant that hangs a trial is killed by its timeout: the case's own
/// (minutes under TCG) would make one such mutant cost more than the rest
/// together. The trial gets four times what it took on the unmutated
/// kernel, at least 20 s, never more than its own timeout.
fn with_timeout_of(c: &Case, took_ms: Option<u64>, scale: f64) -> Case {
    let mut c = c.clone();
    if let Some(ms) = took_ms {
        // The header's timeout is scaled by the accelerator (x4 under
        // TCG); this one is real time, so it is given unscaled.
        let real = (4 * ms).div_ceil(1000).max(20) as f64;
        let unscaled = (real / scale.max(1.0)).ceil() as u64;
        c.meta.timeout = c.meta.timeout.min(unscaled.max(5));
    }
    c
}

/// Trials run on a mutant before the rest: the ones that reach the fewest
/// other lines of the file.
const FIRST_BATCH: usize = 6;

/// Build and run one mutant.
fn one(
    req: &Request,
    base: &Baseline,
    text: &str,
    cases: &[Case],
    id: &str,
    m: &Mutant,
    accel: &mut Option<crate::vm::Accel>,
) -> Result<MutantResult> {
    let dir = req.results.join("mutants").join(id);
    let series = dir.join("patch");
    std::fs::create_dir_all(&series)?;
    std::fs::write(
        series.join("0001-mutant.patch"),
        mutants::patch(&req.file, text, m),
    )?;
    // The most focused trials first: most mutants die there, and a killed
    // mutant needs no further trial.
    let mut trials: Vec<String> = base.reached.get(&m.line).cloned().unwrap_or_default();
    trials.sort_by_key(|t| {
        (
            base.lines_of.get(t).copied().unwrap_or(usize::MAX),
            t.clone(),
        )
    });
    let mut opts = req.opts.clone();
    opts.kernel.patches.push(series);
    opts.kernel.coverage = false;
    opts.results_root = dir.clone();
    // The machine's accelerator does not change with one line of famfs.c:
    // the first mutant's probe answers for the rest.
    opts.accel = *accel;
    let mut r = MutantResult::new(id, m, Status::Survived, String::new());
    let t0 = Instant::now();
    let p = match crate::run::prepare(&opts) {
        Ok(p) => p,
        // A signal stops make too: that is no verdict on the mutant.
        Err(e) if crate::base::proc::interrupted().is_some() => return Err(e),
        Err(e)
            if e.downcast_ref::<crate::kernel::build::MakeFailed>()
                .is_some() =>
        {
            r.status = Status::NotCompiled;
            r.detail = format!("{e:#}").lines().last().unwrap_or("").trim().into();
            r.build_s = t0.elapsed().as_secs_f64();
            return Ok(r);
        }
        Err(e) => return Err(e.context(format!("building mutant {id}"))),
    };
    r.build_s = t0.elapsed().as_secs_f64();
    *accel = Some(p.accel);
    let took = baseline_durations(&base.run);
    let scale = p.accel.timeout_scale();
    let chosen: Vec<Case> = trials
        .iter()
        .filter_map(|t| cases.iter().find(|c| &c.id == t))
        .map(|c| with_timeout_of(c, took.get(&c.id).copied(), scale))
        .collect();
    let t1 = Instant::now();
    let first = chosen.len().min(FIRST_BATCH);
    for batch in [&chosen[..first], &chosen[first..]] {
        if batch.is_empty() || r.status == Status::Killed {
            continue;
        }
        r.trials.extend(batch.iter().map(|c| c.id.clone()));
        let ran = crate::run::execute(&p, batch, &mut |_| {});
        if let Some(sig) = crate::base::proc::interrupted() {
            // Cut short: no verdict on this mutant; the next command redoes it.
            bail!("interrupted by signal {sig} while mutant {id} ran");
        }
        match ran {
            Ok(s) => {
                r.run = Some(dir.join("runs").join(&s.run_id));
                if let Some((t, why)) = judge(&base.seen, &s.cases) {
                    (r.status, r.killed_by, r.detail) = (Status::Killed, Some(t), why);
                }
            }
            // The kernel did not get through the run: the suite saw it.
            Err(e) => {
                r.status = Status::Killed;
                r.killed_by = Some("the run".into());
                r.detail = format!("{e:#}").lines().next().unwrap_or("").into();
            }
        }
    }
    r.run_s = t1.elapsed().as_secs_f64();
    if !req.keep_builds {
        remove_build(&p.kernel);
    }
    Ok(r)
}

/// Drop a mutant's patched tree and build directory: each is a few hundred
/// MB and never used again.
fn remove_build(k: &crate::kernel::build::KernelArtifacts) {
    if let Some(tree) = k.source.as_ref().and_then(|s| s.path.parent()) {
        if tree
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("patched-"))
        {
            let _ = std::fs::remove_dir_all(tree);
        }
    }
    if let Some(b) = &k.build_dir {
        let _ = std::fs::remove_dir_all(b);
    }
}

/// Fold other shards' results into `req.results` (same subject only).
fn merge(req: &Request, subject: &Subject) -> Result<()> {
    for other in &req.merge {
        let b: Baseline = read_json(&other.join("baseline.json"))?;
        if b.subject != *subject {
            bail!(
                "{}: a mutation run of {} on {} (source {}), not of {} on {} (source {}): it cannot be merged",
                other.display(),
                b.subject.file,
                b.subject.kernel,
                &b.subject.source_sha256[..12],
                subject.file,
                subject.kernel,
                &subject.source_sha256[..12]
            );
        }
        for (id, r) in results_in(other)? {
            write_json(
                &req.results.join("mutants").join(&id).join("result.json"),
                &r,
            )?;
        }
    }
    Ok(())
}

pub fn main(req: &Request) -> Result<i32> {
    // The first Ctrl-C stops the mutant's VMs or build; what finished is
    // kept and reported.
    let _wind_down = crate::base::proc::WindDown::begin();
    std::fs::create_dir_all(&req.results)?;
    let triage = load_triage(&req.opts.root)?;
    let cases = select(&req.opts.cases_dir(), &req.sel)?;
    let (base, text) = baseline(req, &cases)?;
    merge(req, &base.subject)?;
    let reached: BTreeSet<u32> = base.reached.keys().copied().collect();
    let planned = plan(
        &text,
        &req.lines,
        &reached,
        req.seed,
        req.max,
        req.partition.as_ref(),
    );
    if planned.is_empty() {
        bail!(
            "no mutant of {} on the reached lines{}: choose other --lines or cases",
            req.file,
            req.lines
                .iter()
                .map(|(a, b)| format!(" {a}-{b}"))
                .collect::<String>()
        );
    }
    let start = Instant::now();
    let mut accel = None;
    let mut results = results_in(&req.results)?;
    let todo = planned
        .iter()
        .filter(|(id, _)| !results.contains_key(id))
        .count();
    note(format!(
        "mutate: {} mutants of {} ({} to do, {} kept in {}), first {}",
        planned.len(),
        req.file,
        todo,
        planned.len() - todo,
        req.results.display(),
        planned[0].0
    ));
    for (i, (id, m)) in planned.iter().enumerate() {
        if results.contains_key(id) {
            continue;
        }
        if crate::base::proc::interrupted().is_some() {
            break;
        }
        if req.budget.is_some_and(|b| start.elapsed() >= b) {
            note(format!(
                "mutate: the budget is spent; {} mutants left: the same command goes on",
                planned.len() - results.len().min(planned.len())
            ));
            break;
        }
        let r = match equivalent(&triage, &req.file, &text, m) {
            Some(e) => MutantResult::new(id, m, Status::Equivalent, e.why.clone()),
            None => match one(req, &base, &text, &cases, id, m, &mut accel) {
                Ok(r) => r,
                Err(e) if crate::base::proc::interrupted().is_some() => {
                    note(format!("mutate: {e:#}"));
                    break;
                }
                Err(e) => return Err(e),
            },
        };
        note(format!(
            "mutant {}/{} {id} ({}): {}{}",
            i + 1,
            planned.len(),
            m.change,
            serde_json::to_value(r.status)?.as_str().unwrap_or("?"),
            r.killed_by
                .as_ref()
                .map(|t| format!(" by {t}: {}", r.detail))
                .unwrap_or_default()
        ));
        write_json(
            &req.results.join("mutants").join(id).join("result.json"),
            &r,
        )?;
        results.insert(id.clone(), r);
    }
    let ids: BTreeSet<&String> = planned.iter().map(|(id, _)| id).collect();
    results.retain(|id, _| ids.contains(id));
    // A survivor triaged since it ran is equivalent from now on.
    for r in results.values_mut() {
        if r.status != Status::Survived {
            continue;
        }
        if let Some(e) = equivalent(&triage, &req.file, &text, &r.mutant) {
            (r.status, r.detail) = (Status::Equivalent, e.why.clone());
            write_json(
                &req.results.join("mutants").join(&r.id).join("result.json"),
                &*r,
            )?;
        }
    }
    let report = render(&base.subject, &base, &results, planned.len());
    std::fs::write(req.results.join("report.txt"), &report)?;
    print!("{report}");
    eprintln!(
        "[harness] mutate: report in {}",
        req.results.join("report.txt").display()
    );
    let done = results.len() == planned.len();
    Ok(if let Some(sig) = crate::base::proc::interrupted() {
        128 + sig
    } else if done {
        0
    } else {
        3
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "int f(int a)\n{\n\tif (a < 4)\n\t\treturn -EINVAL;\n\tif (a == 9)\n\t\treturn 0;\n\treturn 1;\n}\n";

    fn result(id: &str, line: u32, status: Status) -> MutantResult {
        let m = mutants::of_line(line, "\tif (a < 4)").remove(0);
        MutantResult::new(id, &m, status, String::new())
    }

    #[test]
    fn the_plan_is_the_reached_lines_mutants_in_the_seeds_order_and_shards_cover_it_once() {
        let reached: BTreeSet<u32> = [3, 4, 5, 6].into();
        let a = plan(TEXT, &[], &reached, 7, None, None);
        assert_eq!(a, plan(TEXT, &[], &reached, 7, None, None), "deterministic");
        assert!(a.iter().all(|(_, m)| reached.contains(&m.line)));
        assert!(!a.iter().any(|(_, m)| m.line == 7), "line 7 is not reached");
        let ids: BTreeSet<&str> = a.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), a.len(), "ids are unique: {ids:?}");
        assert!(ids.contains("L3-relational-1") && ids.contains("L4-no-return-1"));
        let other = plan(TEXT, &[], &reached, 8, None, None);
        assert_ne!(
            a.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            other.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            "another seed, another order"
        );
        let only = plan(TEXT, &[(5, 6)], &reached, 7, Some(2), None);
        assert_eq!(only.len(), 2);
        assert!(only.iter().all(|(_, m)| (5..=6).contains(&m.line)));
        let mut union: Vec<String> = (1..=3)
            .flat_map(|k| {
                let p = Partition::parse(&format!("{k}/3")).unwrap();
                plan(TEXT, &[], &reached, 7, None, Some(&p))
            })
            .map(|(id, _)| id)
            .collect();
        union.sort();
        let mut all: Vec<String> = a.into_iter().map(|(id, _)| id).collect();
        all.sort();
        assert_eq!(union, all);
    }

    fn case(id: &str, outcome: Outcome, title: Option<&str>) -> CaseResult {
        let mut r: CaseResult = serde_json::from_value(serde_json::json!({
            "id": id, "outcome": outcome, "raw_outcome": outcome, "reasons": ["output differs"],
            "duration_ms": 1, "boot": 1, "reports": [], "dir": "x"
        }))
        .unwrap();
        if let Some(t) = title {
            r.reports = vec![serde_json::from_value(serde_json::json!({
                "kind": "warning", "title": t, "header": "", "text": []
            }))
            .unwrap()];
        }
        r
    }

    #[test]
    fn a_mutant_is_killed_by_a_changed_outcome_or_report_and_survives_otherwise() {
        let before = [
            case("famfs/010[a]", Outcome::Pass, None),
            case("famfs/041[b]", Outcome::KnownFail, Some("WARNING in f")),
        ];
        let base: BTreeMap<String, Seen> =
            before.iter().map(|c| (c.id.clone(), Seen::of(c))).collect();
        assert_eq!(judge(&base, &before), None);
        let (t, why) = judge(&base, &[case("famfs/010[a]", Outcome::Fail, None)]).unwrap();
        assert_eq!(t, "famfs/010[a]");
        assert_eq!(why, "pass -> fail: output differs");
        // A known defect gone is a change too.
        let (_, why) = judge(&base, &[case("famfs/041[b]", Outcome::Pass, None)]).unwrap();
        assert_eq!(why, "known_fail [WARNING in f] -> pass: output differs");
        let (_, why) = judge(
            &base,
            &[case(
                "famfs/041[b]",
                Outcome::KnownFail,
                Some("WARNING in g"),
            )],
        )
        .unwrap();
        assert!(why.contains("[WARNING in g]"), "{why}");
    }

    #[test]
    fn the_report_scores_killed_over_non_equivalent_and_names_each_survivors_nearest_case() {
        let mut results = BTreeMap::new();
        for (id, st) in [
            ("L3-relational-1", Status::Killed),
            ("L3-relational-2", Status::Survived),
            ("L3-negate-1", Status::Equivalent),
            ("L3-boundary-1", Status::NotCompiled),
        ] {
            results.insert(id.to_string(), result(id, 3, st));
        }
        assert_eq!(score(&results), (1, 2));
        let subject = Subject {
            kernel: "famfs-v10".into(),
            file: "fs/fuse/famfs.c".into(),
            source_sha256: "0".repeat(64),
            seed: 1,
        };
        let base = Baseline {
            subject: subject.clone(),
            coverage_run: "c".into(),
            run: "r".into(),
            reached: [(3, vec!["famfs/001".into(), "famfs/010[a]".into()])].into(),
            lines_of: [("famfs/001".into(), 300), ("famfs/010[a]".into(), 40)].into(),
            seen: BTreeMap::new(),
        };
        assert_eq!(nearest(&base, 3), Some("famfs/010[a]"));
        let r = render(&subject, &base, &results, 6);
        assert!(
            r.starts_with("mutation score of fs/fuse/famfs.c on famfs-v10: 1/2 (50.0%) killed; 1 survived, 1 equivalent, 1 not compiled; 4 of 6 mutants done\n"),
            "{r}"
        );
        assert!(
            r.contains("untested behaviour (survivors):\n  fs/fuse/famfs.c:3: relational (< -> <=): `if (a <= 4)`; nearest case famfs/010[a]\n"),
            "{r}"
        );
    }

    #[test]
    fn a_trial_on_a_mutant_gets_four_times_what_it_took_before() {
        let c = &crate::plan::case::discover(
            &crate::image::guest_program::workspace_root().join("cases"),
        )
        .unwrap()
        .into_iter()
        .find(|c| c.id == "famfs/001")
        .unwrap();
        let own = c.meta.timeout;
        // 12 s before: 48 s of real time, 12 s of header time under TCG (x4).
        assert_eq!(
            with_timeout_of(c, Some(12_000), 4.0).meta.timeout,
            12.min(own)
        );
        // Quick trials get 20 s at least; KVM does not scale.
        assert_eq!(with_timeout_of(c, Some(100), 1.0).meta.timeout, 20.min(own));
        // Never longer than the case's own, nor changed without a figure.
        assert_eq!(with_timeout_of(c, Some(10_000_000), 4.0).meta.timeout, own);
        assert_eq!(with_timeout_of(c, None, 4.0).meta.timeout, own);
    }

    #[test]
    fn the_triage_file_parses_and_matches_by_text() {
        let root = tempfile::tempdir().unwrap();
        assert!(load_triage(root.path()).unwrap().is_empty());
        std::fs::create_dir_all(root.path().join("kernel-configs")).unwrap();
        std::fs::write(
            root.path().join(TRIAGE),
            "equivalent:\n  - file: fs/fuse/famfs.c\n    before: \"if (a < 4)\"\n    after: \"if (a <= 4)\"\n    why: a is never 4\n",
        )
        .unwrap();
        let t = load_triage(root.path()).unwrap();
        let m = &mutants::of_line(3, "\t\tif (a < 4)")[0];
        assert_eq!(
            equivalent(&t, "fs/fuse/famfs.c", TEXT, m).unwrap().why,
            "a is never 4"
        );
        assert!(equivalent(&t, "fs/fuse/inode.c", TEXT, m).is_none());
        // `previous` narrows a common line to one place.
        std::fs::write(
            root.path().join(TRIAGE),
            "equivalent:\n  - file: f.c\n    before: return 0;\n    after: return 1;\n    previous: if (a == 9)\n    why: w\n",
        )
        .unwrap();
        let t = load_triage(root.path()).unwrap();
        let at = |n: u32, l: &str| mutants::of_line(n, l).remove(0);
        assert!(equivalent(&t, "f.c", TEXT, &at(6, "\t\treturn 0;")).is_some());
        let other = "x;\nreturn 0;\n";
        assert!(equivalent(&t, "f.c", other, &at(2, "return 0;")).is_none());
        std::fs::write(
            root.path().join(TRIAGE),
            "equivalent:\n  - file: x\n    whence: y\n",
        )
        .unwrap();
        let e = load_triage(root.path()).unwrap_err().to_string();
        assert!(e.contains("kernel-configs/mutants.yaml:3"), "{e}");
    }
}
