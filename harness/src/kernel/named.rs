//! Named kernels: one small YAML file per kernel in
//! `kernel-configs/kernels/NAME.yaml` saying what to build (a base, an
//! optional patch series, the fragments) and which cases hit a known defect
//! of that kernel, so that CI and people name kernels instead of repeating
//! flags. Paths in these files are relative to the checkout (the directory
//! holding `kernel-configs/`).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a kernel's source comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Base {
    /// Debian's linux-source package (the default kernel).
    Debian,
    /// A kernel tree, built out of tree.
    Tree(PathBuf),
    /// One commit of a local git repository.
    Git { repo: PathBuf, rev: String },
}

/// A case that hits a known defect of a kernel, and the report it must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDefect {
    /// Case id (`famfs/001`, `famfs/010[chunk-size-0]`).
    pub case: String,
    /// The title of the kernel report the case must produce, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Output lines the defect puts in the case's diff against its golden
    /// file (`+` lines, after the case's filters): a defect that shows as
    /// a wrong result rather than a kernel report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// A race: the report may or may not appear in a run. When it does,
    /// it must have this title, and the case's other output entries are
    /// not required (the crash cut the case short); when it does not, the
    /// entry asks nothing. Needs a title and no output.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intermittent: bool,
    /// What the defect is, for the person who reads a failure.
    pub why: String,
    /// `file:line` of the entry.
    pub at: String,
}

/// A case (all its trials) or one trial a kernel does not run, with why:
/// it would take the machine down, hang, or cannot apply to this kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expunged {
    /// `famfs/010` (every trial) or `famfs/010[chunk-size-0]`.
    pub case: String,
    pub why: String,
    /// `file:line` of the entry.
    pub at: String,
}

impl Expunged {
    /// Does this entry cover the trial `id` (any iteration of it)?
    pub fn covers(&self, id: &str) -> bool {
        let id = crate::contract::base_id(id);
        id == self.case
            || (!self.case.contains('[')
                && id
                    .strip_prefix(self.case.as_str())
                    .is_some_and(|r| r.starts_with('[')))
    }
}

/// A kernel resolved from a file: everything `run` needs to build it.
#[derive(Debug, Clone)]
pub struct NamedKernel {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub base: Base,
    /// Series applied in order (a fixture's, then fixes on top of it).
    pub patches: Vec<PathBuf>,
    pub allow_fuzz: bool,
    pub fragments: Vec<String>,
    pub known_defects: Vec<KnownDefect>,
    pub expunged: Vec<Expunged>,
    /// The famfs user-space sources its `famfs-user` cases run (a
    /// directory of archives, as `image::famfs_user` takes).
    pub famfs_user: Option<PathBuf>,
}

/// A kernel that cannot be had on this machine (its fixture is absent):
/// the run reports every case as not run with this reason.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Unavailable {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    description: String,
    /// `debian`, `tree:DIR` or `git:REPO@REF`.
    #[serde(default = "debian")]
    base: String,
    #[serde(default)]
    patches: OneOrMany,
    #[serde(default)]
    allow_fuzz: bool,
    fragments: Vec<String>,
    #[serde(default)]
    known_defects: Vec<DefectEntry>,
    #[serde(default)]
    expunge: Vec<ExpungeEntry>,
    famfs_user: Option<String>,
}

