//! A whole run: kernel -> guest program -> image -> accelerator -> boots ->
//! verdicts -> results directory. The planner groups cases by topology (one
//! boot per topology), restarts the VM after a crash for the cases that did
//! not run yet, and retries a boot that never reached the runner once.

use crate::base::cache::Cache;
use crate::contract::topology::Topology;
use crate::contract::{GuestMsg, PlannedCase, RunPlan};
use crate::judge::reports::KernelReport;
use crate::judge::verdict::{self, Outcome, Verdict};
use crate::kernel::build::{self as kbuild, KernelArtifacts};
use crate::plan::case::Case;
use crate::report::results::{BootRecord, CaseResult, RunDir, Summary};
use crate::events::note;
use crate::vm::{self, Accel, Backend, BootEnd, Running, Timeouts, VmSpec};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which kernel to test.
#[derive(Debug, Clone)]
pub enum KernelChoice {
    /// Debian's linux-source package, fetched into the cache.
    Default,
    /// A kernel tree, built out of tree.
    Src(PathBuf),
    /// A prebuilt bzImage (with its .config and vmlinux).
    Image {
        image: PathBuf,
        config: Option<PathBuf>,
        vmlinux: Option<PathBuf>,
    },
    /// One commit of a local git repository, exported into the cache.
    Git { repo: PathBuf, rev: String },
    /// A named kernel from `kernel-configs/kernels/`.
    Named(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where cases/, images/ and kernel-configs/ are (the checkout).
    pub root: PathBuf,
    /// The harness's own workspace, for building the guest program.
    pub workspace: PathBuf,
    pub kernel: KernelChoice,
    /// Fragment names; None means kernel-configs/default.
    pub fragments: Option<Vec<String>>,
    /// Patch series applied on the base in this order (`--kernel-patches`,
    /// repeated).
    pub patches: Vec<PathBuf>,
    /// Accept patches that apply only with fuzz or offsets.
    pub allow_fuzz: bool,
    pub backend: Backend,
    pub cpus: u32,
    /// Boot groups run at once, each in its own VM (`--jobs`; see
    /// [`default_jobs`]).
    pub jobs: usize,
    /// A profile name or spec, or [`AUTO_PROFILE`]: the famfs ABI of the
    /// kernel's source (resolved by [`prepare`]).
    pub profile: String,
    pub cache_root: Option<PathBuf>,
    /// Where run directories go (`<root>/target/famfs-harness` by default).
    pub results_root: PathBuf,
    /// Restarts allowed after crashes, per topology.
    pub max_restarts: u32,
    /// Configure and verify the kernel but do not build it.
    pub config_only: bool,
    /// Leave out the per-boot status line (the test list prints progress).
    pub quiet_boots: bool,
    /// Extra environment for the guest runner and every case.
    pub guest_env: BTreeMap<String, String>,
    /// The cases directory, when not the checkout's `cases/`.
    pub cases: Option<PathBuf>,
    /// A named topology (`images/topologies.yaml`) every case runs on.
    pub topology: Option<String>,
    /// The QEMU to boot with: a path or `backports` (`vm::qemu`).
    pub qemu: Option<String>,
    /// The famfs user space for the `famfs-user` cases; None: the named
    /// kernel's `famfs-user`, if it names one.
    pub famfs_user: Option<crate::image::famfs_user::Source>,
}

impl Options {
    pub fn new(root: &Path) -> Options {
        Options {
            root: root.to_path_buf(),
            workspace: crate::image::guest_program::workspace_root(),
            kernel: KernelChoice::Default,
            fragments: None,
            patches: vec![],
            allow_fuzz: false,
            backend: Backend::Qemu,
            cpus: 2,
            jobs: 1,
            profile: AUTO_PROFILE.into(),
            cache_root: None,
            results_root: root.join("target/famfs-harness"),
            max_restarts: 3,
            config_only: false,
            quiet_boots: false,
            guest_env: BTreeMap::new(),
            cases: None,
            topology: None,
            qemu: None,
            famfs_user: None,
        }
    }
    pub fn cases_dir(&self) -> PathBuf {
        self.cases
            .clone()
            .unwrap_or_else(|| self.root.join("cases"))
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

/// Host packages the chosen backend and kernel need.
pub fn ensure_host(opts: &Options) -> Result<()> {
    use crate::base::hostdeps::{ensure, BOOT, BUILD, VNG};
    let mut needs: Vec<&[crate::base::hostdeps::Need]> = vec![BOOT];
    let building = !matches!(opts.kernel, KernelChoice::Image { .. });
    if building {
        needs.push(BUILD);
    }
    if opts.backend == Backend::Vng {
        needs.push(VNG);
    }
    ensure(&needs, building, &mut |m| note(m))?;
    if opts.backend == Backend::Vng {
        crate::base::hostdeps::ensure_vng(&mut |m| note(m))?;
    }
    Ok(())
}

/// What a kernel choice resolves to before anything is fetched or built.
pub struct KernelPlan {
    pub base: crate::kernel::named::Base,
    pub patches: Vec<PathBuf>,
    pub allow_fuzz: bool,
    pub fragments: Vec<String>,
    /// The named kernel, when one was chosen.
    pub named: Option<crate::kernel::named::NamedKernel>,
}

/// Resolve the options into a base, a series and fragments. A named kernel
/// whose fixture is absent fails with [`crate::kernel::named::Unavailable`].
pub fn kernel_plan(opts: &Options) -> Result<KernelPlan> {
    use crate::kernel::named::Base;
    let frag_dir = opts.root.join("kernel-configs");
    let (base, patches, allow_fuzz, fragments, named) = match &opts.kernel {
        KernelChoice::Named(name) => {
            let k = crate::kernel::named::load(&opts.root, name)?;
            k.check_available()?;
            (
                k.base.clone(),
                k.patches.clone(),
                k.allow_fuzz,
                k.fragments.clone(),
                Some(k),
            )
        }
        other => {
            let base = match other {
                KernelChoice::Src(d) => Base::Tree(d.clone()),
                KernelChoice::Git { repo, rev } => Base::Git {
                    repo: repo.clone(),
                    rev: rev.clone(),
                },
                _ => Base::Debian,
            };
            let frags = opts
                .fragments
                .clone()
                .unwrap_or_else(|| vec!["default".into()]);
            (base, opts.patches.clone(), opts.allow_fuzz, frags, None)
        }
    };
    let fragments = crate::kernel::config::expand_fragment_names(&frag_dir, &fragments)?;
    Ok(KernelPlan {
        base,
        patches,
        allow_fuzz,
        fragments,
        named,
    })
}

/// Build or find the kernel.
pub fn kernel(opts: &Options, cache: &Cache) -> Result<KernelArtifacts> {
    if let KernelChoice::Image {
        image,
        config,
        vmlinux,
    } = &opts.kernel
    {
        let k = kbuild::prebuilt(image, config.as_deref(), vmlinux.as_deref())?;
        note(&format!(
            "kernel: prebuilt {} ({}), config {}",
            k.bzimage.display(),
            k.release,
            k.config_path.display()
        ));
        return Ok(k);
    }
    let plan = kernel_plan(opts)?;
    if let Some(k) = &plan.named {
        note(&format!(
            "kernel: {} ({}): {}",
            k.name,
            k.file.display(),
            k.description
        ));
    }
    // Load the series first: a bad series fails before any download.
    let series = crate::kernel::patches::load_all(&plan.patches)?;
    let mut log = |m: &str| note(m);
    let base = match &plan.base {
        crate::kernel::named::Base::Debian => crate::kernel::source::fetch_debian(
            cache,
            crate::kernel::source::DEFAULT_PACKAGE,
            &mut log,
        )?,
        crate::kernel::named::Base::Tree(dir) => crate::kernel::source::open_tree(dir)?,
        crate::kernel::named::Base::Git { repo, rev } => {
            crate::kernel::source::from_git(cache, repo, rev, &mut log)?
        }
    };
    let src = match &series {
        Some(s) => {
            let user_tree =
                base.identity.kind != "debian-package" && base.identity.commit.is_none();
            if !opts.config_only && !user_tree {
                // The unpatched base first (a no-op when cached): the series'
                // build is then seeded from its objects, and so is the build
                // of every later version of the series on this base.
                kbuild::build(&kbuild::BuildRequest {
                    source: &base,
                    fragments_dir: &opts.root.join("kernel-configs"),
                    fragments: plan.fragments.clone(),
                    cache,
                    jobs: kbuild::jobs(),
                    config_only: false,
                })
                .context("building the base the series applies to")?;
            }
            crate::kernel::source::patched(cache, &base, s, plan.allow_fuzz, &mut log)?
        }
        None => base,
    };
    let mut art = kbuild::build(&kbuild::BuildRequest {
        source: &src,
        fragments_dir: &opts.root.join("kernel-configs"),
        fragments: plan.fragments,
        cache,
        jobs: kbuild::jobs(),
        config_only: opts.config_only,
    })?;
    note(&format!(
        "kernel: FUSE DAX modes: {}",
        fuse_dax_modes(&art.config)
    ));
    if let Some(k) = plan.named {
        art.name = Some(k.name);
        art.known_defects = k.known_defects;
        art.expunged = k.expunged;
    }
    Ok(art)
}

/// What the kernel was built to do about famfs: the cases' oracle for the
/// capability (see [`crate::contract::FamfsBuild`]).
pub fn famfs_build(k: &KernelArtifacts) -> crate::contract::FamfsBuild {
    crate::contract::FamfsBuild {
        configured: k.config.enabled("FUSE_FAMFS_DAX"),
        abi: k.famfs_abi.as_ref().map(|a| a.profile.clone()),
        evidence: k.famfs_abi.as_ref().map_or_else(
            || "a prebuilt kernel: no source to read its famfs ABI from".to_string(),
            |a| a.evidence.clone(),
        ),
    }
}

/// Which of FUSE's two DAX modes a kernel has, for the build's status line.
pub fn fuse_dax_modes(cfg: &crate::kernel::config::DotConfig) -> String {
    let v = |sym: &str| {
        if cfg.enabled(sym) {
            format!("CONFIG_{sym}=y")
        } else {
            format!("CONFIG_{sym} not set")
        }
    };
    format!(
        "virtio-fs DAX {}, famfs {}",
        v("FUSE_DAX"),
        v("FUSE_FAMFS_DAX")
    )
}

/// The kernel's known defects for one case.
pub fn known_for<'a>(
    k: &'a KernelArtifacts,
    id: &str,
) -> Vec<&'a crate::kernel::named::KnownDefect> {
    let id = crate::plan::case::base_id(id);
    k.known_defects.iter().filter(|d| d.case == id).collect()
}

/// `--profile auto`: the profile of the famfs ABI the kernel source defines.
pub const AUTO_PROFILE: &str = "auto";

/// Everything a run needs before the first boot.
pub struct Prepared {
    pub opts: Options,
    pub kernel: KernelArtifacts,
    pub accel: Accel,
    pub guest_bin_dir: PathBuf,
    pub base_image: PathBuf,
    pub cache: Cache,
    pub qemu: crate::vm::qemu::Qemu,
    /// The famfs user space in the image, or why there is none.
    pub famfs_user: std::result::Result<crate::image::famfs_user::FamfsUser, String>,
    /// The named topology of `--topology`.
    pub topology: Option<crate::plan::topologies::Choice>,
    /// Time from the start of `prepare` to ready-to-boot.
    pub prepare_time: Duration,
}

/// The famfs user space of a run: `opts.famfs_user`, else the one the
/// named kernel names (`famfs-user: DIR`). Err(why) when there is none or
/// its fixture is absent: the `famfs-user` cases are then not run.
fn famfs_user(
    opts: &Options,
    cache: &Cache,
) -> Result<std::result::Result<crate::image::famfs_user::FamfsUser, String>> {
    use crate::image::famfs_user::{resolve, Source};
    if let Some(s) = &opts.famfs_user {
        return resolve(s, &opts.root, cache).map(Ok);
    }
    let named = match &opts.kernel {
        KernelChoice::Named(n) => Some(crate::kernel::named::load(&opts.root, n)?),
        _ => None,
    };
    match named.as_ref().and_then(|k| k.famfs_user.as_ref().map(|d| (k, d))) {
        None => Ok(Err("no famfs user space: pass --famfs-deps DIR [--famfs-src DIR] or --famfs-bin DIR, or name one in the kernel's file (famfs-user: DIR)".into())),
        Some((k, d)) if !d.exists() => Ok(Err(format!(
            "the famfs user space kernel {} names is not here: {} does not exist",
            k.name,
            d.display()
        ))),
        Some((_, d)) => resolve(
            &Source::Sources {
                deps: d.clone(),
                tree: None,
            },
            &opts.root,
            cache,
        )
        .map(Ok),
    }
}

pub fn prepare(opts: &Options) -> Result<Prepared> {
    let start = Instant::now();
    ensure_host(opts)?;
    // Bad names fail before anything is built.
    let topology = match &opts.topology {
        Some(t) => Some(crate::plan::topologies::Table::load(&opts.root)?.choose(t)?),
        None => None,
    };
    let cache = Cache::open(opts.cache_root.as_deref())?;
    let qemu = crate::vm::qemu::Qemu::find(opts.qemu.as_deref(), &cache)?;
    let kernel = kernel(opts, &cache)?;
    let mut opts = opts.clone();
    if opts.profile == AUTO_PROFILE {
        let abi = kernel.famfs_abi.as_ref();
        opts.profile = crate::kernel::abi::auto_profile(abi).to_string();
        note(&format!(
            "profile: {} ({})",
            opts.profile,
            abi.map_or(
                "a prebuilt kernel: no source to read the famfs ABI from; give --profile to choose",
                |a| &a.evidence
            )
        ));
    }
    let opts = &opts;
    if !kernel.config.enabled("X86_IOPL_IOPERM") {
        note("warning: kernel lacks CONFIG_X86_IOPL_IOPERM; the guest cannot report its exit status through isa-debug-exit");
    }
    let stage = crate::events::Stage::start("guest program");
    let guest_bin_dir = crate::image::guest_program::build(&opts.workspace)?;
    stage.finish("built");
    let base_image = crate::image::initramfs::build_base(
        &opts.root.join("images/default.yaml"),
        &guest_bin_dir,
        &cache,
    )?;
    let famfs_user = famfs_user(opts, &cache)?.and_then(|u| {
        let pushes = famfs_proto::Profile::parse(&opts.profile)
            .map(|p| p.pushes_daxdevs())
            .unwrap_or(false);
        match (pushes, u.pushes) {
            (true, Some(false)) => Err(format!(
                "the famfs user space at hand cannot push dax devices, which the {} profile needs: its libfuse's fuse_kernel.h has no FUSE_DEV_IOC_DAXDEV_OPEN (famfs builds its push code only against a libfuse with the famfs push ioctl; give one with --famfs-deps, or a prefix with --famfs-bin)",
                opts.profile
            )),
            _ => Ok(u),
        }
    });
    let base_image = match &famfs_user {
        Ok(u) => {
            let out = cache.dir("images")?.join(format!(
                "{}+famfs-user-{}.cpio",
                base_image.file_stem().unwrap_or_default().to_string_lossy(),
                &u.identity.replace('/', "_")
            ));
            // Rebuilt every time (a second or less): a --famfs-bin prefix
            // may have changed under the same path.
            let mut data = std::fs::read(&base_image)?;
            data.extend(crate::image::famfs_user::layer(u)?);
            crate::base::cache::write_atomic(&out, &data)?;
            out
        }
        Err(_) => base_image,
    };
    let probe_initrd = cache.dir("images")?.join("probe.cpio");
    crate::image::initramfs::assemble(
        &base_image,
        &crate::image::initramfs::overlay("{}", &opts.cases_dir(), "")?,
        &probe_initrd,
    )?;
    let accel = crate::vm::accel::probe(&qemu, &kernel.bzimage, &probe_initrd, &cache)?;
    Ok(Prepared {
        opts: opts.clone(),
        kernel,
        accel,
        guest_bin_dir,
        base_image,
        cache,
        qemu,
        famfs_user,
        topology,
        prepare_time: start.elapsed(),
    })
}

/// Every `requires.kconfig` symbol of `cases` must exist: in the kernel
/// source's Kconfig files or in a fragment of `kernel-configs/` (symbols
/// only some sources have, such as `FUSE_FAMFS_DAX`, are named there). A
/// misspelt symbol would otherwise make a case not run forever.
pub fn check_case_symbols(opts: &Options, kernel: &KernelArtifacts, cases: &[Case]) -> Result<()> {
    let Some(src) = &kernel.source else {
        return Ok(()); // a prebuilt kernel: no source to check against
    };
    let wanted: Vec<(&Case, &str)> = cases
        .iter()
        .flat_map(|c| {
            c.meta.requires.kconfig.iter().map(move |k| {
                let s = k.strip_prefix('!').unwrap_or(k);
                (c, s.strip_prefix("CONFIG_").unwrap_or(s))
            })
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let index = crate::kernel::config::KconfigIndex::scan(&src.path)?;
    let frag_dir = opts.root.join("kernel-configs");
    let mut known: std::collections::BTreeSet<String> = index.symbols.keys().cloned().collect();
    for name in crate::kernel::config::available_fragments(&frag_dir)? {
        for f in crate::kernel::config::load_fragments(&frag_dir, &[name])? {
            known.extend(f.settings.into_iter().map(|s| s.symbol));
        }
    }
    for (case, sym) in wanted {
        if known.contains(sym) {
            continue;
        }
        let text = std::fs::read_to_string(&case.path).unwrap_or_default();
        let hint = crate::base::yaml::closest(sym, known.iter().map(String::as_str))
            .map(|c| format!("; did you mean CONFIG_{c}?"))
            .unwrap_or_default();
        bail!(
            "{}:{}: requires.kconfig: CONFIG_{sym} is not a symbol of {} nor of a fragment in {}{hint}",
            case.path.display(),
            crate::base::yaml::line_of(&text, 1, sym),
            src.path.display(),
            frag_dir.display()
        );
    }
    Ok(())
}

/// One boot's worth of cases with a topology that serves them all.
#[derive(Debug, Clone)]
pub struct BootGroup {
    pub topology: Topology,
    pub cases: Vec<String>,
}

/// Group cases into as few topologies as possible, keeping case order
/// within each group.
pub fn plan_groups(cases: &[&Case]) -> Vec<BootGroup> {
    let mut groups: Vec<BootGroup> = Vec::new();
    for c in cases {
        // A case that needs a fresh boot starts a group of its own, first in
        // its boot; cases after it may join that group.
        let slot = if c.fresh_boot() {
            None
        } else {
            groups
                .iter_mut()
                .find_map(|g| g.topology.merge(&c.topology).map(|t| (g, t)))
        };
        match slot {
            Some((g, t)) => {
                g.topology = t;
                g.cases.push(c.id.clone());
            }
            None => groups.push(BootGroup {
                topology: c.topology.clone(),
                cases: vec![c.id.clone()],
            }),
        }
    }
    groups
}

/// What a run will do, decided once before anything boots: the cases the
/// kernel's config rules out (with why), then one boot group per topology.
/// The executor and the test list both read it, in this order.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub not_run: Vec<(String, String)>,
    pub groups: Vec<BootGroup>,
}

impl Schedule {
    /// The kernel's config and expunge list rule cases out; a named
    /// topology replaces each case's machine (or rules it out), and so does
    /// a kind of pmem the QEMU cannot emulate or a famfs user space the run
    /// does not have.
    pub fn new(p: &Prepared, cases: &[Case]) -> Schedule {
        let (kernel, topology, qemu) = (&p.kernel, p.topology.as_ref(), &p.qemu);
        let mut not_run = Vec::new();
        let mut placed = Vec::new();
        for c in cases {
            let expunged = kernel.expunged.iter().find(|e| e.covers(&c.id)).map(|e| {
                format!(
                    "expunged on kernel {}: {} ({})",
                    kernel.name.as_deref().unwrap_or("?"),
                    e.why.trim(),
                    e.at
                )
            });
            let mut c = c.clone();
            let why = expunged
                .or_else(|| c.unmet_kconfig(&kernel.config))
                .or_else(|| match topology.map(|t| t.apply(&c)) {
                    Some(Ok(topo)) => {
                        c.topology = topo;
                        None
                    }
                    Some(Err(why)) => Some(why),
                    None => None,
                })
                .or_else(|| c.topology.pmem.as_ref().and_then(|p| qemu.lacks(p.kind)))
                .or_else(|| match (&p.famfs_user, c.meta.requires.famfs_user) {
                    (Err(why), true) => Some(why.clone()),
                    _ => None,
                });
            match why {
                Some(why) => not_run.push((c.id.clone(), why)),
                None => placed.push(c),
            }
        }
        let runnable: Vec<&Case> = placed.iter().collect();
        Schedule {
            not_run,
            groups: plan_groups(&runnable),
        }
    }

    /// Trial names in the order their results arrive: each boot group's
    /// cases, then its [`boot_trial`].
    pub fn order(&self) -> Vec<String> {
        self.not_run
            .iter()
            .map(|(id, _)| id.clone())
            .chain(self.groups.iter().enumerate().flat_map(|(g, grp)| {
                grp.cases
                    .iter()
                    .cloned()
                    .chain(std::iter::once(boot_trial(g + 1)))
            }))
            .collect()
    }
}

/// The trial that holds the kernel reports of the `n`-th boot group
/// (restarts included) that fall outside every case: during boot, between
/// cases, after the last one, at shutdown. It fails with their titles.
pub fn boot_trial(n: usize) -> String {
    format!("boot/{n}")
}

/// Something a caller wants to hear about as the run goes.
pub trait Sink {
    fn result(&mut self, r: &CaseResult);
}

impl<F: FnMut(&CaseResult)> Sink for F {
    fn result(&mut self, r: &CaseResult) {
        self(r)
    }
}

/// A run id that sorts by time and cannot clash between concurrent runs.
pub fn run_id() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        std::process::id()
    )
}

