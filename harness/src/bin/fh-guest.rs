//! The harness's program inside the guest: the case runner (`run`) and the
//! small tools cases call. One static binary keeps the initramfs simple and
//! runs unchanged under virtme-ng.
//!
//! The command line is clap's (derive); the usage text below is the help
//! (`fh-guest`, `fh-guest help`, and `--help` or `-h` anywhere after any
//! command but `famfsd`, which parses its own arguments and prints its own).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use famfs_harness::guest::{capability, datapath, dax, fuse_record, mmap, runner, sys, tools};
use famfs_harness::server;
use famfs_proto::Profile;
use std::path::PathBuf;

const USAGE: &str = "usage: fh-guest COMMAND [ARGS]
  run --plan FILE [--channel DEV]     run the cases of a plan (the runner)
  exit CODE                           leave QEMU through isa-debug-exit
  dax-info NAME                       print size, align and driver of a dax device
  dax-bind NAME device_dax|fsdev_dax  bind a dax device to a driver through sysfs
  dax-mmap DEV LEN [OFFSET]           mmap DEV, write a pattern, read it back
  hwpoison-inject NAME DOFF UNTIL     report the page at DOFF of dax device NAME failed (corrupt-pfn)
                                      every 5 ms until UNTIL exists; each result on stderr
  fuse-report INIT_JSON LOG_JSONL [--famfs-kernel]   judge a famfsd session against the kernel's kind
  famfsd --scenario FILE --mountpoint DIR [--log F] [--init-record F] [--threads N] [--profile P] [--ready F]
                                      the fault-injecting famfs FUSE server (see cases/scenarios/README.md)
  file PATH                           size, mode and content of a file (or the errno)
  dax-attr PATH                       'dax' or 'not dax': statx's STATX_ATTR_DAX for PATH
  famfsd-log LOG NAME[@PATH]...       count famfsd requests by opcode name (for one file with @PATH)
  pattern-fill DEV OFFSET LEN         write the address pattern into a devdax device
  pattern-check FILE FOFF LEN DOFF mmap|read [SEED]   FILE's bytes at FOFF must be the device pattern at DOFF (XOR SEED)
  file-write FILE FOFF LEN DOFF SEED  write(2) the pattern of DOFF XOR SEED at FOFF (one pwrite): the count or the errno
  fault-count FILE FOFF LEN aligned|unaligned   map at a 2 MiB-aligned address (or a page past it), read every
                                      page, print this process's PMD and PTE DAX faults (fs_dax tracepoints)
  mmap-probe FILE OFF read|watch|write|write-private|poison [DOFF]   one access in a child: 'ok' or the
                                      signal it died of (watch: read, create ./watching, wait for ./go, read)
  mmap-touch FILE OFF OP [DOFF]       the access itself (what mmap-probe runs)
  mmap-write FILE FOFF LEN DOFF SEED [--read-first]  write the pattern of DOFF XOR SEED through MAP_SHARED,
                                      msync (--read-first: each page read first, so each store is a write-protect fault)
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
  fuzz-files SCENARIO MOUNT [PROFILE] [--judge]   exercise each fmap file of a fuzzed scenario (open,
                                      stat, reads and faults at extent boundaries, reopen): one observation
                                      line each, or with --judge the kernel model's verdict; exit 4 if a task hung
  fuzz-file SCENARIO PATH MOUNT [PROFILE]   one file of fuzz-files (run in a watched child)
  sync-output                         wait until the host has every line the case printed so far";

