//! The guest's initramfs, described by data under `images/` and cached by
//! content; and the per-run overlay (plan, cases) appended to it.

use crate::base::cache::hex;
use crate::base::cache::Cache;
use crate::base::hostdeps::which;
use crate::base::yaml;
use crate::image::cpio::Cpio;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// A static busybox; its applets become links in /bin.
    pub busybox: String,
    /// Host programs copied to /bin with their shared libraries.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Harness programs (built static for the guest) copied to /bin.
    #[serde(default)]
    pub harness: Vec<String>,
    /// The /init script, relative to the spec file.
    pub init: String,
    #[serde(default)]
    pub dirs: Vec<String>,
}

pub fn load_spec(path: &Path) -> Result<ImageSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading image spec {}", path.display()))?;
    yaml::parse(path, &text, 0)
}

/// One file of the image: destination path, mode, content.
struct Entry {
    dest: String,
    mode: u32,
    data: Vec<u8>,
}

/// Shared libraries a dynamic program needs, as ldd reports them.
pub fn shared_libs(program: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success()
        || text.contains("not a dynamic executable")
        || text.contains("statically linked")
    {
        return Ok(vec![]);
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = if let Some((_, rhs)) = line.split_once("=>") {
            rhs.split_whitespace().next().unwrap_or("")
        } else {
            line.split_whitespace().next().unwrap_or("")
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        } else if line.contains("not found") {
            bail!(
                "{}: shared library missing on the host: {line}",
                program.display()
            );
        }
    }
    Ok(libs)
}

