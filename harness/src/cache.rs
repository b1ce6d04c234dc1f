//! Where the harness keeps what outlives a run: kernel sources, kernel builds
//! and initramfs images. It lives outside the checkout so fresh clones (CI)
//! reuse it; the location is explicit so a nightly job can pin it.

use anyhow::{Context, Result};
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
