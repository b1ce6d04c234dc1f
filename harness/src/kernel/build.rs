//! Kernel build: configure from fragments, verify, build out of tree into a
//! cache directory keyed by (source, merged config, compiler), or take a
//! prebuilt image.
//!
//! The key names the build directory. Inside it a stamp records the source
//! fingerprint of the last successful build: the same fingerprint means no
//! `make` at all; a different one (a file edited in a user tree) runs `make`
//! in the same directory, which rebuilds incrementally.

use crate::base::cache::Cache;
use crate::events::{note, Stage};
use crate::kernel::config::{self, DotConfig, KconfigIndex, Problem, Severity};
use crate::kernel::source::{KernelSource, SourceIdentity};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bumped when the way the harness configures or builds changes.
const RECIPE: &str = "allnoconfig+fragments/v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelArtifacts {
    /// The named kernel (`--kernel NAME`), if one was chosen.
    #[serde(default)]
    pub name: Option<String>,
    /// Cases that hit a known defect of this kernel (from its named file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_defects: Vec<crate::kernel::named::KnownDefect>,
    /// Cases this kernel does not run (from its named file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expunged: Vec<crate::kernel::named::Expunged>,
    pub bzimage: PathBuf,
    pub vmlinux: Option<PathBuf>,
    pub config_path: PathBuf,
    #[serde(skip)]
    pub config: DotConfig,
    /// `uname -r` of the kernel.
    pub release: String,
    pub source: Option<SourceIdentity>,
    pub build_dir: Option<PathBuf>,
    pub build_log: Option<PathBuf>,
    pub key: Option<String>,
    pub fragments: Vec<String>,
    /// Did this run invoke make?
    pub built: bool,
    /// Warnings from config verification (optional symbols absent, ...).
    pub warnings: Vec<Problem>,
    /// The famfs ABI the source's uapi header defines (`--profile auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub famfs_abi: Option<crate::kernel::abi::FamfsAbi>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Meta {
    key: String,
    recipe: String,
    source: Option<SourceIdentity>,
    merged_config_sha256: String,
    compiler: String,
    fragments: Vec<String>,
    /// Source fingerprint at the last successful build.
    built_fingerprint: Option<String>,
    release: Option<String>,
    warnings: Vec<Problem>,
    /// Objects compiled by the last build (the progress estimate of the next).
    #[serde(default)]
    objects: Option<u64>,
    /// The build directory this one was seeded from.
    #[serde(default)]
    seeded_from: Option<PathBuf>,
}

pub struct BuildRequest<'a> {
    pub source: &'a KernelSource,
    pub fragments_dir: &'a Path,
    pub fragments: Vec<String>,
    pub cache: &'a Cache,
    pub jobs: usize,
    /// Stop after configuring and verifying (no make of the kernel itself).
    pub config_only: bool,
}

