//! A minimal FUSE server on raw /dev/fuse (no libfuse) that records what the
//! kernel offers in INIT and every request it sends. It is deliberately
//! famfs-eager: it echoes the profile's famfs capability bit whenever the
//! kernel offers it, so a kernel that wrongly offers or acts on the bit shows
//! up as a GET_FMAP request in the log.

use anyhow::{bail, Context, Result};
use famfs_proto::abi::{
    self, init_flags, Attr, EntryOut, InHeader, InitIn, InitOut, OpenOut, ReadIn, StatfsOut,
};
use famfs_proto::{Opcode, Profile, Wire};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::Write;
use std::os::unix::io::{AsRawFd, FromRawFd};

/// What the probe saw in INIT, written once the reply is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitRecord {
    pub profile: String,
    pub major: u32,
    pub minor: u32,
    pub flags: u32,
    pub flags2: u32,
    pub offered: u64,
    pub offered_names: Vec<String>,
    pub famfs_bit: u32,
    pub famfs_offered: bool,
    pub replied: u64,
}

/// One request the kernel sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    pub opcode: u32,
    pub name: String,
    pub nodeid: u64,
    pub unique: u64,
}

const ROOT: u64 = 1;
const FILE: u64 = 2;
pub const FILE_NAME: &str = "hello";
pub const FILE_DATA: &[u8] = b"hello from the fuse probe\n";

fn zeroed<T: Wire>() -> T {
    T::decode(&vec![0u8; T::SIZE]).expect("zero bytes decode")
}

fn attr_of(node: u64) -> Option<Attr> {
    let mut a: Attr = zeroed();
    a.ino = node;
    a.uid = 0;
    a.gid = 0;
    a.blksize = 4096;
    match node {
        ROOT => {
            a.mode = libc::S_IFDIR | 0o755;
            a.nlink = 2;
        }
        FILE => {
            a.mode = libc::S_IFREG | 0o644;
            a.nlink = 1;
            a.size = FILE_DATA.len() as u64;
            a.blocks = 1;
        }
        _ => return None,
    }
    Some(a)
}

fn entry(node: u64) -> EntryOut {
    let mut e: EntryOut = zeroed();
    e.nodeid = node;
    e.generation = 1;
    e.entry_valid = 1;
    e.attr_valid = 1;
    e.attr = attr_of(node).unwrap();
    e
}

pub struct ProbeOptions {
    pub mountpoint: String,
    pub profile: Profile,
    pub init_path: String,
    pub log_path: String,
}

/// Mount, serve until unmounted, return the number of requests seen.
pub fn serve(opts: &ProbeOptions) -> Result<usize> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .context("opening /dev/fuse")?;
    let fd = dev.as_raw_fd();
    let data = format!("fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other");
    let (src, tgt, fst, dat) = (
        CString::new("fh-probe").unwrap(),
        CString::new(opts.mountpoint.as_str())?,
        CString::new("fuse").unwrap(),
        CString::new(data)?,
    );
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fst.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            dat.as_ptr() as *const libc::c_void,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("mounting FUSE on {}", opts.mountpoint));
    }
    let mut log = std::fs::File::create(&opts.log_path)
        .with_context(|| format!("creating {}", opts.log_path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut writer = unsafe { std::fs::File::from_raw_fd(libc::dup(fd)) };
    let mut count = 0usize;
    loop {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::ENOENT) => continue,
                Some(libc::ENODEV) => break, // unmounted
                _ => return Err(e).context("reading /dev/fuse"),
            }
        }
        let req = &buf[..n as usize];
        let (h, payload) =
            abi::split_request(req).map_err(|e| anyhow::anyhow!("bad request: {e}"))?;
        count += 1;
        let rec = RequestRecord {
            opcode: h.opcode,
            name: abi::opcode_name(h.opcode, Some(&opts.profile)).to_string(),
            nodeid: h.nodeid,
            unique: h.unique,
        };
        writeln!(log, "{}", serde_json::to_string(&rec)?)?;
        log.flush()?;
        if let Some(reply) = handle(&h, payload, opts)? {
            // A failed reply write means the request was interrupted or the
            // connection is going away; neither is the probe's business.
            let _ = writer.write_all(&reply);
        }
        if h.opcode == Opcode::Destroy as u32 {
            break;
        }
    }
    Ok(count)
}

