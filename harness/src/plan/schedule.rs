//! The schedule: which cases the kernel, the machine and the run rule out
//! (with why), and the boot groups the rest run in, one topology each.
//! Decided once, before anything boots; the executor and the test list both
//! read it, in the same order.

use super::case::Case;
use super::topologies::Choice;
use crate::contract::topology::Topology;
use crate::kernel::build::KernelArtifacts;
use crate::vm::qemu::Qemu;
use anyhow::{bail, Result};
use std::path::Path;

/// Every `requires.kconfig` symbol of `cases` must exist: in the kernel
/// source's Kconfig files or in a fragment of `kernel-configs/` (symbols
/// only some sources have, such as `FUSE_FAMFS_DAX`, are named there). A
/// misspelt symbol would otherwise make a case not run forever.
pub fn check_case_symbols(root: &Path, kernel: &KernelArtifacts, cases: &[Case]) -> Result<()> {
    let Some(src) = &kernel.source else {
        return Ok(()); // a prebuilt kernel: no source to check against
    };
    let wanted: Vec<(&Case, &str)> = cases
        .iter()
        .flat_map(|c| {
            c.meta.requires.kconfig.iter().map(move |k| {
                let s = k.strip_prefix('!').unwrap_or(k);
                (c, s.strip_prefix("CONFIG_").unwrap_or(s))
            })
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let index = crate::kernel::config::KconfigIndex::scan(&src.path)?;
    let frag_dir = root.join("kernel-configs");
    let mut known: std::collections::BTreeSet<String> = index.symbols.keys().cloned().collect();
    for name in crate::kernel::config::available_fragments(&frag_dir)? {
        for f in crate::kernel::config::load_fragments(&frag_dir, &[name])? {
            known.extend(f.settings.into_iter().map(|s| s.symbol));
        }
    }
    for (case, sym) in wanted {
        if known.contains(sym) {
            continue;
        }
        let text = std::fs::read_to_string(&case.path).unwrap_or_default();
        let hint = crate::base::yaml::closest(sym, known.iter().map(String::as_str))
            .map(|c| format!("; did you mean CONFIG_{c}?"))
            .unwrap_or_default();
        bail!(
            "{}:{}: requires.kconfig: CONFIG_{sym} is not a symbol of {} nor of a fragment in {}{hint}",
            case.path.display(),
            crate::base::yaml::line_of(&text, 1, sym),
            src.path.display(),
            frag_dir.display()
        );
    }
    Ok(())
}

/// One boot's worth of cases with a topology that serves them all.
#[derive(Debug, Clone)]
pub struct BootGroup {
    pub topology: Topology,
    pub cases: Vec<String>,
    /// Each case's timeout in seconds, beside `cases`: what a case may
    /// cost, the only estimate there is before it ran.
    pub costs: Vec<u64>,
}

/// Group cases into as few topologies as possible, keeping case order
/// within each group.
pub fn plan_groups(cases: &[&Case]) -> Vec<BootGroup> {
    let mut groups: Vec<BootGroup> = Vec::new();
    for c in cases {
        // A case that needs a fresh boot starts a group of its own, first in
        // its boot; cases after it may join that group.
        let slot = if c.fresh_boot() {
            None
        } else {
            groups
                .iter_mut()
                .find_map(|g| g.topology.merge(&c.topology).map(|t| (g, t)))
        };
        match slot {
            Some((g, t)) => {
                g.topology = t;
                g.cases.push(c.id.clone());
                g.costs.push(c.meta.timeout);
            }
            None => groups.push(BootGroup {
                topology: c.topology.clone(),
                cases: vec![c.id.clone()],
                costs: vec![c.meta.timeout],
            }),
        }
    }
    groups
}

/// What a run will do, decided once before anything boots: the cases the
/// kernel's config rules out (with why), then one boot group per topology.
/// The executor and the test list both read it, in this order.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub not_run: Vec<(String, String)>,
    pub groups: Vec<BootGroup>,
}

impl Schedule {
    /// The kernel's config and expunge list rule cases out; a named
    /// topology replaces each case's machine (or rules it out), and so does
    /// a kind of pmem the QEMU cannot emulate or a famfs user space the run
    /// does not have.
    pub fn new(
        kernel: &KernelArtifacts,
        topology: Option<&Choice>,
        qemu: &Qemu,
        famfs_user: Result<(), &str>,
        cases: &[Case],
    ) -> Schedule {
        let mut not_run = Vec::new();
        let mut placed = Vec::new();
        for c in cases {
            let expunged = kernel.expunged.iter().find(|e| e.covers(&c.id)).map(|e| {
                format!(
                    "expunged on kernel {}: {} ({})",
                    kernel.name.as_deref().unwrap_or("?"),
                    e.why.trim(),
                    e.at
                )
            });
            let mut c = c.clone();
            let why = expunged
                .or_else(|| {
                    c.unmet_kconfig(&kernel.config)
                        .map(|w| absent_in_source(w, kernel))
                })
                .or_else(|| match topology.map(|t| t.apply(&c)) {
                    Some(Ok(topo)) => {
                        c.topology = topo;
                        None
                    }
                    Some(Err(why)) => Some(why),
                    None => None,
                })
                .or_else(|| c.topology.pmem.as_ref().and_then(|p| qemu.lacks(p.kind)))
                .or_else(|| match (famfs_user, c.meta.requires.famfs_user) {
                    (Err(why), true) => Some(why.to_string()),
                    _ => None,
                });
            match why {
                Some(why) => not_run.push((c.id.clone(), why)),
                None => placed.push(c),
            }
        }
        let runnable: Vec<&Case> = placed.iter().collect();
        Schedule {
            not_run,
            groups: plan_groups(&runnable),
        }
    }

    /// Spread the groups over `jobs` VMs. One topology usually serves most
    /// cases, so its single boot would run alone long after the small
    /// groups are done: a group with more than a share of the run's cases
    /// (`ceil(total / (per_job * jobs))`; two shares per VM let the queue
    /// even out cases of unequal cost) is cut into even pieces of at most
    /// a share, each its own boot, and the costliest groups (by their
    /// cases' timeouts) boot first.
    /// Order within a piece is kept; `jobs` 1 changes nothing, nor does
    /// a group of at most `min_piece` cases (a boot costs more than a few
    /// short cases).
    pub fn balanced(mut self, jobs: usize, per_job: usize, min_piece: usize) -> Schedule {
        if jobs <= 1 {
            return self;
        }
        let total: usize = self.groups.iter().map(|g| g.cases.len()).sum();
        let share = total.div_ceil(per_job.max(1) * jobs).max(min_piece).max(1);
        let mut groups = Vec::new();
        for g in self.groups {
            let pieces = g.cases.len().div_ceil(share).max(1);
            let size = g.cases.len().div_ceil(pieces).max(1);
            groups.extend(
                g.cases
                    .chunks(size)
                    .zip(g.costs.chunks(size))
                    .map(|(c, w)| BootGroup {
                        topology: g.topology.clone(),
                        cases: c.to_vec(),
                        costs: w.to_vec(),
                    }),
            );
        }
        // Stable: equal costs keep the planner's order.
        groups.sort_by_key(|g| std::cmp::Reverse(g.costs.iter().sum::<u64>()));
        self.groups = groups;
        self
    }

    /// Trial names in the order their results arrive: each boot group's
    /// cases, then its [`boot_trial`].
    pub fn order(&self) -> Vec<String> {
        self.not_run
            .iter()
            .map(|(id, _)| id.clone())
            .chain(self.groups.iter().enumerate().flat_map(|(g, grp)| {
                grp.cases
                    .iter()
                    .cloned()
                    .chain(std::iter::once(boot_trial(g + 1)))
            }))
            .collect()
    }
}

/// The trial that holds the kernel reports of the `n`-th boot group
/// (restarts included) that fall outside every case: during boot, between
/// cases, after the last one, at shutdown. It fails with their titles.
pub fn boot_trial(n: usize) -> String {
    format!("boot/{n}")
}

/// A symbol "not set" that the kernel's source does not have at all says
/// so (upstream 7.3 has no CONFIG_FUSE_FAMFS_DAX: not a build choice).
fn absent_in_source(why: String, kernel: &KernelArtifacts) -> String {
    let source = kernel
        .source
        .as_ref()
        .map(|s| s.describe_line())
        .unwrap_or_else(|| "this kernel source".into());
    let mut out = why;
    for w in &kernel.warnings {
        let Some(sym) = w
            .message
            .strip_prefix("CONFIG_")
            .and_then(|m| m.split(" does not exist in this kernel source").next())
            .filter(|s| w.message.contains(" does not exist in ") && !s.contains(' '))
        else {
            continue;
        };
        out = out.replace(
            &format!("CONFIG_{sym} is not set"),
            &format!("CONFIG_{sym} does not exist in {source}"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: usize, tag: &str) -> BootGroup {
        BootGroup {
            topology: Topology::default(),
            cases: (0..n).map(|i| format!("{tag}/{i:03}")).collect(),
            costs: vec![60; n],
        }
    }

    #[test]
    fn a_group_larger_than_its_share_is_cut_and_the_largest_boot_first() {
        let s = Schedule {
            not_run: vec![],
            groups: vec![
                group(1, "a"),
                group(98, "b"),
                group(26, "c"),
                group(11, "d"),
            ],
        };
        let one = s.clone().balanced(1, 2, 8);
        assert_eq!(one.order(), s.order(), "one VM: nothing changes");
        let two = s.clone().balanced(2, 2, 8);
        let sizes: Vec<usize> = two.groups.iter().map(|g| g.cases.len()).collect();
        assert_eq!(sizes, [33, 33, 32, 26, 11, 1]);
        // Every case once, and a piece keeps the planner's order.
        let mut all: Vec<&String> = two.groups.iter().flat_map(|g| &g.cases).collect();
        assert_eq!(two.groups[0].cases[..2], ["b/000", "b/001"]);
        assert_eq!(two.groups[1].cases[0], "b/033");
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 136);
        // One share per VM: the big group in two.
        let sizes: Vec<usize> = s
            .clone()
            .balanced(2, 1, 8)
            .groups
            .iter()
            .map(|g| g.cases.len())
            .collect();
        assert_eq!(sizes, [49, 49, 26, 11, 1]);
        // A group of few long cases boots before longer groups of short
        // ones.
        let mut heavy = group(11, "u");
        heavy.costs = vec![600; 11];
        let s2 = Schedule {
            not_run: vec![],
            groups: vec![group(98, "b"), heavy],
        };
        let first = &s2.balanced(2, 2, 8).groups[0];
        assert_eq!(first.cases[0], "u/000");
        // A small selection stays in one boot.
        let small = Schedule {
            not_run: vec![],
            groups: vec![group(4, "t")],
        };
        assert_eq!(small.balanced(2, 2, 8).groups.len(), 1);
    }

    #[test]
    fn a_symbol_the_source_lacks_is_said_to_be_absent_not_unset() {
        let mut k: KernelArtifacts = serde_json::from_value(serde_json::json!({
            "bzimage": "b", "vmlinux": null, "config_path": "c", "release": "7.3.4",
            "source": {"kind": "debian-package", "version": "7.3.4",
                       "package": "linux-source-7.3 7.3.4", "describe": null,
                       "content_hash": "0", "path": "/s"},
            "build_dir": null, "build_log": null, "key": null, "fragments": [],
            "built": false, "warnings": [
                {"severity": "Warning", "location": "kernel-configs/fuse.config:3",
                 "message": "CONFIG_FUSE_FAMFS_DAX does not exist in this kernel source (optional: ignored)"}
            ]
        }))
        .unwrap();
        let why = "kernel config: CONFIG_FUSE_FAMFS_DAX is not set, CONFIG_DEV_DAX is not set";
        assert_eq!(
            absent_in_source(why.into(), &k),
            "kernel config: CONFIG_FUSE_FAMFS_DAX does not exist in linux-source-7.3 7.3.4, CONFIG_DEV_DAX is not set"
        );
        k.warnings.clear();
        assert_eq!(absent_in_source(why.into(), &k), why);
    }
}