pub fn compiler_version() -> Result<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let out = Command::new(&cc)
        .arg("--version")
        .output()
        .with_context(|| format!("running {cc} --version"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

/// Cache key: hash of the recipe, where the source is (content for a Debian
/// package, location for a user tree), the merged config and the compiler.
pub fn cache_key(source: &SourceIdentity, merged_hash: &str, compiler: &str) -> String {
    let loc =
        if !source.patches.is_empty() && source.commit.is_none() && source.kind != "debian-package"
        {
            // A series on a user's tree: the patched copy's location (one per
            // tree and series) keeps the build directory across edits.
            format!("patched-tree:{}", source.path.display())
        } else if !source.patches.is_empty() {
            // Base and every patch's content: one build directory per series.
            format!("patched:{}", source.content_hash)
        } else if let Some(commit) = &source.commit {
            format!("git:{commit}")
        } else if source.kind == "debian-package" {
            format!("pkg:{}", source.content_hash)
        } else {
            format!("tree:{}", source.path.display())
        };
    let mut h = Sha256::new();
    h.update(format!("{RECIPE}\n{loc}\n{merged_hash}\n{compiler}\n").as_bytes());
    crate::base::cache::hex(&h.finalize())[..16].to_string()
}

fn read_meta(p: &Path) -> Option<Meta> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn write_meta(p: &Path, m: &Meta) -> Result<()> {
    std::fs::write(p, serde_json::to_string_pretty(m)?)?;
    Ok(())
}

pub fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Configure and build (or reuse) a kernel.
pub fn build(req: &BuildRequest) -> Result<KernelArtifacts> {
    let frags = config::load_fragments(req.fragments_dir, &req.fragments)?;
    let merged = config::merge(&frags)?;
    let compiler = compiler_version()?;
    let ident = &req.source.identity;
    let key = cache_key(ident, &merged.hash(), &compiler);
    let place = BuildDir {
        req,
        dir: req
            .cache
            .dir("builds")?
            .join(format!("{}-{key}", ident.version)),
        key,
    };
    let obj = place.obj();
    std::fs::create_dir_all(&obj)?;
    // One writer per build directory; a second run waits, then finds the
    // build done (or configured) by the first.
    let _lock = crate::base::cache::Lock::acquire(
        &place.dir.join("lock"),
        "this kernel build directory",
        &mut |m| note(format!("kernel: {m}")),
    )?;
    let meta_path = place.dir.join("meta.json");
    let log_path = place.log_path();
    let meta = read_meta(&meta_path).unwrap_or_default();

    if !req.config_only
        && meta.built_fingerprint.as_deref() == Some(ident.content_hash.as_str())
        && place.bzimage().exists()
    {
        note(format!(
            "kernel: cached build {} ({}), no make needed",
            place.dir.display(),
            ident.version
        ));
        return place.artifacts(&meta, false);
    }

    note(format!(
        "kernel: building {} [{}] with fragments {} into {}",
        ident.version,
        ident.describe_line(),
        req.fragments.join(","),
        place.dir.display()
    ));
    let seeded_from = seed_if_never_built(req, &meta, &merged.hash(), &compiler, &obj)?;
    let estimate = seeded_from
        .is_none()
        .then(|| object_estimate(req.cache, &merged.hash(), meta.objects))
        .flatten();
    for tool in ["make", "gcc", "flex", "bison", "bc"] {
        crate::base::hostdeps::require_tool(tool)?;
    }
    let mut log = open_build_log(&log_path, &place.key, ident)?;

    let problems = configure(&place, &merged, &mut log)?;
    if req.config_only {
        note(format!(
            "kernel config: every requested option holds ({} checked); .config at {}",
            merged.settings.len(),
            obj.join(".config").display()
        ));
        let m = Meta {
            warnings: warnings_of(problems),
            ..meta
        };
        return place.artifacts(&m, false);
    }

    let objects = make_bzimage(&place, estimate, &mut log)?;
    let release = std::fs::read_to_string(obj.join("include/config/kernel.release"))
        .context("reading include/config/kernel.release after the build")?
        .trim()
        .to_string();
    let meta = Meta {
        key: place.key.clone(),
        recipe: RECIPE.into(),
        source: Some(ident.clone()),
        merged_config_sha256: merged.hash(),
        compiler,
        fragments: req.fragments.clone(),
        built_fingerprint: Some(ident.content_hash.clone()),
        release: Some(release),
        warnings: warnings_of(problems),
        objects: objects_to_record(&meta, seeded_from.is_some(), objects),
        seeded_from,
    };
    write_meta(&meta_path, &meta)?;
    place.artifacts(&meta, true)
}

/// One build directory of the cache, for one request: names the files in
/// it, so that the steps of [`build`] agree on where things are.
struct BuildDir<'a> {
    req: &'a BuildRequest<'a>,
    dir: PathBuf,
    key: String,
}

impl BuildDir<'_> {
    /// The out-of-tree object directory (`make O=`).
    fn obj(&self) -> PathBuf {
        self.dir.join("obj")
    }

    fn bzimage(&self) -> PathBuf {
        self.obj().join("arch/x86/boot/bzImage")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("build.log")
    }

    /// What the directory holds after a build, a cache hit or a
    /// configure-only run, as the rest of the harness sees a kernel.
    fn artifacts(&self, meta: &Meta, built: bool) -> Result<KernelArtifacts> {
        let obj = self.obj();
        let config_path = obj.join(".config");
        Ok(KernelArtifacts {
            name: None,
            known_defects: vec![],
            expunged: vec![],
            bzimage: self.bzimage(),
            vmlinux: Some(obj.join("vmlinux")).filter(|p| p.exists()),
            config: DotConfig::load(&config_path)?,
            config_path,
            release: meta.release.clone().unwrap_or_default(),
            source: Some(self.req.source.identity.clone()),
            build_dir: Some(self.dir.clone()),
            build_log: Some(self.log_path()),
            key: Some(self.key.clone()),
            fragments: self.req.fragments.clone(),
            built,
            warnings: meta.warnings.clone(),
            famfs_abi: crate::kernel::abi::of_tree(&self.req.source.dir),
        })
    }

    /// `make -C <source> O=<obj>`, the start of every make this directory
    /// runs.
    fn make(&self) -> Command {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&self.req.source.dir)
            .arg(format!("O={}", self.obj().display()));
        cmd
    }
}

