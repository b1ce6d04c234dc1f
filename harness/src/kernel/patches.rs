//! Patch series on a kernel base: read a quilt `series` file, a directory of
//! `*.patch` files, or an mbox (as `git format-patch` and `b4 am` write it),
//! and apply it to a private copy of the base in the cache.
//!
//! The user's tree is never written: the copy is made of hard links, every
//! file a patch touches is copied before `patch` writes it, and the whole
//! copy is built in a staging directory that becomes the cached tree only
//! when every patch applied cleanly (fuzz and offsets are refused unless
//! allowed). A failure removes the staging directory, so nothing is ever
//! left half-applied.

use crate::base::cache::hex;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One patch of a series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Patch {
    /// File name, or `NNNN subject` for an mbox message.
    pub name: String,
    /// Where it was named: `series:3`, a file path, or `mbox:LINE`.
    pub origin: String,
    /// `-pN` strip level.
    pub strip: u32,
    /// sha256 of the patch text.
    pub sha256: String,
    #[serde(skip)]
    pub text: Vec<u8>,
}

/// What kind of input named the series.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesKind {
    Quilt,
    Directory,
    Mbox,
    Single,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub path: PathBuf,
    pub kind: SeriesKind,
    pub patches: Vec<Patch>,
}

impl Series {
    /// Identity of the whole series: every patch's content and strip level,
    /// in order (names do not matter, contents do).
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for p in &self.patches {
            h.update(format!("{} -p{}\n", p.sha256, p.strip).as_bytes());
        }
        hex(&h.finalize())
    }
}

fn sha(text: &[u8]) -> String {
    hex(&Sha256::digest(text))
}

fn has_diff(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("+++ "))
        && text
            .lines()
            .any(|l| l.starts_with("--- ") || l.starts_with("diff "))
}

/// Read a series from a path: a quilt `series` file, a directory (with a
/// `series` file, or of `*.patch` files in name order), an mbox, or a single
/// patch file.
pub fn load(path: &Path) -> Result<Series> {
    if !path.exists() {
        bail!(
            "patch series {} does not exist (give --kernel-patches a quilt series file, a directory of *.patch files, or an mbox)",
            path.display()
        );
    }
    if path.is_dir() {
        let series = path.join("series");
        if series.is_file() {
            return load_quilt(&series);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "patch"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!(
                "{}: no series file and no *.patch files: nothing to apply",
                path.display()
            );
        }
        let patches = files
            .iter()
            .map(|f| read_patch(f, f.display().to_string(), 1))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Series {
            path: path.to_path_buf(),
            kind: SeriesKind::Directory,
            patches,
        });
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    if text.starts_with("From ") {
        return load_mbox(path, &text);
    }
    if has_diff(&text) {
        let p = read_patch(path, path.display().to_string(), 1)?;
        return Ok(Series {
            path: path.to_path_buf(),
            kind: SeriesKind::Single,
            patches: vec![p],
        });
    }
    load_quilt(path)
}

/// Several series applied one after another (a fixture series, then a
/// project's fixes on top): one series of all their patches, in order,
/// named after the first with the others' count. `None` for no paths.
pub fn load_all(paths: &[PathBuf]) -> Result<Option<Series>> {
    let mut it = paths.iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    let mut all = load(first)?;
    for p in it {
        all.patches.extend(load(p)?.patches);
    }
    Ok(Some(all))
}

fn read_patch(file: &Path, origin: String, strip: u32) -> Result<Patch> {
    let text =
        std::fs::read(file).with_context(|| format!("{origin}: reading {}", file.display()))?;
    if !has_diff(&String::from_utf8_lossy(&text)) {
        bail!(
            "{origin}: {} holds no diff (no ---/+++ file headers)",
            file.display()
        );
    }
    Ok(Patch {
        name: file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        origin,
        strip,
        sha256: sha(&text),
        text,
    })
}

/// A quilt series: one patch a line, `#` comments, an optional `-pN`.
fn load_quilt(series: &Path) -> Result<Series> {
    let text =
        std::fs::read_to_string(series).with_context(|| format!("reading {}", series.display()))?;
    let dir = series.parent().unwrap_or(Path::new("."));
    let mut patches = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{}:{}", series.display(), i + 1);
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default();
        let mut strip = 1;
        for w in words {
            match w.strip_prefix("-p").and_then(|n| n.parse::<u32>().ok()) {
                Some(n) => strip = n,
                None => {
                    bail!("{at}: unknown option `{w}` after {name} (a series line is `NAME [-pN]`)")
                }
            }
        }
        let file = dir.join(name);
        if !file.is_file() {
            bail!("{at}: names {name}, but {} does not exist", file.display());
        }
        patches.push(read_patch(&file, at, strip)?);
    }
    if patches.is_empty() {
        bail!(
            "{}: empty series (no patch named); a quilt series lists one patch file a line",
            series.display()
        );
    }
    Ok(Series {
        path: series.to_path_buf(),
        kind: SeriesKind::Quilt,
        patches,
    })
}

