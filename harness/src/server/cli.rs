//! `famfsd`: mount a scenario on /dev/fuse and serve it until SIGTERM.

use super::dispatch::Server;
use super::scenario::{Config, NodeKind};
use super::transport::{spawn, ExitMode, FuseConn, Running, ServeEnd, Wake};
use anyhow::{anyhow, bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const USAGE: &str = "usage: famfsd --scenario FILE --mountpoint DIR [options]
  --scenario FILE      scenario YAML (see cases/scenarios/README.md)
  --mountpoint DIR     where to mount (must exist)
  --log FILE           request log, one JSON line per request
  --init-record FILE   JSON record of the INIT exchange
  --threads N          reader threads sharing /dev/fuse (default 1)
  --profile NAME       protocol profile, overrides the scenario's
  --ready FILE         written once mounted and serving
  --fsname NAME        mount source shown in /proc/mounts (default fh-famfsd)
  --read-only          mount read-only (MS_RDONLY)
  --drop-cap-sys-rawio mount without CAP_SYS_RAWIO (a famfs kernel then
                       does not offer the famfs capability)
  --check              only parse and resolve the scenario, print a summary
Exits 0 after SIGTERM/SIGINT (unmounting first) or when the mount goes away.";

/// Parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub scenario: PathBuf,
    pub mountpoint: PathBuf,
    pub log: Option<PathBuf>,
    pub init_record: Option<PathBuf>,
    pub threads: usize,
    pub profile: Option<String>,
    pub ready: Option<PathBuf>,
    pub fsname: String,
    pub mount: MountOptions,
    pub check: bool,
    pub help: bool,
}

/// How the mount itself is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_RDONLY: the famfs data path of a read-only mount.
    pub read_only: bool,
    /// Drop CAP_SYS_RAWIO from the mounting thread first: V10 offers the
    /// famfs capability only to a server that has it.
    pub drop_sys_rawio: bool,
    /// Reader threads sharing /dev/fuse (at least 1).
    pub threads: usize,
}

impl Args {
    /// Parses the arguments that follow the command name (lexopt: both
    /// `--opt V` and `--opt=V`). `--help` sets `help` and nothing else is
    /// required.
    pub fn parse(args: &[String]) -> Result<Args> {
        use lexopt::Arg::{Long, Short};
        let mut a = Args {
            threads: 1,
            fsname: "fh-famfsd".into(),
            ..Default::default()
        };
        let (mut scenario, mut mountpoint) = (None, None);
        let mut p = lexopt::Parser::from_args(args);
        while let Some(arg) = p.next().map_err(|e| anyhow!("{e}\n{USAGE}"))? {
            let key = match &arg {
                Long(k) => format!("--{k}"),
                Short(c) => format!("-{c}"),
                lexopt::Arg::Value(v) => {
                    bail!("unexpected argument '{}'\n{USAGE}", v.to_string_lossy())
                }
            };
            drop(arg);
            let mut value = || -> Result<String> {
                p.value()
                    .map_err(|_| anyhow!("{key} needs a value\n{USAGE}"))?
                    .into_string()
                    .map_err(|v| anyhow!("{key}: '{}' is not UTF-8", v.to_string_lossy()))
            };
            match key.as_str() {
                "--check" => a.check = true,
                "--read-only" => a.mount.read_only = true,
                "--drop-cap-sys-rawio" => a.mount.drop_sys_rawio = true,
                "--help" | "-h" => a.help = true,
                "--scenario" => scenario = Some(PathBuf::from(value()?)),
                "--mountpoint" => mountpoint = Some(PathBuf::from(value()?)),
                "--log" => a.log = Some(PathBuf::from(value()?)),
                "--init-record" => a.init_record = Some(PathBuf::from(value()?)),
                "--ready" => a.ready = Some(PathBuf::from(value()?)),
                "--profile" => a.profile = Some(value()?),
                "--fsname" => a.fsname = value()?,
                "--threads" => {
                    let v = value()?;
                    a.threads = match v.parse::<usize>() {
                        Ok(n) if (1..=64).contains(&n) => n,
                        _ => bail!("--threads takes a number from 1 to 64, not '{v}'"),
                    };
                }
                _ => bail!("unknown argument '{key}'\n{USAGE}"),
            }
        }
        if a.help {
            return Ok(a);
        }
        a.scenario = scenario.ok_or_else(|| anyhow!("--scenario FILE is required\n{USAGE}"))?;
        match mountpoint {
            Some(m) => a.mountpoint = m,
            None if a.check => {}
            None => bail!("--mountpoint DIR is required\n{USAGE}"),
        }
        Ok(a)
    }
}

