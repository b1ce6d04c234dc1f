//! Which cases a run takes: filters, groups, the explicit group, and one
//! shard of them (`--partition`) for CI systems that spread a run.

use super::case::Case;
use anyhow::{bail, Result};

/// Which cases to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Substrings (or exact names with `exact`); a case matching any runs.
    pub filters: Vec<String>,
    pub exact: bool,
    pub skip: Vec<String>,
    /// Only cases in one of these groups.
    pub groups: Vec<String>,
    /// Only the ignored cases: those of the [`EXPLICIT_GROUP`] (libtest's
    /// `--ignored`).
    pub ignored: bool,
    /// The ignored cases too (libtest's `--include-ignored`).
    pub include_ignored: bool,
}

/// Cases in this group run only when a filter or `--group` chooses them
/// (they crash or hang the kernel on purpose).
pub const EXPLICIT_GROUP: &str = "explicit";

impl Selection {
    pub fn matches(&self, c: &Case) -> bool {
        let ignored = c.in_group(EXPLICIT_GROUP);
        let named = !self.filters.is_empty() || !self.groups.is_empty();
        if (ignored && !(named || self.ignored || self.include_ignored))
            || (self.ignored && !ignored)
        {
            return false;
        }
        let hit = |f: &String| {
            if self.exact {
                &c.id == f
            } else {
                c.id.contains(f.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(hit))
            && !self.skip.iter().any(|s| {
                if self.exact {
                    &c.id == s
                } else {
                    c.id.contains(s.as_str())
                }
            })
            && (self.groups.is_empty() || self.groups.iter().any(|g| c.in_group(g)))
    }
}

/// One shard of a selection (`--partition`), so a CI system can spread a
/// run over N runners: every selected case lands in exactly one of the N
/// shards, the same one on every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// The K-th of every N cases in id order (`count:K/N`): even shards.
    Count { k: u32, n: u32 },
    /// By a hash of the case's name (`hash:K/N`): a case stays in its shard
    /// when cases are added or removed.
    Hash { k: u32, n: u32 },
}

impl Partition {
    /// `count:K/N`, `hash:K/N`, or `K/N` (count), 1 <= K <= N.
    pub fn parse(spec: &str) -> Result<Partition> {
        let (kind, frac) = match spec.split_once(':') {
            Some((kind, frac)) => (kind, frac),
            None => ("count", spec),
        };
        let usage = "--partition takes count:K/N or hash:K/N with 1 <= K <= N (e.g. count:1/3)";
        let parsed = frac.split_once('/').and_then(|(k, n)| {
            Some((k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?))
        });
        let Some((k, n)) = parsed else {
            bail!("--partition {spec}: `{frac}` is not K/N; {usage}");
        };
        if n == 0 || k == 0 || k > n {
            bail!("--partition {spec}: shard {k} of {n} does not exist; {usage}");
        }
        match kind {
            "count" => Ok(Partition::Count { k, n }),
            "hash" => Ok(Partition::Hash { k, n }),
            other => bail!("--partition {spec}: unknown kind `{other}`; {usage}"),
        }
    }

    /// Whether the case at `index` (in id order) named `id` is in this
    /// shard.
    pub fn keeps(&self, index: usize, id: &str) -> bool {
        match *self {
            Partition::Count { k, n } => index as u64 % u64::from(n) == u64::from(k - 1),
            Partition::Hash { k, n } => fnv1a(id.as_bytes()) % u64::from(n) == u64::from(k - 1),
        }
    }

    /// Only this shard's cases, in their order.
    pub fn apply(&self, cases: Vec<Case>) -> Vec<Case> {
        cases
            .into_iter()
            .enumerate()
            .filter(|(i, c)| self.keeps(*i, &c.id))
            .map(|(_, c)| c)
            .collect()
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partition::Count { k, n } => write!(f, "count:{k}/{n}"),
            Partition::Hash { k, n } => write!(f, "hash:{k}/{n}"),
        }
    }
}

