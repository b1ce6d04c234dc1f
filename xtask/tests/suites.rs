//! The main job end to end, through the real binary, once per kernel CI
//! tests: `cargo xtask test-vm` on the default kernel (direct QEMU and
//! virtme-ng), on the famfs V10 and famfs next kernels with the default and
//! the debug fragments, V10
//! variants broken by patches of the tests' own (famfs never engaging, the
//! capability offered without CAP_SYS_RAWIO) through each kernel input,
//! and the LKDTM group on the debug kernel; nightly, the famfs groups on
//! the project's fixed V10 (ignored here). Each asserts on what
//! the run wrote (exit status, summary.json, junit.xml, the test list);
//! `.ci/run` runs none of these selections again. Results are kept under
//! target/famfs-harness/ci/NAME for a person to read.

mod common;
use common::root;
use famfs_harness::judge::reports::ReportKind;
use famfs_harness::judge::verdict::Outcome;
use famfs_harness::kernel::resolve::KernelChoice;
use famfs_harness::plan::case::Case;
use famfs_harness::report::results::{CaseResult, Summary};
use famfs_harness::run::{self, Options};
use std::path::PathBuf;
use std::sync::Mutex;

/// One VM run at a time: they share the kernel cache and the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// The cases a run without filters selects.
fn shipped_cases() -> Vec<Case> {
    famfs_harness::plan::select::select(&root().join("cases"), &Default::default()).unwrap()
}

/// What one run of the binary left: its exit status, its test list, its
/// summary and the run directory.
struct Ran {
    code: Option<i32>,
    stdout: String,
    summary: Summary,
    dir: PathBuf,
}

/// Run `cargo xtask test-vm ARGS --results DIR` (DIR emptied first), as a
/// user does; the binary's output goes to the test's output as it comes.
fn test_vm(name: &str, args: &[&str]) -> Ran {
    let results = root().join("target/famfs-harness/ci").join(name);
    let _ = std::fs::remove_dir_all(&results);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("test-vm")
        .args(args)
        .arg("--results")
        .arg(&results)
        .env("CI", "1")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running xtask test-vm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}");
    let dir = std::fs::canonicalize(results.join("latest"))
        .unwrap_or_else(|e| panic!("{name}: no run directory under {}: {e}", results.display()));
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    Ran {
        code: out.status.code(),
        stdout,
        summary: serde_json::from_str(&text).unwrap(),
        dir,
    }
}

fn outcome<'a>(s: &'a Summary, id: &str) -> &'a CaseResult {
    s.cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no result for {id}: {:#?}", s.cases))
}

/// The boot groups the planner makes for these cases with these options
/// (one per topology, one per fresh-boot trial): the cached kernel is
/// prepared again, which builds nothing.
fn planned_groups(opts: &Options, cases: &[Case]) -> usize {
    let mut opts = opts.clone();
    // As many VMs as the binary runs by default: it splits big groups.
    opts.exec.jobs = famfs_harness::exec::default_jobs();
    let p = run::prepare(&opts).expect("prepare (cached)");
    p.schedule(cases).groups.len()
}

/// The test list has one line per trial, each ending in its result on the
/// same line.
fn check_test_list(r: &Ran, trials: usize) {
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("test ") && !l.starts_with("test result: "))
        .collect();
    assert_eq!(lines.len(), trials, "{}", r.stdout);
    for l in lines {
        assert!(
            l.ends_with(" ok") || l.contains(" ... ignored") || l.contains(" ... FAILED"),
            "a test line split by another message: {l:?}"
        );
    }
}

