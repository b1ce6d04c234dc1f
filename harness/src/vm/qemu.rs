//! Which QEMU boots the guests: the host's `qemu-system-x86_64`, one named
//! by `--qemu PATH`, or `--qemu backports`: Debian bookworm-backports'
//! qemu-system-x86 unpacked into the cache (no system package changes).
//! Some topologies need a newer QEMU than Debian 12's 7.2 (volatile CXL
//! type-3 memory needs 8); their cases are not run, with the reason, when
//! the QEMU at hand is older.

use crate::base::cache::Cache;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The default program, found on PATH.
pub const DEFAULT: &str = "qemu-system-x86_64";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    pub path: PathBuf,
    pub version: (u32, u32, u32),
    /// Firmware and option ROMs that come with this QEMU (`-L`), when it
    /// is not the host's.
    pub data_dir: Option<PathBuf>,
}

impl Qemu {
    /// The QEMU `asked` names (a path, `backports`, or the default).
    pub fn find(asked: Option<&str>, cache: &Cache) -> Result<Qemu> {
        match asked {
            None => {
                let path = crate::base::hostdeps::require_tool(DEFAULT)?;
                Qemu::at(&path, None)
            }
            Some("backports") => {
                let root = fetch_backports(cache)?;
                Qemu::at(
                    &root.join("usr/bin").join(DEFAULT),
                    Some(root.join("usr/share/qemu")),
                )
            }
            Some(p) => {
                let path = PathBuf::from(p);
                if !path.is_file() {
                    bail!("--qemu {p}: no such file (a qemu-system-x86_64 binary, or `backports`)");
                }
                // An installed prefix keeps its firmware in ../share/qemu.
                let data = path
                    .parent()
                    .map(|d| d.join("../share/qemu"))
                    .filter(|d| d.is_dir());
                Qemu::at(&path, data)
                    .with_context(|| format!("--qemu {p}: not a QEMU that runs here"))
            }
        }
    }

