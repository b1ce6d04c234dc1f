//! End-to-end: build (or reuse) the default kernel, boot it under QEMU, and
//! run the shipped cases on both launch backends. Also the harness's own
//! checks of its failure paths that need a real QEMU.
//!
//! These boot real VMs; the first run builds a kernel (about 10 minutes on
//! two cores), later runs reuse the cache (a few seconds per boot).

use famfs_harness::case::Case;
use famfs_harness::judge::reports::ReportKind;
use famfs_harness::judge::verdict::Outcome;
use famfs_harness::report::results::Summary;
use famfs_harness::run::{self, KernelChoice, Options};
use famfs_harness::vm::Backend;
use std::sync::Mutex;

/// One VM test at a time: they share the kernel cache and the machine's cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> std::path::PathBuf {
    famfs_harness::image::guest_program::workspace_root()
}

/// The cases a run without filters selects.
fn shipped_cases() -> Vec<Case> {
    famfs_harness::report::trials::select(&root().join("cases"), &Default::default()).unwrap()
}

fn outcome<'a>(s: &'a Summary, id: &str) -> &'a famfs_harness::report::results::CaseResult {
    s.cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no result for {id}: {:#?}", s.cases))
}

/// Boot groups the planner makes for these cases on this kernel (one per
/// topology, one per fresh-boot trial).
fn planned_groups(p: &run::Prepared, cases: &[Case]) -> usize {
    run::Schedule::new(p, cases).groups.len()
}

