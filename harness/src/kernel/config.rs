//! Kernel config fragments: parse them strictly, merge them, and verify that
//! every option a fragment asks for survived Kconfig's dependency resolution.
//!
//! Kconfig silently drops an option whose dependencies are unmet; a harness
//! that trusted the fragments would then test a kernel without, say, fsdev_dax
//! and report confusing failures. So the final `.config` is checked against
//! each requested line, and a dropped option is reported with the dependency
//! that Kconfig says is missing.

use crate::base::cache::hex;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// The value a fragment line asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Yes,
    Module,
    No,
    Str(String),
    Num(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Yes => write!(f, "y"),
            Value::Module => write!(f, "m"),
            Value::No => write!(f, "n"),
            Value::Str(s) => write!(f, "\"{s}\""),
            Value::Num(n) => write!(f, "{n}"),
        }
    }
}

/// One `CONFIG_X=...` or `# CONFIG_X is not set` line of a fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Symbol name without the `CONFIG_` prefix.
    pub symbol: String,
    pub value: Value,
    /// Marked `# optional`: a symbol missing from the source is only a warning.
    pub optional: bool,
    pub file: PathBuf,
    pub line: usize,
}

impl Setting {
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone)]
pub struct Fragment {
    pub name: String,
    pub path: PathBuf,
    pub settings: Vec<Setting>,
}

fn valid_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Parse a value as written after `=` in a fragment or a `.config`.
fn parse_value(raw: &str) -> Option<Value> {
    match raw {
        "y" => Some(Value::Yes),
        "m" => Some(Value::Module),
        "n" => Some(Value::No),
        _ if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') => {
            let inner = &raw[1..raw.len() - 1];
            // An unescaped quote inside means the line is malformed.
            let mut prev = ' ';
            for c in inner.chars() {
                if c == '"' && prev != '\\' {
                    return None;
                }
                prev = c;
            }
            Some(Value::Str(inner.to_string()))
        }
        _ => {
            let num = raw.strip_prefix('-').unwrap_or(raw);
            let ok = if let Some(hex) = num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
                !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
            } else {
                !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
            };
            ok.then(|| Value::Num(raw.to_string()))
        }
    }
}

/// Parse fragment text. Grammar, one item a line:
/// blank; `# free comment`; `# CONFIG_X is not set`;
/// `CONFIG_X=y|m|n|"str"|num`, optionally followed by `# comment`, where a
/// comment starting with `optional` marks the symbol as optional.
pub fn parse_fragment_text(path: &Path, text: &str) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw_line.trim();
        let loc = || format!("{}:{}", path.display(), lineno);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim();
            if let Some(sym) = rest.strip_prefix("CONFIG_") {
                if let Some(sym) = sym.strip_suffix(" is not set") {
                    if !valid_symbol(sym) {
                        bail!("{}: bad symbol name in `{line}`", loc());
                    }
                    out.push(Setting {
                        symbol: sym.to_string(),
                        value: Value::No,
                        optional: false,
                        file: path.to_path_buf(),
                        line: lineno,
                    });
                    continue;
                }
                if sym.contains('=') {
                    bail!(
                        "{}: `{line}` looks like a commented-out setting; write `CONFIG_X=y|m|n|\"str\"|num` or `# CONFIG_X is not set`",
                        loc()
                    );
                }
            }
            continue; // free comment
        }
        let Some(body) = line.strip_prefix("CONFIG_") else {
            bail!(
                "{}: `{line}` is not a config line: expected `CONFIG_X=y|m|n|\"str\"|num` or `# CONFIG_X is not set`",
                loc()
            );
        };
        let Some((sym, rest)) = body.split_once('=') else {
            bail!("{}: `{line}` has no `=`: expected `CONFIG_X=value`", loc());
        };
        if !valid_symbol(sym) {
            bail!(
                "{}: bad symbol name `CONFIG_{sym}` (upper-case letters, digits, _)",
                loc()
            );
        }
        // Split off a trailing comment, taking care not to cut inside a string.
        let (value_part, comment) = split_trailing_comment(rest);
        let value_part = value_part.trim();
        let Some(value) = parse_value(value_part) else {
            bail!(
                "{}: CONFIG_{sym} has value `{value_part}`; expected y, m, n, a \"quoted string\" or a number",
                loc()
            );
        };
        let optional = comment
            .map(|c| c.trim_start().starts_with("optional"))
            .unwrap_or(false);
        out.push(Setting {
            symbol: sym.to_string(),
            value,
            optional,
            file: path.to_path_buf(),
            line: lineno,
        });
    }
    Ok(out)
}