/// Entry point of `fh-guest famfsd ARGS`: `args` are the arguments after
/// the command name. Setup problems are errors (the caller prints them and
/// exits non-zero); a served-and-unmounted run returns 0.
pub fn cli_main(args: &[String]) -> Result<i32> {
    let a = Args::parse(args)?;
    if a.help {
        println!("{USAGE}");
        return Ok(0);
    }
    let cfg = Config::load(&a.scenario, a.profile.as_deref())?;
    if a.check {
        println!("{}", summary(&cfg).trim_end());
        return Ok(0);
    }
    serve_mount(&a, cfg)
}

/// One paragraph about a resolved scenario (for `--check`).
pub fn summary(cfg: &Config) -> String {
    let mut s = format!("{}: profile {}\n", cfg.source.display(), cfg.profile);
    for n in &cfg.nodes {
        let what = match &n.kind {
            NodeKind::Dir { .. } => "dir".to_string(),
            NodeKind::File { fmap: Some(f), .. } => {
                format!("file, fmap of {} extent(s)", f.nextents())
            }
            NodeKind::File {
                content: Some(_), ..
            } => "file, content".to_string(),
            NodeKind::File { .. } => "file".to_string(),
        };
        s += &format!(
            "  node {:>3} {} ({what}, size {}, mode {:o})\n",
            n.nodeid, n.path, n.size, n.perm
        );
    }
    for (i, d) in &cfg.daxdevs {
        s += &format!("  daxdev {i}: {d}\n");
    }
    for r in &cfg.rules {
        let on = r
            .node
            .and_then(|id| cfg.node(id))
            .map_or(String::new(), |n| format!(" on {}", n.path));
        s += &format!(
            "  rule: {} {}{on} ({:?}{})\n",
            r.name,
            r.op.name(),
            r.when,
            r.times.map_or(String::new(), |t| format!(", at most {t}"))
        );
    }
    s
}

fn os_error(e: &std::io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    match famfs_proto::errno::errno_name(code) {
        Some(name) => format!("{name}: {e}"),
        None => e.to_string(),
    }
}

/// Give up CAP_SYS_RAWIO for good (effective and permitted sets of this
/// thread, which makes the mount and creates the reader threads).
fn drop_sys_rawio() -> Result<()> {
    use rustix::thread::{capabilities, set_capabilities, CapabilitySet};
    let mut c = capabilities(None).context("capget")?;
    c.effective.remove(CapabilitySet::SYS_RAWIO);
    c.permitted.remove(CapabilitySet::SYS_RAWIO);
    set_capabilities(None, c).context("capset without CAP_SYS_RAWIO")?;
    Ok(())
}

/// Whether this thread has CAP_SYS_RAWIO in its effective set (the
/// credentials famfs checks at mount; false when they cannot be read).
pub fn has_cap_sys_rawio() -> bool {
    use rustix::thread::{capabilities, CapabilitySet};
    capabilities(None).is_ok_and(|c| c.effective.contains(CapabilitySet::SYS_RAWIO))
}

/// Opens /dev/fuse and mounts it on `mountpoint`.
fn mount_fuse(mountpoint: &Path, fsname: &str, opts: MountOptions) -> Result<OwnedFd> {
    if opts.drop_sys_rawio {
        drop_sys_rawio()?;
    }
    let dev = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(f) => OwnedFd::from(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no /dev/fuse: the kernel has no FUSE support, or devtmpfs is not mounted")
        }
        Err(e) => bail!("opening /dev/fuse: {}", os_error(&e)),
    };
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let data = format!(
        "fd={},rootmode=40000,user_id={uid},group_id={gid},allow_other",
        dev.as_raw_fd()
    );
    let data = CString::new(data).map_err(|_| anyhow!("mount data contains a NUL byte"))?;
    use rustix::mount::{mount, MountFlags};
    if let Err(e) = mount(
        fsname,
        mountpoint,
        "fuse",
        MountFlags::NOSUID
            | MountFlags::NODEV
            | if opts.read_only {
                MountFlags::RDONLY
            } else {
                MountFlags::empty()
            },
        Some(data.as_c_str()),
    ) {
        let hint = match e {
            rustix::io::Errno::PERM => " (mounting FUSE directly needs root / CAP_SYS_ADMIN)",
            rustix::io::Errno::NODEV => " (the kernel has no fuse file system type)",
            _ => "",
        };
        bail!(
            "mount(2) of fuse on {} failed: {}{hint}",
            mountpoint.display(),
            os_error(&e.into())
        );
    }
    Ok(dev)
}