fn check_shipped_results(s: &Summary, backend: &str, groups: usize, old_qemu: bool) {
    // Every case the files define has a result, and none failed: a new case
    // that fails fails this test. Only famfs cases may be not run here
    // (7.3 has no famfs), each with its reason; and, when the QEMU is
    // Debian 12's 7.2 (`old_qemu`), cases on volatile CXL memory, which
    // needs QEMU 8, with that reason.
    let cases = shipped_cases();
    assert_eq!(
        s.cases.len(),
        cases.len() + groups,
        "{backend}: a result per case and per boot group"
    );
    for c in &cases {
        let r = outcome(s, &c.id);
        let ok = match r.outcome {
            Outcome::Pass | Outcome::ExpectedFail => true,
            Outcome::NotRun => {
                (c.id.starts_with("famfs/") || c.id.starts_with("famfs-user/"))
                    && !r.reasons.is_empty()
                    || old_qemu
                        && c.topology.pmem.as_ref().map(|p| p.kind)
                            == Some(famfs_harness::contract::topology::PmemKind::CxlVolatile)
                        && r.reasons
                            .iter()
                            .any(|w| w.contains("needs QEMU 8.0 or later"))
            }
            _ => false,
        };
        assert!(
            ok,
            "{backend}: {} is {:?}: {:#?}",
            c.id, r.outcome, r.reasons
        );
    }
    // No famfs in 7.3: the famfs cases are gated off with the reason (by
    // the capability gate in the guest, or by the kernel config).
    let notrun_because = |id: &str, why: &str| {
        let r = outcome(s, id);
        assert_eq!(
            r.outcome,
            Outcome::NotRun,
            "{backend}: {id}: {:#?}",
            r.reasons
        );
        assert!(
            r.reasons[0].contains(why),
            "{backend}: {id}: {:#?}",
            r.reasons
        );
    };
    notrun_because("famfs/001", "famfs capability not offered");
    notrun_because("famfs/002", "FUSE_FAMFS_DAX");
    // The detector self-check: the script passed, the harness failed it for
    // the WARNING it provoked, and the expectation turned that into a pass.
    let st = outcome(s, "selftest/001");
    assert_eq!(
        st.outcome,
        Outcome::ExpectedFail,
        "{backend}: {:#?}",
        st.reasons
    );
    assert_eq!(st.raw_outcome, Outcome::Fail);
    let titles = |r: &famfs_harness::report::results::CaseResult| {
        r.reports
            .iter()
            .map(|k| k.title.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(st), vec!["WARNING in lkdtm_WARNING"], "{backend}");
    assert_eq!(st.reports[0].kind, ReportKind::Warning);
    assert!(
        st.reasons
            .iter()
            .any(|r| r == "kernel: WARNING in lkdtm_WARNING"),
        "{:#?}",
        st.reasons
    );
    // The crash self-check: the BUG panics the kernel, the case is failed
    // with the BUG named from the console, the VM restarts for the rest.
    let bug = outcome(s, "selftest/002");
    assert_eq!(
        bug.outcome,
        Outcome::ExpectedFail,
        "{backend}: {:#?}",
        bug.reasons
    );
    // One crash, one report: the Oops line and the panic belong to the BUG.
    assert_eq!(titles(bug), vec!["kernel BUG in lkdtm_BUG"], "{backend}");
    assert!(
        bug.reports[0]
            .text
            .iter()
            .any(|l| l.contains("Kernel panic - not syncing")),
        "{:#?}",
        bug.reports[0].text
    );
    assert!(
        bug.reasons[1].starts_with("kernel BUG in lkdtm_BUG: crashed"),
        "{:#?}",
        bug.reasons
    );
    let after = outcome(s, "selftest/003");
    assert_eq!(
        after.outcome,
        Outcome::Pass,
        "{backend}: {:#?}",
        after.reasons
    );
    // NVDIMM cases (and those needing no device) in boot 1 until the
    // crash, the rest of them in boot 2, the CXL case in boot 3.
    assert_eq!(
        s.boots.len(),
        groups + 1,
        "{backend}: a boot per group (two topologies, fresh boots), one restart after the crash: {:#?}",
        s.boots
    );
    assert!(
        matches!(s.boots[0].end, famfs_harness::vm::BootEnd::Died { .. }),
        "{:#?}",
        s.boots[0].end
    );
    for b in &s.boots[1..] {
        assert_eq!(b.end, famfs_harness::vm::BootEnd::Completed, "{backend}");
    }
    assert!(
        s.boots[2].topology.contains("cxl"),
        "{}",
        s.boots[2].topology
    );
    assert_eq!(after.boot, Some(2));
    assert_eq!(outcome(s, "dax/003").boot, Some(3));
    for b in &s.boots {
        assert!(
            b.reports_outside_cases.is_empty(),
            "{backend}: {:#?}",
            b.reports_outside_cases
        );
    }
    // One boot trial per topology, clean.
    // One boot trial per group, clean.
    for g in 1..=groups {
        let t = run::boot_trial(g);
        assert_eq!(outcome(s, &t).outcome, Outcome::Pass, "{backend}: {t}");
    }
}

#[test]
fn shipped_cases_pass_on_the_default_kernel_with_both_backends() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Kept after the test, failing or not, for a person to read.
    let results = root().join("target/famfs-harness/ci/default");
    let mut opts = Options::new(&root());
    opts.results_root = results.clone();
    // Debian 12's QEMU (7.2) cannot emulate volatile CXL memory (dax/005):
    // direct QEMU boots with bookworm-backports' (fetched into the cache).
    opts.qemu = Some("backports".into());
    let mut p = run::prepare(&opts).expect("prepare (kernel, guest program, image)");
    let cases = shipped_cases();

    let mut streamed = Vec::new();
    let s = run::execute(
        &p,
        &cases,
        &mut |r: &famfs_harness::report::results::CaseResult| streamed.push(r.id.clone()),
    )
    .unwrap();
    let groups = planned_groups(&p, &cases);
    check_shipped_results(&s, "qemu", groups, false);
    assert_eq!(
        streamed.len(),
        cases.len() + groups,
        "every case and every boot trial reported to the sink"
    );
    // The run directory has what a person or CI needs.
    let run_dir = results.join("runs").join(&s.run_id);
    eprintln!("results: {}", run_dir.display());
    for f in [
        "summary.json",
        "junit.xml",
        "boots/1/console.log",
        "cases/selftest-001/kmsg.log",
        "cases/dax-001/output",
    ] {
        assert!(run_dir.join(f).exists(), "missing {f}");
    }
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("dax/001") && junit.contains(&format!("tests=\"{}\"", cases.len() + groups)),
        "{junit}"
    );
    let kmsg = std::fs::read_to_string(run_dir.join("cases/selftest-001/kmsg.log")).unwrap();
    assert!(
        kmsg.contains("WARNING:") && kmsg.contains("fh: case selftest/001 start"),
        "{kmsg}"
    );

    // What the crashing case printed before the crash was streamed out.
    let out = std::fs::read_to_string(run_dir.join("cases/selftest-002/output")).unwrap();
    assert_eq!(out, "provoking a BUG\n");

    p.opts.backend = Backend::Vng;
    run::ensure_host(&p.opts).expect("virtme-ng available");
    // virtme-ng with the host's QEMU, as its users run it.
    p.qemu = famfs_harness::vm::qemu::Qemu::find(None, &p.cache).unwrap();
    let old_qemu = !p.qemu.at_least((8, 0));
    let groups = planned_groups(&p, &cases);
    let s = run::execute(
        &p,
        &cases,
        &mut |_: &famfs_harness::report::results::CaseResult| {},
    )
    .unwrap();
    check_shipped_results(&s, "vng", groups, old_qemu);
}

