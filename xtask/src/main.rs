//! `cargo xtask ...`: a thin command line over the famfs-harness library.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use famfs_harness::kernel::resolve::KernelChoice;
use famfs_harness::plan::select::Selection;
use famfs_harness::run::Options;
use famfs_harness::vm::Backend;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "famfs FUSE test harness")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel, boot it in QEMU with emulated pmem, run the cases.
    TestVm(Box<TestVm>),
    /// Configure, verify and build the kernel only.
    Kernel {
        #[command(flatten)]
        kernel: KernelArgs,
        /// Only configure and verify the fragments (no kernel build).
        #[arg(long)]
        check: bool,
    },
    /// famfs fmap tools.
    Fmap {
        #[command(subcommand)]
        what: FmapCmd,
    },
    /// A run's results in another format.
    Report {
        #[command(subcommand)]
        what: ReportCmd,
    },
    /// Kernel coverage runs (`test-vm --coverage`).
    Coverage {
        #[command(subcommand)]
        what: CoverageCmd,
    },
    /// Mutation testing: single-point mutants of a kernel file's reached
    /// lines, each built on top of the kernel's series and run with the
    /// trials that reached its line; a mutant is killed when a verdict
    /// differs from the unmutated kernel's. Exit 0: every planned mutant
    /// has a result; 3: the budget ran out first (the same command goes
    /// on); 2: error; 128 + N: interrupted by signal N.
    Mutate(Box<Mutate>),
    /// Fuzz a famfs kernel through the protocol (`fuzz fmap`).
    Fuzz {
        #[command(subcommand)]
        what: FuzzCmd,
    },
    /// famfs server scenarios.
    Scenario {
        #[command(subcommand)]
        what: ScenarioCmd,
    },
    /// Start a new case: cases/GROUP/NNN (the next free number) from a
    /// skeleton, with its golden file.
    NewCase {
        group: String,
        /// What the case checks (the header's description).
        #[arg(long, default_value = "")]
        description: String,
        /// `plain` (a header and one line of output) or `famfs` (a famfs
        /// case that passes as written on a famfs kernel).
        #[arg(long, default_value = "plain", value_parser = ["plain", "famfs"])]
        template: String,
        /// The cases directory (default: the checkout's cases/).
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
    },
    /// Write golden files from a run's output: the trials named, or every
    /// trial whose only failure is its output.
    Bless {
        /// Trials (`famfs/010`, `famfs/010[one-pmd]`); all output-only
        /// failures of the run when none is given.
        ids: Vec<String>,
        /// The run directory (default: the latest run).
        #[arg(long, value_name = "DIR")]
        run: Option<PathBuf>,
        /// The cases directory (default: the checkout's cases/).
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
    },
    /// Print the kernel reports of a console log (any machine's), titled
    /// and grouped as in a run. Exit 0: no report; 1: reports; 2: error.
    Triage {
        /// The console log (or kernel log) to read.
        console_log: PathBuf,
        /// The kernel's vmlinux: frames get source lines when it has debug info.
        #[arg(long, value_name = "FILE")]
        vmlinux: Option<PathBuf>,
        /// Print JSON (one object: log, symbolized, reports) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Boot the kernel a run would use, with a case's topology and
    /// environment (or a 512 MiB NVDIMM as devdax), and a shell on this
    /// terminal; with --run, one command, whose exit status is returned.
    Shell {
        #[command(flatten)]
        kernel: KernelArgs,
        /// The case (trial) whose topology, devices and environment the
        /// shell gets (`famfs/040[fmap-eio]`).
        #[arg(long, value_name = "ID")]
        case: Option<String>,
        /// The machine instead of the case's: a name from
        /// images/topologies.yaml (nvdimm, memmap, cxl, cxl-volatile,
        /// two-dax, large), then :SIZE and :fsdev if wanted (e.g. cxl:512M).
        #[arg(long, value_name = "NAME[:SIZE][:fsdev]")]
        topology: Option<String>,
        /// Run this command (`sh -c`) instead of an interactive shell.
        #[arg(long, value_name = "CMD")]
        run: Option<String>,
        /// Start QEMU's gdb stub on :1234 and print the gdb command line.
        #[arg(long)]
        gdb: bool,
        /// famfs protocol profile in the environment (FH_PROFILE): auto (the
        /// kernel source's famfs ABI), famfs-6.14, v10, next, or custom:...
        #[arg(long, value_name = "NAME", default_value = "auto")]
        profile: String,
        /// The cases directory (default: the checkout's cases/).
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
    },
    /// Run every cell of a matrix (named kernels x profiles x case
    /// selections) and write the night's summary as JSON, Markdown and
    /// HTML. Exit 0: nothing failed (with --baseline: nothing regressed);
    /// 101: something did; 2: bad input.
    Nightly {
        /// The matrix file (kernel-configs/matrix/default.yaml).
        #[arg(long, value_name = "FILE")]
        matrix: PathBuf,
        /// Where cells and nights go (default target/famfs-harness).
        #[arg(long, value_name = "DIR")]
        results: Option<PathBuf>,
        /// An earlier night (its directory, or a --results directory):
        /// each cell compared with the same cell there.
        #[arg(long, value_name = "DIR")]
        baseline: Option<PathBuf>,
        /// The cases directory (default: the checkout's cases/).
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
        /// One shard of every cell's selection (as test-vm's --partition).
        #[arg(long, value_name = "KIND:K/N")]
        partition: Option<String>,
        /// The QEMU every cell boots with (as test-vm's --qemu): cells on
        /// topologies it cannot emulate are not run, with the reason.
        #[arg(long, value_name = "PATH|backports")]
        qemu: Option<String>,
        /// Every cell on its kernel's coverage variant (as test-vm's
        /// --coverage, or `coverage: true` in the matrix).
        #[arg(long)]
        coverage: bool,
    },
    /// Find the first commit at which a case fails the way it fails at the
    /// bad end (git bisect with the harness as the judge). Exit 0: found;
    /// 2: bad input or no answer.
    Bisect {
        /// Commits of a kernel tree: each step builds that commit (the
        /// harness's --kernel-git, incremental between steps).
        #[arg(
            long,
            value_name = "REPO",
            required_unless_present = "cases_git",
            conflicts_with = "cases_git"
        )]
        kernel_git: Option<PathBuf>,
        /// Commits of a cases tree (its cases/ directory, or its root), on
        /// the default kernel.
        #[arg(long, value_name = "REPO")]
        cases_git: Option<PathBuf>,
        /// A commit where the case passes.
        #[arg(long, value_name = "REF")]
        good: String,
        /// A later commit where it fails.
        #[arg(long, value_name = "REF")]
        bad: String,
        /// The trial (`famfs/010[chunk-size-0]`).
        case: String,
    },
    /// Compare a run with an earlier one (as `test-vm --baseline` does,
    /// without running anything). Exit 0: nothing regressed; 101: something
    /// did; 2: not results directories.
    Compare {
        /// The earlier run (its directory, or a --results directory).
        baseline: PathBuf,
        /// The run to judge (its directory, or a --results directory).
        run: PathBuf,
        /// A trial this many percent slower (and over a second) regressed.
        #[arg(long, value_name = "PCT", default_value_t = 50)]
        slower_than: u32,
    },
    /// Combine the runs of a partitioned selection (`test-vm --partition
    /// K/N` on N machines) into one run with one summary.json and
    /// junit.xml. Exit 0: merged, nothing failed; 101: a trial failed; 2:
    /// the runs cannot be merged.
    Merge {
        /// The shards' run directories (or --results directories: their
        /// `latest`).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where the merged run goes (a results directory: runs/ID, latest).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Benchmarks of the harness itself.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// Fuzz every parser of the harness's inputs (case headers, scenarios,
    /// named kernels, matrices, config text, fmap replies, kernel logs,
    /// summaries, topologies, image specs) with inputs made from each
    /// format's grammar and mutated from the repository's examples: each
    /// must give Ok or an error naming file:line, never panic. Exit 0:
    /// neither; 1: a panic or an error without its line (inputs saved);
    /// 2: bad arguments.
    FuzzParsers {
        /// How long each target runs (`30s`, `10m`, `1h`).
        #[arg(long, value_name = "TIME", default_value = "10s", value_parser = famfs_harness::fuzz::parse_duration)]
        duration: std::time::Duration,
        /// Only this target (repeatable; default: all but `selftest`, which
        /// fails on purpose).
        #[arg(long = "target", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(famfs_harness::fuzz::selectable()))]
        targets: Vec<String>,
        /// Stop a target after this many inputs, if that comes first.
        #[arg(long, value_name = "N")]
        inputs: Option<u64>,
        /// Seed of the inputs (default: from the clock; printed).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Where the inputs that broke a parser go (default:
        /// target/fuzz-parsers).
        #[arg(long, value_name = "DIR")]
        save: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FuzzCmd {
    /// famfsd serves generated fmaps (valid ones of random geometry, and
    /// ones broken one field at a time towards its limits, with framing,
    /// server-error and GET_DAXDEV faults) to the kernel in the VM; the
    /// guest opens, stats, reads and faults each file; the kernel model
    /// says what a correct kernel does. A finding (kernel report, hang,
    /// wrong data, other verdict) is minimised and written as a case
    /// (RESULTS/replay). Exit 0: no finding; 1: findings (report.txt);
    /// 2: error; 128 + N: interrupted by signal N (the report is written).
    Fmap(Box<FuzzFmap>),
}

#[derive(Args)]
struct FuzzFmap {
    #[command(flatten)]
    kernel: KernelArgs,
    /// famfs protocol profile: auto (the kernel source's), v10, next.
    #[arg(long, default_value = "auto")]
    profile: String,
    /// How long to fuzz (`30s`, `10m`, `1h`).
    #[arg(long, value_name = "TIME", default_value = "10m", value_parser = famfs_harness::fuzz::parse_duration)]
    duration: std::time::Duration,
    /// Seed of the inputs (default: from the clock; printed).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Interesting inputs, read at the start and added to (default:
    /// RESULTS/corpus).
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// This machine's share: K/N (its own stream of inputs).
    #[arg(long, value_name = "K/N")]
    partition: Option<String>,
    /// Files per mount.
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=64))]
    batch: u32,
    /// The known findings (default: kernel-configs/fuzz-known.yaml).
    #[arg(long, value_name = "FILE")]
    known: Option<PathBuf>,
    /// VMs at once (default: one per host core, at most 4).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    jobs: Option<u32>,
    /// Where results go (default: target/famfs-harness/fuzz/KERNEL).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
}