/// A directory never built in (at most configured by `kernel --check`, or
/// a build that stopped) starts from a neighbour's objects when there is
/// one: returns where this directory's objects came from (the one recorded
/// before when no seeding happens now).
fn seed_if_never_built(
    req: &BuildRequest,
    meta: &Meta,
    merged_hash: &str,
    compiler: &str,
    obj: &Path,
) -> Result<Option<PathBuf>> {
    let mut seeded_from = meta.seeded_from.clone();
    if !req.config_only && meta.built_fingerprint.is_none() {
        let ident = &req.source.identity;
        if let Some(nb) = neighbour(req.cache, ident, merged_hash, compiler)? {
            let stage = Stage::start("kernel seed");
            seed(&nb, obj, ident)?;
            stage.finish(&format!("copied {}", nb.display()));
            seeded_from = Some(nb);
        }
    }
    Ok(seeded_from)
}

/// The build log, appended to across runs, opened with a line marking
/// where this run starts.
fn open_build_log(log_path: &Path, key: &str, ident: &SourceIdentity) -> Result<std::fs::File> {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    writeln!(
        log,
        "==== harness build, key {key}, fingerprint {}",
        ident.content_hash
    )?;
    Ok(log)
}

/// Configure: allnoconfig with the merged fragments preset, so the kernel
/// contains what the fragments name and little else (fast builds); then
/// verify the resulting .config, failing on an error and returning every
/// problem found (the warnings are kept with the build).
fn configure(
    place: &BuildDir,
    merged: &config::Merged,
    log: &mut std::fs::File,
) -> Result<Vec<Problem>> {
    let merged_path = place.dir.join("merged.config");
    std::fs::write(&merged_path, merged.render())?;
    let stage = Stage::start("kernel config");
    let mut cmd = place.make();
    cmd.arg(format!("KCONFIG_ALLCONFIG={}", merged_path.display()))
        .arg("allnoconfig");
    run_make(cmd, log, &place.log_path(), stage, "configuring the kernel")?;

    let cfg = DotConfig::load(&place.obj().join(".config"))?;
    let index = KconfigIndex::scan(&place.req.source.dir)?;
    let problems = config::verify(merged, &cfg, &index);
    for p in &problems {
        writeln!(log, "verify: {p}")?;
        if p.severity == Severity::Warning {
            note(format!("kernel config {p}"));
        }
    }
    config::check_problems(&problems)?;
    Ok(problems)
}

/// Build the bzImage with a progress line counting compiled objects
/// against `estimate`; returns how many it compiled.
fn make_bzimage(place: &BuildDir, estimate: Option<u64>, log: &mut std::fs::File) -> Result<u64> {
    let mut stage = Stage::start("kernel build");
    stage.count_lines(&COMPILE_LINE, estimate);
    let mut cmd = place.make();
    cmd.arg(format!("-j{}", place.req.jobs)).arg("bzImage");
    run_make(cmd, log, &place.log_path(), stage, "building the kernel")
}

/// The verification problems worth keeping with a build: its warnings
/// (errors have already stopped it).
fn warnings_of(problems: Vec<Problem>) -> Vec<Problem> {
    problems
        .into_iter()
        .filter(|p| p.severity == Severity::Warning)
        .collect()
}

/// The object count to record for the next build's progress estimate. A
/// seeded or incremental build compiles a few files: keep the estimate of
/// the last full one.
fn objects_to_record(previous: &Meta, seeded: bool, objects: u64) -> Option<u64> {
    if !seeded && previous.built_fingerprint.is_none() {
        Some(objects)
    } else {
        previous.objects.or(Some(objects))
    }
}

/// A make output line that stands for one compiled object (kbuild's short
/// output: `  CC      fs/fuse/file.o`).
static COMPILE_LINE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^\s+(CC|AS)\s+\S+\.o$").expect("static regex"));

