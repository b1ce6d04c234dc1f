//! Runs that survive anything, through the real `xtask` binary on the
//! default kernel (built once into the cache, reused): signals, SIGKILL,
//! two runs at once, bad input, exit statuses and the documented options.

mod common;
use common::{text, xtask, xtask_cmd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One VM at a time from this file (the concurrency test starts its two
/// itself): they share the machine's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cases directory with these `(id, script, golden)` cases.
fn scratch_cases(cases: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for (id, script, golden) in cases {
        let p = t.path().join(id);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, script).unwrap();
        std::fs::write(p.with_extension("out"), golden).unwrap();
    }
    t
}

fn case(description: &str, requires: &str, body: &str) -> String {
    format!("# ---\n# description: {description}\n{requires}# timeout: 600\n# ---\n{body}\n")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The one run directory under `results` (panics if there is not one).
fn run_dir(results: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(results.join("runs"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    runs.sort();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.pop().unwrap()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Live processes whose command line mentions `needle` (QEMU's names the
/// boot directory), with their command lines.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat.contains(") Z ") {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(format!("{}: {c}", name.to_string_lossy()));
            }
        }
    }
    out
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn result<'a>(s: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    s["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}: {s:#}"))
}

/// Start a run of a case that sleeps (on an NVDIMM, so a pmem image
/// exists) followed by one that would pass; return once the first started.
fn start_sleeping_run(results: &Path) -> (Child, tempfile::TempDir) {
    let cases = scratch_cases(&[
        (
            "t/001",
            &case(
                "sleeps until interrupted",
                "# requires: { pmem: 32M }\n",
                "echo started\nsleep 600",
            ),
            "started\n",
        ),
        ("t/002", &case("after it", "", "echo two"), "two\n"),
    ]);
    let child = xtask_cmd(&[
        "test-vm",
        "--cases",
        &s(cases.path()),
        "--results",
        &s(results),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for("case t/001 to start", Duration::from_secs(900), || {
        std::fs::read_dir(results.join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|r| {
                std::fs::read_to_string(r.path().join("boots/1/console.log"))
                    .is_ok_and(|c| c.contains("fh: case t/001 start"))
            })
    });
    // Its output reaches the host as it is written.
    std::thread::sleep(Duration::from_secs(2));
    (child, cases)
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

fn assert_nothing_left(results: &Path, boot: &Path) {
    wait_for(
        "every process of the run to exit",
        Duration::from_secs(15),
        || processes_mentioning(&s(results)).is_empty(),
    );
    for f in ["nvdimm0.img", "initramfs.cpio"] {
        wait_for(
            &format!("{f} to be deleted"),
            Duration::from_secs(5),
            || !boot.join(f).exists(),
        );
    }
}

#[test]
fn sigint_and_sigterm_stop_the_vm_keep_the_results_and_exit_128_plus_n() {
    let _g = serial();
    for (sig, code, name) in [
        (rustix::process::Signal::INT, 130, "SIGINT"),
        (rustix::process::Signal::TERM, 143, "SIGTERM"),
    ] {
        let results = tempfile::tempdir().unwrap();
        let (child, _cases) = start_sleeping_run(results.path());
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{name}\n{stdout}\n{stderr}");
        let dir = run_dir(results.path());
        let s = summary(&dir);
        let first = result(&s, "t/001");
        assert_eq!(first["outcome"], "not_run", "{first:#}");
        let why = first["reasons"][0].as_str().unwrap();
        assert!(
            why.starts_with(&format!("interrupted by {name} after")),
            "{why}"
        );
        // What it wrote before the signal is kept.
        assert_eq!(
            std::fs::read_to_string(dir.join("cases/t-001/output")).unwrap(),
            "started\n"
        );
        let second = result(&s, "t/002");
        assert_eq!(second["outcome"], "not_run");
        assert_eq!(
            second["reasons"][0],
            format!("the run was interrupted by {name}")
        );
        let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
        assert!(
            junit.contains("<skipped") && junit.contains("t/002"),
            "{junit}"
        );
        assert!(dir.join("boots/1/console.log").exists());
        // The test list finished its lines and the results are named.
        assert!(
            stdout.contains("test t/001  ... ignored (notrun: interrupted by"),
            "{stdout}"
        );
        assert!(
            stderr.contains(&format!(
                "interrupted by {name}; results so far in {}",
                dir.display()
            )),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_link(results.path().join("latest")).unwrap(),
            Path::new("runs").join(dir.file_name().unwrap())
        );
        assert_nothing_left(results.path(), &dir.join("boots/1"));
    }
}

#[test]
fn a_second_ctrl_c_stops_at_once_and_sigkill_leaves_no_survivor() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let (child, _cases) = start_sleeping_run(results.path());
    signal(&child, rustix::process::Signal::INT);
    signal(&child, rustix::process::Signal::INT);
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(5));
    let dir = run_dir(results.path());
    assert_nothing_left(results.path(), &dir.join("boots/1"));

    // SIGKILL: the harness cannot clean up; its watchdog and the VM's
    // parent-death signal do.
    let results = tempfile::tempdir().unwrap();
    let (mut child, _cases) = start_sleeping_run(results.path());
    let dir = run_dir(results.path());
    assert!(dir.join("boots/1/nvdimm0.img").exists());
    signal(&child, rustix::process::Signal::KILL);
    child.wait().unwrap();
    assert_nothing_left(results.path(), &dir.join("boots/1"));
    // The console log stays for a person to read.
    assert!(dir.join("boots/1/console.log").exists());
}

/// The default kernel's build (cached after the first run): (bzImage,
/// .config, source tree).
fn default_kernel() -> (PathBuf, PathBuf, PathBuf) {
    let out = xtask(&["kernel"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let k: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = |v: &serde_json::Value| PathBuf::from(v.as_str().unwrap());
    (
        p(&k["bzimage"]),
        p(&k["config_path"]),
        p(&k["source"]["path"]),
    )
}

#[test]
fn two_runs_at_once_share_a_fresh_cache_and_a_results_directory() {
    let _g = serial();
    let (bz, config, _) = default_kernel();
    let cache = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let cases = scratch_cases(&[("t/001", &case("prints", "", "echo hi"), "hi\n")]);
    let start = |_: usize| {
        xtask_cmd(&[
            "test-vm",
            "--kernel-image",
            &s(&bz),
            "--kernel-config",
            &s(&config),
            "--cache",
            &s(cache.path()),
            "--cases",
            &s(cases.path()),
            "--results",
            &s(results.path()),
            "--keep",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (start(0), start(1));
    for o in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let runs: Vec<PathBuf> = std::fs::read_dir(results.path().join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 2, "two run directories: {runs:?}");
    for r in &runs {
        assert_eq!(summary(r)["counts"]["passed"], 2, "{}", r.display());
    }
    let latest = std::fs::read_link(results.path().join("latest")).unwrap();
    assert!(runs.iter().any(|r| r.ends_with(&latest)), "{latest:?}");
    // No temporary file was left in the shared cache.
    let mut stack = vec![cache.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.contains(".tmp."), "left behind: {}", e.path().display());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn two_kernel_configurations_of_one_build_directory_take_turns() {
    let _g = serial();
    let (_, _, src) = default_kernel();
    let cache = tempfile::tempdir().unwrap();
    let start = || {
        xtask_cmd(&[
            "kernel",
            "--check",
            "--kernel-src",
            &s(&src),
            "--cache",
            &s(cache.path()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let a = start();
    std::thread::sleep(Duration::from_millis(300));
    let b = start();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let said = format!("{}{}", text(&a.stderr), text(&b.stderr));
    assert!(
        said.contains("waiting for another run (pid")
            && said.contains("holds this kernel build directory"),
        "{said}"
    );
}

#[test]
fn exit_statuses_options_and_retention_through_the_binary() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let cases = scratch_cases(&[
        ("t/001", &case("passes", "# groups: [g1]\n", "echo pass"), "pass\n"),
        (
            "t/002",
            &case("the profile reaches the case", "", "echo \"$FH_PROFILE\""),
            "custom:base=v10,max_extents=8\n",
        ),
        (
            "t/003",
            &case(
                "starts a daemon in a session of its own",
                "",
                "setsid sh -c 'echo $$ > daemon.pid; exec sleep 1000' &\n# Until the daemon is sleep itself (its pid file comes before the exec).\nwhile [ \"$(cat /proc/$(cat daemon.pid 2> /dev/null)/comm 2> /dev/null)\" != sleep ]; do sleep 0.1; done\necho started",
            ),
            "started\n",
        ),
        (
            "t/004",
            &case(
                "finds nothing of the case before",
                "",
                "for p in /proc/[0-9]*; do grep -qx 'sleep' $p/comm 2>/dev/null && echo left $(cat $p/cmdline | tr '\\0' ' '); done; echo checked",
            ),
            "checked\n",
        ),
        (
            "u/001",
            &case("fails", "", "echo wrong"),
            "right\n",
        ),
    ]);
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "test-vm",
            "--cases",
            &s(cases.path()),
            "--results",
            &s(results.path()),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = base(extra);
        xtask(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // 0: everything selected passed; the profile spec reached the guest,
    // and the setsid daemon of t/003 did not outlive it.
    let o = run(&[
        "--profile",
        "custom:base=v10,max_extents=8",
        "t/",
        "--keep",
        "0",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let first = run_dir(results.path());
    let sm = summary(&first);
    assert_eq!(sm["counts"]["passed"], 5, "{sm:#}"); // four cases and boot/1
    let cleanup = std::fs::read_to_string(first.join("cases/t-003/cleanup.txt")).unwrap();
    assert!(
        cleanup.contains("killed processes the case left: sleep["),
        "{cleanup}"
    );

    // 101: a case failed. --keep 1 leaves only this run.
    let o = run(&["--exact", "u/001", "--keep", "1"]);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o.stderr));
    assert!(!first.exists(), "--keep 1 deleted the older run");
    let second = run_dir(results.path());
    assert_eq!(summary(&second)["counts"]["failed"], 1);

    // --list, --exact, --skip, --format: libtest's meaning; nothing boots.
    let list = |extra: &[&str]| {
        let mut a = vec!["--list"];
        a.extend_from_slice(extra);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    assert_eq!(
        list(&[]),
        "t/001: test\nt/002: test\nt/003: test\nt/004: test\nu/001: test\n"
    );
    assert_eq!(list(&["--skip", "t/"]), "u/001: test\n");
    // --partition: the shards of a selection are disjoint and cover it.
    assert_eq!(
        list(&["--partition", "count:1/2"]),
        "t/001: test\nt/003: test\nu/001: test\n"
    );
    assert_eq!(list(&["--partition", "2/2"]), "t/002: test\nt/004: test\n");
    let mut hashed: Vec<String> = (1..=3)
        .flat_map(|k| {
            list(&["--partition", &format!("hash:{k}/3")])
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    hashed.sort();
    assert_eq!(hashed.join("\n") + "\n", list(&[]));
    for bad in ["3/2", "hash:0/2", "1/x", "mod:1/2"] {
        let o = run(&["--list", "--partition", bad]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains(&format!("--partition {bad}: ")) && err.contains("count:K/N"),
            "{err}"
        );
    }
    assert_eq!(list(&["t/001", "u/"]), "t/001: test\nu/001: test\n");
    let o = run(&["--exact", "t/00"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no case matches"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["--format", "json", "--exact", "t/001", "--keep", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let events: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(events
        .iter()
        .any(|e| e["type"] == "test" && e["name"] == "t/001" && e["event"] == "ok"));
    let o = run(&["--format", "terse", "--exact", "t/001", "--keep", "1"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).contains("test result: ok"),
        "{}",
        text(&o.stdout)
    );
    // -q is terse too; --color never leaves no escape sequence; --cpus
    // reaches QEMU; --group selects.
    let o = run(&[
        "-q", "--color", "never", "--cpus", "1", "--group", "g1", "--keep", "1",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        out.contains("test result: ok. 2 passed") && !out.contains('\u{1b}'),
        "{out}"
    );
    let last = run_dir(results.path());
    let cmdline = std::fs::read_to_string(last.join("boots/1/qemu.cmdline")).unwrap();
    assert!(cmdline.contains("-smp 1 "), "{cmdline}");
    assert_eq!(summary(&last)["cases"][0]["id"], "t/001");
}

#[test]
fn repeat_runs_the_selection_over_in_one_boot_and_counts_each_trial() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let cases = scratch_cases(&[
        (
            "t/001",
            &case(
                "fails on its second iteration only",
                "",
                "case \"$FH_CASE_ID\" in *#2) echo second ;; esac\necho ok",
            ),
            "ok\n",
        ),
        ("t/002", &case("always passes", "", "echo ok"), "ok\n"),
    ]);
    let o = xtask(&[
        "test-vm",
        "--cases",
        &s(cases.path()),
        "--results",
        &s(results.path()),
        "--repeat",
        "3",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(
        err.contains("t/001  3 runs: 2 passed, 1 failed (33%)"),
        "{err}"
    );
    assert!(
        err.contains("t/002  3 runs: 3 passed, 0 failed (0%)"),
        "{err}"
    );
    let dir = run_dir(results.path());
    let sum = summary(&dir);
    // Six trials and one boot trial, all in one boot.
    assert_eq!(sum["cases"].as_array().unwrap().len(), 7, "{sum}");
    assert_eq!(sum["boots"].as_array().unwrap().len(), 1, "{sum}");
    assert_eq!(result(&sum, "t/001#2")["outcome"], "fail");
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("repeat.json")).unwrap()).unwrap();
    assert_eq!(rep[0]["failing"], serde_json::json!(["cases/t-001#2"]));
    // The failing iteration's files are kept.
    let out = std::fs::read_to_string(dir.join("cases/t-001#2/output")).unwrap();
    assert_eq!(out, "second\nok\n");
    // --until-fail: one run per iteration until one fails (t/001's second);
    // with --max 1 none fails and the exit status is 0.
    let until = |extra: &[&str]| {
        let mut a = vec!["test-vm", "--exact", "t/001", "--until-fail", "--keep", "0"];
        let (c, r) = (s(cases.path()), s(results.path()));
        a.extend_from_slice(&["--cases", &c, "--results", &r]);
        a.extend_from_slice(extra);
        xtask(&a)
    };
    let o = until(&[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(
        err.contains("--until-fail: stopped after iteration 2 (--max 100)"),
        "{err}"
    );
    assert!(
        err.contains("t/001  2 runs: 1 passed, 1 failed (50%)"),
        "{err}"
    );
    let o = until(&["--max", "1"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("--until-fail: no failure after iteration 1 (--max 1)"),
        "{err}"
    );
    // --repeat 0 is refused before anything runs.
    let o = xtask(&[
        "test-vm",
        "--list",
        "--cases",
        &s(cases.path()),
        "--repeat",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--repeat"), "{}", text(&o.stderr));
}

#[test]
fn a_named_kernel_expunges_cases_with_a_reason() {
    let _g = serial();
    let cases = scratch_cases(&[
        (
            "t/001",
            &case("would hang this kernel", "", "echo ran"),
            "ran\n",
        ),
        ("t/002", &case("runs", "", "echo ran"), "ran\n"),
    ]);
    let results = tempfile::tempdir().unwrap();
    // The default kernel under another name, with an expunge list.
    let k = cases.path().join("mine.yaml");
    std::fs::write(
        &k,
        "description: the default kernel, minus t/001\nfragments: [default]\nexpunge:\n  - case: t/001\n    why: it would hang this kernel\n",
    )
    .unwrap();
    let o = xtask(&[
        "test-vm",
        "--kernel",
        &s(&k),
        "--cases",
        &s(cases.path()),
        "--results",
        &s(results.path()),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let sum = summary(&run_dir(results.path()));
    let r = result(&sum, "t/001");
    assert_eq!(r["outcome"], "not_run", "{sum}");
    let why = r["reasons"][0].as_str().unwrap();
    assert!(
        why.starts_with("expunged on kernel mine: it would hang this kernel (")
            && why.ends_with("mine.yaml:4)"),
        "{why}"
    );
    assert_eq!(result(&sum, "t/002")["outcome"], "pass");
}

/// Cases for regression checks: t/001 passes until `break_first_case`,
/// t/002 fails every time.
fn regression_cases() -> tempfile::TempDir {
    scratch_cases(&[
        (
            "t/001",
            &case("passes, until it is changed", "", "echo ok"),
            "ok\n",
        ),
        (
            "t/002",
            &case("fails every time", "", "echo wrong"),
            "right\n",
        ),
    ])
}

/// Make t/001 of `regression_cases` fail from now on.
fn break_first_case(cases: &tempfile::TempDir) {
    std::fs::write(
        cases.path().join("t/001"),
        case("passes, until it is changed", "", "echo changed"),
    )
    .unwrap();
}

#[test]
fn a_baseline_says_what_changed_and_the_exit_status_whether_it_regressed() {
    let _g = serial();
    let cases = regression_cases();
    let results = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let (c, r) = (s(cases.path()), s(results.path()));
        let mut a = vec!["test-vm", "--keep", "0", "--cases", &c, "--results", &r];
        a.extend_from_slice(extra);
        xtask(&a)
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o.stderr));
    // The same results again: no change, and no regression although t/002
    // still fails.
    let base = s(results.path());
    let o = run(&["--baseline", &base]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("against the baseline (run ") && err.contains("):\nno change\n"),
        "{err}"
    );
    // t/001 now fails: a regression.
    break_first_case(&cases);
    let o = run(&["--baseline", &base]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(err.contains("new failure: t/001\n"), "{err}");
    let latest = results.path().join("latest");
    let changes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("baseline.json")).unwrap())
            .unwrap();
    assert_eq!(changes["new_failures"], serde_json::json!(["t/001"]));
    // The same comparison without running anything: `compare`.
    let runs: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(results.path().join("runs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    };
    let o = xtask(&["compare", &s(&runs[0]), &s(&runs[1])]);
    assert_eq!(
        (o.status.code(), text(&o.stdout)),
        (Some(0), "no change\n".to_string())
    );
    let o = xtask(&["compare", &s(&runs[1]), &s(&runs[2])]);
    assert_eq!(o.status.code(), Some(101));
    assert!(
        text(&o.stdout).contains("new failure: t/001\n"),
        "{}",
        text(&o.stdout)
    );
    // Not a results directory: refused before anything runs.
    let o = run(&["--baseline", &s(cases.path())]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not a results directory"), "{err}");
}

#[test]
fn shards_run_apart_merge_into_one_run() {
    let _g = serial();
    let cases = scratch_cases(&[
        ("t/001", &case("passes", "", "echo ok"), "ok\n"),
        ("t/002", &case("passes", "", "echo ok"), "ok\n"),
        ("t/003", &case("fails", "", "echo wrong"), "right\n"),
    ]);
    let (one, two, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for (k, r) in [("count:1/2", &one), ("count:2/2", &two)] {
        xtask(&[
            "test-vm",
            "--partition",
            k,
            "--cases",
            &s(cases.path()),
            "--results",
            &s(r.path()),
        ]);
    }
    let o = xtask(&[
        "merge",
        "--out",
        &s(out.path()),
        &s(one.path()),
        &s(two.path()),
    ]);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("5 trials from 2 runs: 4 passed, 1 failed"),
        "{}",
        text(&o.stdout)
    );
    let dir = run_dir(out.path());
    let sum = summary(&dir);
    let ids: Vec<&str> = sum["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t/001", "t/003", "boot/1.1", "t/002", "boot/2.1"]);
    // Every trial's files came along, and JUnit has them all.
    let r = result(&sum, "t/003");
    assert!(
        dir.join(r["dir"].as_str().unwrap())
            .join("output")
            .is_file(),
        "{sum}"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("tests=\"5\"") && junit.contains("wrong"),
        "{junit}"
    );
    // Overlapping shards, and a directory that holds no run: refused.
    let o = xtask(&[
        "merge",
        "--out",
        &s(out.path()),
        &s(one.path()),
        &s(one.path()),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("the shards overlap"),
        "{}",
        text(&o.stderr)
    );
    let o = xtask(&["merge", "--out", &s(out.path()), &s(cases.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not a results directory"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn shell_runs_a_command_or_a_person_s_shell_in_a_case_s_environment() {
    let _g = serial();
    // --run: the command's output on stdout, its status as ours, the
    // case's device and parameters in its environment.
    let o = xtask(&[
        "shell",
        "--case",
        "famfs/040[fmap-eio]",
        "--run",
        "echo \"$FH_CASE_ID $FH_PARAM_ERRNO\"; [ -c \"$FH_DAX\" ] && echo device; exit 7",
    ]);
    let out = text(&o.stdout).replace('\r', "");
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    assert!(out.contains("famfs/040[fmap-eio] EIO\ndevice\n"), "{out}");
    // Interactive: a prompt on the terminal, commands typed after it.
    let mut child = xtask_cmd(&["shell"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    use std::io::{Read, Write};
    while !String::from_utf8_lossy(&seen).contains("fh-guest:") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // busybox's line editor asks the terminal where the cursor is right
    // after the prompt; a line typed into that exchange can be lost (seen
    // once on a loaded machine). A person types later than that.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"echo typed $((6 * 7)); exit 5\n").unwrap();
    stdout.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    let seen = String::from_utf8_lossy(&seen).replace('\r', "");
    assert_eq!(status.code(), Some(5), "{seen}");
    assert!(seen.contains("typed 42\n"), "{seen}");
    // A topology by name.
    let o = xtask(&[
        "shell",
        "--topology",
        "memmap:256M",
        "--run",
        "cat /proc/cmdline",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("memmap=256M!4096M"),
        "{}",
        text(&o.stdout)
    );
    let o = xtask(&["shell", "--topology", "pmem", "--run", "true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("topology `pmem`: no topology `pmem` in"),
        "{}",
        text(&o.stderr)
    );
    // No such trial: refused before anything boots.
    let o = xtask(&["shell", "--case", "nope/001", "--run", "true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--case nope/001: no such trial"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_nightly_matrix_runs_its_cells_and_compares_with_the_last_night() {
    let _g = serial();
    let cases = regression_cases();
    let results = tempfile::tempdir().unwrap();
    let matrix = cases.path().join("matrix.yaml");
    std::fs::write(
        &matrix,
        "kernels: [default]\nselections:\n  - {name: one, filters: [t/001]}\n  - {name: all, filters: [t/]}\n",
    )
    .unwrap();
    let night = |extra: &[&str]| {
        let (m, c, r) = (s(&matrix), s(cases.path()), s(results.path()));
        let mut a = vec!["nightly", "--matrix", &m, "--cases", &c, "--results", &r];
        a.extend_from_slice(extra);
        xtask(&a)
    };
    let o = night(&[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o.stderr));
    assert!(
        out.contains(", 2 cells, ") && out.contains("(cells/default.auto.one/runs/"),
        "{out}"
    );
    let latest = results.path().join("nightly/latest");
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("summary.json")).unwrap())
            .unwrap();
    // Boot trials count as trials: t/001 and boot/1; t/001, t/002, boot/1.
    let cell = |i: usize, k: &str| sum["cells"][i][k].as_u64().unwrap();
    assert_eq!((cell(0, "passed"), cell(0, "failed")), (2, 0), "{sum}");
    assert_eq!((cell(1, "passed"), cell(1, "failed")), (2, 1), "{sum}");
    for f in ["summary.json", "summary.md", "index.html"] {
        assert!(latest.join(f).is_file(), "{f}");
    }
    // Each cell's run has its KCIDB report data beside its summary.
    let cell_runs = results.path().join("cells/default.auto.one/runs");
    let run = std::fs::read_dir(&cell_runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let kcidb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("kcidb.json")).unwrap()).unwrap();
    assert_eq!(kcidb["version"]["major"], 5, "{kcidb}");
    assert_eq!(kcidb["tests"].as_array().unwrap().len(), 2, "{kcidb}");
    let page = std::fs::read_to_string(latest.join("index.html")).unwrap();
    assert!(
        page.contains("<tr class=\"fail\">") && page.contains("<tr class=\"pass\">"),
        "{page}"
    );
    // A person opens it in a browser: headless Chromium renders the grid
    // (a failing cell's first column red, a passing one's green).
    let (dom, png) = render_in_chromium(&latest.join("index.html"));
    assert!(
        dom.contains("<tr class=\"fail\"><td>default</td>") && dom.contains("summary</a>"),
        "{dom}"
    );
    let (red, green) = (
        count_pixels(&png, [0xee, 0x88, 0x88]),
        count_pixels(&png, [0x99, 0xdd, 0x99]),
    );
    assert!(red > 100 && green > 100, "red {red}, green {green} pixels");
    // The same again against the last night: no change, exit 0 although
    // t/002 still fails.
    let base = s(results.path());
    let o = night(&["--baseline", &base]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("| no change |"),
        "{}",
        text(&o.stdout)
    );
    // t/001 breaks: both cells regress.
    break_first_case(&cases);
    let o = night(&["--baseline", &base]);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("new failure: t/001"),
        "{}",
        text(&o.stdout)
    );
    // One shard of every cell: count:2/2 leaves t/002 alone in "all", and
    // nothing of "one".
    let o = night(&["--partition", "count:2/2"]);
    assert_eq!(o.status.code(), Some(101), "{}", text(&o.stderr));
    let sum: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.path().join("nightly/latest/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sum["cells"][0]["passed"], 0, "{sum}");
    assert_eq!(
        (
            sum["cells"][1]["failed"].as_u64(),
            sum["cells"][1]["passed"].as_u64()
        ),
        (Some(1), Some(1)),
        "{sum}"
    );
    // A matrix naming an unknown kernel: file and line, nothing run.
    std::fs::write(
        &matrix,
        "kernels: [default]\nselections: [{name: a}]\nbogus: 1\n",
    )
    .unwrap();
    let o = night(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("matrix.yaml:3"),
        "{}",
        text(&o.stderr)
    );
}

/// Open `page` in headless Chromium (installed through the harness's host
/// packages when root on Debian): its DOM after loading, and a screenshot.
fn render_in_chromium(page: &Path) -> (String, Vec<u8>) {
    famfs_harness::base::hostdeps::ensure(
        &[&[famfs_harness::base::hostdeps::Need {
            program: "chromium",
            package: "chromium",
        }]],
        false,
        &mut |_| {},
    )
    .expect("Chromium for the page test");
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("page.png");
    let run = |extra: &[String]| {
        let o = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.canonicalize().unwrap().display()))
            .output()
            .expect("running chromium");
        assert!(o.status.success(), "chromium: {}", text(&o.stderr));
        text(&o.stdout)
    };
    let dom = run(&["--dump-dom".into()]);
    run(&[format!("--screenshot={}", shot.display())]);
    (dom, std::fs::read(&shot).expect("the screenshot"))
}

/// Pixels of exactly this colour in a PNG.
fn count_pixels(png: &[u8], rgb: [u8; 3]) -> usize {
    let mut d = png::Decoder::new(std::io::Cursor::new(png));
    d.set_transformations(png::Transformations::normalize_to_color8());
    let mut r = d.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("screenshot colour type {other:?}"),
    };
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[..3] == rgb)
        .count()
}

#[test]
fn named_topologies_and_the_qemu_through_the_binary() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let r = s(results.path());
    let run = |extra: &[&str]| {
        let mut a = vec!["test-vm", "--results", &r];
        a.extend_from_slice(extra);
        let o = xtask(&a);
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    // Bad names and programs: one error each, before anything is built.
    let (code, _, err) = run(&["--topology", "cxl-volatil", "dax/001"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no topology `cxl-volatil` in") && err.contains("did you mean `cxl-volatile`"),
        "{err}"
    );
    let (code, _, err) = run(&["--qemu", "/nonexistent/qemu", "dax/001"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--qemu /nonexistent/qemu: no such file"),
        "{err}"
    );
    // Two devices on memmap; a case pinned to CXL is not run there.
    let (code, out, err) = run(&[
        "--topology",
        "memmap",
        "--exact",
        "dax/001",
        "dax/003",
        "dax/004",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("test dax/001 ... ok") && out.contains("test dax/004 ... ok"),
        "{out}"
    );
    assert!(
        out.contains("test dax/003 ... ignored (notrun: the case needs cxl pmem (requires.pmem_kind); topology `memmap` has memmap pmem)"),
        "{out}"
    );
    // Volatile CXL: the host's QEMU 7.2 cannot emulate it (not run, with
    // why); bookworm-backports' QEMU can.
    let (code, out, err) = run(&["--exact", "dax/005"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let host_old = out.contains("needs QEMU 8.0 or later; this is QEMU 7.");
    assert!(host_old || out.contains("test dax/005 ... ok"), "{out}");
    let (code, out, err) = run(&[
        "--qemu",
        "backports",
        "--topology",
        "cxl-volatile",
        "--exact",
        "dax/005",
        "dax/001",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("test dax/005 ... ok") && out.contains("test dax/001 ... ok"),
        "{out}{err}"
    );
    let sum = summary(&results.path().join("latest"));
    assert!(
        sum["boots"][0]["topology"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cxl-volatile pmem 256 mib"),
        "{sum}"
    );
}

#[test]
fn famfs_user_space_from_a_tree_a_prefix_and_bad_inputs() {
    let _g = serial();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixture = root.join("../shared/famfs-user");
    assert!(
        fixture.is_dir(),
        "the famfs user-space fixture {} is needed by this test",
        fixture.display()
    );
    let results = tempfile::tempdir().unwrap();
    let r = s(results.path());
    let run = |extra: &[&str]| {
        let mut a = vec!["test-vm", "--kernel", "famfs-v10", "--results", &r];
        a.extend_from_slice(extra);
        let o = xtask(&a);
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    let scratch = tempfile::tempdir().unwrap();
    // Bad inputs: one error each.
    let (code, _, err) = run(&[
        "--famfs-deps",
        &s(&fixture),
        "--famfs-src",
        &s(scratch.path()),
        "famfs-user/003",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("is not a famfs source tree") || err.contains("not a famfs source tree"),
        "{err}"
    );
    std::fs::create_dir_all(scratch.path().join("prefix/bin")).unwrap();
    let (code, _, err) = run(&[
        "--famfs-bin",
        &s(&scratch.path().join("prefix")),
        "famfs-user/003",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no bin/famfs"), "{err}");
    let empty = scratch.path().join("deps");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = run(&["--famfs-deps", &s(&empty), "famfs-user/003"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("an input is missing")
            && err.contains("no famfs in")
            && err.contains("failed-"),
        "{err}"
    );
    // A famfs tree of one's own, built with the fixture's dependencies.
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let archive = std::fs::read_dir(&fixture)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().contains("+famfs-"))
        .expect("the famfs archive");
    let st = Command::new("tar")
        .args([
            "-xzf",
            &s(&archive),
            "--strip-components=1",
            "-C",
            &s(&tree),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // A tree of its own each run (a file no other tree has): built here,
    // whatever the cache holds from earlier runs.
    std::fs::write(tree.join("harness-test-stamp"), s(&tree)).unwrap();
    let (code, out, err) = run(&[
        "--famfs-deps",
        &s(&fixture),
        "--famfs-src",
        &s(&tree),
        "famfs-user/003",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("test famfs-user/003 ... ok"), "{out}");
    assert!(err.contains("famfs unit tests: 29 tests"), "{err}");
    // The same again: nothing is built.
    let (code, out, err) = run(&[
        "--famfs-deps",
        &s(&fixture),
        "--famfs-src",
        &s(&tree),
        "famfs-user/003",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("famfs user space: cached build"), "{err}");
    // That build's prefix, given as one.
    let prefix = err
        .lines()
        .find_map(|l| l.split("famfs user space: cached build ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let (code, out, err) = run(&["--famfs-bin", &prefix, "famfs-user/003"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("test famfs-user/003 ... ok"), "{out}");
}

#[test]
fn bisect_finds_the_planted_bad_commit() {
    let _g = serial();
    // A cases repository: t/001 passes in the first three commits, the
    // fourth breaks it, the fifth changes something else.
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .arg("-C")
            .arg(r)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    let write_case = |body: &str, note: &str| {
        std::fs::create_dir_all(r.join("cases/t")).unwrap();
        std::fs::write(
            r.join("cases/t/001"),
            case(&format!("a fixture that changes ({note})"), "", body),
        )
        .unwrap();
        std::fs::write(r.join("cases/t/001.out"), "ok\n").unwrap();
        std::fs::write(r.join("cases/common.sh"), "").unwrap();
    };
    let mut ids = Vec::new();
    for (i, body) in [
        "echo ok",
        "echo ok",
        "echo ok",
        "echo broken",
        "echo broken",
    ]
    .iter()
    .enumerate()
    {
        write_case(body, &format!("commit {}", i + 1));
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", &format!("commit {}", i + 1)]);
        ids.push(git(&["rev-parse", "HEAD"]));
    }
    let o = xtask(&[
        "bisect",
        "--cases-git",
        &s(r),
        "--good",
        &ids[0],
        "--bad",
        &ids[4],
        "t/001",
    ]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.contains(&format!("\nfirst bad commit: {} commit 4\n", ids[3])),
        "{out}\n{err}"
    );
    assert!(
        err.contains("bisect step 1: ") && err.contains("-> bad (failed)"),
        "{err}"
    );
    // Refs that are not commits, and a good end after the bad one.
    let o = xtask(&[
        "bisect",
        "--cases-git",
        &s(r),
        "--good",
        "nope",
        "--bad",
        &ids[4],
        "t/001",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("nope: not a commit"),
        "{}",
        text(&o.stderr)
    );
    let o = xtask(&[
        "bisect",
        "--cases-git",
        &s(r),
        "--good",
        &ids[4],
        "--bad",
        &ids[0],
        "t/001",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("is not an ancestor of"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn ignored_means_the_explicit_group() {
    let cases = scratch_cases(&[
        ("t/001", &case("usual", "", "true"), ""),
        (
            "t/002",
            &case("crashes on purpose", "# groups: [explicit]\n", "true"),
            "",
        ),
    ]);
    let list = |extra: &[&str]| {
        let mut a = vec!["test-vm", "--list", "--cases"];
        let c = s(cases.path());
        a.push(&c);
        a.extend_from_slice(extra);
        let o = xtask(&a);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    assert_eq!(list(&[]), "t/001: test\n");
    assert_eq!(list(&["--ignored"]), "t/002: test\n");
    assert_eq!(list(&["--include-ignored"]), "t/001: test\nt/002: test\n");
    assert_eq!(list(&["t/002"]), "t/002: test\n");
}

#[test]
fn a_boot_that_never_reaches_the_runner_is_a_harness_error() {
    let _g = serial();
    let (bz, config, _) = default_kernel();
    let t = tempfile::tempdir().unwrap();
    // A real bzImage cut after its setup code: the header checks pass,
    // the kernel cannot start.
    let data = std::fs::read(&bz).unwrap();
    let setup = (usize::from(data[0x1f1].max(4)) + 1) * 512;
    let cut = t.path().join("bzImage");
    std::fs::write(&cut, &data[..setup + 4096]).unwrap();
    let cases = scratch_cases(&[("t/001", &case("passes", "", "echo pass"), "pass\n")]);
    let results = t.path().join("results");
    let o = xtask(&[
        "test-vm",
        "--kernel-image",
        &s(&cut),
        "--kernel-config",
        &s(&config),
        "--cases",
        &s(cases.path()),
        "--results",
        &s(&results),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("boot failed twice before the guest runner started"),
        "{err}"
    );
    let dir = run_dir(&results);
    assert_eq!(summary(&dir)["counts"]["errors"], 1);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<error") && !junit.contains("<failure"),
        "{junit}"
    );
    // A crashed boot keeps its logs, not its 18 MB initramfs.
    for b in ["boots/1", "boots/2"] {
        assert!(dir.join(b).join("console.log").exists());
        assert!(dir.join(b).join("plan.json").exists());
        assert!(!dir.join(b).join("initramfs.cpio").exists());
    }
}

#[test]
fn bad_input_is_one_clear_error_before_anything_boots() {
    let _g = serial();
    let t = tempfile::tempdir().unwrap();
    let junk = t.path().join("bzImage");
    std::fs::write(&junk, vec![0u8; 8192]).unwrap();
    std::fs::write(t.path().join(".config"), "CONFIG_FUSE_FS=y\n").unwrap();
    let header = |extra: &str| format!("# ---\n# description: d\n{extra}# ---\ntrue\n");
    let bad_case = |name: &str, text: String| {
        let c = scratch_cases(&[("t/001", &text, "")]);
        (name.to_string(), c)
    };
    let case_dirs = [
        bad_case("timeout", header("# timeout: 5s\n")),
        bad_case("expect", header("# expect: { fail: WARNNG }\n")),
        bad_case(
            "description",
            "# ---\n# description: ''\n# ---\ntrue\n".to_string(),
        ),
        bad_case("kconfig", header("# requires: { kconfig: [DEV_DAXX] }\n")),
        bad_case("bracket", header("# groups: [a, b\n# timeout: 5\n")),
    ];
    let want = [
        ("timeout", "t/001:3:", "seconds, a whole number"),
        ("expect", "t/001:3: expect.fail", "did you mean `WARNING`"),
        ("description", "t/001:2: description is empty", ""),
        (
            "kconfig",
            "t/001:3: requires.kconfig: CONFIG_DEV_DAXX",
            "did you mean CONFIG_DEV_DAX?",
        ),
        (
            "bracket",
            "t/001:3:9: this `[` is never closed",
            "at line 4",
        ),
    ];
    for ((name, dir), (n2, at, hint)) in case_dirs.iter().zip(want) {
        assert_eq!(name, n2);
        let o = xtask(&["test-vm", "--cases", &s(dir.path())]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(at) && err.contains(hint), "{name}: {err}");
        assert!(!err.contains("boot 1"), "{name}: nothing boots: {err}");
    }
    let cli: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--kernel-image".into(), s(&junk)],
            "is not an x86 bzImage",
        ),
        (vec!["--cpus".into(), "0".into()], "0 is not in 1..=64"),
        (vec!["--cpus".into(), "65".into()], "65 is not in 1..=64"),
        (
            vec!["--profile".into(), "custom:bogus=1".into()],
            "unknown key 'bogus'",
        ),
        (
            vec!["--fragments".into(), "x.frag".into()],
            "a fragment is a name from",
        ),
        (
            vec!["--cases".into(), s(&t.path().join("nope"))],
            "not a directory",
        ),
    ];
    for (args, msg) in cli {
        let mut a = vec!["test-vm".to_string()];
        a.extend(args.clone());
        let o = xtask(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // Files that are not cases are named, with the rule, and skipped.
    let c = scratch_cases(&[("t/001", &header(""), "")]);
    std::fs::write(c.path().join("t/01"), header("")).unwrap();
    std::fs::write(c.path().join("t/002.sh"), header("")).unwrap();
    let o = xtask(&["test-vm", "--list", "--cases", &s(c.path())]);
    let err = text(&o.stderr);
    assert_eq!(text(&o.stdout), "t/001: test\n");
    for f in ["t/01", "t/002.sh"] {
        assert!(
            err.contains(&format!(
                "{}: not a case and ignored: case files are named by three or more digits",
                c.path().join(f).display()
            )),
            "{err}"
        );
    }
}

/// `--jobs`: boot groups (here two machines: memmap and NVDIMM) run in VMs
/// at once with -j 2 and one after the other with -j 1, with the same
/// results in the same order; `bench suite` splits a run's time and
/// compares it with the last measurement of the same selection.
#[test]
fn jobs_run_boot_groups_at_once_and_bench_suite_splits_the_time() {
    let _g = serial();
    let sleepy = |pmem: &str| {
        case(
            "sleeps 4 s",
            &format!("# requires: {{ pmem: {pmem} }}\n"),
            ". \"$FH_COMMON\"\n_require_dax\n_sleep 4\necho slept",
        )
    };
    let cases = scratch_cases(&[
        ("t/001", &sleepy("64M, pmem_kind: memmap"), "slept\n"),
        ("t/002", &sleepy("32M"), "slept\n"),
    ]);
    std::fs::copy(
        famfs_harness::image::guest_program::workspace_root().join("cases/common.sh"),
        cases.path().join("common.sh"),
    )
    .unwrap();
    let run = |jobs: &str| {
        let results = tempfile::tempdir().unwrap();
        let o = xtask(&[
            "test-vm",
            "--cases",
            &s(cases.path()),
            "--results",
            &s(results.path()),
            "--jobs",
            jobs,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let sm = summary(&run_dir(results.path()));
        let ids: Vec<String> = sm["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{}={}", c["id"], c["outcome"]))
            .collect();
        let boots: u64 = sm["boots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["duration_ms"].as_u64().unwrap())
            .sum();
        let wait = result(&sm, "t/001")["phases"]["wait"].as_u64().unwrap_or(0);
        (ids, sm["duration_ms"].as_u64().unwrap(), boots, wait)
    };
    let (one, run1, boots1, wait) = run("1");
    assert!(
        (3900..6000).contains(&wait),
        "the case's _sleep 4 is its wait phase: {wait} ms"
    );
    let (two, run2, boots2, _) = run("2");
    assert_eq!(one, two, "the same results in the same order");
    assert!(
        run1 >= boots1,
        "-j 1: one boot after the other ({run1} ms, boots {boots1} ms)"
    );
    assert!(
        (run2 as f64) < boots2 as f64 * 0.8,
        "-j 2: the two boots overlap ({run2} ms, boots {boots2} ms)"
    );

    let keep = famfs_harness::image::guest_program::workspace_root()
        .join("target/famfs-harness/bench-suite/last-default-selftest.json");
    let _ = std::fs::remove_file(&keep);
    let bench = || {
        let o = xtask(&["bench", "suite", "--kernel", "default", "-g", "selftest"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let first = bench();
    for want in [
        "suite benchmark: kernel default, groups selftest, 3 trials",
        "group        trials    total     boot    ready    setup   daemon",
        "selftest          3",
        "run time ",
        "no earlier measurement of this selection",
    ] {
        assert!(first.contains(want), "{want:?} in\n{first}");
    }
    assert!(keep.exists(), "the measurement is kept");
    let dir = first
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .and_then(|l| l.split(" (").next())
        .expect("the results line");
    let per_trial = std::fs::read_to_string(Path::new(dir).join("timing.txt")).unwrap();
    assert_eq!(
        per_trial.lines().count(),
        3,
        "a line per trial: {per_trial}"
    );
    assert!(per_trial.contains("selftest/002"), "{per_trial}");
    let second = bench();
    assert!(
        second.contains("change against the last measurement") && second.contains("  selftest "),
        "{second}"
    );
    assert!(
        !second.contains("outcome of"),
        "the same outcomes: {second}"
    );
}