/// Build (or reuse) the base image; returns its path in the cache.
pub fn build_base(spec_path: &Path, guest_bin_dir: &Path, cache: &Cache) -> Result<PathBuf> {
    let spec = load_spec(spec_path)?;
    let spec_dir = spec_path.parent().unwrap_or(Path::new("."));
    let mut entries: Vec<Entry> = Vec::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();

    let busybox = which(&spec.busybox).with_context(|| {
        format!(
            "{}: busybox `{}` not found on the host (apt-get install busybox-static)",
            spec_path.display(),
            spec.busybox
        )
    })?;
    if !shared_libs(&busybox)?.is_empty() {
        bail!(
            "{}: {} is dynamically linked; the image needs a static busybox (busybox-static)",
            spec_path.display(),
            busybox.display()
        );
    }
    entries.push(Entry {
        dest: "/bin/busybox".into(),
        mode: 0o755,
        data: std::fs::read(&busybox)?,
    });
    let applets = Command::new(&busybox)
        .arg("--list")
        .output()
        .context("busybox --list")?;
    for a in String::from_utf8_lossy(&applets.stdout).lines() {
        let a = a.trim();
        // Debian's busybox lists itself; a link busybox -> busybox would loop.
        if !a.is_empty() && a != "busybox" {
            links.insert(format!("/bin/{a}"), "busybox".into());
        }
    }
    let mut libs: Vec<PathBuf> = Vec::new();
    for p in &spec.programs {
        let path = which(p).with_context(|| {
            format!(
                "{}: program `{p}` not found on the host",
                spec_path.display()
            )
        })?;
        entries.push(Entry {
            dest: format!("/bin/{p}"),
            mode: 0o755,
            data: std::fs::read(&path)?,
        });
        for l in shared_libs(&path)? {
            if !libs.contains(&l) {
                libs.push(l);
            }
        }
    }
    for l in &libs {
        let data = std::fs::read(l).with_context(|| format!("reading {}", l.display()))?;
        entries.push(Entry {
            dest: l.display().to_string(),
            mode: 0o755,
            data,
        });
    }
    for h in &spec.harness {
        let p = guest_bin_dir.join(h);
        let data = std::fs::read(&p)
            .with_context(|| format!("reading harness program {}", p.display()))?;
        entries.push(Entry {
            dest: format!("/bin/{h}"),
            mode: 0o755,
            data,
        });
    }
    let init = spec_dir.join(&spec.init);
    entries.push(Entry {
        dest: "/init".into(),
        mode: 0o755,
        data: std::fs::read(&init)
            .with_context(|| format!("{}: init script {}", spec_path.display(), init.display()))?,
    });

    // Key: every byte that goes into the archive, plus its layout.
    let mut h = Sha256::new();
    h.update(b"image/v1\n");
    for d in &spec.dirs {
        h.update(format!("dir {d}\n").as_bytes());
    }
    for (l, t) in &links {
        h.update(format!("link {l} {t}\n").as_bytes());
    }
    for e in &entries {
        h.update(format!("file {} {:o} {}\n", e.dest, e.mode, e.data.len()).as_bytes());
        h.update(&e.data);
    }
    let key = hex(&h.finalize())[..16].to_string();
    let out = cache.dir("images")?.join(format!("base-{key}.cpio"));
    if out.exists() {
        return Ok(out);
    }
    let mut c = Cpio::default();
    for d in &spec.dirs {
        c.dir(d);
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    c.char_dev("/dev/console", 0o600, 5, 1);
    c.char_dev("/dev/null", 0o666, 1, 3);
    for e in &entries {
        c.file(&e.dest, e.mode, &e.data);
    }
    for (l, t) in &links {
        c.symlink(l, t);
    }
    // Programs from /usr/bin find their loader at the usual place.
    c.symlink("/sbin", "bin");
    c.symlink("/usr/bin", "../bin");
    c.symlink("/usr/sbin", "../bin");
    crate::base::cache::write_atomic(&out, &c.finish())?;
    Ok(out)
}

/// The per-run part: the plan, the case files, and the module metadata
/// files daxctl insists on even when nothing is a module.
pub fn overlay(plan_json: &str, cases_dir: &Path, release: &str) -> Result<Vec<u8>> {
    let mut c = Cpio::default();
    c.file("/harness/plan.json", 0o644, plan_json.as_bytes());
    add_tree(&mut c, cases_dir, "/harness/cases")?;
    if !release.is_empty() {
        for f in [
            "modules.builtin",
            "modules.builtin.modinfo",
            "modules.order",
            "modules.dep",
        ] {
            c.file(&format!("/lib/modules/{release}/{f}"), 0o644, b"");
        }
    }
    Ok(c.finish())
}

fn add_tree(c: &mut Cpio, src: &Path, dest: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    c.dir(dest);
    let mut items: Vec<_> = std::fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .flatten()
        .collect();
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let d = format!("{dest}/{name}");
        let ft = e.file_type()?;
        if ft.is_dir() {
            add_tree(c, &p, &d)?;
        } else if ft.is_file() {
            let mode = e.metadata()?.permissions().mode();
            c.file(&d, mode, &std::fs::read(&p)?);
        }
    }
    Ok(())
}

/// Base image followed by the overlay, written where QEMU will read it
/// (whole or not at all: a QEMU of another run may be reading the old one).
pub fn assemble(base: &Path, overlay: &[u8], out: &Path) -> Result<()> {
    let mut data = std::fs::read(base).with_context(|| format!("reading {}", base.display()))?;
    data.extend_from_slice(overlay);
    crate::base::cache::write_atomic(out, &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_errors_name_file_and_line() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("img.yaml");
        std::fs::write(&p, "busybox: busybox\ninit: init.sh\nprogramz: [x]\n").unwrap();
        let e = format!("{:#}", load_spec(&p).unwrap_err());
        assert!(e.contains("img.yaml:3"), "{e}");
        assert!(e.contains("programz"), "{e}");
    }

    #[test]
    fn ldd_of_a_dynamic_program_lists_libc() {
        let libs = shared_libs(Path::new("/bin/ls")).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
    }

    #[test]
    fn overlay_carries_plan_and_cases() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("dax")).unwrap();
        std::fs::write(t.path().join("dax/001"), "echo hi\n").unwrap();
        let o = overlay("{}", t.path(), "7.3.4").unwrap();
        let s = String::from_utf8_lossy(&o);
        assert!(s.contains("harness/plan.json"));
        assert!(s.contains("harness/cases/dax/001"));
        assert!(s.contains("lib/modules/7.3.4/modules.builtin"));
    }
}