/// The command line.
#[derive(Parser)]
#[command(
    name = "fh-guest",
    bin_name = "fh-guest",
    disable_help_flag = true,
    disable_help_subcommand = true,
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands (see [`USAGE`]). Lengths and offsets are sizes (`2M`,
/// `4096`, `0x1000`); seeds are decimal or 0x hex.
#[derive(Subcommand)]
enum Command {
    /// Run the cases of a plan (the runner).
    Run {
        #[arg(long, value_name = "FILE")]
        plan: String,
        #[arg(long, value_name = "DEV")]
        channel: Option<String>,
    },
    /// Leave QEMU through isa-debug-exit.
    Exit { code: u8 },
    /// Print size, align and driver of a dax device.
    DaxInfo { name: String },
    /// Bind a dax device to a driver (device_dax or fsdev_dax) through sysfs.
    DaxBind { name: String, driver: String },
    /// mmap DEV, write a pattern, read it back.
    DaxMmap {
        dev: String,
        #[arg(value_parser = parse_len)]
        len: usize,
        #[arg(value_parser = parse_len)]
        offset: Option<usize>,
    },
    /// Report a page of a dax device failed (HWPOISON_INJECT's
    /// corrupt-pfn) every 5 ms until a file exists.
    HwpoisonInject {
        name: String,
        #[arg(value_parser = parse_off)]
        doff: u64,
        until: String,
    },
    /// Judge a famfsd session against the kernel's kind.
    FuseReport {
        init_json: String,
        log_jsonl: String,
        #[arg(long)]
        famfs_kernel: bool,
    },
    /// The fault-injecting famfs FUSE server, with its own arguments.
    Famfsd {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Size, mode and content of a file (or the errno).
    File { path: String },
    /// 'dax' or 'not dax': statx's STATX_ATTR_DAX for PATH.
    DaxAttr { path: String },
    /// Count famfsd requests by opcode name (NAME@PATH: for one file).
    FamfsdLog { log: String, names: Vec<String> },
    /// Write the address pattern into a devdax device.
    PatternFill {
        dev: String,
        #[arg(value_parser = parse_off)]
        offset: u64,
        #[arg(value_parser = parse_len)]
        len: usize,
    },
    /// FILE's bytes at FOFF must be the device pattern at DOFF (XOR SEED).
    PatternCheck {
        file: String,
        #[arg(value_parser = parse_off)]
        foff: u64,
        #[arg(value_parser = parse_len)]
        len: usize,
        #[arg(value_parser = parse_off)]
        doff: u64,
        /// mmap or read.
        how: String,
        #[arg(value_parser = parse_u64, default_value = "0")]
        seed: u64,
    },
    /// write(2) the pattern of DOFF XOR SEED at FOFF of FILE (one pwrite):
    /// the count returned, or the errno.
    FileWrite {
        file: String,
        #[arg(value_parser = parse_off)]
        foff: u64,
        #[arg(value_parser = parse_len)]
        len: usize,
        #[arg(value_parser = parse_off)]
        doff: u64,
        #[arg(value_parser = parse_u64)]
        seed: u64,
    },
    /// Map at a 2 MiB-aligned address (or a page past it), read every
    /// page, print this process's PMD and PTE DAX faults.
    FaultCount {
        file: String,
        #[arg(value_parser = parse_off)]
        foff: u64,
        #[arg(value_parser = parse_len)]
        len: usize,
        /// aligned or unaligned.
        how: String,
    },
    /// One access in a child: 'ok' or the signal it died of.
    MmapProbe(Access),
    /// The access itself (what mmap-probe runs).
    MmapTouch(Access),
    /// Write the pattern of DOFF XOR SEED through MAP_SHARED, msync.
    MmapWrite {
        file: String,
        #[arg(value_parser = parse_off)]
        foff: u64,
        #[arg(value_parser = parse_len)]
        len: usize,
        #[arg(value_parser = parse_off)]
        doff: u64,
        #[arg(value_parser = parse_u64)]
        seed: u64,
        /// Read each page before writing it: the read fault maps it
        /// read-only, so each store is a write-protect fault (mkwrite).
        #[arg(long)]
        read_first: bool,
    },
    /// Stamp N random pages through an aligned mapping, or find the stamps
    /// through an unaligned one.
    MmapRandom {
        file: String,
        #[arg(value_parser = parse_u64)]
        seed: u64,
        n: usize,
        /// write or check.
        how: String,
    },
    /// The GET_FMAP/GET_DAXDEV replies in an strace recording PREFIX.*,
    /// checked against the shadow YAML of the famfs mounted at MOUNT.
    FuseFmaps {
        prefix: String,
        mount: String,
        dax: String,
        profile: String,
    },
    /// MADV_DONTNEED, mprotect, mremap and MAP_PRIVATE on a >= 4 MiB file.
    MmapOps {
        file: String,
        #[arg(value_parser = parse_off)]
        doff: u64,
    },
    /// Map 2M of FILE, touch it, create READY; sleep until killed, or until
    /// GO exists, then check the whole mapping against DOFF.
    MmapHold {
        file: String,
        ready: String,
        #[arg(requires = "doff")]
        go: Option<String>,
        #[arg(value_parser = parse_off)]
        doff: Option<u64>,
    },
    /// N threads fault one shared mapping of FILE at once.
    MmapThreads {
        file: String,
        #[arg(value_parser = parse_len)]
        len: usize,
        #[arg(value_parser = parse_off)]
        doff: u64,
        n: usize,
    },
    /// umount(2): 'umount: ok' or the errno name.
    UmountErrno { path: String },
    /// With FILE mapped, take a size from the server again (stat, chmod or
    /// truncate), then read twice.
    SizeChange {
        file: String,
        #[arg(value_parser = parse_off)]
        doff: u64,
        how: String,
    },
    /// Bandwidth of reading LEN bytes of PATH (read|mmap, seq|rand).
    Bw {
        key: String,
        path: String,
        #[arg(value_parser = parse_len)]
        len: usize,
        how: String,
        order: String,
    },
    /// open+close PATH N times.
    OpenRate {
        key: String,
        path: String,
        #[arg(value_parser = parse_u64)]
        n: u64,
    },
    /// The famfs gate: 0 usable, 3 not run, 1 broken.
    FamfsCap {
        #[arg(value_parser = parse_profile)]
        profile: Profile,
    },
    /// The bare probe: 0 if the kernel offers and uses the capability, else 3.
    FamfsProbe {
        #[arg(value_parser = parse_profile)]
        profile: Profile,
    },
    /// 0 if the kernel's build says it does famfs under PROFILE, else 3.
    FamfsExpected {
        #[arg(value_parser = parse_profile)]
        profile: Profile,
    },
    /// 'ok' or the errno name open(2) fails with.
    OpenErrno {
        path: String,
        /// read, write or trunc.
        #[arg(default_value = "read")]
        how: String,
    },
    /// What a correct kernel does after that INIT exchange.
    InitVerdict {
        init_json: String,
        #[arg(value_parser = parse_profile)]
        profile: Profile,
    },
    /// 0 if the profile has FEATURE, else why not and 3.
    ProfileHas {
        #[arg(value_parser = parse_profile)]
        profile: Profile,
        feature: Feature,
    },
    /// famfsd's pushes (request log) judged against a correct kernel.
    PushExpect {
        log: String,
        #[arg(value_parser = parse_profile)]
        profile: Profile,
        init_json: Option<String>,
    },
    /// What open(2) of PATH does on a correct kernel, from the kernel model
    /// of the fmap famfsd serves.
    FmapExpect {
        scenario: String,
        path: String,
        profile: Option<String>,
    },
    /// FILE reads (read and mmap) as the device data PATH's fmap names.
    FmapCheck {
        scenario: String,
        path: String,
        file: String,
        profile: Option<String>,
    },
    /// Exercise every fmap file of a fuzzed scenario: one observation line
    /// each (or, with --judge, the model's verdict on it).
    FuzzFiles {
        scenario: String,
        mount: String,
        profile: Option<String>,
        #[arg(long)]
        judge: bool,
    },
    /// One file of `fuzz-files` (what it runs in a child).
    FuzzFile {
        scenario: String,
        path: String,
        mount: String,
        profile: Option<String>,
    },
    /// Wait until the host has every line the case printed so far.
    SyncOutput,
}

/// `mmap-probe` and `mmap-touch`: one access to FILE at OFF.
#[derive(clap::Args)]
struct Access {
    file: String,
    #[arg(value_parser = parse_off)]
    off: u64,
    /// read, write, write-private or poison.
    op: String,
    #[arg(value_parser = parse_off)]
    doff: Option<u64>,
}

/// What `profile-has` asks about a profile.
#[derive(Clone, Copy, ValueEnum)]
enum Feature {
    Interleave,
    Pull,
    Push,
    FmapSize,
}

/// A length or size (`2M`, `4096`).
fn parse_len(s: &str) -> Result<usize, String> {
    let n = famfs_proto::Size::parse(s)?;
    usize::try_from(n).map_err(|_| format!("length `{s}` does not fit in memory"))
}

/// An offset, written like a length.
fn parse_off(s: &str) -> Result<u64, String> {
    parse_len(s).map(|n| n as u64)
}

/// A number, decimal or 0x hex (seeds).
fn parse_u64(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("`{s}` is not a number"))
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).map_err(|e| e.to_string())
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

/// The usage for no command, `help`, and `COMMAND --help` (or `-h`) for
/// every command but famfsd; else the command's exit code. A bad command
/// line is an error like any other (exit 2; as PID 1, the guest's end).
fn real_main(args: &[String]) -> Result<i32> {
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(2)..];
    let asks_help = cmd != "famfsd" && rest.iter().any(|a| a == "--help" || a == "-h");
    if asks_help || matches!(cmd, "" | "-h" | "--help" | "help") {
        println!("{USAGE}");
        return Ok(0);
    }
    let cli = Cli::try_parse_from(args).map_err(|e| usage_error(&e, cmd))?;
    dispatch(cli.command)
}

