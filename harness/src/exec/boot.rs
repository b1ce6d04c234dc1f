//! One boot: the plan the guest runner gets, the VM spec, the launch and
//! the monitor, each result handed to the recorder as it arrives.

use super::{BootLog, Recorder, Request};
use crate::contract::topology::Topology;
use crate::contract::{GuestMsg, PlannedCase, RunPlan};
use crate::events::note;
use crate::plan::case::Case;
use crate::vm::{self, Accel, Backend, BootEnd, Running, Timeouts, VmSpec};
use anyhow::Result;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one boot left behind, for the group's restart decisions.
pub struct BootResult {
    pub end: BootEnd,
    /// The runner said hello: the boot reached user space.
    pub reached_runner: bool,
    pub setup_failure: Option<String>,
    /// The case running when the VM went down, and since when.
    pub current: Option<(String, Instant)>,
    /// What the running case had written when the VM went down.
    pub streamed: String,
    /// The runner ended the boot early and said why.
    pub restart: Option<String>,
    pub console: PathBuf,
    pub console_text: String,
    /// Titles of kernel reports outside every case.
    pub outside: Vec<String>,
}

/// What the monitor gathered from the guest's messages.
#[derive(Default)]
struct Heard {
    current: Option<(String, Instant)>,
    hello_ms: Option<u64>,
    setup_ms: Option<u64>,
    first_result_ms: Option<u64>,
    setup_failure: Option<String>,
    write_error: Option<anyhow::Error>,
    streamed: String,
    restart: Option<String>,
}

/// Boot once with the pending cases, streaming each result to the recorder
/// as it arrives.
pub fn once(
    req: &Request,
    topology: &Topology,
    pending: &mut VecDeque<String>,
    n: u32,
    rec: &mut dyn Recorder,
) -> Result<BootResult> {
    let bdir = rec.boot_dir(n);
    std::fs::create_dir_all(&bdir)?;
    let plan = make_plan(req, req.run_id, n, topology, pending);
    let spec = make_spec(req, &bdir, topology, &plan)?;
    let backend = req.opts.backend;
    if !req.opts.quiet_boots {
        note(format!(
            "boot {n}: {} cases, {} ({backend:?}, {:?})",
            pending.len(),
            topology.describe(),
            req.accel
        ));
    }
    let (images, launched, mut child) = launch(&spec, backend)?;
    let scale = req.accel.timeout_scale();
    let cases = req.cases;
    let case_timeout = |id: &str| -> Duration {
        Duration::from_secs_f64(
            cases.get(id).map(|c| c.meta.timeout as f64).unwrap_or(60.0) * scale,
        )
    };
    let mut h = Heard::default();
    let ms = || launched.elapsed().as_millis() as u64;
    let mut on_msg = |m: &GuestMsg| match m {
        GuestMsg::Hello { .. } => h.hello_ms = Some(ms()),
        GuestMsg::Setup { ok, detail, .. } => {
            h.setup_ms = Some(ms());
            if !ok {
                h.setup_failure = Some(detail.clone());
            }
        }
        GuestMsg::Done { .. } => {}
        GuestMsg::CaseStart { id, .. } => {
            h.current = Some((id.clone(), Instant::now()));
            h.streamed.clear();
        }
        GuestMsg::CaseOutput { id, text } => {
            if h.current.as_ref().is_some_and(|(c, _)| c == id) && h.streamed.len() < 1 << 20 {
                h.streamed.push_str(text);
            }
        }
        GuestMsg::CaseEnd(r) => {
            h.first_result_ms.get_or_insert(ms());
            h.current = None;
            if let Err(e) = rec.case(r, false, n, None) {
                h.write_error = Some(e);
            }
            pending.retain(|x| *x != r.id);
        }
        GuestMsg::Restart { reason } => h.restart = Some(reason.clone()),
        GuestMsg::Note { text } => note(format!("guest: {text}")),
    };
    let end = vm::monitor(
        child.as_mut(),
        &spec,
        &timeouts(backend, req.accel),
        &case_timeout,
        &mut on_msg,
    )?;
    drop(child);
    if let Some(e) = h.write_error {
        return Err(e.context("writing case results"));
    }
    let console = spec.console_log();
    let console_text = std::fs::read(&console)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let outside = rec.boot(&BootLog {
        index: n,
        topology: topology.describe(),
        backend,
        accel: req.accel,
        end: end.clone(),
        reached_runner: h.hello_ms.is_some(),
        hello_ms: h.hello_ms,
        setup_ms: h.setup_ms,
        first_result_ms: h.first_result_ms,
        duration_ms: ms(),
        console: console.clone(),
        console_text: console_text.clone(),
    });
    // The pmem backing file can be large and the initramfs is rebuilt from
    // plan.json, the cases and the cached base; the logs are what we keep.
    for f in &images {
        let _ = std::fs::remove_file(f);
        crate::base::proc::unregister_file(f);
    }
    Ok(BootResult {
        end,
        reached_runner: h.hello_ms.is_some(),
        setup_failure: h.setup_failure,
        current: h.current,
        streamed: h.streamed,
        restart: h.restart,
        console,
        console_text,
        outside,
    })
}

