//! `cargo xtask shell`: one boot of the kernel a run would use, with the
//! topology and environment of a case (or a 512 MiB NVDIMM as devdax), and
//! a shell on this terminal instead of the cases; or one command, whose
//! exit status it returns. The console is the terminal (Ctrl-C goes to the
//! guest); QEMU restores the terminal when it exits.

use crate::contract::topology::{DaxMode, PmemKind, PmemSpec, Topology, ALIGN_2M};
use crate::contract::{exit, PlannedCase, ShellPlan};
use crate::plan::case::Case;
use crate::run::Prepared;
use crate::vm::Backend;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, VecDeque};

/// What to boot into.
pub struct Request<'a> {
    /// The case whose topology and environment the shell gets.
    pub case: Option<&'a Case>,
    /// The machine, when no case names it (a named topology's).
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
                devices: 1,
            }),
        },
    }
}

/// Boot, hand the terminal to the guest's shell, and return the exit
/// status of the command (interactive: of the shell).
pub fn run(p: &Prepared, req: &Request) -> Result<i32> {
    if p.opts.exec.backend != Backend::Qemu {
        bail!("shell boots with direct QEMU (--backend qemu)");
    }
    let topo = topology(req.case, req.topology.as_ref());
    let dir = tempfile::Builder::new()
        .prefix("fh-shell-")
        .tempdir()
        .context("a directory for the shell's boot")?;
    let by_id = BTreeMap::new();
    let ereq = p.exec_request("shell", &by_id);
    let mut plan = crate::exec::boot::make_plan(&ereq, "shell", 1, &topo, &VecDeque::new());
    plan.shell = Some(ShellPlan {
        command: req.command.clone(),
        case: req.case.map(|c| PlannedCase {
            id: c.id.clone(),
            script: c.script.clone(),
            timeout_s: c.meta.timeout,
            env: c.param_env(),
        }),
    });
    let mut spec = crate::exec::boot::make_spec(&ereq, dir.path(), &topo, &plan)?;
    // Kernel messages below warnings stay off the terminal.
    spec.kernel_args.push("quiet".into());
    let mut argv = spec.qemu_argv()?;
    // Interactive: the terminal is the serial console. A command's output
    // comes through the result channel instead, the console to its file.
    if req.command.is_none() {
        let console = argv
            .iter()
            .position(|a| a.starts_with("file:") && a.ends_with("console.log"))
            .context("the console argument of the QEMU command line")?;
        argv[console] = "chardev:fhcon".into();
        argv.extend(["-chardev".into(), "stdio,id=fhcon,signal=off".into()]);
    }
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
        crate::base::proc::register_file(&dir.path().join(f));
    }
    // In the terminal's foreground process group (a background one would be
    // stopped reading it), gone with the harness.
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    crate::base::proc::die_with_parent(&mut cmd);
    if req.command.is_some() {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", argv[0]))?;
    // The command's output, as the guest sends it.
    let (mut pos, mut dec) = (0u64, crate::contract::StreamDecoder::default());
    let mut relay = |pos: &mut u64| {
        use std::io::{Read, Seek, Write};
        let Ok(mut f) = std::fs::File::open(spec.channel_log()) else {
            return;
        };
        let mut buf = Vec::new();
        if f.seek(std::io::SeekFrom::Start(*pos)).is_ok() && f.read_to_end(&mut buf).is_ok() {
            *pos += buf.len() as u64;
            let mut out = std::io::stdout().lock();
            for m in dec.feed(&buf) {
                if let crate::contract::GuestMsg::CaseOutput { text, .. } = m {
                    let _ = out.write_all(text.as_bytes());
                }
            }
            let _ = out.flush();
        }
    };
    let status = loop {
        if let Some(st) = child.try_wait().context("waiting for QEMU")? {
            break st;
        }
        if req.command.is_some() {
            relay(&mut pos);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if req.command.is_some() {
        relay(&mut pos);
    }
    let base = exit::qemu_status_for(exit::EXIT_SHELL_BASE);
    match status.code() {
        Some(c) if c >= base && (c - base) % 2 == 0 => Ok((c - base) / 2),
        other => bail!(
            "the VM ended without the shell's status (QEMU exit {other:?}); the guest may have crashed"
        ),
    }
}

/// `cargo xtask shell`: the case and topology by name, then [`run`].
pub fn main(
    opts: &crate::run::Options,
    case: Option<&str>,
    topology: Option<&str>,
    command: Option<String>,
    gdb: bool,
) -> Result<i32> {
    let all = crate::plan::case::discover(&opts.cases_dir())?;
    let case = match case {
        Some(id) => Some(all.iter().find(|c| c.id == id).with_context(|| {
            format!("--case {id}: no such trial (cargo xtask test-vm --list names them)")
        })?),
        None => None,
    };
    let topology = match topology {
        Some(t) => Some(
            crate::plan::topologies::Table::load(&opts.root)?
                .choose(t)?
                .topology(),
        ),
        None => None,
    };
    let prepared = crate::run::prepare(opts)?;
    run(
        &prepared,
        &Request {
            case,
            topology,
            command,
            gdb,
        },
    )
}
