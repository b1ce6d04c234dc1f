//! Mutations of real examples: what a person's typo, an editor, a cut-off
//! copy or a hostile file does to an input that once parsed. Byte-level
//! (bit flips, truncation, splices) finds decoder slips; line- and
//! YAML-level (swapped values, deleted keys, huge numbers, odd unicode)
//! keep the input close enough to the grammar to reach the checks behind
//! the syntax.

use super::rng::Rng;

/// Numbers that break naive arithmetic and conversions.
pub const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "31",
    "32",
    "33",
    "63",
    "64",
    "255",
    "256",
    "4096",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "1e309",
    "-1e309",
    "1.5",
    "0.0",
    ".inf",
    "-.inf",
    ".nan",
    "0x",
    "0x0",
    "0xffffffffffffffff",
    "0x10000000000000000",
    "0o777",
    "0b101",
    "007",
    "1_000",
    "+1",
    "--1",
    "2M",
    "3M",
    "4K",
    "1G",
    "5G",
    "1T",
    "16E",
    "17179869184G",
    "18446744073709551615M",
    "0M",
    "M",
    "2m",
    "2 M",
    "1.5M",
    "-2M",
    "0x200000",
];

/// Strings that break naive text handling: YAML syntax, control and
/// bidirectional characters, multi-byte and combining characters, BOM,
/// paths, very long words.
pub fn odd_string(rng: &mut Rng) -> String {
    const ODD: &[&str] = &[
        "",
        " ",
        "~",
        "null",
        "Null",
        "true",
        "no",
        "yes",
        "off",
        "y",
        "'",
        "\"",
        "\\",
        "#",
        "# x",
        ": ",
        "- ",
        "? ",
        "|",
        ">-",
        "[",
        "]",
        "{",
        "}",
        "[]",
        "{}",
        ",",
        "&a",
        "*a",
        "*undefined",
        "!!str",
        "!!binary AAAA",
        "!!int x",
        "!custom",
        "%YAML 1.2",
        "---",
        "...",
        "<<: *a",
        "\t",
        "\r",
        "\r\n",
        "\u{0}",
        "\u{1}",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{2028}",
        "\u{2029}",
        "\u{202e}",
        "\u{200b}",
        "\u{feff}",
        "\u{fffd}",
        "\u{fffe}",
        "é",
        "e\u{301}\u{301}\u{301}",
        "𝕏",
        "日本語",
        "\u{10ffff}",
        "ǅ",
        "İ",
        "ß",
        "../../etc/passwd",
        "/",
        "//",
        "/a/./b",
        "/a/../b",
        "a/b",
        "famfs/010[x]",
        "famfs/010#2",
        "x[",
        "$1",
        "${x}",
        "%s%n",
        "\\x0a",
        "0",
        "-1",
        "18446744073709551616",
        "1e309",
    ];
    match rng.below(10) {
        0 => "a".repeat(rng.between(256, 5000)),
        1 => {
            let mut s = String::new();
            for _ in 0..rng.between(1, 6) {
                let w: &&str = rng.pick(ODD);
                s.push_str(w);
            }
            s
        }
        2 => (0..rng.between(1, 12))
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
        _ => rng.pick(ODD).to_string(),
    }
}

/// A tricky number, or a random one.
pub fn odd_number(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => rng.next_u64().to_string(),
        1 => (rng.next_u64() as i64).to_string(),
        _ => rng.pick(NUMBERS).to_string(),
    }
}

/// Byte-level mutations: any of them may leave invalid UTF-8, as a
/// damaged file would.
pub fn bytes(rng: &mut Rng, input: &mut Vec<u8>, donor: &[u8]) {
    let len = input.len();
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 => input.truncate(rng.below(len + 1)),
        2 if len > 0 => {
            let a = rng.below(len);
            let b = (a + rng.small(64)).min(len);
            input.drain(a..b);
        }
        3 if len > 0 => {
            let a = rng.below(len);
            let b = (a + rng.small(256)).min(len);
            let chunk = input[a..b].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, chunk);
        }
        4 => {
            let at = rng.below(len + 1);
            let n = rng.small(16);
            let junk = rng.bytes(n);
            input.splice(at..at, junk);
        }
        5 if !donor.is_empty() => {
            // Splice: this input's head, the donor's tail.
            let at = rng.below(len + 1);
            let from = rng.below(donor.len());
            input.truncate(at);
            input.extend_from_slice(&donor[from..]);
        }
        6 if len > 0 => {
            let i = rng.below(len);
            input[i] = *rng.pick(&[0, 0xff, 0x80, b'\n', b'\r', b'"', b'\'', b':', b'#', b'[']);
        }
        7 => {
            let at = char_boundary_near(input, rng.below(len + 1));
            let s = odd_string(rng);
            input.splice(at..at, s.into_bytes());
        }
        _ => {
            let at = char_boundary_near(input, rng.below(len + 1));
            let s = odd_number(rng);
            input.splice(at..at, s.into_bytes());
        }
    }
}

/// The first index at or after `i` that does not split a UTF-8 sequence.
fn char_boundary_near(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] & 0xc0) == 0x80 {
        i += 1;
    }
    i
}

