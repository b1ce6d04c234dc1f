//! The exec stage: runs a schedule's boot groups on VMs (`boot`), restarts
//! a VM after a crash for the cases that did not run yet and retries a boot
//! that never reached the runner once (`group`), several groups at once in
//! worker threads. Each case's raw result goes to a [`Recorder`] as soon as
//! it is known; exec never judges (the recorder does, and says whether a
//! crash was expected).

pub mod boot;
pub mod group;

use crate::contract::CaseReport;
use crate::image::Image;
use crate::kernel::build::KernelArtifacts;
use crate::plan::case::Case;
use crate::plan::schedule::Schedule;
use crate::vm::qemu::Qemu;
use crate::vm::{Accel, Backend, BootEnd};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// How the exec stage runs boots.
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    pub cpus: u32,
    /// Boot groups run at once, each in its own VM (`--jobs`; see
    /// [`default_jobs`]).
    pub jobs: usize,
    /// Restarts allowed after crashes, per topology.
    pub max_restarts: u32,
    /// Leave out the per-boot status line (the test list prints progress).
    pub quiet_boots: bool,
    /// Extra environment for the guest runner and every case.
    pub guest_env: BTreeMap<String, String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backend: Backend::Qemu,
            cpus: 2,
            jobs: 1,
            max_restarts: 3,
            quiet_boots: false,
            guest_env: BTreeMap::new(),
        }
    }
}

/// VMs at once when the command line does not say: one per host core, at
/// most 4. Measured on 2 cores under TCG (docs/benchmarks.md): a guest's
/// cases keep about one core busy, so two VMs ran the famfs + famfs-user
/// selection in 0.51x the time of one.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Everything a boot is made from.
pub struct Request<'a> {
    pub opts: &'a Options,
    pub kernel: &'a KernelArtifacts,
    pub image: &'a Image,
    pub qemu: &'a Qemu,
    pub accel: Accel,
    pub profile: &'a str,
    pub cases_dir: PathBuf,
    pub run_id: &'a str,
    pub cases: &'a BTreeMap<&'a str, &'a Case>,
}

/// Why a case has no report from the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreported {
    /// It never started (interrupted, or the guest finished without it).
    NotRun,
    /// The harness could not run it (the run stopped, boots failed).
    Error,
    /// The machine could not run it (device setup failed, too many crashes).
    Fail,
}

/// What one boot left, as the exec stage knows it.
pub struct BootLog {
    pub index: u32,
    pub topology: String,
    pub backend: Backend,
    pub accel: Accel,
    pub end: BootEnd,
    /// The runner said hello: the boot reached user space.
    pub reached_runner: bool,
    pub hello_ms: Option<u64>,
    pub setup_ms: Option<u64>,
    pub first_result_ms: Option<u64>,
    pub duration_ms: u64,
    pub console: PathBuf,
    pub console_text: String,
}

/// Where raw results go: the run's recorder judges and writes them.
pub trait Recorder {
    /// Where boot `n`'s logs go.
    fn boot_dir(&self, n: u32) -> PathBuf;
    /// A case the guest reported on, or one the host made a report for
    /// because its VM went down (`lost`; `extra` joins a failure's
    /// reasons). Returns whether the case was meant to take the kernel
    /// down (an expected or known failure): such a crash uses no restart.
    fn case(
        &mut self,
        r: &CaseReport,
        lost: bool,
        boot: u32,
        extra: Option<String>,
    ) -> Result<bool>;
    /// Cases without a report from the guest, and why; `report` is what
    /// the host kept of an interrupted case.
    fn unreported(
        &mut self,
        ids: Vec<String>,
        why: Unreported,
        reasons: &[String],
        boot: Option<u32>,
        report: Option<&CaseReport>,
    ) -> Result<()>;
    /// A boot ended. Returns the titles of kernel reports outside every
    /// case (they belong to the group's boot trial once the boot reached
    /// the runner or was interrupted).
    fn boot(&mut self, b: &BootLog) -> Vec<String>;
    /// Boot group `n` (1-based) is over; `booted` when it got a VM.
    fn group_done(&mut self, n: usize, booted: bool) -> Result<()>;
}

/// Run every boot group of `schedule`, `opts.jobs` at once, each worker
/// with its own recorder from `recorder`. Every case gets a result however
/// the run ends; the first harness error is returned after all are in.
pub fn run<'a>(
    req: &Request<'a>,
    schedule: &Schedule,
    recorder: &(dyn Fn() -> Box<dyn Recorder + 'a> + Sync),
) -> Result<()> {
    let next_group = AtomicUsize::new(0);
    let boot_no = AtomicU32::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let keep = |e: anyhow::Error| {
        failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    };
    let worker = || -> Result<()> {
        let mut rec = recorder();
        loop {
            let g = next_group.fetch_add(1, Ordering::SeqCst);
            let Some(group) = schedule.groups.get(g) else {
                return Ok(());
            };
            let n = g + 1;
            let stopped = failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|e| format!("{e:#}"));
            let skip = match (crate::base::proc::interrupted(), stopped) {
                (Some(sig), _) => Some((
                    Unreported::NotRun,
                    format!(
                        "the run was interrupted by {}",
                        crate::base::proc::signal_name(sig)
                    ),
                )),
                (None, Some(e)) => Some((
                    Unreported::Error,
                    format!("not run: the run stopped before this case: {e}"),
                )),
                (None, None) => None,
            };
            if let Some((why, reason)) = skip {
                rec.unreported(group.cases.clone(), why, &[reason], None, None)?;
                rec.group_done(n, false)?;
                continue;
            }
            let r = group::run(req, group, &boot_no, rec.as_mut());
            rec.group_done(n, true)?;
            if let Err(e) = r {
                keep(e);
            }
        }
    };
    let jobs = req.opts.jobs.clamp(1, schedule.groups.len().max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs).map(|_| scope.spawn(worker)).collect();
        for h in handles {
            if let Err(e) = h
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a boot group's thread panicked")))
            {
                keep(e);
            }
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
