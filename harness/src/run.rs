//! A whole run, as a pipeline over the stages: kernel -> image -> vm
//! (accelerator) -> plan (schedule) -> exec (boots) -> judge -> report.
//! Each stage has one entry point taking its own request; this file only
//! composes them.

use crate::base::cache::Cache;
use crate::events::note;
use crate::exec;
use crate::image::{self, Image};
use crate::judge::verdict::Outcome;
use crate::judge::{self, Judge};
use crate::kernel::build::KernelArtifacts;
use crate::kernel::resolve::{self as kernel, AUTO_PROFILE};
use crate::plan::case::Case;
use crate::plan::schedule::{check_case_symbols, Schedule};
use crate::report::record::{Recorded, RunRecorder};
use crate::report::results::{run_id, CaseResult, RunDir, Streamed, Summary};
use crate::report::trials::{present, RunOutcome};
use crate::vm::{qemu::Qemu, Accel, Backend};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// What a run is asked for: one request per stage, and where things are.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where cases/, images/ and kernel-configs/ are (the checkout).
    pub root: PathBuf,
    pub kernel: kernel::Request,
    pub image: image::Request,
    pub exec: exec::Options,
    /// A profile name or spec, or [`AUTO_PROFILE`]: the famfs ABI of the
    /// kernel's source (resolved by [`prepare`]).
    pub profile: String,
    /// The QEMU to boot with: a path or `backports` (`vm::qemu`).
    pub qemu: Option<String>,
    /// A named topology (`images/topologies.yaml`) every case runs on.
    pub topology: Option<String>,
    pub cache_root: Option<PathBuf>,
    /// Where run directories go (`<root>/target/famfs-harness` by default).
    pub results_root: PathBuf,
    /// The cases directory, when not the checkout's `cases/`.
    pub cases: Option<PathBuf>,
    /// The accelerator, when a probe of a sibling kernel already said it
    /// (a mutant of a probed kernel): no probe boot.
    pub accel: Option<Accel>,
}

impl Options {
    pub fn new(root: &Path) -> Options {
        Options {
            root: root.to_path_buf(),
            kernel: kernel::Request::default(),
            image: image::Request::default(),
            exec: exec::Options::default(),
            profile: AUTO_PROFILE.into(),
            qemu: None,
            topology: None,
            cache_root: None,
            results_root: root.join("target/famfs-harness"),
            cases: None,
            accel: None,
        }
    }
    pub fn cases_dir(&self) -> PathBuf {
        self.cases
            .clone()
            .unwrap_or_else(|| self.root.join("cases"))
    }
}

/// Host packages the chosen backend and kernel need.
pub fn ensure_host(opts: &Options) -> Result<()> {
    let (k, vng) = (&opts.kernel, opts.exec.backend == Backend::Vng);
    crate::base::hostdeps::ensure_for(k.builds(), vng, k.coverage)
}

/// Everything a run needs before the first boot.
pub struct Prepared {
    pub opts: Options,
    pub kernel: KernelArtifacts,
    pub image: Image,
    pub accel: Accel,
    pub cache: Cache,
    pub qemu: Qemu,
    /// The named topology of `--topology`.
    pub topology: Option<crate::plan::topologies::Choice>,
    /// Time from the start of `prepare` to ready-to-boot.
    pub prepare_time: Duration,
}

/// Kernel, image and accelerator: everything up to the first boot.
pub fn prepare(opts: &Options) -> Result<Prepared> {
    let start = Instant::now();
    ensure_host(opts)?;
    // Bad names fail before anything is built.
    let topology = match &opts.topology {
        Some(t) => Some(crate::plan::topologies::Table::load(&opts.root)?.choose(t)?),
        None => None,
    };
    let cache = Cache::open(opts.cache_root.as_deref())?;
    let qemu = Qemu::find(opts.qemu.as_deref(), &cache)?;
    let kernel = kernel::resolve(&opts.kernel, &opts.root, &cache)?;
    let mut opts = opts.clone();
    opts.profile = kernel::profile(&opts.profile, &kernel);
    crate::vm::check_exit_port(&kernel.config);
    let named = opts.kernel.named(&opts.root)?;
    let image = image::prepare(
        &opts.image,
        &opts.root,
        &opts.cases_dir(),
        named.as_ref(),
        &opts.profile,
        &cache,
    )?;
    let accel = match opts.accel {
        Some(a) => a,
        None => crate::vm::accel::probe(&qemu, &kernel.bzimage, &image.probe, &cache)?,
    };
    Ok(Prepared {
        opts,
        kernel,
        image,
        accel,
        cache,
        qemu,
        topology,
        prepare_time: start.elapsed(),
    })
}

impl Prepared {
    /// The schedule of `cases` on this kernel, machine and image, spread
    /// over the run's VMs with two shares of the cases each (groups of 8
    /// or fewer stay whole).
    pub fn schedule(&self, cases: &[Case]) -> Schedule {
        self.schedule_spread(cases, 2, 8)
    }

    /// [`Prepared::schedule`] with `per_job` shares per VM and pieces of at
    /// least `min_piece` cases (1, 1: one boot per VM, however few cases).
    pub fn schedule_spread(&self, cases: &[Case], per_job: usize, min_piece: usize) -> Schedule {
        let (k, t, u) = (
            &self.kernel,
            self.topology.as_ref(),
            self.image.lacks_famfs_user(),
        );
        Schedule::new(k, t, &self.qemu, u, cases).balanced(self.opts.exec.jobs, per_job, min_piece)
    }