/// Line-level mutations of text: deleted, repeated, swapped, re-indented
/// and foreign lines, and values of `key: value` lines swapped or replaced.
pub fn lines(rng: &mut Rng, text: &str, donor: &str) -> String {
    let mut ls: Vec<String> = text.split('\n').map(str::to_string).collect();
    let donors: Vec<&str> = donor.split('\n').collect();
    let n = ls.len();
    let i = rng.below(n);
    match rng.below(12) {
        0 => {
            ls.remove(i);
        }
        1 => {
            let l = ls[i].clone();
            ls.insert(i, l);
        }
        2 => {
            let j = rng.below(n);
            ls.swap(i, j);
        }
        3 => {
            let l = rng.pick(&donors).to_string();
            ls.insert(i, l);
        }
        4 => {
            let pad = " ".repeat(rng.between(1, 4));
            ls[i] = format!("{pad}{}", ls[i]);
        }
        5 => {
            ls[i] = ls[i].trim_start().to_string();
        }
        6 => swap_values(rng, &mut ls),
        7 => {
            // Replace a value with something of another type or shape.
            if let Some((k, _)) = split_key(&ls[i]) {
                let v = match rng.below(3) {
                    0 => odd_number(rng),
                    1 => odd_string(rng),
                    _ => rng
                        .pick(&["[]", "{}", "[a, [b, {c: d}]]", "{x: 1}", "~", "|", ">"])
                        .to_string(),
                };
                ls[i] = format!("{k} {v}");
            }
        }
        8 => delete_key(rng, &mut ls),
        9 => {
            // A key renamed by a typo, or made unknown.
            if let Some((k, v)) = split_key(&ls[i]) {
                let k = k.trim_end_matches(':');
                let mut chars: Vec<char> = k.chars().collect();
                if !chars.is_empty() && rng.chance(1, 2) {
                    let j = rng.below(chars.len());
                    chars.remove(j);
                } else {
                    chars.push('x');
                }
                let k: String = chars.into_iter().collect();
                ls[i] = format!("{k}: {v}");
            }
        }
        10 => {
            // Tabs, CR and trailing blanks: what editors and Windows add.
            ls[i] = match rng.below(3) {
                0 => ls[i].replacen("  ", "\t", 1),
                1 => format!("{}\r", ls[i]),
                _ => format!("{}   ", ls[i]),
            };
        }
        _ => {
            // Every number on the line replaced by a tricky one.
            let re = number_re();
            let rep = odd_number(rng);
            ls[i] = re.replace_all(&ls[i], rep.as_str()).into_owned();
        }
    }
    ls.join("\n")
}

fn number_re() -> &'static regex::Regex {
    static R: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    R.get_or_init(|| regex::Regex::new(r"\b\d+[KMGTkmgt]?\b").expect("static regex"))
}

/// `(key-with-colon-and-indent, value)` of a `key: value` line.
fn split_key(line: &str) -> Option<(String, String)> {
    let at = line
        .find(": ")
        .or_else(|| line.strip_suffix(':').map(|s| s.len()))?;
    let (k, v) = line.split_at(at + 1);
    Some((k.to_string(), v.trim().to_string()))
}

fn swap_values(rng: &mut Rng, ls: &mut [String]) {
    let keyed: Vec<usize> = (0..ls.len())
        .filter(|&i| split_key(&ls[i]).is_some_and(|(_, v)| !v.is_empty()))
        .collect();
    if keyed.len() < 2 {
        return;
    }
    let (a, b) = (*rng.pick(&keyed), *rng.pick(&keyed));
    let (ka, va) = split_key(&ls[a]).unwrap_or_default();
    let (kb, vb) = split_key(&ls[b]).unwrap_or_default();
    ls[a] = format!("{ka} {vb}");
    ls[b] = format!("{kb} {va}");
}

/// Removes a `key:` line and the lines indented under it.
fn delete_key(rng: &mut Rng, ls: &mut Vec<String>) {
    let keyed: Vec<usize> = (0..ls.len())
        .filter(|&i| split_key(&ls[i]).is_some())
        .collect();
    if keyed.is_empty() {
        return;
    }
    let i = *rng.pick(&keyed);
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '#']).len();
    let base = indent(&ls[i]);
    let mut j = i + 1;
    while j < ls.len() && !ls[j].trim_start_matches([' ', '#']).is_empty() && indent(&ls[j]) > base
    {
        j += 1;
    }
    ls.drain(i..j);
}

/// One to four mutations, text and byte level mixed, of `input`.
pub fn text(rng: &mut Rng, input: &str, donor: &str) -> Vec<u8> {
    let mut s = input.to_string();
    let rounds = rng.between(1, 4);
    let mut bytes_out: Option<Vec<u8>> = None;
    for _ in 0..rounds {
        match &mut bytes_out {
            Some(b) => bytes(rng, b, donor.as_bytes()),
            None if rng.chance(3, 4) => s = lines(rng, &s, donor),
            None => {
                let mut b = std::mem::take(&mut s).into_bytes();
                bytes(rng, &mut b, donor.as_bytes());
                bytes_out = Some(b);
            }
        }
    }
    bytes_out.unwrap_or_else(|| s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_inputs_and_never_panic() {
        let mut rng = Rng::new(1);
        let text_in = "a: 1\nb:\n  c: [x, y]\n  d: 2M\ne: 'q'\n";
        let mut changed = 0;
        for _ in 0..2000 {
            let out = super::text(&mut rng, text_in, "z: 9\n- w\n");
            changed += usize::from(out != text_in.as_bytes());
        }
        assert!(changed > 1500, "{changed}");
        let mut ls = vec![
            "a: 1".to_string(),
            "b:".into(),
            "  c: 2".into(),
            "d: 3".into(),
        ];
        delete_key(&mut Rng::new(0), &mut ls);
        assert!(ls.len() < 4);
        assert_eq!(split_key("  k: v"), Some(("  k:".into(), "v".into())));
        assert_eq!(split_key("k:"), Some(("k:".into(), "".into())));
    }
}