/// A bad command line, worded like the program's other errors (clap's
/// message and usage line; an unknown command with the whole usage).
fn usage_error(e: &clap::Error, cmd: &str) -> anyhow::Error {
    if e.kind() == clap::error::ErrorKind::InvalidSubcommand {
        return anyhow::anyhow!("unknown command `{cmd}`\n{USAGE}");
    }
    let text = e.to_string();
    let text = text.trim_end();
    anyhow::anyhow!("{}", text.strip_prefix("error: ").unwrap_or(text))
}

fn dispatch(command: Command) -> Result<i32> {
    use Command as C;
    match command {
        C::Run { plan, channel } => run(&plan, channel.as_deref()),
        C::Exit { code } => sys::leave_guest(code),
        C::DaxInfo { name } => dax_info(&name),
        C::DaxBind { name, driver } => dax::bind(&name, &driver).map(|()| 0),
        C::HwpoisonInject { name, doff, until } => out(dax::hwpoison_inject(&name, doff, &until)),
        C::DaxMmap { dev, len, offset } => {
            let off = offset.unwrap_or(0) as i64;
            println!("{}", dax::mmap_pattern(&dev, len, off)?);
            Ok(0)
        }
        C::FuseReport {
            init_json,
            log_jsonl,
            famfs_kernel,
        } => fuse_report(&init_json, &log_jsonl, famfs_kernel),
        C::Famfsd { args } => server::cli_main(&args),
        C::File { path } => out(Ok(tools::file(&path))),
        C::DaxAttr { path } => out(Ok(tools::dax_attr(&path))),
        C::FamfsdLog { log, names } => out(tools::log_counts(&log, &names)),
        C::PatternFill { dev, offset, len } => out(tools::pattern_fill(&dev, offset, len)),
        C::PatternCheck {
            file,
            foff,
            len,
            doff,
            how,
            seed,
        } => out(tools::pattern_check(&file, foff, len, doff, &how, seed)),
        C::FaultCount {
            file,
            foff,
            len,
            how,
        } => out(mmap::fault_count(&file, foff, len, &how)),
        C::MmapProbe(a) => out(mmap::probe(&a.file, a.off, &a.op, a.doff)),
        C::MmapTouch(a) => out(mmap::touch(&a.file, a.off, &a.op, a.doff)),
        C::FileWrite {
            file,
            foff,
            len,
            doff,
            seed,
        } => out(tools::file_write(&file, foff, len, doff, seed)),
        C::MmapWrite {
            file,
            foff,
            len,
            doff,
            seed,
            read_first,
        } => out(mmap::write_pattern(
            &file, foff, len, doff, seed, read_first,
        )),
        C::MmapRandom { file, seed, n, how } => out(mmap::random(&file, seed, n, &how)),
        C::FuseFmaps {
            prefix,
            mount,
            dax,
            profile,
        } => out(fuse_record::fmaps(&prefix, &mount, &dax, &profile)),
        C::MmapOps { file, doff } => out(mmap::ops(&file, doff)),
        C::MmapHold {
            file,
            ready,
            go,
            doff,
        } => out(mmap::hold(&file, &ready, go.as_deref().zip(doff))),
        C::MmapThreads { file, len, doff, n } => out(mmap::threads(&file, len, doff, n)),
        C::SizeChange { file, doff, how } => out(mmap::size_change(&file, doff, &how)),
        C::Bw {
            key,
            path,
            len,
            how,
            order,
        } => out(datapath::bandwidth(&key, &path, len, &how, &order)),
        C::OpenRate { key, path, n } => out(datapath::open_rate(&key, &path, n as u32)),
        C::UmountErrno { path } => out(Ok(mmap::umount_errno(&path))),
        C::FamfsCap { profile } => famfs_cap(&profile),
        C::FamfsProbe { profile } => famfs_probe(&profile),
        C::FamfsExpected { profile } => famfs_expected(&profile),
        C::OpenErrno { path, how } => {
            println!("{}", tools::open_errno_with(&path, &how)?);
            Ok(0)
        }
        C::InitVerdict { init_json, profile } => init_verdict(&init_json, &profile),
        C::ProfileHas { profile, feature } => profile_has(&profile, feature),
        C::PushExpect {
            log,
            profile,
            init_json,
        } => push_expect(&log, &profile, init_json.as_deref()),
        C::FmapExpect {
            scenario,
            path,
            profile,
        } => fmap_expect(&scenario, &path, profile.as_deref()),
        C::FmapCheck {
            scenario,
            path,
            file,
            profile,
        } => out(tools::fmap_check(
            &scenario,
            &path,
            &file,
            profile.as_deref(),
        )),
        c @ (C::FuzzFiles { .. } | C::FuzzFile { .. }) => fuzz(c),
        C::SyncOutput => tools::sync_output().map(|()| 0),
    }
}

