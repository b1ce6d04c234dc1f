//! Kernel log reading and crash detection.
//!
//! Patterns are anchored at the start of a record's message (after the
//! timestamp and an optional subsystem prefix) because a boot log contains
//! decoys that a plain substring search trips on ("report a bug",
//! "Warning: Processor Platform Limit event", "RCU lockdep checking is
//! enabled", `panic=-1` on the command line).

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Panic,
    Oops,
    Bug,
    Gpf,
    Kasan,
    Ubsan,
    Lockdep,
    Warning,
    HungTask,
    SoftLockup,
    RcuStall,
}

impl FindingKind {
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Panic => "panic",
            FindingKind::Oops => "Oops",
            FindingKind::Bug => "BUG",
            FindingKind::Gpf => "general protection fault",
            FindingKind::Kasan => "KASAN",
            FindingKind::Ubsan => "UBSAN",
            FindingKind::Lockdep => "lockdep",
            FindingKind::Warning => "WARNING",
            FindingKind::HungTask => "hung task",
            FindingKind::SoftLockup => "soft lockup",
            FindingKind::RcuStall => "RCU stall",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// A short title in the style of crash triage tools, e.g.
    /// `WARNING in lkdtm_WARNING`.
    pub title: String,
    /// The log line that matched.
    pub line: String,
}

struct Rule {
    kind: FindingKind,
    re: Regex,
}

fn rules() -> &'static [Rule] {
    static R: OnceLock<Vec<Rule>> = OnceLock::new();
    R.get_or_init(|| {
        let r = |kind, pat: &str| Rule { kind, re: Regex::new(pat).expect("static regex") };
        // Order matters: the first rule that matches a line wins.
        vec![
            r(FindingKind::Panic, r"^Kernel panic - not syncing"),
            r(FindingKind::Kasan, r"^BUG: KASAN: "),
            r(FindingKind::Ubsan, r"^UBSAN: "),
            r(FindingKind::SoftLockup, r"^(watchdog: )?BUG: soft lockup"),
            r(FindingKind::Gpf, r"^(Oops: )?general protection fault"),
            r(FindingKind::Bug, r"^kernel BUG at "),
            r(FindingKind::Bug, r"^BUG: "),
            r(FindingKind::Oops, r"^Oops: "),
            r(
                FindingKind::Lockdep,
                r"^WARNING: (possible (circular|recursive) locking|inconsistent lock state|suspicious RCU usage|lock held when returning|bad unlock balance|possible irq lock inversion|held lock freed|.*still has locks held)",
            ),
            r(FindingKind::Warning, r"^WARNING: "),
            r(FindingKind::HungTask, r"^INFO: task \S+ blocked for more than \d+ seconds"),
            r(FindingKind::RcuStall, r"^(rcu: )?INFO: rcu_\w+ (self-)?detected stalls?"),
            r(FindingKind::RcuStall, r"^(rcu: )?INFO: rcu_\w+ detected expedited stalls"),
        ]
    })
}

/// Strip a console timestamp (`[    1.234567] `) or a /dev/kmsg record
/// header (`6,123,456,-;`), and a trailing CR.
pub fn message_text(line: &str) -> &str {
    let mut s = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let ts = &rest[..end];
            if ts.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
                s = rest[end + 1..].trim_start();
            }
        }
    } else if let Some(semi) = s.find(';') {
        let head = &s[..semi];
        if head.split(',').count() >= 3
            && head
                .split(',')
                .next()
                .map(|p| p.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or(false)
        {
            s = &s[semi + 1..];
        }
    }
    s
}

fn title_for(kind: FindingKind, msg: &str) -> String {
    static WARN_AT: OnceLock<Regex> = OnceLock::new();
    static OLD_WARN_AT: OnceLock<Regex> = OnceLock::new();
    let warn_at =
        WARN_AT.get_or_init(|| Regex::new(r"^WARNING: \S+ at ([A-Za-z0-9_.]+)\+0x").unwrap());
    let old_warn = OLD_WARN_AT.get_or_init(|| {
        Regex::new(r"^WARNING: CPU: \d+ PID: \d+ at \S+ ([A-Za-z0-9_.]+)\+0x").unwrap()
    });
    match kind {
        FindingKind::Warning => {
            if let Some(c) = warn_at.captures(msg).or_else(|| old_warn.captures(msg)) {
                return format!("WARNING in {}", &c[1]);
            }
            msg.to_string()
        }
        FindingKind::Kasan => {
            // BUG: KASAN: slab-out-of-bounds in foo+0x12/0x40
            let body = msg.trim_start_matches("BUG: ");
            match body.split_once(" in ") {
                Some((what, whr)) => format!("{what} in {}", whr.split('+').next().unwrap_or(whr)),
                None => body.to_string(),
            }
        }
        FindingKind::Bug if msg.starts_with("kernel BUG at ") => {
            msg.trim_end_matches('!').to_string()
        }
        _ => msg.to_string(),
    }
}