/// Detaches the mount; a mount that is already gone is fine.
pub fn unmount(mountpoint: &Path) -> Result<()> {
    use rustix::io::Errno;
    match rustix::mount::unmount(mountpoint, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(Errno::INVAL | Errno::NOENT) => Ok(()),
        Err(e) => bail!("umount2({}): {}", mountpoint.display(), os_error(&e.into())),
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// A famfsd serving a mount in this process (the `famfsd` command, and the
/// capability gate that famfs cases pass first).
pub struct Mounted {
    pub running: Running,
    pub server: Arc<Mutex<Server>>,
    pub mountpoint: PathBuf,
}

impl Mounted {
    /// Mount /dev/fuse on `mountpoint` and serve `cfg` with `threads` readers,
    /// logging requests and the INIT exchange where asked.
    pub fn start(
        cfg: Config,
        mountpoint: &Path,
        fsname: &str,
        log: Option<&Path>,
        init_record: Option<&Path>,
        exit: ExitMode,
        opts: MountOptions,
    ) -> Result<Mounted> {
        let mut server = Server::new(cfg);
        if let Some(p) = log {
            let f = std::fs::File::create(p)
                .with_context(|| format!("creating the request log {}", p.display()))?;
            server.set_log(Box::new(std::io::LineWriter::new(f)));
        }
        if let Some(p) = init_record {
            // A stale record from an earlier run must not pass for this one.
            let _ = std::fs::remove_file(p);
            server.set_init_record(p.to_path_buf());
        }
        let dev = mount_fuse(mountpoint, fsname, opts)?;
        // The kernel's INIT waits unread until the readers start.
        server.set_mounter_cap_sys_rawio(has_cap_sys_rawio());
        let server = Arc::new(Mutex::new(server));
        match spawn(
            server.clone(),
            FuseConn::new(dev),
            opts.threads.max(1),
            exit,
        ) {
            Ok(running) => Ok(Mounted {
                running,
                server,
                mountpoint: mountpoint.to_path_buf(),
            }),
            Err(e) => {
                let _ = unmount(mountpoint);
                Err(e)
            }
        }
    }

    /// Unmount while the readers still answer (the kernel may need replies
    /// to finish with the mount), then stop them and close the device.
    pub fn stop(self) -> Result<()> {
        let um = unmount(&self.mountpoint);
        self.running.stop();
        let ends = self.running.join();
        um?;
        if let Some(ServeEnd::Failed(msg)) = ends.iter().find(|e| matches!(e, ServeEnd::Failed(_)))
        {
            bail!("serving {} failed: {msg}", self.mountpoint.display());
        }
        Ok(())
    }
}

fn serve_mount(a: &Args, cfg: Config) -> Result<i32> {
    if !a.mountpoint.is_dir() {
        bail!(
            "mount point {} is not an existing directory",
            a.mountpoint.display()
        );
    }
    let profile = cfg.profile.name.clone();
    let mounted = Mounted::start(
        cfg,
        &a.mountpoint,
        &a.fsname,
        a.log.as_deref(),
        a.init_record.as_deref(),
        ExitMode::Process,
        MountOptions {
            threads: a.threads,
            ..a.mount
        },
    )?;
    let running = &mounted.running;
    let mut handlers = Vec::new();
    let mut announce = || -> Result<()> {
        // SIGTERM and SIGINT write a byte into the wake pipe (signal-hook's
        // pipe registration: nothing but write(2) runs in the handler).
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            handlers.push(
                signal_hook::low_level::pipe::register(sig, running.wake_fd()?)
                    .context("installing the signal handler")?,
            );
        }
        if let Some(p) = &a.ready {
            let text = serde_json::json!({
                "pid": std::process::id(),
                "mountpoint": a.mountpoint,
                "profile": profile,
                "threads": a.threads,
            });
            write_atomically(p, &format!("{text}\n"))?;
        }
        Ok(())
    };
    // A failure here must not leave a mount without a server behind.
    let setup = announce();
    let why = match &setup {
        Ok(()) => running.wait(),
        Err(_) => Wake::ThreadEnded,
    };
    let stopped = mounted.stop();
    for h in handlers {
        signal_hook::low_level::unregister(h);
    }
    setup?;
    stopped?;
    if why == Wake::Signal {
        eprintln!(
            "famfsd: signal received, {} unmounted",
            a.mountpoint.display()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn args() {
        let a = Args::parse(&s(&[
            "--scenario",
            "x.yaml",
            "--mountpoint=/mnt",
            "--threads",
            "4",
            "--profile",
            "famfs-6.14",
        ]))
        .unwrap();
        assert_eq!(a.scenario, PathBuf::from("x.yaml"));
        assert_eq!(a.mountpoint, PathBuf::from("/mnt"));
        assert_eq!(a.threads, 4);
        assert_eq!(a.profile.as_deref(), Some("famfs-6.14"));
        assert_eq!(a.fsname, "fh-famfsd");
        assert_eq!(a.mount, MountOptions::default());
        let a = Args::parse(&s(&[
            "--scenario",
            "x",
            "--mountpoint",
            "/m",
            "--read-only",
            "--drop-cap-sys-rawio",
        ]))
        .unwrap();
        assert!(a.mount.read_only && a.mount.drop_sys_rawio);
        let e = Args::parse(&s(&["--scenario", "x"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--mountpoint DIR is required"), "{e}");
        let e = Args::parse(&s(&["--scenario", "x", "--mountpoint", "/m", "--bogus"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown argument '--bogus'"), "{e}");
        let e = Args::parse(&s(&[
            "--scenario",
            "x",
            "--mountpoint",
            "/m",
            "--threads",
            "0",
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("1 to 64"), "{e}");
        let e = Args::parse(&s(&["--scenario"])).unwrap_err().to_string();
        assert!(e.contains("--scenario needs a value"), "{e}");
        assert!(
            Args::parse(&s(&["--scenario", "x", "--check"]))
                .unwrap()
                .check
        );
        // --help needs nothing else and is not an error.
        assert!(Args::parse(&s(&["--help"])).unwrap().help);
        assert_eq!(cli_main(&s(&["-h"])).unwrap(), 0);
    }

    #[test]
    fn check_summarizes_a_scenario() {
        let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/scenarios/famfs-basic.yaml");
        let cfg = Config::load(&f, Some("famfs-6.14")).unwrap();
        let text = summary(&cfg);
        assert!(
            text.contains("profile famfs-6.14 (bit 42, GET_FMAP 53"),
            "{text}"
        );
        assert!(
            text.contains("/data/striped (file, fmap of 1 extent(s), size 16777216, mode 644)"),
            "{text}"
        );
        assert!(text.contains("daxdev 0: /dev/dax0.0"), "{text}");
        let args = s(&["--scenario", f.to_str().unwrap(), "--check"]);
        assert_eq!(cli_main(&args).unwrap(), 0);
    }

    #[test]
    fn scenario_errors_surface_before_mounting() {
        let dir = std::env::temp_dir().join(format!("famfsd-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.yaml");
        std::fs::write(&f, "profile: v99\n").unwrap();
        let args = s(&[
            "--scenario",
            f.to_str().unwrap(),
            "--mountpoint",
            "/nonexistent",
        ]);
        let e = format!("{:#}", cli_main(&args).unwrap_err());
        assert!(e.contains("bad.yaml:1:10") && e.contains("v99"), "{e}");
        let e = format!(
            "{:#}",
            cli_main(&s(&[
                "--scenario",
                "/nonexistent.yaml",
                "--mountpoint",
                "/"
            ]))
            .unwrap_err()
        );
        assert!(e.contains("reading scenario /nonexistent.yaml"), "{e}");
        std::fs::write(&f, "tree: []\n").unwrap();
        let args = s(&[
            "--scenario",
            f.to_str().unwrap(),
            "--mountpoint",
            "/nonexistent-dir",
        ]);
        let e = format!("{:#}", cli_main(&args).unwrap_err());
        assert!(e.contains("not an existing directory"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