fn split_trailing_comment(s: &str) -> (&str, Option<&str>) {
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '#' if !in_str => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
        prev = c;
    }
    (s, None)
}

/// Names of the fragments in `dir` (files `NAME.config`), sorted.
pub fn available_fragments(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("reading fragment directory {}", dir.display()))?
    {
        let e = e?;
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) == Some("config") {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The fragment set used when none is named: `kernel-configs/default`, one
/// name a line (comments with `#`).
pub fn default_fragment_names(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("default");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Expand fragment names: a set (a file in the fragment directory with no
/// extension, such as `default`) stands for the names it lists, and a
/// leading `+` (`+debug`) means the default set plus what follows.
/// Duplicates are dropped, first mention wins.
pub fn expand_fragment_names(dir: &Path, names: &[String]) -> Result<Vec<String>> {
    fn walk(dir: &Path, name: &str, depth: u32, out: &mut Vec<String>) -> Result<()> {
        let set = dir.join(name);
        if !name.is_empty() && !name.contains('/') && !name.ends_with(".config") && set.is_file() {
            if depth > 4 {
                bail!("fragment set {} includes itself", set.display());
            }
            let text = std::fs::read_to_string(&set)
                .with_context(|| format!("reading {}", set.display()))?;
            for l in text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
            {
                walk(dir, l, depth + 1, out)?;
            }
        } else if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
        Ok(())
    }
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        match n.strip_prefix('+') {
            Some(rest) if i == 0 => {
                walk(dir, "default", 0, &mut out)?;
                if !rest.is_empty() {
                    walk(dir, rest, 0, &mut out)?;
                }
            }
            _ => walk(dir, n, 0, &mut out)?,
        }
    }
    Ok(out)
}

/// Load fragments by name (`base`) or path (`./my.config`).
pub fn load_fragments(dir: &Path, names: &[String]) -> Result<Vec<Fragment>> {
    let mut out = Vec::new();
    for name in names {
        let as_path = Path::new(name);
        let stem = name.strip_prefix("kernel-configs/").unwrap_or(name);
        let stem = stem.strip_suffix(".config").unwrap_or(stem);
        let named = dir.join(format!("{stem}.config"));
        let path = if !stem.contains('/') && named.is_file() {
            named
        } else if as_path.is_file() {
            // A file that exists is used as given, whatever its name.
            as_path.to_path_buf()
        } else {
            let avail = available_fragments(dir).unwrap_or_default();
            bail!(
                "unknown config fragment `{name}`: no file {name} and no {} (a fragment is a name from {} without `.config`, or the path of an existing file; available: {})",
                named.display(),
                dir.display(),
                avail.join(", ")
            );
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let settings = parse_fragment_text(&path, &text)?;
        out.push(Fragment {
            name: name.clone(),
            path,
            settings,
        });
    }
    Ok(out)
}

/// Fragments merged into one request: later fragments may repeat a symbol
/// with the same value; a different value is a conflict the user must fix.
#[derive(Debug, Clone)]
pub struct Merged {
    pub settings: BTreeMap<String, Setting>,
    pub fragment_names: Vec<String>,
}

pub fn merge(fragments: &[Fragment]) -> Result<Merged> {
    let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
    for f in fragments {
        for s in &f.settings {
            if let Some(prev) = settings.get(&s.symbol) {
                if prev.value != s.value {
                    bail!(
                        "conflicting values for CONFIG_{}: {} at {} but {} at {}",
                        s.symbol,
                        prev.value,
                        prev.location(),
                        s.value,
                        s.location()
                    );
                }
                // Same value: keep it optional only if every mention is optional.
                let optional = prev.optional && s.optional;
                let mut keep = prev.clone();
                keep.optional = optional;
                settings.insert(s.symbol.clone(), keep);
            } else {
                settings.insert(s.symbol.clone(), s.clone());
            }
        }
    }
    Ok(Merged {
        settings,
        fragment_names: fragments.iter().map(|f| f.name.clone()).collect(),
    })
}

impl Merged {
    /// The text handed to Kconfig as `KCONFIG_ALLCONFIG` (annotations removed).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for set in self.settings.values() {
            match &set.value {
                Value::No => s.push_str(&format!("# CONFIG_{} is not set\n", set.symbol)),
                v => s.push_str(&format!("CONFIG_{}={}\n", set.symbol, v)),
            }
        }
        s
    }

    /// Stable hash of the merged request; part of the kernel cache key.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.render().as_bytes()))
    }
}

