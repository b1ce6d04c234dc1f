//! `cargo xtask fuzz fmap`: a differential fuzzer of a famfs kernel's fmap
//! handling. Each round famfsd serves generated files to the kernel in
//! the VM (batches of files, one mount per batch, a boot per VM, a fresh
//! boot after a crash), the guest exercises each one (`fh-guest
//! fuzz-files`) and the host judges what it saw against the kernel model
//! (`server::oracle`) and the crash detector. A finding (a kernel report,
//! a hang, wrong data, a verdict the model does not give) is grouped by
//! its class, minimised by delta debugging over extents and fields, and
//! written out as a case `test-vm --cases` replays.

use crate::events::note;
use crate::fuzz::protocol::input::{self, Input};
use crate::fuzz::Rng;
use crate::plan::case::Case;
use crate::run::{Options, Prepared};
use crate::server::scenario::Config;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to fuzz, for how long, where results go.
#[derive(Debug, Clone)]
pub struct Request {
    pub opts: Options,
    pub duration: Duration,
    pub seed: u64,
    /// Interesting inputs: read at the start, added to as they are found.
    pub corpus: PathBuf,
    pub results: PathBuf,
    /// Shard `k` of `n` machines: its own stream of inputs.
    pub partition: Option<(u32, u32)>,
    /// Files per mount.
    pub batch: usize,
    /// The known findings (None: `kernel-configs/fuzz-known.yaml`).
    pub known: Option<PathBuf>,
}

/// The device path famfsd's scenarios name in the guest (the case's
/// `$FH_DAX`) and in the host's copy the model reads.
const DAX_IN_GUEST: &str = "$FH_DAX";
const DAX_ON_HOST: &str = "/dev/dax0.0";
/// Most minimisation steps per finding.
const STEPS: u32 = 8;

/// One kind of finding and its smallest known input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub class: String,
    /// What the kernel did, in a person's words (the first sighting).
    pub text: String,
    /// What a correct kernel does with the same fmap (the model).
    pub model: String,
    pub count: u64,
    /// Seconds into the run of the first sighting.
    pub first_s: f64,
    pub input: Input,
    /// Minimisation: steps taken, and whether it is done.
    pub steps: u32,
    pub minimised: bool,
    /// It showed on a file of its own (not only beside others).
    pub alone: bool,
    /// Sightings beside other files tried alone.
    pub tries: u32,
}

/// What one file showed, judged.
struct Seen {
    classes: Vec<(String, String)>,
    model: String,
    reached: Vec<String>,
}

/// One case of a round: the files it serves and why.
struct Work {
    files: Vec<Input>,
    /// Minimising this finding's class (one file).
    minimise: Option<String>,
}

/// Everything the loop keeps.
struct State {
    rng: Rng,
    profile: famfs_proto::Profile,
    weights: BTreeMap<String, f64>,
    corpus: Vec<Input>,
    reached: BTreeMap<String, u64>,
    findings: BTreeMap<String, Finding>,
    files: u64,
    rounds: u32,
    start: Instant,
}

/// The scenario of `files` as the host's model reads it.
fn host_config(files: &[&Input], p: &famfs_proto::Profile) -> Result<Config> {
    let text = Input::scenario(files, DAX_ON_HOST, "fuzzed files");
    Config::from_text(Path::new("fuzz.yaml"), &text, Some(p.clone()))
}

/// The case script serving `files`; `judge`: print the model's verdict
/// (a replayed finding) instead of observations.
pub fn case_script(files: &[&Input], what: &str, judge: bool) -> String {
    let scenario = Input::scenario(files, DAX_IN_GUEST, what);
    format!(
        "#!/bin/sh\n# ---\n# description: >-\n#   {what}\n# groups: [fuzz]\n# requires:\n#   pmem: 512M\n#   kconfig: [FUSE_FS, DEV_DAX, DEV_DAX_FSDEV]\n# timeout: 600\n# ---\n\
         . \"$FH_COMMON\"\n\
         cat > scenario.yaml << EOF\n{scenario}EOF\n\
         _famfs_begin {area}M\n\
         _famfsd_start scenario.yaml --read-only\n\
         \"$FH_TOOL\" fuzz-files scenario.yaml \"$MNT\" \"$FH_PROFILE\"{j}\n\
         if [ $? = {hung} ]; then\n\
         \t_boot_spoiled \"a fuzzed file hung a task\"\n\
         \t_famfsd_stop_or_blocks > /dev/null\n\
         else\n\
         \t_famfsd_stop\n\
         fi\n",
        area = input::AREA >> 20,
        j = if judge { " --judge" } else { "" },
        hung = crate::guest::fuzz::HUNG,
    )
}