/// `scenario check`: famfsd's own `--check`.
fn scenario_check(file: &std::path::Path, profile: Option<String>) -> Result<i32> {
    let mut args = vec![
        "--check".into(),
        "--scenario".into(),
        file.display().to_string(),
    ];
    args.extend(profile.into_iter().flat_map(|p| ["--profile".into(), p]));
    famfs_harness::server::cli_main(&args)
}

fn fuzz_fmap(mut f: FuzzFmap) -> Result<i32> {
    famfs_kernel_unless_chosen(&mut f.kernel);
    let mut opts = options(&f.kernel)?;
    opts.profile = profile_arg(&f.profile)?;
    opts.exec.jobs = f
        .jobs
        .map_or_else(famfs_harness::exec::default_jobs, |j| j as usize);
    let partition = f
        .partition
        .as_deref()
        .map(famfs_harness::plan::select::Partition::parse)
        .transpose()?
        .map(|p| match p {
            famfs_harness::plan::select::Partition::Count { k, n }
            | famfs_harness::plan::select::Partition::Hash { k, n } => (k, n),
        });
    let name = f.kernel.kernel.clone().unwrap_or_else(|| "kernel".into());
    let results = f.results.unwrap_or_else(|| {
        famfs_harness::image::guest_program::workspace_root()
            .join("target/famfs-harness/fuzz")
            .join(name.replace('/', "_"))
    });
    let seed = f
        .seed
        .unwrap_or_else(famfs_harness::fuzz::Rng::seed_from_time);
    let req = famfs_harness::commands::fuzz_fmap::Request {
        opts,
        duration: f.duration,
        seed,
        corpus: f.corpus.unwrap_or_else(|| results.join("corpus")),
        results,
        partition,
        batch: f.batch as usize,
        known: f.known,
    };
    famfs_harness::commands::fuzz_fmap::main(&req)
}

