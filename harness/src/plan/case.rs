//! Case files: a numbered POSIX shell script under `cases/<group>/` with a
//! YAML header in comments, beside its golden output `NNN.out`.
//!
//! ```text
//! #!/bin/sh
//! # ---
//! # description: what the case checks
//! # groups: [quick, dax]
//! # requires: { pmem: 256M, kconfig: [DEV_DAX] }
//! # timeout: 60
//! # ---
//! . "$FH_COMMON"
//! ```
//! See cases/README.md for every field.

use crate::contract::topology::{parse_size_mib, DaxMode, PmemKind, PmemSpec, Topology, ALIGN_2M};
use crate::kernel::config::DotConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Size of the emulated pmem the case needs (e.g. `256M`).
    pub pmem: Option<String>,
    /// `nvdimm` (default), `memmap`, `cxl` or `cxl-volatile`: pins the
    /// case to that kind (a named topology of another kind skips it).
    pub pmem_kind: Option<PmemKind>,
    /// How many dax devices, each `pmem` large (default 1).
    pub dax_devices: Option<u32>,
    /// The real famfs user space in the image (`image::famfs_user`); not
    /// run, with the reason, when the run has none.
    #[serde(default)]
    pub famfs_user: bool,
    /// Driver the device is bound to when the case starts (default devdax).
    pub dax_mode: Option<DaxMode>,
    /// Kernel options that must be enabled (`FOO`) or disabled (`!FOO`),
    /// checked against the kernel's .config before booting.
    #[serde(default)]
    pub kconfig: Vec<String>,
}

/// A failure the harness must see for the case to count as passing: used
/// by self-checks of the harness (a provoked WARNING must be caught).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// A kernel-log finding kind (`WARNING`, `BUG`, `KASAN`, ...) or a
    /// substring of its title.
    pub fail: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// A regular expression applied to each output line...
    pub regex: String,
    /// ...replaced by this (`$1` refers to groups).
    pub replace: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaseMeta {
    pub description: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub requires: Requires,
    /// Seconds, before scaling for TCG.
    #[serde(default = "default_timeout", deserialize_with = "whole_seconds")]
    pub timeout: u64,
    pub expect: Option<Expect>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// One trial per entry, `group/NNN[name]`, each with its own result,
    /// output and kernel log; the entry's values reach the script as
    /// `FH_PARAM` (the name) and `FH_PARAM_<KEY>`.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Start a fresh boot for this case (reports that fire once per boot,
    /// such as UBSAN's, must not have fired before it).
    #[serde(default)]
    pub fresh_boot: bool,
}

/// One entry of a parametrised case.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Param {
    /// The trial's name within the case: `[a-z0-9._-]+`.
    pub name: String,
    /// This entry needs a fresh boot (see [`CaseMeta::fresh_boot`]).
    #[serde(default)]
    pub fresh_boot: bool,
    /// Everything else: values for `FH_PARAM_<KEY>` (strings, numbers, or
    /// flow YAML written as a string).
    #[serde(flatten)]
    pub vars: std::collections::BTreeMap<String, String>,
}

fn default_timeout() -> u64 {
    60
}

/// A timeout: a whole number of seconds; anything else says so.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("seconds, a whole number (like 60)")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("timeout {v}: seconds, a whole number (like 60)")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
            Err(E::custom(format!(
                "timeout {v}: seconds, a whole number (like 60)"
            )))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            Err(E::custom(format!(
                "timeout `{v}`: seconds, a whole number (like 60), without a unit"
            )))
        }
    }
    d.deserialize_any(V)
}

#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// `group/NNN`, or `group/NNN[param]` for one entry of a parametrised
    /// case; also the test name.
    pub id: String,
    /// `group/NNN`: the script's name under the cases directory.
    pub script: String,
    /// The entry of `params` this trial runs, if the case has them.
    pub param: Option<Param>,
    pub path: PathBuf,
    pub golden_path: PathBuf,
    pub golden: String,
    pub meta: CaseMeta,
    pub topology: Topology,
    #[serde(skip)]
    pub filters: Vec<(regex::Regex, String)>,
}