fn check_shipped_results(r: &Ran, backend: &str, groups: usize, old_qemu: bool, cases: &[Case]) {
    let s = &r.summary;
    assert_eq!(
        r.code,
        Some(0),
        "{backend}: exit status; results in {}",
        r.dir.display()
    );
    // Every case the files define has a result, and none failed: a new case
    // that fails fails this test. Only famfs cases may be not run here
    // (7.3 has no famfs), each with its reason; and, when the QEMU is
    // Debian 12's 7.2 (`old_qemu`), cases on volatile CXL memory, which
    // needs QEMU 8, with that reason.
    assert_eq!(
        s.cases.len(),
        cases.len() + groups,
        "{backend}: a result per case and per boot group"
    );
    check_test_list(r, cases.len() + groups);
    for c in cases {
        let res = outcome(s, &c.id);
        let ok = match res.outcome {
            Outcome::Pass | Outcome::ExpectedFail => true,
            Outcome::NotRun => {
                (c.id.starts_with("famfs/") || c.id.starts_with("famfs-user/"))
                    && !res.reasons.is_empty()
                    || old_qemu
                        && c.topology.pmem.as_ref().map(|p| p.kind)
                            == Some(famfs_harness::contract::topology::PmemKind::CxlVolatile)
                        && res
                            .reasons
                            .iter()
                            .any(|w| w.contains("needs QEMU 8.0 or later"))
            }
            _ => false,
        };
        assert!(
            ok,
            "{backend}: {} is {:?}: {:#?}",
            c.id, res.outcome, res.reasons
        );
    }
    // No famfs in 7.3: the famfs cases are gated off with the reason (by
    // the capability gate in the guest, or by the kernel config).
    let notrun_because = |id: &str, why: &str| {
        let res = outcome(s, id);
        assert_eq!(
            res.outcome,
            Outcome::NotRun,
            "{backend}: {id}: {:#?}",
            res.reasons
        );
        assert!(
            res.reasons[0].contains(why),
            "{backend}: {id}: {:#?}",
            res.reasons
        );
    };
    notrun_because(
        "famfs/001",
        "this kernel has no famfs (include/uapi/linux/fuse.h has no FUSE_GET_FMAP)",
    );
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
    let titles = |r: &CaseResult| {
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
    // A boot per group, and one restart after the crash, which ends the
    // first boot; the rest of that group runs in the boot after it.
    assert_eq!(s.boots.len(), groups + 1, "{backend}: {:#?}", s.boots);
    let died: Vec<u32> = s
        .boots
        .iter()
        .filter(|b| matches!(b.end, famfs_harness::vm::BootEnd::Died { .. }))
        .map(|b| b.index)
        .collect();
    assert_eq!(died.len(), 1, "{backend}: {:#?}", s.boots);
    assert_eq!(bug.boot, Some(died[0]));
    // The rest of the crashed boot's group runs in another boot of the
    // same machine (a restart, or the boot of the group's other piece).
    let topology = |n: u32| s.boots.iter().find(|b| b.index == n).map(|b| &b.topology);
    let rest = after.boot.expect("selftest/003 ran");
    assert!(
        rest != died[0] && topology(rest) == topology(died[0]),
        "{:#?}",
        s.boots
    );
    for b in &s.boots {
        assert!(
            b.reports_outside_cases.is_empty(),
            "{backend}: {:#?}",
            b.reports_outside_cases
        );
    }
    if cases.iter().any(|c| c.id == "dax/003") {
        let cxl = outcome(s, "dax/003").boot.expect("dax/003 ran");
        assert!(
            s.boots
                .iter()
                .any(|b| b.index == cxl && b.topology.contains("cxl")),
            "{backend}: dax/003 in a CXL boot: {:#?}",
            s.boots
        );
    }
    // One boot trial per group, clean.
    for g in 1..=groups {
        let t = famfs_harness::plan::schedule::boot_trial(g);
        assert_eq!(outcome(s, &t).outcome, Outcome::Pass, "{backend}: {t}");
    }
    // The run directory has what a person or CI needs.
    for f in [
        "summary.json",
        "junit.xml",
        "cases/selftest-001/kmsg.log",
        "cases/dax-001/output",
    ] {
        assert!(r.dir.join(f).exists(), "{backend}: missing {f}");
    }
    assert!(r.dir.join(&s.boots[0].console_log).exists());
    let junit = std::fs::read_to_string(r.dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("dax/001") && junit.contains(&format!("tests=\"{}\"", cases.len() + groups)),
        "{junit}"
    );
    let kmsg = std::fs::read_to_string(r.dir.join("cases/selftest-001/kmsg.log")).unwrap();
    assert!(
        kmsg.contains("WARNING:") && kmsg.contains("fh: case selftest/001 start"),
        "{kmsg}"
    );
    // What the crashing case printed before the crash was streamed out.
    let out = std::fs::read_to_string(r.dir.join("cases/selftest-002/output")).unwrap();
    assert_eq!(out, "provoking a BUG\n");
}

#[test]
fn shipped_cases_pass_on_the_default_kernel_with_both_backends() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cases = shipped_cases();
    // Debian 12's QEMU (7.2) cannot emulate volatile CXL memory (dax/005):
    // direct QEMU boots with bookworm-backports' (fetched into the cache).
    let mut opts = Options::new(&root());
    opts.qemu = Some("backports".into());
    let groups = planned_groups(&opts, &cases);
    let r = test_vm("default", &["--qemu", "backports"]);
    check_shipped_results(&r, "qemu", groups, false, &cases);

    // virtme-ng with the host's QEMU, as its users run it: the quick group
    // and the detector's self-checks (a WARNING, a crash and the restart
    // after it) show the second launch path; the whole suite ran above.
    opts.qemu = None;
    opts.exec.backend = famfs_harness::vm::Backend::Vng;
    run::ensure_host(&opts).expect("virtme-ng available");
    let qemu = famfs_harness::vm::qemu::Qemu::find(
        None,
        &famfs_harness::base::cache::Cache::open(None).unwrap(),
    )
    .unwrap();
    let sel = famfs_harness::plan::select::Selection {
        groups: vec!["quick".into(), "selftest".into()],
        ..Default::default()
    };
    let some = famfs_harness::plan::select::select(&root().join("cases"), &sel).unwrap();
    let groups = planned_groups(&opts, &some);
    let r = test_vm(
        "default-vng",
        &["--backend", "vng", "-g", "quick", "-g", "selftest"],
    );
    check_shipped_results(&r, "vng", groups, !qemu.at_least((8, 0)), &some);
}

