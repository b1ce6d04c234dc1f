//! Serving a [`Server`] over file descriptors: /dev/fuse, or one end of a
//! `SOCK_SEQPACKET` socketpair (which, like /dev/fuse, delivers one whole
//! message per read) for a simulated kernel.
//!
//! N reader threads share the descriptors and the dispatcher (behind a
//! mutex). Actions run outside the lock, so a delayed or withheld request
//! never stops the others from being answered. Readers poll the device
//! together with a stop pipe, so they can be told to finish at any time.

use super::dispatch::{Action, Server};
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Read buffer per thread: above the 128K `max_write` plus headers, the
/// minimum /dev/fuse accepts for such a connection.
pub const READ_BUFFER: usize = (1 << 20) + 4096;

/// The descriptors requests come from and replies go to (often the same).
#[derive(Clone)]
pub struct FuseConn {
    read: Arc<OwnedFd>,
    write: Arc<OwnedFd>,
}

impl FuseConn {
    /// One descriptor for both directions (/dev/fuse, a socket).
    pub fn new(fd: OwnedFd) -> FuseConn {
        let fd = Arc::new(fd);
        FuseConn {
            read: fd.clone(),
            write: fd,
        }
    }

    /// Separate descriptors for requests and replies.
    pub fn pair(read: OwnedFd, write: OwnedFd) -> FuseConn {
        FuseConn {
            read: Arc::new(read),
            write: Arc::new(write),
        }
    }
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
            write_byte(self.write.as_raw_fd(), b'x');
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
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 returned two new descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn write_byte(fd: RawFd, b: u8) {
    // Errors are moot: the pipe only has to become readable.
    let _ = unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// Sets `O_NONBLOCK`, so a reader that lost the race for a request goes
/// back to poll instead of blocking where the stop pipe cannot reach it.
pub fn set_nonblocking(fd: RawFd) -> Result<()> {
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error()).context("fcntl(O_NONBLOCK)");
    }
    Ok(())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
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
    set_nonblocking(chan.read.as_raw_fd())?;
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
                write_byte(wake.as_raw_fd(), b'e');
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
    let rfd = chan.read.as_raw_fd();
    let wfd = chan.write.as_raw_fd();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        if stop.flag.load(Ordering::SeqCst) {
            return ServeEnd::Stopped;
        }
        let n = unsafe { libc::read(rfd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return ServeEnd::Disconnected;
        }
        if n < 0 {
            match errno() {
                libc::EAGAIN => {
                    let mut fds = [
                        libc::pollfd {
                            fd: rfd,
                            events: libc::POLLIN,
                            revents: 0,
                        },
                        libc::pollfd {
                            fd: stop.read.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        },
                    ];
                    let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
                    if r < 0 && errno() != libc::EINTR {
                        return ServeEnd::Failed(format!(
                            "poll: {}",
                            std::io::Error::last_os_error()
                        ));
                    }
                    if fds[1].revents != 0 {
                        return ServeEnd::Stopped;
                    }
                    continue;
                }
                // Interrupted, or a request that vanished before it was read.
                libc::EINTR | libc::ENOENT => continue,
                libc::ENODEV | libc::ECONNRESET | libc::ENOTCONN => return ServeEnd::Disconnected,
                e => {
                    return ServeEnd::Failed(format!(
                        "reading requests: {}",
                        std::io::Error::from_raw_os_error(e)
                    ))
                }
            }
        }
        let req = &buf[..n as usize];
        let actions = server.lock().unwrap_or_else(|p| p.into_inner()).handle(req);
        for a in actions {
            match a {
                Action::Write(m) => {
                    if let Err(e) = write_msg(wfd, &m) {
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
fn write_msg(fd: RawFd, m: &[u8]) -> Result<(), i32> {
    loop {
        let n = unsafe { libc::write(fd, m.as_ptr().cast(), m.len()) };
        if n >= 0 {
            return Ok(());
        }
        match errno() {
            libc::EINTR => continue,
            libc::EAGAIN => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                unsafe { libc::poll(&mut p, 1, 1000) };
            }
            e => return Err(e),
        }
    }
}

impl Running {
    /// Descriptor a signal handler writes one byte to (see [`Wake::Signal`]).
    pub fn wake_fd(&self) -> RawFd {
        self.wake_write.as_raw_fd()
    }

    /// Blocks until a signal byte arrives or a reader thread ends.
    pub fn wait(&self) -> Wake {
        loop {
            let mut b = 0u8;
            let n =
                unsafe { libc::read(self.wake_read.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
            if n == 1 {
                return if b == b'e' {
                    Wake::ThreadEnded
                } else {
                    Wake::Signal
                };
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            // Cannot happen while we hold the write end; treat as an end.
            return Wake::ThreadEnded;
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
    let mut fds = [0; 2];
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("socketpair(SOCK_SEQPACKET)");
    }
    // SAFETY: socketpair returned two new descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Serves `server` over a new socketpair and returns the kernel's end.
pub fn serve_socketpair(server: Server, threads: usize) -> Result<(OwnedFd, Running)> {
    let (srv, kernel) = seqpacket_pair()?;
    let running = spawn(
        Arc::new(Mutex::new(server)),
        FuseConn::new(srv),
        threads,
        ExitMode::Return,
    )?;
    Ok((kernel, running))
}
