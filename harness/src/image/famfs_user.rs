//! The real famfs user space (`famfs`, `mkfs.famfs`, `famfs_fused`) for the
//! `famfs-user` cases: built offline from sources into the cache (keyed by
//! the sources, the build script and the toolchain; famfs's own unit tests
//! run once per build, isolated from the host), or taken from a prefix
//! someone built; then an image layer with the programs and every library
//! they load, at [`GUEST_PREFIX`].

use crate::base::cache::Cache;
use crate::events::note;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the programs live in the guest (`bin/`, `lib/`).
pub const GUEST_PREFIX: &str = "/opt/famfs-user";
/// The build script, relative to the checkout.
pub const SCRIPT: &str = "images/famfs-user/build.sh";

/// Where the famfs user space comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Archives or trees of famfs's dependencies (and of famfs itself when
    /// `tree` is None), as `../shared/famfs-user` has them.
    Sources {
        deps: PathBuf,
        tree: Option<PathBuf>,
    },
    /// A prefix already built: `bin/famfs_fused` and friends, `lib/`.
    Prefix(PathBuf),
}

/// A famfs user space ready for the image.
#[derive(Debug, Clone)]
pub struct FamfsUser {
    /// The host prefix with `bin/` and `lib/`.
    pub prefix: PathBuf,
    /// Cache key (built ones) or the prefix's path.
    pub identity: String,
    /// Seconds this run spent building it (None: cached or prebuilt).
    pub built_s: Option<f64>,
    /// Whether its daemon can push dax devices (`FUSE_DEV_IOC_DAXDEV_OPEN`
    /// in the libfuse it was built against); None for a prebuilt prefix.
    pub pushes: Option<bool>,
}

/// Whether the libfuse among `deps` (an archive or a tree whose name holds
/// `libfuse`) defines `FUSE_DEV_IOC_DAXDEV_OPEN` in its fuse_kernel.h:
/// famfs builds its push code only then.
pub fn libfuse_pushes(deps: &Path) -> Option<bool> {
    let entry = std::fs::read_dir(deps)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("libfuse"))
        })?;
    let header = if entry.is_dir() {
        std::fs::read_to_string(entry.join("include/fuse_kernel.h")).ok()?
    } else {
        let out = Command::new("tar")
            .arg("-xzOf")
            .arg(&entry)
            .args(["--wildcards", "*/include/fuse_kernel.h"])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    Some(header.lines().any(|l| {
        l.trim_start()
            .strip_prefix("#define")
            .is_some_and(|r| r.split_whitespace().next() == Some("FUSE_DEV_IOC_DAXDEV_OPEN"))
    }))
}

const PROGRAMS: &[&str] = &["famfs", "mkfs.famfs", "famfs_fused"];

/// Build (or find in the cache) the famfs user space `src` names.
pub fn resolve(src: &Source, root: &Path, cache: &Cache) -> Result<FamfsUser> {
    match src {
        Source::Prefix(p) => {
            for prog in PROGRAMS {
                if !p.join("bin").join(prog).is_file() {
                    bail!(
                        "--famfs-bin {}: no bin/{prog} (a prefix with bin/famfs, bin/mkfs.famfs, bin/famfs_fused and lib/, as famfs's install makes it)",
                        p.display()
                    );
                }
            }
            Ok(FamfsUser {
                prefix: p.clone(),
                identity: p.display().to_string(),
                built_s: None,
                pushes: None,
            })
        }
        Source::Sources { deps, tree } => build(deps, tree.as_deref(), root, cache),
    }
}

