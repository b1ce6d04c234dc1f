//! The closing not-run table: the trials a run did not run, grouped by
//! cause, each cause with the command that would run them on this machine
//! (a famfs kernel, a fragment, another QEMU). A newcomer's first run on
//! Debian's kernel ends here: it says what was not tested and how to test
//! it.

use super::results::Summary;
use crate::judge::verdict::Outcome;
use std::collections::BTreeMap;
use std::path::Path;

/// One cause and its trials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub trials: Vec<String>,
    /// What runs them here, when something can.
    pub command: Option<String>,
}

/// The famfs kernels a famfs trial can run on here: the named kernels of
/// both generations whose fixture is present.
fn famfs_kernels(root: &Path) -> Vec<String> {
    ["famfs-v10", "famfs-next"]
        .into_iter()
        .filter(|n| {
            crate::kernel::named::load(root, n)
                .and_then(|k| k.check_available())
                .is_ok()
        })
        .map(String::from)
        .collect()
}

/// The fragment of `root`'s kernel-configs/ that sets `sym`, if one does.
fn fragment_setting(root: &Path, sym: &str) -> Option<String> {
    let dir = root.join("kernel-configs");
    let mut frags: Vec<_> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "config"))
        .collect();
    frags.sort();
    frags.into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let set = text.lines().any(|l| {
            l.trim() == format!("CONFIG_{sym}=y") || l.trim() == format!("CONFIG_{sym}=m")
        });
        set.then(|| p.file_stem()?.to_str().map(String::from))?
    })
}

/// The command that runs trials not run for `reason`, on this machine.
pub fn command_for(reason: &str, root: &Path) -> Option<String> {
    let famfs = reason.starts_with("this kernel has no famfs")
        || reason.contains("built without famfs")
        || reason.contains("CONFIG_FUSE_FAMFS_DAX");
    if famfs {
        let named: Vec<String> = famfs_kernels(root)
            .iter()
            .map(|k| format!("cargo xtask test-vm --kernel {k}"))
            .collect();
        let own = "your own famfs tree: cargo xtask test-vm --kernel-git TREE --ref BRANCH";
        return Some(if named.is_empty() {
            own.to_string()
        } else {
            format!("{}; {own}", named.join(" or "))
        });
    }
    if reason.contains("--qemu backports") {
        return Some("cargo xtask test-vm --qemu backports".into());
    }
    let sym = reason
        .strip_prefix("kernel config: CONFIG_")?
        .split(" is not set")
        .next()
        .filter(|s| !s.contains(' '))?;
    let frag = fragment_setting(root, sym)?;
    Some(format!("cargo xtask test-vm --fragments +{frag}"))
}

/// The not-run trials of `s`, by cause, the largest first.
pub fn causes(s: &Summary, root: &Path) -> Vec<Cause> {
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in s.cases.iter().filter(|c| c.outcome == Outcome::NotRun) {
        let why = c
            .reasons
            .first()
            .map(String::as_str)
            .unwrap_or("no reason given");
        by.entry(why).or_default().push(c.id.clone());
    }
    let mut out: Vec<Cause> = by
        .into_iter()
        .map(|(reason, trials)| Cause {
            command: command_for(reason, root),
            reason: reason.to_string(),
            trials,
        })
        .collect();
    out.sort_by(|a, b| {
        b.trials
            .len()
            .cmp(&a.trials.len())
            .then(a.reason.cmp(&b.reason))
    });
    out
}

/// The table: a line per cause (count, reason, the first trials), and the
/// command under it.
pub fn render(causes: &[Cause]) -> String {
    if causes.is_empty() {
        return String::new();
    }
    let mut s = String::from("[harness] not run, by cause:\n");
    let mut last: Option<&str> = None;
    for c in causes {
        let shown: Vec<&str> = c.trials.iter().take(3).map(String::as_str).collect();
        let more = if c.trials.len() > 3 { ", ..." } else { "" };
        s += &format!(
            "  {:>4}  {} ({}{more})\n",
            c.trials.len(),
            c.reason,
            shown.join(", ")
        );
        match c.command.as_deref() {
            Some(cmd) if last == Some(cmd) => s += "        to run them: the same\n",
            Some(cmd) => s += &format!("        to run them: {cmd}\n"),
            None => {}
        }
        last = c.command.as_deref();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_command_that_runs_them_here() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("kernel-configs")).unwrap();
        std::fs::write(r.join("kernel-configs/debug.config"), "CONFIG_KASAN=y\n").unwrap();
        assert_eq!(
            command_for("kernel config: CONFIG_KASAN is not set", r).as_deref(),
            Some("cargo xtask test-vm --fragments +debug")
        );
        assert_eq!(
            command_for("kernel config: CONFIG_NOPE is not set", r),
            None
        );
        assert_eq!(
            command_for(
                "this kernel has no famfs (include/uapi/linux/fuse.h has no FUSE_GET_FMAP)",
                r
            )
            .as_deref(),
            Some("your own famfs tree: cargo xtask test-vm --kernel-git TREE --ref BRANCH"),
            "no famfs kernel file in this root: only the own tree"
        );
        assert_eq!(
            command_for(
                "cxl-volatile pmem needs QEMU 8.0 or later; ... pass --qemu backports",
                r
            )
            .as_deref(),
            Some("cargo xtask test-vm --qemu backports")
        );
        let mut s: Summary = serde_json::from_value(serde_json::json!({
            "run_id": "x", "kernel": {}, "backend": "qemu", "accel": null, "profile": "v10",
            "boots": [], "cases": [],
            "counts": {"passed": 0, "failed": 0, "notrun": 0, "expected_fail": 0}, "duration_ms": 0
        }))
        .unwrap();
        for (id, o, why) in [
            ("famfs/001", "not_run", "this kernel has no famfs (x)"),
            ("famfs/002", "not_run", "this kernel has no famfs (x)"),
            (
                "dax/005",
                "not_run",
                "needs QEMU 8.0: pass --qemu backports",
            ),
            ("fuse/001", "pass", ""),
        ] {
            s.cases.push(
                serde_json::from_value(serde_json::json!({
                    "id": id, "outcome": o, "raw_outcome": o, "reasons": [why],
                    "duration_ms": 0, "boot": null, "reports": [], "dir": "d"
                }))
                .unwrap(),
            );
        }
        let t = render(&causes(&s, r));
        assert_eq!(
            t,
            "[harness] not run, by cause:\n     2  this kernel has no famfs (x) (famfs/001, famfs/002)\n        to run them: your own famfs tree: cargo xtask test-vm --kernel-git TREE --ref BRANCH\n     1  needs QEMU 8.0: pass --qemu backports (dax/005)\n        to run them: cargo xtask test-vm --qemu backports\n"
        );
    }
}
