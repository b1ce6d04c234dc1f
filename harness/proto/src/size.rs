//! Sizes as people write them, one syntax everywhere: case headers
//! (`pmem: 256M`), scenarios (fmap offsets and lengths) and the guest tools.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A byte count: an integer, `0x` hex, or a number with a binary suffix
/// (`4K`, `2M`, `1G`, `1T`, also `2MiB`). Offsets and lengths of fmaps are
/// written this way, so typos must fail loudly rather than turn into 0.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl Size {
    /// Parses the text form; the error says what was wrong.
    pub fn parse(text: &str) -> Result<u64, String> {
        let t = text.trim();
        let bad =
            || format!("bad size '{text}': expected a number like 4096, 0x1000, 4K, 2M or 1G");
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return u64::from_str_radix(hex, 16).map_err(|_| bad());
        }
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, suffix) = t.split_at(digits_end);
        if num.is_empty() {
            return Err(bad());
        }
        let shift = match suffix {
            "" | "B" => 0,
            "K" | "k" | "KiB" => 10,
            "M" | "m" | "MiB" => 20,
            "G" | "g" | "GiB" => 30,
            "T" | "t" | "TiB" => 40,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        n.checked_mul(1u64 << shift)
            .ok_or_else(|| format!("size '{text}' does not fit in 64 bits"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 4096, 0x1000, 4K, 2M or 1G")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("size {v} does not fit in 64 bits")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_errors() {
        assert_eq!(Size::parse("4096"), Ok(4096));
        assert_eq!(Size::parse("0x1000"), Ok(4096));
        assert_eq!(Size::parse("4K"), Ok(4096));
        assert_eq!(Size::parse("2M"), Ok(2 << 20));
        assert_eq!(Size::parse("256m"), Ok(256 << 20));
        assert_eq!(Size::parse("1G"), Ok(1 << 30));
        assert_eq!(Size::parse("2MiB"), Ok(2 << 20));
        assert!(Size::parse("2X").unwrap_err().contains("bad size '2X'"));
        assert!(Size::parse("").is_err());
        assert!(Size::parse("99999999999T")
            .unwrap_err()
            .contains("does not fit in 64 bits"));
    }
}
