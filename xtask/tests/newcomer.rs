//! What a newcomer's first run on Debian's kernel says, through the real
//! binary: the trials not run, by cause, each with the command that runs
//! them here; and no harness line inside a libtest `test NAME ... ok`
//! line, a case that panics the kernel (and restarts the VM) included.

use std::process::Command;

#[test]
fn the_first_run_names_what_was_not_tested_and_how_to_test_it() {
    let t = tempfile::tempdir().unwrap();
    let xtask = env!("CARGO_BIN_EXE_xtask");
    // stdout and stderr into one pipe, as a terminal or a CI log shows them.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{xtask}' test-vm --results '{}' famfs/001 famfs/002 dax/005 fuse/001 selftest/002 2>&1",
            t.path().display()
        ))
        .env("CI", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Upstream 7.3.4 has no famfs at all: said so, with both roads, once.
    assert!(
        text.contains("  this kernel has no famfs (include/uapi/linux/fuse.h has no FUSE_GET_FMAP) (famfs/001)\n"),
        "{text}"
    );
    let road = "        to run them: cargo xtask test-vm --kernel famfs-v10 or cargo xtask test-vm --kernel famfs-next; your own famfs tree: cargo xtask test-vm --kernel-git TREE --ref BRANCH\n";
    assert_eq!(text.matches(road).count(), 1, "{text}");
    assert!(text.contains("        to run them: the same\n"), "{text}");
    assert!(
        text.contains("kernel config: CONFIG_FUSE_FAMFS_DAX does not exist in linux-source-7.3"),
        "{text}"
    );
    assert!(
        text.contains("(dax/005)\n        to run them: cargo xtask test-vm --qemu backports\n"),
        "{text}"
    );
    assert!(text.contains("[harness] not run, by cause:\n"), "{text}");
    // Every libtest line is whole: `test NAME ... RESULT` on one line.
    for l in text
        .lines()
        .filter(|l| l.starts_with("test ") && !l.starts_with("test result:"))
    {
        let result = l.rsplit(" ... ").next().unwrap_or("");
        assert!(
            l.contains(" ... ") && !result.trim().is_empty(),
            "a split line `{l}` in:\n{text}"
        );
    }
}
