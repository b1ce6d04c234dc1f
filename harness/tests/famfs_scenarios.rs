//! Every scenario the famfs cases serve, checked on the host: each entry of
//! a parametrised famfs case writes its scenario (`FH_SCENARIO_ONLY=1` stops
//! the script there), which must resolve, and the kernel model must give
//! the expectation the case will compare with: valid shapes open, every
//! fault entry has a reason.

use famfs_harness::plan::case::Case;
use famfs_harness::server::expect::{open_expectation, served_fmap};
use famfs_harness::server::scenario::Config;
use std::path::Path;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases")
}

/// Write the scenario of one trial into a scratch directory.
fn scenario_of(c: &Case) -> (tempfile::TempDir, std::path::PathBuf) {
    let script = std::fs::read_to_string(root().join(&c.script)).unwrap();
    assert!(
        script.contains("[ -n \"$FH_SCENARIO_ONLY\" ] && exit 0"),
        "{}: must stop at FH_SCENARIO_ONLY before it touches anything",
        c.script
    );
    let t = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("sh")
        .arg(root().join(&c.script))
        .current_dir(t.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("FH_SCENARIO_ONLY", "1")
        .env("FH_COMMON", root().join("common.sh"))
        .env("FH_DAX", "/dev/dax0.0")
        .envs(c.param_env())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "{}: the script failed writing its scenario",
        c.id
    );
    let p = t.path().join("scenario.yaml");
    assert!(p.exists(), "{}: no scenario.yaml", c.id);
    (t, p)
}

#[test]
fn every_famfs_fmap_entry_has_a_scenario_and_an_expectation() {
    let cases: Vec<Case> = famfs_harness::plan::case::discover(&root())
        .unwrap()
        .into_iter()
        .filter(|c| c.in_group("famfs-fmap") && c.param.is_some())
        .collect();
    assert!(cases.len() >= 30, "{} famfs-fmap trials", cases.len());
    // What a correct kernel of each generation does with the entries
    // whose answer differs between them (the rest print their verdict).
    let next_wants: &[(&str, &str)] = &[
        ("fmap-size-bigger", "ok"),
        ("fmap-size-smaller", "ok"),
        ("fmap-size-0", "ok"),
        ("fmap-size-16m", "ok"),
        ("fmap-size-over-16m", "EFBIG"),
        ("fmap-size-grows", "EINVAL"),
        ("fmap-size-grows-over-16m", "EFBIG"),
        ("retry-reply-short", "EIO"),
        ("header-only-fits", "EINVAL"),
        ("empty-reply", "EIO"),
        ("short-payload", "EIO"),
        ("1-strip", "EINVAL"),
        ("nextents-33", "EINVAL"),
    ];
    let mut seen_next = 0;
    for c in &cases {
        let p = c.param.as_ref().expect("famfs-fmap cases are parametrised");
        let (_t, file) = scenario_of(c);
        if p.vars.contains_key("want") {
            Config::load(&file, Some("v10")).unwrap_or_else(|e| panic!("{}: {e:#}", c.id));
            continue;
        }
        let shape = p.vars.get("shape").map(String::as_str).unwrap_or("simple1");
        let long = shape.starts_with("uniform") || shape.starts_with("mixed");
        let faulted = p.vars.contains_key("fault") || p.vars.contains_key("faults");
        for profile in ["v10", "next"] {
            let cfg =
                Config::load(&file, Some(profile)).unwrap_or_else(|e| panic!("{}: {e:#}", c.id));
            let e = open_expectation(cfg, "/f").unwrap_or_else(|e| panic!("{}: {e:#}", c.id));
            assert!(!e.why.is_empty());
            let fits = match profile {
                "v10" => !long,
                _ => !shape.starts_with("stripes") && shape != "largest",
            };
            if !faulted && fits {
                assert_eq!(
                    e.token(),
                    "ok",
                    "{} ({profile}): a valid shape must open: {}",
                    c.id,
                    e.why
                );
            } else if let Some((_, want)) = next_wants.iter().find(|(n, _)| *n == p.name) {
                if profile == "next" {
                    assert_eq!(e.token(), *want, "{} (next): {}", c.id, e.why);
                    seen_next += 1;
                }
            } else {
                eprintln!("{} ({profile}): {} ({})", c.id, e.token(), e.why);
            }
            // V10 leaves the word reserved: any fmap_size is accepted.
            if profile == "v10" && p.name.starts_with("fmap-size") {
                assert_eq!(e.token(), "ok", "{} (v10): {}", c.id, e.why);
            }
        }
        if p.name == "largest-reply" {
            let cfg = Config::load(&file, Some("v10")).unwrap();
            let f = served_fmap(cfg, "/f").unwrap().unwrap();
            // The most records V10's 4096-byte buffer holds.
            assert!(
                f.encoded_len() <= 4096 && f.encoded_len() + 24 > 4096,
                "{}",
                f.encoded_len()
            );
        }
        if p.name == "100000-extents" {
            let cfg = Config::load(&file, Some("next")).unwrap();
            let f = served_fmap(cfg, "/f").unwrap().unwrap();
            assert_eq!(f.nextents(), 100_000);
        }
    }
    assert_eq!(seen_next, next_wants.len(), "every listed entry exists");
}

#[test]
fn every_famfs_cap_entry_has_a_scenario() {
    let cases: Vec<Case> = famfs_harness::plan::case::discover(&root())
        .unwrap()
        .into_iter()
        // Only the parametrised cases stop at FH_SCENARIO_ONLY; never run
        // another case's script on the host.
        .filter(|c| c.in_group("famfs-cap") && c.param.is_some())
        .collect();
    assert!(cases.len() >= 10, "{} famfs-cap trials", cases.len());
    for c in &cases {
        let (_t, file) = scenario_of(c);
        let p = c.param.as_ref().unwrap();
        let profile = p.vars.get("server_profile").map(String::as_str);
        Config::load(&file, profile).unwrap_or_else(|e| panic!("{}: {e:#}", c.id));
    }
}

#[test]
fn every_famfs_mmap_and_err_entry_has_a_scenario() {
    let cases: Vec<Case> = famfs_harness::plan::case::discover(&root())
        .unwrap()
        .into_iter()
        .filter(|c| c.in_group("famfs-mmap") || c.in_group("famfs-err"))
        .collect();
    assert!(cases.len() >= 14, "{} famfs-mmap/err trials", cases.len());
    for c in &cases {
        let (_t, file) = scenario_of(c);
        let profile = if c.in_group("famfs-push") {
            "next"
        } else {
            "v10"
        };
        let cfg = Config::load(&file, Some(profile)).unwrap_or_else(|e| panic!("{}: {e:#}", c.id));
        // Every file these cases read must open on a correct kernel: the
        // errors they test come from faults on /f, not from bad fmaps.
        let paths: &[&str] = if c.in_group("famfs-mmap") {
            &["/f", "/g", "/eof"]
        } else if c.in_group("famfs-push") {
            // Push faults change the device, never the fmaps.
            &["/f", "/g", "/trigger"]
        } else if cfg.nodes.iter().any(|n| n.path == "/good") {
            &["/good"]
        } else {
            // A case with one file (famfs/043): its failures are the
            // device's, so that file must open.
            &["/f"]
        };
        for path in paths {
            let e = open_expectation(cfg.clone(), path)
                .unwrap_or_else(|e| panic!("{} {path}: {e:#}", c.id));
            assert_eq!(e.token(), "ok", "{} {path}: {}", c.id, e.why);
        }
    }
}
