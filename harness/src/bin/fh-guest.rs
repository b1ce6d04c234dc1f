//! The harness's program inside the guest: the case runner (`run`) and the
//! small tools cases call. One static binary keeps the initramfs simple and
//! runs unchanged under virtme-ng.

use anyhow::{bail, Context, Result};
use famfs_harness::guest::{capability, dax, runner, sys, tools};
use std::path::PathBuf;

const USAGE: &str = "usage: fh-guest COMMAND [ARGS]
  run --plan FILE [--channel DEV]     run the cases of a plan (the runner)
  exit CODE                           leave QEMU through isa-debug-exit
  dax-info NAME                       print size, align and driver of a dax device
  dax-bind NAME device_dax|fsdev_dax  bind a dax device to a driver through sysfs
  dax-mmap DEV LEN [OFFSET]           mmap DEV, write a pattern, read it back
  fuse-report INIT_JSON LOG_JSONL [--famfs-kernel]   judge a famfsd session against the kernel's kind
  famfsd --scenario FILE --mountpoint DIR [--log F] [--init-record F] [--threads N] [--profile P] [--ready F]
                                      the fault-injecting famfs FUSE server (see cases/scenarios/README.md)
  file PATH                           size, mode and content of a file (or the errno)
  dax-attr PATH                       'dax' or 'not dax': statx's STATX_ATTR_DAX for PATH
  famfsd-log LOG NAME[@PATH]...       count famfsd requests by opcode name (for one file with @PATH)
  pattern-fill DEV OFFSET LEN         write the address pattern into a devdax device
  pattern-check FILE FOFF LEN DOFF mmap|read [SEED]   FILE's bytes at FOFF must be the device pattern at DOFF (XOR SEED)
  fault-count FILE FOFF LEN aligned|unaligned   map at a 2 MiB-aligned address (or a page past it), read every
                                      page, print this process's PMD and PTE DAX faults (fs_dax tracepoints)
  mmap-probe FILE OFF read|write|write-private|poison [DOFF]   one access in a child: 'ok' or the signal it died of
  mmap-touch FILE OFF OP [DOFF]       the access itself (what mmap-probe runs)
  mmap-write FILE FOFF LEN DOFF SEED  write the pattern of DOFF XOR SEED through MAP_SHARED, msync
  mmap-random FILE SEED N write|check  stamp N random pages through an aligned mapping, or find the stamps through an unaligned one
  fuse-fmaps PREFIX MOUNT DAX PROFILE  the GET_FMAP/GET_DAXDEV replies in an strace recording PREFIX.*,
                                      checked against the shadow YAML of the famfs mounted at MOUNT
  mmap-ops FILE DOFF                  MADV_DONTNEED, mprotect, mremap and MAP_PRIVATE on a >= 4 MiB file
  mmap-hold FILE READY [GO DOFF]      map 2M of FILE, touch it, create READY; sleep until killed, or
                                      until GO exists, then check the whole mapping against DOFF
  mmap-threads FILE LEN DOFF N        N threads fault one shared mapping of FILE at once
  umount-errno PATH                   umount(2): 'umount: ok' or the errno name
  size-change FILE DOFF stat|chmod|truncate   with FILE mapped, take a size from the server again
                                      (GETATTR, SETATTR of the mode, truncate to 1M), then read twice
  bw KEY PATH LEN read|mmap seq|rand  bandwidth of reading LEN bytes of PATH: 'KEY MB/s'
  open-rate KEY PATH N                open+close PATH N times: 'KEY opens/s'
  famfs-cap PROFILE                   the famfs gate: exit 0 if famfs works as the kernel's build says, 3
                                      (not run) if the build has no famfs for PROFILE, 1 if it must and does not
  famfs-probe PROFILE                 the bare probe: exit 0 if the kernel offers and uses PROFILE's
                                      capability, 3 if not (what it saw on stdout)
  famfs-expected PROFILE              exit 0 if the kernel's build says it does famfs under PROFILE, else
                                      print why not and exit 3
  open-errno PATH [read|write|trunc]  'ok' or the errno name open(2) fails with
  init-verdict INIT_JSON PROFILE      what a correct kernel does after that INIT exchange for PROFILE's
                                      famfs bit, from its build and the mounter's credentials: 'offer
                                      yes|no', 'famfs on|off' and 'connection up|refused' (and 'offered
                                      yes|no': what the kernel did); why on stderr
  profile-has PROFILE FEATURE         exit 0 if the profile has FEATURE (interleave, pull, push, fmap-size),
                                      else print why not and exit 3
  push-expect LOG PROFILE [INIT_JSON] famfsd's pushes (request log) judged against a correct kernel
                                      (famfs on after INIT as the build says, given the INIT record)
  fmap-expect SCENARIO PATH [PROFILE] what open(2) of PATH does on a correct kernel ('ok' or an errno
                                      name, then any other correct answer: 'ok EINVAL'), from the kernel
                                      model of the fmap famfsd serves; why on stderr
  fmap-check SCENARIO PATH FILE [PROFILE]   FILE reads (read and mmap) as the device data PATH's fmap names
  sync-output                         wait until the host has every line the case printed so far";