/// A checkout-like root with its own cases, sharing images and fragments.
fn scratch_root(cases: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for d in ["images", "kernel-configs"] {
        std::os::unix::fs::symlink(root().join(d), t.path().join(d)).unwrap();
    }
    std::fs::copy(root().join("cases/common.sh"), {
        std::fs::create_dir_all(t.path().join("cases")).unwrap();
        t.path().join("cases/common.sh")
    })
    .unwrap();
    for (id, script, golden) in cases {
        let p = t.path().join("cases").join(id);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, script).unwrap();
        std::fs::write(
            p.with_file_name(format!("{}.out", p.file_name().unwrap().to_string_lossy())),
            golden,
        )
        .unwrap();
    }
    t
}

/// Run every case of a scratch checkout (results under it), with extra
/// guest environment.
fn run_scratch(t: &tempfile::TempDir, env: &[(&str, &str)]) -> Summary {
    let mut opts = Options::new(t.path());
    // Outside the scratch root, so that a failing test leaves them behind.
    opts.results_root = root().join("target/famfs-harness/ci/scratch");
    for (k, v) in env {
        opts.guest_env.insert(k.to_string(), v.to_string());
    }
    let p = run::prepare(&opts).unwrap();
    let cases = famfs_harness::case::discover(&t.path().join("cases")).unwrap();
    run::execute(
        &p,
        &cases,
        &mut |_: &famfs_harness::report::results::CaseResult| {},
    )
    .unwrap()
}

#[test]
fn memmap_pmem_and_topology_grouping() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let memmap = "# ---\n# description: memmap pmem\n# requires: { pmem: 64M, pmem_kind: memmap }\n# ---\n. \"$FH_COMMON\"\n_require_dax\n\"$FH_TOOL\" dax-mmap \"$FH_DAX\" 2M\n";
    let nvdimm = "# ---\n# description: nvdimm pmem\n# requires: { pmem: 32M }\n# ---\n. \"$FH_COMMON\"\n_require_dax\necho ok\n";
    let none = "# ---\n# description: needs no device\n# ---\necho runs anywhere\n";
    let t = scratch_root(&[
        (
            "t/001",
            memmap,
            "mmap 2097152 bytes at offset 0: pattern ok\n",
        ),
        ("t/002", nvdimm, "ok\n"),
        ("t/003", none, "runs anywhere\n"),
    ]);
    let s = run_scratch(&t, &[]);
    for c in &s.cases {
        assert_eq!(c.outcome, Outcome::Pass, "{}: {:#?}", c.id, c.reasons);
    }
    // memmap and NVDIMM cannot share a boot; the device-less case joins the first.
    assert_eq!(s.boots.len(), 2, "{:#?}", s.boots);
    assert!(
        s.boots[0].topology.contains("memmap"),
        "{}",
        s.boots[0].topology
    );
    assert!(
        s.boots[1].topology.contains("nvdimm"),
        "{}",
        s.boots[1].topology
    );
    assert_eq!(outcome(&s, "t/003").boot, Some(1));
}