/// A famfs generation: its fixture, its patch count and the profile
/// `--profile auto` must find in its source.
struct Generation {
    fixture: &'static str,
    patches: usize,
    profile: &'static str,
}

const V10: Generation = Generation {
    fixture: "famfs-v10-7.3",
    patches: 8,
    profile: "v10",
};
const NEXT: Generation = Generation {
    fixture: "famfs-next-7.3",
    patches: 11,
    profile: "next",
};

/// Trials that check the next revision's own rules: pushed devices, the
/// size probe, fmaps longer than a page.
fn checks_next_rules(id: &str) -> bool {
    id.starts_with("famfs/050[")
        || [
            "famfs/010[fmap-size",
            "famfs/010[header-only",
            "famfs/010[retry-",
            "famfs/010[empty-reply",
            "famfs/010[200-",
            "famfs/010[10000-",
            "famfs/010[100000-",
        ]
        .iter()
        .any(|p| id.starts_with(p))
}

/// The whole suite on a famfs kernel built from a fixture beside the
/// checkout: nothing fails; every famfs and fuse case runs, or is not run
/// only because the kernel's famfs ABI lacks what the trial checks; the
/// famfs-user cases run where the famfs user space speaks the ABI, and are
/// not run with that reason where it cannot push devices; each known
/// defect of the kernel shows as a known failure with its title. Where the
/// fixture is absent the binary must report every case as not run with the
/// reason, which is asserted instead.
/// A famfs trial that needs an option only the debug fragment sets
/// (famfs/043: CONFIG_HWPOISON_INJECT) is not run on a kernel built
/// without that fragment, and says so; on a kernel with it, it runs.
fn needs_the_debug_fragment(kernel: &str, why: &str) -> bool {
    let k = famfs_harness::kernel::named::load(&root(), kernel).unwrap();
    !k.fragments.iter().any(|f| f == "debug") && debug_only_option(why)
}