/// Run `selected` cases (in this order; host-side not-run cases included)
/// and report each result to `sink` as soon as it is known.
pub fn execute(p: &Prepared, selected: &[Case], sink: &mut dyn Sink) -> Result<Summary> {
    check_case_symbols(&p.opts, &p.kernel, selected)?;
    let dir = RunDir::create(&p.opts.results_root, &run_id())?;
    note(&format!("results: {}", dir.root.display()));
    let schedule = Schedule::new(p, selected);
    execute_in(p, dir, selected, &schedule, sink)
}

/// [`execute`] into a run directory the caller created (and announced),
/// following a schedule the caller made.
pub fn execute_in(
    p: &Prepared,
    dir: RunDir,
    selected: &[Case],
    schedule: &Schedule,
    sink: &mut dyn Sink,
) -> Result<Summary> {
    let start = Instant::now();
    let id = dir
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let summary = Summary {
        run_id: id,
        kernel: serde_json::to_value(&p.kernel)?,
        backend: p.opts.backend,
        accel: Some(p.accel),
        profile: p.opts.profile.clone(),
        boots: vec![],
        cases: vec![],
        counts: Default::default(),
        duration_ms: 0,
    };
    let by_id: BTreeMap<&str, &Case> = selected.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut summary = summary;
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let mut rec = Recorder::new(&dir, &by_id, &p.kernel, &summary.run_id, tx.clone());
    for (id, why) in &schedule.not_run {
        let v = Verdict {
            outcome: Outcome::NotRun,
            reasons: vec![why.clone()],
            raw_outcome: Outcome::NotRun,
            diff: None,
        };
        rec.write(id, &v, None, None, &[])?;
    }
    drop(rec);
    // Workers take boot groups in schedule order; results come back here,
    // to the caller's sink, as they are known.
    let next_group = std::sync::atomic::AtomicUsize::new(0);
    let boot_no = std::sync::atomic::AtomicU32::new(0);
    let failure: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
    let jobs = p.opts.jobs.clamp(1, schedule.groups.len().max(1));
    let worker = |tx: std::sync::mpsc::Sender<Event>| -> Result<()> {
        let mut rec = Recorder::new(&dir, &by_id, &p.kernel, &summary.run_id, tx);
        loop {
            let g = next_group.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Some(group) = schedule.groups.get(g) else {
                return Ok(());
            };
            // Every trial gets a result, however the run ends.
            if let Some(sig) = crate::base::proc::interrupted() {
                let why = format!(
                    "the run was interrupted by {}",
                    crate::base::proc::signal_name(sig)
                );
                rec.mark(group.cases.clone(), Outcome::NotRun, &[why], None)?;
                rec.write_boot_trial(g + 1, false)?;
                continue;
            }
            let stopped = failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|e| format!("{e:#}"));
            if let Some(e) = stopped {
                let why = format!("not run: the run stopped before this case: {e}");
                rec.mark(group.cases.clone(), Outcome::Error, &[why], None)?;
                rec.write_boot_trial(g + 1, false)?;
                continue;
            }
            let r = run_group(p, group, &boot_no, &mut rec);
            rec.write_boot_trial(g + 1, true)?;
            if let Err(e) = r {
                failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
            }
        }
    };
    let mut boots = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                let tx = tx.clone();
                let worker = &worker;
                scope.spawn(move || worker(tx))
            })
            .collect();
        drop(tx);
        for e in rx {
            match e {
                Event::Result(r) => {
                    sink.result(&r);
                    summary.cases.push(r);
                }
                Event::Boot(b) => boots.push(b),
            }
        }
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a boot group's thread panicked")));
            if let Err(e) = r {
                failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
            }
        }
        Ok(())
    })?;
    boots.sort_by_key(|b: &BootRecord| b.index);
    summary.boots = boots;
    // In schedule order, however the groups' results interleaved.
    let order: BTreeMap<String, usize> = schedule
        .order()
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    summary
        .cases
        .sort_by_key(|c| order.get(&c.id).copied().unwrap_or(usize::MAX));
    let failure = failure.into_inner().unwrap_or_else(|e| e.into_inner());
    // Written even when the run stops early: what happened so far is kept.
    summary.duration_ms = start.elapsed().as_millis() as u64;
    summary.count();
    dir.write_summary(&summary)?;
    dir.mark_latest()?;
    match failure {
        Some(e) => Err(e.context(format!(
            "run stopped; partial results in {}",
            dir.root.display()
        ))),
        None => Ok(summary),
    }
}