fn build(deps: &Path, tree: Option<&Path>, root: &Path, cache: &Cache) -> Result<FamfsUser> {
    if !deps.is_dir() {
        bail!(
            "--famfs-deps {}: not a directory (the archives or trees of libfuse, mongoose, C-Thread-Pool, cmake-modules, multichase and cursor_heap)",
            deps.display()
        );
    }
    if let Some(t) = tree {
        if !(t.join("CMakeLists.txt").is_file() && t.join("src").is_dir()) {
            bail!(
                "--famfs-src {}: not a famfs source tree (no CMakeLists.txt and src/)",
                t.display()
            );
        }
    }
    let script = root.join(SCRIPT);
    crate::base::hostdeps::ensure(&[BUILD_NEEDS], false, &mut |_| {})?;
    crate::base::hostdeps::ensure_files(DEV_FILES, &mut |_| {})?;
    let key = key(&script, deps, tree)?;
    let base = cache.dir("famfs-user")?;
    let done = base.join(&key);
    if done.join("bin/famfs_fused").is_file() {
        note(format!("famfs user space: cached build {}", done.display()));
        return Ok(FamfsUser {
            prefix: done,
            identity: key,
            built_s: None,
            pushes: libfuse_pushes(deps),
        });
    }
    let stage = base.join(format!(".{key}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)?;
    let log_path = stage.join("build.log");
    let stage_ui = crate::events::Stage::start("famfs user space");
    let start = std::time::Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(deps).arg(&stage);
    if let Some(t) = tree {
        cmd.arg(t);
    }
    let log = std::fs::File::create(&log_path)?;
    let st = cmd
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    let secs = start.elapsed().as_secs_f64();
    if !st.success() {
        let kept = base.join(format!("failed-{key}.log"));
        let _ = std::fs::copy(&log_path, &kept);
        let _ = std::fs::remove_dir_all(&stage);
        let text = std::fs::read_to_string(&kept).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let what = match st.code() {
            Some(3) => "an input is missing",
            Some(4) => "famfs's unit tests failed",
            _ => "the build failed",
        };
        bail!(
            "famfs user space: {what} (`bash {} {} DIR{}`, exit {st}); the log is kept at {}; its end:\n{}",
            script.display(),
            deps.display(),
            tree.map(|t| format!(" {}", t.display())).unwrap_or_default(),
            kept.display(),
            tail.join("\n")
        );
    }
    let passed = std::fs::read_to_string(stage.join("unit-tests.log"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("[  PASSED  ]"))
        .map(str::to_string)
        .unwrap_or_default();
    match std::fs::rename(&stage, &done) {
        Ok(()) => {}
        // Another run finished the same build first: use theirs.
        Err(_) if done.join("bin/famfs_fused").is_file() => {
            let _ = std::fs::remove_dir_all(&stage);
        }
        Err(e) => return Err(e).context(format!("moving the build to {}", done.display())),
    }
    stage_ui.finish(&format!(
        "built in {secs:.1}s; famfs unit tests: {}",
        passed.trim_start_matches("[  PASSED  ]").trim()
    ));
    Ok(FamfsUser {
        prefix: done,
        identity: key,
        built_s: Some(secs),
        pushes: libfuse_pushes(deps),
    })
}

/// Host programs the build script runs.
const BUILD_NEEDS: &[crate::base::hostdeps::Need] = &[
    crate::base::hostdeps::Need {
        program: "g++",
        package: "g++",
    },
    crate::base::hostdeps::Need {
        program: "cmake",
        package: "cmake",
    },
    crate::base::hostdeps::Need {
        program: "meson",
        package: "meson",
    },
    crate::base::hostdeps::Need {
        program: "ninja",
        package: "ninja-build",
    },
    crate::base::hostdeps::Need {
        program: "pkg-config",
        package: "pkg-config",
    },
    crate::base::hostdeps::Need {
        program: "unshare",
        package: "util-linux",
    },
];

/// Development packages, found by a file each.
const DEV_FILES: &[(&str, &str)] = &[
    ("/usr/include/daxctl/libdaxctl.h", "libdaxctl-dev"),
    (
        "/usr/include/x86_64-linux-gnu/curl/curl.h",
        "libcurl4-openssl-dev",
    ),
    ("/usr/include/systemd/sd-daemon.h", "libsystemd-dev"),
    ("/usr/include/uuid/uuid.h", "uuid-dev"),
    ("/usr/include/zlib.h", "zlib1g-dev"),
    ("/usr/include/yaml.h", "libyaml-dev"),
    ("/usr/src/googletest/CMakeLists.txt", "googletest"),
];

/// Everything the build's result depends on.
fn key(script: &Path, deps: &Path, tree: Option<&Path>) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"famfs-user/v1\n");
    h.update(std::fs::read(script).with_context(|| format!("reading {}", script.display()))?);
    hash_tree(&mut h, deps, deps)?;
    if let Some(t) = tree {
        h.update(b"tree\n");
        hash_tree(&mut h, t, t)?;
    }
    for (prog, arg) in [
        ("gcc", "--version"),
        ("cmake", "--version"),
        ("meson", "--version"),
    ] {
        let out = Command::new(prog).arg(arg).output();
        let first = out
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        h.update(format!("{prog} {first}\n").as_bytes());
    }
    for (f, _) in DEV_FILES {
        h.update(format!("{f} {}\n", Path::new(f).exists()).as_bytes());
    }
    let d = h.finalize();
    Ok(d.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// Names and contents under `dir`, sorted (build output and .git left out).
fn hash_tree(h: &mut Sha256, base: &Path, dir: &Path) -> Result<()> {
    let mut items: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .collect();
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let p = e.path();
        let name = e.file_name();
        if dir == base && matches!(name.to_str(), Some(".git" | "debug" | "release")) {
            continue;
        }
        let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
        let ft = e.file_type()?;
        if ft.is_dir() {
            hash_tree(h, base, &p)?;
        } else if ft.is_file() {
            h.update(format!("file {rel}\n").as_bytes());
            h.update(std::fs::read(&p)?);
        } else if ft.is_symlink() {
            h.update(format!("link {rel} {}\n", std::fs::read_link(&p)?.display()).as_bytes());
        }
    }
    Ok(())
}

/// The recorder of what famfs_fused says on /dev/fuse (`_famfs_user_record`
/// in the cases): the host's strace, at [`RECORDER`] in the guest.
const RECORDER_NEED: &[crate::base::hostdeps::Need] = &[crate::base::hostdeps::Need {
    program: "strace",
    package: "strace",
}];
pub const RECORDER: &str = "/opt/famfs-harness/strace";

/// An image layer: the prefix at [`GUEST_PREFIX`], and every library its
/// programs load (as ldd says, plus libgcc_s, which glibc opens for thread
/// cancellation without ldd knowing); and the recorder.
pub fn layer(u: &FamfsUser) -> Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let mut c = crate::image::cpio::Cpio::default();
    let mut libs: Vec<PathBuf> = Vec::new();
    c.dir("/opt");
    crate::base::hostdeps::ensure(&[RECORDER_NEED], false, &mut |m| note(m))?;
    let strace = crate::base::hostdeps::require_tool("strace")?;
    c.dir("/opt/famfs-harness");
    c.file(RECORDER, 0o755, &std::fs::read(&strace)?);
    libs.extend(crate::image::initramfs::shared_libs(&strace)?);
    c.dir(GUEST_PREFIX);
    for sub in ["bin", "lib"] {
        let dir = u.prefix.join(sub);
        c.dir(&format!("{GUEST_PREFIX}/{sub}"));
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut items: Vec<_> = rd.flatten().collect();
        items.sort_by_key(|e| e.file_name());
        for e in items {
            let p = e.path();
            let dest = format!("{GUEST_PREFIX}/{sub}/{}", e.file_name().to_string_lossy());
            let ft = e.file_type()?;
            if ft.is_symlink() {
                c.symlink(&dest, &std::fs::read_link(&p)?.display().to_string());
            } else if ft.is_file() {
                let mode = e.metadata()?.permissions().mode();
                c.file(&dest, mode, &std::fs::read(&p)?);
                if sub == "bin" {
                    for l in crate::image::initramfs::shared_libs(&p)? {
                        if !l.starts_with(&u.prefix) && !libs.contains(&l) {
                            libs.push(l);
                        }
                    }
                }
            }
        }
    }
    for l in [
        "/lib/x86_64-linux-gnu/libgcc_s.so.1",
        "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
    ] {
        let p = PathBuf::from(l);
        if p.is_file() && !libs.contains(&p) {
            libs.push(p);
            break;
        }
    }
    for l in &libs {
        c.file(
            &l.display().to_string(),
            0o755,
            &std::fs::read(l).with_context(|| format!("reading {}", l.display()))?,
        );
    }
    Ok(c.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_without_the_daemon_is_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("bin")).unwrap();
        std::fs::write(t.path().join("bin/famfs"), "").unwrap();
        std::fs::write(t.path().join("bin/mkfs.famfs"), "").unwrap();
        let cache = Cache::open(Some(&t.path().join("cache"))).unwrap();
        let e = resolve(&Source::Prefix(t.path().into()), Path::new("."), &cache)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no bin/famfs_fused"), "{e}");
    }

    #[test]
    fn the_key_follows_the_sources_and_not_build_output() {
        let t = tempfile::tempdir().unwrap();
        let script = t.path().join("build.sh");
        std::fs::write(&script, "echo").unwrap();
        let deps = t.path().join("deps");
        std::fs::create_dir_all(deps.join("libfuse")).unwrap();
        std::fs::write(deps.join("libfuse/a.c"), "1").unwrap();
        let k1 = key(&script, &deps, None).unwrap();
        std::fs::create_dir_all(deps.join("debug")).unwrap();
        std::fs::write(deps.join("debug/x.o"), "obj").unwrap();
        assert_eq!(key(&script, &deps, None).unwrap(), k1);
        std::fs::write(deps.join("libfuse/a.c"), "2").unwrap();
        assert_ne!(key(&script, &deps, None).unwrap(), k1);
    }
}
