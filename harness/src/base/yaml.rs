//! YAML input with errors that name the file, line and column.

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Parse `text` (which starts at line `line_offset + 1` of `path`).
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str, line_offset: usize) -> Result<T> {
    let opts = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options::<T>(text, opts).map_err(|e| {
        let msg = e.to_string();
        // Drop the library's own position suffix; ours counts from the file.
        let msg = strip_position(&msg);
        let at = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize));
        // A bracket left open confuses the parser lines later: name it where
        // it was opened.
        if let Some((line, col, ch)) = unclosed_bracket(text) {
            // The parser names a bracket still open at the end itself.
            if !msg.contains("unclosed") && at.is_none_or(|(l, _)| l > line) {
                return anyhow!(
                    "{}:{}:{}: this `{ch}` is never closed (the parser gave up {}: {msg})",
                    path.display(),
                    line + line_offset,
                    col,
                    match at {
                        Some((l, _)) => format!("at line {}", l + line_offset),
                        None => "at the end".to_string(),
                    }
                );
            }
        }
        match at.or_else(|| key_of(&msg, text).map(|l| (l, 1))) {
            Some((l, c)) => anyhow!("{}:{}:{c}: {msg}", path.display(), l + line_offset),
            None => anyhow!("{}: {msg}", path.display()),
        }
    })
}

/// Where an error the parser gave without a position is, from the key it
/// names (`` duplicate field `groups` ``, `` missing field `x` `` has none):
/// the 1-based line holding that key, the last such line for a duplicate.
fn key_of(msg: &str, text: &str) -> Option<usize> {
    let name = msg.split('`').nth(1).filter(|n| !n.is_empty())?;
    let key = regex::Regex::new(&format!(
        r#"(^|[\s{{,\-!?]|\S+\s)["']?{}["']?\s*:"#,
        regex::escape(name)
    ))
    .ok()?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| key.is_match(l))
        .map(|(i, _)| i + 1);
    if msg.starts_with("duplicate") {
        lines.last()
    } else {
        lines.next()
    }
}

/// The innermost `[` or `{` of a flow collection that no bracket closes
/// (outside quotes and comments): (1-based line, 1-based column, bracket).
fn unclosed_bracket(text: &str) -> Option<(usize, usize, char)> {
    let mut open: Vec<(usize, usize, char)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (j, c) in line.chars().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') if prev == ' ' => break,
                (None, '[' | '{') => open.push((i + 1, j + 1, c)),
                (None, ']' | '}') => {
                    open.pop();
                }
                _ => {}
            }
            prev = c;
        }
    }
    open.last().copied()
}

/// Levenshtein distance, for "did you mean" in input errors.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The candidate nearest to `s`, if one is near enough to be a typo.
pub fn closest<'a>(s: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(s, c), c))
        .filter(|(d, _)| *d <= 2.max(s.len() / 3))
        .min()
        .map(|(_, c)| c)
}

/// The 1-based line of `text` (from line `from`, 1-based) on which `needle`
/// first appears, for errors about a value the parser accepted.
pub fn line_of(text: &str, from: usize, needle: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .unwrap_or(from)
}

fn strip_position(msg: &str) -> String {
    let re = regex::Regex::new(r"\s*at line \d+,? column \d+\.?\s*$").expect("static regex");
    re.replace(msg.trim(), "").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
        #[serde(default)]
        b: Vec<String>,
    }

    #[test]
    fn a_duplicate_key_without_a_position_is_named_at_its_second_line() {
        // A tagged, quoted duplicate: the parser gives no position for it.
        let text = "a: 1\nb: [x]\n!custom \"b\":\n - y\n";
        let e = parse::<T>(Path::new("c"), text, 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c:13:1: ") && e.contains("duplicate field `b`"),
            "{e}"
        );
        assert_eq!(key_of("duplicate field `b`", "b: 1\n'b' : 2\n"), Some(2));
        assert_eq!(key_of("unknown field `zz`", "b: 1\n"), None);
    }

    #[test]
    fn an_unclosed_bracket_is_named_where_it_opens() {
        let e = parse::<T>(Path::new("c"), "a: 1\nb: [x, y\nz: 2\n", 10)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c:12:4: this `[` is never closed"), "{e}");
        assert_eq!(unclosed_bracket("a: '[' # [\nb: [1]\n"), None);
    }

    #[test]
    fn typos_find_their_word() {
        assert_eq!(edit_distance("WARNNG", "WARNING"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("DEV_DAXX", ["DEV_DAX", "FS_DAX"]), Some("DEV_DAX"));
        assert_eq!(closest("ZZZZZZ", ["DEV_DAX", "FS_DAX"]), None);
        assert_eq!(line_of("a\nb: x\nc: x\n", 3, "x"), 3);
    }

    #[test]
    fn errors_carry_file_line_column() {
        let e = parse::<T>(Path::new("x.yaml"), "a: 1\nbogus: 2\n", 0)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.yaml:2:1: "), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e = parse::<T>(Path::new("case"), "a: [1\n", 10)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("case:1"), "{e}");
        let e = parse::<T>(Path::new("c"), "a: x\n", 4)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c:5:"), "{e}");
        println!("{e}");
    }
}