/// What a boot group's worker sends back to the run: results in the order
/// they are known, and each boot's record.
enum Event {
    Result(CaseResult),
    Boot(BootRecord),
}

/// Judges a case's report (with the kernel's known defects) and records the
/// result: the case's files here, the record to the run (summary and the
/// caller's sink). One per boot-group worker.
struct Recorder<'a> {
    dir: &'a RunDir,
    by_id: &'a BTreeMap<&'a str, &'a Case>,
    run_id: &'a str,
    tx: std::sync::mpsc::Sender<Event>,
    kernel: &'a KernelArtifacts,
    /// Opened at the first report, when the kernel has debug info.
    symbolizer: std::cell::OnceCell<Option<crate::judge::symbolize::Symbolizer>>,
    /// Reports outside every case in the current boot group: (boot, report).
    outside: Vec<(u32, KernelReport)>,
}

impl<'a> Recorder<'a> {
    fn new(
        dir: &'a RunDir,
        by_id: &'a BTreeMap<&'a str, &'a Case>,
        kernel: &'a KernelArtifacts,
        run_id: &'a str,
        tx: std::sync::mpsc::Sender<Event>,
    ) -> Recorder<'a> {
        Recorder {
            dir,
            by_id,
            run_id,
            tx,
            kernel,
            symbolizer: std::cell::OnceCell::new(),
            outside: Vec::new(),
        }
    }

    /// Hand a record to the run (which outlives every worker).
    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    fn write(
        &mut self,
        id: &str,
        v: &Verdict,
        report: Option<&crate::contract::CaseReport>,
        boot: Option<u32>,
        reports: &[KernelReport],
    ) -> Result<()> {
        let case = self
            .by_id
            .get(id)
            .with_context(|| format!("unknown case {id}"))?;
        let res = self.dir.write_case(case, v, report, boot, reports)?;
        self.send(Event::Result(res));
        Ok(())
    }

    /// Reports of some kernel log lines, with source lines when the
    /// kernel's vmlinux has debug info.
    fn reports<'l>(&self, lines: impl IntoIterator<Item = &'l str>) -> Vec<KernelReport> {
        let mut rs = crate::judge::reports::parse(lines);
        if !rs.is_empty() {
            if let Some(s) = self.symbolizer.get_or_init(|| open_symbolizer(self.kernel)) {
                s.symbolize(&mut rs);
            }
        }
        rs
    }

    /// A report from the guest, or one the host made for a case whose VM
    /// went down (`lost`); `extra` is added to a failure's reasons.
    fn judge(
        &mut self,
        r: &crate::contract::CaseReport,
        lost: bool,
        boot: u32,
        extra: Option<String>,
    ) -> Result<Outcome> {
        let Some(case) = self.by_id.get(r.id.as_str()) else {
            return Ok(Outcome::NotRun);
        };
        let reports = self.reports(r.kmsg.iter().map(String::as_str));
        let mut v = verdict::apply_known_defects(
            verdict::judge(case, r, &reports),
            &reports,
            lost,
            &known_for(self.kernel, &r.id),
        );
        if let Some(x) = extra.filter(|_| v.outcome == Outcome::Fail) {
            v.reasons.push(x);
        }
        self.write(&r.id, &v, Some(r), Some(boot), &reports)?;
        Ok(v.outcome)
    }

    /// Record one outcome for cases the guest never reported on.
    fn mark(
        &mut self,
        ids: impl IntoIterator<Item = String>,
        outcome: Outcome,
        reasons: &[String],
        boot: Option<u32>,
    ) -> Result<()> {
        for id in ids {
            let v = Verdict {
                outcome: outcome.clone(),
                reasons: reasons.to_vec(),
                raw_outcome: outcome.clone(),
                diff: None,
            };
            self.write(&id, &v, None, boot, &[])?;
        }
        Ok(())
    }

    /// The result of boot group `n`'s trial, from the reports gathered
    /// outside its cases (not run when the group never booted).
    fn write_boot_trial(&mut self, n: usize, booted: bool) -> Result<()> {
        let outside = std::mem::take(&mut self.outside);
        let reasons: Vec<String> = outside
            .iter()
            .map(|(b, r)| {
                let place = match r.ts {
                    Some(t) => format!("boot {b}, {t:.1}s after boot"),
                    None => format!("boot {b}"),
                };
                format!("kernel: {} (outside every case: {place})", r.title)
            })
            .collect();
        let (outcome, reasons) = match (reasons.is_empty(), booted) {
            (false, _) => (Outcome::Fail, reasons),
            (true, true) => (Outcome::Pass, reasons),
            (true, false) => (
                Outcome::NotRun,
                vec!["this boot group did not boot".to_string()],
            ),
        };
        let v = Verdict {
            outcome: outcome.clone(),
            reasons,
            raw_outcome: outcome,
            diff: None,
        };
        let reports: Vec<KernelReport> = outside.into_iter().map(|(_, r)| r).collect();
        let res = self.dir.write_trial(&boot_trial(n), &v, &reports)?;
        self.send(Event::Result(res));
        Ok(())
    }
}

