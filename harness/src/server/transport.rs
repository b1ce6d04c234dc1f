//! Serving a [`Server`] over file descriptors: /dev/fuse, or one end of a
//! `SOCK_SEQPACKET` socketpair (which, like /dev/fuse, delivers one whole
//! message per read) for a simulated kernel.
//!
//! N reader threads share the descriptors and the dispatcher (behind a
//! mutex). Actions run outside the lock, so a delayed or withheld request
//! never stops the others from being answered. Readers poll the device
//! together with a stop pipe, so they can be told to finish at any time.

use super::dispatch::{Action, PushReq, Server};
use anyhow::{bail, Context, Result};
use famfs_proto::{DaxDriver, DaxTable, PushObject};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Read buffer per thread: above the 128K `max_write` plus headers, the
/// minimum /dev/fuse accepts for such a connection.
pub const READ_BUFFER: usize = (1 << 20) + 4096;

/// The descriptors requests come from and replies go to (often the same).
#[derive(Clone)]
pub struct FuseConn {
    read: Arc<OwnedFd>,
    write: Arc<OwnedFd>,
    push: PushVia,
}

/// How dax device pushes reach the kernel.
#[derive(Clone)]
pub enum PushVia {
    /// `ioctl(FUSE_DEV_IOC_DAXDEV_OPEN)` on the write descriptor (/dev/fuse).
    Ioctl,
    /// A simulated kernel's table (socketpairs): the model decides.
    Model(Arc<Mutex<DaxTable>>),
}

impl FuseConn {
    /// One descriptor for both directions (/dev/fuse, a socket).
    pub fn new(fd: OwnedFd) -> FuseConn {
        let fd = Arc::new(fd);
        FuseConn {
            read: fd.clone(),
            write: fd,
            push: PushVia::Ioctl,
        }
    }

    /// Separate descriptors for requests and replies.
    pub fn pair(read: OwnedFd, write: OwnedFd) -> FuseConn {
        FuseConn {
            read: Arc::new(read),
            write: Arc::new(write),
            push: PushVia::Ioctl,
        }
    }

    /// Pushes go to `table` instead of an ioctl.
    pub fn with_model(mut self, table: Arc<Mutex<DaxTable>>) -> FuseConn {
        self.push = PushVia::Model(table);
        self
    }
}

/// What a path is, for the push model: fstat, then sysfs for the class
/// and driver of a character device.
fn classify(fd: impl AsFd) -> PushObject {
    use rustix::fs::{fstat, major, minor, FileType};
    let Ok(st) = fstat(&fd) else {
        return PushObject::BadFd;
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice {
        return PushObject::NotChardev;
    }
    let (ma, mi) = (major(st.st_rdev), minor(st.st_rdev));
    let link = |what: &str| {
        std::fs::read_link(format!("/sys/dev/char/{ma}:{mi}/{what}"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    };
    if link("subsystem").as_deref() != Some("dax") {
        return PushObject::NonDax;
    }
    PushObject::Dax {
        dev: st.st_rdev,
        driver: if link("driver").as_deref() == Some("fsdev_dax") {
            DaxDriver::Fsdev
        } else {
            DaxDriver::Other
        },
        held_elsewhere: false,
    }
}

/// An fd number no process has open (for `bad_fd` pushes).
const BAD_FD: i32 = 1 << 20;

/// Makes one push: opens the path, classifies it, and hands it to the
/// kernel. Returns (what was pushed, 0 or errno, whether the open failed).
fn push(chan: &FuseConn, req: &PushReq) -> (Option<PushObject>, i32, bool) {
    use rustix::fs::{open, Mode, OFlags};
    let file = match &req.path {
        None => None,
        Some(p) => match open(p.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .or_else(|_| open(p.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()))
        {
            Ok(f) => Some(f),
            Err(e) => return (None, e.raw_os_error(), true),
        },
    };
    let object = file.as_ref().map_or(PushObject::BadFd, classify);
    let result = match &chan.push {
        PushVia::Model(t) => {
            let allowed =
                t.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(req.famfs_on, req.index, object);
            allowed.documented()
        }
        PushVia::Ioctl => {
            use std::os::fd::AsRawFd;
            let arg = famfs_proto::abi::DaxdevOpen {
                fd: file.as_ref().map_or(BAD_FD, |f| f.as_raw_fd()),
                flags: 0,
                daxdev_index: req.index,
            };
            // SAFETY: the argument is a live 16-byte `fuse_backing_map`
            // (the ioctl's _IOW size), read by the kernel only.
            let rc = unsafe {
                libc::ioctl(
                    chan.write.as_raw_fd(),
                    famfs_proto::abi::FUSE_DEV_IOC_DAXDEV_OPEN as _,
                    &arg as *const famfs_proto::abi::DaxdevOpen,
                )
            };
            if rc == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            }
        }
    };
    (Some(object), result, false)
}

/// What to do with an `exit` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitMode {
    /// Exit the process at once (the real server).
    Process,
    /// Stop serving and close the channel (tests: the simulated kernel
    /// sees the connection go away with the request pending).
    Return,
}

/// Why a reader thread stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEnd {
    /// The device went away (unmounted, aborted) or the peer closed.
    Disconnected,
    /// Told to stop.
    Stopped,
    /// An `exit` fault in [`ExitMode::Return`].
    Exit(i32),
    /// An unexpected I/O error.
    Failed(String),
}

/// What [`Running::wait`] woke up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A byte written by a signal handler to [`Running::wake_fd`].
    Signal,
    /// A reader thread finished.
    ThreadEnded,
}

