//! Kernel sources: a tree the user names, or Debian's `linux-source-X.Y`
//! fetched into the cache with a private apt configuration (the system's apt
//! sources are never touched).

use crate::base::cache::{hex, sha256_file, Cache};
use crate::base::proc::run_logged;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The default kernel: Debian's package of upstream 7.3, from trixie-backports.
pub const DEFAULT_PACKAGE: &str = "linux-source-7.3";
const DEFAULT_SUITE: &str = "trixie-backports";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// What a kernel tree is, recorded with every build and result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceIdentity {
    /// "debian-package", "git" or "tree".
    pub kind: String,
    /// `VERSION.PATCHLEVEL.SUBLEVEL EXTRAVERSION` from the top Makefile.
    pub version: String,
    /// Debian package version, for a fetched package.
    pub package: Option<String>,
    /// `git describe --always --dirty`, for a git tree.
    pub describe: Option<String>,
    /// sha256 of the .deb for a package; for other trees, of every file's
    /// path, size and modification time (see [`tree_fingerprint`]).
    pub content_hash: String,
    /// Where the tree is (part of the build-cache key for user trees).
    pub path: PathBuf,
    /// The commit, for a tree exported from a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The series applied on top of the base, and each patch's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<crate::kernel::patches::Patch>,
    /// The tree this one was copied from, so that a build of that tree can
    /// seed a build of this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<PathBuf>,
    /// Files (relative) that differ from `parent`: a seeded build marks them
    /// newer than every copied object, whatever order the trees and builds
    /// were made in, so make rebuilds exactly what differs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differs_from_parent: Vec<PathBuf>,
}

impl SourceIdentity {
    /// A plain tree: no commit, no patches, no parent.
    pub fn plain(
        kind: &str,
        version: String,
        content_hash: String,
        path: PathBuf,
    ) -> SourceIdentity {
        SourceIdentity {
            kind: kind.into(),
            version,
            package: None,
            describe: None,
            content_hash,
            path,
            commit: None,
            series: None,
            patches: vec![],
            parent: None,
            differs_from_parent: vec![],
        }
    }

    /// One line for people: what the kernel is built from.
    pub fn describe_line(&self) -> String {
        let mut s = self
            .package
            .clone()
            .or(self.describe.clone())
            .unwrap_or_else(|| self.kind.clone());
        if !self.patches.is_empty() {
            s.push_str(&format!(
                " + {} patches from {}",
                self.patches.len(),
                self.series
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ));
        }
        s
    }
}

#[derive(Debug, Clone)]
pub struct KernelSource {
    pub dir: PathBuf,
    pub identity: SourceIdentity,
}

/// Read the version from a kernel tree's top Makefile; fails when the
/// directory does not look like a kernel tree.
pub fn kernel_version(dir: &Path) -> Result<String> {
    if !dir.exists() {
        bail!("kernel source {} does not exist (give --kernel-src a kernel tree, or omit it to use Debian's {DEFAULT_PACKAGE})", dir.display());
    }
    if !dir.is_dir() {
        bail!("kernel source {} is not a directory", dir.display());
    }
    let mk = dir.join("Makefile");
    let text = std::fs::read_to_string(&mk).ok();
    let looks = text
        .as_deref()
        .map(|t| t.contains("\nPATCHLEVEL ="))
        .unwrap_or(false)
        && dir.join("Kconfig").exists()
        && dir.join("arch/x86/Kconfig").exists();
    if !looks {
        bail!(
            "{} is not a kernel tree (expected a top Makefile with VERSION/PATCHLEVEL, Kconfig and arch/x86/)",
            dir.display()
        );
    }
    let text = text.unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|r| r.trim_start().trim_start_matches('=').trim().to_string())
            })
            .unwrap_or_default()
    };
    let mut v = format!(
        "{}.{}.{}",
        field("VERSION"),
        field("PATCHLEVEL"),
        field("SUBLEVEL")
    );
    let extra = field("EXTRAVERSION");
    if !extra.is_empty() {
        v.push_str(&extra);
    }
    Ok(v)
}

