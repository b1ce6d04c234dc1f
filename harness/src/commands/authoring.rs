//! Writing cases: a new case from a skeleton (`cargo xtask new-case`), and
//! golden output taken from a run (`cargo xtask bless`).

use crate::judge::verdict::Outcome;
use crate::plan::case::{self, Case};
use crate::report::results::{CaseResult, Summary};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The skeleton [`new_case`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Template {
    /// A header and one line of output; the golden file empty.
    #[default]
    Plain,
    /// A famfs case that passes as written on a famfs kernel: the gates,
    /// a scenario, famfsd, one mmap check and its golden output.
    Famfs,
}

impl Template {
    /// The names `--template` takes.
    pub const NAMES: &'static [&'static str] = &["plain", "famfs"];
}

impl std::str::FromStr for Template {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "plain" => Ok(Template::Plain),
            "famfs" => Ok(Template::Famfs),
            _ => bail!(
                "`{s}` is not a case template: {}",
                Template::NAMES.join(", ")
            ),
        }
    }
}

/// Create `cases/GROUP/NNN` (the next free number) from `template`, with
/// its golden file; returns the script's path.
pub fn new_case(
    cases_dir: &Path,
    group: &str,
    description: &str,
    template: Template,
) -> Result<PathBuf> {
    if group.is_empty()
        || !group
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || group == "scenarios"
    {
        bail!("`{group}` is not a case group name: lower-case letters, digits and `-` (and not `scenarios`)");
    }
    let dir = cases_dir.join(group);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut last = 0u32;
    for e in std::fs::read_dir(&dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(n) = name.parse::<u32>() {
            last = last.max(n);
        }
    }
    let id = format!("{:03}", last + 1);
    let path = dir.join(&id);
    let description = if description.trim().is_empty() {
        "TODO: what the case checks, and what a failure means for a famfs developer"
    } else {
        description.trim()
    };
    let (text, golden) = match template {
        Template::Plain => (plain_case(group, &id, description), String::new()),
        Template::Famfs => famfs_case(group, &id, description),
    };
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(path.with_file_name(format!("{id}.out")), golden)?;
    // It must load like every other case.
    case::load(cases_dir, &path)?;
    Ok(path)
}

fn plain_case(group: &str, id: &str, description: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # SPDX-License-Identifier: MIT\n\
         # ---\n\
         # description: >-\n\
         #   {description}\n\
         # groups: [{group}]\n\
         # requires:\n\
         #   kconfig: [FUSE_FS]\n\
         # timeout: 60\n\
         # ---\n\
         . \"$FH_COMMON\"\n\
         \n\
         echo \"{group}/{id} ran\"\n"
    )
}

/// The famfs skeleton and its golden output: famfsd serves /f (2 MiB at
/// device offset 4 MiB) and the case checks its bytes through mmap.
fn famfs_case(group: &str, id: &str, description: &str) -> (String, String) {
    let groups = if group == "famfs" {
        "famfs".to_string()
    } else {
        format!("{group}, famfs")
    };
    let script = format!(
        r#"#!/bin/sh
# SPDX-License-Identifier: MIT
# ---
# description: >-
#   {description}
# groups: [{groups}]
# requires:
#   pmem: 256M
#   kconfig: [FUSE_FS, DEV_DAX, DEV_DAX_FSDEV]
# timeout: 120
# ---
. "$FH_COMMON"

# What famfsd serves (cases/scenarios/README.md): /f, one 2 MiB extent at
# device offset 4 MiB.
cat > scenario.yaml <<END
description: {group}/{id}
daxdevs: {{0: $FH_DAX}}
tree:
  - path: /f
    fmap: {{extents: [{{offset: 4M, len: 2M}}]}}
END
# The harness's host tests may run the script this far (no VM).
[ -n "$FH_SCENARIO_ONLY" ] && exit 0

# The gates of a famfs case (_require_dax, _require_dax_driver fsdev_dax,
# _require_famfs_cap: not run on a kernel without famfs, failed on one
# built with famfs that does not do it), the address pattern in the
# device's first 8 MiB, the device on fsdev_dax; bound back at exit.
_famfs_begin 8M
# famfsd on $MNT with the run's profile; requests in
# $FH_ARTIFACTS/requests.jsonl. Stopped at exit, also after _fail (the
# cleanup; add your own with _cleanup_add CMD).
_famfsd_start scenario.yaml --read-only

# The check: what a correct kernel gives comes from the scenario, never
# from the kernel under test. /f's bytes through mmap are the device's
# at 4 MiB.
M=1048576
got=$("$FH_TOOL" pattern-check "$MNT/f" 0 2M 4M mmap)
want="mmap $((2 * M)) bytes at file offset 0: device data from offset $((4 * M))"
_expect "/f through mmap" "$got" "$want"

# Prints famfsd's exit status unless it is 0; its request log is complete
# after (`"$FH_TOOL" famfsd-log "$FH_ARTIFACTS/requests.jsonl" GET_FMAP`).
_famfsd_stop
"#
    );
    (script, "/f through mmap: as the kernel must\n".to_string())
}

