//! YAML documents generated from a format's grammar: the known keys with
//! values of the right shape most of the time, and of the wrong shape,
//! unknown keys, duplicates, anchors and aliases some of the time, written
//! in block or flow style with any quoting. Inputs from the grammar reach
//! the checks that come after parsing (sizes, names, cross references)
//! far more often than random text does.

use super::mutate::{odd_number, odd_string};
use super::rng::Rng;

/// The shape of a value.
#[derive(Debug, Clone)]
pub enum Schema {
    /// A string; the samples are plausible values, odd strings are mixed in.
    Str(&'static [&'static str]),
    /// A number; the samples are plausible values, odd numbers are mixed in.
    Num(&'static [&'static str]),
    Bool,
    /// One of these words (a serde enum), sometimes a wrong one.
    Enum(&'static [&'static str]),
    List(Box<Schema>),
    /// A struct: known keys, each with its shape.
    Map(Vec<(&'static str, Schema)>),
    /// A map from free keys (the first shape) to values (the second).
    Dict(Box<Schema>, Box<Schema>),
    /// Any of these shapes.
    OneOf(Vec<Schema>),
}

impl Schema {
    pub fn list(s: Schema) -> Schema {
        Schema::List(Box::new(s))
    }
    pub fn dict(k: Schema, v: Schema) -> Schema {
        Schema::Dict(Box::new(k), Box::new(v))
    }
}

/// A generated YAML value, before rendering.
#[derive(Debug, Clone)]
pub enum Node {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
    /// `*name` of an anchor set earlier.
    Alias(String),
    /// `&name` on a node.
    Anchored(String, Box<Node>),
}

/// A value of `schema`.
pub fn generate(rng: &mut Rng, schema: &Schema, depth: usize) -> Node {
    // Sometimes a value of the wrong shape, whatever the schema says.
    if rng.chance(1, 25) {
        return wrong(rng, depth);
    }
    match schema {
        Schema::Str(samples) => Node::Scalar(if samples.is_empty() || rng.chance(1, 6) {
            odd_string(rng)
        } else {
            rng.pick(samples).to_string()
        }),
        Schema::Num(samples) => Node::Scalar(if samples.is_empty() || rng.chance(1, 5) {
            odd_number(rng)
        } else {
            rng.pick(samples).to_string()
        }),
        Schema::Bool => Node::Scalar(
            rng.pick(&["true", "false", "yes", "no", "1", "on", "True"])
                .to_string(),
        ),
        Schema::Enum(words) => Node::Scalar(if rng.chance(1, 8) {
            let w = rng.pick(words);
            match rng.below(3) {
                0 => w.to_uppercase(),
                1 => format!("{w}x"),
                _ => odd_string(rng),
            }
        } else {
            rng.pick(words).to_string()
        }),
        Schema::List(item) => {
            let n = if depth > 4 { 0 } else { rng.small(6) };
            Node::Seq((0..n).map(|_| generate(rng, item, depth + 1)).collect())
        }
        Schema::Map(fields) => {
            let mut out = Vec::new();
            for (k, s) in fields {
                if depth <= 5 && rng.chance(2, 3) {
                    out.push((k.to_string(), generate(rng, s, depth + 1)));
                }
            }
            if rng.chance(1, 12) {
                out.push((odd_key(rng), generate(rng, &Schema::Str(&[]), depth + 1)));
            }
            if !out.is_empty() && rng.chance(1, 20) {
                // A duplicate key.
                let (k, v) = out[rng.below(out.len())].clone();
                out.push((k, v));
            }
            shuffle(rng, &mut out);
            Node::Map(out)
        }
        Schema::Dict(k, v) => {
            let n = if depth > 4 { 0 } else { rng.small(5) };
            Node::Map(
                (0..n)
                    .map(|_| {
                        let key = match generate(rng, k, depth + 1) {
                            Node::Scalar(s) => s,
                            _ => odd_key(rng),
                        };
                        (key, generate(rng, v, depth + 1))
                    })
                    .collect(),
            )
        }
        Schema::OneOf(options) => {
            let i = rng.below(options.len());
            generate(rng, &options[i], depth)
        }
    }
}

fn odd_key(rng: &mut Rng) -> String {
    rng.pick(&[
        "x",
        "descripton",
        "Type",
        "extra",
        "tree ",
        "<<",
        "? k",
        "1",
        "",
    ])
    .to_string()
}

fn wrong(rng: &mut Rng, depth: usize) -> Node {
    match rng.below(5) {
        0 => Node::Scalar(odd_number(rng)),
        1 => Node::Scalar(odd_string(rng)),
        2 if depth < 6 => Node::Seq(vec![wrong(rng, depth + 1)]),
        3 if depth < 6 => Node::Map(vec![("k".into(), wrong(rng, depth + 1))]),
        _ => Node::Scalar("~".into()),
    }
}

fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
}