/// Extract the YAML header: the comment lines between two `# ---` lines.
/// Returns (yaml text, line number of its first line - 1).
pub fn header(path: &Path, text: &str) -> Result<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == "# ---")
        // Line 1: a location editors jump to even when the header is missing.
        .with_context(|| {
            format!(
                "{}:1: no `# ---` header (see cases/README.md)",
                path.display()
            )
        })?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_end() == "# ---")
        .map(|i| i + start + 1)
        .with_context(|| {
            format!(
                "{}:{}: header not closed by a second `# ---` line",
                path.display(),
                start + 1
            )
        })?;
    let mut yaml = String::new();
    for (i, l) in lines[start + 1..end].iter().enumerate() {
        let body = if let Some(r) = l.strip_prefix("# ") {
            r
        } else if let Some(r) = l.strip_prefix('#') {
            r
        } else {
            bail!(
                "{}:{}: header line does not start with `#`",
                path.display(),
                start + 2 + i
            );
        };
        yaml.push_str(body);
        yaml.push('\n');
    }
    Ok((yaml, start + 1))
}

pub fn parse_meta(path: &Path, text: &str) -> Result<CaseMeta> {
    let (yaml, offset) = header(path, text)?;
    let meta: CaseMeta = crate::base::yaml::parse(path, &yaml, offset)?;
    let at = |needle: &str| {
        format!(
            "{}:{}",
            path.display(),
            crate::base::yaml::line_of(text, offset + 1, needle)
        )
    };
    if meta.description.trim().is_empty() {
        bail!(
            "{}: description is empty: say in one line what the case checks",
            at("description")
        );
    }
    if meta.timeout == 0 {
        bail!(
            "{}: timeout must be at least 1 (seconds, a whole number)",
            at("timeout")
        );
    }
    if let Some(e) = &meta.expect {
        crate::contract::findings::check_finding(&e.fail)
            .map_err(|why| anyhow::anyhow!("{}: expect.fail: {why}", at("fail")))?;
    }
    for k in &meta.requires.kconfig {
        let sym = k.strip_prefix('!').unwrap_or(k);
        let sym = sym.strip_prefix("CONFIG_").unwrap_or(sym);
        if sym.is_empty()
            || !sym
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            bail!(
                "{}: requires.kconfig entry `{k}` is not a config symbol (FOO or !FOO)",
                at(k)
            );
        }
    }
    Ok(meta)
}

/// `at(needle)` is `file:line` of the header line holding `needle`.
fn topology_of(r: &Requires, at: &dyn Fn(&str) -> String) -> Result<Topology> {
    let Some(size) = &r.pmem else {
        if r.pmem_kind.is_some() || r.dax_mode.is_some() || r.dax_devices.is_some() {
            bail!(
                "{}: requires.pmem_kind/dax_mode/dax_devices need requires.pmem (a size)",
                at("requires")
            );
        }
        return Ok(Topology::default());
    };
    let size_mib =
        parse_size_mib(size).with_context(|| format!("{}: requires.pmem", at("pmem")))?;
    let kind = r.pmem_kind.unwrap_or(PmemKind::Nvdimm);
    if kind.is_cxl() && size_mib % crate::contract::topology::CXL_REGION_MIB != 0 {
        bail!(
            "{}: requires.pmem is {size} but CXL regions come in multiples of 256M",
            at("pmem")
        );
    }
    let devices = r.dax_devices.unwrap_or(1);
    if !(1..=4).contains(&devices) || (devices > 1 && kind.is_cxl()) {
        bail!(
            "{}: requires.dax_devices is {devices}: 1 to 4, and one for CXL kinds",
            at("dax_devices")
        );
    }
    Ok(Topology {
        pmem: Some(PmemSpec {
            kind,
            size_mib,
            mode: r.dax_mode.unwrap_or(DaxMode::Devdax),
            align: ALIGN_2M,
            devices,
        }),
    })
}

fn is_case_name(name: &str) -> bool {
    name.len() >= 3 && name.bytes().all(|b| b.is_ascii_digit())
}