/// The kernel's famfs build, as the host computed it (a case's
/// environment). Outside a harness run there is none, and saying so beats
/// guessing.
fn famfs_build() -> Result<famfs_harness::contract::FamfsBuild> {
    famfs_harness::contract::FamfsBuild::from_env().with_context(|| {
        format!(
            "{} is not set: run this inside a harness case",
            famfs_harness::contract::env::FAMFS_BUILD
        )
    })
}

fn init_record(path: &str) -> Result<famfs_harness::server::InitRecord> {
    serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
        .with_context(|| format!("{path}: not an INIT record"))
}

/// The famfs gate, decided once per boot and profile: the build and the
/// kernel do not change between cases, and each probe costs a mount. Exit
/// code 0 usable, 3 not run, 1 broken, and the reason.
fn famfs_gate(profile: &famfs_proto::Profile) -> Result<(i32, String)> {
    use capability::Gate;
    let build = famfs_harness::contract::FamfsBuild::from_env();
    let memo = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{profile:?}\n{build:?}").hash(&mut h);
        std::path::Path::new("/run/fh-famfs-gate").join(format!("{:016x}", h.finish()))
    };
    if build.is_some() {
        if let Some((code, text)) = std::fs::read_to_string(&memo)
            .ok()
            .and_then(|t| {
                t.split_once('\n')
                    .map(|(c, r)| (c.parse().ok(), r.to_string()))
            })
            .and_then(|(c, r)| c.map(|c| (c, r)))
        {
            return Ok((code, text));
        }
    }
    let scratch = std::env::temp_dir().join(format!("fh-famfs-cap-{}", std::process::id()));
    let gate = capability::gate(profile, build.as_ref(), &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let (code, text) = match gate? {
        Gate::Usable(t) => (0, t),
        Gate::NotRun(t) => (3, t),
        Gate::Broken(t) => (1, t),
    };
    if build.is_some() && std::fs::create_dir_all(memo.parent().unwrap_or(&memo)).is_ok() {
        let _ = std::fs::write(&memo, format!("{code}\n{text}"));
    }
    Ok((code, text))
}

/// A number, decimal or 0x hex (seeds).
fn parse_u64(s: &str) -> Result<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .with_context(|| format!("`{s}` is not a number"))
}

/// A command's arguments with its usage line, which every error names.
struct Args<'a> {
    v: &'a [String],
    usage: &'static str,
}

impl<'a> Args<'a> {
    fn new(v: &'a [String], usage: &'static str) -> Self {
        Args { v, usage }
    }