/// The symbolizer for a kernel's vmlinux, if it has debug info; the trees
/// it was compiled in are cut from source paths.
pub fn open_symbolizer(k: &KernelArtifacts) -> Option<crate::judge::symbolize::Symbolizer> {
    let vmlinux = k.vmlinux.as_ref()?;
    let mut trees: Vec<PathBuf> = Vec::new();
    if let Some(s) = &k.source {
        trees.push(s.path.clone());
        trees.extend(s.parent.clone());
    }
    trees.extend(k.build_dir.clone());
    match crate::judge::symbolize::Symbolizer::open(vmlinux, &trees) {
        Ok(s) => s,
        Err(e) => {
            note(&format!("reports are not symbolized: {e:#}"));
            None
        }
    }
}

/// What one boot left behind.
struct BootResult {
    end: BootEnd,
    /// The runner said hello: the boot reached user space.
    reached_runner: bool,
    setup_failure: Option<String>,
    /// The case running when the VM went down, and since when.
    current: Option<(String, Instant)>,
    /// What the running case had written when the VM went down.
    streamed: String,
    /// The runner ended the boot early and said why.
    restart: Option<String>,
    console: PathBuf,
    console_text: String,
    /// Reports on the console outside every case (boot, between cases,
    /// after the last one, shutdown).
    outside: Vec<KernelReport>,
}

