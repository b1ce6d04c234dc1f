//! Single-point mutants of C source: the faults a missing test would let
//! through. Each mutant changes one token or one condition on one line
//! (a relational operator swapped, a boundary moved by one, a condition
//! negated, a check's early return removed, an error code swapped, `&&` and
//! `||` exchanged) and is written as a patch on the unmutated tree, so it
//! is built like any other patch series.

use std::collections::BTreeSet;

/// One mutant: where, what kind, and the line before and after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mutant {
    /// 1-based line in the file.
    pub line: u32,
    /// The kind, as a report names it (`relational`, `boundary`, ...).
    pub kind: String,
    /// What changed, readable (`< -> <=`).
    pub change: String,
    pub before: String,
    pub after: String,
}

impl Mutant {
    /// A stable name: `L123-relational-1` (the n-th of its kind on its line).
    pub fn id(&self, n: usize) -> String {
        format!("L{}-{}-{n}", self.line, self.kind)
    }
}

const RELATIONAL: &[(&str, &str)] = &[
    ("<=", "<"),
    (">=", ">"),
    ("==", "!="),
    ("!=", "=="),
    ("<", "<="),
    (">", ">="),
];

const ERRNO_SWAP: &[(&str, &str)] = &[
    ("-EINVAL", "-EIO"),
    ("-EIO", "-EINVAL"),
    ("-ENOMEM", "-EINVAL"),
    ("-ENOENT", "-EINVAL"),
    ("-EBUSY", "-EINVAL"),
    ("-EOPNOTSUPP", "-EINVAL"),
    ("-ENODEV", "-EINVAL"),
    ("-EFAULT", "-EINVAL"),
    ("-ENXIO", "-EINVAL"),
    ("-ERANGE", "-EINVAL"),
    ("-EOVERFLOW", "-EINVAL"),
];

/// The code of a line: nothing inside string or character literals and
/// comments counts (`None` for a line that is all comment or preprocessor).
fn code_spans(line: &str) -> Option<Vec<(usize, usize)>> {
    let t = line.trim_start();
    if t.is_empty()
        || t.starts_with('#')
        || t.starts_with("//")
        || t.starts_with('*')
        || t.starts_with("/*")
    {
        return None;
    }
    let b = line.as_bytes();
    let (mut spans, mut start, mut i) = (Vec::new(), 0, 0);
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                spans.push((start, i));
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                start = i + 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') || b.get(i + 1) == Some(&b'*') => {
                spans.push((start, i));
                return Some(spans);
            }
            _ => {}
        }
        i += 1;
    }
    spans.push((start, b.len().max(start)));
    Some(spans)
}

/// Is the operator at `at` (length `len`) a comparison, not part of `<<`,
/// `->`, `>>=`, `<<=`?
fn is_comparison(b: &[u8], at: usize, len: usize) -> bool {
    let prev = at.checked_sub(1).map(|p| b[p]);
    let next = b.get(at + len).copied();
    let op = &b[at..at + len];
    let shift_or_arrow = matches!(
        prev,
        Some(b'<') | Some(b'>') | Some(b'-') | Some(b'=') | Some(b'!')
    ) || matches!(next, Some(b'<') | Some(b'>') | Some(b'='))
        || (op == b"<" && next == Some(b'<'));
    // `#include <x.h>` is skipped with the preprocessor; a template-like
    // `<` in C is a comparison.
    !shift_or_arrow
}

fn push(out: &mut Vec<Mutant>, line: u32, kind: &str, change: String, before: &str, after: String) {
    if after != before {
        out.push(Mutant {
            line,
            kind: kind.into(),
            change,
            before: before.into(),
            after,
        });
    }
}

