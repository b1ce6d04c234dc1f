//! Where the harness keeps what outlives a run: kernel sources, kernel builds
//! and initramfs images. It lives outside the checkout so fresh clones (CI)
//! reuse it; the location is explicit so a nightly job can pin it.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    /// `$FAMFS_HARNESS_CACHE`, else `$XDG_CACHE_HOME/famfs-harness`, else
    /// `~/.cache/famfs-harness`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("FAMFS_HARNESS_CACHE") {
            return PathBuf::from(p);
        }
        if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(p).join("famfs-harness");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        home.join(".cache").join("famfs-harness")
    }

    pub fn open(root: Option<&Path>) -> Result<Cache> {
        let root = root
            .map(Path::to_path_buf)
            .unwrap_or_else(Self::default_root);
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating cache directory {}", root.display()))?;
        Ok(Cache { root })
    }

    pub fn dir(&self, sub: &str) -> Result<PathBuf> {
        let p = self.root.join(sub);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(p)
    }
}

/// An exclusive lock on a file (flock), held until dropped: one kernel
/// build directory, source tree or image per writer across runs and
/// checkouts sharing the cache. The holder's pid is written into the file
/// so that a waiting run can say whom it waits for.
#[derive(Debug)]
pub struct Lock {
    file: std::fs::File,
}

impl Lock {
    fn open(path: &Path) -> Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening lock file {}", path.display()))
    }

    fn stamp(mut self) -> Lock {
        use std::io::{Seek, Write};
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = writeln!(self.file, "{}", std::process::id());
        self
    }

    /// The lock if it is free now; None when another process holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<Lock>> {
        use rustix::fs::{flock, FlockOperation};
        let file = Self::open(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Lock { file }.stamp())),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }

    /// Wait for the lock, saying once (through `say`) who holds it and
    /// what for, so a second run does not look hung.
    pub fn acquire(path: &Path, what: &str, say: &mut dyn FnMut(&str)) -> Result<Lock> {
        use rustix::fs::{flock, FlockOperation};
        if let Some(l) = Self::try_acquire(path)? {
            return Ok(l);
        }
        let holder = std::fs::read_to_string(path).unwrap_or_default();
        say(&format!(
            "waiting for another run (pid {}) that holds {what} ({})",
            holder.trim(),
            path.display()
        ));
        let file = Self::open(path)?;
        flock(&file, FlockOperation::LockExclusive)
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(Lock { file }.stamp())
    }
}

/// A name beside `path` that no other process or thread uses, for writing
/// a file that is then renamed over `path`.
pub fn unique_tmp(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Write `data` to `path` through a unique temporary name and a rename:
/// readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = unique_tmp(path);
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

pub use super::hex;

pub fn sha256_file(p: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_not_granted_twice_and_is_free_after_drop() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.lock");
        let a = Lock::try_acquire(&p).unwrap().expect("free lock");
        // flock locks belong to the open file description: a second open
        // in the same process contends like another process would.
        assert!(Lock::try_acquire(&p).unwrap().is_none());
        let waiter = {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut said = Vec::new();
                let l = Lock::acquire(&p, "a test lock", &mut |m| said.push(m.to_string()));
                (l.is_ok(), said)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(a);
        let (ok, said) = waiter.join().unwrap();
        assert!(ok);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains(&format!("pid {}", std::process::id())),
            "{said:?}"
        );
    }

    #[test]
    fn temporary_names_differ_between_calls() {
        let p = Path::new("/x/initramfs.cpio");
        let (a, b) = (unique_tmp(p), unique_tmp(p));
        assert_ne!(a, b);
        assert_eq!(a.parent(), p.parent());
    }
}
