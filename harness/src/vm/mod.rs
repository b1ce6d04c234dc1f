//! The VM stage: the description both launch backends read (`VmSpec`), the
//! QEMU arguments it means, the accelerator probe (`accel`), virtme-ng
//! (`vng`), and the monitor that follows a boot: the typed messages, the
//! console, timeouts and the exit status. It launches and watches; it does
//! not judge a case.

pub mod accel;
pub mod qemu;
pub mod vng;

use crate::base::proc::GroupChild;
use crate::contract::topology::{PmemKind, Topology, ALIGN_2M};
use crate::contract::{GuestMsg, StreamDecoder, PORT_NAME};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// qemu-system-x86_64 with the harness initramfs (default).
    Qemu,
    /// virtme-ng: the host's user space over 9p/virtiofs.
    Vng,
}

impl std::str::FromStr for Backend {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "qemu" => Ok(Backend::Qemu),
            "vng" => Ok(Backend::Vng),
            _ => anyhow::bail!("unknown backend `{s}` (qemu, vng)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// Case timeouts are stretched by this factor.
    pub fn timeout_scale(self) -> f64 {
        match self {
            Accel::Kvm => 1.0,
            Accel::Tcg => 4.0,
        }
    }
}

/// Everything needed to boot one VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmSpec {
    pub backend: Backend,
    pub accel: Accel,
    pub kernel: PathBuf,
    /// Initramfs (direct QEMU only).
    pub initrd: Option<PathBuf>,
    pub cpus: u32,
    pub topology: Topology,
    /// The QEMU program and the arguments it always needs (`vm::qemu`).
    pub qemu: PathBuf,
    #[serde(default)]
    pub qemu_args: Vec<String>,
    pub kernel_args: Vec<String>,
    /// Per-boot directory: console and channel logs, pmem backing files.
    pub dir: PathBuf,
    /// Command the guest runs (virtme-ng only; the initramfs has its /init).
    pub guest_command: Vec<String>,
}

impl VmSpec {
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn channel_log(&self) -> PathBuf {
        self.dir.join("channel.log")
    }

    /// Kernel command line (backend-independent part).
    pub fn cmdline(&self) -> Vec<String> {
        let mut a = vec![
            "console=ttyS0".to_string(),
            "panic=-1".into(),
            "nokaslr".into(),
        ];
        if self.accel == Accel::Tcg {
            // -cpu max enables 5-level paging; KASAN kernels misbehave with it under TCG.
            a.push("no5lvl".into());
        }
        let cxl = self.topology.pmem.as_ref().is_some_and(|p| p.kind.is_cxl());
        if self.backend == Backend::Qemu && !cxl {
            // On the pc machine, enabling the virtio channel's interrupt
            // through ACPI's PCI link (LNKB) runs AML that takes 16 s of a
            // 25 s boot of a KASAN+lockdep kernel under TCG; the BIOS's
            // routing table gives the same IRQ at once. Nothing under test
            // has an interrupt (pmem, dax, FUSE); ACPI itself (NFIT) stays.
            a.push("acpi=noirq".into());
        }
        if let Some(p) = &self.topology.pmem {
            match p.kind {
                // A 2 MiB gap of RAM between devices keeps their ranges
                // apart (adjacent ones would merge into one region).
                PmemKind::Memmap => {
                    for i in 0..u64::from(p.devices) {
                        a.push(format!(
                            "memmap={}M!{}M",
                            p.size_mib,
                            4096 + i * (p.size_mib + 2)
                        ))
                    }
                }
                // QEMU's emulated root ports lack the interrupts the port
                // services ask for; without this no memdev appears.
                PmemKind::Cxl | PmemKind::CxlVolatile => a.push("pcie_ports=compat".into()),
                PmemKind::Nvdimm => {}
            }
        }
        a.extend(self.kernel_args.iter().cloned());
        a
    }