/// Every mutant of one line.
pub fn of_line(n: u32, line: &str) -> Vec<Mutant> {
    let Some(spans) = code_spans(line) else {
        return vec![];
    };
    let b = line.as_bytes();
    let mut out = Vec::new();
    for &(s, e) in &spans {
        let code = &line[s..e];
        // Relational operators, longest first at each position.
        let mut i = 0;
        while i < code.len() {
            let hit = RELATIONAL.iter().find(|(from, _)| {
                code[i..].starts_with(from) && is_comparison(b, s + i, from.len())
            });
            if let Some((from, to)) = hit {
                let after = format!("{}{to}{}", &line[..s + i], &line[s + i + from.len()..]);
                push(
                    &mut out,
                    n,
                    "relational",
                    format!("{from} -> {to}"),
                    line,
                    after,
                );
                i += from.len();
            } else {
                i += 1;
            }
        }
        // && <-> ||
        for (from, to) in [("&&", "||"), ("||", "&&")] {
            for (i, _) in code.match_indices(from) {
                let after = format!("{}{to}{}", &line[..s + i], &line[s + i + 2..]);
                push(
                    &mut out,
                    n,
                    "logical",
                    format!("{from} -> {to}"),
                    line,
                    after,
                );
            }
        }
        // Error codes.
        for (from, to) in ERRNO_SWAP {
            for (i, _) in code.match_indices(from) {
                let end = s + i + from.len();
                if b.get(end)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    continue;
                }
                let after = format!("{}{to}{}", &line[..s + i], &line[end..]);
                push(&mut out, n, "errno", format!("{from} -> {to}"), line, after);
            }
        }
        // A boundary moved by one: an integer literal compared against.
        let num = regex_lite_numbers(code);
        for (i, len) in num {
            let lit = &code[i..i + len];
            let Ok(v) = lit.parse::<u64>() else { continue };
            let pre = code[..i].trim_end();
            let compared = ["<=", ">=", "==", "!="].iter().any(|o| pre.ends_with(o))
                || ((pre.ends_with('<') || pre.ends_with('>'))
                    && !["<<", ">>", "->"].iter().any(|o| pre.ends_with(o)));
            if !compared {
                continue;
            }
            let after = format!("{}{}{}", &line[..s + i], v + 1, &line[s + i + len..]);
            push(
                &mut out,
                n,
                "boundary",
                format!("{lit} -> {}", v + 1),
                line,
                after,
            );
        }
    }
    let t = line.trim_start();
    let indent = &line[..line.len() - t.len()];
    // A constant changed: the value assigned or returned (`= 1;`,
    // `return 0;`): 0 and 1 swap, others grow by one.
    if let Some(spans) = code_spans(line) {
        for (s, e) in spans {
            constant(&mut out, n, line, s, &line[s..e]);
        }
    }
    // A condition negated.
    if let Some(rest) = t.strip_prefix("if (") {
        if let Some(cond) = rest.strip_suffix(')').or_else(|| rest.strip_suffix(") {")) {
            let tail = &rest[cond.len()..];
            let after = format!("{indent}if (!({cond}){tail}");
            push(
                &mut out,
                n,
                "negate",
                "if (c) -> if (!(c))".into(),
                line,
                after,
            );
        }
    }
    // A check's early return removed: `return -E...;` alone on its line.
    if t.starts_with("return -E") && t.ends_with(';') {
        push(
            &mut out,
            n,
            "no-return",
            format!("{} -> ;", t),
            line,
            format!("{indent};"),
        );
    }
    out
}

/// The `constant` mutants of one code span at offset `s` of `line`.
fn constant(out: &mut Vec<Mutant>, n: u32, line: &str, s: usize, code: &str) {
    for (i, len) in regex_lite_numbers(code) {
        let (pre, post) = (code[..i].trim_end(), code[i + len..].trim_start());
        let assigned =
            pre.ends_with('=') && !["==", "!=", "<=", ">="].iter().any(|o| pre.ends_with(o));
        let returned = pre.ends_with("return");
        if !(assigned || returned) || !post.starts_with(';') {
            continue;
        }
        let lit = &code[i..i + len];
        let Ok(v) = lit.parse::<u64>() else { continue };
        let to = match v {
            0 => 1,
            1 => 0,
            v => v + 1,
        };
        let after = format!("{}{to}{}", &line[..s + i], &line[s + i + len..]);
        push(out, n, "constant", format!("{lit} -> {to}"), line, after);
    }
}

/// Decimal integer literals of a code span: (offset, length).
fn regex_lite_numbers(code: &str) -> Vec<(usize, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let suffix_ok = i >= b.len() || !(b[i].is_ascii_alphanumeric() || b[i] == b'_');
            if suffix_ok {
                out.push((s, i - s));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The mutants of a file's lines in `lines` (inclusive ranges; every line
/// when empty) that `covered` holds (all lines when None).
pub fn of_file(text: &str, lines: &[(u32, u32)], covered: Option<&BTreeSet<u32>>) -> Vec<Mutant> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i as u32 + 1, l))
        .filter(|(n, _)| lines.is_empty() || lines.iter().any(|(a, b)| n >= a && n <= b))
        .filter(|(n, _)| covered.is_none_or(|c| c.contains(n)))
        .flat_map(|(n, l)| of_line(n, l))
        .collect()
}