/// `patches: SERIES` or `patches: [SERIES, SERIES...]`.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => vec![],
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpungeEntry {
    case: String,
    why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefectEntry {
    case: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    output: Vec<String>,
    #[serde(default)]
    intermittent: bool,
    why: String,
}

fn debian() -> String {
    "debian".into()
}

/// The directory of named kernels under a checkout.
pub fn dir(root: &Path) -> PathBuf {
    root.join("kernel-configs/kernels")
}

/// Names of the shipped kernels, sorted.
pub fn available(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".yaml")
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// `root/p` with `.` and `..` folded away lexically (the path need not
/// exist), so messages show `/work/shared/...` rather than `/work/main/../shared/...`.
fn resolve(root: &Path, p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in root.join(p).components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// 1-based line of the first line at or after `from` containing `needle`.
fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .unwrap_or(1)
}

/// Parse a `base:` value.
pub fn parse_base(s: &str, root: &Path) -> Result<Base, String> {
    if s == "debian" {
        return Ok(Base::Debian);
    }
    if let Some(p) = s.strip_prefix("tree:") {
        return Ok(Base::Tree(resolve(root, p)));
    }
    if let Some(rest) = s.strip_prefix("git:") {
        let (repo, rev) = rest
            .rsplit_once('@')
            .ok_or_else(|| format!("`{s}`: a git base is `git:REPO@REF`"))?;
        return Ok(Base::Git {
            repo: resolve(root, repo),
            rev: rev.into(),
        });
    }
    Err(format!(
        "unknown base `{s}`: use `debian`, `tree:DIR` or `git:REPO@REF`"
    ))
}

/// Load a named kernel (a name from `kernel-configs/kernels/`, or a path to
/// such a file).
pub fn load(root: &Path, name: &str) -> Result<NamedKernel> {
    let as_path = Path::new(name);
    let file = if name.ends_with(".yaml") && as_path.is_file() {
        as_path.to_path_buf()
    } else {
        dir(root).join(format!("{name}.yaml"))
    };
    if !file.is_file() {
        bail!(
            "unknown kernel `{name}`: no {} (named kernels: {})",
            file.display(),
            available(root).join(", ")
        );
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let f: File = crate::base::yaml::parse(&file, &text, 0)?;
    let at = |needle: &str| format!("{}:{}", file.display(), line_of(&text, needle, 1));
    if f.description.trim().is_empty() {
        bail!(
            "{}: empty description; say what the kernel is",
            at("description")
        );
    }
    let base = parse_base(&f.base, root).map_err(|e| anyhow::anyhow!("{}: {e}", at("base:")))?;
    if f.fragments.is_empty() {
        bail!("{}: no fragments; name at least `default`", at("fragments"));
    }
    let mut known_defects = Vec::new();
    let mut from = 1;
    for d in &f.known_defects {
        let line = line_of(&text, &format!("case: {}", d.case), from);
        from = line + 1;
        let at = format!("{}:{line}", file.display());
        let no_title = d.title.as_deref().is_none_or(|t| t.trim().is_empty());
        if (no_title && d.output.is_empty()) || d.why.trim().is_empty() {
            bail!(
                "{at}: a known defect needs a title (the report the case must produce) or output (the lines it puts in the case's diff), and a why"
            );
        }
        if d.intermittent && (no_title || !d.output.is_empty()) {
            bail!(
                "{at}: an intermittent known defect is a report that may or may not appear: give its title and no output"
            );
        }
        known_defects.push(KnownDefect {
            case: d.case.clone(),
            title: d.title.clone().filter(|t| !t.trim().is_empty()),
            output: d.output.clone(),
            intermittent: d.intermittent,
            why: d.why.clone(),
            at,
        });
    }
    let mut expunged = Vec::new();
    let mut from = line_of(&text, "expunge:", 1);
    for e in &f.expunge {
        let line = line_of(&text, &format!("case: {}", e.case), from);
        from = line + 1;
        let at = format!("{}:{line}", file.display());
        if e.why.trim().is_empty() {
            bail!("{at}: an expunged case needs a why (what would happen if it ran)");
        }
        expunged.push(Expunged {
            case: e.case.clone(),
            why: e.why.clone(),
            at,
        });
    }
    Ok(NamedKernel {
        name: file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        description: f.description,
        base,
        patches: f
            .patches
            .into_vec()
            .iter()
            .map(|p| resolve(root, p))
            .collect(),
        allow_fuzz: f.allow_fuzz,
        fragments: f.fragments,
        known_defects,
        expunged,
        famfs_user: f.famfs_user.map(|p| resolve(root, &p)),
        file,
    })
}

impl NamedKernel {
    /// Fails with [`Unavailable`] when an input named by a path is absent
    /// (a fixture that lives beside the checkout, not in it).
    pub fn check_available(&self) -> Result<()> {
        let mut missing = Vec::new();
        missing.extend(self.patches.iter().filter(|p| !p.exists()).cloned());
        match &self.base {
            Base::Tree(p) | Base::Git { repo: p, .. } if !p.exists() => missing.push(p.clone()),
            _ => {}
        }
        if let Some(p) = missing.first() {
            return Err(Unavailable(format!(
                "kernel {} is not available here: {} does not exist ({})",
                self.name,
                p.display(),
                self.file.display()
            ))
            .into());
        }
        Ok(())
    }

    /// Check that each known defect and expunge entry names a case that
    /// exists.
    pub fn check_cases(&self, case_ids: &[String]) -> Result<()> {
        for d in &self.known_defects {
            if !case_ids.contains(&d.case) {
                bail!(
                    "{}: known defect for case `{}`, which does not exist",
                    d.at,
                    d.case
                );
            }
        }
        for e in &self.expunged {
            if !case_ids.iter().any(|id| e.covers(id)) {
                bail!("{}: expunged case `{}` does not exist", e.at, e.case);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(name: &str, text: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir(t.path())).unwrap();
        std::fs::write(dir(t.path()).join(format!("{name}.yaml")), text).unwrap();
        t
    }

    #[test]
    fn loads_a_kernel_with_patches_and_defects() {
        let t = root_with(
            "k",
            "description: a test kernel\nbase: debian\npatches: ../fixture/series\nfragments: [default, debug]\nknown-defects:\n  - case: famfs/001\n    title: WARNING in x\n    why: because\n",
        );
        let k = load(t.path(), "k").unwrap();
        assert_eq!(k.name, "k");
        assert_eq!(k.base, Base::Debian);
        assert_eq!(
            k.patches,
            vec![t.path().parent().unwrap().join("fixture/series")]
        );
        assert_eq!(k.fragments, ["default", "debug"]);
        assert_eq!(
            k.known_defects[0].at,
            format!("{}:6", dir(t.path()).join("k.yaml").display())
        );
        let e = k.check_available().unwrap_err();
        assert!(e.downcast_ref::<Unavailable>().is_some(), "{e}");
        assert!(
            e.to_string().contains("not available here")
                && e.to_string().contains("fixture/series"),
            "{e}"
        );
        let e = k.check_cases(&["dax/001".into()]).unwrap_err().to_string();
        assert!(e.contains("k.yaml:6") && e.contains("famfs/001"), "{e}");
    }

    #[test]
    fn patches_may_be_a_list_of_series_applied_in_order() {
        let t = root_with(
            "k",
            "description: fixes on a fixture\npatches: [../fixture/series, kernel-configs/patches/fix]\nfragments: [default]\n",
        );
        let k = load(t.path(), "k").unwrap();
        assert_eq!(
            k.patches,
            vec![
                t.path().parent().unwrap().join("fixture/series"),
                t.path().join("kernel-configs/patches/fix")
            ]
        );
        let t = root_with(
            "k",
            "description: x\npatches: {a: 1}\nfragments: [default]\n",
        );
        let e = format!("{:#}", load(t.path(), "k").unwrap_err());
        assert!(e.contains("k.yaml"), "{e}");
    }

    #[test]
    fn expunge_entries_cover_a_case_or_one_trial() {
        let t = root_with(
            "k",
            "description: x\nfragments: [default]\nexpunge:\n  - case: lkdtm/006\n    why: panics on purpose\n  - case: famfs/010[chunk-size-0]\n    why: divides by zero\n",
        );
        let k = load(t.path(), "k").unwrap();
        let (whole, one) = (&k.expunged[0], &k.expunged[1]);
        assert!(
            whole.at.ends_with("k.yaml:4") && one.at.ends_with("k.yaml:6"),
            "{k:?}"
        );
        assert!(whole.covers("lkdtm/006") && whole.covers("lkdtm/006#3"));
        assert!(!whole.covers("lkdtm/0061"));
        assert!(one.covers("famfs/010[chunk-size-0]") && !one.covers("famfs/010[nextents-0]"));
        let prefix = Expunged {
            case: "famfs/010".into(),
            why: "w".into(),
            at: "f:1".into(),
        };
        assert!(prefix.covers("famfs/010[nextents-0]#2") && !prefix.covers("famfs/0101"));
        k.check_cases(&["lkdtm/006".into(), "famfs/010[chunk-size-0]".into()])
            .unwrap();
        let e = k
            .check_cases(&["lkdtm/006".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k.yaml:6") && e.contains("does not exist"),
            "{e}"
        );
        let t = root_with(
            "k",
            "description: x\nfragments: [default]\nexpunge:\n  - case: a/001\n    why: ' '\n",
        );
        let e = load(t.path(), "k").unwrap_err().to_string();
        assert!(e.contains("k.yaml:4") && e.contains("needs a why"), "{e}");
    }

    #[test]
    fn bad_files_name_file_and_line() {
        let t = root_with("k", "description: x\nfragments: [default]\nbogus: 1\n");
        let e = load(t.path(), "k").unwrap_err().to_string();
        assert!(e.contains("k.yaml:3") && e.contains("bogus"), "{e}");
        let t = root_with("k", "description: x\nbase: svn:foo\nfragments: [default]\n");
        let e = load(t.path(), "k").unwrap_err().to_string();
        assert!(e.contains("k.yaml:2") && e.contains("unknown base"), "{e}");
        let e = load(t.path(), "nope").unwrap_err().to_string();
        assert!(
            e.contains("unknown kernel `nope`") && e.contains("named kernels: k"),
            "{e}"
        );
        let t = root_with(
            "k",
            "description: x\nbase: git:/repo\nfragments: [default]\n",
        );
        let e = load(t.path(), "k").unwrap_err().to_string();
        assert!(e.contains("k.yaml:2") && e.contains("git:REPO@REF"), "{e}");
        // An intermittent entry is a report: a title, no output.
        let t = root_with(
            "k",
            "description: x\nfragments: [default]\nknown-defects:\n  - case: a/001\n    output: [x]\n    intermittent: true\n    why: a race\n",
        );
        let e = load(t.path(), "k").unwrap_err().to_string();
        assert!(e.contains("k.yaml:4") && e.contains("intermittent"), "{e}");
    }

    #[test]
    fn shipped_kernels_parse() {
        let root = crate::image::guest_program::workspace_root();
        let names = available(&root);
        for n in ["default", "debug", "famfs-v10", "famfs-v10-debug"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let ids: Vec<String> = crate::plan::case::discover(&root.join("cases"))
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        for n in names {
            let k = load(&root, &n).unwrap();
            k.check_cases(&ids).unwrap();
            let frags = crate::kernel::config::expand_fragment_names(
                &root.join("kernel-configs"),
                &k.fragments,
            )
            .unwrap();
            crate::kernel::config::load_fragments(&root.join("kernel-configs"), &frags).unwrap();
        }
    }
}