/// The fmap fuzzer's guest side.
fn fuzz(c: Command) -> Result<i32> {
    use famfs_harness::guest::fuzz;
    match c {
        Command::FuzzFiles {
            scenario,
            mount,
            profile,
            judge,
        } => fuzz::files(&scenario, &mount, profile.as_deref(), judge),
        Command::FuzzFile {
            scenario,
            path,
            mount,
            profile,
        } => out(fuzz::file(&scenario, &path, &mount, profile.as_deref()).map(|l| l + "\n")),
        _ => unreachable!("only the fuzz commands come here"),
    }
}

/// A tool's report on stdout, as it is (its lines end in a newline).
fn out(report: Result<String>) -> Result<i32> {
    print!("{}", report?);
    Ok(0)
}

/// `run`: the case runner.
fn run(plan: &str, channel: Option<&str>) -> Result<i32> {
    let tool = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/bin/fh-guest"));
    runner::main(plan, channel, &tool)?;
    // Under virtme-ng the runner is not PID 1; leave through the
    // debug-exit device if present so the host sees the status.
    sys::debug_exit(sys::EXIT_RUNNER_DONE);
    Ok(0)
}

fn dax_info(name: &str) -> Result<i32> {
    let d = dax::device_info(name)?;
    let driver = if d.driver.is_empty() {
        "(none)"
    } else {
        &d.driver
    };
    println!("size {} align {} driver {driver}", d.size, d.align);
    Ok(0)
}

