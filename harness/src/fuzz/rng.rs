//! A small deterministic random source: a run is reproduced from its seed
//! (printed by `cargo xtask fuzz-parsers`), without a dependency.

/// SplitMix64: fast, statistically sound for test generation, one word of
/// state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from the clock, for runs that need not repeat.
    pub fn seed_from_time() -> u64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_secs() ^ (u64::from(t.subsec_nanos()) << 20) ^ u64::from(std::process::id())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True `num` times in `den`.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den as usize) < num as usize
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    /// A number that is often small, sometimes large: sizes of things.
    pub fn small(&mut self, max: usize) -> usize {
        match self.below(4) {
            0 => self.below(3.min(max + 1)),
            1 | 2 => self.below(8.min(max + 1)),
            _ => self.below(max + 1),
        }
    }

    /// A 64-bit value near an edge (0, powers of two, all ones) or random.
    pub fn edgy_u64(&mut self) -> u64 {
        let bit = self.below(64) as u32;
        match self.below(8) {
            0 => 0,
            1 => 1u64 << bit,
            2 => (1u64 << bit).wrapping_sub(1),
            3 => (1u64 << bit).wrapping_add(1),
            4 => u64::MAX - self.below(4) as u64,
            5 => u64::from(u32::MAX) + self.below(3) as u64 - 1,
            6 => (self.below(64) as u64) << 21,
            _ => self.next_u64(),
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_sequence() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(a.below(0), 0);
        assert!((0..100).all(|_| a.between(3, 5) >= 3 && a.between(3, 5) <= 5));
    }
}
