//! Kernel logs, as the crash detector reads them from a console or from
//! /dev/kmsg: line splitting ([`crate::contract::kmsg`]), report grouping and
//! titling ([`crate::judge::reports::parse`]), case windows
//! ([`crate::judge::windows`]) and what `triage` prints. Logs are the real
//! captures of `tests/corpus/`, mutated and spliced, or lines made from the
//! shapes the detector knows (headers, traces, RIP, markers), interleaved
//! between printers and cut anywhere.

use super::{Fuzz, Outcome, Rng};
use crate::contract::kmsg;
use crate::contract::windows::Windows;
use crate::judge::reports::{self, KernelReport};
use crate::judge::triage;
use anyhow::Result;

const FUNCS: &[&str] = &[
    "lkdtm_BUG",
    "dax_iomap_rw",
    "famfs_fuse_iomap_begin",
    "refcount_warn_saturate",
    "__warn",
    "direct_entry.constprop.0",
    "memcpy",
    "x.cold",
    "_",
    "$x",
    "é",
];

const MESSAGES: &[&str] = &[
    "------------[ cut here ]------------",
    "kernel BUG at drivers/misc/lkdtm/bugs.c:99!",
    "Oops: invalid opcode: 0000 [#1] SMP NOPTI",
    "Oops: 0000 [#1] PREEMPT SMP",
    "Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1]",
    "divide error: 0000 [#1] SMP",
    "BUG: kernel NULL pointer dereference, address: 0000000000000000",
    "BUG: unable to handle page fault for address: ffffc90000000000",
    "BUG: KASAN: slab-out-of-bounds in FUNC+0x1a/0x30",
    "BUG: KASAN: use-after-free in FUNC+0x1a/0x30 [mod]",
    "Read of size 8 at addr ffff888004000000 by task sh/120",
    "Write of size 18446744073709551615 at addr 0 by task x/1",
    "BUG: KFENCE: out-of-bounds read in FUNC+0x1/0x2",
    "UBSAN: shift-out-of-bounds in fs/fuse/famfs.c:123:45",
    "UBSAN: division-by-zero in x.c:1:1",
    "BUG: soft lockup - CPU#0 stuck for 22s! [sh:120]",
    "watchdog: BUG: soft lockup - CPU#1 stuck for 99999999999999999999s!",
    "Watchdog detected hard LOCKUP on cpu 1",
    "INFO: task sh:120 blocked for more than 120 seconds.",
    "INFO: task x:1 blocked in I/O wait for more than 18446744073709551616 seconds.",
    "rcu: INFO: rcu_preempt self-detected stall on CPU",
    "INFO: rcu_sched detected stalls on CPUs/tasks:",
    "NMI backtrace for cpu 0",
    "WARNING: possible circular locking dependency detected",
    "WARNING: sh/120 still has locks held!",
    "WARNING: CPU: 1 PID: 120 at fs/dax.c:123 FUNC+0x12/0x40",
    "WARNING: fs/dax.c:1 at FUNC+0x1/0x2, CPU#0: sh/5",
    "WARNING: ",
    "BUG: ",
    "BUG: Bad page state in process sh  pfn:1234",
    "BUG: scheduling while atomic: sh/120/0x00000002",
    "Kernel panic - not syncing: Fatal exception",
    "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b",
    "Kernel panic - not syncing: ",
    "---[ end trace 0000000000000000 ]---",
    "---[ end Kernel panic - not syncing: Fatal exception ]---",
    "sh invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0",
    "Out of memory: Killed process 120 (famfs_fused) total-vm:1000kB",
    "Memory cgroup out of memory: Killed process 1 ()",
    "famfs_fused: worker: potentially unexpected fatal signal 11.",
    "x: potentially unexpected fatal signal 99999999999.",
    ": potentially unexpected fatal signal 6",
    "list_add corruption. prev->next should be next",
    "refcount_t: underflow; use-after-free.",
    "RIP: 0010:FUNC+0x5/0x10",
    "RIP: 0033:0x47b7a0",
    "RIP: 0010:FUNC+0xffffffffffffffffff/0x10",
    "Code: 90 90 0f 0b <0f> 0b",
    "RSP: 0018:ffffc90000247dc8 EFLAGS: 00010246",
    "RAX: ffffffff813ffce0 RBX: ffff888004046000 RCX: 0000000000000000",
    "FS:  000000000fa923c0(0000) GS:ffff8880db8b3000(0000) knlGS:0",
    "CR2: 0000000000559c5a CR3: 0000000002be0000 CR4: 0000000000350ef0",
    "Call Trace:",
    "<TASK>",
    "</TASK>",
    "<IRQ>",
    "</IRQ>",
    "<NMI>",
    " FUNC+0x16/0x30",
    " ? FUNC+0x16/0x30 [fuse]",
    " FUNC+0x0/0x0",
    "==================================================================",
    "CPU: 1 UID: 0 PID: 120 Comm: sh Not tainted 7.3.4 #1",
    "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)",
    "** replaying previous printk message **",
    "fh: runner start",
    "fh: case famfs/010 start",
    "fh: case famfs/010 end",
    "fh: case famfs/010 done",
    "fh: case famfs/010[x] start",
    "fh: case  start",
    "fh: case x/001 done",
    "fh: case",
    "Please report a bug",
    "RCU lockdep checking is enabled.",
    "ACPI: Warning: x",
];

