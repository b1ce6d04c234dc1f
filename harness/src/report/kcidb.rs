//! A run as KernelCI's KCIDB report data (schema 5.3), ready for
//! `kci-dev submit`: the kernel's source as the checkout, its build, a test
//! per trial, and each known defect the run met as an issue with its
//! incidents, so a known failure is told apart from a new one.
//!
//! KCIDB test paths are dot-separated names of `[a-zA-Z0-9_-]`:
//! `famfs/010[one-pmd]` becomes `famfs.famfs.010.one-pmd`.

use super::results::{CaseResult, Summary};
use crate::judge::verdict::Outcome;
use anyhow::{bail, Result};
use serde_json::{json, Value};
use sha2::Digest;
use std::path::Path;

/// The schema version written.
pub const VERSION: (u32, u32) = (5, 3);

/// A KCIDB path segment: what is not `[a-zA-Z0-9_-]` becomes `_`.
fn segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `famfs.<group>.<case>[.<param>]` for trial `group/NNN[param]` (and its
/// `#N` iteration, if any).
pub fn test_path(id: &str) -> String {
    let (base, param) = match id.split_once('[') {
        Some((b, rest)) => (
            b,
            Some(rest.trim_end_matches(|c| c != ']').trim_end_matches(']')),
        ),
        None => (id, None),
    };
    let mut parts: Vec<String> = vec!["famfs".into()];
    parts.extend(base.split('/').map(segment));
    if let Some(p) = param {
        parts.push(segment(p));
    }
    if let Some((_, n)) = id.rsplit_once('#') {
        parts.push(format!("iteration-{}", segment(n)));
    }
    parts.join(".")
}

/// KCIDB's status for an outcome. A known failure is a FAIL: the code is
/// faulty; its incident says the fault is known.
pub fn status(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass | Outcome::ExpectedFail => "PASS",
        Outcome::Fail | Outcome::KnownFail => "FAIL",
        Outcome::NotRun => "SKIP",
        // The VM never reached the runner: the harness failed, not the test.
        Outcome::Error => "MISS",
    }
}

fn short_sha(s: &str) -> String {
    crate::base::hex(&sha2::Sha256::digest(s.as_bytes()))[..16].to_string()
}

/// A `file://` URL of an absolute path, percent-encoded (trial
/// directories have brackets).
fn file_url(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut s = String::from("file://");
    for b in abs.display().to_string().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s += &format!("%{b:02X}");
        }
    }
    s
}

/// What a person reads first: the report titles and the reasons, then the
/// first report's lines, within KCIDB's 16 KiB.
fn excerpt(r: &CaseResult) -> String {
    let mut s = String::new();
    for k in &r.reports {
        s += &format!("{}\n", k.title);
    }
    for why in &r.reasons {
        s += &format!("{why}\n");
    }
    if let Some(k) = r.reports.first() {
        for l in &k.text {
            s += &format!("{l}\n");
        }
    }
    let s = s.replace('\0', "");
    let mut cut = s.len().min(16_000);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_string()
}

/// The checkout and build of `kernel` (summary.json's `kernel`).
fn checkout_and_build(origin: &str, kernel: &Value) -> (Value, Value) {
    let src = &kernel["source"];
    let str_of = |v: &Value| v.as_str().map(String::from);
    let key = format!(
        "{}\n{}",
        str_of(&src["content_hash"]).unwrap_or_default(),
        str_of(&kernel["bzimage"]).unwrap_or_default()
    );
    let checkout_id = format!("{origin}:checkout-{}", short_sha(&key));
    let mut checkout = json!({
        "id": checkout_id,
        "origin": origin,
        "tree_name": str_of(&src["package"]).or(str_of(&src["describe"])).or(str_of(&src["kind"])).unwrap_or_else(|| "prebuilt".into()),
        "valid": true,
        "misc": {"version": src["version"], "kernel_name": kernel["name"]},
    });
    if let Some(c) = str_of(&src["commit"]).filter(|c| c.len() == 40) {
        checkout["git_commit_hash"] = json!(c);
    }
    let patches: Vec<Value> = src["patches"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let path = Path::new(p["path"].as_str()?);
            Some(json!({"name": path.file_name()?.to_str()?, "url": file_url(path)}))
        })
        .collect();
    if !patches.is_empty() {
        checkout["patchset_files"] = json!(patches);
    }
    let build_id = format!("{origin}:build-{}", short_sha(&format!("{key}\nbuild")));
    let mut build = json!({
        "id": build_id,
        "checkout_id": checkout_id,
        "origin": origin,
        "architecture": "x86_64",
        "status": "PASS",
        "misc": {"release": kernel["release"], "fragments": kernel["fragments"]},
    });
    if let Some(f) = kernel["fragments"].as_array() {
        let names: Vec<&str> = f.iter().filter_map(Value::as_str).collect();
        build["config_name"] = json!(names.join("+"));
    }
    if let Some(c) = str_of(&kernel["config_path"]) {
        build["config_url"] = json!(file_url(Path::new(&c)));
    }
    if let Some(l) = str_of(&kernel["build_log"]) {
        build["log_url"] = json!(file_url(Path::new(&l)));
    }
    (checkout, build)
}