#[derive(Subcommand)]
enum FmapCmd {
    /// Decode and pretty-print an fmap (a GET_FMAP reply payload): raw bytes,
    /// or hex text; `-` reads standard input. Shows the kernel's verdict.
    Decode {
        file: PathBuf,
        /// Protocol profile: famfs-6.14, v10, next, or custom:KEY=VAL,...
        #[arg(long, default_value = "v10")]
        profile: String,
    },
}

#[derive(Subcommand)]
enum CoverageCmd {
    /// The kernel lines one run reached and the other did not, each way.
    Diff {
        /// A run directory of a coverage run.
        run_a: PathBuf,
        /// Another.
        run_b: PathBuf,
    },
}

#[derive(Subcommand)]
enum ReportCmd {
    /// The run as KernelCI KCIDB report data (schema 5.3) on stdout, for
    /// `kci-dev submit`: the checkout, the build, a test per trial, and
    /// each known defect met as an issue with its incident.
    Kcidb {
        /// The run directory (default: the latest run).
        run: Option<PathBuf>,
        /// The CI system's name in KCIDB ids.
        #[arg(long, default_value = "famfs_harness")]
        origin: String,
    },
}

#[derive(Subcommand)]
enum ScenarioCmd {
    /// Parse a famfs server scenario and print what it resolves to.
    Check {
        file: PathBuf,
        /// Override the scenario's protocol profile.
        #[arg(long)]
        profile: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Requests per second the famfs server answers (GET_FMAP with 32
    /// extents, LOOKUP) over the simulated-kernel channel.
    Server {
        #[arg(long, default_value_t = 200_000)]
        requests: u64,
    },
    /// Kernel builds: cold (empty build cache), a patched variant seeded
    /// from it, and a no-op run, with the ratios.
    Kernel {
        #[command(flatten)]
        kernel: KernelArgs,
        /// The named kernel built as the variant of the base.
        #[arg(long, default_value = "famfs-v10")]
        variant: String,
    },
    /// The famfs data path: FUSE requests per open, faults per 2 MiB,
    /// bandwidth of famfs read() and mmap over the raw devdax mapping, open
    /// rate over tmpfs (default kernel: famfs-v10).
    Famfs {
        #[command(flatten)]
        kernel: KernelArgs,
    },
    /// Where a selection's run time goes: per group and per trial, boot,
    /// runner ready, setup, daemon start, mount, case body, waits,
    /// teardown, reset, log tail, shutdown and fresh boots; the run time
    /// against the 150 s target and the change against the last
    /// measurement of the same kernel and groups (default kernel:
    /// famfs-v10; default groups: famfs and famfs-user).
    Suite {
        #[command(flatten)]
        kernel: KernelArgs,
        /// Only cases in this group (repeatable).
        #[arg(long = "group", short = 'g')]
        groups: Vec<String>,
        /// As test-vm's --jobs.
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
        jobs: Option<u32>,
    },
    /// Boot to first result and per-case overhead, direct QEMU vs virtme-ng.
    Boot {
        #[command(flatten)]
        kernel: KernelArgs,
        /// Boots per backend.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Trivial cases per boot (for the per-case overhead).
        #[arg(long, default_value_t = 20)]
        cases: u32,
    },
    /// The famfs fmap fuzzer's throughput (files judged per second) and
    /// the kernel model's rules it reaches, one file per mount against
    /// batches of 12, with the ratio (default kernel: famfs-v10).
    Fuzz {
        #[command(flatten)]
        kernel: KernelArgs,
        /// How long each setting fuzzes.
        #[arg(long, value_name = "TIME", default_value = "60s", value_parser = famfs_harness::fuzz::parse_duration)]
        duration: std::time::Duration,
    },
    /// A nightly matrix: each cell's wall time split into getting ready
    /// (kernel builds included), boots and cases, the night against its
    /// 15-minute target, how soon cells with a cached kernel boot.
    Nightly {
        /// The matrix (default: kernel-configs/matrix/default.yaml).
        #[arg(long, value_name = "FILE")]
        matrix: Option<PathBuf>,
        /// Where cells and the night go (default target/famfs-harness/bench-nightly).
        #[arg(long, value_name = "DIR")]
        results: Option<PathBuf>,
        /// As nightly's --qemu.
        #[arg(long, value_name = "PATH|backports")]
        qemu: Option<String>,
    },
}

#[derive(Args, Clone)]
struct KernelArgs {
    /// A named kernel from kernel-configs/kernels/ (default, debug,
    /// famfs-v10, famfs-v10-debug, ...) or a path to such a file.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["kernel_src", "kernel_image", "kernel_git", "kernel_patches", "fragments"])]
    kernel: Option<String>,
    /// A kernel tree to build out of tree (default: Debian's linux-source-7.3).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kernel_image", "kernel_git"])]
    kernel_src: Option<PathBuf>,
    /// A local git repository: build the commit --ref names (exported into
    /// the cache; the repository's checkout and index are not touched).
    #[arg(
        long,
        value_name = "REPO",
        requires = "git_ref",
        conflicts_with = "kernel_image"
    )]
    kernel_git: Option<PathBuf>,
    /// The commit, branch or tag of --kernel-git.
    #[arg(long = "ref", value_name = "REF", requires = "kernel_git")]
    git_ref: Option<String>,
    /// A patch series to apply on the base: a quilt series file, a
    /// directory of *.patch files, or an mbox (git format-patch, b4 am).
    /// Repeat it to apply several series in order.
    #[arg(long, value_name = "PATH", conflicts_with = "kernel_image")]
    kernel_patches: Vec<PathBuf>,
    /// Accept patches that apply only with fuzz or line offsets.
    #[arg(long, requires = "kernel_patches")]
    allow_fuzz: bool,
    /// Build the kernel's coverage variant (gcov for fs/fuse/ and
    /// fs/dax.c) and write each case's counts, the merged lcov tracefile,
    /// an HTML report and a line per file into the results directory.
    #[arg(long, conflicts_with = "kernel_image")]
    coverage: bool,
    /// A prebuilt bzImage; its .config and vmlinux are looked for beside it.
    #[arg(long, value_name = "BZIMAGE")]
    kernel_image: Option<PathBuf>,
    /// The .config of --kernel-image.
    #[arg(long, value_name = "FILE", requires = "kernel_image")]
    kernel_config: Option<PathBuf>,
    /// The vmlinux of --kernel-image.
    #[arg(long, value_name = "FILE", requires = "kernel_image")]
    vmlinux: Option<PathBuf>,
    /// Config fragments from kernel-configs/ (comma separated names, sets
    /// such as `default`, or paths; `+debug` is the default set plus debug;
    /// default: kernel-configs/default).
    #[arg(long, value_delimiter = ',')]
    fragments: Option<Vec<String>>,
    /// Cache for kernel sources, builds and images.
    #[arg(long, value_name = "DIR", env = "FAMFS_HARNESS_CACHE")]
    cache: Option<PathBuf>,
    /// The QEMU that boots the guests: a qemu-system-x86_64 binary, or
    /// `backports` (Debian bookworm-backports' QEMU, unpacked into the
    /// cache once). Default: qemu-system-x86_64 on PATH.
    #[arg(long, value_name = "PATH|backports")]
    qemu: Option<String>,
    /// The famfs user space for the famfs-user cases: the archives or
    /// trees of its dependencies (libfuse, mongoose, C-Thread-Pool,
    /// cmake-modules, multichase, cursor_heap), and of famfs itself unless
    /// --famfs-src names a tree. Built offline into the cache. Default: the
    /// named kernel's `famfs-user`.
    #[arg(long, value_name = "DIR", conflicts_with = "famfs_bin")]
    famfs_deps: Option<PathBuf>,
    /// A famfs source tree, built with the dependencies of --famfs-deps.
    #[arg(long, value_name = "DIR", requires = "famfs_deps")]
    famfs_src: Option<PathBuf>,
    /// A famfs user space already built: a prefix with bin/famfs,
    /// bin/mkfs.famfs, bin/famfs_fused and lib/.
    #[arg(long, value_name = "DIR")]
    famfs_bin: Option<PathBuf>,
}