/// Is this make output line one compiled object?
pub fn is_compile_line(l: &str) -> bool {
    COMPILE_LINE.is_match(l)
}

/// How many objects a full build of this config compiles: this directory's
/// last full build, else any full build in the cache with the same merged
/// config, else none (the progress line then shows a count only).
fn object_estimate(cache: &Cache, merged_hash: &str, own: Option<u64>) -> Option<u64> {
    own.or_else(|| {
        builds(cache).into_iter().find_map(|(_, m)| {
            (m.merged_config_sha256 == merged_hash && m.seeded_from.is_none())
                .then_some(m.objects)
                .flatten()
        })
    })
}

/// Every build directory in the cache with its metadata, newest first.
fn builds(cache: &Cache) -> Vec<(PathBuf, Meta)> {
    let Ok(root) = cache.dir("builds") else {
        return vec![];
    };
    let mut v: Vec<(std::time::SystemTime, PathBuf, Meta)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let mp = e.path().join("meta.json");
            let t = mp.metadata().ok()?.modified().ok()?;
            Some((t, e.path(), read_meta(&mp)?))
        })
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v.into_iter().map(|(_, p, m)| (p, m)).collect()
}

/// A finished build of the tree this source was copied from, with the same
/// config, compiler and recipe: its objects are valid here for every file
/// that does not differ, and every file that differs is newer.
fn neighbour(
    cache: &Cache,
    ident: &SourceIdentity,
    merged_hash: &str,
    compiler: &str,
) -> Result<Option<PathBuf>> {
    let Some(parent) = &ident.parent else {
        return Ok(None);
    };
    Ok(builds(cache).into_iter().find_map(|(dir, m)| {
        let same = m.recipe == RECIPE
            && m.merged_config_sha256 == merged_hash
            && m.compiler == compiler
            && m.built_fingerprint.is_some()
            && m.source.as_ref().is_some_and(|s| &s.path == parent);
        (same && dir.join("obj/arch/x86/boot/bzImage").exists()).then(|| dir.join("obj"))
    }))
}

/// Seed `obj` with a copy of a neighbour's build directory. kbuild records
/// every command with the absolute source path (out-of-tree builds), so the
/// copy's `.*.cmd` files are rewritten to name this source and this build
/// directory; make then rebuilds exactly what changed.
fn seed(from: &Path, obj: &Path, ident: &SourceIdentity) -> Result<()> {
    let parent = ident
        .parent
        .as_ref()
        .context("seeding needs a parent tree")?;
    if obj.exists() {
        std::fs::remove_dir_all(obj)?;
    }
    let staging = obj.with_file_name(format!("obj.seed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let st = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from)
        .arg(&staging)
        .status()
        .context("running cp")?;
    if !st.success() {
        let _ = std::fs::remove_dir_all(&staging);
        bail!(
            "copying {} to seed {} failed ({st})",
            from.display(),
            obj.display()
        );
    }
    let pairs = [
        (from.display().to_string(), obj.display().to_string()),
        (
            parent.display().to_string(),
            ident.path.display().to_string(),
        ),
    ];
    rewrite_cmd_files(&staging, &pairs)?;
    // Every file that differs from the parent tree must be newer than every
    // copied object, whenever the tree was made: the parent may have been
    // built after this tree was patched or exported.
    let now = std::time::SystemTime::now();
    for rel in &ident.differs_from_parent {
        let f = ident.path.join(rel);
        if let Ok(file) = std::fs::File::open(&f) {
            file.set_modified(now)
                .with_context(|| format!("marking {} changed", f.display()))?;
        }
    }
    let link = staging.join("source");
    if link.is_symlink() {
        std::fs::remove_file(&link)?;
        std::os::unix::fs::symlink(&ident.path, &link)?;
    }
    std::fs::rename(&staging, obj)?;
    Ok(())
}

/// Replace each `(old, new)` string in every kbuild `*.cmd` file below `dir`
/// (the per-object `.x.o.cmd` and Kconfig's `auto.conf.cmd`).
pub fn rewrite_cmd_files(dir: &Path, pairs: &[(String, String)]) -> Result<usize> {
    let mut changed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let ft = e.file_type()?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && name.ends_with(".cmd") {
                let text = std::fs::read_to_string(e.path())?;
                let mut new = text.clone();
                for (old, to) in pairs {
                    new = new.replace(old.as_str(), to);
                }
                if new != text {
                    std::fs::write(e.path(), new)?;
                    changed += 1;
                }
            }
        }
    }
    Ok(changed)
}