/// The run in `run_dir` as KCIDB report data from `origin`.
pub fn export(run_dir: &Path, origin: &str) -> Result<Value> {
    if origin.is_empty()
        || !origin
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("--origin {origin}: KCIDB origins are lower-case letters, digits and _ (e.g. famfs_harness)");
    }
    let s = Summary::read(run_dir)?;
    let (checkout, build) = checkout_and_build(origin, &s.kernel);
    let build_id = build["id"].clone();
    let mut tests = Vec::new();
    let (mut issues, mut incidents) = (Vec::new(), Vec::new());
    for r in &s.cases {
        let test_id = format!("{origin}:{}:{}", s.run_id, r.id);
        let mut t = json!({
            "id": test_id,
            "build_id": build_id,
            "origin": origin,
            "path": test_path(&r.id),
            "status": status(&r.outcome),
            "duration": r.duration_ms as f64 / 1000.0,
            "log_url": file_url(&run_dir.join(&r.dir).join("output")),
            "environment": {"comment": format!("QEMU {:?}, {:?}", s.backend, s.accel), "misc": {"profile": s.profile}},
            "misc": {"trial": r.id, "outcome": r.outcome, "known_failure": r.outcome == Outcome::KnownFail},
        });
        let text = excerpt(r);
        if !text.is_empty() {
            t["log_excerpt"] = json!(text);
        }
        if let Some(k) = r.reports.first() {
            t["comment"] = json!(k.title);
        }
        if r.outcome == Outcome::KnownFail {
            let subject = r.reasons.first().cloned().unwrap_or_default();
            let kernel = s.kernel["name"].as_str().unwrap_or("kernel");
            let issue_id = format!(
                "{origin}:known-{}",
                short_sha(&format!("{kernel}\n{}", r.id))
            );
            issues.push(json!({
                "id": issue_id, "version": 1, "origin": origin,
                "report_subject": subject,
                "culprit": {"code": true},
                "comment": format!("a known defect of {kernel}, listed in its kernel file"),
            }));
            incidents.push(json!({
                "id": format!("{issue_id}:{}", s.run_id), "origin": origin,
                "issue_id": issue_id, "issue_version": 1,
                "test_id": test_id, "present": true,
            }));
        }
        tests.push(t);
    }
    Ok(json!({
        "version": {"major": VERSION.0, "minor": VERSION.1},
        "checkouts": [checkout],
        "builds": [build],
        "tests": tests,
        "issues": issues,
        "incidents": incidents,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_names_become_kcidb_paths_and_outcomes_statuses() {
        assert_eq!(test_path("famfs/010[one-pmd]"), "famfs.famfs.010.one-pmd");
        assert_eq!(test_path("fuse/001"), "famfs.fuse.001");
        assert_eq!(test_path("boot/1"), "famfs.boot.1");
        assert_eq!(
            test_path("famfs/010[a b]#3"),
            "famfs.famfs.010.a_b.iteration-3"
        );
        let re = regex::Regex::new(r"^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$").unwrap();
        for id in ["famfs/040[fmap-eio]", "dax/005", "x/1[p.q]#2"] {
            assert!(re.is_match(&test_path(id)), "{}", test_path(id));
        }
        assert_eq!(
            file_url(Path::new("/r/cases/famfs-010[a b]/output")),
            "file:///r/cases/famfs-010%5Ba%20b%5D/output"
        );
        assert_eq!(status(&Outcome::KnownFail), "FAIL");
        assert_eq!(status(&Outcome::NotRun), "SKIP");
        assert_eq!(status(&Outcome::Error), "MISS");
        assert!(export(Path::new("/nonexistent"), "Bad-Origin")
            .unwrap_err()
            .to_string()
            .contains("lower-case letters"));
    }
}
