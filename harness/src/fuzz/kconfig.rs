//! Kernel config text: fragments (`kernel-configs/*.config`, strict, with
//! file:line errors), a kernel's `.config` (lenient), Kconfig files (a
//! light parser of the kernel tree's, which may be anyone's) and
//! dependency expressions. One input is fed to all of them: the grammars
//! overlap, and each must survive the others' lines.

use super::{as_text, examples, located, Fuzz, Outcome, Rng};
use crate::kernel::config::{self, DotConfig, Fragment, KconfigIndex};
use anyhow::Result;
use std::path::{Path, PathBuf};

const SYMS: &[&str] = &[
    "DEV_DAX",
    "FS_DAX",
    "FUSE_FS",
    "FUSE_FAMFS_DAX",
    "MODULES",
    "X",
    "A_1",
    "lower",
    "",
    "DEV DAX",
];

const VALUES: &[&str] = &[
    "y",
    "m",
    "n",
    "\"str\"",
    "\"a\\\"b\"",
    "\"\"",
    "\"",
    "\"a\"b\"",
    "42",
    "-1",
    "0x1F",
    "0x",
    "-",
    "1e3",
    "Y",
    "",
    "18446744073709551616",
];

const EXPRS: &[&str] = &[
    "A",
    "!A",
    "A && B",
    "A || !B",
    "(A || B) && C",
    "A = y",
    "A != \"x\"",
    "A=m",
    "((A)",
    "A)",
    "&&",
    "!",
    "\"unterminated",
    "A && (B || (C && (D || E)))",
    "64BIT",
    "é",
    "A $ B",
];

/// A line of fragment, .config or Kconfig text.
fn line(rng: &mut Rng) -> String {
    let sym = rng.pick(SYMS);
    match rng.below(16) {
        0..=3 => format!("CONFIG_{sym}={}", rng.pick(VALUES)),
        4 => format!("CONFIG_{sym}={} # optional", rng.pick(VALUES)),
        5 => format!(
            "CONFIG_{sym}={} # {}",
            rng.pick(VALUES),
            super::mutate::odd_string(rng)
        ),
        6 => format!("# CONFIG_{sym} is not set"),
        7 => format!("# CONFIG_{sym}={}", rng.pick(VALUES)),
        8 => format!("# {}", super::mutate::odd_string(rng)),
        9 => format!("config {sym}"),
        10 => format!("{}depends on {}", " ".repeat(rng.small(8)), rng.pick(EXPRS)),
        11 => format!("if {}", rng.pick(EXPRS)),
        12 => rng
            .pick(&[
                "endif",
                "menu \"x\"",
                "endmenu",
                "choice",
                "endchoice",
                "help",
                "---help---",
                "source \"x\"",
            ])
            .to_string(),
        13 => format!(
            "{}{}",
            " ".repeat(rng.small(12)),
            super::mutate::odd_string(rng)
        ),
        14 => rng.pick(EXPRS).to_string(),
        _ => String::new(),
    }
}

pub struct Kconfig {
    path: PathBuf,
    examples: Vec<String>,
    /// The checkout's fragments, merged with each input.
    real: Vec<Fragment>,
}

impl Kconfig {
    pub fn new() -> Result<Kconfig> {
        let ex = examples("kernel-configs", |n| n.ends_with(".config"))?;
        let mut real = Vec::new();
        for (p, t) in &ex {
            real.push(Fragment {
                name: p.display().to_string(),
                path: p.clone(),
                settings: config::parse_fragment_text(p, t)?,
            });
        }
        Ok(Kconfig {
            path: PathBuf::from("kernel-configs/fuzz.config"),
            examples: ex.into_iter().map(|(_, t)| t).collect(),
            real,
        })
    }
}

impl Fuzz for Kconfig {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        if rng.chance(1, 2) {
            super::mutated(rng, &self.examples)
        } else {
            let n = rng.between(1, 30);
            let mut s: String = (0..n).map(|_| line(rng) + "\n").collect();
            if rng.chance(1, 4) {
                let donor = rng.pick(&self.examples).clone();
                return super::mutate::text(rng, &s, &donor);
            }
            if rng.chance(1, 10) {
                s.pop();
            }
            s.into_bytes()
        }
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        let text = as_text(input);
        // The same text as a .config, a Kconfig file and expressions.
        let cfg = DotConfig::parse(&text);
        let _ = cfg.enabled_symbols();
        let mut index = KconfigIndex::default();
        index.add_file(Path::new("fuzz/Kconfig"), &text);
        for l in text.lines().take(200) {
            let _ = config::eval_expr(l, &cfg);
            let e = l.trim().strip_prefix("depends on").unwrap_or(l);
            let _ = config::eval_expr(e, &cfg);
        }
        for sym in index.symbols.keys().take(50) {
            let _ = index.explain(sym, &cfg);
        }
        let settings = match config::parse_fragment_text(&self.path, &text) {
            Ok(s) => s,
            Err(e) => return located(&e, &self.path),
        };
        let mut frags = self.real.clone();
        frags.push(Fragment {
            name: "fuzz".into(),
            path: self.path.clone(),
            settings,
        });
        match config::merge(&frags) {
            Ok(m) => {
                let _ = m.render();
                let _ = m.hash();
                let problems = config::verify(&m, &cfg, &index);
                for p in &problems {
                    let _ = p.to_string();
                }
                let _ = config::check_problems(&problems);
                Outcome::Accepted
            }
            Err(e) => located(&e, &self.path),
        }
    }
}
