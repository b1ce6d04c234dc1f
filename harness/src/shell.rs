//! `cargo xtask shell`: one boot of the kernel a run would use, with the
//! topology and environment of a case (or a 512 MiB NVDIMM as devdax), and
//! a shell on this terminal instead of the cases; or one command, whose
//! exit status it returns. The console is the terminal (Ctrl-C goes to the
//! guest); QEMU restores the terminal when it exits.

use crate::case::Case;
use crate::contract::topology::{DaxMode, PmemKind, PmemSpec, Topology, ALIGN_2M};
use crate::contract::{exit, PlannedCase, ShellPlan};
use crate::run::Prepared;
use crate::vm::Backend;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, VecDeque};

/// What to boot into.
pub struct Request<'a> {
    /// The case whose topology and environment the shell gets.
    pub case: Option<&'a Case>,
    /// The machine, when no case names it (`Topology::named`).
    pub topology: Option<Topology>,
    /// Run this (`sh -c`) instead of an interactive shell.
    pub command: Option<String>,
    /// Start QEMU's gdb stub (tcp port 1234) and print how to attach.
    pub gdb: bool,
}

/// The machine of the shell: the one asked for, the case's, or a device a
/// case would get.
pub fn topology(case: Option<&Case>, asked: Option<&Topology>) -> Topology {
    if let Some(t) = asked {
        return t.clone();
    }
    match case.map(|c| c.topology.clone()) {
        Some(t) if t.pmem.is_some() => t,
        _ => Topology {
            pmem: Some(PmemSpec {
                kind: PmemKind::Nvdimm,
                size_mib: 512,
                mode: DaxMode::Devdax,
                align: ALIGN_2M,
            }),
        },
    }
}

/// Boot, hand the terminal to the guest's shell, and return the exit
/// status of the command (interactive: of the shell).
pub fn run(p: &Prepared, req: &Request) -> Result<i32> {
    if p.opts.backend != Backend::Qemu {
        bail!("shell boots with direct QEMU (--backend qemu)");
    }
    let topo = topology(req.case, req.topology.as_ref());
    let dir = tempfile::Builder::new()
        .prefix("fh-shell-")
        .tempdir()
        .context("a directory for the shell's boot")?;
    let by_id = BTreeMap::new();
    let mut plan = crate::run::make_plan(p, "shell", 1, &topo, &VecDeque::new(), &by_id);
    plan.shell = Some(ShellPlan {
        command: req.command.clone(),
        case: req.case.map(|c| PlannedCase {
            id: c.id.clone(),
            script: c.script.clone(),
            timeout_s: c.meta.timeout,
            env: c.param_env(),
        }),
    });
    let mut spec = crate::run::make_spec(p, dir.path(), &topo, &plan)?;
    // Kernel messages below warnings stay off the terminal.
    spec.kernel_args.push("quiet".into());
    let mut argv = spec.qemu_argv()?;
    let console = argv
        .iter()
        .position(|a| a.starts_with("file:") && a.ends_with("console.log"))
        .context("the console argument of the QEMU command line")?;
    argv[console] = "chardev:fhcon".into();
    argv.extend(["-chardev".into(), "stdio,id=fhcon,signal=off".into()]);
    if req.gdb {
        argv.push("-s".into());
        let vmlinux = p
            .kernel
            .vmlinux
            .as_ref()
            .map_or("vmlinux".to_string(), |v| v.display().to_string());
        eprintln!(
            "[harness] gdb stub on :1234; attach with: gdb {vmlinux} -ex 'target remote :1234'"
        );
    }
    for f in [
        "nvdimm0.img",
        "cxl-mem0.img",
        "cxl-lsa0.img",
        "initramfs.cpio",
    ] {
        crate::proc::register_file(&dir.path().join(f));
    }
    // In the terminal's foreground process group (a background one would be
    // stopped reading it), gone with the harness.
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    crate::proc::die_with_parent(&mut cmd);
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", argv[0]))?;
    let base = exit::qemu_status_for(exit::EXIT_SHELL_BASE);
    match status.code() {
        Some(c) if c >= base && (c - base) % 2 == 0 => Ok((c - base) / 2),
        other => bail!(
            "the VM ended without the shell's status (QEMU exit {other:?}); the guest may have crashed"
        ),
    }
}