    /// Machine, memory, device and channel arguments, shared by both
    /// backends (virtme-ng gets them through --qemu-opts).
    pub fn device_args(&self) -> Result<Vec<String>> {
        let mut a: Vec<String> = Vec::new();
        let mem = self.topology.memory_mib();
        match &self.topology.pmem {
            Some(p) if p.kind == PmemKind::Nvdimm => {
                a.extend(["-machine".into(), "pc,nvdimm=on".into()]);
                let n = u64::from(p.devices);
                a.extend([
                    "-m".into(),
                    format!(
                        "{mem}M,slots={},maxmem={}M",
                        n + 1,
                        mem + n * p.size_mib + 1024
                    ),
                ]);
                for i in 0..n {
                    let backing = self.dir.join(format!("nvdimm{i}.img"));
                    let f = std::fs::File::create(&backing)
                        .with_context(|| format!("creating {}", backing.display()))?;
                    f.set_len(p.size_mib << 20)?;
                    a.extend([
                        "-object".into(),
                        format!(
                            "memory-backend-file,id=nvmem{i},share=on,mem-path={},size={}M,align={}",
                            backing.display(),
                            p.size_mib,
                            ALIGN_2M
                        ),
                        "-device".into(),
                        format!("nvdimm,id=nvdimm{i},memdev=nvmem{i}"),
                    ]);
                }
            }
            Some(p) if p.kind == PmemKind::CxlVolatile => {
                a.extend(["-machine".into(), "q35,cxl=on".into()]);
                a.extend([
                    "-m".into(),
                    format!("{mem}M,slots=8,maxmem={}M", mem + p.size_mib + 4096),
                ]);
                a.extend([
                    "-object".into(),
                    format!("memory-backend-ram,id=cxl-vmem0,size={}M", p.size_mib),
                    "-device".into(),
                    "pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1".into(),
                    "-device".into(),
                    "cxl-rp,port=0,bus=cxl.1,id=cxl_rp0,chassis=0,slot=2".into(),
                    "-device".into(),
                    "cxl-type3,bus=cxl_rp0,volatile-memdev=cxl-vmem0,id=cxl-vmem0-dev,sn=1".into(),
                    "-M".into(),
                    format!(
                        "cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size={}M",
                        p.size_mib.div_ceil(4096) * 4096
                    ),
                ]);
            }
            Some(p) if p.kind == PmemKind::Cxl => {
                a.extend(["-machine".into(), "q35,cxl=on".into()]);
                a.extend([
                    "-m".into(),
                    format!("{mem}M,slots=8,maxmem={}M", mem + p.size_mib + 4096),
                ]);
                let mem_img = self.dir.join("cxl-mem0.img");
                let lsa_img = self.dir.join("cxl-lsa0.img");
                std::fs::File::create(&mem_img)
                    .with_context(|| format!("creating {}", mem_img.display()))?
                    .set_len(p.size_mib << 20)?;
                std::fs::File::create(&lsa_img)
                    .with_context(|| format!("creating {}", lsa_img.display()))?
                    .set_len(256 << 20)?;
                a.extend([
                    "-object".into(),
                    format!(
                        "memory-backend-file,id=cxl-mem0,share=on,mem-path={},size={}M",
                        mem_img.display(),
                        p.size_mib
                    ),
                    "-object".into(),
                    format!(
                        "memory-backend-file,id=cxl-lsa0,share=on,mem-path={},size=256M",
                        lsa_img.display()
                    ),
                    "-device".into(),
                    "pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1".into(),
                    "-device".into(),
                    "cxl-rp,port=0,bus=cxl.1,id=cxl_rp0,chassis=0,slot=2".into(),
                    // The driver refuses a device without a serial number.
                    "-device".into(),
                    "cxl-type3,bus=cxl_rp0,memdev=cxl-mem0,lsa=cxl-lsa0,id=cxl-pmem0,sn=1".into(),
                    "-M".into(),
                    format!(
                        "cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size={}M",
                        p.size_mib.div_ceil(4096) * 4096
                    ),
                ]);
            }
            _ => {
                a.extend(["-machine".into(), "pc".into()]);
                a.extend(["-m".into(), format!("{mem}M")]);
            }
        }
        // Pin the port to the root bus: left to itself QEMU may put it on
        // the CXL host bridge, which only takes bridges.
        let root_bus = if self.topology.pmem.as_ref().is_some_and(|p| p.kind.is_cxl()) {
            "pcie.0"
        } else {
            "pci.0"
        };
        a.extend([
            "-device".into(),
            format!("virtio-serial-pci,id=fhser0,bus={root_bus}"),
            "-chardev".into(),
            format!("file,id=fhchan0,path={}", self.channel_log().display()),
            "-device".into(),
            format!("virtserialport,bus=fhser0.0,chardev=fhchan0,name={PORT_NAME}"),
            "-device".into(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        ]);
        Ok(a)
    }

    pub fn accel_args(&self) -> Vec<String> {
        match self.accel {
            Accel::Kvm => vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()],
            // One TCG thread: multi-threaded TCG oopsed during boot about
            // once in 13 boots on these hosts (code patching races).
            Accel::Tcg => vec![
                "-accel".into(),
                "tcg,thread=single".into(),
                "-cpu".into(),
                "max".into(),
            ],
        }
    }