/// A line as the console or /dev/kmsg shows it.
fn line(rng: &mut Rng) -> String {
    let func: &&str = rng.pick(FUNCS);
    let msg = rng.pick(MESSAGES).replace("FUNC", func);
    let msg = if rng.chance(1, 20) {
        format!("{msg}{}", super::mutate::odd_string(rng))
    } else {
        msg
    };
    let secs = match rng.below(10) {
        0 => rng.next_u64() % 100_000_000,
        _ => rng.below(600) as u64,
    };
    let usec = rng.below(1_000_000);
    let caller = match rng.below(4) {
        0 => String::new(),
        1 => format!("[    C{}]", rng.below(4)),
        _ => format!("[  T{}]", rng.below(200)),
    };
    match rng.below(12) {
        0 => format!(
            "{},{},{},-{};{msg}",
            rng.below(8),
            rng.next_u64() % 10_000,
            rng.next_u64() % 10_000_000_000,
            if rng.chance(1, 2) {
                format!(",caller=T{}", rng.below(100))
            } else {
                String::new()
            }
        ),
        1 => msg,
        2 => format!("user output[{secs:>5}.{usec:06}]{caller} {msg}"),
        3 => format!("[{secs:>5}.{usec:06}]{caller} {msg}\r"),
        _ => format!("[{secs:>5}.{usec:06}]{caller} {msg}"),
    }
}

pub struct Logs {
    logs: Vec<String>,
}

impl Logs {
    pub fn new() -> Result<Logs> {
        let corpus = crate::image::guest_program::workspace_root().join("harness/tests/corpus");
        let mut logs = Vec::new();
        for d in std::fs::read_dir(&corpus)?.flatten() {
            if d.path().is_dir() {
                let rel = format!("harness/tests/corpus/{}", d.file_name().to_string_lossy());
                if let Ok(v) = super::examples(&rel, |n| n.ends_with(".log")) {
                    logs.extend(v.into_iter().map(|(_, t)| t));
                }
            }
        }
        anyhow::ensure!(!logs.is_empty(), "no logs in {}", corpus.display());
        Ok(Logs { logs })
    }
}

/// Lines of two logs interleaved, as two CPUs print them.
fn interleave(rng: &mut Rng, a: &str, b: &str) -> String {
    let (mut x, mut y) = (a.lines().peekable(), b.lines().peekable());
    let mut out = String::new();
    while x.peek().is_some() || y.peek().is_some() {
        let l = if rng.chance(1, 2) { x.next() } else { y.next() };
        if let Some(l) = l {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

impl Fuzz for Logs {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        match rng.below(10) {
            0..=3 => super::mutated(rng, &self.logs),
            4..=6 => {
                let n = rng.between(1, 80);
                let mut s = String::new();
                for _ in 0..n {
                    s.push_str(&line(rng));
                    s.push('\n');
                }
                s.into_bytes()
            }
            7 | 8 => {
                let a = rng.pick(&self.logs).clone();
                let b = rng.pick(&self.logs).clone();
                let mut s = interleave(rng, &a, &b);
                for _ in 0..rng.small(5) {
                    let at = rng.below(s.len() + 1);
                    let at = (at..=s.len())
                        .find(|&i| s.is_char_boundary(i))
                        .unwrap_or(s.len());
                    s.insert_str(at, &format!("{}\n", line(rng)));
                }
                s.into_bytes()
            }
            _ => {
                let mut b = rng.pick(&self.logs).clone().into_bytes();
                for _ in 0..rng.between(1, 8) {
                    super::mutate::bytes(rng, &mut b, &[]);
                }
                b
            }
        }
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        // As `triage` reads a file: lossy text, split into lines.
        let text = String::from_utf8_lossy(input);
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines {
            let _ = kmsg::split(l);
            let _ = kmsg::record_to_lines(l);
        }
        let rs = reports::parse(lines.iter().copied());
        for r in &rs {
            let _ = r.render();
            let _ = reports::check_finding(&r.title);
            let _ = crate::judge::verdict::report_reason(r);
            let _ = serde_json::to_string(r);
        }
        let w = Windows::of(&lines);
        for (id, _, _) in &w.cases {
            let slice = w.slice(&lines, id);
            let _: Vec<KernelReport> = reports::parse(slice);
        }
        let _ = crate::judge::outside(&w, &rs);
        let t = triage::Triage {
            log: "fuzz.log".into(),
            symbolized: false,
            reports: rs
                .into_iter()
                .map(|r| triage::Triaged {
                    case: w.case_at(r.line).map(str::to_string),
                    report: r,
                })
                .collect(),
        };
        let _ = t.render();
        Outcome::Accepted
    }
}