/// Boot once with the pending cases, streaming each result to the recorder
/// as it arrives.
fn boot_once(
    p: &Prepared,
    topology: &Topology,
    pending: &mut VecDeque<String>,
    n: u32,
    rec: &mut Recorder,
) -> Result<BootResult> {
    let bdir = rec.dir.boot_dir(n);
    std::fs::create_dir_all(&bdir)?;
    let plan = make_plan(p, rec.run_id, n, topology, pending, rec.by_id);
    let spec = make_spec(p, &bdir, topology, &plan)?;
    if !p.opts.quiet_boots {
        note(&format!(
            "boot {n}: {} cases, {} ({:?}, {:?})",
            pending.len(),
            topology.describe(),
            p.opts.backend,
            p.accel
        ));
    }
    // Deleted by the watchdog if the harness dies with the VM running.
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
    let mut child: Box<dyn Running> = match p.opts.backend {
        Backend::Qemu => Box::new(vm::launch_qemu(&spec)?),
        Backend::Vng => Box::new(crate::vm::vng::launch(&spec)?),
    };
    let scale = p.accel.timeout_scale();
    let boot_s = match p.opts.backend {
        Backend::Qemu => 60.0,
        Backend::Vng => 120.0,
    } * if p.accel == Accel::Tcg { 2.0 } else { 1.0 };
    let timeouts = Timeouts {
        boot: Duration::from_secs_f64(boot_s),
        setup: Duration::from_secs_f64(60.0 * scale),
        // The runner kills a case at its timeout and reports within a few
        // seconds; longer means the guest itself is stuck.
        grace: Duration::from_secs(10),
    };
    let by_id = rec.by_id;
    let case_timeout = |id: &str| -> Duration {
        Duration::from_secs_f64(
            by_id.get(id).map(|c| c.meta.timeout as f64).unwrap_or(60.0) * scale,
        )
    };
    let (mut current, mut hello_ms, mut setup_ms, mut first_result_ms) = (None, None, None, None);
    let (mut setup_failure, mut write_error) = (None, None);
    let mut streamed = String::new();
    let mut restart = None;
    let mut on_msg = |m: &GuestMsg| match m {
        GuestMsg::Hello { .. } => hello_ms = Some(launched.elapsed().as_millis() as u64),
        GuestMsg::Setup { ok, detail, .. } => {
            setup_ms = Some(launched.elapsed().as_millis() as u64);
            if !ok {
                setup_failure = Some(detail.clone());
            }
        }
        GuestMsg::Done { .. } => {}
        GuestMsg::CaseStart { id, .. } => {
            current = Some((id.clone(), Instant::now()));
            streamed.clear();
        }
        GuestMsg::CaseOutput { id, text } => {
            if current.as_ref().is_some_and(|(c, _)| c == id) && streamed.len() < 1 << 20 {
                streamed.push_str(text);
            }
        }
        GuestMsg::CaseEnd(r) => {
            first_result_ms.get_or_insert(launched.elapsed().as_millis() as u64);
            current = None;
            if let Err(e) = rec.judge(r, false, n, None) {
                write_error = Some(e);
            }
            pending.retain(|x| *x != r.id);
        }
        GuestMsg::Restart { reason } => restart = Some(reason.clone()),
        GuestMsg::Note { text } => note(&format!("guest: {text}")),
    };
    let end = vm::monitor(child.as_mut(), &spec, &timeouts, &case_timeout, &mut on_msg)?;
    drop(child);
    if let Some(e) = write_error {
        return Err(e.context("writing case results"));
    }
    let console = spec.console_log();
    let console_text = std::fs::read(&console)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = console_text.lines().collect();
    let windows = crate::judge::windows::Windows::of(&lines);
    let outside = windows.outside(&rec.reports(lines.iter().copied()));
    if let Err(e) = write_reports(&bdir.join("reports.txt"), &outside) {
        note(&format!("boot {n}: writing reports.txt: {e:#}"));
    }
    rec.send(Event::Boot(BootRecord {
        index: n,
        topology: topology.describe(),
        backend: p.opts.backend,
        accel: p.accel,
        end: end.clone(),
        hello_ms,
        setup_ms,
        first_result_ms,
        duration_ms: launched.elapsed().as_millis() as u64,
        console_log: console
            .strip_prefix(&rec.dir.root)
            .unwrap_or(&console)
            .display()
            .to_string(),
        reports_outside_cases: outside.clone(),
    }));
    // The pmem backing file can be large and the initramfs is rebuilt from
    // plan.json, the cases and the cached base; the logs are what we keep.
    for f in &images {
        let _ = std::fs::remove_file(f);
        crate::base::proc::unregister_file(f);
    }
    Ok(BootResult {
        end,
        reached_runner: hello_ms.is_some(),
        setup_failure,
        current,
        streamed,
        restart,
        console,
        console_text,
        outside,
    })
}