    /// Full argv for direct QEMU.
    pub fn qemu_argv(&self) -> Result<Vec<String>> {
        let mut a = vec![self.qemu.display().to_string()];
        a.extend(self.qemu_args.iter().cloned());
        a.extend(self.accel_args());
        a.extend(["-smp".into(), self.cpus.to_string()]);
        a.extend(self.device_args()?);
        a.extend(["-kernel".into(), self.kernel.display().to_string()]);
        if let Some(i) = &self.initrd {
            a.extend(["-initrd".into(), i.display().to_string()]);
        }
        a.extend(["-append".into(), self.cmdline().join(" ")]);
        a.extend([
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            "-serial".into(),
            format!("file:{}", self.console_log().display()),
        ]);
        Ok(a)
    }
}

/// How a boot ended, as far as the host can tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BootEnd {
    /// The runner said Done and left through isa-debug-exit.
    Completed,
    /// The VM ended without the runner finishing (crash, panic, runner error).
    Died { status: Option<i32>, reason: String },
    /// The host killed it.
    TimedOut { reason: String },
    /// The harness got SIGINT/SIGTERM/SIGHUP and stopped the VM.
    Interrupted { signal: i32 },
}

/// Timeouts the monitor enforces, already scaled for the accelerator.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// From launch to the runner's Hello.
    pub boot: Duration,
    /// From Hello to Setup.
    pub setup: Duration,
    /// A case may run this long past its own (scaled) timeout before the
    /// host gives up on the guest runner.
    pub grace: Duration,
}