/// One golden file written by [`bless`].
#[derive(Debug, Clone, PartialEq)]
pub struct Blessed {
    pub golden: PathBuf,
    /// The trials whose output it now holds.
    pub from: Vec<String>,
}

/// Write the golden files of cases from a run's output. `ids` chooses
/// trials (all those whose only failure is their output when empty). The
/// trials of a parametrised case share one golden file: their outputs
/// (after the case's filters) must agree.
pub fn bless(cases_dir: &Path, run_dir: &Path, ids: &[String]) -> Result<Vec<Blessed>> {
    let summary_path = run_dir.join("summary.json");
    let summary: Summary = serde_json::from_str(
        &std::fs::read_to_string(&summary_path)
            .with_context(|| format!("reading {}", summary_path.display()))?,
    )
    .with_context(|| format!("{} is not a run summary", summary_path.display()))?;
    let cases = case::discover(cases_dir)?;
    for id in ids {
        if !summary
            .cases
            .iter()
            .any(|c| &c.id == id || c.id.starts_with(&format!("{id}[")))
        {
            bail!("{id}: no such trial in {}", run_dir.display());
        }
    }
    let chosen: Vec<&CaseResult> = summary
        .cases
        .iter()
        .filter(|r| {
            if ids.is_empty() {
                r.outcome == Outcome::Fail
                    && r.reasons.len() == 1
                    && r.reasons[0] == "output differs from the golden file"
            } else {
                ids.iter()
                    .any(|id| &r.id == id || r.id.starts_with(&format!("{id}[")))
            }
        })
        .collect();
    // Group trials by script: one golden file each.
    let mut by_script: std::collections::BTreeMap<String, Vec<(&CaseResult, &Case)>> =
        Default::default();
    for r in chosen {
        let Some(c) = cases.iter().find(|c| c.id == r.id) else {
            bail!("{}: the run has it but cases/ does not", r.id);
        };
        by_script.entry(c.script.clone()).or_default().push((r, c));
    }
    let mut out = Vec::new();
    for (script, trials) in by_script {
        let mut text: Option<(String, String, &str)> = None;
        for (r, c) in &trials {
            let p = run_dir.join(&r.dir).join("output");
            let got = std::fs::read_to_string(&p)
                .with_context(|| format!("{}: no output in the run ({})", r.id, p.display()))?;
            let filtered = c.filter(&got);
            match &text {
                None => text = Some((got, filtered, &r.id)),
                Some((_, f, first)) if *f != filtered => bail!(
                    "{script}: the outputs of {first} and {} differ; they share {script}.out, so make them agree (filters, or `_expect` lines) or bless one trial",
                    r.id
                ),
                Some(_) => {}
            }
        }
        let (raw, _, _) = text.expect("a script has a trial");
        let golden = trials[0].1.golden_path.clone();
        std::fs::write(&golden, raw).with_context(|| format!("writing {}", golden.display()))?;
        out.push(Blessed {
            golden,
            from: trials.iter().map(|(r, _)| r.id.clone()).collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_cases_take_the_next_number_and_load() {
        let t = tempfile::tempdir().unwrap();
        let p = new_case(t.path(), "famfs", "checks a thing", Template::Plain).unwrap();
        assert!(p.ends_with("famfs/001"));
        let p = new_case(t.path(), "famfs", "", Template::Plain).unwrap();
        assert!(p.ends_with("famfs/002"));
        let c = case::load(t.path(), &p).unwrap();
        assert!(c.meta.description.starts_with("TODO"));
        assert_eq!(
            std::fs::read_to_string(p.with_file_name("002.out")).unwrap(),
            ""
        );
        assert!(new_case(t.path(), "Bad Group", "x", Template::Plain).is_err());
    }

    #[test]
    fn the_famfs_template_is_a_famfs_case_with_its_golden_output() {
        let t = tempfile::tempdir().unwrap();
        let p = new_case(t.path(), "famfs", "reads /f", Template::Famfs).unwrap();
        let c = case::load(t.path(), &p).unwrap();
        assert_eq!(c.meta.description, "reads /f");
        assert_eq!(c.meta.groups, ["famfs"]);
        let script = std::fs::read_to_string(&p).unwrap();
        for helper in [
            "_famfs_begin",
            "_famfsd_start scenario.yaml",
            "_expect ",
            "_famfsd_stop",
        ] {
            assert!(script.contains(helper), "{helper} in\n{script}");
        }
        assert_eq!(
            std::fs::read_to_string(p.with_file_name("001.out")).unwrap(),
            "/f through mmap: as the kernel must\n"
        );
        // Another group keeps its own name and is a famfs case too.
        let p = new_case(t.path(), "famfs-mine", "", Template::Famfs).unwrap();
        let c = case::load(t.path(), &p).unwrap();
        assert!(c.in_group("famfs-mine") && c.in_group("famfs"));
        assert!("nope".parse::<Template>().is_err());
        assert_eq!("famfs".parse::<Template>().unwrap(), Template::Famfs);
    }
}
