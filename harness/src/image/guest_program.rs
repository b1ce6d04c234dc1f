//! Build the guest program: static (it runs in a bare initramfs and under
//! virtme-ng alike), in its own target directory so it never fights the
//! outer cargo for the build lock.

use crate::base::proc::checked;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The workspace this library was built from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .to_path_buf()
}

/// Build `fh-guest` and return the directory holding it.
pub fn build(root: &Path) -> Result<PathBuf> {
    let target_dir = root.join("target/guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let sh = xshell::Shell::new()?;
    sh.change_dir(root);
    let rustflags = format!("target.{TARGET}.rustflags=[\"-C\",\"target-feature=+crt-static\"]");
    let out = xshell::cmd!(
        sh,
        "{cargo} build --quiet --profile guest -p famfs-harness --no-default-features --bin fh-guest --target {TARGET} --config {rustflags}"
    )
    .env("CARGO_TARGET_DIR", &target_dir)
    .env_remove("RUSTFLAGS")
    .quiet()
    .ignore_status()
    .output()
    .context("building the guest program: could not start cargo")?;
    checked(out, "building the guest program (fh-guest, static)")?;
    Ok(target_dir.join(TARGET).join("guest"))
}
