//! The README fits on a screen or so, and every link in the docs leads
//! somewhere: a file that exists and, with `#anchor`, a heading in it.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for l in text.lines() {
        if l.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && l.starts_with('#') {
            out.push(anchor(l.trim_start_matches('#')));
        }
    }
    out
}

/// Broken relative links of one markdown file, as `file: link (why)`.
fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut bad = Vec::new();
    for c in link.captures_iter(&text) {
        let target = &c[1];
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, frag) = target.split_once('#').unwrap_or((target, ""));
        let dest = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap().join(path)
        };
        if !dest.exists() {
            bad.push(format!("{}: {target} (no such file)", file.display()));
            continue;
        }
        if !frag.is_empty() && dest.extension().is_some_and(|e| e == "md") {
            let t = std::fs::read_to_string(&dest).unwrap();
            if !anchors(&t).iter().any(|a| a == frag) {
                bad.push(format!("{}: {target} (no such heading)", file.display()));
            }
        }
    }
    bad
}

fn markdown_files() -> Vec<PathBuf> {
    let r = root();
    let mut files = vec![r.join("README.md"), r.join("cases/README.md")];
    for e in std::fs::read_dir(r.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            files.push(p);
        }
    }
    files
}

#[test]
fn the_readme_fits_on_a_screen_or_two() {
    let n = std::fs::read_to_string(root().join("README.md"))
        .unwrap()
        .lines()
        .count();
    assert!(n <= 220, "README.md has {n} lines: move details to docs/");
}

#[test]
fn every_link_in_the_docs_leads_somewhere() {
    let bad: Vec<String> = markdown_files()
        .iter()
        .flat_map(|f| broken_links(f))
        .collect();
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn the_link_check_sees_a_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.md"), "# A Title, here\n").unwrap();
    let a = dir.path().join("a.md");
    std::fs::write(
        &a,
        "[ok](b.md#a-title-here) [gone](c.md) [bad](b.md#nope) [web](https://x.org)\n",
    )
    .unwrap();
    let bad = broken_links(&a);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].ends_with("c.md (no such file)"));
    assert!(bad[1].ends_with("b.md#nope (no such heading)"));
}