    fn s(&self, i: usize) -> Result<&'a str> {
        self.v.get(i).map(String::as_str).context(self.usage)
    }

    /// A length or size (`2M`, `4096`).
    fn len(&self, i: usize) -> Result<usize> {
        parse_len(self.s(i)?).context(self.usage)
    }

    /// An offset, written like a length.
    fn off(&self, i: usize) -> Result<u64> {
        Ok(self.len(i)? as u64)
    }

    /// A number, decimal or 0x hex.
    fn u64(&self, i: usize) -> Result<u64> {
        parse_u64(self.s(i)?).context(self.usage)
    }

    fn num<T: std::str::FromStr>(&self, i: usize) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.s(i)?.parse().context(self.usage)
    }
}

fn parse_len(s: &str) -> Result<usize> {
    let n = famfs_proto::Size::parse(s).map_err(|e| anyhow::anyhow!("{e}"))?;
    usize::try_from(n).with_context(|| format!("length `{s}` does not fit in memory"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let is_init = std::process::id() == 1;
    let r = real_main(&args);
    match r {
        Ok(code) => {
            if is_init {
                sys::leave_guest(sys::EXIT_RUNNER_DONE);
            }
            std::process::exit(code)
        }
        Err(e) => {
            eprintln!("fh-guest: {e:#}");
            if is_init {
                sys::kmsg_write(&format!("fh-guest: runner failed: {e:#}\n"));
                sys::leave_guest(sys::EXIT_RUNNER_ERROR);
            }
            std::process::exit(2)
        }
    }
}

fn real_main(args: &[String]) -> Result<i32> {
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(2)..];
    // `fh-guest COMMAND --help` is the usage, for every command (famfsd
    // prints its own).
    if cmd != "famfsd" && rest.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(0);
    }
    match cmd {
        "run" => {
            let (mut plan, mut channel) = (None, None);
            let mut p = lexopt::Parser::from_args(rest);
            while let Some(arg) = p.next()? {
                match arg {
                    lexopt::Arg::Long("plan") => {
                        plan = Some(
                            p.value()?
                                .into_string()
                                .map_err(|v| anyhow::anyhow!("bad --plan {v:?}"))?,
                        )
                    }
                    lexopt::Arg::Long("channel") => {
                        channel = Some(
                            p.value()?
                                .into_string()
                                .map_err(|v| anyhow::anyhow!("bad --channel {v:?}"))?,
                        )
                    }
                    other => bail!("run: {}\n{USAGE}", other.unexpected()),
                }
            }
            let plan = plan.context("run: --plan FILE is required")?;
            let tool = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/bin/fh-guest"));
            runner::main(&plan, channel.as_deref(), &tool)?;
            // Under virtme-ng the runner is not PID 1; leave through the
            // debug-exit device if present so the host sees the status.
            sys::debug_exit(sys::EXIT_RUNNER_DONE);
            Ok(0)
        }
        "exit" => {
            let code: u8 = rest.first().context("exit CODE")?.parse()?;
            sys::leave_guest(code)
        }
        "dax-info" => {
            let d = dax::device_info(rest.first().context("dax-info NAME")?)?;
            println!(
                "size {} align {} driver {}",
                d.size,
                d.align,
                if d.driver.is_empty() {
                    "(none)"
                } else {
                    &d.driver
                }
            );
            Ok(0)
        }
        "dax-bind" => {
            let (name, drv) = (
                rest.first().context("dax-bind NAME DRIVER")?,
                rest.get(1).context("dax-bind NAME DRIVER")?,
            );
            dax::bind(name, drv)?;
            Ok(0)
        }
        "dax-mmap" => {
            let dev = rest.first().context("dax-mmap DEV LEN [OFFSET]")?;
            let len = parse_len(rest.get(1).context("dax-mmap DEV LEN [OFFSET]")?)?;
            let off = rest.get(2).map(|s| parse_len(s)).transpose()?.unwrap_or(0) as i64;
            println!("{}", dax::mmap_pattern(dev, len, off)?);
            Ok(0)
        }
        "fuse-report" => {
            let a = Args::new(rest, "fuse-report INIT_JSON LOG_JSONL [--famfs-kernel]");
            let init_p = a.s(0)?;
            let log_p = a.s(1)?;
            let init: famfs_harness::server::InitRecord = serde_json::from_str(
                &std::fs::read_to_string(init_p).with_context(|| format!("reading {init_p}"))?,
            )?;
            let reqs = capability::read_log(std::path::Path::new(log_p))?;
            let famfs_kernel = match rest.get(2).map(String::as_str) {
                Some("--famfs-kernel") => true,
                None => false,
                Some(other) => bail!("fuse-report: unknown argument `{other}`\n{}", a.usage),
            };
            print!("{}", capability::report(&init, &reqs, famfs_kernel)?);
            Ok(0)
        }
        "famfsd" => famfs_harness::server::cli_main(rest),
        "file" => {
            print!("{}", tools::file(rest.first().context("file PATH")?));
            Ok(0)
        }
        "dax-attr" => {
            print!(
                "{}",
                tools::dax_attr(rest.first().context("dax-attr PATH")?)
            );
            Ok(0)
        }
        "famfsd-log" => {
            print!(
                "{}",
                tools::log_counts(rest.first().context("famfsd-log LOG NAME...")?, &rest[1..])?
            );
            Ok(0)
        }
        "pattern-fill" => {
            let a = Args::new(rest, "pattern-fill DEV OFFSET LEN");
            let off = a.off(1)?;
            print!("{}", tools::pattern_fill(a.s(0)?, off, a.len(2)?)?);
            Ok(0)
        }
        "pattern-check" => {
            let a = Args::new(
                rest,
                "pattern-check FILE FILE_OFFSET LEN DEV_OFFSET mmap|read [SEED]",
            );
            let (foff, len, doff) = (a.off(1)?, a.len(2)?, a.off(3)?);
            print!(
                "{}",
                tools::pattern_check(
                    a.s(0)?,
                    foff,
                    len,
                    doff,
                    a.s(4)?,
                    rest.get(5).map(|s| parse_u64(s)).transpose()?.unwrap_or(0)
                )?
            );
            Ok(0)
        }
        "fault-count" => {
            let a = Args::new(rest, "fault-count FILE FILE_OFFSET LEN aligned|unaligned");
            print!(
                "{}",
                famfs_harness::guest::mmap::fault_count(a.s(0)?, a.off(1)?, a.len(2)?, a.s(3)?)?
            );
            Ok(0)
        }
        "mmap-probe" | "mmap-touch" => {
            let a = Args::new(
                rest,
                "mmap-probe FILE OFFSET read|write|write-private|poison [DEV_OFFSET]",
            );
            let (file, off, op) = (a.s(0)?, a.off(1)?, a.s(2)?);
            let dev = rest
                .get(3)
                .map(|s| parse_len(s))
                .transpose()?
                .map(|d| d as u64);
            let f = if cmd == "mmap-probe" {
                famfs_harness::guest::mmap::probe
            } else {
                famfs_harness::guest::mmap::touch
            };
            print!("{}", f(file, off, op, dev)?);
            Ok(0)
        }
        "mmap-write" => {
            let a = Args::new(rest, "mmap-write FILE FILE_OFFSET LEN DEV_OFFSET SEED");
            print!(
                "{}",
                famfs_harness::guest::mmap::write_pattern(
                    a.s(0)?,
                    a.off(1)?,
                    a.len(2)?,
                    a.off(3)?,
                    a.u64(4)?
                )?
            );
            Ok(0)
        }
        "mmap-random" => {
            let a = Args::new(rest, "mmap-random FILE SEED N write|check");
            print!(
                "{}",
                famfs_harness::guest::mmap::random(a.s(0)?, a.u64(1)?, a.num(2)?, a.s(3)?)?
            );
            Ok(0)
        }
        "fuse-fmaps" => {
            let a = Args::new(rest, "fuse-fmaps RECORDING_PREFIX MOUNT DAX PROFILE");
            print!(
                "{}",
                famfs_harness::guest::fuse_record::fmaps(a.s(0)?, a.s(1)?, a.s(2)?, a.s(3)?)?
            );
            Ok(0)
        }
        "mmap-ops" => {
            let a = Args::new(rest, "mmap-ops FILE DEV_OFFSET");
            print!("{}", famfs_harness::guest::mmap::ops(a.s(0)?, a.off(1)?)?);
            Ok(0)
        }
        "mmap-hold" => {
            let a = Args::new(rest, "mmap-hold FILE READY_FILE [GO_FILE DEV_OFFSET]");
            let go = match (rest.get(2), rest.get(3)) {
                (Some(g), Some(d)) => Some((g.as_str(), parse_len(d)? as u64)),
                (None, None) => None,
                _ => bail!("{}", a.usage),
            };
            print!(
                "{}",
                famfs_harness::guest::mmap::hold(a.s(0)?, a.s(1)?, go)?
            );
            Ok(0)
        }
        "mmap-threads" => {
            let a = Args::new(rest, "mmap-threads FILE LEN DEV_OFFSET N");
            print!(
                "{}",
                famfs_harness::guest::mmap::threads(a.s(0)?, a.len(1)?, a.off(2)?, a.num(3)?)?
            );
            Ok(0)
        }
        "size-change" => {
            let a = Args::new(rest, "size-change FILE DEV_OFFSET stat|chmod|truncate");
            print!(
                "{}",
                famfs_harness::guest::mmap::size_change(a.s(0)?, a.off(1)?, a.s(2)?)?
            );
            Ok(0)
        }
        "bw" => {
            let a = Args::new(rest, "bw KEY PATH LEN read|mmap seq|rand");
            print!(
                "{}",
                famfs_harness::guest::datapath::bandwidth(
                    a.s(0)?,
                    a.s(1)?,
                    a.len(2)?,
                    a.s(3)?,
                    a.s(4)?
                )?
            );
            Ok(0)
        }
        "open-rate" => {
            let a = Args::new(rest, "open-rate KEY PATH N");
            print!(
                "{}",
                famfs_harness::guest::datapath::open_rate(a.s(0)?, a.s(1)?, a.u64(2)? as u32)?
            );
            Ok(0)
        }
        "umount-errno" => {
            print!(
                "{}",
                famfs_harness::guest::mmap::umount_errno(
                    rest.first().context("umount-errno PATH")?
                )
            );
            Ok(0)
        }
        "famfs-cap" => {
            let profile = famfs_proto::Profile::parse(Args::new(rest, "famfs-cap PROFILE").s(0)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let (code, text) = famfs_gate(&profile)?;
            println!("{text}");
            Ok(code)
        }
        "famfs-probe" => {
            let profile = famfs_proto::Profile::parse(Args::new(rest, "famfs-probe PROFILE").s(0)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let scratch =
                std::env::temp_dir().join(format!("fh-famfs-probe-{}", std::process::id()));
            let rec = capability::famfs_capability(&profile, &scratch);
            let _ = std::fs::remove_dir_all(&scratch);
            let cap = rec?;
            println!("{}", cap.describe());
            Ok(if cap.usable() { 0 } else { 3 })
        }
        "famfs-expected" => {
            let profile =
                famfs_proto::Profile::parse(Args::new(rest, "famfs-expected PROFILE").s(0)?)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            let build = famfs_build()?;
            match capability::famfs_expected(&build, &profile) {
                Ok(why) => {
                    println!("{why}");
                    Ok(0)
                }
                Err(why) => {
                    println!("{why}");
                    Ok(3)
                }
            }
        }
        "init-verdict" => {
            let a = Args::new(rest, "init-verdict INIT_JSON PROFILE");
            let rec = init_record(a.s(0)?)?;
            let p = famfs_proto::Profile::parse(a.s(1)?).map_err(|e| anyhow::anyhow!("{e}"))?;
            let built = capability::famfs_expected(&famfs_build()?, &p).is_ok();
            let v = capability::init_verdict(&rec, &p, Some(built));
            eprintln!("init-verdict: {}", v.why);
            let yes = |b: bool| if b { "yes" } else { "no" };
            println!(
                "offered {}\noffer {}\nfamfs {}\nconnection {}",
                yes(rec.offered & (1u64 << p.flag_bit) != 0),
                yes(v.offer),
                if v.famfs { "on" } else { "off" },
                if v.connection { "up" } else { "refused" }
            );
            Ok(0)
        }
        "open-errno" => {
            println!(
                "{}",
                tools::open_errno_with(
                    rest.first().context("open-errno PATH [read|write|trunc]")?,
                    rest.get(1).map(String::as_str).unwrap_or("read")
                )?
            );
            Ok(0)
        }
        "fmap-expect" => {
            let a = Args::new(rest, "fmap-expect SCENARIO PATH [PROFILE]");
            let cfg = famfs_harness::server::scenario::Config::load(
                std::path::Path::new(a.s(0)?),
                rest.get(2).map(String::as_str),
            )?;
            let e = famfs_harness::server::expect::open_expectation(cfg, a.s(1)?)?;
            eprintln!("fmap-expect: {}", e.why);
            println!("{}", e.tokens());
            Ok(0)
        }
        "profile-has" => {
            let a = Args::new(rest, "profile-has PROFILE interleave|pull|push|fmap-size");
            let p = famfs_proto::Profile::parse(a.s(0)?).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (has, lacks) = match a.s(1)? {
                "interleave" => (
                    p.interleave,
                    "interleaved extents (simple extents only: user space unrolls stripes)",
                ),
                "pull" => (
                    !p.pushes_daxdevs(),
                    "GET_DAXDEV (the daemon pushes dax devices with FUSE_DEV_IOC_DAXDEV_OPEN)",
                ),
                "push" => (
                    p.pushes_daxdevs(),
                    "FUSE_DEV_IOC_DAXDEV_OPEN (the kernel pulls dax devices with GET_DAXDEV)",
                ),
                "fmap-size" => (
                    p.has_fmap_size(),
                    "the GET_FMAP size probe (no fmap_size, one 4096-byte reply)",
                ),
                other => anyhow::bail!(
                    "profile-has: unknown feature '{other}' (interleave, pull, push, fmap-size)"
                ),
            };
            if has {
                Ok(0)
            } else {
                println!("the {} famfs ABI has no {lacks}", p.name);
                Ok(3)
            }
        }
        "push-expect" => {
            let a = Args::new(rest, "push-expect LOG PROFILE [INIT_JSON]");
            let profile =
                famfs_proto::Profile::parse(a.s(1)?).map_err(|e| anyhow::anyhow!("{e}"))?;
            let log = std::fs::read_to_string(a.s(0)?)
                .with_context(|| format!("reading {}", a.s(0).unwrap_or_default()))?;
            // famfs after INIT as the build says, not as the kernel did.
            let famfs = match rest.get(2) {
                Some(path) => {
                    let built = capability::famfs_expected(&famfs_build()?, &profile).is_ok();
                    Some(capability::init_verdict(&init_record(path)?, &profile, Some(built)).famfs)
                }
                None => None,
            };
            print!(
                "{}",
                famfs_harness::server::expect::push_report(&profile, &log, famfs)
            );
            Ok(0)
        }
        "fmap-check" => {
            let a = Args::new(rest, "fmap-check SCENARIO PATH FILE [PROFILE]");
            print!(
                "{}",
                tools::fmap_check(a.s(0)?, a.s(1)?, a.s(2)?, rest.get(3).map(String::as_str))?
            );
            Ok(0)
        }
        "sync-output" => {
            tools::sync_output()?;
            Ok(0)
        }
        "" | "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}
