//! `cargo xtask fmap decode FILE`: a GET_FMAP reply (raw or hex) as the
//! profile reads it.

use anyhow::{Context, Result};
use std::path::Path;

pub fn decode(file: &Path, profile: &str) -> Result<i32> {
    let profile = famfs_proto::Profile::parse(profile).map_err(|e| anyhow::anyhow!("{e}"))?;
    let raw = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
        b
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
    };
    let bytes = hex_or_raw(&raw).with_context(|| format!("{}", file.display()))?;
    print!("{}", famfs_proto::describe(&profile, &bytes));
    Ok(0)
}

/// Input that is only hex digits and white space (an `xxd -p` dump, a log
/// excerpt) is hex; anything else is the bytes themselves.
fn hex_or_raw(raw: &[u8]) -> Result<Vec<u8>> {
    let text_hex = !raw.is_empty()
        && raw
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if !text_hex {
        return Ok(raw.to_vec());
    }
    let digits: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| b.is_ascii_hexdigit())
        .collect();
    if !digits.len().is_multiple_of(2) {
        anyhow::bail!("hex input has an odd number of digits ({})", digits.len());
    }
    Ok(digits
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect())
}