/// Reports as a person reads them, in a file beside the logs.
fn write_reports(path: &Path, reports: &[KernelReport]) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = reports.iter().map(KernelReport::render).collect();
    std::fs::write(path, text.join("\n"))?;
    Ok(())
}

/// The console's last lines and QEMU's own complaints (bad device
/// arguments are not on the console). With a case, the tail starts at its
/// start marker: what the case caused, not boot noise.
fn boot_tail(console: &str, bdir: &Path, case: Option<&str>) -> String {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let from = case
        .and_then(|id| {
            let w = crate::judge::windows::Windows::of(&lines);
            w.cases.iter().rev().find(|c| c.0 == id).map(|c| c.1)
        })
        .unwrap_or(0);
    let shown = &lines[from.max(lines.len().saturating_sub(40))..];
    let mut tail = shown.join("\n");
    let qemu_err = vm::tail(&bdir.join("qemu.stderr"), 10);
    if !qemu_err.trim().is_empty() {
        tail = format!("{tail}\n--- qemu stderr ---\n{qemu_err}");
    }
    tail
}

/// Boot (and re-boot after crashes) until every case of the group has a
/// result. A boot that never reaches the runner is retried once.
fn run_group(
    p: &Prepared,
    group: &BootGroup,
    boot_no: &std::sync::atomic::AtomicU32,
    rec: &mut Recorder,
) -> Result<()> {
    let mut pending: VecDeque<String> = group.cases.iter().cloned().collect();
    let mut restarts = 0;
    let mut infra_retry_used = false;
    while !pending.is_empty() {
        let n = boot_no.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let b = boot_once(p, &group.topology, &mut pending, n, rec)?;
        let titles = |rs: &[KernelReport]| {
            rs.iter()
                .map(|r| r.title.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        if let BootEnd::Interrupted { signal } = b.end {
            let sig = crate::base::proc::signal_name(signal);
            rec.outside
                .extend(b.outside.iter().cloned().map(|r| (n, r)));
            if let Some((cur, started)) = b.current {
                let ran = started.elapsed();
                let report = lost_report(
                    &cur,
                    &format!("interrupted by {sig}"),
                    &b.console_text,
                    ran,
                    b.streamed,
                );
                let v = Verdict {
                    outcome: Outcome::NotRun,
                    reasons: vec![format!(
                        "interrupted by {sig} after {:.1}s; its output and kernel log so far are kept",
                        ran.as_secs_f64()
                    )],
                    raw_outcome: Outcome::NotRun,
                    diff: None,
                };
                rec.write(&cur, &v, Some(&report), Some(n), &[])?;
                pending.retain(|x| *x != cur);
            }
            let why = format!("the run was interrupted by {sig}");
            return rec.mark(pending.drain(..), Outcome::NotRun, &[why], None);
        }
        if !b.reached_runner {
            // A crash before the runner starts is infrastructure: shown,
            // retried once, not a boot-trial failure.
            let reason = match &b.end {
                BootEnd::Died { reason, .. } | BootEnd::TimedOut { reason } => reason.clone(),
                BootEnd::Completed | BootEnd::Interrupted { .. } => {
                    "the VM exited before the guest runner started".into()
                }
            };
            let reason = if b.outside.is_empty() {
                reason
            } else {
                format!("{reason}; the kernel reported: {}", titles(&b.outside))
            };
            let tail = boot_tail(&b.console_text, &rec.dir.boot_dir(n), None);
            if !infra_retry_used {
                infra_retry_used = true;
                note(&format!("boot {n}: {reason}; this is an infrastructure failure, retrying the boot once. Console tail:\n{tail}"));
                continue;
            }
            let why =
                format!("boot failed twice before the guest runner started: {reason}; console log kept at {}", b.console.display());
            rec.mark(
                pending.drain(..),
                Outcome::Error,
                &[why.clone(), format!("console tail:\n{tail}")],
                Some(n),
            )?;
            bail!("{why}\n--- console tail ---\n{tail}");
        }
        rec.outside
            .extend(b.outside.iter().cloned().map(|r| (n, r)));
        if pending.is_empty() {
            break;
        }
        let reason = match (&b.end, &b.restart) {
            (_, Some(why)) => format!("the runner ended the boot: {why}"),
            (BootEnd::Completed, None) => {
                let why = match &b.setup_failure {
                    Some(d) => format!("device setup in the guest failed: {d}"),
                    None => "the guest runner finished without running this case".into(),
                };
                return rec.mark(pending.drain(..), Outcome::Fail, &[why], Some(n));
            }
            (BootEnd::Died { reason, .. } | BootEnd::TimedOut { reason }, None) => reason.clone(),
            (BootEnd::Interrupted { .. }, None) => unreachable!("handled above"),
        };
        // A crash the case was written to cause does not use up the
        // restarts a topology gets for crashes nobody expected.
        let mut expected_crash = b.restart.is_some();
        if let Some((cur, started)) = b.current {
            let tail = boot_tail(&b.console_text, &rec.dir.boot_dir(n), Some(&cur));
            // What the case's libtest line and JUnit message say.
            let how = match &b.end {
                BootEnd::TimedOut { reason } => format!("hung ({reason}; the VM was killed)"),
                _ => format!("crashed ({reason})"),
            };
            let report = lost_report(&cur, &how, &b.console_text, started.elapsed(), b.streamed);
            let o = rec.judge(&report, true, n, Some(format!("console tail:\n{tail}")))?;
            expected_crash |= matches!(o, Outcome::ExpectedFail | Outcome::KnownFail);
            pending.retain(|x| *x != cur);
        }
        if pending.is_empty() {
            break;
        }
        if restarts >= p.opts.max_restarts {
            let why = format!(
                "not run: the VM went down {} times; giving up on this topology",
                restarts + 1
            );
            return rec.mark(pending.drain(..), Outcome::Fail, &[why], None);
        }
        if !expected_crash {
            restarts += 1;
        }
        // On a line of its own: the test list may be mid-line.
        eprintln!();
        note(&format!(
            "boot {n}: {reason}; restarting the VM for {} remaining cases",
            pending.len()
        ));
    }
    Ok(())
}

/// What the host knows of a case whose VM went down under it: the console
/// from the case's start marker on, and the output it streamed.
fn lost_report(
    id: &str,
    reason: &str,
    console: &str,
    ran: Duration,
    output: String,
) -> crate::contract::CaseReport {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let w = crate::judge::windows::Windows::of(&lines);
    crate::contract::CaseReport {
        kmsg: w.slice(&lines, id).iter().map(|l| l.to_string()).collect(),
        duration_ms: ran.as_millis() as u64,
        ..crate::contract::CaseReport::new(
            id,
            crate::contract::CaseExit::Lost {
                reason: reason.into(),
            },
            output,
        )
    }
}

pub(crate) fn make_plan(
    p: &Prepared,
    run_id: &str,
    n: u32,
    topo: &Topology,
    pending: &VecDeque<String>,
    by_id: &BTreeMap<&str, &Case>,
) -> RunPlan {
    let cases_root = match p.opts.backend {
        Backend::Qemu => "/harness/cases".to_string(),
        Backend::Vng => p
            .opts
            .cases_dir()
            .canonicalize()
            .unwrap_or(p.opts.cases_dir())
            .display()
            .to_string(),
    };
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
        timeout_scale: p.accel.timeout_scale(),
        profile: p.opts.profile.clone(),
        // What the kernel was built with, so that a case can derive what the
        // kernel must do (`_kconfig FUSE_FAMFS_DAX`, the famfs gate).
        env: [
            (
                crate::contract::env::KCONFIG.to_string(),
                p.kernel.config.enabled_symbols().join(" "),
            ),
            (
                crate::contract::env::FAMFS_BUILD.to_string(),
                serde_json::to_string(&famfs_build(&p.kernel)).expect("serializes"),
            ),
        ]
        .into_iter()
        .chain(p.opts.guest_env.clone())
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

pub(crate) fn make_spec(
    p: &Prepared,
    bdir: &Path,
    topo: &Topology,
    plan: &RunPlan,
) -> Result<VmSpec> {
    let plan_json = serde_json::to_string_pretty(plan)?;
    std::fs::write(bdir.join("plan.json"), &plan_json)?;
    let (initrd, guest_command) = match p.opts.backend {
        Backend::Qemu => {
            let overlay = crate::image::initramfs::overlay(
                &plan_json,
                &p.opts.cases_dir(),
                &p.kernel.release,
            )?;
            let path = bdir.join("initramfs.cpio");
            crate::image::initramfs::assemble(&p.base_image, &overlay, &path)?;
            (Some(path), vec![])
        }
        Backend::Vng => {
            let tool = p.guest_bin_dir.join("fh-guest").canonicalize()?;
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
        backend: p.opts.backend,
        accel: p.accel,
        kernel: p.kernel.bzimage.clone(),
        initrd,
        cpus: p.opts.cpus,
        topology: topo.clone(),
        qemu: p.qemu.path.clone(),
        qemu_args: p.qemu.base_args(),
        kernel_args: kernel_args(&p.kernel.config),
        dir: bdir.canonicalize()?,
        guest_command,
    })
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
}
