//! A target that fails on purpose, like the `selftest` cases: it shows that
//! the driver catches a panic and an error without its line, and that
//! `cargo xtask fuzz-parsers --target selftest` exits 1 with the inputs
//! saved. Never part of a full run.

use super::{located, Fuzz, Outcome, Rng};
use std::path::Path;

/// Panics on `!`, forgets the line on `?`, refuses `a` properly, accepts `b`.
pub struct Faulty;

impl Faulty {
    pub fn new() -> anyhow::Result<Faulty> {
        Ok(Faulty)
    }
}

impl Fuzz for Faulty {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        vec![*rng.pick(b"ab!?")]
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        let file = Path::new("selftest.yaml");
        match input {
            b"!" => panic!("the selftest parser falls over on `!`"),
            b"?" => located(&anyhow::anyhow!("selftest.yaml: bad value"), file),
            b"a" => located(&anyhow::anyhow!("selftest.yaml:3:1: bad value"), file),
            _ => Outcome::Accepted,
        }
    }
}