/// Files that may sit beside cases: golden outputs, notes, hidden files,
/// editor backups.
fn is_companion(name: &str) -> bool {
    name.strip_suffix(".out").is_some_and(is_case_name)
        || name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".md")
        || name.ends_with(".txt")
        || name.ends_with(".yaml")
        || name.ends_with(".sh")
            && !name
                .strip_suffix(".sh")
                .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
}

/// Load one case file (with its golden output).
pub fn load(root: &Path, path: &Path) -> Result<Case> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading case {}", path.display()))?;
    let meta = parse_meta(path, &text)?;
    let rel = path.strip_prefix(root).unwrap_or(path);
    let id = rel.to_string_lossy().into_owned();
    let golden_path = path.with_file_name(format!(
        "{}.out",
        path.file_name().unwrap().to_string_lossy()
    ));
    let golden = std::fs::read_to_string(&golden_path).with_context(|| {
        format!(
            "case {id}: golden output {} is missing",
            golden_path.display()
        )
    })?;
    // Errors about values the YAML parser accepted name the header line
    // that holds them (the first line of the header when none does).
    let from = header(path, &text).map_or(1, |(_, offset)| offset + 1);
    let at = |needle: &str| {
        format!(
            "{}:{}",
            path.display(),
            crate::base::yaml::line_of(&text, from, needle)
        )
    };
    let mut filters = Vec::new();
    for f in &meta.filters {
        let re = regex::Regex::new(&f.regex)
            .with_context(|| format!("{}: bad filter regex `{}`", at(&f.regex), f.regex))?;
        filters.push((re, f.replace.clone()));
    }
    let topology = topology_of(&meta.requires, &at)?;
    let mut seen = std::collections::BTreeSet::new();
    for p in &meta.params {
        if p.name.is_empty()
            || !p
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            bail!(
                "{}: params: `{}` is not a valid name (lower-case letters, digits, `.`, `_`, `-`)",
                at(&p.name),
                p.name
            );
        }
        if !seen.insert(p.name.clone()) {
            bail!("{}: params: `{}` is listed twice", at(&p.name), p.name);
        }
    }
    Ok(Case {
        script: id.clone(),
        param: None,
        id,
        path: path.to_path_buf(),
        golden_path,
        golden,
        meta,
        topology,
        filters,
    })
}

/// Every case under `root`: files named by three or more digits in the
/// group directories, sorted by id.
pub fn discover(root: &Path) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let mut groups: Vec<_> = std::fs::read_dir(root)
        .with_context(|| format!("reading cases directory {}", root.display()))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    groups.sort_by_key(|e| e.file_name());
    for g in groups {
        let mut files: Vec<_> = std::fs::read_dir(g.path())?.flatten().collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let name = f.file_name().to_string_lossy().into_owned();
            if is_case_name(&name) && f.path().is_file() {
                out.extend(load(root, &f.path())?.expand());
            } else if !is_companion(&name) && f.path().is_file() {
                crate::events::warn(format!(
                    "{}: not a case and ignored: case files are named by three or more digits (001), their golden output NNN.out",
                    f.path().display()
                ));
            }
        }
    }
    Ok(out)
}

impl Case {
    /// One trial per entry of `params` (the case itself when it has none).
    pub fn expand(self) -> Vec<Case> {
        if self.meta.params.is_empty() {
            return vec![self];
        }
        self.meta
            .params
            .iter()
            .map(|p| Case {
                id: format!("{}[{}]", self.script, p.name),
                param: Some(p.clone()),
                ..self.clone()
            })
            .collect()
    }

    /// Does this trial need a boot of its own?
    pub fn fresh_boot(&self) -> bool {
        self.meta.fresh_boot || self.param.as_ref().is_some_and(|p| p.fresh_boot)
    }

    /// `FH_PARAM` and `FH_PARAM_<KEY>` for the script.
    pub fn param_env(&self) -> std::collections::BTreeMap<String, String> {
        let mut env = std::collections::BTreeMap::new();
        if let Some(p) = &self.param {
            env.insert(crate::contract::env::PARAM.to_string(), p.name.clone());
            for (k, v) in &p.vars {
                let key: String = k
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                env.insert(format!("{}_{key}", crate::contract::env::PARAM), v.clone());
            }
        }
        env
    }

