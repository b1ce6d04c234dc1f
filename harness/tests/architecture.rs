//! The house rules of `harness/src`, checked so that they stay true: data
//! flows one way through the stages (a module imports only its own stage
//! and lower ones; the table is in lib.rs), the top level holds few files,
//! and no function grows past a screenful or two.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module's stage rank (lib.rs's table). A module may
/// import modules of its own rank or lower.
const RANKS: &[(&str, u32)] = &[
    ("base", 0),
    ("events", 0),
    ("contract", 0),
    ("server", 1),
    ("guest", 2),
    ("bin", 2),
    ("kernel", 3),
    ("image", 4),
    ("vm", 5),
    ("plan", 6),
    ("exec", 7),
    ("judge", 8),
    ("report", 9),
    ("run", 10),
    ("commands", 11),
    ("fuzz", 11),
];

/// Functions allowed past [`MAX_FN_LINES`], with why (docs/architecture.md
/// repeats it).
const LONG_FNS: &[(&str, &str)] = &[];

const MAX_FN_LINES: usize = 120;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's lines (numbered from 1) without its test module and
/// comments: what the build of the library uses.
fn code(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| !l.starts_with("#[cfg(test)]"))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

/// The top-level module a file belongs to.
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Top-level modules a line of code names: `crate::x`, `famfs_harness::x`
/// and each `x` of `crate::{x, y::z}`.
fn named_modules(line: &str) -> Vec<String> {
    static PATH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b(?:crate|famfs_harness)::(\w+|\{[^}]*)").unwrap()
    });
    let mut out = Vec::new();
    for c in PATH.captures_iter(line) {
        let m = &c[1];
        if let Some(group) = m.strip_prefix('{') {
            out.extend(
                group
                    .split(',')
                    .filter_map(|p| p.trim().split("::").next())
                    .filter(|p| !p.is_empty() && *p != "self")
                    .map(str::to_string),
            );
        } else {
            out.push(m.to_string());
        }
    }
    out
}

fn rank(m: &str) -> Option<u32> {
    RANKS.iter().find(|(n, _)| *n == m).map(|(_, r)| *r)
}

/// Every import from a lower stage to a higher one, as `file:line: a -> b`.
fn upward_imports(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap();
        let from = module_of(rel);
        if from == "lib" {
            continue;
        }
        let from_rank =
            rank(&from).unwrap_or_else(|| panic!("{}: {from} has no rank", rel.display()));
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in code(&text) {
            for to in named_modules(line) {
                let Some(to_rank) = rank(&to) else { continue };
                if to_rank > from_rank {
                    bad.push(format!(
                        "{}:{}: {from} ({from_rank}) -> {to} ({to_rank})",
                        rel.display(),
                        n
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn no_stage_imports_a_later_one() {
    let bad = upward_imports(&src());
    assert!(
        bad.is_empty(),
        "imports against the flow (lib.rs's table):\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_rank() {
    let mut missing = Vec::new();
    for e in std::fs::read_dir(src()).unwrap() {
        let name = e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if name != "lib" && rank(&name).is_none() {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "add these to RANKS and lib.rs's table: {missing:?}"
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    // A lower stage naming a higher one, in each form an import takes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("kernel")).unwrap();
    std::fs::write(
        dir.path().join("kernel/x.rs"),
        "use crate::{base::yaml, report::ui};\nfn f() { crate::vm::tail(); }\n// crate::run in a comment\n#[cfg(test)]\nmod tests { use crate::run; }\n",
    )
    .unwrap();
    let bad = upward_imports(dir.path());
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].starts_with("kernel/x.rs:1: kernel (3) -> report (9)"),
        "{bad:?}"
    );
    assert!(
        bad[1].starts_with("kernel/x.rs:2: kernel (3) -> vm (5)"),
        "{bad:?}"
    );
}

#[test]
fn the_top_level_holds_at_most_six_files() {
    let files: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.len() <= 6,
        "{files:?}: put commands in commands/, stages in their folder"
    );
}

/// Non-test functions longer than `max` lines (the `fn` line to its closing
/// brace at the same indentation), as `file:line name (n lines)`.
fn long_functions(root: &Path, max: usize) -> Vec<(String, String)> {
    let start =
        regex::Regex::new(r"^(\s*)(?:pub(?:\([^)]*\))? )?(?:const )?(?:unsafe )?fn (\w+)").unwrap();
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .collect();
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        for (i, l) in lines.iter().enumerate() {
            let Some(c) = start.captures(l) else { continue };
            if l.trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{}}}", &c[1]);
            let Some(end) = lines[i..].iter().position(|x| *x == close) else {
                continue;
            };
            if end + 1 > max {
                out.push((
                    format!("{rel}:{} {} ({} lines)", i + 1, &c[2], end + 1),
                    format!("{rel} {}", &c[2]),
                ));
            }
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_a_screenful_or_two() {
    let mut roots = vec![
        src(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/src"),
    ];
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/src"));
    let allowed: BTreeMap<&str, &str> = LONG_FNS.iter().copied().collect();
    let mut long = Vec::new();
    for r in roots {
        long.extend(
            long_functions(&r, MAX_FN_LINES)
                .into_iter()
                .filter(|(_, key)| !allowed.contains_key(key.as_str()))
                .map(|(shown, _)| shown),
        );
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them, or list one in LONG_FNS with why):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_check_measures_a_function() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..5).map(|i| format!("    let _x{i} = {i};\n")).collect();
    std::fs::write(
        dir.path().join("a.rs"),
        format!("pub fn long() {{\n{body}}}\nfn short() {{}}\nfn decl();\n"),
    )
    .unwrap();
    let got = long_functions(dir.path(), 6);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "a.rs:1 long (7 lines)");
    assert!(long_functions(dir.path(), 7).is_empty());
}
