//! Benchmarks of the harness itself, printed (never asserted): boot to the
//! first case result and per-case overhead for both launch backends on the
//! same kernel in one run, and how long a fully cached run takes to reach
//! QEMU.

use crate::events::note as say;
use crate::report::results::CaseResult;
use crate::run::{self, Options};
use crate::vm::Backend;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;

/// Write `n` trivial cases (they only exit 0) into `dir`.
pub fn trivial_cases(dir: &Path, n: u32) -> Result<()> {
    let g = dir.join("bench");
    std::fs::create_dir_all(&g)?;
    for i in 1..=n {
        let p = g.join(format!("{i:03}"));
        std::fs::write(&p, "#!/bin/sh\n# ---\n# description: does nothing (overhead probe)\n# groups: [bench]\n# timeout: 30\n# ---\nexit 0\n")?;
        std::fs::write(g.join(format!("{i:03}.out")), "")?;
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct BootSample {
    pub first_result_s: f64,
    /// Mean gap between consecutive results minus the cases' own run time.
    pub per_case_overhead_ms: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn sample(p: &run::Prepared, cases: &[crate::plan::case::Case]) -> Result<BootSample> {
    let mut stamps: Vec<(Instant, u64)> = Vec::new();
    let mut sink = |r: &CaseResult| stamps.push((Instant::now(), r.duration_ms));
    let summary = run::execute(p, cases, &mut sink)?;
    let boot = summary.boots.first().context("no boot recorded")?;
    if summary.counts.failed > 0 {
        anyhow::bail!(
            "benchmark cases failed; see {}",
            p.opts.results_root.display()
        );
    }
    let first = boot.first_result_ms.context("no case result")? as f64 / 1000.0;
    let overhead = if stamps.len() >= 2 {
        let span = stamps
            .last()
            .unwrap()
            .0
            .duration_since(stamps[0].0)
            .as_secs_f64()
            * 1000.0;
        let own: u64 = stamps[1..].iter().map(|s| s.1).sum();
        (span - own as f64) / (stamps.len() - 1) as f64
    } else {
        f64::NAN
    };
    Ok(BootSample {
        first_result_s: first,
        per_case_overhead_ms: overhead,
    })
}

pub fn boot(opts: &Options, rounds: u32, ncases: u32) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cases_dir = tmp.path().join("cases");
    trivial_cases(&cases_dir, ncases.max(2))?;
    let cases = crate::plan::case::discover(&cases_dir)?;
    let mut o = opts.clone();
    o.results_root = opts.root.join("target/famfs-harness/bench");

    // Prepare once (builds what is missing), then again to time the cached path.
    let _ = run::prepare(&o)?;
    let t = Instant::now();
    let mut p = run::prepare(&o)?;
    let cached_prepare = t.elapsed().as_secs_f64();

    let vng_ok = crate::vm::vng::vng_program().is_ok();
    let mut rows = Vec::new();
    for backend in [Backend::Qemu, Backend::Vng] {
        if backend == Backend::Vng && !vng_ok {
            say("bench: vng not installed; skipping the virtme-ng column");
            continue;
        }
        p.opts.exec.backend = backend;
        // Plan paths differ per backend: cases live in the temp dir.
        p.opts.root = tmp.path().to_path_buf();
        let mut firsts = Vec::new();
        let mut overheads = Vec::new();
        for r in 0..rounds {
            let s = sample(&p, &cases)?;
            say(format!(
                "bench {backend:?} round {}: first result {:.2}s, per-case overhead {:.1} ms",
                r + 1,
                s.first_result_s,
                s.per_case_overhead_ms
            ));
            firsts.push(s.first_result_s);
            overheads.push(s.per_case_overhead_ms);
        }
        rows.push((backend, median(&mut firsts), median(&mut overheads)));
    }
    println!(
        "\nboot benchmark: {} rounds, {} trivial cases per boot, accelerator {:?}, kernel {}",
        rounds, ncases, p.accel, p.kernel.release
    );
    println!(
        "{:<8} {:>22} {:>22}",
        "backend", "boot->first result", "per-case overhead"
    );
    for (b, f, o) in &rows {
        println!(
            "{:<8} {:>20.2} s {:>19.1} ms",
            format!("{b:?}").to_lowercase(),
            f,
            o
        );
    }
    if let (Some(q), Some(v)) = (
        rows.iter().find(|r| r.0 == Backend::Qemu),
        rows.iter().find(|r| r.0 == Backend::Vng),
    ) {
        println!(
            "ratio qemu/vng boot->first result: {:.2} (target <= 0.30)",
            q.1 / v.1
        );
    }
    if let Some(q) = rows.iter().find(|r| r.0 == Backend::Qemu) {
        println!("targets: direct QEMU boot->first result <= 4 s: {:.2} s; per-case overhead <= 50 ms: {:.1} ms", q.1, q.2);
    }
    println!("cached run, start to ready-to-launch QEMU: {cached_prepare:.2} s (target <= 1 s)");
    Ok(())
}

/// `cargo xtask bench kernel`: a cold build of the base kernel into an empty
/// build cache (the fetched source is shared, not fetched again), the named
/// variant (a patch series on that base, seeded from the base's objects),
/// and a no-op run that finds everything cached, timed to the point where
/// QEMU would launch. Printed with the ratios, never asserted.
pub fn kernel(opts: &Options, variant: &str) -> Result<()> {
    let main_cache = crate::base::cache::Cache::open(opts.cache_root.as_deref())?;
    let scratch = tempfile::Builder::new()
        .prefix("bench-kernel-")
        .tempdir_in(&main_cache.root)?;
    let cache_root = scratch.path().to_path_buf();
    // The source package and its unpacked tree: hard links, so the cold
    // build measures make, not the download.
    let src = main_cache.dir("sources")?;
    crate::kernel::patches::link_copy(&src, &cache_root.join("sources"))?;
    let mut o = opts.clone();
    o.cache_root = Some(cache_root.clone());
    let cache = crate::base::cache::Cache::open(Some(&cache_root))?;
    run::ensure_host(&o)?;

    let t = Instant::now();
    let base = crate::kernel::resolve::resolve(&o.kernel, &o.root, &cache)?;
    let cold = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        base.built,
        "the cold build found a cached kernel in an empty cache"
    );

    let mut v = o.clone();
    v.kernel.choice = crate::kernel::resolve::KernelChoice::Named(variant.to_string());
    let t = Instant::now();
    let var = match crate::kernel::resolve::resolve(&v.kernel, &v.root, &cache) {
        Ok(k) => Some((k, t.elapsed().as_secs_f64())),
        Err(e)
            if e.downcast_ref::<crate::kernel::named::Unavailable>()
                .is_some() =>
        {
            say(format!("variant not measured: {e}"));
            None
        }
        Err(e) => return Err(e),
    };
    let noop_opts = if var.is_some() { v } else { o };
    // The first prepare builds the initramfs and probes the accelerator for
    // this kernel; the second is the no-op run.
    run::prepare(&noop_opts)?;
    let t = Instant::now();
    let p = run::prepare(&noop_opts)?;
    let noop = t.elapsed().as_secs_f64();
    anyhow::ensure!(!p.kernel.built, "the no-op run built the kernel again");

    println!("| build | seconds | of cold |");
    println!("|---|---|---|");
    println!(
        "| cold: {} ({} objects) | {cold:.1} | 1.00 |",
        base.release,
        base_objects(&base)
    );
    if let Some((k, s)) = &var {
        println!(
            "| variant: {variant} ({}, seeded from the cold build) | {s:.1} | {:.2} |",
            k.release,
            s / cold
        );
    }
    println!(
        "| no-op: everything cached, to QEMU launch | {noop:.2} | {:.4} |",
        noop / cold
    );
    Ok(())
}

fn base_objects(k: &crate::kernel::build::KernelArtifacts) -> String {
    k.build_log
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            t.lines()
                .filter(|l| crate::kernel::build::is_compile_line(l))
                .count()
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

/// The guest half of `bench famfs`: one case that measures the raw devdax
/// mapping first (device 0-64M), then famfs over the same bytes, and
/// writes `key value` lines to `$FH_ARTIFACTS/bench.txt`.
const FAMFS_BENCH_CASE: &str = r#"#!/bin/sh
# ---
# description: famfs data-path benchmark (written by cargo xtask bench famfs)
# requires:
#   pmem: 256M
#   kconfig: [FUSE_FS, DEV_DAX, DEV_DAX_FSDEV]
# timeout: 900
# ---
. "$FH_COMMON"
_famfs_gates
out=$FH_ARTIFACTS/bench.txt
"$FH_TOOL" pattern-fill "$FH_DAX" 0 72M > /dev/null
for order in seq rand; do
	"$FH_TOOL" bw "devdax-mmap-$order" "$FH_DAX" 64M mmap $order >> "$out"
done
_famfs_bind
cat > scenario.yaml <<END
description: famfs data-path benchmark
daxdevs: {0: $FH_DAX}
tree:
  - path: /big
    fmap: {extents: [{offset: 0, len: 64M}]}
  - path: /small
    fmap: {extents: [{offset: 64M, len: 2M}]}
END
_famfsd_start scenario.yaml --read-only
log=$FH_ARTIFACTS/requests.jsonl
names() {
	sleep 0.3
	tail -n +"$(($1 + 1))" "$log" | sed -n 's/.*"event":"request".*"name":"\([A-Z_]*\)".*/\1/p' | tr '\n' '+' | sed 's/+$//'
}
n=$(wc -l < "$log")
"$FH_TOOL" open-errno "$MNT/small" > /dev/null
echo "requests-cold-open $(names "$n")" >> "$out"
n=$(wc -l < "$log")
"$FH_TOOL" open-errno "$MNT/small" > /dev/null
echo "requests-warm-open $(names "$n")" >> "$out"
for how in aligned unaligned; do
	echo "faults-$how-4M $("$FH_TOOL" fault-count "$MNT/big" 0 4M $how)" >> "$out"
done
for how in read mmap; do
	for order in seq rand; do
		"$FH_TOOL" bw "famfs-$how-$order" "$MNT/big" 64M $how $order >> "$out"
	done
done
mkdir -p tmpfs && mount -t tmpfs none tmpfs && echo x > tmpfs/small
_cleanup_add "umount '$FH_CASE_DIR/tmpfs'"
"$FH_TOOL" open-rate open-rate-famfs "$MNT/small" 2000 >> "$out"
"$FH_TOOL" open-rate open-rate-tmpfs tmpfs/small 2000 >> "$out"
"#;

/// `cargo xtask bench famfs`: the famfs data path on a kernel with the
/// capability (FUSE requests per open, faults per 2 MiB, bandwidth of
/// famfs read() and mmap over the raw devdax mapping of the same bytes,
/// open rate against tmpfs), from one run, ratios printed, never asserted.
pub fn famfs(opts: &Options) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cases_dir = tmp.path().join("cases");
    std::fs::create_dir_all(cases_dir.join("bench"))?;
    std::fs::copy(
        opts.cases_dir().join("common.sh"),
        cases_dir.join("common.sh"),
    )
    .context("the cases' common.sh")?;
    std::fs::write(cases_dir.join("bench/001"), FAMFS_BENCH_CASE)?;
    std::fs::write(cases_dir.join("bench/001.out"), "")?;
    let mut o = opts.clone();
    o.cases = Some(cases_dir.clone());
    o.results_root = opts.root.join("target/famfs-harness/bench");
    let p = match run::prepare(&o) {
        Ok(p) => p,
        Err(e) => match e.downcast_ref::<crate::kernel::named::Unavailable>() {
            Some(why) => {
                println!("notrun: {}", why.0);
                return Ok(());
            }
            None => return Err(e),
        },
    };
    let cases = crate::plan::case::discover(&cases_dir)?;
    let s = run::execute(&p, &cases, &mut |_: &CaseResult| {})?;
    let run_dir = o.results_root.join("runs").join(&s.run_id);
    let r = s
        .cases
        .iter()
        .find(|c| c.id == "bench/001")
        .context("no result for the benchmark case")?;
    match r.outcome {
        crate::judge::verdict::Outcome::NotRun => {
            println!("notrun: {}", r.reasons.join("; "));
            return Ok(());
        }
        crate::judge::verdict::Outcome::Pass => {}
        _ => anyhow::bail!(
            "the benchmark case failed: {}; files in {}",
            r.reasons.join("; "),
            run_dir.join(&r.dir).display()
        ),
    }
    let text = std::fs::read_to_string(run_dir.join(&r.dir).join("artifacts/bench.txt"))
        .context("the benchmark's bench.txt")?;
    let v: std::collections::BTreeMap<&str, &str> =
        text.lines().filter_map(|l| l.split_once(' ')).collect();
    let num = |k: &str| -> f64 { v.get(k).and_then(|x| x.parse().ok()).unwrap_or(f64::NAN) };
    let kname = p
        .kernel
        .name
        .clone()
        .unwrap_or_else(|| p.kernel.release.clone());
    println!(
        "\nfamfs data path on {kname} ({:?}, {} vCPUs, 64 MiB file on one 64 MiB extent)",
        p.accel, p.opts.exec.cpus
    );
    println!("| measure | famfs | raw devdax / tmpfs | ratio |");
    println!("|---|---|---|---|");
    for k in ["requests-cold-open", "requests-warm-open"] {
        println!(
            "| FUSE {} | {} | | |",
            k.trim_start_matches("requests-").replace('-', " "),
            v.get(k).unwrap_or(&"?")
        );
    }
    for k in ["faults-aligned-4M", "faults-unaligned-4M"] {
        println!(
            "| {} | {} | | |",
            k.replace('-', " "),
            v.get(k).unwrap_or(&"?")
        );
    }
    for (how, order) in [
        ("read", "seq"),
        ("read", "rand"),
        ("mmap", "seq"),
        ("mmap", "rand"),
    ] {
        let f = num(&format!("famfs-{how}-{order}"));
        let d = num(&format!("devdax-mmap-{order}"));
        println!(
            "| {how}() {order} MB/s | {f:.0} | {d:.0} (devdax mmap) | {:.2} |",
            f / d
        );
    }
    let (of, ot) = (num("open-rate-famfs"), num("open-rate-tmpfs"));
    println!(
        "| open+close per s | {of:.0} | {ot:.0} (tmpfs) | {:.2} |",
        of / ot
    );
    println!("results: {}", run_dir.display());
    Ok(())
}

/// `bench nightly`: run a matrix and print where each cell's wall time
/// went (getting ready, which includes any kernel build; boots; cases),
/// the night against its 15-minute target, and how soon each cell whose
/// kernel was cached was ready to boot (target: within a second).
pub fn nightly(matrix: &Path, opts: &Options, root: &Path) -> Result<()> {
    let args = libtest_mimic::Arguments {
        format: Some(libtest_mimic::FormatSetting::Terse),
        ..Default::default()
    };
    let (dir, night) = crate::commands::nightly::run(matrix, opts, root, None, None, &args)?;
    println!("\n| cell | wall s | ready s (share) | boots s (share) | cases s (share) | kernel |");
    println!("|---|---|---|---|---|---|");
    let share = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    for c in &night.cells {
        println!(
            "| {} | {:.1} | {:.1} ({:.2}) | {:.1} ({:.2}) | {:.1} ({:.2}) | {} |",
            c.name,
            c.wall_s,
            c.prepare_s,
            share(c.prepare_s, c.wall_s),
            c.boots_s,
            share(c.boots_s, c.wall_s),
            c.cases_s,
            share(c.cases_s, c.wall_s),
            if c.kernel_built { "built" } else { "cached" }
        );
    }
    let sum = |f: fn(&crate::commands::nightly::CellResult) -> f64| {
        night.cells.iter().map(f).sum::<f64>()
    };
    let (ready, boots, cases) = (sum(|c| c.prepare_s), sum(|c| c.boots_s), sum(|c| c.cases_s));
    println!(
        "\nnight: {} cells, {:.0} s = {:.1} min; target 15 min: ratio {:.2} ({})",
        night.cells.len(),
        night.wall_s,
        night.wall_s / 60.0,
        night.wall_s / 900.0,
        if night.wall_s <= 900.0 {
            "within"
        } else {
            "over"
        }
    );
    println!(
        "shares of the night: ready {:.2} (kernel builds included), boots {:.2} (the cases in them {:.2})",
        share(ready, night.wall_s),
        share(boots, night.wall_s),
        share(cases, night.wall_s)
    );
    let cached: Vec<f64> = night
        .cells
        .iter()
        .filter(|c| !c.kernel_built && c.errors == 0 && c.passed + c.failed + c.known > 0)
        .map(|c| c.prepare_s)
        .collect();
    if let Some(worst) = cached.iter().cloned().reduce(f64::max) {
        println!(
            "cells with a cached kernel: {}; ready to boot after at most {:.2} s (target 1 s: ratio {:.2}), median {:.2} s",
            cached.len(),
            worst,
            worst,
            median(&mut cached.clone())
        );
    }
    println!("nightly results: {}", dir.display());
    Ok(())
}

/// The run time `cargo xtask bench suite` holds the famfs + famfs-user
/// selection on a famfs kernel to (cached kernel, TCG, this machine's 2
/// cores).
pub const SUITE_TARGET_S: f64 = 150.0;

/// `cargo xtask bench suite`: run a selection as `test-vm` does (default:
/// the famfs and famfs-user groups) and print where its time went (per
/// group and per trial: boot, runner ready, setup, daemon start, mount,
/// case body, waits, teardown, the runner's reset and log tail, shutdown,
/// fresh boots), the run time against [`SUITE_TARGET_S`], and the change
/// against the last measurement of the same kernel and selection (kept in
/// `target/famfs-harness/bench-suite/`). Printed, never asserted.
pub fn suite(opts: &Options, sel: &crate::plan::select::Selection) -> Result<()> {
    use crate::report::timing;
    let mut o = opts.clone();
    o.results_root = opts.root.join("target/famfs-harness/bench-suite");
    let p = run::prepare(&o)?;
    let cases = crate::plan::select::select(&o.cases_dir(), sel)?;
    anyhow::ensure!(!cases.is_empty(), "the selection has no case");
    let mut done = 0usize;
    let s = run::execute(&p, &cases, &mut |r: &CaseResult| {
        done += 1;
        say(format!(
            "bench suite: {done} results, {} {:?} {:.1} s",
            r.id,
            r.outcome,
            r.duration_ms as f64 / 1000.0
        ));
    })?;
    let t = timing::of(&s);
    let kernel = p
        .kernel
        .name
        .clone()
        .unwrap_or_else(|| p.kernel.release.clone());
    let mut groups = sel.groups.clone();
    groups.sort();
    let label = if groups.is_empty() {
        "all".to_string()
    } else {
        groups.join("+")
    };
    println!(
        "\nsuite benchmark: kernel {kernel}, groups {label}, {} trials, {} boots ({} fresh boots or restarts), jobs {}, accelerator {:?}",
        t.trials.len(),
        t.boots,
        t.extra_boots,
        p.opts.exec.jobs,
        p.accel
    );
    println!("time per column in s (busy time: with several jobs the columns add up to more than the run time)");
    print!("{}", timing::render(&t, 10));
    let run_s = t.run_ms as f64 / 1000.0;
    println!(
        "run time {run_s:.1} s; target for famfs + famfs-user on a famfs kernel <= {SUITE_TARGET_S:.0} s: ratio {:.2}",
        run_s / SUITE_TARGET_S
    );
    let keep = o
        .results_root
        .join(format!("last-{}-{label}.json", kernel.replace('/', "_")));
    match std::fs::read_to_string(&keep)
        .ok()
        .and_then(|x| serde_json::from_str::<timing::Timing>(&x).ok())
    {
        Some(before) => print!(
            "change against the last measurement ({}):\n{}",
            keep.display(),
            timing::compare(&before, &t)
        ),
        None => println!("no earlier measurement of this selection to compare with"),
    }
    std::fs::create_dir_all(&o.results_root)?;
    std::fs::write(&keep, serde_json::to_string_pretty(&t)?)
        .with_context(|| format!("writing {}", keep.display()))?;
    // Every trial's split beside the run's results.
    let run_dir = o.results_root.join("runs").join(&s.run_id);
    std::fs::write(
        run_dir.join("timing.txt"),
        timing::render_trials(&t, usize::MAX),
    )?;
    std::fs::write(
        run_dir.join("timing.json"),
        serde_json::to_string_pretty(&t)?,
    )?;
    println!(
        "results: {} (every trial's split: timing.txt, timing.json)",
        run_dir.display()
    );
    Ok(())
}

/// `bench fuzz`: the fmap fuzzer for `duration` with one file per mount,
/// then with batches of 12 (same seed), and what each judged per second
/// and reached of the kernel model.
pub fn fuzz(opts: &Options, duration: std::time::Duration) -> Result<()> {
    let root = opts.root.join("target/famfs-harness/bench-fuzz");
    let mut rows = Vec::new();
    for batch in [1usize, 12] {
        let results = root.join(format!("batch-{batch}"));
        let _ = std::fs::remove_dir_all(&results);
        let req = super::fuzz_fmap::Request {
            opts: opts.clone(),
            duration,
            seed: 1,
            corpus: results.join("corpus"),
            results: results.clone(),
            partition: None,
            batch,
            known: None,
        };
        let (stats, _) = super::fuzz_fmap::run(&req)?;
        let hit = stats.reached.values().filter(|n| **n > 0).count();
        rows.push((
            batch,
            stats.files,
            stats.files_per_s,
            hit,
            stats.reached.len(),
            stats.findings.len(),
        ));
    }
    println!("| files per mount | files | files/s | model rules reached | findings |");
    println!("|---|---|---|---|---|");
    for (b, n, r, hit, all, f) in &rows {
        println!("| {b} | {n} | {r:.2} | {hit}/{all} | {f} |");
    }
    println!(
        "batches of 12 judge {:.2}x the files per second of one file per mount",
        rows[1].2 / rows[0].2.max(1e-9)
    );
    Ok(())
}
