//! KVM or TCG, decided by booting, not by the existence of /dev/kvm: on some
//! hosts /dev/kvm is there but cannot run a guest (MSR errors, hangs).

use crate::base::cache::Cache;
use crate::base::proc::GroupChild;
use crate::events::note;
use crate::vm::qemu::Qemu;
use crate::vm::Accel;
use anyhow::Result;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Boot `kernel` with `initrd` under KVM with `fh.probe=1` (the initramfs's
/// /init then leaves through isa-debug-exit at once). The result is cached
/// for this host boot.
pub fn probe(qemu: &Qemu, kernel: &Path, initrd: &Path, cache: &Cache) -> Result<Accel> {
    if let Ok(v) = std::env::var("FAMFS_HARNESS_ACCEL") {
        let a = match v.as_str() {
            "kvm" => Accel::Kvm,
            "tcg" => Accel::Tcg,
            _ => anyhow::bail!("FAMFS_HARNESS_ACCEL must be kvm or tcg, not `{v}`"),
        };
        note(format!("accelerator: {v} (from FAMFS_HARNESS_ACCEL)"));
        return Ok(a);
    }
    if !Path::new("/dev/kvm").exists() {
        note("accelerator: TCG (no /dev/kvm); timeouts scaled x4");
        return Ok(Accel::Tcg);
    }
    // Keyed by host boot and kernel: a kernel that cannot boot at all must
    // not make a working KVM look broken for other kernels.
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let kernel_hash = crate::base::cache::sha256_file(kernel)?;
    let stamp = cache
        .dir("probe")?
        .join(format!("kvm-{}-{}", boot_id.trim(), &kernel_hash[..16]));
    let result = match std::fs::read_to_string(&stamp)
        .ok()
        .as_deref()
        .map(str::trim)
    {
        Some("kvm") => Accel::Kvm,
        Some("tcg") => Accel::Tcg,
        _ => {
            let ok = kvm_boots(qemu, kernel, initrd)?;
            let a = if ok { Accel::Kvm } else { Accel::Tcg };
            crate::base::cache::write_atomic(&stamp, if ok { b"kvm" } else { b"tcg" })?;
            a
        }
    };
    match result {
        Accel::Kvm => note("accelerator: KVM (probe boot succeeded)"),
        Accel::Tcg => {
            note("accelerator: TCG (/dev/kvm present but a probe boot failed); timeouts scaled x4")
        }
    }
    Ok(result)
}

fn kvm_boots(qemu: &Qemu, kernel: &Path, initrd: &Path) -> Result<bool> {
    let mut cmd = qemu.command();
    cmd.args([
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-smp",
        "1",
        "-m",
        "512M",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
    ])
    .args([
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-serial",
        "null",
    ])
    .arg("-kernel")
    .arg(kernel)
    .arg("-initrd")
    .arg(initrd)
    .args(["-append", "console=ttyS0 panic=-1 fh.probe=1"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = GroupChild::spawn(&mut cmd, "qemu-system-x86_64 (KVM probe)")?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(st) = child.child.try_wait()? {
            return Ok(st.code()
                == Some(crate::contract::exit::qemu_status_for(
                    crate::contract::exit::EXIT_PROBE_OK,
                )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill();
    Ok(false)
}