#[derive(Args)]
struct Mutate {
    #[command(flatten)]
    kernel: KernelArgs,
    /// The file to mutate, relative to the kernel tree.
    #[arg(long, value_name = "PATH")]
    file: String,
    /// Only these lines (inclusive), e.g. 1200-1260 (repeatable).
    #[arg(long, value_name = "A-B", value_parser = line_range)]
    lines: Vec<(u32, u32)>,
    /// Start no mutant after this long (`30m`, `2h`); the results kept go
    /// on with the same command.
    #[arg(long, value_name = "DURATION", value_parser = famfs_harness::fuzz::parse_duration)]
    budget: Option<std::time::Duration>,
    /// Only this shard of the mutants: `count:K/N` or `hash:K/N`.
    #[arg(long, value_name = "KIND:K/N")]
    partition: Option<String>,
    /// Only cases in this group (repeatable); default: famfs.
    #[arg(long = "group", short = 'g')]
    groups: Vec<String>,
    /// Filters: cases whose name contains any of them.
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
    /// The mutants' order (and so which --max keeps).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// At most this many mutants (the first in the seed's order).
    #[arg(long, value_name = "N")]
    max: Option<usize>,
    /// Where results are kept (default:
    /// target/famfs-harness/mutate/KERNEL-FILE); the same directory resumes.
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Take the reached lines from this `test-vm --coverage` run instead of
    /// running one.
    #[arg(long, value_name = "RUN")]
    coverage_run: Option<PathBuf>,
    /// Fold the results of another shard's --results into these (repeatable).
    #[arg(long, value_name = "DIR")]
    merge: Vec<PathBuf>,
    /// Keep each mutant's patched tree and build (removed by default).
    #[arg(long)]
    keep_builds: bool,
    /// The cases directory (default: the checkout's cases/).
    #[arg(long, value_name = "DIR")]
    cases: Option<PathBuf>,
}

