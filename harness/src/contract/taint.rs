//! Kernel taint: a catch-all behind report parsing. A taint bit that a case
//! set without any recognised report means the kernel complained in a way
//! the parser does not know; the case fails naming the bits.

/// Bit, letter and meaning, as in the kernel's documentation of
/// /proc/sys/kernel/tainted.
pub const BITS: &[(u32, char, &str)] = &[
    (0, 'P', "proprietary module loaded"),
    (1, 'F', "module force loaded"),
    (2, 'S', "kernel running on an out of specification system"),
    (3, 'R', "module force unloaded"),
    (4, 'M', "machine check exception"),
    (5, 'B', "bad page referenced or unexpected page flags"),
    (6, 'U', "taint requested by user space"),
    (7, 'D', "kernel died recently (oops or BUG)"),
    (8, 'A', "ACPI table overridden"),
    (9, 'W', "kernel issued a warning"),
    (10, 'C', "staging driver loaded"),
    (11, 'I', "firmware bug worked around"),
    (12, 'O', "out-of-tree module loaded"),
    (13, 'E', "unsigned module loaded"),
    (14, 'L', "soft lockup occurred"),
    (15, 'K', "kernel live patched"),
    (16, 'X', "auxiliary taint"),
    (17, 'T', "built with struct randomization plugin"),
    (18, 'N', "in-kernel test run"),
    (
        19,
        'J',
        "userspace used a mutating debug operation in fwctl",
    ),
];

/// `W (kernel issued a warning), L (soft lockup occurred)` for the bits set
/// in `mask`; unknown bits by number.
pub fn describe(mask: u64) -> String {
    let mut out = Vec::new();
    for bit in 0..64u32 {
        if mask & (1u64 << bit) == 0 {
            continue;
        }
        match BITS.iter().find(|(b, _, _)| *b == bit) {
            Some((_, c, what)) => out.push(format!("{c} ({what})")),
            None => out.push(format!("bit {bit}")),
        }
    }
    out.join(", ")
}

/// The kernel's taint mask now, as the guest reads it.
pub fn read() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/tainted")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_bits() {
        assert_eq!(
            super::describe((1 << 9) | (1 << 14)),
            "W (kernel issued a warning), L (soft lockup occurred)"
        );
        assert_eq!(super::describe(1 << 40), "bit 40");
        assert_eq!(super::describe(0), "");
    }
}