/// Sprinkles anchors and aliases into a tree (and now and then nests
/// aliases of aliases, the shape of an exponential "billion laughs").
pub fn with_aliases(rng: &mut Rng, node: Node) -> Node {
    fn walk(rng: &mut Rng, n: Node, names: &mut Vec<String>) -> Node {
        let n = match n {
            Node::Seq(v) => Node::Seq(v.into_iter().map(|x| walk(rng, x, names)).collect()),
            Node::Map(v) => Node::Map(
                v.into_iter()
                    .map(|(k, x)| (k, walk(rng, x, names)))
                    .collect(),
            ),
            other => other,
        };
        if !names.is_empty() && rng.chance(1, 10) {
            return Node::Alias(rng.pick(names).clone());
        }
        if rng.chance(1, 10) {
            let name = format!("a{}", names.len());
            names.push(name.clone());
            return Node::Anchored(name, Box::new(n));
        }
        n
    }
    if rng.chance(1, 8) {
        // Nine levels of ten aliases each.
        let mut doc = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            doc.push_str(&format!(
                "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
            ));
        }
        return Node::Scalar(doc);
    }
    walk(rng, node, &mut Vec::new())
}

/// Renders a node as a YAML document, in a random mix of styles.
pub fn render(rng: &mut Rng, node: &Node) -> String {
    let mut out = String::new();
    if let Node::Scalar(s) = node {
        // A whole document given as text (the alias bomb).
        if s.contains('\n') {
            return s.clone();
        }
    }
    let indent = *rng.pick(&[2, 2, 2, 4, 1, 3]);
    block(rng, node, 0, indent, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(rng: &mut Rng, s: &str) -> String {
    let plain_ok = !s.is_empty()
        && !s.contains([
            '\n', '#', ':', '\'', '"', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', '%', '@',
            '`',
        ])
        && !s.starts_with(['-', '?', ' '])
        && !s.ends_with(' ');
    match rng.below(10) {
        0..=5 if plain_ok => s.to_string(),
        // Plain even when it is not safe: the parser must say why.
        0 => s.to_string(),
        1..=6 => format!("'{}'", s.replace('\'', "''")),
        _ => {
            let mut q = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => q.push_str("\\\""),
                    '\\' => q.push_str("\\\\"),
                    '\n' => q.push_str("\\n"),
                    '\t' => q.push_str("\\t"),
                    c if (c as u32) < 0x20 => q.push_str(&format!("\\x{:02x}", c as u32)),
                    c => q.push(c),
                }
            }
            q.push('"');
            q
        }
    }
}

fn flow(rng: &mut Rng, node: &Node, out: &mut String) {
    match node {
        Node::Scalar(s) => out.push_str(&scalar(rng, s)),
        Node::Alias(a) => out.push_str(&format!("*{a}")),
        Node::Anchored(a, n) => {
            out.push_str(&format!("&{a} "));
            flow(rng, n, out);
        }
        Node::Seq(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(rng, x, out);
            }
            out.push(']');
        }
        Node::Map(v) => {
            out.push('{');
            for (i, (k, x)) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&scalar(rng, k));
                out.push_str(": ");
                flow(rng, x, out);
            }
            out.push('}');
        }
    }
}