struct Stop {
    flag: AtomicBool,
    /// Readers poll the read end; one byte written wakes them all (it is
    /// never consumed).
    read: OwnedFd,
    write: OwnedFd,
}

impl Stop {
    fn trigger(&self) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            write_byte(&self.write, b'x');
        }
    }
}

/// Reader threads at work.
pub struct Running {
    threads: Vec<JoinHandle<ServeEnd>>,
    stop: Arc<Stop>,
    wake_read: OwnedFd,
    wake_write: Arc<OwnedFd>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("pipe2")
}

fn write_byte(fd: impl AsFd, b: u8) {
    // Errors are moot: the pipe only has to become readable.
    let _ = rustix::io::write(fd, &[b]);
}

/// Sets `O_NONBLOCK`, so a reader that lost the race for a request goes
/// back to poll instead of blocking where the stop pipe cannot reach it.
pub fn set_nonblocking(fd: impl AsFd) -> Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let fl = fcntl_getfl(&fd).context("fcntl(F_GETFL)")?;
    fcntl_setfl(&fd, fl | OFlags::NONBLOCK).context("fcntl(O_NONBLOCK)")
}

/// Waits until `fd` is ready for `events` (or `timeout` passes; None waits
/// for ever). Interruptions count as a wake-up.
fn poll_one(fd: impl AsFd, events: rustix::event::PollFlags, timeout: Option<Duration>) {
    let mut p = [rustix::event::PollFd::new(&fd, events)];
    let ts = timeout.map(|t| rustix::event::Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos() as i64,
    });
    let _ = rustix::event::poll(&mut p, ts.as_ref());
}

/// Starts `threads` readers serving `server` on `chan`.
pub fn spawn(
    server: Arc<Mutex<Server>>,
    chan: FuseConn,
    threads: usize,
    exit: ExitMode,
) -> Result<Running> {
    if threads == 0 {
        bail!("at least one reader thread is needed");
    }
    set_nonblocking(&*chan.read)?;
    let (sr, sw) = pipe()?;
    let stop = Arc::new(Stop {
        flag: AtomicBool::new(false),
        read: sr,
        write: sw,
    });
    let (wr, ww) = pipe()?;
    let wake_write = Arc::new(ww);
    let mut handles = Vec::new();
    for i in 0..threads {
        let (server, chan, stop, wake) = (
            server.clone(),
            chan.clone(),
            stop.clone(),
            wake_write.clone(),
        );
        let h = std::thread::Builder::new()
            .name(format!("famfsd-{i}"))
            .spawn(move || {
                let end = reader(&server, &chan, &stop, exit);
                // Any reader ending ends them all: the device is gone or
                // the server is stopping.
                stop.trigger();
                write_byte(&*wake, b'e');
                end
            })
            .context("spawning a reader thread")?;
        handles.push(h);
    }
    Ok(Running {
        threads: handles,
        stop,
        wake_read: wr,
        wake_write,
    })
}

