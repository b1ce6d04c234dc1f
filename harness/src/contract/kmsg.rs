//! Kernel log lines: what a console line or a /dev/kmsg record says, and who
//! printed it. Reports are grouped from these in the judge's `reports`.

use regex::Regex;
use std::sync::OnceLock;

/// One line of a console log or of the kernel log, taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Seconds since boot, when the line carries a printk timestamp.
    pub ts: Option<f64>,
    /// The printk caller (`T123` for a task, `C1` for a CPU in interrupt
    /// context), when the kernel was built with CONFIG_PRINTK_CALLER.
    pub caller: Option<String>,
    /// The message, without timestamp, caller and trailing CR.
    pub msg: String,
    /// The line came from the kernel (it had a printk prefix). On a console
    /// shared with user space, lines without one are user output.
    pub kernel: bool,
}

fn console_prefix() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"\[\s*(\d+\.\d+)\](?:\[\s*([TC]\d+)\])? ?").expect("static regex"))
}

fn kmsg_header() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"^\d+,\d+,(\d+),[^;,]*(?:,caller=([TC]\d+))?[^;]*;").expect("static regex")
    })
}

/// Take one line apart. User output that shares a console line with the
/// kernel (`text[   1.23] WARNING: ...`) is cut off: the kernel's part starts
/// at its timestamp.
pub fn split(raw: &str) -> LogLine {
    let s = raw.trim_end_matches(['\r', '\n']);
    if let Some(c) = kmsg_header().captures(s) {
        let usec: f64 = c[1].parse().unwrap_or(0.0);
        return LogLine {
            ts: Some(usec / 1e6),
            caller: c.get(2).map(|m| m.as_str().to_string()),
            msg: s[c.get(0).map(|m| m.end()).unwrap_or(0)..].to_string(),
            kernel: true,
        };
    }
    if let Some(c) = console_prefix().captures(s) {
        let whole = c.get(0).expect("match");
        return LogLine {
            ts: c[1].parse().ok(),
            caller: c.get(2).map(|m| m.as_str().to_string()),
            msg: s[whole.end()..].to_string(),
            kernel: true,
        };
    }
    LogLine {
        ts: None,
        caller: None,
        msg: s.to_string(),
        kernel: false,
    }
}

/// Convert one /dev/kmsg record (`pri,seq,usec,flags[,caller=T1];text`) into
/// console-style lines `[  sec.usec][  T1] text`. A record printed with
/// embedded newlines (escaped `\x0a` in /dev/kmsg) gives one line each, as
/// on the console; dictionary lines (` KEY=value`) are dropped.
pub fn record_to_lines(record: &str) -> Vec<String> {
    let Some(first) = record.lines().next() else {
        return vec![];
    };
    let Some(c) = kmsg_header().captures(first) else {
        return vec![];
    };
    let usec: u64 = c[1].parse().unwrap_or(0);
    let caller = c
        .get(2)
        .map(|m| format!("[{:>6}]", m.as_str()))
        .unwrap_or_default();
    let text = &first[c.get(0).map(|m| m.end()).unwrap_or(0)..];
    text.split("\\x0a")
        .map(|part| {
            format!(
                "[{:>5}.{:06}]{caller} {}",
                usec / 1_000_000,
                usec % 1_000_000,
                part
            )
        })
        .collect()
}

/// The x86 name of a signal that dumps core (the only ones the kernel
/// prints as fatal) or SIGKILL/SIGTERM; the number for any other.
pub fn signal_name(n: i32) -> String {
    let name = match n {
        3 => "SIGQUIT",
        4 => "SIGILL",
        9 => "SIGKILL",
        15 => "SIGTERM",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        11 => "SIGSEGV",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => return n.to_string(),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_with_and_without_caller() {
        let l = split("[   12.345678][  T123] WARNING: x\r");
        assert_eq!(l.ts, Some(12.345678));
        assert_eq!(l.caller.as_deref(), Some("T123"));
        assert_eq!(l.msg, "WARNING: x");
        assert!(l.kernel);
        let l = split("[    1.000000] hello");
        assert_eq!((l.caller, l.msg.as_str()), (None, "hello"));
        // User output in front of a kernel line on the same console line.
        let l = split("provoked a WAR[   2.500000][    C1] BUG: soft lockup");
        assert_eq!((l.ts, l.msg.as_str()), (Some(2.5), "BUG: soft lockup"));
        let l = split("plain user output");
        assert!(!l.kernel && l.ts.is_none());
    }

    #[test]
    fn kmsg_records() {
        let rec = "4,812,12345678,-,caller=T97;WARNING: fs/dax.c:10 at dax_foo+0x1/0x2, CPU#1: t/1\n SUBSYSTEM=x\n";
        let lines = record_to_lines(rec);
        assert_eq!(
            lines,
            vec!["[   12.345678][   T97] WARNING: fs/dax.c:10 at dax_foo+0x1/0x2, CPU#1: t/1"]
        );
        let l = split(&lines[0]);
        assert_eq!(l.caller.as_deref(), Some("T97"));
        assert_eq!(l.msg, "WARNING: fs/dax.c:10 at dax_foo+0x1/0x2, CPU#1: t/1");
        // Raw records parse too, and embedded newlines become lines.
        assert_eq!(split("6,1,2000000,-;hello").msg, "hello");
        assert_eq!(split("6,1,2000000,-;hello").ts, Some(2.0));
        assert_eq!(record_to_lines("6,1,2,-;a\\x0ab").len(), 2);
        assert!(record_to_lines("garbage").is_empty());
    }
}