fn fuse_report(init_path: &str, log_path: &str, famfs_kernel: bool) -> Result<i32> {
    let init: server::InitRecord = serde_json::from_str(
        &std::fs::read_to_string(init_path).with_context(|| format!("reading {init_path}"))?,
    )?;
    let reqs = capability::read_log(std::path::Path::new(log_path))?;
    out(capability::report(&init, &reqs, famfs_kernel))
}

/// `famfs-cap`: the gate's verdict as the exit code, its reason on stdout.
fn famfs_cap(profile: &Profile) -> Result<i32> {
    let (code, text) = famfs_gate(profile)?;
    println!("{text}");
    Ok(code)
}

fn famfs_probe(profile: &Profile) -> Result<i32> {
    let scratch = std::env::temp_dir().join(format!("fh-famfs-probe-{}", std::process::id()));
    let rec = capability::famfs_capability(profile, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let cap = rec?;
    println!("{}", cap.describe());
    Ok(if cap.usable() { 0 } else { 3 })
}

fn famfs_expected(profile: &Profile) -> Result<i32> {
    let build = famfs_build()?;
    match capability::famfs_expected(&build, profile) {
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

fn init_verdict(init_path: &str, p: &Profile) -> Result<i32> {
    let rec = init_record(init_path)?;
    let built = capability::famfs_expected(&famfs_build()?, p).is_ok();
    let v = capability::init_verdict(&rec, p, Some(built));
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

fn profile_has(p: &Profile, feature: Feature) -> Result<i32> {
    let (has, lacks) = match feature {
        Feature::Interleave => (
            p.interleave,
            "interleaved extents (simple extents only: user space unrolls stripes)",
        ),
        Feature::Pull => (
            !p.pushes_daxdevs(),
            "GET_DAXDEV (the daemon pushes dax devices with FUSE_DEV_IOC_DAXDEV_OPEN)",
        ),
        Feature::Push => (
            p.pushes_daxdevs(),
            "FUSE_DEV_IOC_DAXDEV_OPEN (the kernel pulls dax devices with GET_DAXDEV)",
        ),
        Feature::FmapSize => (
            p.has_fmap_size(),
            "the GET_FMAP size probe (no fmap_size, one 4096-byte reply)",
        ),
    };
    if has {
        Ok(0)
    } else {
        println!("the {} famfs ABI has no {lacks}", p.name);
        Ok(3)
    }
}

fn push_expect(log_path: &str, profile: &Profile, init_path: Option<&str>) -> Result<i32> {
    let log = std::fs::read_to_string(log_path).with_context(|| format!("reading {log_path}"))?;
    // famfs after INIT as the build says, not as the kernel did.
    let famfs = match init_path {
        Some(path) => {
            let built = capability::famfs_expected(&famfs_build()?, profile).is_ok();
            Some(capability::init_verdict(&init_record(path)?, profile, Some(built)).famfs)
        }
        None => None,
    };
    out(Ok(server::expect::push_report(profile, &log, famfs)))
}

fn fmap_expect(scenario: &str, path: &str, profile: Option<&str>) -> Result<i32> {
    let cfg = server::scenario::Config::load(std::path::Path::new(scenario), profile)?;
    let e = server::expect::open_expectation(cfg, path)?;
    eprintln!("fmap-expect: {}", e.why);
    println!("{}", e.tokens());
    Ok(0)
}

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

fn init_record(path: &str) -> Result<server::InitRecord> {
    serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
        .with_context(|| format!("{path}: not an INIT record"))
}

/// The famfs gate, decided once per boot and profile: the build and the
/// kernel do not change between cases, and each probe costs a mount. Exit
/// code 0 usable, 3 not run, 1 broken, and the reason.
fn famfs_gate(profile: &Profile) -> Result<(i32, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        let args = std::iter::once("fh-guest").chain(line.split_whitespace());
        Cli::try_parse_from(args).map(|c| c.command)
    }

    /// Every form the cases, common.sh and the initramfs call, with
    /// stand-ins for their variables.
    #[test]
    fn the_cases_command_lines_parse() {
        let lines = [
            "run --plan /harness/plan.json",
            "run --plan=/tmp/plan.json --channel /dev/vport0p1",
            "exit 16",
            "dax-info dax0.0",
            "dax-bind dax0.0 fsdev_dax",
            "dax-mmap /dev/dax0.0 2M",
            "dax-mmap /dev/dax0.0 2M 2M",
            "hwpoison-inject dax0.0 8M gone",
            "fuse-report init.json requests.jsonl",
            "fuse-report init.json requests.jsonl --famfs-kernel",
            "famfsd --scenario s.yaml --mountpoint /mnt --profile v10 --log l --ready r",
            "famfsd --scenario s.yaml --check",
            "file plain/plain.txt",
            "dax-attr famfs/f",
            "famfsd-log requests.jsonl GET_FMAP@/plain.txt GET_FMAP@/famfs/file GET_DAXDEV INIT",
            "famfsd-log requests.jsonl",
            "pattern-fill /dev/dax0.0 0 64M",
            "pattern-check /mnt/f 0 2M 8M read",
            "pattern-check /mnt/new 4K 2044K 4198400 mmap",
            "pattern-check /mnt/f 0 2M 8M mmap 0x5a5a",
            "fault-count /mnt/f 0 4M unaligned",
            "mmap-probe /mnt/eof 2097240 read 18874456",
            "mmap-probe /mnt/f 0 read",
            "mmap-touch /mnt/f 0 poison 8388608",
            "mmap-write /mnt/f 0 2M 8M 0x5a5a",
            "mmap-random /mnt/f 21 4096 check",
            "fuse-fmaps fuse /mnt /dev/dax0.0 v10",
            "mmap-ops /mnt/f 8M",
            "mmap-hold /mnt/f held",
            "mmap-hold /mnt/f held go 8M",
            "mmap-threads /mnt/f 4M 8M 8",
            "size-change /mnt/f 8M truncate",
            "bw key /mnt/f 64M read seq",
            "open-rate key /mnt/f 1000",
            "umount-errno /mnt",
            "famfs-cap v10",
            "famfs-probe famfs-6.14",
            "famfs-expected v10",
            "open-errno /mnt/f",
            "open-errno /mnt/f trunc",
            "init-verdict init.json v10",
            "profile-has v10 push",
            "profile-has v10 fmap-size",
            "push-expect requests.jsonl v10 init.json",
            "push-expect requests.jsonl v10",
            "fmap-expect s.yaml /f v10",
            "fmap-check s.yaml /f /mnt/f v10",
            "sync-output",
        ];
        for l in lines {
            if let Err(e) = parse(l) {
                panic!("`{l}`: {e}");
            }
        }
    }

    #[test]
    fn defaults_and_raw_arguments() {
        match parse("pattern-check f 4K 2M 8M read").unwrap() {
            Command::PatternCheck {
                foff,
                len,
                doff,
                seed,
                ..
            } => assert_eq!((foff, len, doff, seed), (4096, 2 << 20, 8 << 20, 0)),
            _ => panic!("not pattern-check"),
        }
        match parse("mmap-write f 0 2M 8M 0x5a5a").unwrap() {
            Command::MmapWrite { seed, .. } => assert_eq!(seed, 0x5a5a),
            _ => panic!("not mmap-write"),
        }
        match parse("open-errno /f").unwrap() {
            Command::OpenErrno { how, .. } => assert_eq!(how, "read"),
            _ => panic!("not open-errno"),
        }
        match parse("famfsd --scenario s.yaml --help -h --threads 2").unwrap() {
            Command::Famfsd { args } => {
                assert_eq!(
                    args,
                    ["--scenario", "s.yaml", "--help", "-h", "--threads", "2"]
                )
            }
            _ => panic!("not famfsd"),
        }
        match parse("mmap-hold f ready go 8M").unwrap() {
            Command::MmapHold { go, doff, .. } => {
                assert_eq!((go.as_deref(), doff), (Some("go"), Some(8 << 20)))
            }
            _ => panic!("not mmap-hold"),
        }
    }

    #[test]
    fn bad_command_lines_are_errors() {
        for l in [
            "mmap-hold f ready go",
            "dax-mmap /dev/dax0.0",
            "dax-mmap /dev/dax0.0 2Q",
            "mmap-random f seed 1 write",
            "profile-has v10 wings",
            "famfs-cap no-such-profile",
            "run",
            "exit 300",
        ] {
            assert!(parse(l).is_err(), "`{l}` parsed");
        }
        let args: Vec<String> = ["fh-guest", "bogus"].map(String::from).to_vec();
        let e = real_main(&args).unwrap_err().to_string();
        assert!(
            e.starts_with("unknown command `bogus`\nusage: fh-guest"),
            "{e}"
        );
        let args: Vec<String> = ["fh-guest", "file"].map(String::from).to_vec();
        let e = real_main(&args).unwrap_err().to_string();
        assert!(e.contains("<PATH>") && !e.starts_with("error:"), "{e}");
    }

    #[test]
    fn help_is_the_usage() {
        for l in [
            &[][..],
            &["help"],
            &["--help"],
            &["dax-info", "--help"],
            &["file", "x", "-h"],
        ] {
            let args: Vec<String> = std::iter::once("fh-guest")
                .chain(l.iter().copied())
                .map(String::from)
                .collect();
            assert_eq!(real_main(&args).unwrap(), 0, "{l:?}");
        }
    }

    /// The usage names every command clap knows, and no other.
    #[test]
    fn the_usage_lists_every_command() {
        let known: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        let listed: Vec<String> = USAGE
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .filter(|l| !l.starts_with(' '))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        assert_eq!(known, listed);
    }
}