/// Reports outside every case are never absorbed: a WARNING in a case's
/// tail (after its end marker) fails the case; one between two cases, one
/// after the last case and one at shutdown fail the boot trial with their
/// titles. A case that hangs gets the blocked-task dump; a daemon a case
/// started with setsid is killed before the next case.
#[test]
fn reports_outside_cases_fail_the_boot_trial() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let plain = "# ---\n# description: passes\n# ---\necho done\n";
    // Killed at its timeout (1 s, x4 under TCG), after the runner had the
    // kernel list the blocked tasks.
    let hangs =
        "# ---\n# description: outlives its timeout\n# timeout: 1\n# ---\necho started\nsleep 60\n";
    // Escapes the case's process group; must not outlive the case.
    let stray = "# ---\n# description: leaves a daemon\n# ---\nsetsid sh -c 'touch started; exec sleep 600' </dev/null >/dev/null 2>&1 &\nwhile [ ! -e started ]; do sleep 0.01; done\necho done\n";
    let after = "# ---\n# description: the daemon is gone\n# ---\nfor p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = sleep ] && echo \"sleep still running\"; done\necho done\n";
    let t = scratch_root(&[
        ("t/001", plain, "done\n"),
        ("t/002", hangs, "started\n"),
        ("t/003", stray, "done\n"),
        ("t/004", after, "done\n"),
    ]);
    let s = run_scratch(
        &t,
        &[(
            famfs_harness::contract::env::SELFTEST_HOOK,
            "tail:WARNING,between:WARNING,last:WARNING,shutdown:WARNING",
        )],
    );
    let console = std::fs::read_to_string(
        root().join("target/famfs-harness/ci/scratch/latest/boots/1/console.log"),
    )
    .unwrap_or_default();
    let marks: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("fh: ") || l.contains("WARNING:"))
        .collect();
    let t1 = outcome(&s, "t/001");
    assert_eq!(t1.outcome, Outcome::Fail, "{:#?} {marks:#?}", t1.reasons);
    assert_eq!(t1.reasons, vec!["kernel: WARNING in lkdtm_WARNING"]);
    let t2 = outcome(&s, "t/002");
    assert_eq!(t2.outcome, Outcome::Fail);
    assert!(
        t2.reasons[0].starts_with("timed out after"),
        "{:#?}",
        t2.reasons
    );
    let case_file = |c: &famfs_harness::report::results::CaseResult, f: &str| {
        std::fs::read_to_string(
            root()
                .join("target/famfs-harness/ci/scratch/latest")
                .join(&c.dir)
                .join(f),
        )
        .unwrap_or_default()
    };
    assert!(case_file(t2, "kmsg.log").contains("Show Blocked State"));
    let t3 = outcome(&s, "t/003");
    assert_eq!(t3.outcome, Outcome::Pass, "{:#?}", t3.reasons);
    let cleanup = case_file(t3, "cleanup.txt");
    assert!(
        cleanup.starts_with("killed processes the case left: ")
            && (cleanup.contains("sleep[") || cleanup.contains("sh[")),
        "{:?} in {}",
        cleanup,
        t3.dir
    );
    let t4 = outcome(&s, "t/004");
    assert_eq!(
        t4.outcome,
        Outcome::Pass,
        "{:#?} {}",
        t4.reasons,
        case_file(t4, "output")
    );
    let boot = outcome(&s, "boot/1");
    assert_eq!(boot.outcome, Outcome::Fail);
    assert_eq!(
        boot.reports
            .iter()
            .map(|r| r.title.as_str())
            .collect::<Vec<_>>(),
        vec!["WARNING in lkdtm_WARNING"; 3],
        "between, after the last case, at shutdown: {:#?} {marks:#?}",
        boot.reasons
    );
    assert!(
        boot.reasons[0].contains("outside every case"),
        "{:#?}",
        boot.reasons
    );
    assert!(s.counts.failed >= 3);
    // JUnit names the title as the failure's message and type.
    let junit =
        std::fs::read_to_string(root().join("target/famfs-harness/ci/scratch/latest/junit.xml"))
            .unwrap();
    assert!(
        junit.contains(
            r#"<failure message="WARNING in lkdtm_WARNING" type="WARNING in lkdtm_WARNING">"#
        ),
        "{junit}"
    );
}