/// A cheap change detector for a tree: sha256 over (path, size, mtime) of
/// every file, skipping `.git`. A full content hash of 1.5 GB on every run
/// would cost seconds; a stat walk costs a fraction of that and catches every
/// edit made through the file system.
pub fn tree_fingerprint(dir: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let mut entries: Vec<(String, u64, i64, i64)> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?;
        for e in rd {
            let e = e?;
            let name = e.file_name();
            if name == ".git" {
                continue;
            }
            let ft = e.file_type()?;
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else {
                let md = std::fs::symlink_metadata(&p)?;
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                entries.push((rel, md.size(), md.mtime(), md.mtime_nsec()));
            }
        }
    }
    entries.sort();
    let mut h = Sha256::new();
    for (p, s, m, n) in entries {
        h.update(format!("{p}\0{s}\0{m}.{n}\n").as_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// Open a user-supplied kernel tree.
pub fn open_tree(dir: &Path) -> Result<KernelSource> {
    let version = kernel_version(dir)?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    // An in-tree build leaves a .config behind; `make O=` then refuses to run.
    if dir.join(".config").exists() || dir.join("include/config/auto.conf").exists() {
        bail!(
            "kernel tree {} has been configured in place (.config present); the harness builds out of tree and will not touch it: run `make mrproper` there first",
            dir.display()
        );
    }
    let git = dir.join(".git").exists();
    let describe = if git {
        Command::new("git")
            .args(["describe", "--always", "--dirty", "--tags"])
            .current_dir(&dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        None
    };
    let content_hash = tree_fingerprint(&dir)?;
    let mut identity = SourceIdentity::plain(
        if git { "git" } else { "tree" },
        version,
        content_hash,
        dir.clone(),
    );
    identity.describe = describe;
    Ok(KernelSource { identity, dir })
}

/// A short stable name for a string (cache directory names).
fn short_hash(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))[..16].to_string()
}

/// Move a finished staging directory into place. Another run may have
/// made the same tree meanwhile; then its copy is used and ours dropped.
fn publish(staging: &Path, dest: &Path) -> Result<()> {
    match std::fs::rename(staging, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            let _ = std::fs::remove_dir_all(staging);
            Ok(())
        }
        Err(e) => {
            Err(e).with_context(|| format!("moving {} to {}", staging.display(), dest.display()))
        }
    }
}

/// The base with a patch series applied, as a private tree in the cache
/// (made once per base and series content).
pub fn patched(
    cache: &Cache,
    base: &KernelSource,
    series: &crate::kernel::patches::Series,
    allow_fuzz: bool,
    log: &mut dyn FnMut(&str),
) -> Result<KernelSource> {
    let b = &base.identity;
    let content = short_hash(&format!("{}\n{}", b.content_hash, series.hash()));
    // A package or a commit never changes: one tree per base and series. A
    // user's tree is edited: one tree per location and series, made again
    // when the tree changed, so that its build directory stays the same and
    // make rebuilds only what the edit touched.
    let user_tree = b.kind != "debian-package" && b.commit.is_none();
    let key = if user_tree {
        short_hash(&format!("tree\n{}\n{}", b.path.display(), series.hash()))
    } else {
        short_hash(&format!(
            "{}\n{}\n{}\n{}",
            b.kind,
            b.content_hash,
            b.path.display(),
            series.hash()
        ))
    };
    let root = cache.dir("trees")?.join(format!("patched-{key}"));
    std::fs::create_dir_all(&root)?;
    let _lock = crate::base::cache::Lock::acquire(&root.join("lock"), "this patched tree", log)?;
    let tree = root.join("linux");
    let stamp = root.join("applied");
    let current = std::fs::read_to_string(&stamp).ok();
    if !tree.join("Makefile").exists() || current.as_deref() != Some(content.as_str()) {
        if tree.exists() {
            log(&format!(
                "{} changed since the series was applied: applying it again",
                b.path.display()
            ));
            std::fs::remove_dir_all(&tree)
                .with_context(|| format!("removing the stale {}", tree.display()))?;
        }
        log(&format!(
            "applying {} patches from {} to {}",
            series.patches.len(),
            series.path.display(),
            b.describe_line()
        ));
        if let Err(e) = crate::kernel::patches::apply(&base.dir, series, &tree, allow_fuzz, log) {
            let _ = std::fs::remove_file(&stamp);
            return Err(e);
        }
        std::fs::write(&stamp, &content)?;
    }
    let version = kernel_version(&tree)?;
    let mut identity = SourceIdentity::plain(&b.kind, version, content, tree.clone());
    identity.package = b.package.clone();
    identity.describe = b.describe.clone();
    identity.commit = b.commit.clone();
    identity.series = Some(series.path.clone());
    identity.patches = series.patches.clone();
    identity.parent = Some(b.path.clone());
    let mut differs: Vec<PathBuf> = series
        .patches
        .iter()
        .flat_map(crate::kernel::patches::touched_files)
        .collect();
    differs.sort();
    differs.dedup();
    identity.differs_from_parent = differs;
    Ok(KernelSource {
        dir: tree,
        identity,
    })
}