    /// Why this kernel cannot run the case, judged from its .config.
    pub fn unmet_kconfig(&self, cfg: &DotConfig) -> Option<String> {
        let mut unmet = Vec::new();
        for k in &self.meta.requires.kconfig {
            let (neg, sym) = match k.strip_prefix('!') {
                Some(s) => (true, s),
                None => (false, k.as_str()),
            };
            let sym = sym.strip_prefix("CONFIG_").unwrap_or(sym);
            let on = cfg.enabled(sym);
            if on == neg {
                unmet.push(if neg {
                    format!("CONFIG_{sym} is enabled")
                } else {
                    format!("CONFIG_{sym} is not set")
                });
            }
        }
        if unmet.is_empty() {
            None
        } else {
            Some(format!("kernel config: {}", unmet.join(", ")))
        }
    }

    pub fn in_group(&self, g: &str) -> bool {
        self.meta.groups.iter().any(|x| x == g)
    }

    /// Iteration `k` of this trial (`--repeat`): the same case under the id
    /// `ID#k`, which the case sees in `FH_CASE_ID`.
    pub fn iteration(&self, k: u32) -> Case {
        let mut c = self.clone();
        c.id = format!("{}#{k}", self.id);
        c
    }

    /// Apply the case's filters, line by line, then drop the notes ` (seen
    /// X)` by which a case says which of several correct answers the kernel
    /// gave: the golden output holds for every correct kernel, the note
    /// stays in the case's output for the reader.
    pub fn filter(&self, text: &str) -> String {
        static SEEN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let seen =
            SEEN.get_or_init(|| regex::Regex::new(r" \(seen [^)]*\)").expect("static regex"));
        let mut out = String::new();
        for line in text.lines() {
            let mut l = line.to_string();
            for (re, rep) in &self.filters {
                l = re.replace_all(&l, rep.as_str()).into_owned();
            }
            l = seen.replace_all(&l, "").into_owned();
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

pub use crate::contract::base_id;

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "#!/bin/sh\n# SPDX-License-Identifier: MIT\n# ---\n# description: checks a thing\n# groups: [quick, dax]\n# requires:\n#   pmem: 256M\n#   kconfig: [DEV_DAX, \"!FUSE_FAMFS_DAX\"]\n# timeout: 30\n# filters:\n#   - { regex: '\\d+ ms', replace: 'N ms' }\n# ---\necho hi\n";

    fn write_case(dir: &Path, rel: &str, text: &str, golden: Option<&str>) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        if let Some(g) = golden {
            std::fs::write(
                p.with_file_name(format!("{}.out", p.file_name().unwrap().to_string_lossy())),
                g,
            )
            .unwrap();
        }
        p
    }

    #[test]
    fn parametrised_cases_are_one_trial_per_entry() {
        let t = tempfile::tempdir().unwrap();
        let text = "# ---\n# description: d\n# params:\n#   - {name: nextents-0, fault: '{nextents: 0}', size: 2M}\n#   - {name: wrap, fresh_boot: true, fault: offset_wrap}\n# ---\necho $FH_PARAM\n";
        write_case(t.path(), "famfs/010", text, Some("x\n"));
        let cases = discover(t.path()).unwrap();
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["famfs/010[nextents-0]", "famfs/010[wrap]"]);
        assert!(cases.iter().all(|c| c.script == "famfs/010"));
        let env = cases[0].param_env();
        assert_eq!(env["FH_PARAM"], "nextents-0");
        assert_eq!(env["FH_PARAM_FAULT"], "{nextents: 0}");
        assert_eq!(env["FH_PARAM_SIZE"], "2M");
        assert!(!cases[0].fresh_boot() && cases[1].fresh_boot());
        // Names are checked.
        let bad = "# ---\n# description: d\n# params: [{name: 'Bad Name'}]\n# ---\n";
        let p = write_case(t.path(), "famfs/011", bad, Some(""));
        let e = load(t.path(), &p).unwrap_err().to_string();
        assert!(e.contains("not a valid name"), "{e}");
        let dup = "# ---\n# description: d\n# params: [{name: a}, {name: a}]\n# ---\n";
        let p = write_case(t.path(), "famfs/012", dup, Some(""));
        assert!(load(t.path(), &p)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
    }

    #[test]
    fn loads_a_case() {
        let t = tempfile::tempdir().unwrap();
        write_case(t.path(), "dax/001", GOOD, Some("hi\n"));
        write_case(t.path(), "dax/README", "not a case", None);
        let cases = discover(t.path()).unwrap();
        assert_eq!(cases.len(), 1);
        let c = &cases[0];
        assert_eq!(c.id, "dax/001");
        assert_eq!(c.meta.timeout, 30);
        assert!(c.in_group("quick"));
        assert_eq!(c.topology.pmem.as_ref().unwrap().size_mib, 256);
        assert_eq!(c.filter("took 12 ms\n"), "took N ms\n");
        // Which of several correct answers was seen is a note, not output.
        assert_eq!(
            c.filter(
                "/f: as the kernel must (seen EINVAL, also correct)\nx (seen a: b) (seen c: d)\n"
            ),
            "/f: as the kernel must\nx\n"
        );
        let cfg = DotConfig::parse("CONFIG_DEV_DAX=y\n");
        assert_eq!(c.unmet_kconfig(&cfg), None);
        let cfg = DotConfig::parse("CONFIG_FUSE_FAMFS_DAX=y\n");
        assert_eq!(
            c.unmet_kconfig(&cfg).unwrap(),
            "kernel config: CONFIG_DEV_DAX is not set, CONFIG_FUSE_FAMFS_DAX is enabled"
        );
    }

    #[test]
    fn header_errors_point_at_the_line() {
        let t = tempfile::tempdir().unwrap();
        let p = write_case(
            t.path(),
            "x/001",
            "#!/bin/sh\n# ---\n# description: x\n# grups: [a]\n# ---\n",
            Some(""),
        );
        let e = format!("{:#}", load(t.path(), &p).unwrap_err());
        assert!(e.contains("x/001:4:"), "{e}");
        assert!(e.contains("grups"), "{e}");
        let p = write_case(
            t.path(),
            "x/002",
            "#!/bin/sh\n# ---\n# description: x\n",
            Some(""),
        );
        assert!(format!("{:#}", load(t.path(), &p).unwrap_err()).contains("not closed"));
        let p = write_case(
            t.path(),
            "x/003",
            "#!/bin/sh\n# ---\n# description: x\n# ---\n",
            None,
        );
        assert!(format!("{:#}", load(t.path(), &p).unwrap_err()).contains("golden output"));
        let p = write_case(
            t.path(),
            "x/004",
            "# ---\n# description: x\n# requires: { pmem: 3M }\n# ---\n",
            Some(""),
        );
        assert!(format!("{:#}", load(t.path(), &p).unwrap_err()).contains("multiple of 2M"));
        let p = write_case(
            t.path(),
            "x/006",
            "# ---\n# description: x\n# requires: { pmem: 128M, pmem_kind: cxl }\n# ---\n",
            Some(""),
        );
        assert!(format!("{:#}", load(t.path(), &p).unwrap_err()).contains("multiples of 256M"));
        let p = write_case(
            t.path(),
            "x/007",
            "# ---\n# description: x\n# requires: { pmem: 256M, pmem_kind: pmem9 }\n# ---\n",
            Some(""),
        );
        let e = format!("{:#}", load(t.path(), &p).unwrap_err());
        assert!(e.contains("x/007:3:") && e.contains("pmem9"), "{e}");
        let p = write_case(
            t.path(),
            "x/005",
            "# ---\n# description: x\n# requires: { kconfig: [lower] }\n# ---\n",
            Some(""),
        );
        assert!(format!("{:#}", load(t.path(), &p).unwrap_err()).contains("not a config symbol"));
    }

    #[test]
    fn the_shipped_cases_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases");
        let cases = discover(&root).unwrap();
        assert!(cases.len() >= 4, "{}", cases.len());
    }
}