/// The whole suite on a famfs kernel built from the V10 fixture beside the
/// checkout: nothing fails, every famfs and fuse case runs (none is
/// reported as not run), and each known defect of the kernel shows as a
/// known failure with its title. Where the fixture is absent the harness
/// must report every case as not run with the reason, which is asserted
/// instead. Results are kept under target/famfs-harness/ci/NAME.
fn famfs_kernel_suite(name: &str) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut opts = Options::new(&root());
    opts.kernel = KernelChoice::Named(name.into());
    opts.results_root = root().join("target/famfs-harness/ci").join(name);
    let cases = shipped_cases();
    let p = match run::prepare(&opts) {
        Ok(p) => p,
        Err(e) => {
            let why = e
                .downcast_ref::<famfs_harness::kernel::named::Unavailable>()
                .unwrap_or_else(|| panic!("{name}: {e:#}"));
            assert!(
                !root()
                    .join("../shared/kernels/famfs-v10-7.3/series")
                    .exists(),
                "{name} unavailable although the fixture exists: {why}"
            );
            let args = libtest_mimic::Arguments::from_iter(["t"]);
            let s = famfs_harness::report::trials::run_unavailable(&opts, &cases, &why.0, &args)
                .unwrap()
                .summary;
            assert!(s.cases.iter().all(
                |c| c.outcome == Outcome::NotRun && c.reasons[0].contains("not available here")
            ));
            eprintln!("notrun: {why}");
            return;
        }
    };
    assert!(
        p.kernel.config.enabled("FUSE_FAMFS_DAX") && p.kernel.config.enabled("FUSE_DAX"),
        "{name}: famfs and virtio-fs DAX both built in"
    );
    assert_eq!(
        p.kernel.source.as_ref().map(|s| s.patches.len()),
        Some(8),
        "{name}: the eight V10 patches applied"
    );
    let s = run::execute(
        &p,
        &cases,
        &mut |_: &famfs_harness::report::results::CaseResult| {},
    )
    .unwrap();
    let run_dir = opts.results_root.join("runs").join(&s.run_id);
    let mut bad = Vec::new();
    for c in &s.cases {
        let must_run = c.id.starts_with("famfs/") || c.id.starts_with("fuse/");
        let ok = match c.outcome {
            Outcome::Fail => false,
            Outcome::NotRun => !must_run,
            _ => true,
        };
        if !ok {
            bad.push(format!("{} {:?}: {:?}", c.id, c.outcome, c.reasons));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: results in {}\n{}",
        run_dir.display(),
        bad.join("\n")
    );
    for d in &p.kernel.known_defects {
        assert_eq!(
            outcome(&s, &d.case).outcome,
            Outcome::KnownFail,
            "{name}: {} ({})",
            d.case,
            d.at
        );
    }
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("kernel.patch.08")
            && junit.contains(&format!("kernel.name\" value=\"{name}")),
        "{junit}"
    );
}

#[test]
fn famfs_v10_kernel_runs_the_suite() {
    famfs_kernel_suite("famfs-v10");
}

#[test]
fn famfs_v10_debug_kernel_runs_the_suite() {
    famfs_kernel_suite("famfs-v10-debug");
}