/// Run a git command (xshell), capturing its output; a failure is `what`
/// with git's own message.
fn git_out(cmd: xshell::Cmd<'_>, what: &str) -> Result<String> {
    let out = cmd
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running git ({what})"))?;
    if !out.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One commit of a local git repository, exported into the cache without
/// touching the repository's checkout, index or refs (a private index file
/// is used). When another commit of the same repository was exported
/// before, the new tree is a hard-link copy of the closest one with only
/// the differing files written, so a build of that commit can seed this
/// one's (`parent`).
pub fn from_git(
    cache: &Cache,
    repo: &Path,
    rev: &str,
    log: &mut dyn FnMut(&str),
) -> Result<KernelSource> {
    crate::base::hostdeps::require_tool("git")?;
    if !repo.is_dir() {
        bail!("--kernel-git {} does not exist", repo.display());
    }
    let repo = repo.canonicalize()?;
    let sh = xshell::Shell::new()?;
    let commit = resolve_kernel_commit(&sh, &repo, rev)?;
    let base = cache
        .dir("trees")?
        .join(format!("git-{}", short_hash(&repo.display().to_string())));
    std::fs::create_dir_all(&base)?;
    let dest = base.join(&commit);
    let describe = git_out(
        xshell::cmd!(sh, "git -C {repo} describe --always --tags {commit}"),
        "git describe",
    )
    .ok();
    if !dest.join(".harness-exported").exists() {
        let export = GitExport {
            sh: &sh,
            repo: &repo,
            base: &base,
            commit: &commit,
        };
        let label = describe.as_deref().unwrap_or(rev);
        export.export(&dest, label, log)?;
    }
    exported_source(&dest, commit, describe)
}

/// `rev` of `repo` as a full commit id, refused unless the repository is
/// one and the commit holds a kernel tree: checked before anything is
/// written to the cache, with messages that name what the user gave.
fn resolve_kernel_commit(sh: &xshell::Shell, repo: &Path, rev: &str) -> Result<String> {
    git_out(
        xshell::cmd!(sh, "git -C {repo} rev-parse --git-dir"),
        &format!("{} is not a git repository", repo.display()),
    )?;
    let want = format!("{rev}^{{commit}}");
    let commit = git_out(
        xshell::cmd!(sh, "git -C {repo} rev-parse --verify --quiet {want}"),
        &format!("ref `{rev}` does not exist in {}", repo.display()),
    )
    .map_err(|_| {
        anyhow::anyhow!(
            "ref `{rev}` does not exist in {} (git rev-parse found no commit)",
            repo.display()
        )
    })?;
    for f in ["Makefile", "Kconfig", "arch/x86/Kconfig"] {
        let object = format!("{commit}:{f}");
        if git_out(
            xshell::cmd!(sh, "git -C {repo} cat-file -e {object}"),
            "git cat-file",
        )
        .is_err()
        {
            bail!(
                "{} at {rev} ({}) is not a kernel tree: it has no {f}",
                repo.display(),
                &commit[..12]
            );
        }
    }
    Ok(commit)
}

/// One commit being exported from `repo` into `base` (the cache directory
/// of that repository's trees); groups what every export step needs.
struct GitExport<'a> {
    sh: &'a xshell::Shell,
    repo: &'a Path,
    base: &'a Path,
    commit: &'a str,
}