/// `why` is the not-run reason for an option only the debug fragment sets.
fn debug_only_option(why: &str) -> bool {
    let debug = std::fs::read_to_string(root().join("kernel-configs/debug.config")).unwrap();
    debug
        .lines()
        .filter_map(|l| l.split_once('=').map(|(sym, _)| sym))
        .filter(|sym| sym.starts_with("CONFIG_"))
        .any(|sym| why == format!("kernel config: {sym} is not set"))
}

fn famfs_kernel_suite(name: &str, g: &Generation) -> Summary {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = root()
        .join("../shared/kernels")
        .join(g.fixture)
        .join("series")
        .exists();
    let r = test_vm(name, &["--kernel", name]);
    let s = &r.summary;
    assert_eq!(
        r.code,
        Some(0),
        "{name}: exit status; results in {}",
        r.dir.display()
    );
    if !fixture {
        assert!(s
            .cases
            .iter()
            .all(|c| c.outcome == Outcome::NotRun && c.reasons[0].contains("not available here")));
        return r.summary;
    }
    let mut opts = Options::new(&root());
    opts.kernel.choice = KernelChoice::Named(name.into());
    opts.exec.jobs = famfs_harness::exec::default_jobs();
    let p = run::prepare(&opts).expect("prepare (cached)");
    assert!(
        p.kernel.config.enabled("FUSE_FAMFS_DAX") && p.kernel.config.enabled("FUSE_DAX"),
        "{name}: famfs and virtio-fs DAX both built in"
    );
    assert_eq!(
        p.kernel.source.as_ref().map(|s| s.patches.len()),
        Some(g.patches),
        "{name}: the fixture's patches applied"
    );
    assert_eq!(
        s.profile, g.profile,
        "{name}: --profile auto from the source"
    );
    let cases = shipped_cases();
    let groups = p.schedule(&cases).groups.len();
    assert_eq!(
        s.cases.len(),
        cases.len() + groups,
        "{name}: a result per trial"
    );
    check_test_list(&r, cases.len() + groups);
    let mut bad = Vec::new();
    let mut next_rules = 0;
    for c in &s.cases {
        let why = c.reasons.first().map(String::as_str).unwrap_or("");
        let abi_gap = why.contains(&format!("the {} famfs ABI has no", g.profile));
        let cannot_push = why.contains("cannot push dax devices");
        let ok = match c.outcome {
            Outcome::Fail | Outcome::Error => false,
            Outcome::NotRun if c.id.starts_with("famfs/") => {
                abi_gap || needs_the_debug_fragment(name, why)
            }
            Outcome::NotRun if c.id.starts_with("famfs-user/") => {
                g.profile == "next" && cannot_push
            }
            Outcome::NotRun => !c.id.starts_with("fuse/"),
            _ => true,
        };
        if matches!(c.outcome, Outcome::Pass | Outcome::KnownFail) && checks_next_rules(&c.id) {
            next_rules += 1;
        }
        if !ok {
            bad.push(format!("{} {:?}: {:?}", c.id, c.outcome, c.reasons));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: results in {}\n{}",
        r.dir.display(),
        bad.join("\n")
    );
    if g.profile == "next" {
        assert!(
            next_rules >= 25,
            "{name}: {next_rules} trials checked the revision's own rules"
        );
    }
    for d in &p.kernel.known_defects {
        assert_eq!(
            outcome(s, &d.case).outcome,
            Outcome::KnownFail,
            "{name}: {} ({})",
            d.case,
            d.at
        );
    }
    let junit = std::fs::read_to_string(r.dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains(&format!("kernel.patch.{:02}", g.patches))
            && junit.contains(&format!("kernel.name\" value=\"{name}")),
        "{junit}"
    );
    check_kcidb(&r, s);
    r.summary
}

/// `report kcidb` of the run validates against kcidb-io's schema (the
/// package KernelCI's tools use), has a test per trial, and each known
/// failure is a FAIL with its report title and an incident of its issue.
fn check_kcidb(r: &Ran, s: &Summary) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "kcidb"])
        .arg(&r.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = r.dir.join("kcidb.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, kcidb_io; kcidb_io.schema.LATEST.validate(json.load(open(sys.argv[1])))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{} against kcidb-io's schema (pip install kcidb-io; .ci/run does):\n{}",
        file.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), s.cases.len());
    for c in s.cases.iter().filter(|c| c.outcome == Outcome::KnownFail) {
        let t = tests
            .iter()
            .find(|t| t["misc"]["trial"] == c.id.as_str())
            .unwrap();
        assert_eq!(t["status"], "FAIL", "{}", c.id);
        if let Some(k) = c.reports.first() {
            assert_eq!(t["comment"], k.title.as_str(), "{}", c.id);
            assert!(t["log_excerpt"].as_str().unwrap().starts_with(&k.title));
        }
        assert!(
            v["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["test_id"] == t["id"] && i["present"] == true),
            "{}: no incident",
            c.id
        );
    }
}