fn handle(h: &InHeader, payload: &[u8], opts: &ProbeOptions) -> Result<Option<Vec<u8>>> {
    let ok = |p: &[u8]| Some(abi::reply(h.unique, p));
    let err = |e: i32| Some(abi::reply_error(h.unique, e));
    let Some(op) = Opcode::from_u32(h.opcode) else {
        return Ok(err(libc::ENOSYS));
    };
    Ok(match op {
        Opcode::Init => {
            let init = InitIn::decode_compat(payload).map_err(|e| anyhow::anyhow!("{e}"))?;
            let offered = init.flags64();
            let famfs = opts.profile.flag_mask();
            let mut want = init_flags::INIT_EXT | init_flags::ASYNC_READ;
            if offered & famfs != 0 {
                want |= famfs;
            }
            let replied = want & offered;
            let mut out: InitOut = zeroed();
            out.major = abi::KERNEL_VERSION;
            out.minor = init.minor.min(abi::KERNEL_MINOR_VERSION);
            out.max_readahead = init.max_readahead;
            out.set_flags64(replied);
            out.max_write = 128 * 1024;
            out.time_gran = 1;
            out.max_background = 16;
            out.congestion_threshold = 12;
            let rec = InitRecord {
                profile: opts.profile.name.clone(),
                major: init.major,
                minor: init.minor,
                flags: init.flags,
                flags2: init.flags2,
                offered,
                offered_names: abi::init_flag_names(offered, Some(&opts.profile)),
                famfs_bit: opts.profile.flag_bit,
                famfs_offered: offered & famfs != 0,
                replied,
            };
            let reply = abi::reply_with(h.unique, &out);
            // Record before replying: once the reply is out, the case may read
            // it. Written whole, then renamed: readers poll for the file and
            // must never see it half written.
            let tmp = format!("{}.tmp", opts.init_path);
            std::fs::write(&tmp, serde_json::to_string_pretty(&rec)?)?;
            std::fs::rename(&tmp, &opts.init_path)?;
            Some(reply)
        }
        Opcode::Lookup => {
            let name = payload.split(|b| *b == 0).next().unwrap_or(b"");
            if h.nodeid == ROOT && name == FILE_NAME.as_bytes() {
                ok(&entry(FILE).to_bytes())
            } else {
                err(libc::ENOENT)
            }
        }
        Opcode::Getattr => match attr_of(h.nodeid) {
            Some(a) => {
                let mut out: abi::AttrOut = zeroed();
                out.attr_valid = 1;
                out.attr = a;
                ok(&out.to_bytes())
            }
            None => err(libc::ENOENT),
        },
        Opcode::Open | Opcode::Opendir => {
            let mut out: OpenOut = zeroed();
            out.fh = h.nodeid;
            ok(&out.to_bytes())
        }
        Opcode::Read => {
            let r = ReadIn::decode(payload).map_err(|e| anyhow::anyhow!("{e}"))?;
            let start = (r.offset as usize).min(FILE_DATA.len());
            let end = (start + r.size as usize).min(FILE_DATA.len());
            ok(&FILE_DATA[start..end])
        }
        Opcode::Readdir => {
            let r = ReadIn::decode(payload).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut out = Vec::new();
            let entries: [(u64, &[u8], u32); 3] = [
                (ROOT, b".", libc::S_IFDIR),
                (ROOT, b"..", libc::S_IFDIR),
                (FILE, FILE_NAME.as_bytes(), libc::S_IFREG),
            ];
            for (i, (ino, name, mode)) in entries.iter().enumerate().skip(r.offset as usize) {
                let mut one = Vec::new();
                abi::push_dirent(&mut one, *ino, i as u64 + 1, abi::dirent_type(*mode), name);
                if out.len() + one.len() > r.size as usize {
                    break;
                }
                out.extend_from_slice(&one);
            }
            ok(&out)
        }
        Opcode::Statfs => {
            let mut out: StatfsOut = zeroed();
            out.st.bsize = 4096;
            out.st.frsize = 4096;
            out.st.namelen = 255;
            ok(&out.to_bytes())
        }
        Opcode::Release | Opcode::Releasedir | Opcode::Flush => ok(&[]),
        Opcode::Forget | Opcode::BatchForget | Opcode::Interrupt => None,
        Opcode::Destroy => ok(&[]),
        _ => err(libc::ENOSYS),
    })
}