/// FNV-1a: a hash fixed by its definition, so shards agree across
/// machines and toolchains (std's hasher promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Cases selected from `cases_dir`, in id order; an error when a filter or
/// group selects nothing.
pub fn select(cases_dir: &std::path::Path, sel: &Selection) -> Result<Vec<Case>> {
    let all = super::case::discover(cases_dir)?;
    let chosen: Vec<Case> = all.iter().filter(|c| sel.matches(c)).cloned().collect();
    if chosen.is_empty() {
        let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        let mut groups: Vec<&str> = all
            .iter()
            .flat_map(|c| c.meta.groups.iter().map(String::as_str))
            .collect();
        groups.sort();
        groups.dedup();
        bail!(
            "no case matches filter {:?}{}{}; cases: {}; groups: {}",
            sel.filters,
            if sel.groups.is_empty() {
                String::new()
            } else {
                format!(" in groups {:?}", sel.groups)
            },
            if sel.skip.is_empty() {
                String::new()
            } else {
                format!(" minus {:?}", sel.skip)
            },
            ids.join(" "),
            groups.join(" ")
        );
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_every_case_once() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases");
        let all = select(&root, &Selection::default()).unwrap();
        assert!(all.len() > 6);
        for kind in ["count", "hash"] {
            let mut seen: Vec<String> = Vec::new();
            for k in 1..=3 {
                let p = Partition::parse(&format!("{kind}:{k}/3")).unwrap();
                let shard = p.apply(all.clone());
                if kind == "count" {
                    // Even: sizes differ by at most one.
                    assert!(shard.len() >= all.len() / 3 && shard.len() <= all.len() / 3 + 1);
                }
                seen.extend(shard.into_iter().map(|c| c.id));
            }
            seen.sort();
            let mut ids: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
            ids.sort();
            assert_eq!(seen, ids, "{kind}: every case in exactly one shard");
        }
        // A hash shard does not move when other cases come or go.
        let h = Partition::parse("hash:2/3").unwrap();
        let with: Vec<String> = h.apply(all.clone()).into_iter().map(|c| c.id).collect();
        let without: Vec<String> = h
            .apply(all[1..].to_vec())
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert!(without.iter().all(|id| with.contains(id)));
        // Fixed by definition: the same on every machine.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            Partition::parse("2/5").unwrap(),
            Partition::Count { k: 2, n: 5 }
        );
        assert_eq!(
            Partition::parse("hash:1/1").unwrap().to_string(),
            "hash:1/1"
        );
        for bad in ["3/2", "0/2", "1/0", "x/y", "1-2", "mod:1/2", "count:"] {
            let e = Partition::parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("--partition {bad}: ")) && e.contains("count:K/N"),
                "{e}"
            );
        }
    }

    #[test]
    fn selection_by_filter_group_and_skip() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases");
        let all = crate::plan::case::discover(&root).unwrap();
        let sel = Selection {
            filters: vec!["dax/".into()],
            ..Default::default()
        };
        let got = select(&root, &sel).unwrap();
        assert!(!got.is_empty() && got.iter().all(|c| c.id.starts_with("dax/")));
        let sel = Selection {
            filters: vec!["dax/001".into()],
            exact: true,
            ..Default::default()
        };
        assert_eq!(select(&root, &sel).unwrap().len(), 1);
        let sel = Selection {
            skip: vec!["dax/".into()],
            ..Default::default()
        };
        assert_eq!(
            select(&root, &sel).unwrap().len(),
            all.iter()
                .filter(|c| !c.id.starts_with("dax/") && !c.in_group(EXPLICIT_GROUP))
                .count()
        );
        // Cases in the explicit group run only when chosen.
        assert!(all.iter().any(|c| c.in_group(EXPLICIT_GROUP)));
        let everything = select(&root, &Selection::default()).unwrap();
        assert!(everything.iter().all(|c| !c.in_group(EXPLICIT_GROUP)));
        let lkdtm = Selection {
            groups: vec!["lkdtm".into()],
            ..Default::default()
        };
        assert!(select(&root, &lkdtm)
            .unwrap()
            .iter()
            .all(|c| c.in_group(EXPLICIT_GROUP)));
        let by_name = Selection {
            filters: vec!["lkdtm/001".into()],
            ..Default::default()
        };
        assert_eq!(select(&root, &by_name).unwrap().len(), 1);
        let e = select(
            &root,
            &Selection {
                filters: vec!["nomatch".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no case matches filter") && e.contains("dax/001"),
            "{e}"
        );
        let e = select(
            &root,
            &Selection {
                groups: vec!["nogroup".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("in groups"), "{e}");
    }
}
