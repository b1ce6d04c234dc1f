//! Mutation testing through the real binary on the famfs V10 kernel (its
//! build and coverage variant cached): one mutant that must die (the DAX
//! check of the fault handler negated: every fault of famfs/001 gets
//! SIGBUS), a second command that resumes without building, a budget that
//! runs out (exit 3), shards folded with --merge, and bad input.

mod common;
use common::{text, xtask};

use std::path::Path;
use std::process::Output;

fn mutate(results: &Path, extra: &[&str]) -> Output {
    let r = results.display().to_string();
    let mut args = vec![
        "mutate",
        "--kernel",
        "famfs-v10",
        "--file",
        "fs/fuse/famfs.c",
        "--results",
        &r,
        "famfs/001",
    ];
    args.extend(extra);
    xtask(&args)
}

/// The line of the unmutated file that holds `needle`.
fn line_of(results: &Path, needle: &str) -> u32 {
    let src = std::fs::read_to_string(results.join("source")).unwrap();
    src.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in famfs.c")) as u32
        + 1
}

#[test]
fn a_mutant_the_suite_must_see_is_killed_resumed_runs_build_nothing_and_shards_merge() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    // Lines that reach no mutant: the unmutated runs are kept, nothing is
    // built, and the error says what to do.
    let out = mutate(&a, &["--lines", "1-2"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "no mutant of fs/fuse/famfs.c on the reached lines 1-2: choose other --lines or cases"
        ),
        "{err}"
    );
    assert!(a.join("baseline.json").is_file());

    // The fault handler's DAX check negated: famfs/001's mmap reads die.
    let n = line_of(&a, "if (!IS_DAX(file_inode(vmf->vma->vm_file)))");
    let lines = format!("{n}-{n}");
    let out = mutate(&a, &["--lines", &lines]);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{err}");
    assert!(
        stdout.starts_with(
            "mutation score of fs/fuse/famfs.c on famfs-v10: 1/1 (100.0%) killed; 0 survived, 0 equivalent, 0 not compiled; 1 of 1 mutants done\n"
        ),
        "{stdout}"
    );
    let id = format!("L{n}-negate-1");
    assert!(
        stdout.contains(&format!("  {id}")) && stdout.contains("killed by famfs/001: pass -> fail"),
        "{stdout}"
    );
    let result = std::fs::read_to_string(a.join("mutants").join(&id).join("result.json")).unwrap();
    assert!(result.contains("\"status\": \"killed\""), "{result}");
    assert!(
        err.contains("kernel build: done"),
        "the mutant was built: {err}"
    );
    assert!(a.join("report.txt").is_file());

    // Again: the kept result is the answer; nothing is built or booted.
    let out = mutate(&a, &["--lines", &lines]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("(0 to do, 1 kept in"), "{err}");
    assert!(
        !err.contains("kernel build") && !err.contains("boot 1:"),
        "{err}"
    );

    // Another shard's results fold in: a second directory with the same
    // unmutated runs and no result of its own takes a's and runs nothing.
    let b = t.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    for f in ["baseline.json", "source"] {
        std::fs::copy(a.join(f), b.join(f)).unwrap();
    }
    let a_s = a.display().to_string();
    let out = mutate(&b, &["--lines", &lines, "--merge", &a_s]);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(stdout.contains("1/1 (100.0%) killed"), "{stdout}");
    assert!(!err.contains("boot 1:"), "{err}");

    // A budget already spent starts no mutant: exit 3, the rest is left
    // for the same command.
    let out = mutate(&b, &["--budget", "0s"]);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{err}");
    assert!(err.contains("the budget is spent;"), "{err}");
    assert!(stdout.contains("mutants done\n"), "{stdout}");
}

#[test]
fn bad_arguments_are_refused_before_anything_runs() {
    let t = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["--lines", "9-3"], "lines are A-B with 1 <= A <= B"),
        (vec!["--budget", "3 weeks"], "unknown unit"),
        (vec!["--partition", "4/3"], "shard 4 of 3 does not exist"),
    ] {
        let out = mutate(t.path(), &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("kernel:"), "nothing was resolved: {err}");
    }
}