#[test]
fn famfs_v10_kernel_runs_the_suite() {
    famfs_kernel_suite("famfs-v10", &V10);
}

#[test]
fn famfs_v10_debug_kernel_runs_the_suite() {
    let s = famfs_kernel_suite("famfs-v10-debug", &V10);
    // A real report of the famfs code, symbolized from the debug kernel's
    // vmlinux: the title's function and its frame at a famfs.c line.
    let t = outcome(&s, "famfs/010[devindex-32]");
    let r = t
        .reports
        .iter()
        .find(|r| r.title == "UBSAN: shift-out-of-bounds in famfs_file_init_dax")
        .unwrap_or_else(|| panic!("famfs/010[devindex-32]: {:#?}", t.reports));
    let f = r
        .frames
        .iter()
        .find(|f| f.func == "famfs_file_init_dax")
        .unwrap_or_else(|| panic!("no famfs_file_init_dax frame: {:#?}", r.frames));
    assert!(
        f.source.iter().any(|l| l.starts_with("fs/fuse/famfs.c:")),
        "{f:#?}"
    );
}

#[test]
fn famfs_next_kernel_runs_the_suite() {
    famfs_kernel_suite("famfs-next", &NEXT);
}

#[test]
fn famfs_next_debug_kernel_runs_the_suite() {
    famfs_kernel_suite("famfs-next-debug", &NEXT);
}

/// The famfs and famfs-user groups on `famfs-v10-fixed` (V10 with the
/// project's fixes of every known kernel defect): every famfs trial passes
/// with no kernel report and no known-defect entry, or is not run only
/// where the v10 ABI lacks what it checks (pushed devices) or the debug
/// fragment's options are missing; its known defects are only of famfs's
/// own user space. A failure here is the harness's fault. Nightly (CI's
/// 35 minutes do not hold it): `cargo test -p xtask --test suites --
/// --ignored famfs_v10_fixed`.
#[test]
#[ignore = "nightly: the fixed V10 kernel's famfs and famfs-user groups (about 2.5 min warm)"]
fn famfs_v10_fixed_kernel_passes_every_famfs_trial() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !root().join(V10_SERIES).exists() {
        return;
    }
    let name = "famfs-v10-fixed";
    let r = test_vm(name, &["--kernel", name, "-g", "famfs", "-g", "famfs-user"]);
    let s = &r.summary;
    assert_eq!(r.code, Some(0), "results in {}", r.dir.display());
    let mut bad = Vec::new();
    let mut famfs = 0;
    for c in &s.cases {
        let why = c.reasons.first().map(String::as_str).unwrap_or("");
        let ok = if c.id.starts_with("famfs/") {
            famfs += 1;
            c.reports.is_empty()
                && (c.outcome == Outcome::Pass
                    || c.outcome == Outcome::NotRun
                        && (why.contains("the v10 famfs ABI has no")
                            || needs_the_debug_fragment(name, why)))
        } else if c.id.starts_with("famfs-user/") {
            c.outcome == Outcome::Pass
                || c.outcome == Outcome::KnownFail
                    && c.reasons.iter().any(|w| w.contains("famfs user space"))
        } else {
            c.outcome == Outcome::Pass
        };
        if !ok {
            bad.push(format!(
                "{} {:?}: {:?} {:?}",
                c.id, c.outcome, c.reasons, c.reports
            ));
        }
    }
    assert!(famfs >= 80, "{famfs} famfs trials");
    assert!(
        bad.is_empty(),
        "results in {}\n{}",
        r.dir.display(),
        bad.join("\n")
    );
    let k = famfs_harness::kernel::named::load(&root(), name).unwrap();
    assert!(
        k.known_defects
            .iter()
            .all(|d| d.case.starts_with("famfs-user/")),
        "{name} lists a kernel defect: {:#?}",
        k.known_defects
    );
}