/// Writes `node` as the value after a `key:` or `- ` at indentation `at`.
fn block(rng: &mut Rng, node: &Node, at: usize, step: usize, out: &mut String) {
    let pad = " ".repeat(at);
    match node {
        Node::Seq(v) if !v.is_empty() && rng.chance(3, 4) => {
            for x in v {
                out.push_str(&format!("{pad}-"));
                match x {
                    Node::Seq(_) | Node::Map(_) if rng.chance(1, 2) => {
                        out.push('\n');
                        block(rng, x, at + step, step, out);
                    }
                    _ => flow_line(rng, x, out),
                }
            }
        }
        Node::Map(v) if !v.is_empty() && rng.chance(3, 4) => {
            for (k, x) in v {
                out.push_str(&format!("{pad}{}:", scalar(rng, k)));
                match x {
                    Node::Seq(s) if !s.is_empty() && rng.chance(2, 3) => {
                        out.push('\n');
                        // Sequences under a key may sit at the key's column.
                        let inner = if rng.chance(1, 2) { at } else { at + step };
                        block(rng, x, inner, step, out);
                    }
                    Node::Map(m) if !m.is_empty() && rng.chance(2, 3) => {
                        out.push('\n');
                        block(rng, x, at + step, step, out);
                    }
                    Node::Scalar(s) if s.contains('\n') || rng.chance(1, 30) => {
                        out.push_str(&format!(" {}\n", rng.pick(&["|", ">", "|-", ">-"])));
                        for l in s.split('\n') {
                            out.push_str(&format!("{pad}{}{l}\n", " ".repeat(step)));
                        }
                    }
                    _ => flow_line(rng, x, out),
                }
            }
        }
        other => {
            let mut s = String::new();
            flow(rng, other, &mut s);
            out.push_str(&format!("{pad}{s}\n"));
        }
    }
}

/// A document of `schema`: generated, sometimes with anchors, rendered.
pub fn document(rng: &mut Rng, schema: &Schema) -> String {
    let n = generate(rng, schema, 0);
    let n = if rng.chance(1, 10) {
        with_aliases(rng, n)
    } else {
        n
    };
    render(rng, &n)
}

/// A YAML target's scratch file: where the parser under test reads the
/// input, the repository's examples of the format, and its grammar.
pub struct YamlFile {
    _dir: tempfile::TempDir,
    /// The scratch checkout (the temporary directory's root).
    pub root: std::path::PathBuf,
    /// The file the parser reads, under `root`.
    pub path: std::path::PathBuf,
    examples: Vec<String>,
    schema: Schema,
}

impl YamlFile {
    /// Examples from `rel_dir` of the repository (the files `keep` takes);
    /// the input goes to `root/file`.
    pub fn new(
        rel_dir: &str,
        keep: impl Fn(&str) -> bool,
        file: &str,
        schema: Schema,
    ) -> anyhow::Result<YamlFile> {
        let ex = super::examples(rel_dir, keep)?;
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let path = root.join(file);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        Ok(YamlFile {
            _dir: dir,
            root,
            path,
            examples: ex.into_iter().map(|(_, t)| t).collect(),
            schema,
        })
    }

    /// Half mutated examples, half documents from the grammar (a quarter
    /// of those spliced with an example).
    pub fn input(&self, rng: &mut Rng) -> Vec<u8> {
        if rng.chance(1, 2) {
            super::mutated(rng, &self.examples)
        } else {
            let doc = document(rng, &self.schema);
            if rng.chance(1, 4) {
                let donor = rng.pick(&self.examples).clone();
                super::mutate::text(rng, &doc, &donor)
            } else {
                doc.into_bytes()
            }
        }
    }

    /// Writes the input where the parser reads it; false when it cannot
    /// (the input is then skipped as accepted).
    pub fn put(&self, input: &[u8]) -> bool {
        std::fs::write(&self.path, super::as_text(input).as_bytes()).is_ok()
    }
}

/// ` VALUE\n`: a value in flow style, after a `-` or a key.
fn flow_line(rng: &mut Rng, x: &Node, out: &mut String) {
    out.push(' ');
    let mut s = String::new();
    flow(rng, x, &mut s);
    out.push_str(&s);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_documents_often_parse_back() {
        let schema = Schema::Map(vec![
            ("name", Schema::Str(&["a", "b c"])),
            ("n", Schema::Num(&["1", "2"])),
            ("list", Schema::list(Schema::Enum(&["x", "y"]))),
            (
                "sub",
                Schema::Map(vec![("k", Schema::Bool), ("v", Schema::Str(&["q"]))]),
            ),
        ]);
        let mut rng = Rng::new(3);
        let mut ok = 0;
        for _ in 0..300 {
            let doc = document(&mut rng, &schema);
            if serde_saphyr::from_str::<serde_json::Value>(&doc).is_ok() {
                ok += 1;
            }
        }
        assert!(ok > 150, "{ok} of 300 parse");
    }
}