/// Start the VM, its large files registered with the watchdog (deleted if
/// the harness dies with the VM running).
fn launch(spec: &VmSpec, backend: Backend) -> Result<(Vec<PathBuf>, Instant, Box<dyn Running>)> {
    let images: Vec<PathBuf> = [
        "nvdimm0.img",
        "cxl-mem0.img",
        "cxl-lsa0.img",
        "initramfs.cpio",
    ]
    .iter()
    .map(|f| spec.dir.join(f))
    .collect();
    images
        .iter()
        .for_each(|f| crate::base::proc::register_file(f));
    let launched = Instant::now();
    let child: Box<dyn Running> = match backend {
        Backend::Qemu => Box::new(vm::launch_qemu(spec)?),
        Backend::Vng => Box::new(vm::vng::launch(spec)?),
    };
    Ok((images, launched, child))
}

/// How long a boot, the guest's device setup and a stuck guest may take.
fn timeouts(backend: Backend, accel: Accel) -> Timeouts {
    let boot_s = match backend {
        Backend::Qemu => 60.0,
        Backend::Vng => 120.0,
    } * if accel == Accel::Tcg { 2.0 } else { 1.0 };
    Timeouts {
        boot: Duration::from_secs_f64(boot_s),
        setup: Duration::from_secs_f64(60.0 * accel.timeout_scale()),
        // The runner kills a case at its timeout and reports within a few
        // seconds; longer means the guest itself is stuck.
        grace: Duration::from_secs(10),
    }
}

/// The guest runner's plan for boot `n`: the pending cases, the topology,
/// and what the kernel was built with.
pub fn make_plan(
    req: &Request,
    run_id: &str,
    n: u32,
    topo: &Topology,
    pending: &VecDeque<String>,
) -> RunPlan {
    let cases_root = match req.opts.backend {
        Backend::Qemu => "/harness/cases".to_string(),
        Backend::Vng => req
            .cases_dir
            .canonicalize()
            .unwrap_or(req.cases_dir.clone())
            .display()
            .to_string(),
    };
    let by_id: &BTreeMap<&str, &Case> = req.cases;
    RunPlan {
        run_id: run_id.into(),
        boot: n,
        topology: topo.clone(),
        cases_root,
        cases: pending
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|c| PlannedCase {
                id: c.id.clone(),
                script: c.script.clone(),
                timeout_s: c.meta.timeout,
                env: c.param_env(),
            })
            .collect(),
        timeout_scale: req.accel.timeout_scale(),
        profile: req.profile.to_string(),
        // What the kernel was built with, so that a case can derive what the
        // kernel must do (`_kconfig FUSE_FAMFS_DAX`, the famfs gate).
        env: [
            (
                crate::contract::env::KCONFIG.to_string(),
                req.kernel.config.enabled_symbols().join(" "),
            ),
            (
                crate::contract::env::FAMFS_BUILD.to_string(),
                serde_json::to_string(&crate::kernel::resolve::famfs_build(req.kernel))
                    .expect("serializes"),
            ),
        ]
        .into_iter()
        .chain(req.opts.guest_env.clone())
        .collect(),
        shell: None,
    }
}

/// Command-line parameters the kernel's config calls for.
fn kernel_args(cfg: &crate::kernel::config::DotConfig) -> Vec<String> {
    let mut a = Vec::new();
    if cfg.enabled("KASAN") {
        // KASAN reports only its first finding per boot by default; every
        // case must see its own.
        a.push("kasan_multi_shot".to_string());
    }
    a
}

/// The VM for one boot in `bdir`: its initramfs (the plan and the cases
/// over the base image) or, with virtme-ng, the guest command.
pub fn make_spec(req: &Request, bdir: &Path, topo: &Topology, plan: &RunPlan) -> Result<VmSpec> {
    let plan_json = serde_json::to_string_pretty(plan)?;
    std::fs::write(bdir.join("plan.json"), &plan_json)?;
    let (initrd, guest_command) = match req.opts.backend {
        Backend::Qemu => {
            let overlay =
                crate::image::initramfs::overlay(&plan_json, &req.cases_dir, &req.kernel.release)?;
            let path = bdir.join("initramfs.cpio");
            crate::image::initramfs::assemble(&req.image.base, &overlay, &path)?;
            (Some(path), vec![])
        }
        Backend::Vng => {
            let tool = req.image.guest_bin_dir.join("fh-guest").canonicalize()?;
            let plan_path = bdir.join("plan.json").canonicalize()?;
            (
                None,
                vec![
                    tool.display().to_string(),
                    "run".into(),
                    "--plan".into(),
                    plan_path.display().to_string(),
                ],
            )
        }
    };
    Ok(VmSpec {
        backend: req.opts.backend,
        accel: req.accel,
        kernel: req.kernel.bzimage.clone(),
        initrd,
        cpus: req.opts.cpus,
        topology: topo.clone(),
        qemu: req.qemu.path.clone(),
        qemu_args: req.qemu.base_args(),
        kernel_args: kernel_args(&req.kernel.config),
        dir: bdir.canonicalize()?,
        guest_command,
    })
}
