//! virtme-ng backend: the same VM description, booted with the host's user
//! space shared into the guest. vng has no timeout of its own and killing it
//! does not reach QEMU or virtiofsd, so it runs in its own process group and
//! the whole group is killed.

use crate::base::proc::{kill_group, register_group, unregister_group};
use crate::vm::{shell_words, Accel, Running, VmSpec};
use anyhow::{bail, Context, Result};

pub struct VngChild {
    handle: duct::Handle,
    pgid: u32,
}

impl Running for VngChild {
    fn poll(&mut self) -> Result<Option<Option<i32>>> {
        Ok(self.handle.try_wait()?.map(|o| o.status.code()))
    }
    fn kill(&mut self) {
        kill_group(self.pgid);
        let _ = self.handle.wait();
    }
}

impl Drop for VngChild {
    fn drop(&mut self) {
        kill_group(self.pgid);
        unregister_group(self.pgid);
    }
}

pub fn vng_program() -> Result<std::path::PathBuf> {
    crate::base::hostdeps::which("vng").context(
        "virtme-ng (vng) is not installed: `pip install virtme-ng` (it also needs `udev` on the host), or use --backend qemu",
    )
}

/// The vng argv for `spec`.
pub fn argv(spec: &VmSpec) -> Result<Vec<String>> {
    if spec.guest_command.is_empty() {
        bail!("virtme-ng needs a guest command");
    }
    // --verbose: without it vng hides the kernel console, and the console is
    // where a crash that kills the VM is read from.
    let mut a = vec![
        vng_program()?.display().to_string(),
        "--verbose".into(),
        "--run".into(),
        spec.kernel.display().to_string(),
    ];
    if spec.accel == Accel::Tcg {
        a.push("--disable-kvm".into());
    }
    // microvm cannot host NVDIMM or CXL devices.
    a.extend([
        "--disable-microvm".into(),
        "--cpus".into(),
        spec.cpus.to_string(),
    ]);
    // vng's own --memory mangles `-m SIZE,slots=..`; QEMU takes the last -m.
    // vng chooses the accelerator and CPU model itself (--disable-kvm above).
    if spec.qemu != std::path::Path::new(crate::vm::qemu::DEFAULT) {
        a.push(format!("--qemu={}", spec.qemu.display()));
    }
    let mut qemu = spec.qemu_args.clone();
    qemu.extend(spec.device_args()?);
    a.push(format!("--qemu-opts={}", qemu.join(" ")));
    // vng sets its own console; pass the rest of the command line.
    let extra: Vec<String> = spec
        .cmdline()
        .into_iter()
        .filter(|x| !x.starts_with("console="))
        .collect();
    a.push(format!("--append={}", extra.join(" ")));
    a.push("--".into());
    a.extend(spec.guest_command.iter().cloned());
    Ok(a)
}

pub fn launch(spec: &VmSpec) -> Result<VngChild> {
    std::fs::create_dir_all(&spec.dir)?;
    let argv = argv(spec)?;
    std::fs::write(spec.dir.join("vng.cmdline"), shell_words(&argv))?;
    let console = spec.console_log();
    let expr = duct::cmd(&argv[0], &argv[1..])
        .stdin_null()
        // Outer modifiers apply first in duct: send stderr to stdout, then
        // stdout (both) to the console file. vng prints the console on stderr.
        .stderr_to_stdout()
        .stdout_path(&console)
        .unchecked()
        .before_spawn(|c| {
            crate::base::proc::own_process_group(c);
            crate::base::proc::die_with_parent(c);
            Ok(())
        });
    let handle = expr.start().context("starting vng")?;
    let pgid = *handle.pids().first().context("vng has no pid")?;
    register_group(pgid);
    Ok(VngChild { handle, pgid })
}
