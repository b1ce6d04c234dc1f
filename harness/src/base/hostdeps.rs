//! Host programs the harness drives. When root on Debian/Ubuntu the harness
//! installs what is missing (and says so); otherwise it prints the command.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A program and the Debian package that ships it.
pub struct Need {
    pub program: &'static str,
    pub package: &'static str,
}

/// Everything for building the default kernel and booting it with direct QEMU.
pub const BUILD: &[Need] = &[
    Need {
        program: "make",
        package: "make",
    },
    Need {
        program: "gcc",
        package: "gcc",
    },
    Need {
        program: "flex",
        package: "flex",
    },
    Need {
        program: "bison",
        package: "bison",
    },
    Need {
        program: "bc",
        package: "bc",
    },
    Need {
        program: "pahole",
        package: "dwarves",
    },
    Need {
        program: "xz",
        package: "xz-utils",
    },
    Need {
        program: "dpkg-deb",
        package: "dpkg",
    },
    // Patch series (`--kernel-patches`, named kernels) and `--kernel-git`.
    Need {
        program: "patch",
        package: "patch",
    },
    Need {
        program: "git",
        package: "git",
    },
];
/// Header packages have no program; checked by file.
pub const BUILD_HEADERS: &[(&str, &str)] = &[
    ("/usr/include/libelf.h", "libelf-dev"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
];
pub const BOOT: &[Need] = &[
    Need {
        program: "qemu-system-x86_64",
        package: "qemu-system-x86",
    },
    Need {
        program: "busybox",
        package: "busybox-static",
    },
    Need {
        program: "ndctl",
        package: "ndctl",
    },
    Need {
        program: "daxctl",
        package: "daxctl",
    },
];
/// virtme-ng shares the host's user space, so the tools must be on the host.
/// `--coverage`: lcov's genhtml draws the HTML report (gcov comes with gcc).
pub const COVERAGE: &[Need] = &[Need {
    program: "genhtml",
    package: "lcov",
}];

pub const VNG: &[Need] = &[Need {
    program: "udevadm",
    package: "udev",
}];

pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.exists().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    for d in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
    {
        let p = d.join(program);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

pub fn require_tool(program: &str) -> Result<PathBuf> {
    which(program).ok_or_else(|| anyhow::anyhow!("`{program}` is not installed or not on PATH"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn is_debian_like() -> bool {
    Path::new("/etc/debian_version").exists() && which("apt-get").is_some()
}

/// Missing packages for the given needs.
pub fn missing(needs: &[&[Need]], headers: bool) -> Vec<&'static str> {
    let mut pk: Vec<&'static str> = Vec::new();
    for set in needs {
        for n in set.iter() {
            if which(n.program).is_none() && !pk.contains(&n.package) {
                pk.push(n.package);
            }
        }
    }
    if headers {
        for (f, p) in BUILD_HEADERS {
            if !Path::new(f).exists() && !pk.contains(p) {
                pk.push(p);
            }
        }
    }
    pk
}

/// May the harness install packages itself? Root on Debian/Ubuntu, unless
/// FAMFS_HARNESS_NO_INSTALL is set.
pub fn may_install() -> bool {
    is_root() && is_debian_like() && std::env::var_os("FAMFS_HARNESS_NO_INSTALL").is_none()
}

/// Install missing packages when allowed, else explain exactly what to run.
pub fn ensure(needs: &[&[Need]], headers: bool, log: &mut dyn FnMut(&str)) -> Result<()> {
    ensure_with(needs, headers, may_install(), log)
}

pub fn ensure_with(
    needs: &[&[Need]],
    headers: bool,
    install: bool,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    install_packages(&missing(needs, headers), install, log)?;
    let still = missing(needs, headers);
    if !still.is_empty() {
        bail!("after installing, still missing: {}", still.join(" "));
    }
    Ok(())
}

/// Packages for files that have no program (headers, sources), found by
/// `(file, package)`: installed when allowed, else the command to run.
pub fn ensure_files(files: &[(&str, &'static str)], log: &mut dyn FnMut(&str)) -> Result<()> {
    let mut pk: Vec<&'static str> = Vec::new();
    for (f, p) in files {
        if !Path::new(f).exists() && !pk.contains(p) {
            pk.push(p);
        }
    }
    install_packages(&pk, may_install(), log)
}

fn install_packages(pk: &[&'static str], install: bool, log: &mut dyn FnMut(&str)) -> Result<()> {
    if pk.is_empty() {
        return Ok(());
    }
    let cmd = format!(
        "apt-get install -y --no-install-recommends {}",
        pk.join(" ")
    );
    if install {
        let msg = format!(
            "installing missing host packages: {} (apt-get)",
            pk.join(" ")
        );
        crate::events::emit(crate::events::Event::HostChange(msg.clone()));
        log(&msg);
        let ok = Command::new("sh")
            .args(["-c", &format!("(apt-get update -q || true) >/dev/null && DEBIAN_FRONTEND=noninteractive {cmd} -q")])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            bail!("installing {} failed; run as root: {cmd}", pk.join(" "));
        }
        return Ok(());
    }
    bail!(
        "missing host packages: {}. Install them with:\n  sudo {cmd}",
        pk.join(" ")
    )
}

/// virtme-ng is on PyPI, not in Debian 12: install it with pip when allowed
/// (Debian's own Python refuses plain `pip install` as externally managed,
/// so that case is retried with --break-system-packages).
pub fn ensure_vng(log: &mut dyn FnMut(&str)) -> Result<()> {
    if which("vng").is_some() {
        return Ok(());
    }
    let cmd = "python3 -m pip install virtme-ng";
    if !may_install() {
        bail!("virtme-ng (vng) is not installed. Install it with:\n  {cmd}\n(on Debian's own Python add --break-system-packages, or use pipx)");
    }
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !sh("python3 -m pip --version >/dev/null 2>&1") {
        ensure_with(
            &[&[Need {
                program: "pip3",
                package: "python3-pip",
            }]],
            false,
            true,
            log,
        )?;
    }
    let msg = format!("installing virtme-ng: {cmd}");
    crate::events::emit(crate::events::Event::HostChange(msg.clone()));
    log(&msg);
    let ok = sh(&format!("{cmd} -q")) || sh(&format!("{cmd} -q --break-system-packages"));
    if ok && which("vng").is_some() {
        return Ok(());
    }
    bail!("`{cmd}` did not give a `vng` on PATH; install virtme-ng and make sure vng is on PATH")
}

/// Host packages a run needs: booting always, building a kernel when it
/// builds one, virtme-ng for its backend, lcov for a coverage report.
pub fn ensure_for(building: bool, vng: bool, coverage: bool) -> Result<()> {
    let mut needs: Vec<&[Need]> = vec![BOOT];
    if coverage {
        needs.push(COVERAGE);
    }
    if building {
        needs.push(BUILD);
    }
    if vng {
        needs.push(VNG);
    }
    let mut say = |m: &str| crate::events::note(m);
    ensure(&needs, building, &mut say)?;
    if vng {
        ensure_vng(&mut say)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_names_the_package_and_command() {
        let needs: &[Need] = &[Need {
            program: "qemu-system-does-not-exist",
            package: "qemu-system-x86",
        }];
        assert_eq!(missing(&[needs], false), vec!["qemu-system-x86"]);
        let e = ensure_with(&[needs], false, false, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing host packages: qemu-system-x86"), "{e}");
        assert!(
            e.contains("apt-get install -y --no-install-recommends qemu-system-x86"),
            "{e}"
        );
        let present: &[Need] = &[Need {
            program: "sh",
            package: "dash",
        }];
        assert!(ensure_with(&[present], false, false, &mut |_| {}).is_ok());
    }
}