impl GitExport<'_> {
    /// Export into `dest` through a staging directory and a private index,
    /// both removed whatever happens, so that a failed export leaves
    /// nothing a later run could take for a tree; records the tree it was
    /// copied from as `.harness-parent`.
    fn export(&self, dest: &Path, label: &str, log: &mut dyn FnMut(&str)) -> Result<()> {
        let staging = self.base.join(format!(
            ".staging-{}-{}",
            std::process::id(),
            &self.commit[..12]
        ));
        let _ = std::fs::remove_dir_all(&staging);
        let index = self.base.join(format!(".index-{}", std::process::id()));
        let result = self.stage(&staging, &index, dest, label, log);
        let _ = std::fs::remove_file(&index);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        if let Some(parent) = result? {
            std::fs::write(dest.join(".harness-parent"), parent.display().to_string())?;
        }
        Ok(())
    }

    /// Fill `staging` from the closest cached export (or from scratch),
    /// stamp it and publish it as `dest`; returns the export it was copied
    /// from.
    fn stage(
        &self,
        staging: &Path,
        index: &Path,
        dest: &Path,
        label: &str,
        log: &mut dyn FnMut(&str),
    ) -> Result<Option<PathBuf>> {
        let (sh, repo, commit) = (self.sh, self.repo, self.commit);
        git_out(
            xshell::cmd!(sh, "git -C {repo} read-tree {commit}").env("GIT_INDEX_FILE", index),
            "git read-tree into a private index",
        )?;
        let neighbour = closest_export(repo, self.base, commit)?;
        let prefix = format!("{}/", staging.display());
        match &neighbour {
            Some((nb, changed)) => {
                log(&format!(
                    "exporting {} from {}: {} files differ from the cached {}",
                    &commit[..12],
                    repo.display(),
                    changed.len(),
                    nb.display()
                ));
                self.stage_from_neighbour(nb, changed, staging, index, &prefix)?;
            }
            None => {
                log(&format!(
                    "exporting {} ({}) from {} into the cache",
                    &commit[..12],
                    label,
                    repo.display()
                ));
                std::fs::create_dir_all(staging)?;
                checkout_index(repo, index, &prefix, None)?;
            }
        }
        std::fs::write(staging.join(".harness-exported"), commit)?;
        publish(staging, dest)?;
        Ok(neighbour.map(|(p, _)| p))
    }

    /// The incremental export: a hard-link copy of the neighbour `nb` with
    /// the `changed` files (git's name-status pairs) removed and those that
    /// still exist checked out; the list is kept as `.harness-differs` for
    /// a seeded build.
    fn stage_from_neighbour(
        &self,
        nb: &Path,
        changed: &[(String, String)],
        staging: &Path,
        index: &Path,
        prefix: &str,
    ) -> Result<()> {
        crate::kernel::patches::link_copy(nb, staging)?;
        let _ = std::fs::remove_file(staging.join(".harness-exported"));
        let mut write = Vec::new();
        for (status, path) in changed {
            let f = staging.join(path);
            if f.is_file() || f.is_symlink() {
                std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
            }
            if status != "D" {
                write.push(path.clone());
            }
        }
        if !write.is_empty() {
            checkout_index(self.repo, index, prefix, Some(&write))?;
        }
        let list: String = changed.iter().map(|(_, p)| format!("{p}\n")).collect();
        std::fs::write(staging.join(".harness-differs"), list)?;
        Ok(())
    }
}

/// The source an exported commit is: its identity is rebuilt from the
/// export's stamp files, so a tree exported by an earlier run carries the
/// same parent and differing files as a fresh one.
fn exported_source(dest: &Path, commit: String, describe: Option<String>) -> Result<KernelSource> {
    let version = kernel_version(dest)?;
    let mut identity = SourceIdentity::plain("git", version, commit.clone(), dest.to_path_buf());
    identity.describe = describe;
    identity.commit = Some(commit);
    identity.parent = std::fs::read_to_string(dest.join(".harness-parent"))
        .ok()
        .map(PathBuf::from);
    identity.differs_from_parent = std::fs::read_to_string(dest.join(".harness-differs"))
        .unwrap_or_default()
        .lines()
        .map(PathBuf::from)
        .collect();
    Ok(KernelSource {
        dir: dest.to_path_buf(),
        identity,
    })
}