/// A cases directory holding the harness's shared helpers.
fn cases_dir(dir: &Path, root: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir.join("fuzz"));
    std::fs::create_dir_all(dir.join("fuzz"))?;
    std::fs::copy(root.join("cases/common.sh"), dir.join("common.sh"))
        .context("copying cases/common.sh")?;
    Ok(())
}

/// Judge one observation: its disagreements and the titles of the kernel
/// reports it logged.
fn judge_obs(cfg: Config, obs: &crate::contract::fuzz::Observation) -> Result<Seen> {
    let refused = crate::guest::fuzz::daxdev_refused(&cfg);
    let j = crate::server::oracle::judge(cfg, obs, refused)?;
    let mut classes: Vec<(String, String)> = j
        .disagreements
        .into_iter()
        .map(|d| (d.class, d.text))
        .collect();
    for r in crate::judge::reports::parse(obs.kmsg.iter().map(String::as_str)) {
        classes.push((
            r.title.clone(),
            format!("{}: kernel report: {}", obs.path, r.title),
        ));
    }
    Ok(Seen {
        classes,
        model: format!("{} ({})", j.expect.tokens(), j.expect.why),
        reached: j.reached,
    })
}

/// What each file of one case showed: by file index; a file the run never
/// got to is absent.
fn read_case(
    run: &Path,
    r: &crate::report::results::CaseResult,
    work: &Work,
    p: &famfs_proto::Profile,
) -> Result<BTreeMap<usize, Seen>> {
    use crate::contract::fuzz::{Observation, BEGIN};
    let out = std::fs::read_to_string(run.join(&r.dir).join("output")).unwrap_or_default();
    let refs: Vec<&Input> = work.files.iter().collect();
    // The batch's scenario, parsed once for all its observations.
    let cfg = host_config(&refs, p)?;
    let mut seen = BTreeMap::new();
    let mut last_begun = None;
    let index = |path: &str| {
        path.strip_prefix("/f")
            .and_then(|n| n.parse::<usize>().ok())
    };
    for line in out.lines() {
        if let Some(path) = line.strip_prefix(BEGIN) {
            last_begun = index(path);
        } else if let Some(obs) = Observation::parse(line) {
            let Some(k) = index(&obs.path) else { continue };
            seen.insert(k, judge_obs(cfg.clone(), &obs)?);
        }
    }
    // A file begun and never reported took the VM (or the case) down with
    // it: the case's kernel reports are its.
    if let Some(k) = last_begun.filter(|k| !seen.contains_key(k)) {
        let mut classes: Vec<(String, String)> = r
            .reports
            .iter()
            .map(|x| {
                (
                    x.title.clone(),
                    format!("/f{k}: kernel report: {}", x.title),
                )
            })
            .collect();
        if classes.is_empty() && r.outcome != crate::judge::verdict::Outcome::Pass {
            let why = r.reasons.first().cloned().unwrap_or_default();
            classes.push((
                "the exercise did not finish".into(),
                format!("/f{k}: {why}"),
            ));
        }
        let cfg = host_config(&refs, p)?;
        let e = crate::server::expect::open_expectation(cfg, &format!("/f{k}"))?;
        seen.insert(
            k,
            Seen {
                classes,
                model: format!("{} ({})", e.tokens(), e.why),
                reached: vec![],
            },
        );
    }
    Ok(seen)
}

impl State {
    /// A new input: fresh, or a corpus entry mutated by an operator drawn
    /// by weight.
    fn next_input(&mut self) -> Input {
        if self.corpus.is_empty() || self.rng.chance(1, 4) {
            return input::fresh(&mut self.rng, &self.profile);
        }
        let base = self.corpus[self.rng.below(self.corpus.len())].clone();
        // Half the time any operator, half the time by weight: what found
        // something is tried more, and nothing starves.
        let op = if self.rng.chance(1, 2) {
            self.rng.pick(input::OPS)
        } else {
            let total: f64 = input::OPS.iter().map(|o| self.weights[*o]).sum();
            let mut at = (self.rng.next_u64() % 1_000_000) as f64 / 1e6 * total;
            input::OPS
                .iter()
                .find(|o| {
                    at -= self.weights[**o];
                    at < 0.0
                })
                .unwrap_or(&input::OPS[0])
        };
        let mut m = input::mutate(&mut self.rng, &base, op, &self.profile);
        if self.rng.chance(1, 8) {
            let op2 = *self.rng.pick(input::OPS);
            m = input::mutate(&mut self.rng, &m, op2, &self.profile);
        }
        m
    }

