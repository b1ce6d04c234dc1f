//! What the binary tests share: the real binary, run as CI runs it.
#![allow(dead_code)] // each test crate uses its own part

use std::path::PathBuf;
use std::process::{Command, Output};

/// `cargo xtask ARGS` as a command to adjust (CI=1: plain progress lines).
pub fn xtask_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args).env("CI", "1");
    c
}

/// `cargo xtask ARGS`, run to the end.
pub fn xtask(args: &[&str]) -> Output {
    xtask_cmd(args).output().expect("running xtask")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The checkout.
pub fn root() -> PathBuf {
    famfs_harness::image::guest_program::workspace_root()
}