/// `git checkout-index` into `prefix` from a private index: every file, or
/// the given paths (fed on stdin, so any number of them).
fn checkout_index(repo: &Path, index: &Path, prefix: &str, paths: Option<&[String]>) -> Result<()> {
    let sh = xshell::Shell::new()?;
    let prefix = format!("--prefix={prefix}");
    let cmd =
        xshell::cmd!(sh, "git -C {repo} checkout-index -f {prefix}").env("GIT_INDEX_FILE", index);
    match paths {
        None => git_out(cmd.arg("-a"), "git checkout-index -a")?,
        Some(paths) => {
            let list: Vec<u8> = paths.iter().flat_map(|p| p.bytes().chain([0])).collect();
            git_out(
                cmd.args(["--stdin", "-z"]).stdin(list),
                "git checkout-index --stdin",
            )?
        }
    };
    Ok(())
}

/// The exported commit of `repo` that differs from `commit` in the fewest
/// files (among the eight most recent exports), with those files.
#[allow(clippy::type_complexity)]
fn closest_export(
    repo: &Path,
    base: &Path,
    commit: &str,
) -> Result<Option<(PathBuf, Vec<(String, String)>)>> {
    let mut exports: Vec<(std::time::SystemTime, PathBuf, String)> = std::fs::read_dir(base)?
        .flatten()
        .filter_map(|e| {
            let stamp = e.path().join(".harness-exported");
            let c = std::fs::read_to_string(&stamp).ok()?;
            Some((
                stamp.metadata().ok()?.modified().ok()?,
                e.path(),
                c.trim().to_string(),
            ))
        })
        .collect();
    exports.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut best: Option<(PathBuf, Vec<(String, String)>)> = None;
    for (_, path, c) in exports.into_iter().take(8) {
        let sh = xshell::Shell::new()?;
        let Ok(out) = git_out(
            xshell::cmd!(
                sh,
                "git -C {repo} diff --name-status --no-renames -z {c} {commit}"
            ),
            "git diff",
        ) else {
            continue;
        };
        let fields: Vec<&str> = out.split('\0').filter(|s| !s.is_empty()).collect();
        let changed: Vec<(String, String)> = fields
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].to_string(), c[1].to_string()))
            .collect();
        if best.as_ref().is_none_or(|(_, b)| changed.len() < b.len()) {
            best = Some((path, changed));
        }
    }
    Ok(best)
}

/// Options apt needs to work from a private state: its own source list,
/// package lists and archive cache under `root`.
fn apt_opts(root: &Path) -> Vec<String> {
    let s = |k: &str, v: &Path| format!("-o{k}={}", v.display());
    vec![
        s("Dir::Etc::SourceList", &root.join("sources.list")),
        s("Dir::Etc::SourceParts", &root.join("sources.list.d")),
        s("Dir::State::Lists", &root.join("lists")),
        s("Dir::Cache", &root.join("cache")),
        "-oDebug::NoLocking=1".into(),
        "-oAPT::Get::List-Cleanup=0".into(),
        "-oAPT::Sandbox::User=root".into(),
    ]
}