    /// The cases of the next round: every pending minimisation step, then
    /// batches of new inputs (an input with a GET_DAXDEV fault alone).
    fn plan_round(&mut self, cases: usize, batch: usize) -> Vec<Work> {
        let mut work = Vec::new();
        for f in self.findings.values_mut().filter(|f| !f.minimised) {
            let candidates = if f.alone {
                input::reductions(&f.input)
            } else {
                vec![f.input.clone()]
            };
            if candidates.is_empty() {
                // Nothing left to take away.
                f.minimised = true;
            }
            work.extend(candidates.into_iter().take(8).map(|c| Work {
                files: vec![c],
                minimise: Some(f.class.clone()),
            }));
        }
        // Fewer new batches while many minimisation steps run: single
        // files, each its own mount.
        let target = work.len() + cases.saturating_sub(work.len() / 4).max(1);
        let mut files = Vec::new();
        while work.len() < target {
            let i = self.next_input();
            if i.daxfault.is_some() {
                work.push(Work {
                    files: vec![i],
                    minimise: None,
                });
                continue;
            }
            files.push(i);
            if files.len() == batch {
                work.push(Work {
                    files: std::mem::take(&mut files),
                    minimise: None,
                });
            }
        }
        work
    }

    /// Take in what one file showed.
    fn record(&mut self, input: &Input, seen: &Seen, minimise: Option<&str>) -> Result<()> {
        self.files += 1;
        let mut new = false;
        for k in &seen.reached {
            let n = self.reached.entry(k.clone()).or_insert(0);
            new |= *n == 0;
            *n += 1;
        }
        let t = self.start.elapsed().as_secs_f64();
        for (class, text) in &seen.classes {
            match self.findings.get_mut(class) {
                // Seen only beside other files so far: this sighting may
                // show alone (a few tries).
                Some(f) if f.minimised && !f.alone && f.tries < 4 && minimise.is_none() => {
                    f.count += 1;
                    f.tries += 1;
                    (f.input, f.minimised, f.steps) = (input.clone(), false, 0);
                }
                Some(f) => f.count += 1,
                None => {
                    new = true;
                    note(format!("fuzz: finding: {class}: {text}"));
                    self.findings.insert(
                        class.clone(),
                        Finding {
                            class: class.clone(),
                            text: text.clone(),
                            model: seen.model.clone(),
                            count: 1,
                            first_s: t,
                            input: input.clone(),
                            steps: 0,
                            minimised: false,
                            alone: false,
                            tries: 1,
                        },
                    );
                }
            }
        }
        if let Some(class) = minimise {
            if let Some(f) = self.findings.get_mut(class) {
                let shows = seen.classes.iter().any(|(c, _)| c == class);
                if shows && (!f.alone || input.weight() < f.input.weight()) {
                    f.alone = true;
                    f.input = input.clone();
                    f.text = seen
                        .classes
                        .iter()
                        .find(|(c, _)| c == class)
                        .map(|(_, t)| t.clone())
                        .unwrap_or_default();
                    f.model = seen.model.clone();
                }
            }
        }
        if new {
            for op in &input.ops {
                if let Some(w) = self.weights.get_mut(op) {
                    *w = (*w + 1.0).min(6.0);
                }
            }
            self.corpus.push(input.clone());
        }
        Ok(())
    }

    /// After a round: a finding none of whose candidates reproduced it is
    /// as small as it gets.
    fn settle(&mut self, tried: &BTreeMap<String, Vec<Input>>) {
        for (class, inputs) in tried {
            let Some(f) = self.findings.get_mut(class) else {
                continue;
            };
            f.steps += 1;
            let improved = inputs.contains(&f.input);
            if !f.alone || (!improved && f.steps > 1) || f.steps >= STEPS {
                // Not reproducible alone, or no smaller input shows it.
                f.minimised = true;
            }
        }
    }
}

/// Run one round: write its cases, run them, take in what each file
/// showed. Files a crash left unrun are dropped (their inputs come again
/// as often as the generator makes them).
fn round(req: &Request, p: &Prepared, st: &mut State, work: &[Work]) -> Result<()> {
    let dir = p.opts.cases_dir();
    cases_dir(&dir, &p.opts.root)?;
    let mut ids = BTreeMap::new();
    for (n, w) in work.iter().enumerate() {
        let id = format!("fuzz/{:03}", n + 1);
        let refs: Vec<&Input> = w.files.iter().collect();
        let what = format!("fuzzed famfs files, seed {} round {}", req.seed, st.rounds);
        std::fs::write(dir.join(&id), case_script(&refs, &what, false))?;
        std::fs::write(dir.join(format!("{id}.out")), "")?;
        ids.insert(id, n);
    }
    let cases: Vec<Case> = crate::plan::case::discover(&dir)?;
    let schedule = p.schedule_spread(&cases, 1, 1);
    let run = crate::report::results::RunDir::create(
        &p.opts.results_root,
        &crate::report::results::run_id(),
    )?;
    let root = run.root.clone();
    let summary = crate::run::execute_in(p, run, &cases, &schedule, &mut |_| {})?;
    let mut tried: BTreeMap<String, Vec<Input>> = BTreeMap::new();
    for r in &summary.cases {
        let Some(&n) = ids.get(&r.id) else { continue };
        let w = &work[n];
        for (k, seen) in read_case(&root, r, w, &st.profile)? {
            if let Some(i) = w.files.get(k) {
                st.record(i, &seen, w.minimise.as_deref())?;
            }
        }
        if let Some(c) = &w.minimise {
            tried.entry(c.clone()).or_default().push(w.files[0].clone());
        }
    }
    st.settle(&tried);
    st.rounds += 1;
    Ok(())
}