fn reader(server: &Mutex<Server>, chan: &FuseConn, stop: &Stop, exit: ExitMode) -> ServeEnd {
    use rustix::event::{PollFd, PollFlags};
    use rustix::io::Errno;
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        if stop.flag.load(Ordering::SeqCst) {
            return ServeEnd::Stopped;
        }
        let n = match rustix::io::read(&*chan.read, &mut buf) {
            Ok(0) => return ServeEnd::Disconnected,
            Ok(n) => n,
            Err(Errno::AGAIN) => {
                let mut fds = [
                    PollFd::new(&*chan.read, PollFlags::IN),
                    PollFd::new(&stop.read, PollFlags::IN),
                ];
                match rustix::event::poll(&mut fds, None) {
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(e) => return ServeEnd::Failed(format!("poll: {e}")),
                }
                if !fds[1].revents().is_empty() {
                    return ServeEnd::Stopped;
                }
                continue;
            }
            // Interrupted, or a request that vanished before it was read.
            Err(Errno::INTR | Errno::NOENT) => continue,
            // ECONNABORTED: the connection was aborted (unmounted, or through
            // /sys/fs/fuse/connections/N/abort) while a reader waited.
            Err(Errno::NODEV | Errno::CONNRESET | Errno::NOTCONN | Errno::CONNABORTED) => {
                return ServeEnd::Disconnected
            }
            Err(e) => return ServeEnd::Failed(format!("reading requests: {e}")),
        };
        let req = &buf[..n];
        let actions = server.lock().unwrap_or_else(|p| p.into_inner()).handle(req);
        for a in actions {
            match a {
                Action::Write(m) => {
                    if let Err(e) = write_msg(&*chan.write, &m) {
                        let unique =
                            u64::from_le_bytes(m[8..16].try_into().expect("16-byte header"));
                        server
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .note_write_failure(unique, e);
                        if matches!(e, libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN) {
                            return ServeEnd::Disconnected;
                        }
                    }
                }
                Action::Sleep(d) => std::thread::sleep(d),
                Action::Record { path, text } => {
                    let tmp = path.with_extension("tmp");
                    if let Err(e) =
                        std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path))
                    {
                        eprintln!("famfsd: writing {} failed: {e}", path.display());
                    }
                }
                Action::Push(req) => {
                    let (object, result, open_failed) = push(chan, &req);
                    server.lock().unwrap_or_else(|p| p.into_inner()).note_push(
                        req,
                        object,
                        result,
                        open_failed,
                    );
                }
                Action::Withhold { .. } => {}
                Action::Exit(code) => match exit {
                    ExitMode::Process => {
                        // The log is line-buffered, so it is complete; the
                        // pending request dies with the connection.
                        std::process::exit(code)
                    }
                    ExitMode::Return => return ServeEnd::Exit(code),
                },
            }
        }
    }
}

/// Writes one message; returns the errno on failure. A full socket buffer
/// (simulated kernel) is waited out.
fn write_msg(fd: impl AsFd, m: &[u8]) -> Result<(), i32> {
    use rustix::io::Errno;
    loop {
        match rustix::io::write(&fd, m) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => poll_one(
                &fd,
                rustix::event::PollFlags::OUT,
                Some(Duration::from_secs(1)),
            ),
            Err(e) => return Err(e.raw_os_error()),
        }
    }
}

impl Running {
    /// A descriptor of the wake pipe for signal delivery (see
    /// [`Wake::Signal`]): any byte but `e` written to it is a signal.
    pub fn wake_fd(&self) -> Result<OwnedFd> {
        self.wake_write
            .try_clone()
            .context("duplicating the wake pipe")
    }

    /// Blocks until a signal byte arrives or a reader thread ends.
    pub fn wait(&self) -> Wake {
        loop {
            let mut b = [0u8];
            match rustix::io::read(&self.wake_read, &mut b) {
                Ok(1) if b[0] == b'e' => return Wake::ThreadEnded,
                Ok(1) => return Wake::Signal,
                Err(rustix::io::Errno::INTR) => continue,
                // Cannot happen while we hold the write end; treat as an end.
                _ => return Wake::ThreadEnded,
            }
        }
    }

    /// Tells every reader to finish after its current request.
    pub fn stop(&self) {
        self.stop.trigger();
    }

    /// Whether every reader has finished.
    pub fn finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Waits for every reader and returns why each stopped.
    pub fn join(self) -> Vec<ServeEnd> {
        self.threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| ServeEnd::Failed("reader thread panicked".into()))
            })
            .collect()
    }
}

/// A connected `SOCK_SEQPACKET` pair: (server end, kernel end).
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("socketpair(SOCK_SEQPACKET)")
}

/// Serves `server` over a new socketpair and returns the kernel's end.
/// Pushes go to a fresh model table of the server's profile.
pub fn serve_socketpair(server: Server, threads: usize) -> Result<(OwnedFd, Running)> {
    let (srv, kernel) = seqpacket_pair()?;
    let table = Arc::new(Mutex::new(DaxTable::new(server.profile())));
    let running = spawn(
        Arc::new(Mutex::new(server)),
        FuseConn::new(srv).with_model(table),
        threads,
        ExitMode::Return,
    )?;
    Ok((kernel, running))
}