/// Fetch (once) and unpack (once) Debian's kernel source package.
pub fn fetch_debian(
    cache: &Cache,
    package: &str,
    log: &mut dyn FnMut(&str),
) -> Result<KernelSource> {
    let base = cache.dir("sources")?;
    // apt's private lists and archives are shared by every run of this cache.
    let _lock = crate::base::cache::Lock::acquire(
        &base.join("debian.lock"),
        "the Debian source download",
        log,
    )?;
    let apt = base.join("apt");
    std::fs::create_dir_all(apt.join("sources.list.d"))?;
    std::fs::create_dir_all(apt.join("lists/partial"))?;
    std::fs::create_dir_all(apt.join("cache/archives/partial"))?;
    std::fs::write(apt.join("sources.list"), "")?;
    let mirror =
        std::env::var("FAMFS_HARNESS_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into());
    std::fs::write(
        apt.join("sources.list.d/kernel.sources"),
        format!(
            "Types: deb\nURIs: {mirror}\nSuites: {DEFAULT_SUITE}\nComponents: main\nArchitectures: amd64\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        ),
    )?;
    let existing_deb = find_deb(&base, package)?;
    let deb = match existing_deb {
        Some(d) => d,
        None => {
            for tool in ["apt-get", "dpkg-deb", "tar", "xz"] {
                crate::base::hostdeps::require_tool(tool)?;
            }
            log(&format!(
                "fetching Debian package {package} ({DEFAULT_SUITE}) into {}",
                base.display()
            ));
            let opts = apt_opts(&apt);
            run_logged(
                Command::new("apt-get").args(&opts).arg("-q").arg("update"),
                "apt-get update (private source list)",
            )?;
            run_logged(
                Command::new("apt-get")
                    .args(&opts)
                    .args(["-q", "download", package])
                    .current_dir(&base),
                &format!("apt-get download {package}"),
            )?;
            find_deb(&base, package)?.with_context(|| {
                format!(
                    "apt-get download {package} produced no .deb in {}",
                    base.display()
                )
            })?
        }
    };
    let deb_name = deb.file_name().unwrap().to_string_lossy().into_owned();
    // linux-source-7.3_7.3.4-1~bpo13+1_all.deb -> 7.3.4-1~bpo13+1
    let pkg_version = deb_name.split('_').nth(1).unwrap_or("unknown").to_string();
    let unpack = base.join(format!("{package}_{pkg_version}"));
    let stamp = unpack.join(".harness-unpacked");
    let tree = unpack.join(package);
    if !stamp.exists() {
        log(&format!("unpacking {deb_name}"));
        if unpack.exists() {
            std::fs::remove_dir_all(&unpack)?;
        }
        std::fs::create_dir_all(&unpack)?;
        let tarball = format!("./usr/src/{package}.tar.xz");
        let sh = format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -xO '{tarball}' | tar -xJ -C '{}'",
            deb.display(),
            unpack.display()
        );
        run_logged(
            Command::new("sh").args(["-c", &sh]),
            &format!("unpacking {deb_name}"),
        )?;
        if !tree.join("Makefile").exists() {
            bail!("unpacking {deb_name} did not yield {}", tree.display());
        }
        let sum = sha256_file(&deb)?;
        std::fs::write(&stamp, sum)?;
    }
    let content_hash = std::fs::read_to_string(&stamp)?.trim().to_string();
    let version = kernel_version(&tree)?;
    let mut identity = SourceIdentity::plain("debian-package", version, content_hash, tree.clone());
    identity.package = Some(format!("{package} {pkg_version}"));
    Ok(KernelSource {
        dir: tree,
        identity,
    })
}

fn find_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with(&format!("{package}_")) && n.ends_with(".deb")
        })
        .collect();
    found.sort();
    Ok(found.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("Makefile"),
            "VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION = -rc1\n",
        )
        .unwrap();
        std::fs::write(t.path().join("Kconfig"), "").unwrap();
        std::fs::create_dir_all(t.path().join("arch/x86")).unwrap();
        std::fs::write(t.path().join("arch/x86/Kconfig"), "").unwrap();
        t
    }

    #[test]
    fn version_and_bad_trees() {
        let t = fake_tree();
        assert_eq!(kernel_version(t.path()).unwrap(), "7.3.4-rc1");
        let e = kernel_version(Path::new("/nonexistent/linux"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/linux does not exist"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = kernel_version(empty.path()).unwrap_err().to_string();
        assert!(e.contains("is not a kernel tree"), "{e}");
    }

    #[test]
    fn configured_tree_is_refused() {
        let t = fake_tree();
        std::fs::write(t.path().join(".config"), "").unwrap();
        let e = open_tree(t.path()).unwrap_err().to_string();
        assert!(e.contains("mrproper"), "{e}");
    }

    fn git_cmd(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A throwaway repository holding a (tiny) kernel tree in two commits.
    fn repo() -> (tempfile::TempDir, String, String) {
        let t = fake_tree();
        std::fs::write(t.path().join("a.c"), "one\n").unwrap();
        std::fs::write(t.path().join("gone.c"), "bye\n").unwrap();
        git_cmd(t.path(), &["init", "-q", "-b", "main"]);
        git_cmd(t.path(), &["add", "-A"]);
        git_cmd(t.path(), &["commit", "-qm", "first"]);
        let first = git_cmd(t.path(), &["rev-parse", "HEAD"]);
        std::fs::write(t.path().join("a.c"), "two\n").unwrap();
        std::fs::remove_file(t.path().join("gone.c")).unwrap();
        std::fs::write(t.path().join("new.c"), "new\n").unwrap();
        git_cmd(t.path(), &["add", "-A"]);
        git_cmd(t.path(), &["commit", "-qm", "second"]);
        git_cmd(t.path(), &["tag", "v2"]);
        let second = git_cmd(t.path(), &["rev-parse", "HEAD"]);
        // Work in progress that must not leak into exports or be disturbed.
        std::fs::write(t.path().join("a.c"), "dirty\n").unwrap();
        (t, first, second)
    }

    #[test]
    fn git_exports_a_commit_and_derives_the_next_from_it() {
        let (r, first, second) = repo();
        let cache = Cache::open(Some(&tempfile::tempdir().unwrap().keep())).unwrap();
        let status_before = git_cmd(r.path(), &["status", "--porcelain"]);
        let a = from_git(&cache, r.path(), &first[..10], &mut |_| {}).unwrap();
        assert_eq!(a.identity.kind, "git");
        assert_eq!(a.identity.commit.as_deref(), Some(first.as_str()));
        assert_eq!(a.identity.version, "7.3.4-rc1");
        assert_eq!(std::fs::read_to_string(a.dir.join("a.c")).unwrap(), "one\n");
        assert!(a.dir.join("gone.c").exists());
        assert_eq!(a.identity.parent, None);
        let mut said = Vec::new();
        let b = from_git(&cache, r.path(), "v2", &mut |m| said.push(m.to_string())).unwrap();
        assert_eq!(b.identity.commit.as_deref(), Some(second.as_str()));
        assert_eq!(b.identity.parent.as_deref(), Some(a.dir.as_path()));
        assert!(
            said.iter().any(|m| m.contains("3 files differ")),
            "{said:?}"
        );
        let mut differs = b.identity.differs_from_parent.clone();
        differs.sort();
        assert_eq!(
            differs,
            [PathBuf::from("a.c"), "gone.c".into(), "new.c".into()]
        );
        assert_eq!(std::fs::read_to_string(b.dir.join("a.c")).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_to_string(b.dir.join("new.c")).unwrap(),
            "new\n"
        );
        assert!(!b.dir.join("gone.c").exists());
        // The first export is untouched, and so is the user's checkout.
        assert_eq!(std::fs::read_to_string(a.dir.join("a.c")).unwrap(), "one\n");
        assert_eq!(git_cmd(r.path(), &["status", "--porcelain"]), status_before);
        assert_eq!(
            std::fs::read_to_string(r.path().join("a.c")).unwrap(),
            "dirty\n"
        );
        // Differing files are newer than the tree they came from (seeding).
        let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert!(mtime(&b.dir.join("a.c")) >= mtime(&a.dir.join("a.c")));
        // A second export of the same commit reuses the tree.
        let again = from_git(&cache, r.path(), &second, &mut |_| panic!("exported twice")).unwrap();
        assert_eq!(again.dir, b.dir);
    }

    #[test]
    fn git_bad_inputs() {
        let (r, _, _) = repo();
        let cache = Cache::open(Some(&tempfile::tempdir().unwrap().keep())).unwrap();
        let e = from_git(&cache, r.path(), "no-such-ref", &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("ref `no-such-ref` does not exist"), "{e}");
        let plain = tempfile::tempdir().unwrap();
        let e = from_git(&cache, plain.path(), "HEAD", &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a git repository"), "{e}");
        let e = from_git(&cache, Path::new("/nonexistent/repo"), "HEAD", &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        let notkernel = tempfile::tempdir().unwrap();
        std::fs::write(notkernel.path().join("README"), "x").unwrap();
        git_cmd(notkernel.path(), &["init", "-q"]);
        git_cmd(notkernel.path(), &["add", "-A"]);
        git_cmd(notkernel.path(), &["commit", "-qm", "x"]);
        let e = from_git(&cache, notkernel.path(), "HEAD", &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not a kernel tree") && e.contains("Makefile"),
            "{e}"
        );
    }

    #[test]
    fn patched_identity_includes_every_patch() {
        let t = fake_tree();
        let cache = Cache::open(Some(&tempfile::tempdir().unwrap().keep())).unwrap();
        let base = KernelSource {
            dir: t.path().to_path_buf(),
            identity: SourceIdentity::plain(
                "debian-package",
                "7.3.4-rc1".into(),
                "debhash".into(),
                t.path().to_path_buf(),
            ),
        };
        let pdir = tempfile::tempdir().unwrap();
        let mk = |body: &str| {
            std::fs::write(
                pdir.path().join("1.patch"),
                format!("--- a/Kconfig\n+++ b/Kconfig\n@@ -0,0 +1 @@\n+{body}\n"),
            )
            .unwrap();
            std::fs::write(pdir.path().join("series"), "1.patch\n").unwrap();
            crate::kernel::patches::load(&pdir.path().join("series")).unwrap()
        };
        let s1 = mk("# one");
        let a = patched(&cache, &base, &s1, false, &mut |_| {}).unwrap();
        assert_eq!(a.identity.patches.len(), 1);
        assert_eq!(a.identity.differs_from_parent, [PathBuf::from("Kconfig")]);
        assert_eq!(a.identity.parent.as_deref(), Some(t.path()));
        assert_eq!(
            std::fs::read_to_string(a.dir.join("Kconfig")).unwrap(),
            "# one\n"
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("Kconfig")).unwrap(),
            ""
        );
        let s2 = mk("# two");
        let b = patched(&cache, &base, &s2, false, &mut |_| {}).unwrap();
        assert_ne!(a.identity.content_hash, b.identity.content_hash);
        assert_ne!(a.dir, b.dir);
        let ka = crate::kernel::build::cache_key(&a.identity, "cfg", "gcc");
        assert_ne!(
            ka,
            crate::kernel::build::cache_key(&b.identity, "cfg", "gcc")
        );
        assert_ne!(
            ka,
            crate::kernel::build::cache_key(&base.identity, "cfg", "gcc")
        );
    }

    #[test]
    fn a_series_on_a_user_tree_follows_its_edits_in_one_place() {
        let t = fake_tree();
        let cache = Cache::open(Some(&tempfile::tempdir().unwrap().keep())).unwrap();
        let pdir = tempfile::tempdir().unwrap();
        std::fs::write(
            pdir.path().join("1.patch"),
            "--- a/Kconfig\n+++ b/Kconfig\n@@ -0,0 +1 @@\n+# patched\n",
        )
        .unwrap();
        std::fs::write(pdir.path().join("series"), "1.patch\n").unwrap();
        let series = crate::kernel::patches::load(&pdir.path().join("series")).unwrap();
        let a = patched(
            &cache,
            &open_tree(t.path()).unwrap(),
            &series,
            false,
            &mut |_| {},
        )
        .unwrap();
        std::fs::write(t.path().join("edited.c"), "int edited;").unwrap();
        let mut said = Vec::new();
        let b = patched(
            &cache,
            &open_tree(t.path()).unwrap(),
            &series,
            false,
            &mut |m| said.push(m.to_string()),
        )
        .unwrap();
        assert!(
            said.iter()
                .any(|m| m.contains("changed since the series was applied")),
            "{said:?}"
        );
        assert_eq!(a.dir, b.dir, "one patched copy per tree and series");
        assert!(b.dir.join("edited.c").exists());
        assert_ne!(a.identity.content_hash, b.identity.content_hash);
        assert_eq!(
            crate::kernel::build::cache_key(&a.identity, "c", "g"),
            crate::kernel::build::cache_key(&b.identity, "c", "g"),
            "one build directory: incremental"
        );
        // Unchanged: nothing is applied again.
        patched(
            &cache,
            &open_tree(t.path()).unwrap(),
            &series,
            false,
            &mut |m| panic!("{m}"),
        )
        .unwrap();
    }

    #[test]
    fn fingerprint_changes_with_a_file() {
        let t = fake_tree();
        let a = tree_fingerprint(t.path()).unwrap();
        assert_eq!(a, tree_fingerprint(t.path()).unwrap());
        std::fs::write(t.path().join("arch/x86/new.c"), "int x;").unwrap();
        assert_ne!(a, tree_fingerprint(t.path()).unwrap());
    }
}
