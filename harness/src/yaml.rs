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
        match e.location() {
            Some(loc) => anyhow!(
                "{}:{}:{}: {msg}",
                path.display(),
                loc.line() as usize + line_offset,
                loc.column()
            ),
            None => anyhow!("{}: {msg}", path.display()),
        }
    })
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