/// A parsed `.config`: symbol -> value (symbols "is not set" map to `n`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DotConfig {
    pub values: HashMap<String, Value>,
}

impl DotConfig {
    /// Symbols set to `y` or `m`, sorted (what a case can ask with `_kconfig`).
    pub fn enabled_symbols(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .values
            .iter()
            .filter(|(_, v)| matches!(v, Value::Yes | Value::Module))
            .map(|(k, _)| k.as_str())
            .collect();
        v.sort();
        v
    }

    pub fn parse(text: &str) -> DotConfig {
        let mut values = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# CONFIG_") {
                if let Some(sym) = rest.strip_suffix(" is not set") {
                    values.insert(sym.to_string(), Value::No);
                }
            } else if let Some(rest) = line.strip_prefix("CONFIG_") {
                if let Some((sym, v)) = rest.split_once('=') {
                    if let Some(v) = parse_value(v) {
                        values.insert(sym.to_string(), v);
                    }
                }
            }
        }
        DotConfig { values }
    }

    pub fn load(path: &Path) -> Result<DotConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading kernel config {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Value of a symbol (without `CONFIG_`); unset symbols read as `n`.
    pub fn get(&self, sym: &str) -> Value {
        self.values.get(sym).cloned().unwrap_or(Value::No)
    }

    /// True for `y` or `m`.
    pub fn enabled(&self, sym: &str) -> bool {
        matches!(self.get(sym), Value::Yes | Value::Module)
    }
}