    /// Ask the binary its version.
    pub fn at(path: &Path, data_dir: Option<PathBuf>) -> Result<Qemu> {
        let out = Command::new(path)
            .arg("--version")
            .output()
            .with_context(|| format!("running {} --version", path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text).with_context(|| {
            format!(
                "{} --version printed no QEMU version: {}{}",
                path.display(),
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
        Ok(Qemu {
            path: path.to_path_buf(),
            version,
            data_dir,
        })
    }

    pub fn at_least(&self, (major, minor): (u32, u32)) -> bool {
        (self.version.0, self.version.1) >= (major, minor)
    }

    pub fn describe(&self) -> String {
        let (a, b, c) = self.version;
        format!("QEMU {a}.{b}.{c} ({})", self.path.display())
    }

    /// Arguments every boot with this QEMU starts with.
    pub fn base_args(&self) -> Vec<String> {
        match &self.data_dir {
            // -L is searched in order: this QEMU's own files first, then
            // the host's (SeaBIOS, iPXE).
            Some(d) => vec!["-L".into(), d.display().to_string()],
            None => vec![],
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.args(self.base_args());
        c
    }

    /// Why a kind of pmem cannot be emulated by this QEMU, if it cannot.
    pub fn lacks(&self, kind: crate::contract::topology::PmemKind) -> Option<String> {
        let need = kind.min_qemu()?;
        (!self.at_least(need)).then(|| {
            format!(
                "{} pmem needs QEMU {}.{} or later; this is {}: pass --qemu backports (Debian bookworm-backports' QEMU, unpacked into the cache) or --qemu PATH",
                kind.name(),
                need.0,
                need.1,
                self.describe()
            )
        })
    }
}

/// `QEMU emulator version 7.2.22 (Debian ...)` -> (7, 2, 22).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let v = rest.split_whitespace().next()?;
    let mut it = v.split('.').map(|n| {
        n.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
    });
    Some((
        it.next()?.ok()?,
        it.next()?.ok()?,
        it.next().and_then(|r| r.ok()).unwrap_or(0),
    ))
}

/// Packages that make a runnable QEMU when unpacked together (their
/// libraries are Debian 12's).
const BACKPORTS_PACKAGES: &[&str] = &["qemu-system-x86", "qemu-system-common", "qemu-system-data"];

/// Unpack bookworm-backports' QEMU into the cache once; return its root.
fn fetch_backports(cache: &Cache) -> Result<PathBuf> {
    let base = cache.dir("qemu")?;
    let root = base.join("bookworm-backports");
    if root.join("usr/bin").join(DEFAULT).is_file() {
        return Ok(root);
    }
    if crate::base::hostdeps::which("apt-get").is_none()
        || crate::base::hostdeps::which("dpkg-deb").is_none()
    {
        bail!("--qemu backports needs apt-get and dpkg-deb (Debian); pass --qemu PATH to a QEMU 8 or later instead");
    }
    let stage = tempfile::Builder::new()
        .prefix("backports-")
        .tempdir_in(&base)
        .context("a staging directory in the cache")?;
    let s = stage.path();
    for d in ["sources", "lists/partial", "cache/archives/partial", "debs"] {
        std::fs::create_dir_all(s.join(d))?;
    }
    std::fs::write(
        s.join("sources/backports.sources"),
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
    )?;
    let apt = |args: &[&str], dir: &Path| -> Result<()> {
        let out = Command::new("apt-get")
            .args([
                "-q",
                "-o",
                "Dir::Etc::SourceList=/dev/null",
                "-o",
                &format!("Dir::Etc::SourceParts={}", s.join("sources").display()),
                "-o",
                &format!("Dir::State::Lists={}", s.join("lists").display()),
                "-o",
                &format!("Dir::Cache={}", s.join("cache").display()),
                "-o",
                "APT::Sandbox::User=root",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .context("running apt-get")?;
        if !out.status.success() {
            bail!(
                "`apt-get {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    crate::events::note("fetching QEMU from Debian bookworm-backports into the cache");
    apt(&["update"], s)?;
    let mut download = vec!["download"];
    download.extend(BACKPORTS_PACKAGES);
    apt(&download, &s.join("debs"))?;
    let unpacked = s.join("root");
    for e in std::fs::read_dir(s.join("debs"))? {
        let deb = e?.path();
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status()
            .context("running dpkg-deb")?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed ({st})", deb.display());
        }
    }
    let q = Qemu::at(&unpacked.join("usr/bin").join(DEFAULT), None)
        .context("the unpacked backports QEMU does not run here")?;
    crate::events::note(format!("unpacked {}", q.describe()));
    std::fs::rename(&unpacked, &root)
        .with_context(|| format!("moving the unpacked QEMU to {}", root.display()))?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::topology::PmemKind;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)\n"),
            Some((7, 2, 22))
        );
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian)"),
            Some((10, 0, 2))
        );
        assert_eq!(parse_version("QEMU emulator version 9.1"), Some((9, 1, 0)));
        assert_eq!(parse_version("bash: no"), None);
    }

    #[test]
    fn old_qemu_lacks_volatile_cxl_with_the_reason() {
        let q = Qemu {
            path: "/usr/bin/qemu-system-x86_64".into(),
            version: (7, 2, 22),
            data_dir: None,
        };
        let why = q.lacks(PmemKind::CxlVolatile).unwrap();
        assert!(why.starts_with("cxl-volatile pmem needs QEMU 8.0 or later; this is QEMU 7.2.22 (/usr/bin/qemu-system-x86_64)"), "{why}");
        assert_eq!(q.lacks(PmemKind::Cxl), None);
        let new = Qemu {
            version: (10, 0, 2),
            ..q
        };
        assert_eq!(new.lacks(PmemKind::CxlVolatile), None);
    }
}