/// The V10 fixture's series, beside the checkout (absent: the V10 tests
/// have nothing to build and return).
const V10_SERIES: &str = "../shared/kernels/famfs-v10-7.3/series";

/// What a case printed (its `output` file in the run directory).
fn case_output(r: &Ran, c: &CaseResult) -> String {
    std::fs::read_to_string(r.dir.join(&c.dir).join("output")).unwrap_or_default()
}

/// The V10 fixture series, then `patch` (one of the tests' own, under
/// xtask/tests/patches/), as `--kernel-patches` arguments.
fn v10_with(patch: &str) -> Vec<String> {
    [
        root().join(V10_SERIES),
        root().join("xtask/tests/patches").join(patch),
    ]
    .iter()
    .flat_map(|p| ["--kernel-patches".to_string(), p.display().to_string()])
    .collect()
}

/// Every famfs trial failed (at least `min` of them), each saying famfs
/// never engages, and the run exits 101.
fn check_famfs_never_engages(r: &Ran, input: &str, min: usize) {
    assert_eq!(r.code, Some(101), "{input}: results in {}", r.dir.display());
    let famfs: Vec<&CaseResult> = r
        .summary
        .cases
        .iter()
        .filter(|c| c.id.starts_with("famfs/"))
        .collect();
    assert!(famfs.len() >= min, "{input}: {} famfs trials", famfs.len());
    for c in famfs {
        // Built without the debug fragment: famfs/043 needs one of its
        // options and is not run before any gate.
        if c.outcome == Outcome::NotRun && debug_only_option(&c.reasons[0]) {
            continue;
        }
        // The gate's `FAIL: famfs is broken: ...` line is in the case's
        // output, and is the reason a person reads.
        let out = case_output(r, c);
        assert!(
            c.outcome == Outcome::Fail
                && c.reasons[0].starts_with("famfs is broken: CONFIG_FUSE_FAMFS_DAX=y")
                && out.contains("FAIL: famfs is broken")
                && out.contains("CONFIG_FUSE_FAMFS_DAX=y")
                && out.contains("famfs mode never engages"),
            "{input}: {} {:?}: {:#?}\n{out}",
            c.id,
            c.outcome,
            c.reasons
        );
    }
}

