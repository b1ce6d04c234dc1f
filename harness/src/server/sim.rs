//! A simulated kernel: builds requests the way a famfs kernel of a given
//! profile sends them and reads the server's replies from the other end of
//! a `SOCK_SEQPACKET` socketpair. Used by tests and the benchmark; it does
//! not judge replies (that is `famfs_proto::kernel_verdict`).

use super::dispatch::Server;
use super::transport::{serve_socketpair, Running};
use anyhow::{anyhow, bail, Context, Result};
use famfs_proto::abi::{
    self, init_flags, EntryOut, GetFmapIn, InHeader, InitIn, InitOut, OpenIn, OutHeader, ReadIn,
    Wire,
};
use famfs_proto::{Opcode, Profile};
use std::os::fd::OwnedFd;
use std::time::Duration;

/// Flags a 7.3-era kernel offers besides the famfs bit.
pub const KERNEL_OFFER: u64 = init_flags::ASYNC_READ
    | init_flags::POSIX_LOCKS
    | init_flags::ATOMIC_O_TRUNC
    | init_flags::BIG_WRITES
    | init_flags::DONT_MASK
    | init_flags::FLOCK_LOCKS
    | init_flags::AUTO_INVAL_DATA
    | init_flags::DO_READDIRPLUS
    | init_flags::READDIRPLUS_AUTO
    | init_flags::ASYNC_DIO
    | init_flags::WRITEBACK_CACHE
    | init_flags::PARALLEL_DIROPS
    | init_flags::MAX_PAGES
    | init_flags::INIT_EXT;

/// Encodes one request: header (with the right `len`) and payload.
pub fn request(opcode: u32, unique: u64, nodeid: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(InHeader::SIZE + payload.len());
    InHeader {
        len: (InHeader::SIZE + payload.len()) as u32,
        opcode,
        unique,
        nodeid,
        uid: 0,
        gid: 0,
        pid: 4242,
        total_extlen: 0,
        padding: 0,
    }
    .write_to(&mut v);
    v.extend_from_slice(payload);
    v
}

/// INIT payload offering `flags` (a kernel always adds `INIT_EXT`).
pub fn init_payload(minor: u32, flags: u64) -> Vec<u8> {
    let (lo, hi) = abi::split_flags(flags | init_flags::INIT_EXT);
    InitIn {
        major: 7,
        minor,
        max_readahead: 128 * 1024,
        flags: lo,
        flags2: hi,
        unused: [0; 11],
    }
    .to_bytes()
}

