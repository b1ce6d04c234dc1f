//! The harness's own checks that need a real QEMU, through the library:
//! topology grouping and the failure paths of a boot (reports outside
//! cases, hangs, stray daemons). The shipped suites run through the binary
//! (xtask/tests/suites.rs).
//!
//! These boot real VMs; the first run builds a kernel (about 10 minutes on
//! two cores), later runs reuse the cache (a few seconds per boot).

use famfs_harness::judge::verdict::Outcome;
use famfs_harness::report::results::Summary;
use famfs_harness::run::{self, Options};
use std::sync::Mutex;

/// One VM test at a time: they share the kernel cache and the machine's cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> std::path::PathBuf {
    famfs_harness::image::guest_program::workspace_root()
}

fn outcome<'a>(s: &'a Summary, id: &str) -> &'a famfs_harness::report::results::CaseResult {
    s.cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no result for {id}: {:#?}", s.cases))
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
        opts.exec.guest_env.insert(k.to_string(), v.to_string());
    }
    let p = run::prepare(&opts).unwrap();
    let cases = famfs_harness::plan::case::discover(&t.path().join("cases")).unwrap();
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