/// make itself failed (the source does not configure or compile), as
/// opposed to the harness failing around it: `mutate` counts such a
/// mutant apart.
#[derive(Debug)]
pub struct MakeFailed(pub String);

impl std::fmt::Display for MakeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MakeFailed {}

/// Run make, teeing its output into the build log and the progress line;
/// returns how many objects it compiled.
fn run_make(
    mut cmd: Command,
    log: &mut std::fs::File,
    log_path: &Path,
    mut stage: Stage,
    what: &str,
) -> Result<u64> {
    writeln!(log, "$ {cmd:?}")?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = crate::base::proc::GroupChild::spawn(&mut cmd, "make")?;
    let stderr = child.child.stderr.take().unwrap();
    let stdout = child.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    let t1 = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let t2 = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    let mut tail: std::collections::VecDeque<String> = Default::default();
    for line in rx {
        writeln!(log, "{line}")?;
        stage.update(&line);
        tail.push_back(line);
        if tail.len() > 25 {
            tail.pop_front();
        }
    }
    let _ = t1.join();
    let _ = t2.join();
    let status = child.child.wait()?;
    if !status.success() {
        stage.finish("failed");
        let lines: Vec<String> = tail.into_iter().collect();
        return Err(MakeFailed(format!(
            "{what} failed ({status}); full log: {}\n  {}",
            log_path.display(),
            lines.join("\n  ")
        ))
        .into());
    }
    let n = stage.counted();
    stage.finish("done");
    Ok(n)
}

/// A kernel someone else built. Its `.config` drives the requirement checks,
/// so it must be found beside the image (or in the build tree the image sits
/// in) or be given.
pub fn prebuilt(
    image: &Path,
    config_path: Option<&Path>,
    vmlinux: Option<&Path>,
) -> Result<KernelArtifacts> {
    if !image.is_file() {
        bail!("kernel image {} does not exist", image.display());
    }
    let image = image.canonicalize()?;
    let dir = image.parent().unwrap_or(Path::new("/")).to_path_buf();
    // bzImage usually sits at <build>/arch/x86/boot/bzImage.
    let build_root = dir.ancestors().nth(3).map(Path::to_path_buf);
    let candidates = |name: &str| -> Vec<PathBuf> {
        let mut v = vec![dir.join(name)];
        if let Some(r) = &build_root {
            v.push(r.join(name));
        }
        v
    };
    let config_path = match config_path {
        Some(p) if p.is_file() => p.to_path_buf(),
        Some(p) => bail!("kernel config {} does not exist", p.display()),
        None => candidates(".config")
            .into_iter()
            .chain(candidates("config"))
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "no .config found beside {} or in its build tree; give --kernel-config FILE",
                    image.display()
                )
            })?,
    };
    let vmlinux = match vmlinux {
        Some(p) if p.is_file() => Some(p.to_path_buf()),
        Some(p) => bail!("vmlinux {} does not exist", p.display()),
        None => candidates("vmlinux").into_iter().find(|p| p.is_file()),
    };
    let release = read_release_from_bzimage(&image).with_context(|| {
        format!(
            "{} is not an x86 bzImage (no `HdrS` boot header at 0x202 or no version string): give the arch/x86/boot/bzImage of a kernel build",
            image.display()
        )
    })?;
    let config_text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    if let Some(v) = config_version(&config_text) {
        // A release is VERSION.PATCHLEVEL.SUBLEVEL plus EXTRAVERSION and
        // LOCALVERSION; the .config header names the first part.
        let same = release == v
            || release
                .strip_prefix(v)
                .is_some_and(|rest| rest.starts_with(['-', '+', '.', '_']));
        if !same {
            bail!(
                "{} is for Linux {v}, but {} is release {release}: give the .config of this image with --kernel-config",
                config_path.display(),
                image.display()
            );
        }
    }
    let config = DotConfig::parse(&config_text);
    Ok(KernelArtifacts {
        name: None,
        known_defects: vec![],
        expunged: vec![],
        bzimage: image,
        vmlinux,
        config,
        config_path,
        release,
        source: None,
        build_dir: None,
        build_log: None,
        key: None,
        fragments: vec![],
        built: false,
        warnings: vec![],
        famfs_abi: None,
    })
}

