//! What `cargo xtask fuzz fmap` leaves: each finding minimised, as a
//! scenario and as a case `test-vm --cases DIR/replay` runs; the model's
//! rule coverage; throughput; `report.txt` and `stats.json`.

use super::fuzz_fmap::{case_script, Finding, Request};
use crate::fuzz::protocol::input::Input;
use crate::run::Prepared;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `stats.json`.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub kernel: String,
    pub profile: String,
    pub seed: u64,
    pub secs: f64,
    pub files: u64,
    pub files_per_s: f64,
    /// Every rule and condition the profile can reach, with how many
    /// files reached it (0: not reached).
    pub reached: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    /// Classes of the findings not listed as known on this kernel.
    pub new: Vec<String>,
}

/// A finding of the fmap fuzzer that is known on some kernels
/// (`kernel-configs/fuzz-known.yaml`): the fuzzer still reports it, but
/// its exit status says only what is new.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownFinding {
    /// The finding's class, exactly as the report prints it.
    pub class: String,
    /// Named kernels it is known on.
    pub kernels: Vec<String>,
    pub why: String,
}

/// The known findings of `path` (`kernel-configs/fuzz-known.yaml`).
pub fn load_known(path: &std::path::Path) -> Result<Vec<KnownFinding>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(vec![]);
    }
    crate::base::yaml::parse(path, &text, 0)
}

/// The case a finding is replayed by, and the name it is written under.
fn slug(n: usize, class: &str) -> String {
    let mut s: String = class
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.truncate(48);
    format!("{:03}-{}", n + 1, s.trim_matches('-'))
}

/// Write everything and return the report's text.
pub fn write(
    req: &Request,
    p: &Prepared,
    findings: &BTreeMap<String, Finding>,
    reached: &BTreeMap<String, u64>,
    files: u64,
    took: Duration,
    profile: &famfs_proto::Profile,
) -> Result<(Stats, String)> {
    let kernel = p.kernel.name.clone().unwrap_or_else(|| "kernel".into());
    let replay = req.results.join("replay");
    let _ = std::fs::remove_dir_all(&replay);
    std::fs::create_dir_all(replay.join("fuzz"))?;
    std::fs::copy(
        p.opts.root.join("cases/common.sh"),
        replay.join("common.sh"),
    )?;
    let fdir = req.results.join("findings");
    let _ = std::fs::remove_dir_all(&fdir);
    let known = load_known(&req.known_list(&p.opts.root))?;
    let mut new = Vec::new();
    let secs = took.as_secs_f64();
    let mut text = format!(
        "fmap fuzzer: {kernel} (profile {}), seed {}, {:.0} s: {files} files, {:.2} files/s\n\n",
        profile.name,
        req.seed,
        secs,
        files as f64 / secs.max(0.001)
    );
    let keys = crate::server::oracle::model_keys(profile);
    let all: BTreeMap<String, u64> = keys
        .iter()
        .map(|k| (k.clone(), reached.get(k).copied().unwrap_or(0)))
        .collect();
    let hit = all.values().filter(|n| **n > 0).count();
    text += &format!(
        "model rules and conditions reached: {hit} of {}\n",
        all.len()
    );
    for (k, n) in &all {
        text += &format!("  {n:>7}  {k}\n");
    }
    text += &format!("\nfindings: {}\n", findings.len());
    for (n, f) in findings.values().enumerate() {
        let name = slug(n, &f.class);
        let dir = fdir.join(&name);
        std::fs::create_dir_all(&dir)?;
        let scenario = Input::scenario(&[&f.input], "/dev/dax0.0", &f.class);
        std::fs::write(dir.join("scenario.yaml"), &scenario)?;
        std::fs::write(
            dir.join("input.json"),
            serde_json::to_string_pretty(&f.input)?,
        )?;
        let id = format!("fuzz/{:03}", n + 1);
        let what = format!("fmap fuzzer finding on {kernel}: {}", f.class);
        std::fs::write(replay.join(&id), case_script(&[&f.input], &what, true))?;
        std::fs::write(
            replay.join(format!("{id}.out")),
            "/f0: as a correct kernel\n",
        )?;
        let known = match listed(&known, &kernel, &f.class) {
            Some(k) => format!("known on {kernel}: {}", k.why.trim()),
            None => {
                new.push(f.class.clone());
                format!("NEW: not in kernel-configs/fuzz-known.yaml for {kernel}")
            }
        };
        let state = match (f.minimised, f.alone) {
            (true, true) => format!("minimised in {} steps", f.steps),
            (_, false) => "shows only beside other files: kept as found".into(),
            (false, true) => "minimisation not finished".into(),
        };
        let body = format!(
            "{}\n  kernel: {}\n  model: {}\n  seen {} times, first at {:.0} s; {state}; {known}\n  input: {} records, ops {}\n  replay: cargo xtask test-vm --kernel {kernel} --cases {} {id}\n",
            f.class,
            f.text,
            f.model,
            f.count,
            f.first_s,
            f.input.weight(),
            f.input.ops.join(" "),
            replay.display()
        );
        std::fs::write(dir.join("finding.txt"), &body)?;
        text += &format!("\n{name}: {body}");
    }
    let stats = Stats {
        kernel,
        profile: profile.name.clone(),
        seed: req.seed,
        secs,
        files,
        files_per_s: files as f64 / secs.max(0.001),
        reached: all,
        findings: findings.values().cloned().collect(),
        new,
    };
    std::fs::write(
        req.results.join("stats.json"),
        serde_json::to_string_pretty(&stats)?,
    )?;
    std::fs::write(req.results.join("report.txt"), &text)?;
    Ok((stats, text))
}

/// The entry for `class` on `kernel`, if it is known there.
fn listed<'a>(known: &'a [KnownFinding], kernel: &str, class: &str) -> Option<&'a KnownFinding> {
    known
        .iter()
        .find(|k| k.class == class && k.kernels.iter().any(|n| n == kernel))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_known_findings_load_and_name_named_kernels() {
        let root = crate::image::guest_program::workspace_root();
        let known = super::load_known(&root.join("kernel-configs/fuzz-known.yaml")).unwrap();
        assert!(!known.is_empty());
        for k in &known {
            for n in &k.kernels {
                assert!(
                    root.join(format!("kernel-configs/kernels/{n}.yaml"))
                        .is_file(),
                    "{}: no named kernel {n}",
                    k.class
                );
            }
        }
    }

    #[test]
    fn a_slug_is_a_file_name() {
        assert_eq!(
            super::slug(0, "open ok where a correct kernel refuses: chunk-size-zero"),
            "001-open-ok-where-a-correct-kernel-refuses-chunk-siz"
        );
        assert_eq!(
            super::slug(11, "UBSAN: shift-out-of-bounds in famfs_file_init_dax"),
            "012-ubsan-shift-out-of-bounds-in-famfs-file-init-dax"
        );
    }
}