/// Findings in a slice of kernel log lines, in order of appearance.
pub fn scan<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in lines {
        let msg = message_text(line);
        for rule in rules() {
            if rule.re.is_match(msg) {
                out.push(Finding {
                    kind: rule.kind,
                    title: title_for(rule.kind, msg),
                    line: msg.to_string(),
                });
                break;
            }
        }
    }
    out
}

/// Convert one /dev/kmsg record (`pri,seq,usec,flags;text`) into a console
/// style line `[  sec.usec] text`, dropping continuation (dictionary) lines.
pub fn record_to_line(record: &str) -> Option<String> {
    let first = record.lines().next()?;
    let (head, text) = first.split_once(';')?;
    let mut f = head.split(',');
    let _pri = f.next()?;
    let _seq = f.next()?;
    let usec: u64 = f.next()?.parse().ok()?;
    Some(format!(
        "[{:>5}.{:06}] {}",
        usec / 1_000_000,
        usec % 1_000_000,
        text
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<FindingKind> {
        scan(text.lines()).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn decoys_in_a_normal_boot_are_not_findings() {
        let boot = "[    0.000000] Command line: console=ttyS0 panic=-1 oops=panic\r
[    0.100000] ACPI: Warning: Processor Platform Limit event\r
[    0.200000] RCU lockdep checking is enabled.\r
[    0.300000] Please report a bug to the maintainers\r
[    0.400000] rcu: Hierarchical RCU implementation.\r
[    0.500000] Kernel command line: panic=-1\r
[    0.600000] x86/fpu: WARNING is not a problem here\r";
        assert!(scan(boot.lines()).is_empty(), "{:?}", scan(boot.lines()));
    }

    #[test]
    fn recognises_7_3_formats() {
        let log = "[   12.000000] WARNING: drivers/misc/lkdtm/bugs.c:123 at lkdtm_WARNING+0x1a/0x30, CPU#0: sh/97\r
[   13.000000] Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP\r
[   14.000000] kernel BUG at fs/fuse/famfs.c:77!\r
[   14.100000] Oops: invalid opcode: 0000 [#2] SMP\r
[   15.000000] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [cat:101]\r
[   16.000000] INFO: task umount:200 blocked for more than 120 seconds.\r
[   17.000000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\r
[   18.000000] BUG: KASAN: slab-out-of-bounds in famfs_fuse_meta_alloc+0x1c/0x90\r
[   19.000000] UBSAN: shift-out-of-bounds in fs/fuse/famfs.c:300:9\r
[   20.000000] WARNING: possible circular locking dependency detected\r
[   21.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008\r
[   22.000000] Kernel panic - not syncing: Fatal exception\r";
        assert_eq!(
            kinds(log),
            vec![
                FindingKind::Warning,
                FindingKind::Gpf,
                FindingKind::Bug,
                FindingKind::Oops,
                FindingKind::SoftLockup,
                FindingKind::HungTask,
                FindingKind::RcuStall,
                FindingKind::Kasan,
                FindingKind::Ubsan,
                FindingKind::Lockdep,
                FindingKind::Bug,
                FindingKind::Panic,
            ]
        );
        let f = scan(log.lines());
        assert_eq!(f[0].title, "WARNING in lkdtm_WARNING");
        assert_eq!(f[2].title, "kernel BUG at fs/fuse/famfs.c:77");
        assert_eq!(
            f[7].title,
            "KASAN: slab-out-of-bounds in famfs_fuse_meta_alloc"
        );
    }

    #[test]
    fn old_warning_format_and_kmsg_records() {
        let f = scan(["WARNING: CPU: 0 PID: 1 at fs/dax.c:10 dax_insert_entry+0x10/0x20"]);
        assert_eq!(f[0].title, "WARNING in dax_insert_entry");
        let rec =
            "4,812,12345678,-;WARNING: fs/dax.c:10 at dax_foo+0x1/0x2, CPU#1: t/1\n SUBSYSTEM=x\n";
        let line = record_to_line(rec).unwrap();
        assert_eq!(
            line,
            "[   12.345678] WARNING: fs/dax.c:10 at dax_foo+0x1/0x2, CPU#1: t/1"
        );
        assert_eq!(scan([line.as_str()])[0].title, "WARNING in dax_foo");
        assert_eq!(message_text("6,1,2,-;hello"), "hello");
    }
}