/// The version a .config was made for, from its `# Linux/x86 7.3.4 Kernel
/// Configuration` header line (None for a config without one).
pub fn config_version(text: &str) -> Option<&str> {
    text.lines().take(10).find_map(|l| {
        let rest = l.strip_prefix("# Linux/")?;
        let rest = rest.strip_suffix(" Kernel Configuration")?;
        rest.split_whitespace().nth(1)
    })
}

/// The bzImage header carries a pointer to the version string (boot
/// protocol >= 2.00: u16 at 0x20E, offset from 0x200).
pub fn read_release_from_bzimage(p: &Path) -> Option<String> {
    let data = std::fs::read(p).ok()?;
    if data.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let off = u16::from_le_bytes([data[0x20E], data[0x20F]]) as usize + 0x200;
    let s = data.get(off..off + 256)?;
    let end = s.iter().position(|&b| b == 0 || b == b' ')?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_headers_name_their_version() {
        let c = "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 7.3.4 Kernel Configuration\n#\n";
        assert_eq!(config_version(c), Some("7.3.4"));
        assert_eq!(config_version("CONFIG_X=y\n"), None);
    }

    #[test]
    fn a_file_that_is_not_a_bzimage_is_refused_before_anything_boots() {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("bzImage");
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        std::fs::write(t.path().join(".config"), "CONFIG_FUSE_FS=y\n").unwrap();
        let e = format!("{:#}", prebuilt(&img, None, None).unwrap_err());
        assert!(e.contains("is not an x86 bzImage"), "{e}");
        // A header with another release than the .config's.
        let mut data = vec![0u8; 8192];
        data[0x202..0x206].copy_from_slice(b"HdrS");
        data[0x20E..0x210].copy_from_slice(&0x1000u16.to_le_bytes());
        data[0x1200..0x1206].copy_from_slice(b"6.1.0 ");
        std::fs::write(&img, &data).unwrap();
        std::fs::write(
            t.path().join(".config"),
            "#\n# Linux/x86 7.3.4 Kernel Configuration\n#\nCONFIG_FUSE_FS=y\n",
        )
        .unwrap();
        let e = format!("{:#}", prebuilt(&img, None, None).unwrap_err());
        assert!(
            e.contains("is for Linux 7.3.4") && e.contains("release 6.1.0"),
            "{e}"
        );
        data[0x1200..0x1212].copy_from_slice(b"7.3.4-famfs-v10 #1");
        std::fs::write(&img, &data).unwrap();
        assert_eq!(
            prebuilt(&img, None, None).unwrap().release,
            "7.3.4-famfs-v10"
        );
    }

    fn ident(kind: &str, hash: &str, path: &str) -> SourceIdentity {
        SourceIdentity::plain(kind, "7.3.4".into(), hash.into(), PathBuf::from(path))
    }

    #[test]
    fn a_build_is_seeded_from_its_parent_tree_with_paths_rewritten() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(t.path())).unwrap();
        let base_dir = cache.dir("builds").unwrap().join("7.3.4-base");
        let base_obj = base_dir.join("obj");
        std::fs::create_dir_all(base_obj.join("arch/x86/boot")).unwrap();
        std::fs::create_dir_all(base_obj.join("fs/fuse")).unwrap();
        std::fs::write(base_obj.join("arch/x86/boot/bzImage"), "k").unwrap();
        let cmd = format!("savedcmd_fs/fuse/file.o := gcc -I/src/base/include -c -o fs/fuse/file.o /src/base/fs/fuse/file.c # {}\n", base_obj.display());
        std::fs::write(base_obj.join("fs/fuse/.file.o.cmd"), &cmd).unwrap();
        std::fs::write(base_obj.join("fs/fuse/file.o"), "obj").unwrap();
        std::os::unix::fs::symlink("/src/base", base_obj.join("source")).unwrap();
        let meta = Meta {
            key: "base".into(),
            recipe: RECIPE.into(),
            source: Some(ident("debian-package", "h", "/src/base")),
            merged_config_sha256: "cfg".into(),
            compiler: "gcc 12".into(),
            built_fingerprint: Some("h".into()),
            ..Default::default()
        };
        write_meta(&base_dir.join("meta.json"), &meta).unwrap();

        let src = t.path().join("src-patched");
        std::fs::create_dir_all(src.join("fs/fuse")).unwrap();
        std::fs::write(src.join("fs/fuse/file.c"), "patched").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::open(src.join("fs/fuse/file.c"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut child = ident("debian-package", "p", src.to_str().unwrap());
        child.differs_from_parent = vec!["fs/fuse/file.c".into(), "fs/fuse/gone.c".into()];
        child.patches = vec![crate::kernel::patches::Patch {
            name: "x".into(),
            origin: "s:1".into(),
            strip: 1,
            sha256: "a".into(),
            text: vec![],
        }];
        assert_eq!(
            neighbour(&cache, &child, "cfg", "gcc 12").unwrap(),
            None,
            "no parent, no seed"
        );
        child.parent = Some("/src/base".into());
        assert_eq!(
            neighbour(&cache, &child, "other", "gcc 12").unwrap(),
            None,
            "another config"
        );
        assert_eq!(
            neighbour(&cache, &child, "cfg", "gcc 13").unwrap(),
            None,
            "another compiler"
        );
        let nb = neighbour(&cache, &child, "cfg", "gcc 12")
            .unwrap()
            .expect("the base build");
        assert_eq!(nb, base_obj);
        let obj = cache.dir("builds").unwrap().join("7.3.4-child/obj");
        std::fs::create_dir_all(&obj).unwrap();
        seed(&nb, &obj, &child).unwrap();
        let got = std::fs::read_to_string(obj.join("fs/fuse/.file.o.cmd")).unwrap();
        let p = src.display();
        assert_eq!(got, format!("savedcmd_fs/fuse/file.o := gcc -I{p}/include -c -o fs/fuse/file.o {p}/fs/fuse/file.c # {}\n", obj.display()));
        assert_eq!(std::fs::read_link(obj.join("source")).unwrap(), src);
        // The patched file is now newer than the copied object, although it
        // was written long before the base was built.
        let mtime = |f: &Path| std::fs::metadata(f).unwrap().modified().unwrap();
        assert!(mtime(&src.join("fs/fuse/file.c")) >= mtime(&obj.join("fs/fuse/file.o")));
        assert_eq!(
            std::fs::read_to_string(obj.join("fs/fuse/file.o")).unwrap(),
            "obj"
        );
        // The base's own build directory is unchanged.
        assert_eq!(
            std::fs::read_to_string(base_obj.join("fs/fuse/.file.o.cmd")).unwrap(),
            cmd
        );
    }

    #[test]
    fn key_follows_inputs() {
        let a = cache_key(&ident("debian-package", "h1", "/x"), "cfg", "gcc 12");
        assert_eq!(a.len(), 16);
        assert_eq!(
            a,
            cache_key(&ident("debian-package", "h1", "/y"), "cfg", "gcc 12")
        );
        assert_ne!(
            a,
            cache_key(&ident("debian-package", "h2", "/x"), "cfg", "gcc 12")
        );
        assert_ne!(
            a,
            cache_key(&ident("debian-package", "h1", "/x"), "cfg2", "gcc 12")
        );
        assert_ne!(
            a,
            cache_key(&ident("debian-package", "h1", "/x"), "cfg", "gcc 13")
        );
        // A user tree keeps its build directory across edits (incremental).
        let t = cache_key(&ident("git", "e1", "/src/linux"), "cfg", "gcc 12");
        assert_eq!(
            t,
            cache_key(&ident("git", "e2", "/src/linux"), "cfg", "gcc 12")
        );
    }

    #[test]
    fn prebuilt_needs_a_config() {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("bzImage");
        let mut data = vec![0u8; 0x1300];
        data[0x202..0x206].copy_from_slice(b"HdrS");
        data[0x20E..0x210].copy_from_slice(&0x1000u16.to_le_bytes());
        data[0x1200..0x1206].copy_from_slice(b"7.3.4 ");
        std::fs::write(&img, &data).unwrap();
        let e = prebuilt(&img, None, None).unwrap_err().to_string();
        assert!(e.contains("--kernel-config"), "{e}");
        std::fs::write(t.path().join(".config"), "CONFIG_FUSE_FS=y\n").unwrap();
        let k = prebuilt(&img, None, None).unwrap();
        assert!(k.config.enabled("FUSE_FS"));
        let e = prebuilt(&t.path().join("nope"), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