/// Fuzz, write the results, print the report. Exit 0: no finding that
/// is not known on this kernel; 1: new findings; 128 + N: interrupted.
pub fn main(req: &Request) -> Result<i32> {
    let (stats, report) = run(req)?;
    print!("{report}");
    Ok(if let Some(sig) = crate::base::proc::interrupted() {
        128 + sig
    } else if stats.new.is_empty() {
        0
    } else {
        1
    })
}

impl Request {
    /// The known-findings file: `--known`, or the checkout's list.
    pub fn known_list(&self, root: &Path) -> PathBuf {
        self.known
            .clone()
            .unwrap_or_else(|| root.join("kernel-configs/fuzz-known.yaml"))
    }
}

/// Fuzz for the request's duration: the statistics and the report.
pub fn run(req: &Request) -> Result<(super::fuzz_fmap_report::Stats, String)> {
    let _wind_down = crate::base::proc::WindDown::begin();
    std::fs::create_dir_all(&req.results)?;
    let mut opts = req.opts.clone();
    opts.cases = Some(req.results.join("work/cases"));
    opts.results_root = req.results.join("rounds");
    cases_dir(&opts.cases_dir(), &opts.root)?;
    // A bad list is refused before anything boots.
    super::fuzz_fmap_report::load_known(&req.known_list(&opts.root))?;
    let p = crate::run::prepare(&opts)?;
    let profile = famfs_proto::Profile::by_name(&p.opts.profile)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "the fmap fuzzer needs a famfs profile; the kernel's is {}",
                p.opts.profile
            )
        })?;
    let seed = match req.partition {
        Some((k, n)) => req.seed ^ (u64::from(k) << 32 | u64::from(n)),
        None => req.seed,
    };
    let mut st = State {
        rng: Rng::new(seed),
        weights: input::OPS.iter().map(|o| (o.to_string(), 1.0)).collect(),
        corpus: load_corpus(&req.corpus)?,
        profile,
        reached: BTreeMap::new(),
        findings: BTreeMap::new(),
        files: 0,
        rounds: 0,
        start: Instant::now(),
    };
    let kept = st.corpus.len();
    note(format!(
        "fuzz: fmap fuzzer on {} (profile {}), seed {}, {} s, corpus {} ({kept} inputs)",
        p.kernel.name.as_deref().unwrap_or("kernel"),
        st.profile.name,
        req.seed,
        req.duration.as_secs(),
        req.corpus.display()
    ));
    let cases = 2 * p.opts.exec.jobs.max(1);
    while st.start.elapsed() < req.duration && crate::base::proc::interrupted().is_none() {
        let work = st.plan_round(cases, req.batch);
        if let Err(e) = round(req, &p, &mut st, &work) {
            if crate::base::proc::interrupted().is_some() {
                break;
            }
            return Err(e);
        }
        note(progress(&st));
    }
    save_corpus(&req.corpus, &st.corpus[kept.min(st.corpus.len())..])?;
    super::fuzz_fmap_report::write(
        req,
        &p,
        &st.findings,
        &st.reached,
        st.files,
        st.start.elapsed(),
        &st.profile,
    )
}

/// The live line: files, rate, rule coverage, findings.
fn progress(st: &State) -> String {
    let secs = st.start.elapsed().as_secs_f64();
    let keys = crate::server::oracle::model_keys(&st.profile);
    let hit = keys.iter().filter(|k| st.reached.contains_key(*k)).count();
    let done = st.findings.values().filter(|f| f.minimised).count();
    format!(
        "fuzz: {:.0} s, round {}, {} files ({:.2}/s), model rules {hit}/{} reached, {} findings ({done} minimised)",
        secs,
        st.rounds,
        st.files,
        st.files as f64 / secs.max(0.001),
        keys.len(),
        st.findings.len()
    )
}

fn load_corpus(dir: &Path) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let text = std::fs::read_to_string(p)?;
        out.push(
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a fuzzer input; remove it", p.display()))?,
        );
    }
    Ok(out)
}

fn save_corpus(dir: &Path, new: &[Input]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in new {
        let text = serde_json::to_string_pretty(i)?;
        let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        std::fs::write(dir.join(format!("{h:016x}.json")), text)?;
    }
    Ok(())
}