/// An mbox: messages separated by `From ` lines; those without a diff (a
/// cover letter) are skipped; each patch is named by its subject.
fn load_mbox(path: &Path, text: &str) -> Result<Series> {
    // The separator line: `From <sender> <weekday> <month> <day> ...`; a
    // "From " inside a message body is escaped as ">From " in an mbox.
    let sep =
        regex::Regex::new(r"^From \S+\s+[A-Z][a-z]{2} [A-Z][a-z]{2}\s+\d").expect("static regex");
    let mut messages: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if sep.is_match(line) {
            messages.push((i + 1, String::new()));
        }
        if let Some((_, m)) = messages.last_mut() {
            m.push_str(line);
        }
    }
    let mut patches = Vec::new();
    for (line, msg) in messages {
        if !has_diff(&msg) {
            continue;
        }
        let subject = msg
            .lines()
            .find_map(|l| l.strip_prefix("Subject:"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| format!("message at line {line}"));
        patches.push(Patch {
            name: format!("{:04} {subject}", patches.len() + 1),
            origin: format!("{}:{line}", path.display()),
            strip: 1,
            sha256: sha(msg.as_bytes()),
            text: msg.into_bytes(),
        });
    }
    if patches.is_empty() {
        bail!(
            "{}: an mbox with no patch in it (no message carries a diff)",
            path.display()
        );
    }
    Ok(Series {
        path: path.to_path_buf(),
        kind: SeriesKind::Mbox,
        patches,
    })
}

/// Paths (relative to the tree) a patch writes, after stripping.
pub fn touched_files(p: &Patch) -> Vec<PathBuf> {
    let text = String::from_utf8_lossy(&p.text);
    let mut out: Vec<PathBuf> = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("+++ ").or_else(|| l.strip_prefix("--- ")) else {
            continue;
        };
        let name = rest.split('\t').next().unwrap_or("").trim();
        if name == "/dev/null" || name.is_empty() {
            continue;
        }
        let stripped: PathBuf = Path::new(name)
            .components()
            .skip(p.strip as usize)
            .collect();
        if !stripped.as_os_str().is_empty() && !out.contains(&stripped) {
            out.push(stripped);
        }
    }
    out
}

/// Copy `src` to `dst` as hard links (falling back to a real copy across
/// file systems). `dst` must not exist.
pub fn link_copy(src: &Path, dst: &Path) -> Result<()> {
    let st = Command::new("cp")
        .arg("-al")
        .arg(src)
        .arg(dst)
        .status()
        .context("running cp -al")?;
    if st.success() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dst);
    let st = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(src)
        .arg(dst)
        .status()
        .context("running cp -a")?;
    if !st.success() {
        bail!(
            "copying {} to {} failed ({st})",
            src.display(),
            dst.display()
        );
    }
    Ok(())
}

