//! `cargo xtask merge`: the runs of a partitioned selection (`--partition
//! K/N` on N machines) combined into one run directory with one
//! summary.json and junit.xml, as if one machine had run them all. Each
//! shard's directory is copied under `shards/I/`, so every trial keeps its
//! files; boot trials are renamed `boot/I.N` (shard I's boot N).

use super::results::{RunDir, Summary};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Merge the runs in `shards` (run directories, or results directories
/// whose `latest` is meant) into a new run under `out`; returns its
/// directory and summary.
pub fn merge(shards: &[std::path::PathBuf], out: &Path) -> Result<(RunDir, Summary)> {
    if shards.is_empty() {
        bail!("merge: name the shards' run directories");
    }
    let mut loaded = Vec::new();
    for d in shards {
        let s = super::baseline::load(d).map_err(|e| {
            anyhow::anyhow!("{}", e.to_string().replacen("--baseline", "merge:", 1))
        })?;
        let root = if d.join("summary.json").is_file() {
            d.clone()
        } else {
            d.join("latest")
                .canonicalize()
                .with_context(|| format!("{}/latest", d.display()))?
        };
        loaded.push((root, s));
    }
    let first = &loaded[0].1;
    for (root, s) in &loaded[1..] {
        if s.kernel.get("key") != first.kernel.get("key") || s.profile != first.profile {
            bail!(
                "merge: {} ran another kernel or profile than {} (kernel {} vs {}, profile {} vs {}): shards of one run share both",
                root.display(),
                loaded[0].0.display(),
                s.kernel.get("release").unwrap_or(&serde_json::Value::Null),
                first.kernel.get("release").unwrap_or(&serde_json::Value::Null),
                s.profile,
                first.profile
            );
        }
    }
    // Every trial in one shard only: checked before anything is written.
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    for (i, (root, s)) in loaded.iter().enumerate() {
        for r in s.cases.iter().filter(|r| !r.id.starts_with("boot/")) {
            if let Some(other) = seen.insert(r.id.as_str(), i + 1) {
                bail!(
                    "merge: trial {} is in shard {other} ({}) and shard {} ({}): the shards overlap",
                    r.id,
                    loaded[other - 1].0.display(),
                    i + 1,
                    root.display()
                );
            }
        }
    }
    let dir = RunDir::create(out, &super::results::run_id())?;
    let mut merged = Summary {
        run_id: dir
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel: first.kernel.clone(),
        backend: first.backend,
        accel: first.accel,
        profile: first.profile.clone(),
        boots: vec![],
        cases: vec![],
        counts: Default::default(),
        duration_ms: 0,
    };
    for (i, (root, s)) in loaded.iter().enumerate() {
        let shard = i + 1;
        let to = dir.root.join("shards").join(shard.to_string());
        copy_tree(root, &to)?;
        for mut r in s.cases.clone() {
            if let Some(n) = r.id.strip_prefix("boot/") {
                r.id = format!("boot/{shard}.{n}");
            }
            r.dir = format!("shards/{shard}/{}", r.dir);
            merged.cases.push(r);
        }
        merged.boots.extend(s.boots.iter().cloned());
        merged.duration_ms = merged.duration_ms.max(s.duration_ms);
    }
    merged.count();
    dir.write_summary(&merged)?;
    dir.mark_latest()?;
    Ok((dir, merged))
}

/// Copy a directory tree (files and directories; links as links).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type()?;
        if t.is_dir() {
            copy_tree(&src, &dst)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if e.file_name() != ".lock" {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}