fn num_eq(a: &str, b: &str) -> bool {
    fn p(s: &str) -> Option<i128> {
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            i128::from_str_radix(h, 16).ok()?
        } else {
            s.parse::<i128>().ok()?
        };
        Some(if neg { -v } else { v })
    }
    match (p(a), p(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Does the final value satisfy the request?
fn satisfied(want: &Value, got: &Value, modules_enabled: bool) -> bool {
    match (want, got) {
        (Value::Num(a), Value::Num(b)) => num_eq(a, b),
        // Without module support Kconfig builds an `m` request in.
        (Value::Module, Value::Yes) => !modules_enabled,
        (a, b) => a == b,
    }
}

/// Where and how a symbol is defined in the kernel's Kconfig files.
#[derive(Debug, Clone)]
pub struct SymbolDef {
    pub file: PathBuf,
    pub line: usize,
    /// `depends on` expressions of the definition and of enclosing `if` and
    /// `menu` blocks in the same file.
    pub depends: Vec<String>,
}

/// An index of every `config`/`menuconfig` symbol in a kernel source tree.
#[derive(Debug, Default)]
pub struct KconfigIndex {
    pub symbols: HashMap<String, Vec<SymbolDef>>,
}

impl KconfigIndex {
    pub fn scan(src: &Path) -> Result<KconfigIndex> {
        let mut idx = KconfigIndex::default();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(r) => r,
                Err(_) => continue,
            };
            for e in rd.flatten() {
                let p = e.path();
                let name = e.file_name();
                let name = name.to_string_lossy();
                let ft = match e.file_type() {
                    Ok(t) => t,
                    Err(_) => continue,
                };
                if ft.is_dir() {
                    if !(name.starts_with('.') || name == "Documentation" || name == "tools") {
                        stack.push(p);
                    }
                } else if ft.is_file() && name.starts_with("Kconfig") {
                    if let Ok(text) = std::fs::read_to_string(&p) {
                        let rel = p.strip_prefix(src).unwrap_or(&p).to_path_buf();
                        idx.add_file(&rel, &text);
                    }
                }
            }
        }
        Ok(idx)
    }

    /// Parse one Kconfig file's symbol definitions (a light parser: enough to
    /// name each symbol's dependencies, not to evaluate the language).
    pub fn add_file(&mut self, rel: &Path, text: &str) {
        // Condition stack: (kind, expr) for `if` and `menu` blocks.
        let mut blocks: Vec<(&'static str, Option<String>)> = Vec::new();
        let mut current: Option<(String, SymbolDef)> = None;
        let mut in_menu_header = false;
        let mut help_indent: Option<usize> = None;
        let finish = |cur: &mut Option<(String, SymbolDef)>, idx: &mut KconfigIndex| {
            if let Some((sym, def)) = cur.take() {
                idx.symbols.entry(sym).or_default().push(def);
            }
        };
        for (i, raw) in text.lines().enumerate() {
            let indent = raw.len() - raw.trim_start().len();
            let line = raw.trim();
            if let Some(hi) = help_indent {
                if line.is_empty() || indent > hi {
                    continue;
                }
                help_indent = None;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let word = line.split_whitespace().next().unwrap_or("");
            let rest = line[word.len()..].trim();
            match word {
                "config" | "menuconfig" => {
                    finish(&mut current, self);
                    in_menu_header = false;
                    let mut depends = Vec::new();
                    for (_, e) in &blocks {
                        if let Some(e) = e {
                            depends.push(e.clone());
                        }
                    }
                    current = Some((
                        rest.to_string(),
                        SymbolDef {
                            file: rel.to_path_buf(),
                            line: i + 1,
                            depends,
                        },
                    ));
                }
                "if" => {
                    finish(&mut current, self);
                    in_menu_header = false;
                    blocks.push(("if", Some(rest.to_string())));
                }
                "endif" => {
                    finish(&mut current, self);
                    if let Some(pos) = blocks.iter().rposition(|(k, _)| *k == "if") {
                        blocks.truncate(pos);
                    }
                }
                "menu" => {
                    finish(&mut current, self);
                    blocks.push(("menu", None));
                    in_menu_header = true;
                }
                "endmenu" => {
                    finish(&mut current, self);
                    in_menu_header = false;
                    if let Some(pos) = blocks.iter().rposition(|(k, _)| *k == "menu") {
                        blocks.truncate(pos);
                    }
                }
                "choice" | "endchoice" | "source" | "comment" | "mainmenu" => {
                    finish(&mut current, self);
                    in_menu_header = false;
                }
                "help" | "---help---" => help_indent = Some(indent),
                "depends" => {
                    let expr = rest.strip_prefix("on").unwrap_or(rest).trim().to_string();
                    if let Some((_, def)) = current.as_mut() {
                        def.depends.push(expr);
                    } else if in_menu_header {
                        if let Some(last) = blocks.last_mut() {
                            last.1 = Some(expr);
                        }
                    }
                }
                _ => {}
            }
        }
        finish(&mut current, self);
    }

    pub fn contains(&self, sym: &str) -> bool {
        self.symbols.contains_key(sym)
    }

    /// Explain why `sym` could not be set: each dependency expression that
    /// evaluates to n on the final config, with the value of every symbol it
    /// names (like menuconfig's help).
    pub fn explain(&self, sym: &str, cfg: &DotConfig) -> Option<String> {
        let defs = self.symbols.get(sym)?;
        let ident = regex::Regex::new(r"[A-Za-z0-9_]+").expect("static regex");
        let mut parts = Vec::new();
        for def in defs {
            for expr in &def.depends {
                if eval_expr(expr, cfg) != Some(0) {
                    continue; // met, or beyond this light evaluator
                }
                let mut vals: Vec<String> = Vec::new();
                for m in ident.find_iter(expr) {
                    let t = m.as_str();
                    if matches!(t, "y" | "n" | "m") || t.chars().all(|c| c.is_ascii_digit()) {
                        continue;
                    }
                    let v = format!("{t}={}", cfg.get(t));
                    if !vals.contains(&v) {
                        vals.push(v);
                    }
                }
                parts.push(format!(
                    "depends on {expr} [{}] ({}:{})",
                    vals.join(", "),
                    def.file.display(),
                    def.line
                ));
            }
        }
        if parts.is_empty() {
            None
        } else {
            Some(parts.join("; "))
        }
    }
}

/// Evaluate a Kconfig dependency expression on a final config, as a
/// tristate (n=0, m=1, y=2). `None` when the expression is beyond this
/// evaluator (it then isn't reported rather than reported wrongly).
pub fn eval_expr(expr: &str, cfg: &DotConfig) -> Option<u8> {
    let mut toks = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if expr[i..].starts_with("&&")
            || expr[i..].starts_with("||")
            || expr[i..].starts_with("!=")
        {
            toks.push(expr[i..i + 2].to_string());
            i += 2;
        } else if "!()=".contains(c) {
            toks.push(c.to_string());
            i += 1;
        } else if c == '"' {
            let end = expr[i + 1..].find('"')? + i + 1;
            toks.push(expr[i..=end].to_string());
            i = end + 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            toks.push(expr[start..i].to_string());
        } else {
            return None;
        }
    }
    let mut p = Parser { toks, pos: 0, cfg };
    let v = p.or()?;
    (p.pos == p.toks.len()).then_some(v)
}

struct Parser<'a> {
    toks: Vec<String>,
    pos: usize,
    cfg: &'a DotConfig,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }
    fn or(&mut self) -> Option<u8> {
        let mut v = self.and()?;
        while self.peek() == Some("||") {
            self.pos += 1;
            v = v.max(self.and()?);
        }
        Some(v)
    }
    fn and(&mut self) -> Option<u8> {
        let mut v = self.unary()?;
        while self.peek() == Some("&&") {
            self.pos += 1;
            v = v.min(self.unary()?);
        }
        Some(v)
    }
    fn unary(&mut self) -> Option<u8> {
        match self.peek()? {
            "!" => {
                self.pos += 1;
                Some(2 - self.unary()?)
            }
            "(" => {
                self.pos += 1;
                let v = self.or()?;
                (self.peek() == Some(")")).then(|| self.pos += 1)?;
                Some(v)
            }
            _ => {
                let a = self.atom_text()?;
                match self.peek() {
                    Some("=") | Some("!=") => {
                        let neg = self.peek() == Some("!=");
                        self.pos += 1;
                        let b = self.atom_text()?;
                        let eq = a == b;
                        Some(if eq != neg { 2 } else { 0 })
                    }
                    _ => Some(tristate(&a)),
                }
            }
        }
    }
    /// A symbol's value as text (`y`, `m`, `n`, a string or number).
    fn atom_text(&mut self) -> Option<String> {
        let t = self.toks.get(self.pos)?.clone();
        if matches!(t.as_str(), "&&" | "||" | "!" | "(" | ")" | "=" | "!=") {
            return None;
        }
        self.pos += 1;
        if let Some(s) = t.strip_prefix('"') {
            return Some(s.trim_end_matches('"').to_string());
        }
        if matches!(t.as_str(), "y" | "m" | "n") || t.chars().all(|c| c.is_ascii_digit()) {
            return Some(t);
        }
        Some(match self.cfg.get(&t) {
            Value::Yes => "y".into(),
            Value::Module => "m".into(),
            Value::No => "n".into(),
            Value::Str(s) => s,
            Value::Num(n) => n,
        })
    }
}