/// `A-B`, 1 <= A <= B.
fn line_range(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("`{s}`: lines are A-B with 1 <= A <= B (e.g. 1200-1260)");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

fn mutate(m: Mutate) -> Result<i32> {
    let mut opts = options(&m.kernel)?;
    opts.cases = cases_dir(m.cases)?;
    let kernel = m.kernel.kernel.clone().unwrap_or_else(|| "kernel".into());
    let results = m.results.unwrap_or_else(|| {
        famfs_harness::image::guest_program::workspace_root()
            .join("target/famfs-harness/mutate")
            .join(format!(
                "{}-{}",
                kernel.replace('/', "_"),
                m.file.replace('/', "_")
            ))
    });
    let groups = if m.groups.is_empty() && m.filters.is_empty() {
        vec!["famfs".into()]
    } else {
        m.groups
    };
    let req = famfs_harness::commands::mutate::Request {
        opts,
        sel: Selection {
            groups,
            filters: m.filters,
            ..Default::default()
        },
        file: m.file,
        lines: m.lines,
        budget: m.budget,
        partition: m
            .partition
            .as_deref()
            .map(famfs_harness::plan::select::Partition::parse)
            .transpose()?,
        seed: m.seed,
        max: m.max,
        results,
        coverage_run: m.coverage_run,
        merge: m.merge,
        keep_builds: m.keep_builds,
    };
    famfs_harness::commands::mutate::main(&req)
}

#[derive(Args)]
struct TestVm {
    #[command(flatten)]
    kernel: KernelArgs,
    /// Launch backend.
    #[arg(long, default_value = "qemu", value_parser = ["qemu", "vng"])]
    backend: String,
    /// Only cases in this group (repeatable).
    #[arg(long = "group", short = 'g')]
    groups: Vec<String>,
    /// famfs protocol profile the cases use: auto (the famfs ABI the
    /// kernel's source defines, read from its uapi fuse.h), famfs-6.14, v10,
    /// next, or custom:KEY=VAL,...
    #[arg(long, default_value = "auto")]
    profile: String,
    /// Guest vCPUs (1 to 64).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    cpus: u32,
    /// Boot groups run at once, each in its own VM (1 to 16; default: one
    /// per host core, at most 4).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    jobs: Option<u32>,
    /// Run every case on this machine: a name from images/topologies.yaml
    /// (nvdimm, memmap, cxl, cxl-volatile, two-dax, large), then :SIZE if
    /// wanted. A case keeps its own size when larger and its dax mode; a
    /// case pinned to another kind (requires.pmem_kind) is not run.
    #[arg(long, value_name = "NAME[:SIZE]")]
    topology: Option<String>,
    /// Where run directories go (default: target/famfs-harness).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Run directories kept under --results: older ones are deleted after
    /// the run (runs in progress never are); 0 keeps all.
    #[arg(long, value_name = "N", default_value_t = 20)]
    keep: usize,
    /// The cases directory (default: the checkout's cases/).
    #[arg(long, value_name = "DIR")]
    cases: Option<PathBuf>,
    /// Filters: cases whose name contains any of them run (with --exact:
    /// whose name is one of them).
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
    /// List the selected cases and exit; nothing is built or booted.
    #[arg(long)]
    list: bool,
    /// Filters and --skip match whole case names.
    #[arg(long)]
    exact: bool,
    /// Leave out cases whose name contains this (repeatable).
    #[arg(long, value_name = "FILTER")]
    skip: Vec<String>,
    /// Run one shard of the selection: `count:K/N` (every N-th case from
    /// the K-th) or `hash:K/N` (by a hash of the case's name); every case
    /// is in exactly one of the N shards.
    #[arg(long, value_name = "KIND:K/N")]
    partition: Option<String>,
    /// Run the selection N times over (trials `ID#1`..`ID#N`), in as few
    /// boots as the topologies allow; prints and writes (repeat.json) each
    /// trial's pass and fail counts and failure rate.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000), conflicts_with = "until_fail")]
    repeat: Option<u32>,
    /// Compare with an earlier run (its directory, or the --results
    /// directory whose `latest` it is): new failures, fixed trials, trials
    /// no longer run, new report titles, slower trials. The exit status then
    /// says whether anything regressed (101) or not (0).
    #[arg(long, value_name = "DIR")]
    baseline: Option<PathBuf>,
    /// With --baseline: a trial this many percent slower (and over a second
    /// slower) is a timing regression.
    #[arg(long, value_name = "PCT", default_value_t = 50, requires = "baseline")]
    slower_than: u32,
    /// Run the selection again and again, one run (and boot) per iteration,
    /// until an iteration fails or --max iterations passed.
    #[arg(long)]
    until_fail: bool,
    /// The most iterations --until-fail runs.
    #[arg(long, value_name = "N", default_value_t = 100, requires = "until_fail", value_parser = clap::value_parser!(u32).range(1..=100000))]
    max: u32,
    /// Run only the ignored cases: those of the `explicit` group, which
    /// crash or hang the kernel on purpose.
    #[arg(long, conflicts_with = "include_ignored")]
    ignored: bool,
    /// Run the ignored (`explicit` group) cases too.
    #[arg(long)]
    include_ignored: bool,
    /// Output format of the test list.
    #[arg(long, value_name = "FORMAT", value_parser = ["pretty", "terse", "json"])]
    format: Option<String>,
    /// Colour the test list.
    #[arg(long, value_name = "WHEN", value_parser = ["auto", "always", "never"])]
    color: Option<String>,
    /// Terse output (same as --format terse).
    #[arg(long, short = 'q')]
    quiet: bool,
}

impl TestVm {
    /// The output options for the test list (selection is done by the harness).
    fn libtest_args(&self) -> libtest_mimic::Arguments {
        use libtest_mimic::{ColorSetting, FormatSetting};
        libtest_mimic::Arguments {
            quiet: self.quiet,
            format: match self.format.as_deref() {
                Some("terse") => Some(FormatSetting::Terse),
                Some("json") => Some(FormatSetting::Json),
                Some("pretty") => Some(FormatSetting::Pretty),
                _ => None,
            },
            color: match self.color.as_deref() {
                Some("always") => Some(ColorSetting::Always),
                Some("never") => Some(ColorSetting::Never),
                Some("auto") => Some(ColorSetting::Auto),
                _ => None,
            },
            ..Default::default()
        }
    }
}

/// The benchmarks of famfs measure a famfs kernel: famfs-v10 unless the
/// command line chose a kernel.
fn famfs_kernel_unless_chosen(kernel: &mut KernelArgs) {
    let chosen = kernel.kernel.is_some()
        || kernel.kernel_src.is_some()
        || kernel.kernel_image.is_some()
        || kernel.kernel_git.is_some()
        || !kernel.kernel_patches.is_empty()
        || kernel.fragments.is_some();
    if !chosen {
        kernel.kernel = Some("famfs-v10".into());
    }
}

fn options(k: &KernelArgs) -> Result<Options> {
    let mut o = Options::new(&famfs_harness::image::guest_program::workspace_root());
    o.kernel.choice = if let Some(name) = &k.kernel {
        KernelChoice::Named(name.clone())
    } else if let (Some(repo), Some(rev)) = (&k.kernel_git, &k.git_ref) {
        KernelChoice::Git {
            repo: repo.clone(),
            rev: rev.clone(),
        }
    } else if let Some(src) = &k.kernel_src {
        KernelChoice::Src(src.clone())
    } else if let Some(img) = &k.kernel_image {
        KernelChoice::Image {
            image: img.clone(),
            config: k.kernel_config.clone(),
            vmlinux: k.vmlinux.clone(),
        }
    } else {
        KernelChoice::Default
    };
    o.kernel.fragments = k.fragments.clone();
    o.kernel.patches = k.kernel_patches.clone();
    o.kernel.allow_fuzz = k.allow_fuzz;
    o.kernel.coverage = k.coverage;
    o.cache_root = k.cache.clone();
    o.qemu = k.qemu.clone();
    use famfs_harness::image::famfs_user::Source;
    o.image.famfs_user = match (&k.famfs_deps, &k.famfs_src, &k.famfs_bin) {
        (_, _, Some(b)) => Some(Source::Prefix(b.clone())),
        (Some(d), t, None) => Some(Source::Sources {
            deps: d.clone(),
            tree: t.clone(),
        }),
        _ => None,
    };
    Ok(o)
}

fn main() {
    famfs_harness::report::ui::install();
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<i32> {
    use famfs_harness::commands as c;
    let root = famfs_harness::image::guest_program::workspace_root;
    match Cli::parse().cmd {
        Cmd::TestVm(t) => test_vm(*t),
        Cmd::FuzzParsers {
            duration,
            targets,
            inputs,
            seed,
            save,
        } => c::fuzz_parsers::main(&targets, duration, inputs, seed, save),
        Cmd::NewCase {
            group,
            description,
            template,
            cases,
        } => {
            let cases = cases.unwrap_or_else(|| root().join("cases"));
            let template = template.parse()?;
            let p = c::authoring::new_case(&cases, &group, &description, template)?;
            println!("{}", p.display());
            println!("{}.out", p.display());
            Ok(0)
        }
        Cmd::Bless { ids, run, cases } => {
            let run = run.unwrap_or_else(|| root().join("target/famfs-harness/latest"));
            let cases = cases.unwrap_or_else(|| root().join("cases"));
            c::bless::main(&cases, &run, &ids)
        }
        Cmd::Shell {
            kernel,
            case,
            topology,
            run,
            gdb,
            profile,
            cases,
        } => {
            let mut opts = options(&kernel)?;
            opts.profile = profile_arg(&profile)?;
            opts.cases = cases_dir(cases)?;
            c::shell::main(&opts, case.as_deref(), topology.as_deref(), run, gdb)
        }
        Cmd::Nightly {
            matrix,
            results,
            baseline,
            cases,
            partition,
            qemu,
            coverage,
        } => {
            let mut opts = Options::new(&root());
            opts.cases = cases_dir(cases)?;
            opts.qemu = qemu;
            opts.kernel.coverage = coverage;
            let (baseline, partition) = (baseline.as_deref(), partition.as_deref());
            c::nightly::main(&matrix, &opts, results, baseline, partition)
        }
        Cmd::Bisect {
            kernel_git,
            cases_git,
            good,
            bad,
            case,
        } => {
            use c::bisect::Subject;
            let subject = match (kernel_git, cases_git) {
                (Some(k), _) => Subject::Kernel(k),
                (None, Some(c)) => Subject::Cases(c),
                (None, None) => unreachable!("clap requires one"),
            };
            c::bisect::main(&subject, &good, &bad, &case)
        }
        Cmd::Compare {
            baseline,
            run,
            slower_than,
        } => c::compare::main(&baseline, &run, slower_than),
        Cmd::Merge { runs, out } => c::merge::main(&runs, &out),
        Cmd::Triage {
            console_log,
            vmlinux,
            json,
        } => c::triage::main(&console_log, vmlinux.as_deref(), json),
        Cmd::Kernel { kernel, check } => c::kernel::main(&options(&kernel)?, check),
        Cmd::Fmap {
            what: FmapCmd::Decode { file, profile },
        } => c::fmap::decode(&file, &profile),
        Cmd::Scenario {
            what: ScenarioCmd::Check { file, profile },
        } => scenario_check(&file, profile),
        Cmd::Report {
            what: ReportCmd::Kcidb { run, origin },
        } => {
            let run = run.unwrap_or_else(|| {
                famfs_harness::image::guest_program::workspace_root()
                    .join("target/famfs-harness/latest")
            });
            let v = famfs_harness::report::kcidb::export(&run, &origin)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Cmd::Coverage {
            what: CoverageCmd::Diff { run_a, run_b },
        } => c::coverage::main(&run_a, &run_b),
        Cmd::Bench { what } => bench(what),
        Cmd::Mutate(m) => mutate(*m),
        Cmd::Fuzz {
            what: FuzzCmd::Fmap(f),
        } => fuzz_fmap(*f),
    }
}

/// `--cases DIR`, which must be a directory.
fn cases_dir(cases: Option<PathBuf>) -> Result<Option<PathBuf>> {
    if let Some(c) = &cases {
        anyhow::ensure!(c.is_dir(), "--cases {}: not a directory", c.display());
    }
    Ok(cases)
}

fn bench(what: BenchCmd) -> Result<i32> {
    use famfs_harness::commands::bench;
    let root = famfs_harness::image::guest_program::workspace_root();
    match what {
        BenchCmd::Server { requests } => print!("{}", famfs_harness::server::bench(requests)),
        BenchCmd::Nightly {
            matrix,
            results,
            qemu,
        } => {
            let mut opts = Options::new(&root);
            opts.qemu = qemu;
            let matrix = matrix.unwrap_or_else(|| root.join("kernel-configs/matrix/default.yaml"));
            let results =
                results.unwrap_or_else(|| root.join("target/famfs-harness/bench-nightly"));
            bench::nightly(&matrix, &opts, &results)?;
        }
        BenchCmd::Kernel { kernel, variant } => bench::kernel(&options(&kernel)?, &variant)?,
        BenchCmd::Famfs { mut kernel } => {
            famfs_kernel_unless_chosen(&mut kernel);
            bench::famfs(&options(&kernel)?)?;
        }
        BenchCmd::Suite {
            mut kernel,
            mut groups,
            jobs,
        } => {
            famfs_kernel_unless_chosen(&mut kernel);
            if groups.is_empty() {
                groups = vec!["famfs".into(), "famfs-user".into()];
            }
            let mut opts = options(&kernel)?;
            opts.exec.jobs = jobs.map_or_else(famfs_harness::exec::default_jobs, |j| j as usize);
            let sel = Selection {
                groups,
                ..Default::default()
            };
            bench::suite(&opts, &sel)?;
        }
        BenchCmd::Boot {
            kernel,
            rounds,
            cases,
        } => bench::boot(&options(&kernel)?, rounds, cases)?,
        BenchCmd::Fuzz {
            mut kernel,
            duration,
        } => {
            famfs_kernel_unless_chosen(&mut kernel);
            let mut opts = options(&kernel)?;
            opts.exec.jobs = famfs_harness::exec::default_jobs();
            bench::fuzz(&opts, duration)?;
        }
    }
    Ok(0)
}

/// A `--profile` value: `auto`, or a profile that parses.
fn profile_arg(p: &str) -> Result<String> {
    if p != famfs_harness::kernel::resolve::AUTO_PROFILE {
        famfs_proto::Profile::parse(p).map_err(|e| anyhow::anyhow!("--profile {p}: {e}"))?;
    }
    Ok(p.to_string())
}

/// `cargo xtask test-vm`: exit 0 (everything passed or was not run with a
/// reason), 101 (a case failed), 2 (harness error, including a boot that
/// never reached the guest runner), 128 + N (interrupted by signal N).
fn test_vm(t: TestVm) -> Result<i32> {
    let mut opts = options(&t.kernel)?;
    opts.exec.backend = t.backend.parse::<Backend>()?;
    opts.profile = profile_arg(&t.profile)?;
    opts.exec.cpus = t.cpus;
    opts.exec.jobs = t
        .jobs
        .map_or_else(famfs_harness::exec::default_jobs, |j| j as usize);
    opts.topology = t.topology.clone();
    if let Some(r) = &t.results {
        opts.results_root = r.clone();
    }
    opts.cases = cases_dir(t.cases.clone())?;
    let args = t.libtest_args();
    let req = famfs_harness::commands::test_vm::Request {
        opts,
        sel: Selection {
            filters: t.filters,
            exact: t.exact,
            skip: t.skip,
            groups: t.groups,
            ignored: t.ignored,
            include_ignored: t.include_ignored,
        },
        partition: t.partition,
        repeat: t.repeat,
        until_fail: t.until_fail,
        max: t.max,
        list: t.list,
        keep: t.keep,
        baseline: t.baseline,
        slower_than: t.slower_than,
    };
    famfs_harness::commands::test_vm::main(&req, &args)
}