/// A NUL-terminated name, as LOOKUP carries it.
pub fn name_payload(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// GET_FMAP payload for `profile`: none, or the buffer size it offers.
pub fn get_fmap_payload(profile: &Profile, buffer: u32) -> Vec<u8> {
    if profile.get_fmap_in_size == 0 {
        Vec::new()
    } else {
        GetFmapIn {
            size: buffer,
            padding: 0,
        }
        .to_bytes()
    }
}

/// READ / READDIR payload.
pub fn read_payload(fh: u64, offset: u64, size: u32) -> Vec<u8> {
    ReadIn {
        fh,
        offset,
        size,
        ..Default::default()
    }
    .to_bytes()
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Everything that was written, header included.
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn header(&self) -> OutHeader {
        OutHeader::decode(&self.raw).expect("replies hold a header")
    }

    pub fn payload(&self) -> &[u8] {
        &self.raw[OutHeader::SIZE.min(self.raw.len())..]
    }

    /// Header `error` (0, a negated errno, or a notify code).
    pub fn error(&self) -> i32 {
        self.header().error
    }

    pub fn unique(&self) -> u64 {
        self.header().unique
    }

    /// Decodes the payload as `T`.
    pub fn decode<T: Wire>(&self) -> Result<T> {
        if self.error() != 0 {
            bail!("expected a {} reply, got error {}", T::NAME, self.error());
        }
        T::decode(self.payload()).map_err(|e| anyhow!("{e}"))
    }
}

/// The kernel side of a socketpair connection.
pub struct SimKernel {
    fd: OwnedFd,
    pub profile: Profile,
    next_unique: u64,
    /// Notifications (`unique` 0) received while waiting for replies.
    pub notifications: Vec<Reply>,
    /// How long [`SimKernel::call`] waits for a reply.
    pub timeout: Duration,
}

impl SimKernel {
    /// Serves `server` with `threads` readers and connects to it.
    pub fn start(server: Server, threads: usize) -> Result<(SimKernel, Running)> {
        let profile = server.profile().clone();
        let (fd, running) = serve_socketpair(server, threads)?;
        Ok((SimKernel::new(fd, profile), running))
    }

    /// Wraps the kernel end of an existing connection.
    pub fn new(fd: OwnedFd, profile: Profile) -> SimKernel {
        SimKernel {
            fd,
            profile,
            next_unique: 2,
            notifications: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Sends a request and returns its `unique`.
    pub fn send(&mut self, opcode: u32, nodeid: u64, payload: &[u8]) -> Result<u64> {
        let unique = self.next_unique;
        self.next_unique += 2;
        self.send_raw(&request(opcode, unique, nodeid, payload))?;
        Ok(unique)
    }

    /// Sends bytes as one message.
    pub fn send_raw(&mut self, msg: &[u8]) -> Result<()> {
        let n = rustix::net::send(&self.fd, msg, rustix::net::SendFlags::empty())
            .context("sending a request")?;
        if n != msg.len() {
            bail!("sending a request: {n} of {} bytes sent", msg.len());
        }
        Ok(())
    }

    /// Receives one message; `None` on timeout. The server closing its end
    /// is an error mentioning "closed".
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Reply>> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut p = [PollFd::new(&self.fd, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        if poll(&mut p, Some(&ts)).context("waiting for a reply")? == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; 1 << 21];
        let (n, _) = rustix::net::recv(&self.fd, &mut buf, rustix::net::RecvFlags::empty())
            .context("receiving a reply")?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        buf.truncate(n);
        Ok(Some(Reply { raw: buf }))
    }

    /// Receives messages until the reply to `unique`, keeping
    /// notifications aside.
    pub fn reply_to(&mut self, unique: u64) -> Result<Reply> {
        loop {
            let Some(r) = self.recv(self.timeout)? else {
                bail!("no reply to request {unique} within {:?}", self.timeout);
            };
            if r.raw.len() >= OutHeader::SIZE && r.unique() == 0 {
                self.notifications.push(r);
                continue;
            }
            if r.raw.len() < OutHeader::SIZE || r.unique() != unique {
                bail!("expected the reply to {unique}, got {:?}", r.raw);
            }
            return Ok(r);
        }
    }

    /// Sends a request and waits for its reply.
    pub fn call(&mut self, opcode: u32, nodeid: u64, payload: &[u8]) -> Result<Reply> {
        let u = self.send(opcode, nodeid, payload)?;
        self.reply_to(u)
    }

    /// INIT offering the usual flags plus `extra` (e.g. the famfs bit).
    pub fn init(&mut self, extra: u64) -> Result<InitOut> {
        let r = self.call(
            Opcode::Init as u32,
            0,
            &init_payload(46, KERNEL_OFFER | extra),
        )?;
        let mut p = r.payload().to_vec();
        p.resize(InitOut::SIZE, 0);
        InitOut::decode(&p).map_err(|e| anyhow!("{e}"))
    }

    /// INIT as a famfs kernel of this profile: the famfs bit offered.
    pub fn init_famfs(&mut self) -> Result<InitOut> {
        let bit = self.profile.flag_mask();
        self.init(bit)
    }

    pub fn lookup(&mut self, parent: u64, name: &str) -> Result<Reply> {
        self.call(Opcode::Lookup as u32, parent, &name_payload(name))
    }

    /// Looks up each component of an absolute path; the node id.
    pub fn walk(&mut self, path: &str) -> Result<u64> {
        let mut node = abi::ROOT_ID;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            let r = self.lookup(node, c)?;
            node = r
                .decode::<EntryOut>()
                .with_context(|| format!("looking up {c} in {path}"))?
                .nodeid;
        }
        Ok(node)
    }

    pub fn open(&mut self, nodeid: u64) -> Result<Reply> {
        self.call(
            Opcode::Open as u32,
            nodeid,
            &OpenIn {
                flags: libc::O_RDWR as u32,
                open_flags: 0,
            }
            .to_bytes(),
        )
    }

    /// GET_FMAP as the profile sends it; post-V10 offers `max_reply` bytes.
    pub fn get_fmap(&mut self, nodeid: u64) -> Result<Reply> {
        let buffer = self.profile.max_reply;
        self.get_fmap_with_buffer(nodeid, buffer)
    }

    pub fn get_fmap_with_buffer(&mut self, nodeid: u64, buffer: u32) -> Result<Reply> {
        let op = self.profile.get_fmap;
        let payload = get_fmap_payload(&self.profile, buffer);
        self.call(op, nodeid, &payload)
    }

    /// GET_DAXDEV for a device index (carried in the node id).
    pub fn get_daxdev(&mut self, index: u64) -> Result<Reply> {
        let op = self.profile.get_daxdev;
        self.call(op, index, &[])
    }
}

impl std::os::fd::AsFd for SimKernel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