fn tristate(v: &str) -> u8 {
    match v {
        "y" => 2,
        "m" => 1,
        _ => 0,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    pub severity: Severity,
    pub location: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {sev}: {}", self.location, self.message)
    }
}

/// Compare the request with the final `.config`.
pub fn verify(merged: &Merged, cfg: &DotConfig, index: &KconfigIndex) -> Vec<Problem> {
    let modules = cfg.enabled("MODULES");
    let mut problems = Vec::new();
    for s in merged.settings.values() {
        let got = cfg.get(&s.symbol);
        if !index.contains(&s.symbol) {
            // `n` for a symbol that doesn't exist holds trivially.
            if s.value == Value::No {
                continue;
            }
            problems.push(Problem {
                severity: if s.optional {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                location: s.location(),
                message: format!(
                    "CONFIG_{} does not exist in this kernel source{}",
                    s.symbol,
                    if s.optional {
                        " (optional: ignored)"
                    } else {
                        ""
                    }
                ),
            });
            continue;
        }
        if satisfied(&s.value, &got, modules) {
            continue;
        }
        let why = index
            .explain(&s.symbol, cfg)
            .map(|w| format!("; {w}"))
            .unwrap_or_else(|| "; Kconfig names no unmet dependency (a `select`, a choice or a range may override it)".into());
        problems.push(Problem {
            severity: if s.optional {
                Severity::Warning
            } else {
                Severity::Error
            },
            location: s.location(),
            message: format!(
                "CONFIG_{}={} was requested but the final .config has {}{why}",
                s.symbol, s.value, got
            ),
        });
    }
    problems
}

/// Fail if any problem is an error, listing all of them.
pub fn check_problems(problems: &[Problem]) -> Result<()> {
    let errors: Vec<_> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "kernel config verification failed: {} requested option(s) did not hold:\n",
        errors.len()
    );
    for p in problems {
        msg.push_str(&format!("  {p}\n"));
    }
    bail!(msg.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Setting>> {
        parse_fragment_text(Path::new("frag.config"), text)
    }

    #[test]
    fn parses_every_value_form() {
        let s = p("# c\nCONFIG_A=y\nCONFIG_B=m\nCONFIG_C=n\nCONFIG_D=\"x y\"\nCONFIG_E=0x10\nCONFIG_F=-1\n# CONFIG_G is not set\nCONFIG_H=y  # optional: only some trees\n")
            .unwrap();
        let vals: Vec<_> = s
            .iter()
            .map(|s| (s.symbol.as_str(), s.value.clone(), s.optional, s.line))
            .collect();
        assert_eq!(
            vals,
            vec![
                ("A", Value::Yes, false, 2),
                ("B", Value::Module, false, 3),
                ("C", Value::No, false, 4),
                ("D", Value::Str("x y".into()), false, 5),
                ("E", Value::Num("0x10".into()), false, 6),
                ("F", Value::Num("-1".into()), false, 7),
                ("G", Value::No, false, 8),
                ("H", Value::Yes, true, 9),
            ]
        );
    }

    #[test]
    fn bad_lines_name_file_line_and_problem() {
        let e = p("CONFIG_A=y\nFOO=bar\n").unwrap_err().to_string();
        assert!(e.starts_with("frag.config:2:"), "{e}");
        assert!(e.contains("not a config line"), "{e}");
        let e = p("CONFIG_A=yes\n").unwrap_err().to_string();
        assert!(e.contains("frag.config:1:") && e.contains("`yes`"), "{e}");
        let e = p("\n\nCONFIG_lower=y\n").unwrap_err().to_string();
        assert!(
            e.contains("frag.config:3:") && e.contains("bad symbol"),
            "{e}"
        );
        let e = p("CONFIG_A\n").unwrap_err().to_string();
        assert!(e.contains("no `=`"), "{e}");
        let e = p("# CONFIG_A=y\n").unwrap_err().to_string();
        assert!(e.contains("commented-out"), "{e}");
        let e = p("CONFIG_S=\"a\"b\"\n").unwrap_err().to_string();
        assert!(e.contains("CONFIG_S has value"), "{e}");
    }

    #[test]
    fn hash_in_string_is_not_a_comment() {
        let s = p("CONFIG_S=\"a#b\" # optional\n").unwrap();
        assert_eq!(s[0].value, Value::Str("a#b".into()));
        assert!(s[0].optional);
    }

    fn frag(name: &str, text: &str) -> Fragment {
        Fragment {
            name: name.into(),
            path: PathBuf::from(format!("{name}.config")),
            settings: parse_fragment_text(Path::new(&format!("{name}.config")), text).unwrap(),
        }
    }

    #[test]
    fn sets_and_plus_expand() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("default"), "# the set\nbase\ndax # pmem\n").unwrap();
        std::fs::write(t.path().join("big"), "default\ndebug\n").unwrap();
        let e = |v: &[&str]| {
            expand_fragment_names(
                t.path(),
                &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        assert_eq!(e(&["default"]), ["base", "dax"]);
        assert_eq!(e(&["+debug"]), ["base", "dax", "debug"]);
        assert_eq!(e(&["default", "debug", "base"]), ["base", "dax", "debug"]);
        assert_eq!(e(&["big"]), ["base", "dax", "debug"]);
        assert_eq!(e(&["fuse", "./x.config"]), ["fuse", "./x.config"]);
        std::fs::write(t.path().join("loop"), "loop\n").unwrap();
        let err = expand_fragment_names(t.path(), &["loop".to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("includes itself"), "{err}");
    }

    #[test]
    fn merge_detects_conflicts_and_renders() {
        let m = merge(&[
            frag("a", "CONFIG_X=y\nCONFIG_Y=3\n"),
            frag("b", "CONFIG_X=y\n# CONFIG_Z is not set\n"),
        ])
        .unwrap();
        assert_eq!(
            m.render(),
            "CONFIG_X=y\nCONFIG_Y=3\n# CONFIG_Z is not set\n"
        );
        let e = merge(&[frag("a", "CONFIG_X=y\n"), frag("b", "\nCONFIG_X=n\n")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.config:1") && e.contains("b.config:2"), "{e}");
    }

    #[test]
    fn optional_only_if_every_mention_is() {
        let m = merge(&[
            frag("a", "CONFIG_X=y # optional\n"),
            frag("b", "CONFIG_X=y\n"),
        ])
        .unwrap();
        assert!(!m.settings["X"].optional);
    }

    const KCONFIG: &str = "\
menu \"Things\"
\tdepends on NET

config FOO
\ttristate \"foo\"
\tdepends on BAR && BAZ
\thelp
\t  depends on NOT_A_DEP this is help text

if QUX
config INNER
\tbool \"inner\"
endif
endmenu

config FREE
\tbool \"free\"
";

    #[test]
    fn kconfig_index_collects_dependencies_from_blocks() {
        let mut idx = KconfigIndex::default();
        idx.add_file(Path::new("x/Kconfig"), KCONFIG);
        let foo = &idx.symbols["FOO"][0];
        assert_eq!(
            foo.depends,
            vec!["NET".to_string(), "BAR && BAZ".to_string()]
        );
        assert_eq!(foo.line, 4);
        assert_eq!(
            idx.symbols["INNER"][0].depends,
            vec!["NET".to_string(), "QUX".to_string()]
        );
        assert!(idx.symbols["FREE"][0].depends.is_empty());
    }

    #[test]
    fn verify_reports_dropped_missing_and_optional() {
        let mut idx = KconfigIndex::default();
        idx.add_file(Path::new("x/Kconfig"), KCONFIG);
        let m = merge(&[frag("f", "CONFIG_FOO=y\nCONFIG_FREE=y\nCONFIG_GHOST=y\nCONFIG_MAYBE=y # optional\n# CONFIG_GONE is not set\n")])
            .unwrap();
        let cfg = DotConfig::parse(
            "CONFIG_NET=y\nCONFIG_BAR=y\n# CONFIG_BAZ is not set\nCONFIG_FREE=y\n",
        );
        let probs = verify(&m, &cfg, &idx);
        let text: Vec<String> = probs.iter().map(|p| p.to_string()).collect();
        assert_eq!(probs.len(), 3, "{text:#?}");
        assert!(
            text[0].contains(
                "f.config:1: error: CONFIG_FOO=y was requested but the final .config has n"
            ),
            "{}",
            text[0]
        );
        assert!(
            text[0].contains("depends on BAR && BAZ [BAR=y, BAZ=n]"),
            "{}",
            text[0]
        );
        assert!(
            !text[0].contains("NOT_A_DEP"),
            "help text must not count: {}",
            text[0]
        );
        assert!(
            text[1].contains("error: CONFIG_GHOST does not exist"),
            "{}",
            text[1]
        );
        assert!(
            text[2].contains("warning: CONFIG_MAYBE does not exist")
                && text[2].contains("optional"),
            "{}",
            text[2]
        );
        let e = check_problems(&probs).unwrap_err().to_string();
        assert!(e.contains("2 requested option(s)"), "{e}");
        assert!(check_problems(&probs[2..]).is_ok());
    }

    #[test]
    fn module_request_is_met_by_builtin_without_modules() {
        let mut idx = KconfigIndex::default();
        idx.add_file(
            Path::new("K"),
            "config A\n\ttristate \"a\"\nconfig MODULES\n\tbool \"m\"\n",
        );
        let m = merge(&[frag("f", "CONFIG_A=m\n")]).unwrap();
        assert!(verify(&m, &DotConfig::parse("CONFIG_A=y\n"), &idx).is_empty());
        assert_eq!(
            verify(
                &m,
                &DotConfig::parse("CONFIG_A=y\nCONFIG_MODULES=y\n"),
                &idx
            )
            .len(),
            1
        );
    }

    #[test]
    fn dependency_expressions_evaluate_as_tristates() {
        let cfg = DotConfig::parse("CONFIG_A=y\nCONFIG_M=m\nCONFIG_S=\"x\"\n");
        assert_eq!(eval_expr("A && B", &cfg), Some(0));
        assert_eq!(eval_expr("A || B", &cfg), Some(2));
        assert_eq!(eval_expr("B || !B", &cfg), Some(2));
        assert_eq!(eval_expr("A && M", &cfg), Some(1));
        assert_eq!(eval_expr("!(A && B)", &cfg), Some(2));
        assert_eq!(eval_expr("S = \"x\"", &cfg), Some(2));
        assert_eq!(eval_expr("A != y", &cfg), Some(0));
        assert_eq!(eval_expr("A &&", &cfg), None);
        // A met `X || !X` must not be blamed for a dropped option.
        let mut idx = KconfigIndex::default();
        idx.add_file(
            Path::new("K"),
            "config C\n\tbool \"c\"\n\tdepends on D\n\tdepends on E || !E\n",
        );
        let why = idx.explain("C", &DotConfig::parse("")).unwrap();
        assert_eq!(why, "depends on D [D=n] (K:1)");
    }

    #[test]
    fn numbers_compare_by_value() {
        let mut idx = KconfigIndex::default();
        idx.add_file(Path::new("K"), "config N\n\tint \"n\"\n");
        let m = merge(&[frag("f", "CONFIG_N=0x10\n")]).unwrap();
        assert!(verify(&m, &DotConfig::parse("CONFIG_N=16\n"), &idx).is_empty());
    }
}