    /// What the exec stage needs for boots of `cases`.
    pub fn exec_request<'a>(
        &'a self,
        run_id: &'a str,
        cases: &'a BTreeMap<&'a str, &'a Case>,
    ) -> exec::Request<'a> {
        exec::Request {
            opts: &self.opts.exec,
            kernel: &self.kernel,
            image: &self.image,
            qemu: &self.qemu,
            accel: self.accel,
            profile: &self.opts.profile,
            cases_dir: self.opts.cases_dir(),
            run_id,
            cases,
        }
    }
}

/// Run `selected` cases (in this order; host-side not-run cases included)
/// and hand each result to `sink` as soon as it is known.
pub fn execute(
    p: &Prepared,
    selected: &[Case],
    sink: &mut dyn FnMut(&CaseResult),
) -> Result<Summary> {
    check_case_symbols(&p.opts.root, &p.kernel, selected)?;
    let dir = RunDir::create(&p.opts.results_root, &run_id())?;
    note(format!("results: {}", dir.root.display()));
    execute_in(p, dir, selected, &p.schedule(selected), sink)
}

/// [`execute`] into a run directory the caller created (and announced),
/// following a schedule the caller made. The summary is written however
/// the run ends.
pub fn execute_in(
    p: &Prepared,
    dir: RunDir,
    selected: &[Case],
    schedule: &Schedule,
    sink: &mut dyn FnMut(&CaseResult),
) -> Result<Summary> {
    let start = Instant::now();
    let backend = p.opts.exec.backend;
    let mut summary = Summary::new(&dir, &p.kernel, backend, Some(p.accel), &p.opts.profile)?;
    let by_id: BTreeMap<&str, &Case> = selected.iter().map(|c| (c.id.as_str(), c)).collect();
    let (tx, rx) = std::sync::mpsc::channel::<Recorded>();
    let (dir_, by_id_) = (&dir, &by_id);
    let recorder = move |tx| RunRecorder::new(dir_, Judge::new(&p.kernel, by_id_), tx);
    let mut first = recorder(tx.clone());
    for (id, why) in &schedule.not_run {
        let v = judge::plain(Outcome::NotRun, vec![why.clone()]);
        first.write(id, &v, None, None, &[])?;
    }
    drop(first);
    let req = p.exec_request(&summary.run_id, by_id_);
    let req_ = &req;
    let ran = std::thread::scope(|scope| {
        // The senders live in this thread's recorders: the stream below
        // ends when the last boot group is done.
        let exec = scope.spawn(move || {
            let make = || -> Box<dyn exec::Recorder> { Box::new(recorder(tx.clone())) };
            exec::run(req_, schedule, &make)
        });
        for r in rx {
            match r {
                Recorded::Result(r) => {
                    sink(&r);
                    summary.cases.push(r);
                }
                Recorded::Boot(b) => summary.boots.push(b),
            }
        }
        exec.join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the run's thread panicked")))
    });
    summary.finish(&schedule.order(), start.elapsed());
    // Written even when the run stops early: what happened so far is kept.
    dir.write_summary(&summary)?;
    dir.mark_latest()?;
    crate::report::coverage::write_run(&dir.root)?;
    ran.map_err(|e| {
        e.context(format!(
            "run stopped; partial results in {}",
            dir.root.display()
        ))
    })?;
    Ok(summary)
}

/// The background run itself.
pub struct RunHandle {
    pub dir: PathBuf,
    join: std::thread::JoinHandle<Result<Summary>>,
}

/// Start running `cases` in the background (the run directory announced),
/// SIGINT/SIGTERM winding it down with a result for every trial: the trial
/// names in the order their results arrive, the stream of results (what a
/// test list consumes, `report::trials`), and the run itself.
pub fn start(
    mut p: Prepared,
    cases: Vec<Case>,
) -> Result<(Vec<String>, Receiver<Streamed>, RunHandle)> {
    check_case_symbols(&p.opts.root, &p.kernel, &cases)?;
    p.opts.exec.quiet_boots = true;
    let dir = RunDir::create(&p.opts.results_root, &run_id())?;
    let root = dir.root.clone();
    note(format!("results: {}", root.display()));
    let schedule = p.schedule(&cases);
    let order = schedule.order();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _wind_down = crate::base::proc::WindDown::begin();
        let mut send = |r: &CaseResult| {
            let _ = tx.send(Streamed::Result(r.clone()));
        };
        let out = execute_in(&p, dir, &cases, &schedule, &mut send);
        let _ = tx.send(Streamed::End(out.as_ref().err().map(|e| format!("{e:#}"))));
        out
    });
    let run = RunHandle {
        dir: root,
        join: handle,
    };
    Ok((order, rx, run))
}

impl RunHandle {
    /// Wait for the run: its summary (read back from the run directory
    /// when the run stopped early) and the error that stopped it.
    pub fn finish(self) -> Result<(Summary, Option<String>)> {
        Ok(match self.join.join() {
            Ok(Ok(s)) => (s, None),
            Ok(Err(e)) => (Summary::read(&self.dir)?, Some(format!("{e:#}"))),
            Err(_) => (
                Summary::read(&self.dir)?,
                Some("the run's thread panicked".into()),
            ),
        })
    }
}

/// Run `cases` as a test list: the run in the background, each result
/// shown as a trial as it arrives.
pub fn trials(
    p: Prepared,
    cases: Vec<Case>,
    args: &libtest_mimic::Arguments,
) -> Result<RunOutcome> {
    let (order, results, run) = start(p, cases)?;
    let dir = run.dir.clone();
    let conclusion = present(order, results, &dir, args);
    let (summary, error) = run.finish()?;
    Ok(RunOutcome {
        conclusion,
        summary,
        dir,
        error,
    })
}