/// What a case prints about a probe session (stable text for golden files).
/// `famfs_kernel` says whether the kernel was built with famfs: such a
/// kernel must offer the capability (the probe echoes it) and then ask for
/// the fmap on every open of a regular file (the probe refuses it, so the
/// open fails and nothing is read); any other kernel must neither offer it
/// nor send a famfs opcode. The lines read the same on both kinds of kernel
/// when the kernel behaves; a wrong behaviour prints what was seen.
pub fn report(init: &InitRecord, requests: &[RequestRecord], famfs_kernel: bool) -> Result<String> {
    let mut s = String::new();
    s.push_str(&format!(
        "INIT: major {} INIT_EXT {}\n",
        init.major,
        if init.offered & init_flags::INIT_EXT != 0 {
            "offered"
        } else {
            "not offered"
        }
    ));
    let judge = |what: String, got: String, want: String| {
        if got == want {
            format!("{what}: as the kernel must\n")
        } else {
            format!("{what}: {got}, but this kernel must give {want}\n")
        }
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    s.push_str(&judge(
        format!("famfs capability offered ({} profile)", init.profile),
        yes_no(init.famfs_offered),
        yes_no(famfs_kernel),
    ));
    // Count requests carrying the famfs opcodes of every known profile, so a
    // kernel speaking another numbering is caught too.
    let famfs_ops: Vec<u32> = Profile::builtins()
        .iter()
        .flat_map(|p| [p.get_fmap, p.get_daxdev])
        .collect();
    let famfs_requests = requests
        .iter()
        .filter(|r| famfs_ops.contains(&r.opcode))
        .count();
    let opens = requests
        .iter()
        .filter(|r| r.opcode == Opcode::Open as u32)
        .count();
    let want = if famfs_kernel { opens } else { 0 };
    s.push_str(&judge(
        "requests with a famfs opcode".into(),
        famfs_requests.to_string(),
        want.to_string(),
    ));
    for op in [Opcode::Lookup, Opcode::Open] {
        let seen = requests.iter().any(|r| r.opcode == op as u32);
        s.push_str(&format!("{} seen: {}\n", op.name(), yes_no(seen)));
    }
    let read = requests.iter().any(|r| r.opcode == Opcode::Read as u32);
    s.push_str(&judge(
        "READ seen".into(),
        yes_no(read),
        yes_no(!famfs_kernel),
    ));
    if requests.is_empty() {
        bail!("the probe recorded no requests at all");
    }
    Ok(s)
}

/// What the capability gate found.
#[derive(Debug, Clone)]
pub struct Capability {
    pub init: InitRecord,
    /// Opening a regular file produced the profile's GET_FMAP request.
    pub get_fmap_seen: bool,
}

impl Capability {
    /// famfs is usable with this profile: the bit is offered AND the kernel
    /// acts on it. A bit alone is ambiguous: upstream uses 42 and 43 for
    /// other features (FUSE_REQUEST_TIMEOUT, FUSE_HAS_IO_URING_BUFPOOL).
    pub fn usable(&self) -> bool {
        self.init.famfs_offered && self.get_fmap_seen
    }

    pub fn describe(&self) -> String {
        let r = &self.init;
        match (r.famfs_offered, self.get_fmap_seen) {
            (true, true) => format!("famfs capability offered and used ({} profile, INIT bit {})", r.profile, r.famfs_bit),
            (false, _) => format!("famfs capability not offered ({} profile, INIT bit {})", r.profile, r.famfs_bit),
            (true, false) => format!(
                "INIT bit {} is offered but opening a file sends no GET_FMAP (opcode of the {} profile): the bit means something else on this kernel",
                r.famfs_bit, r.profile
            ),
        }
    }
}

/// Mount the probe on a scratch directory, see INIT, open a regular file,
/// and say whether the kernel offers and uses `profile`'s famfs capability.
/// This is the gate every famfs case passes before it runs.
pub fn famfs_capability(profile: &Profile, scratch: &std::path::Path) -> Result<Capability> {
    let mnt = scratch.join("mnt");
    std::fs::create_dir_all(&mnt)?;
    let init_path = scratch.join("init.json");
    let _ = std::fs::remove_file(&init_path);
    let opts = ProbeOptions {
        mountpoint: mnt.display().to_string(),
        profile: profile.clone(),
        init_path: init_path.display().to_string(),
        log_path: scratch.join("requests.jsonl").display().to_string(),
    };
    let server = std::thread::spawn(move || serve(&opts));
    let start = std::time::Instant::now();
    while !init_path.exists() {
        if server.is_finished() {
            return match server.join() {
                Ok(Err(e)) => Err(e.context("the capability probe failed")),
                _ => bail!("the capability probe exited before INIT"),
            };
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            bail!("no INIT from the kernel within 30 s of mounting the capability probe");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let rec: InitRecord = serde_json::from_str(&std::fs::read_to_string(&init_path)?)?;
    if rec.famfs_offered {
        // The probe echoed the bit; a famfs kernel now asks for the fmap on
        // open (the probe refuses it, so the open may fail: that is fine).
        let _ = std::fs::File::open(mnt.join(FILE_NAME));
    }
    let c = CString::new(mnt.display().to_string())?;
    if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        return Err(e).context("unmounting the capability probe");
    }
    match server.join() {
        Ok(r) => {
            r?;
        }
        Err(_) => bail!("the capability probe thread panicked"),
    }
    let log = std::fs::read_to_string(scratch.join("requests.jsonl")).unwrap_or_default();
    let get_fmap_seen = log
        .lines()
        .filter_map(|l| serde_json::from_str::<RequestRecord>(l).ok())
        .any(|r| r.opcode == profile.get_fmap);
    Ok(Capability {
        init: rec,
        get_fmap_seen,
    })
}