/// Replace a hard link by a private copy so that writing it cannot reach
/// the tree it was linked from.
fn unshare(file: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::symlink_metadata(file) else {
        return Ok(());
    };
    if !md.is_file() || md.nlink() < 2 {
        return Ok(());
    }
    let tmp = file.with_file_name(format!(
        ".{}.unshare",
        file.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::copy(file, &tmp).with_context(|| format!("copying {}", file.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("replacing {}", file.display()))?;
    Ok(())
}

/// What `patch` said about one hunk that did not apply exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HunkNote {
    pub file: String,
    pub hunk: u32,
    pub what: String,
}

/// Read `patch`'s report: failed hunks, and hunks that needed fuzz or an
/// offset (which a series for a named base must not need).
pub fn parse_patch_output(out: &str) -> (Vec<HunkNote>, Vec<HunkNote>) {
    let hunk_re = regex::Regex::new(r"^Hunk #(\d+) (FAILED at \d+.*|succeeded at .*)$")
        .expect("static regex");
    let mut file = String::new();
    let (mut failed, mut inexact) = (Vec::new(), Vec::new());
    for l in out.lines() {
        if let Some(f) = l.strip_prefix("patching file ") {
            file = f.trim().trim_matches('\'').to_string();
        } else if let Some(c) = hunk_re.captures(l) {
            let note = HunkNote {
                file: file.clone(),
                hunk: c[1].parse().unwrap_or(0),
                what: c[2].to_string(),
            };
            if note.what.starts_with("FAILED") {
                failed.push(note);
            } else {
                inexact.push(note);
            }
        } else if l.contains("Reversed (or previously applied) patch detected")
            || l.starts_with("can't find file to patch")
        {
            failed.push(HunkNote {
                file: file.clone(),
                hunk: 0,
                what: l.trim().to_string(),
            });
        }
    }
    (failed, inexact)
}

/// Apply `series` to a copy of `base`, producing `dest` (which must not
/// exist). On any failure `dest` does not exist afterwards.
pub fn apply(
    base: &Path,
    series: &Series,
    dest: &Path,
    allow_fuzz: bool,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    crate::base::hostdeps::require_tool("patch")?;
    let parent = dest.parent().context("destination has no parent")?;
    std::fs::create_dir_all(parent)?;
    let staging = parent.join(format!(
        ".staging-{}-{}",
        std::process::id(),
        dest.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| -> Result<()> {
        link_copy(base, &staging)?;
        let n = series.patches.len();
        for (i, p) in series.patches.iter().enumerate() {
            for f in touched_files(p) {
                unshare(&staging.join(f))?;
            }
            // The patch on stdin, so nothing is written beside the tree.
            let sh = xshell::Shell::new()?;
            let strip = format!("-p{}", p.strip);
            let fuzz = (!allow_fuzz).then_some("--fuzz=0");
            let out = xshell::cmd!(
                sh,
                "patch {strip} --forward --batch --no-backup-if-mismatch {fuzz...} -d {staging}"
            )
            .stdin(&p.text)
            .quiet()
            .ignore_status()
            .output()
            .context("running patch");
            let out = out?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let (failed, inexact) = parse_patch_output(&text);
            let which = format!("patch {}/{n} {} ({})", i + 1, p.name, p.origin);
            let before = match i {
                0 => "no patch applied before it".to_string(),
                1 => "1 patch applied before it".to_string(),
                k => format!("{k} patches applied before it"),
            };
            if !out.status.success() || !failed.is_empty() {
                let detail = if failed.is_empty() {
                    text.lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n  ")
                } else {
                    failed
                        .iter()
                        .map(|h| format!("{}: hunk #{} {}", h.file, h.hunk, h.what))
                        .collect::<Vec<_>>()
                        .join("\n  ")
                };
                bail!(
                    "{which} does not apply to {}: {before}; nothing was kept\n  {detail}",
                    base.display()
                );
            }
            if !inexact.is_empty() && !allow_fuzz {
                let detail = inexact
                    .iter()
                    .map(|h| format!("{}: hunk #{} {}", h.file, h.hunk, h.what))
                    .collect::<Vec<_>>()
                    .join("\n  ");
                bail!(
                    "{which} applies to {} only with an offset or fuzz ({before}); refusing, since the series was made for another base (pass --allow-fuzz to accept it)\n  {detail}",
                    base.display()
                );
            }
            for h in &inexact {
                log(&format!("{which}: {}: hunk #{} {}", h.file, h.hunk, h.what));
            }
        }
        std::fs::rename(&staging, dest)
            .with_context(|| format!("moving the patched tree to {}", dest.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &str = "--- a/hello.c\n+++ b/hello.c\n@@ -1,3 +1,3 @@\n line one\n-line two\n+line TWO\n line three\n";
    const P2: &str = "--- /dev/null\n+++ b/new.c\n@@ -0,0 +1 @@\n+new file\n";

    fn base() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("base")).unwrap();
        std::fs::write(
            t.path().join("base/hello.c"),
            "line one\nline two\nline three\n",
        )
        .unwrap();
        t
    }

    fn series(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
        let mut s = String::from("# a test series\n");
        for (name, text) in entries {
            std::fs::write(dir.join(name), text).unwrap();
            s.push_str(name);
            s.push('\n');
        }
        let p = dir.join("series");
        std::fs::write(&p, s).unwrap();
        p
    }

    #[test]
    fn several_series_apply_as_one_in_order() {
        let t = tempfile::tempdir().unwrap();
        let diff = |n: &str| format!("--- a/{n}\n+++ b/{n}\n@@ -0,0 +1 @@\n+x\n");
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        std::fs::create_dir_all(t.path().join("b")).unwrap();
        std::fs::write(t.path().join("a/1.patch"), diff("one")).unwrap();
        std::fs::write(t.path().join("a/2.patch"), diff("two")).unwrap();
        std::fs::write(t.path().join("b/3.patch"), diff("three")).unwrap();
        let s = load_all(&[t.path().join("a"), t.path().join("b")])
            .unwrap()
            .unwrap();
        let names: Vec<&str> = s.patches.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["1.patch", "2.patch", "3.patch"]);
        assert!(load_all(&[]).unwrap().is_none());
        let e = load_all(&[t.path().join("a"), t.path().join("nope")]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn quilt_series_applies_without_touching_the_base() {
        let t = base();
        let sp = series(t.path(), &[("0001-two.patch", P1), ("0002-new.patch", P2)]);
        let s = load(&sp).unwrap();
        assert_eq!(s.kind, SeriesKind::Quilt);
        assert_eq!(s.patches.len(), 2);
        assert_eq!(s.patches[0].origin, format!("{}:2", sp.display()));
        let dest = t.path().join("out/tree");
        apply(&t.path().join("base"), &s, &dest, false, &mut |_| {}).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("hello.c")).unwrap(),
            "line one\nline TWO\nline three\n"
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("new.c")).unwrap(),
            "new file\n"
        );
        // The base is untouched although the copy was made of hard links.
        assert_eq!(
            std::fs::read_to_string(t.path().join("base/hello.c")).unwrap(),
            "line one\nline two\nline three\n"
        );
        assert!(!t.path().join("base/new.c").exists());
        // The same series by directory order, and as a directory with a series file.
        assert_eq!(load(t.path()).unwrap().hash(), s.hash());
    }

    #[test]
    fn identity_follows_content_not_names() {
        let t = base();
        let a = load(&series(t.path(), &[("a.patch", P1)])).unwrap();
        let u = tempfile::tempdir().unwrap();
        let b = load(&series(u.path(), &[("other-name.patch", P1)])).unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = load(&series(u.path(), &[("other-name.patch", P2)])).unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn failing_hunk_names_patch_file_hunk_and_count_and_keeps_nothing() {
        let t = base();
        let bad = "--- a/hello.c\n+++ b/hello.c\n@@ -1,3 +1,3 @@\n line one\n-line 2\n+line TWO\n line three\n";
        let sp = series(t.path(), &[("0001-new.patch", P2), ("0002-bad.patch", bad)]);
        let s = load(&sp).unwrap();
        let dest = t.path().join("out/tree");
        let e = apply(&t.path().join("base"), &s, &dest, false, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("patch 2/2 0002-bad.patch"), "{e}");
        assert!(e.contains(&format!("{}:3", sp.display())), "{e}");
        assert!(e.contains("hello.c: hunk #1 FAILED"), "{e}");
        assert!(e.contains("1 patch applied before it"), "{e}");
        assert!(!dest.exists());
        let leftovers: Vec<_> = std::fs::read_dir(t.path().join("out")).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn offsets_are_refused_unless_allowed() {
        let t = base();
        std::fs::write(
            t.path().join("base/hello.c"),
            "zero\nline one\nline two\nline three\n",
        )
        .unwrap();
        let sp = series(t.path(), &[("0001-two.patch", P1)]);
        let s = load(&sp).unwrap();
        let dest = t.path().join("out/tree");
        let e = apply(&t.path().join("base"), &s, &dest, false, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("only with an offset or fuzz")
                && e.contains("--allow-fuzz")
                && e.contains("offset 1 line"),
            "{e}"
        );
        assert!(!dest.exists());
        let mut notes = Vec::new();
        apply(&t.path().join("base"), &s, &dest, true, &mut |m| {
            notes.push(m.to_string())
        })
        .unwrap();
        assert!(notes.iter().any(|n| n.contains("offset")), "{notes:?}");
    }

    #[test]
    fn bad_series_inputs() {
        let t = tempfile::tempdir().unwrap();
        let e = load(&t.path().join("nope")).unwrap_err().to_string();
        assert!(
            e.contains("does not exist") && e.contains("quilt series"),
            "{e}"
        );
        let empty = t.path().join("series");
        std::fs::write(&empty, "# nothing\n\n").unwrap();
        let e = load(&empty).unwrap_err().to_string();
        assert!(e.contains("empty series"), "{e}");
        std::fs::write(&empty, "# one\nmissing.patch\n").unwrap();
        let e = load(&empty).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{}:2: names missing.patch", empty.display())),
            "{e}"
        );
        std::fs::write(t.path().join("x.patch"), P1).unwrap();
        std::fs::write(&empty, "x.patch -R\n").unwrap();
        let e = load(&empty).unwrap_err().to_string();
        assert!(e.contains(":1: unknown option `-R`"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let e = load(d.path()).unwrap_err().to_string();
        assert!(e.contains("no series file and no *.patch"), "{e}");
    }

    #[test]
    fn mbox_skips_the_cover_letter_and_names_by_subject() {
        let t = base();
        let mbox = format!(
            "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 0/2] cover\n\nthe cover letter\n\n\
             From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 1/2] two\n\n---\n{P1}\n\
             From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 2/2] new\n\n---\n{P2}"
        );
        let p = t.path().join("series.mbox");
        std::fs::write(&p, mbox).unwrap();
        let s = load(&p).unwrap();
        assert_eq!(s.kind, SeriesKind::Mbox);
        let names: Vec<&str> = s.patches.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["0001 [PATCH 1/2] two", "0002 [PATCH 2/2] new"]);
        let dest = t.path().join("out/tree");
        apply(&t.path().join("base"), &s, &dest, false, &mut |_| {}).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("new.c")).unwrap(),
            "new file\n"
        );
    }
}