/// The mutant as a patch on `text` (the file at `path` in the tree):
/// one hunk with three lines of context each side.
pub fn patch(path: &str, text: &str, m: &Mutant) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = m.line as usize - 1;
    let from = at.saturating_sub(3);
    let to = (at + 3).min(lines.len() - 1);
    let count = to - from + 1;
    let mut s = format!(
        "From: famfs-harness mutate\nSubject: [PATCH] mutant {}: {} at line {}\n\n---\n--- a/{path}\n+++ b/{path}\n@@ -{},{count} +{},{count} @@\n",
        m.kind,
        m.change,
        m.line,
        from + 1,
        from + 1
    );
    for (i, l) in lines.iter().enumerate().take(to + 1).skip(from) {
        if i == at {
            s += &format!("-{l}\n+{}\n", m.after);
        } else {
            s += &format!(" {l}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(line: &str) -> Vec<String> {
        of_line(1, line)
            .into_iter()
            .map(|m| format!("{}: {}", m.kind, m.after))
            .collect()
    }

    #[test]
    fn each_kind_of_mutant_on_the_lines_that_have_it() {
        assert_eq!(
            changes("\tif (ext->len < 4096 && nr >= max)"),
            [
                "relational: \tif (ext->len <= 4096 && nr >= max)",
                "relational: \tif (ext->len < 4096 && nr > max)",
                "logical: \tif (ext->len < 4096 || nr >= max)",
                "boundary: \tif (ext->len < 4097 && nr >= max)",
                "negate: \tif (!(ext->len < 4096 && nr >= max))",
            ]
        );
        assert_eq!(
            changes("\t\treturn -EINVAL;"),
            ["errno: \t\treturn -EIO;", "no-return: \t\t;"]
        );
        // Shifts, arrows, strings and comments are not comparisons.
        assert!(changes("\tx = a << 2; p->q = \"a < b\"; /* x < y */").is_empty());
        assert!(changes("#include <linux/fs.h>").is_empty());
        assert!(changes(" * if (a < b) in a comment").is_empty());
        assert!(changes("\terr = -EINVALX;").is_empty());
        assert_eq!(
            changes("\tfc->famfs_iomap = 1;"),
            ["constant: \tfc->famfs_iomap = 0;"]
        );
        assert_eq!(changes("\treturn 0;"), ["constant: \treturn 1;"]);
        assert_eq!(changes("\tx = 4096;"), ["constant: \tx = 4097;"]);
        // Not a constant assigned: an argument, a comparison, an index.
        assert!(changes("\tf(x, 1);").is_empty());
        assert!(changes("\ty = a[2] + 3 * b;").is_empty());
    }

    #[test]
    fn a_mutant_is_a_patch_that_applies_to_its_file() {
        let text = "a\nb\nc\nif (x == 1)\nd\ne\nf\ng\n";
        let ms = of_file(text, &[(4, 4)], None);
        assert_eq!(ms.len(), 3, "{ms:?}");
        let p = patch("fs/fuse/famfs.c", text, &ms[0]);
        assert!(
            p.contains("@@ -1,7 +1,7 @@\n a\n b\n c\n-if (x == 1)\n+if (x != 1)\n d\n e\n f\n"),
            "{p}"
        );
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("fs/fuse")).unwrap();
        std::fs::write(t.path().join("fs/fuse/famfs.c"), text).unwrap();
        let out = std::process::Command::new("patch")
            .args(["-p1", "--no-backup-if-mismatch"])
            .current_dir(t.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(p.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success());
        let got = std::fs::read_to_string(t.path().join("fs/fuse/famfs.c")).unwrap();
        assert_eq!(got, "a\nb\nc\nif (x != 1)\nd\ne\nf\ng\n");
        // Only covered lines are mutated.
        let covered: BTreeSet<u32> = [2].into();
        assert!(of_file(text, &[], Some(&covered)).is_empty());
        assert_eq!(ms[0].id(1), "L4-relational-1");
    }
}