/// A V10 kernel whose famfs mode never engages (the INIT reply's flags2 is
/// dropped: bit 43 offered, echoed, no GET_FMAP ever): its .config and
/// source say famfs, so every famfs trial fails with the reason, whether
/// the kernel comes as a patch series (the whole famfs group), a tree or a
/// prebuilt image (the capability trials).
#[test]
fn a_famfs_kernel_that_never_engages_fails_every_famfs_trial() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !root().join(V10_SERIES).exists() {
        return;
    }
    let mut args = v10_with("famfs-v10-never-engages.patch");
    args.extend(["-g".into(), "famfs".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = test_vm("never-engages-patches", &args);
    check_famfs_never_engages(&r, "--kernel-patches", 80);
    let k = &r.summary.kernel;
    let field = |v: &serde_json::Value| v.as_str().expect("a path in summary.json").to_string();
    let (tree, image, config) = (
        field(&k["source"]["path"]),
        field(&k["bzimage"]),
        field(&k["config_path"]),
    );
    // The same kernel as a tree and as an image: what is tested is that the
    // input carries the oracle (.config, source), so the capability
    // trials suffice.
    let r = test_vm(
        "never-engages-src",
        &["--kernel-src", &tree, "-g", "famfs-cap"],
    );
    check_famfs_never_engages(&r, "--kernel-src", 10);
    let r = test_vm(
        "never-engages-image",
        &[
            "--kernel-image",
            &image,
            "--kernel-config",
            &config,
            "-g",
            "famfs-cap",
        ],
    );
    check_famfs_never_engages(&r, "--kernel-image", 10);
}

/// A V10 kernel that offers the famfs bit to a mounter without
/// CAP_SYS_RAWIO fails famfs-cap: famfs/020's trials that mount without it
/// say the kernel offered what it must not.
#[test]
fn a_famfs_kernel_that_offers_without_cap_sys_rawio_fails_famfs_cap() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !root().join(V10_SERIES).exists() {
        return;
    }
    let mut args = v10_with("famfs-v10-offers-without-rawio.patch");
    args.extend(["-g".into(), "famfs-cap".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = test_vm("offers-without-rawio", &args);
    assert_eq!(r.code, Some(101), "results in {}", r.dir.display());
    for c in &r.summary.cases {
        let no_rawio = c.id.starts_with("famfs/020[no-rawio-");
        if no_rawio {
            // The case's own output says what went wrong.
            let out = case_output(&r, c);
            assert!(
                c.outcome == Outcome::Fail
                    && out.contains("famfs capability offered: yes, but this kernel must give no"),
                "{} {:?}: {:#?}\n{out}",
                c.id,
                c.outcome,
                c.reasons
            );
        } else {
            assert_eq!(c.outcome, Outcome::Pass, "{}: {:#?}", c.id, c.reasons);
        }
    }
    assert!(
        r.summary
            .cases
            .iter()
            .filter(|c| c.id.starts_with("famfs/020[no-rawio-"))
            .count()
            == 2
    );
}

/// The crash detector end to end: LKDTM provokes each kind of report on
/// the debug kernel (KASAN, UBSAN, lockdep and the hang detectors on), and
/// every case that provokes one is failed with exactly its title, which
/// its expectation turns into an expected failure; the run exits 0.
#[test]
fn lkdtm_reports_are_titled_on_the_debug_kernel() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !root().join(V10_SERIES).exists() {
        return;
    }
    let r = test_vm(
        "lkdtm",
        &["--kernel", "famfs-v10-debug", "--group", "lkdtm"],
    );
    let s = &r.summary;
    assert_eq!(r.code, Some(0), "results in {}", r.dir.display());
    let lkdtm: Vec<&CaseResult> = s
        .cases
        .iter()
        .filter(|c| c.id.starts_with("lkdtm/"))
        .collect();
    assert_eq!(lkdtm.len(), 14, "{:#?}", s.cases);
    let expected = lkdtm
        .iter()
        .filter(|c| c.outcome == Outcome::ExpectedFail)
        .count();
    assert!(expected >= 13, "{:#?}", lkdtm);
    for c in &lkdtm {
        // A case whose kconfig gate this kernel's config rules out
        // (lkdtm/004 asks for a kernel without KASAN) is not run, with
        // the reason.
        let notrun_with_reason = c.outcome == Outcome::NotRun && !c.reasons.is_empty();
        assert!(
            matches!(c.outcome, Outcome::ExpectedFail | Outcome::Pass) || notrun_with_reason,
            "{}: {:?} {:#?}",
            c.id,
            c.outcome,
            c.reasons
        );
        if c.outcome == Outcome::ExpectedFail {
            assert_eq!(c.raw_outcome, Outcome::Fail, "{}", c.id);
            assert!(!c.reports.is_empty(), "{}: failed by a titled report", c.id);
        }
    }
    check_test_list(&r, s.cases.len());
}
