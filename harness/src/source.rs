//! Kernel sources: a tree the user names, or Debian's `linux-source-X.Y`
//! fetched into the cache with a private apt configuration (the system's apt
//! sources are never touched).

use crate::cache::Cache;
use crate::config::hex;
use crate::proc::run_logged;
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
    let looks = text.as_deref().map(|t| t.contains("\nPATCHLEVEL =")).unwrap_or(false)
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
            .find_map(|l| l.strip_prefix(k).map(|r| r.trim_start().trim_start_matches('=').trim().to_string()))
            .unwrap_or_default()
    };
    let mut v = format!("{}.{}.{}", field("VERSION"), field("PATCHLEVEL"), field("SUBLEVEL"));
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
                let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().into_owned();
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
    let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
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
    Ok(KernelSource {
        identity: SourceIdentity {
            kind: if git { "git".into() } else { "tree".into() },
            version,
            package: None,
            describe,
            content_hash,
            path: dir.clone(),
        },
        dir,
    })
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
pub fn fetch_debian(cache: &Cache, package: &str, log: &mut dyn FnMut(&str)) -> Result<KernelSource> {
    let base = cache.dir("sources")?;
    let apt = base.join("apt");
    std::fs::create_dir_all(apt.join("sources.list.d"))?;
    std::fs::create_dir_all(apt.join("lists/partial"))?;
    std::fs::create_dir_all(apt.join("cache/archives/partial"))?;
    std::fs::write(apt.join("sources.list"), "")?;
    let mirror = std::env::var("FAMFS_HARNESS_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into());
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
                crate::hostdeps::require_tool(tool)?;
            }
            log(&format!("fetching Debian package {package} ({DEFAULT_SUITE}) into {}", base.display()));
            let opts = apt_opts(&apt);
            run_logged(Command::new("apt-get").args(&opts).arg("-q").arg("update"), "apt-get update (private source list)")?;
            run_logged(
                Command::new("apt-get").args(&opts).args(["-q", "download", package]).current_dir(&base),
                &format!("apt-get download {package}"),
            )?;
            find_deb(&base, package)?.with_context(|| format!("apt-get download {package} produced no .deb in {}", base.display()))?
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
        run_logged(Command::new("sh").args(["-c", &sh]), &format!("unpacking {deb_name}"))?;
        if !tree.join("Makefile").exists() {
            bail!("unpacking {deb_name} did not yield {}", tree.display());
        }
        let sum = sha256_file(&deb)?;
        std::fs::write(&stamp, sum)?;
    }
    let content_hash = std::fs::read_to_string(&stamp)?.trim().to_string();
    let version = kernel_version(&tree)?;
    Ok(KernelSource {
        dir: tree.clone(),
        identity: SourceIdentity {
            kind: "debian-package".into(),
            version,
            package: Some(format!("{package} {pkg_version}")),
            describe: None,
            content_hash,
            path: tree,
        },
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

pub fn sha256_file(p: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("Makefile"), "VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION = -rc1\n").unwrap();
        std::fs::write(t.path().join("Kconfig"), "").unwrap();
        std::fs::create_dir_all(t.path().join("arch/x86")).unwrap();
        std::fs::write(t.path().join("arch/x86/Kconfig"), "").unwrap();
        t
    }

    #[test]
    fn version_and_bad_trees() {
        let t = fake_tree();
        assert_eq!(kernel_version(t.path()).unwrap(), "7.3.4-rc1");
        let e = kernel_version(Path::new("/nonexistent/linux")).unwrap_err().to_string();
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

    #[test]
    fn fingerprint_changes_with_a_file() {
        let t = fake_tree();
        let a = tree_fingerprint(t.path()).unwrap();
        assert_eq!(a, tree_fingerprint(t.path()).unwrap());
        std::fs::write(t.path().join("arch/x86/new.c"), "int x;").unwrap();
        assert_ne!(a, tree_fingerprint(t.path()).unwrap());
    }
}