/// Follow a running VM: decode channel messages (calling `on_msg` for each),
/// enforce timeouts, and return how it ended. `case_timeout` maps a case id
/// to its scaled timeout.
pub fn monitor(
    child: &mut dyn Running,
    spec: &VmSpec,
    t: &Timeouts,
    case_timeout: &dyn Fn(&str) -> Duration,
    on_msg: &mut dyn FnMut(&GuestMsg),
) -> Result<BootEnd> {
    let start = Instant::now();
    let mut dec = StreamDecoder::default();
    let mut pos = 0u64;
    let mut hello = false;
    let mut done = false;
    // (what we wait for, deadline)
    let mut deadline: (String, Instant) = (
        "the guest runner to start (no Hello)".into(),
        start + t.boot,
    );
    let chan_path = spec.channel_log();
    let read_new = |pos: &mut u64, dec: &mut StreamDecoder| -> Vec<GuestMsg> {
        let Ok(mut f) = std::fs::File::open(&chan_path) else {
            return vec![];
        };
        if f.seek(SeekFrom::Start(*pos)).is_err() {
            return vec![];
        }
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        *pos += buf.len() as u64;
        dec.feed(&buf)
    };
    loop {
        if let Some(signal) = crate::base::proc::interrupted() {
            child.kill();
            for m in read_new(&mut pos, &mut dec) {
                on_msg(&m);
            }
            return Ok(BootEnd::Interrupted { signal });
        }
        let exited = child.poll()?;
        for m in read_new(&mut pos, &mut dec) {
            match &m {
                GuestMsg::Hello { .. } => {
                    hello = true;
                    deadline = ("device setup in the guest".into(), Instant::now() + t.setup);
                }
                GuestMsg::Setup { .. } | GuestMsg::CaseEnd(_) => {
                    deadline = ("the next case to start".into(), Instant::now() + t.setup);
                }
                GuestMsg::CaseStart { id, .. } => {
                    deadline = (
                        format!("case {id} to finish"),
                        Instant::now() + case_timeout(id) + t.grace,
                    );
                }
                GuestMsg::Done { .. } => {
                    done = true;
                    deadline = (
                        "QEMU to exit after the runner finished".into(),
                        Instant::now() + Duration::from_secs(30),
                    );
                }
                GuestMsg::Note { .. } | GuestMsg::CaseOutput { .. } | GuestMsg::Restart { .. } => {}
            }
            on_msg(&m);
        }
        if let Some(code) = exited {
            // isa-debug-exit: runner's 0 -> 1. virtme-ng exits on its own
            // after the command, so Done is what counts there.
            let ok_status = match spec.backend {
                Backend::Qemu => {
                    code == Some(crate::contract::exit::qemu_status_for(
                        crate::contract::exit::EXIT_RUNNER_DONE,
                    ))
                }
                Backend::Vng => true,
            };
            if done && ok_status {
                return Ok(BootEnd::Completed);
            }
            let reason = if !hello {
                "the VM exited before the guest runner started".to_string()
            } else if done {
                format!("the runner finished but the VM exit status was {code:?}")
            } else if code
                == Some(crate::contract::exit::qemu_status_for(
                    crate::contract::exit::EXIT_RUNNER_ERROR,
                ))
            {
                "the guest runner failed (see the console log)".to_string()
            } else {
                "the VM stopped while a case was running".to_string()
            };
            return Ok(BootEnd::Died {
                status: code,
                reason,
            });
        }
        if Instant::now() > deadline.1 {
            child.kill();
            // Pick up anything written just before the kill.
            for m in read_new(&mut pos, &mut dec) {
                on_msg(&m);
            }
            return Ok(BootEnd::TimedOut {
                reason: format!(
                    "timed out after {:.0}s waiting for {}",
                    start.elapsed().as_secs_f64(),
                    deadline.0
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(if hello { 10 } else { 20 }));
    }
}

/// A launched VM, whatever started it.
pub trait Running {
    /// `Some(exit code)` once the process has ended (`None` inside for a signal).
    fn poll(&mut self) -> Result<Option<Option<i32>>>;
    /// Kill the whole process group.
    fn kill(&mut self);
}

impl Running for GroupChild {
    fn poll(&mut self) -> Result<Option<Option<i32>>> {
        Ok(self.child.try_wait()?.map(|s| s.code()))
    }
    fn kill(&mut self) {
        GroupChild::kill(self)
    }
}

/// Start direct QEMU for `spec`.
/// Say when the kernel cannot report the guest's exit status.
pub fn check_exit_port(cfg: &crate::kernel::config::DotConfig) {
    if !cfg.enabled("X86_IOPL_IOPERM") {
        crate::events::warn("kernel lacks CONFIG_X86_IOPL_IOPERM; the guest cannot report its exit status through isa-debug-exit");
    }
}

pub fn launch_qemu(spec: &VmSpec) -> Result<GroupChild> {
    std::fs::create_dir_all(&spec.dir)?;
    let argv = spec.qemu_argv()?;
    std::fs::write(spec.dir.join("qemu.cmdline"), shell_words(&argv))?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.stdin(std::process::Stdio::null());
    cmd.stdout(std::fs::File::create(spec.dir.join("qemu.stdout"))?);
    cmd.stderr(std::fs::File::create(spec.dir.join("qemu.stderr"))?);
    GroupChild::spawn(&mut cmd, &argv[0])
}

/// A command line a person can paste into a shell (paths with spaces and
/// quotes included).
pub fn shell_words(argv: &[String]) -> String {
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

/// Last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::topology::{DaxMode, PmemSpec};

    fn spec(dir: &Path, topo: Topology, accel: Accel) -> VmSpec {
        VmSpec {
            backend: Backend::Qemu,
            accel,
            kernel: "/k/bzImage".into(),
            initrd: Some("/k/initrd".into()),
            cpus: 2,
            topology: topo,
            qemu: "qemu-system-x86_64".into(),
            qemu_args: vec![],
            kernel_args: vec!["fh.x=1".into()],
            dir: dir.to_path_buf(),
            guest_command: vec![],
        }
    }

    #[test]
    fn nvdimm_topology_becomes_devices() {
        let t = tempfile::tempdir().unwrap();
        let topo = Topology {
            pmem: Some(PmemSpec {
                kind: PmemKind::Nvdimm,
                size_mib: 256,
                mode: DaxMode::Devdax,
                align: ALIGN_2M,
                devices: 1,
            }),
        };
        let s = spec(t.path(), topo, Accel::Tcg);
        let argv = s.qemu_argv().unwrap().join(" ");
        assert!(argv.contains("-machine pc,nvdimm=on"), "{argv}");
        assert!(argv.contains("-m 1536M,slots=2,maxmem=2816M"), "{argv}");
        assert!(argv.contains("size=256M,align=2097152"), "{argv}");
        assert!(
            argv.contains("-device nvdimm,id=nvdimm0,memdev=nvmem0"),
            "{argv}"
        );
        assert!(argv.contains("isa-debug-exit,iobase=0xf4"), "{argv}");
        assert!(argv.contains("tcg,thread=single"), "{argv}");
        assert!(argv.contains("no5lvl") && argv.contains("fh.x=1"), "{argv}");
        let backing = std::fs::metadata(t.path().join("nvdimm0.img")).unwrap();
        assert_eq!(backing.len(), 256 << 20);
    }

    #[test]
    fn cxl_topology_becomes_a_host_bridge_root_port_and_type3_device() {
        let t = tempfile::tempdir().unwrap();
        let topo = Topology {
            pmem: Some(PmemSpec {
                kind: PmemKind::Cxl,
                size_mib: 512,
                mode: DaxMode::Devdax,
                align: ALIGN_2M,
                devices: 1,
            }),
        };
        let s = spec(t.path(), topo, Accel::Tcg);
        let argv = s.qemu_argv().unwrap().join(" ");
        assert!(argv.contains("-machine q35,cxl=on"), "{argv}");
        assert!(
            argv.contains("pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1"),
            "{argv}"
        );
        assert!(
            argv.contains("cxl-type3,bus=cxl_rp0,memdev=cxl-mem0,lsa=cxl-lsa0,id=cxl-pmem0,sn=1"),
            "{argv}"
        );
        assert!(
            argv.contains("cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4096M"),
            "{argv}"
        );
        assert!(s.cmdline().contains(&"pcie_ports=compat".to_string()));
        assert_eq!(
            std::fs::metadata(t.path().join("cxl-mem0.img"))
                .unwrap()
                .len(),
            512 << 20
        );
    }

    #[test]
    fn two_nvdimms_and_volatile_cxl() {
        let t = tempfile::tempdir().unwrap();
        let mut p = PmemSpec {
            kind: PmemKind::Nvdimm,
            size_mib: 256,
            mode: DaxMode::Devdax,
            align: ALIGN_2M,
            devices: 2,
        };
        let s = spec(
            t.path(),
            Topology {
                pmem: Some(p.clone()),
            },
            Accel::Tcg,
        );
        let argv = s.qemu_argv().unwrap().join(" ");
        assert!(argv.contains("-m 1536M,slots=3,maxmem=3072M"), "{argv}");
        for i in 0..2 {
            assert!(
                argv.contains(&format!("-device nvdimm,id=nvdimm{i},memdev=nvmem{i}")),
                "{argv}"
            );
            assert!(t.path().join(format!("nvdimm{i}.img")).exists());
        }
        p.kind = PmemKind::CxlVolatile;
        p.devices = 1;
        let mut s = spec(t.path(), Topology { pmem: Some(p) }, Accel::Tcg);
        s.qemu = "/opt/qemu/bin/qemu-system-x86_64".into();
        s.qemu_args = vec!["-L".into(), "/opt/qemu/share/qemu".into()];
        let argv = s.qemu_argv().unwrap().join(" ");
        assert!(
            argv.starts_with("/opt/qemu/bin/qemu-system-x86_64 -L /opt/qemu/share/qemu "),
            "{argv}"
        );
        assert!(
            argv.contains("memory-backend-ram,id=cxl-vmem0,size=256M")
                && argv.contains("cxl-type3,bus=cxl_rp0,volatile-memdev=cxl-vmem0"),
            "{argv}"
        );
        assert!(!argv.contains("lsa="), "{argv}");
        assert!(s.cmdline().contains(&"pcie_ports=compat".to_string()));
    }

    #[test]
    fn memmap_and_plain_topologies() {
        let t = tempfile::tempdir().unwrap();
        let topo = Topology {
            pmem: Some(PmemSpec {
                kind: PmemKind::Memmap,
                size_mib: 512,
                mode: DaxMode::Devdax,
                align: ALIGN_2M,
                devices: 1,
            }),
        };
        let s = spec(t.path(), topo, Accel::Kvm);
        assert!(s.cmdline().contains(&"memmap=512M!4096M".to_string()));
        assert!(!s.cmdline().contains(&"no5lvl".to_string()));
        let argv = s.qemu_argv().unwrap().join(" ");
        assert!(
            argv.contains("-m 4608M") && argv.contains("-accel kvm -cpu host"),
            "{argv}"
        );
        // Two devices: two ranges with RAM between them, and RAM for both.
        let mut two = s.topology.clone();
        two.pmem.as_mut().unwrap().devices = 2;
        let s = spec(t.path(), two, Accel::Kvm);
        let cmd = s.cmdline();
        assert!(
            cmd.contains(&"memmap=512M!4096M".to_string())
                && cmd.contains(&"memmap=512M!4610M".to_string()),
            "{cmd:?}"
        );
        assert!(s.qemu_argv().unwrap().join(" ").contains("-m 5120M"));
        let plain = spec(t.path(), Topology::default(), Accel::Tcg)
            .qemu_argv()
            .unwrap()
            .join(" ");
        assert!(
            plain.contains("-machine pc ") && !plain.contains("nvdimm"),
            "{plain}"
        );
    }
}

#[cfg(test)]
mod quoting_tests {
    #[test]
    fn command_lines_survive_spaces_and_quotes() {
        let argv: Vec<String> = [
            "qemu",
            "-kernel",
            "/a dir/bzImage",
            "-append",
            "console=ttyS0 it's",
        ]
        .map(String::from)
        .to_vec();
        let line = super::shell_words(&argv);
        assert_eq!(shlex::split(&line).unwrap(), argv);
    }
}
