//! Kernel reports: the lines of a kernel log grouped into one report per
//! event, each titled the way kernel developers know from syzkaller
//! (`KIND in FUNCTION`). A title holds nothing that changes between runs or
//! machines (no pid, CPU, address, counter, seconds or build path), so the
//! same bug gets the same title and CI can group by it.
//!
//! Grouping: a report starts at its header line (`WARNING:`, `kernel BUG
//! at`, `BUG: KASAN:` ...) and collects the lines its printer writes after it
//! (the `[  T123]` caller of CONFIG_PRINTK_CALLER keeps two CPUs apart) up
//! to its end (`---[ end trace`, KASAN's closing `====`, the `</TASK>` of a
//! hang report). The `Oops:` line of a `kernel BUG` and the panic an oops
//! causes belong to the report that caused them: one crash, one report.
//!
//! Patterns are anchored at the start of a message because a boot log holds
//! decoys ("report a bug", "RCU lockdep checking is enabled", `panic=-1` on
//! the command line).

use crate::contract::kmsg::{self, LogLine};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use crate::contract::findings::{check_finding, ReportKind, TITLE_FORMS};

/// One stack frame as the kernel printed it (`func+0x12/0x40 [mod]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The function, without compiler suffixes (`.constprop.0`, `.cold`).
    pub func: String,
    /// The symbol as printed, suffixes included (what the symbol table has).
    pub symbol: String,
    pub offset: u64,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Printed with `? `: found on the stack, not proven to be a caller.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreliable: bool,
    /// Printed inside `<IRQ>`/`<NMI>`, not in the interrupted task's stack.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupt: bool,
    /// `file:line` from the kernel's debug info, innermost (inlined) first;
    /// empty when the kernel was not symbolized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<String>,
}

impl Frame {
    pub fn display(&self) -> String {
        let mut s = format!("{}+{:#x}/{:#x}", self.symbol, self.offset, self.size);
        if let Some(m) = &self.module {
            s.push_str(&format!(" [{m}]"));
        }
        if !self.source.is_empty() {
            s.push_str(&format!(" {}", self.source.join(" <- ")));
        }
        s
    }
}

/// One kernel report: a crash, a warning, a sanitizer finding, a hang.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelReport {
    pub kind: ReportKind,
    /// Stable across runs, e.g. `KASAN: slab-out-of-bounds Write in f`.
    pub title: String,
    /// The line that started the report, as the kernel wrote it.
    pub header: String,
    /// Every line of the report, as in the log.
    pub text: Vec<String>,
    /// Where the CPU was (`RIP:`), when the report says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rip: Option<Frame>,
    /// The first call trace of the report (the faulting stack; KASAN's
    /// allocation and free stacks are not in it).
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// Seconds since boot at the header, when the log has timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<f64>,
    /// Index of the header line in the input.
    #[serde(default)]
    pub line: usize,
}

impl KernelReport {
    /// The report as a person reads it: title, then the lines (with source
    /// locations when symbolized).
    pub fn render(&self) -> String {
        format!("{}\n{}", self.title, self.render_body())
    }

    /// [`render`](Self::render) without the title line.
    pub fn render_body(&self) -> String {
        let mut s = String::new();
        if let Some(r) = self.rip.as_ref().filter(|r| !r.source.is_empty()) {
            s.push_str(&format!("  at {}\n", r.display()));
        }
        let symbolized = self.frames.iter().any(|f| !f.source.is_empty());
        if symbolized {
            s.push_str("  call trace:\n");
            for f in &self.frames {
                s.push_str(&format!(
                    "    {}{}\n",
                    if f.unreliable { "? " } else { "" },
                    f.display()
                ));
            }
        }
        for l in &self.text {
            s.push_str(&format!("  | {l}\n"));
        }
        s
    }
}

struct Rule {
    head: Head,
    re: Regex,
}

/// What a header line is, finer than [`ReportKind`]: it decides the title
/// and whether the line belongs to a report already open.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Head {
    Kasan,
    Kfence,
    Ubsan,
    SoftLockup,
    HardLockup,
    HungTask,
    RcuStall,
    Lockdep,
    Warning,
    KernelBug,
    NullDeref,
    PageFault,
    Bug,
    Gpf,
    DivideError,
    InvalidOpcode,
    Oops,
    Panic,
    OomStart,
    OomKill,
    FatalSignal,
}

impl Head {
    fn kind(self) -> ReportKind {
        match self {
            Head::Kasan => ReportKind::Kasan,
            Head::Kfence => ReportKind::Kfence,
            Head::Ubsan => ReportKind::Ubsan,
            Head::SoftLockup | Head::HardLockup => ReportKind::SoftLockup,
            Head::HungTask => ReportKind::HungTask,
            Head::RcuStall => ReportKind::RcuStall,
            Head::Lockdep => ReportKind::Lockdep,
            Head::Warning => ReportKind::Warning,
            Head::KernelBug | Head::NullDeref | Head::PageFault | Head::Bug => ReportKind::Bug,
            Head::Gpf => ReportKind::Gpf,
            Head::DivideError | Head::InvalidOpcode | Head::Oops => ReportKind::Oops,
            Head::Panic => ReportKind::Panic,
            Head::OomStart | Head::OomKill => ReportKind::Oom,
            Head::FatalSignal => ReportKind::FatalSignal,
        }
    }

    /// An `Oops:` line: the second line of a BUG or page-fault report.
    fn is_oops_line(self) -> bool {
        matches!(
            self,
            Head::Oops | Head::InvalidOpcode | Head::Gpf | Head::DivideError
        )
    }
}

fn rules() -> &'static [Rule] {
    static R: OnceLock<Vec<Rule>> = OnceLock::new();
    R.get_or_init(|| {
        let r = |head, pat: &str| Rule {
            head,
            re: Regex::new(pat).expect("static regex"),
        };
        // The first rule that matches a message wins.
        vec![
            r(Head::Kasan, r"^BUG: KASAN: "),
            r(Head::Kfence, r"^BUG: KFENCE: "),
            r(Head::Ubsan, r"^UBSAN: "),
            r(Head::SoftLockup, r"^(watchdog: )?BUG: soft lockup"),
            r(Head::HardLockup, r"^(watchdog: )?Watchdog detected hard LOCKUP"),
            r(Head::HungTask, r"^INFO: task .* blocked( in I/O wait)? for more than \d+ seconds"),
            r(
                Head::RcuStall,
                r"^(rcu: )?INFO: rcu_\w+ (self-)?detected (expedited )?stalls?",
            ),
            r(
                Head::Lockdep,
                r"^WARNING: (possible circular locking dependency detected|possible recursive locking detected|inconsistent lock state|suspicious RCU usage|bad unlock balance detected|possible irq lock inversion dependency detected|held lock freed|lock held when returning to user space|.* still has locks held|(HARD|SOFT)IRQ-(safe|READ-safe) -> (HARD|SOFT)IRQ-unsafe lock order detected|circular locking)",
            ),
            r(Head::Warning, r"^WARNING: "),
            r(Head::KernelBug, r"^kernel BUG at "),
            r(Head::NullDeref, r"^BUG: kernel NULL pointer dereference"),
            r(Head::PageFault, r"^BUG: unable to handle (page fault|kernel paging request)"),
            r(Head::Bug, r"^BUG: "),
            r(Head::Gpf, r"^(Oops: )?general protection fault"),
            r(Head::DivideError, r"^(Oops: )?divide error"),
            r(Head::InvalidOpcode, r"^(Oops: )?invalid opcode"),
            r(Head::Oops, r"^Oops: "),
            r(Head::Panic, r"^Kernel panic - not syncing: "),
            r(Head::OomStart, r"^\S+ invoked oom-killer: "),
            r(
                Head::OomKill,
                r"^(Memory cgroup )?Out of memory( \(oom_kill_allocating_task\))?: Killed process",
            ),
            // `EXE: COMM: ...` (or `COMM: ...` without an executable).
            r(Head::FatalSignal, r"^\S.*: potentially unexpected fatal signal \d+\.?$"),
        ]
    })
}

fn classify(msg: &str) -> Option<Head> {
    rules().iter().find(|r| r.re.is_match(msg)).map(|r| r.head)
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

/// `func+0x1a/0x30 [module]` anywhere in a message; the symbol may carry
/// compiler suffixes.
fn frame_in(msg: &str) -> Option<Frame> {
    static R: OnceLock<Regex> = OnceLock::new();
    let c = re(
        &R,
        r"(\? )?([A-Za-z_$][A-Za-z0-9_.$]*)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[(\S+)\])?",
    )
    .captures(msg)?;
    Some(Frame {
        func: base_name(&c[2]).to_string(),
        symbol: c[2].to_string(),
        offset: u64::from_str_radix(&c[3], 16).ok()?,
        size: u64::from_str_radix(&c[4], 16).ok()?,
        module: c.get(5).map(|m| m.as_str().to_string()),
        unreliable: c.get(1).is_some(),
        interrupt: false,
        source: vec![],
    })
}

/// A call trace line: the whole message is one frame.
fn trace_frame(msg: &str) -> Option<Frame> {
    static R: OnceLock<Regex> = OnceLock::new();
    let line = re(
        &R,
        r"^\s*(\? )?[A-Za-z_$][A-Za-z0-9_.$]*\+0x[0-9a-f]+/0x[0-9a-f]+( \[\S+\])?\s*$",
    );
    if line.is_match(msg) {
        frame_in(msg)
    } else {
        None
    }
}

/// `foo.constprop.0` -> `foo`: the suffixes differ between compilers and
/// builds, the function does not.
pub fn base_name(sym: &str) -> &str {
    sym.split('.').next().unwrap_or(sym)
}

/// Functions that report, trap, schedule, lock or copy: a title names the
/// first frame that is none of these, the code that went wrong.
fn skipped(func: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        concat!(
            "^(",
            // reporting and the exception paths that lead to a report
            "dump_stack|dump_stack_lvl|show_stack|show_trace_log_lvl|show_regs|__show_regs|",
            "__warn|warn_slowpath_fmt|__warn_printk|report_bug|handle_bug|do_error_trap|do_trap|",
            "do_int3|do_int3_user|exc_int3|exc_invalid_op|asm_exc_invalid_op|exc_divide_error|",
            "asm_exc_divide_error|exc_general_protection|asm_exc_general_protection|",
            "exc_page_fault|asm_exc_page_fault|page_fault_oops|kernelmode_fixup_or_oops|",
            "__bad_area_nosemaphore|bad_area_nosemaphore|do_user_addr_fault|do_kern_addr_fault|",
            "handle_page_fault|die|__die|__die_body|oops_end|panic|vpanic|nmi_panic|",
            "check_panic_on_warn|printk|_printk|vprintk|vprintk_emit|vprintk_default|",
            "console_unlock|console_flush_all|",
            // sanitizers
            "kasan_.*|__kasan_.*|__asan_.*|asan_.*|check_region_inline|kasan_check_range|",
            "print_report|print_address_description|describe_object.*|",
            "ubsan_.*|__ubsan_.*|kfence_.*|__kfence_.*|",
            // lockdep
            "lock_acquire|lock_release|lock_acquired|lock_contended|__lock_acquire|",
            "__lock_release|validate_chain|check_prev_add|check_prevs_add|check_noncircular|",
            "check_deadlock|check_irq_usage|check_usage.*|mark_lock.*|mark_usage|",
            "print_circular_bug.*|print_deadlock_bug|print_usage_bug|print_bad_irq_dependency|",
            "lockdep_.*|debug_check_no_.*|lock_is_held_type|__might_sleep|__might_resched|",
            "__might_fault|might_fault|__cant_sleep|",
            // scheduling and sleeping locks (hang reports)
            "__schedule|schedule|schedule_idle|schedule_timeout.*|schedule_preempt_disabled|",
            "schedule_hrtimeout.*|io_schedule.*|preempt_schedule.*|__cond_resched|_cond_resched|",
            "__mutex_lock.*|mutex_lock.*|__rt_mutex.*|rt_mutex.*|rwsem_down_.*|",
            "down|down_read.*|down_write.*|down_interruptible|down_killable|down_timeout|",
            "__down.*|percpu_down_.*|__percpu_down_.*|wait_for_completion.*|__wait_for_common|",
            "wait_for_common.*|do_wait_for_common|__wait_event.*|wait_on_bit.*|",
            "out_of_line_wait_on_bit.*|__wait_on_bit.*|bit_wait.*|folio_wait_bit.*|",
            "msleep|msleep_interruptible|usleep_range.*|do_nanosleep|hrtimer_nanosleep|",
            // spinning locks
            "_raw_spin_lock.*|_raw_read_lock.*|_raw_write_lock.*|do_raw_spin_lock|",
            "queued_spin_lock_slowpath|native_queued_spin_lock_slowpath|",
            "queued_read_lock_slowpath|queued_write_lock_slowpath|",
            // interrupt entry (a soft lockup's IRQ stack)
            "watchdog_timer_fn|__hrtimer_run_queues|hrtimer_interrupt|__sysvec_.*|sysvec_.*|",
            "asm_sysvec_.*|irq_exit_rcu|__irq_exit_rcu|handle_softirqs|__do_softirq|",
            "rcu_sched_clock_irq|rcu_pending|update_process_times|tick_.*|",
            // string and memory helpers
            "memcpy|memmove|memset|__memcpy|__memmove|__memset|memcmp|bcmp|memchr|memchr_inv|",
            "memcpy_orig|memmove_orig|strlen|strnlen|strcpy|strncpy|strscpy|sized_strscpy|",
            "strlcpy|strcat|strncat|strcmp|strncmp|strchr|strrchr|strstr|kstrdup|",
            "copy_to_user|copy_from_user|_copy_to_user|_copy_from_user|__copy_to_user.*|",
            "__copy_from_user.*|raw_copy_to_user|raw_copy_from_user|copy_user_generic|",
            "rep_movs_alternative|rep_stos_alternative|check_object_size|__check_object_size|",
            "fortify_panic|__fortify_report|__fortify_panic|",
            // helpers that detect rather than cause
            "refcount_warn_saturate|__refcount_.*|refcount_.*|__list_add_valid.*|",
            "__list_del_entry_valid.*|__list_valid_slowpath|check_data_corruption|",
            "out_of_memory|oom_kill_process|dump_header|__alloc_pages.*|alloc_pages.*|",
            "__alloc_frozen_pages.*|alloc_frozen_pages.*|__alloc_pages_slowpath.*|",
            "__alloc_pages_may_oom",
            ")$"
        ),
    )
    .is_match(func)
}

/// Numbers, addresses and pids out of free text that goes into a title.
fn stable_text(s: &str) -> String {
    static HEX: OnceLock<Regex> = OnceLock::new();
    static NUM: OnceLock<Regex> = OnceLock::new();
    let s = re(&HEX, r"\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{8,}\b").replace_all(s, "ADDR");
    let s = re(&NUM, r"\d+").replace_all(&s, "N");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Builder {
    head: Option<Head>,
    header: String,
    /// Other header-like lines that belong to this report (the `Oops:`
    /// after `kernel BUG`, the panic an oops caused).
    subheads: Vec<(Head, String)>,
    text: Vec<String>,
    /// Messages before the header that belong to it (`cut here`, KASAN's
    /// opening `====`, the message of a WARN()).
    preamble: Vec<String>,
    rip: Option<Frame>,
    frames: Vec<Frame>,
    trace: TraceState,
    in_interrupt: bool,
    /// `Read`/`Write` of a KASAN report.
    access: Option<String>,
    ts: Option<f64>,
    last_ts: Option<f64>,
    line: usize,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum TraceState {
    #[default]
    Before,
    In,
    Done,
}

impl Builder {
    fn push(&mut self, raw: &str, l: &LogLine) {
        self.text.push(raw.to_string());
        self.last_ts = l.ts.or(self.last_ts);
        let m = l.msg.trim();
        if self.rip.is_none() {
            if let Some(rest) = m.strip_prefix("RIP: ") {
                self.rip = frame_in(rest);
            }
        }
        if self.access.is_none() {
            static ACC: OnceLock<Regex> = OnceLock::new();
            if let Some(c) = re(&ACC, r"^(Read|Write) of size \d+").captures(m) {
                self.access = Some(c[1].to_string());
            }
        }
        match self.trace {
            TraceState::Before if m == "Call Trace:" => self.trace = TraceState::In,
            TraceState::In => match m {
                "<IRQ>" | "<NMI>" | "<SOFTIRQ>" => self.in_interrupt = true,
                "</IRQ>" | "</NMI>" | "</SOFTIRQ>" => self.in_interrupt = false,
                "<TASK>" => {}
                "</TASK>" => self.trace = TraceState::Done,
                _ => match trace_frame(m) {
                    Some(mut f) => {
                        f.interrupt = self.in_interrupt;
                        self.frames.push(f);
                    }
                    // Registers printed inside the trace (an exception
                    // frame) are part of it; anything else ends it.
                    None if is_register_line(m) => {}
                    None => self.trace = TraceState::Done,
                },
            },
            _ => {}
        }
    }

    /// Has the report reached its end with this line?
    fn ends_with(&self, m: &str) -> bool {
        let m = m.trim();
        if m.starts_with("---[ end trace") || m.starts_with("---[ end Kernel panic") {
            return true;
        }
        match self.head.map(Head::kind) {
            // KASAN's report is framed by two separators; the header comes
            // after the first.
            Some(ReportKind::Kasan | ReportKind::Kfence) => is_separator(m) && self.text.len() > 1,
            Some(ReportKind::HungTask | ReportKind::SoftLockup | ReportKind::RcuStall) => {
                self.trace == TraceState::Done
            }
            Some(ReportKind::Lockdep) => self.trace == TraceState::Done,
            // The user registers end with the segment bases.
            Some(ReportKind::FatalSignal) => m.starts_with("FS:"),
            Some(ReportKind::Oom) => {
                self.subheads.iter().any(|(h, _)| *h == Head::OomKill)
                    || self.head == Some(Head::OomKill)
            }
            _ => false,
        }
    }

    fn finish(self) -> Option<KernelReport> {
        let head = self.head?;
        let mut text = self.preamble;
        text.extend(self.text);
        let mut r = KernelReport {
            kind: head.kind(),
            title: String::new(),
            header: self.header.clone(),
            text,
            rip: self.rip,
            frames: self.frames,
            ts: self.ts,
            line: self.line,
        };
        r.title = title(
            head,
            &self.header,
            &self.subheads,
            self.access.as_deref(),
            &r,
        );
        Some(r)
    }
}

fn is_register_line(m: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"^(RIP|RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d+|Code|ORIG_RAX|FS|CS|CR\d): ",
    )
    .is_match(m)
}

fn is_separator(m: &str) -> bool {
    m.len() >= 20 && m.chars().all(|c| c == '=')
}

fn is_cut_here(m: &str) -> bool {
    m.contains("[ cut here ]")
}

/// The first frame worth naming: candidates in order of preference.
fn culprit<'a>(cands: impl IntoIterator<Item = &'a Frame>) -> Option<&'a str> {
    cands
        .into_iter()
        .find(|f| !skipped(&f.func) && !f.unreliable)
        .map(|f| f.func.as_str())
}

/// The function a report is named after. Which frames are looked at, and in
/// what order, depends on the kind of report (the header's own frame for a
/// WARNING or sanitizer, the RIP and task stack for a stall, the trace
/// alone for lockdep, hung tasks and OOM), so it is chosen apart from the
/// title text.
fn title_culprit<'a>(
    head: Head,
    header_frame: &'a Option<Frame>,
    r: &'a KernelReport,
) -> Option<&'a str> {
    let trace = r.frames.iter();
    let task_trace = r.frames.iter().filter(|f| !f.interrupt);
    let rip = r.rip.iter();
    match head {
        Head::Warning | Head::Kasan | Head::Kfence => {
            culprit(header_frame.iter().chain(rip.clone()).chain(trace.clone()))
        }
        Head::Ubsan | Head::Lockdep | Head::HungTask | Head::OomStart | Head::OomKill => {
            culprit(trace.clone())
        }
        Head::SoftLockup | Head::HardLockup | Head::RcuStall => {
            culprit(rip.clone().chain(task_trace))
        }
        _ => culprit(rip.clone().chain(trace.clone())),
    }
}

/// Does the report's text say a list was corrupted? Such a report is titled
/// by the corruption, whatever header (WARNING, BUG) announced it.
fn is_list_corruption(r: &KernelReport) -> bool {
    r.text
        .iter()
        .any(|l| l.contains("list_add corruption") || l.contains("list_del corruption"))
}

/// The bug class a sanitizer header names (`use-after-free`,
/// `out-of-bounds`, ...): capture `group` of the header pattern (1 KASAN,
/// 2 KFENCE, 3 UBSAN), or `report` when the header has none.
fn sanitizer_class(header: &str, group: usize) -> &str {
    static WORD: OnceLock<Regex> = OnceLock::new();
    let word = re(
        &WORD,
        r"^BUG: KASAN: ([\w-]+)|^BUG: KFENCE: ([\w -]+?) in |^UBSAN: ([\w-]+)",
    );
    word.captures(header)
        .and_then(|c| c.get(group))
        .map(|m| m.as_str())
        .unwrap_or("report")
}

/// A lockdep header reduced to its kind: every ordering problem is one
/// `possible deadlock`, so that the same bug found through different lock
/// pairs gets one title.
fn lockdep_title(header: &str) -> String {
    let what = header.trim_start_matches("WARNING: ");
    if what.contains("circular")
        || what.contains("recursive")
        || what.contains("inversion")
        || what.contains("lock order")
    {
        "possible deadlock".to_string()
    } else if what.contains("still has locks held") {
        "task still has locks held".to_string()
    } else {
        what.trim_end_matches('!').trim().to_string()
    }
}

/// A `BUG: ...` header without its location and process details, which
/// change between runs of the same bug.
fn bug_title(header: &str) -> String {
    let what = header.trim_start_matches("BUG: ");
    let cut = [" at ", ":", ",", " in process", " (", "!"]
        .iter()
        .filter_map(|p| what.find(p))
        .min()
        .unwrap_or(what.len());
    format!("BUG: {}", stable_text(what[..cut].trim()))
}

/// An `Oops:` header's reason; a bare error code (hex) says nothing stable,
/// so it becomes plain `Oops`.
fn oops_title(header: &str) -> String {
    let what = header
        .trim_start_matches("Oops: ")
        .trim_start_matches("Oops: ");
    let cut = what.find(':').unwrap_or(what.len());
    let what = what[..cut].trim();
    if what.chars().all(|c| c.is_ascii_hexdigit()) {
        "Oops".into()
    } else {
        format!("Oops: {}", stable_text(what))
    }
}

/// A panic's reason, without the exit code of the init that died.
fn panic_title(header: &str) -> String {
    let reason = header.trim_start_matches("Kernel panic - not syncing: ");
    let reason = reason.split(" exitcode=").next().unwrap_or(reason);
    format!("kernel panic: {}", stable_text(reason))
}

/// An OOM report names the process the killer chose, when one of its lines
/// says (`Killed process N (comm)`); None when none does.
fn oom_kill_title(header: &str, subheads: &[(Head, String)]) -> Option<String> {
    static COMM: OnceLock<Regex> = OnceLock::new();
    let kill = subheads
        .iter()
        .map(|(_, s)| s.as_str())
        .chain(std::iter::once(header))
        .find_map(|s| re(&COMM, r"Killed process \d+ \((.+?)\)").captures(s));
    kill.map(|c| format!("out of memory: killed {}", &c[1]))
}

fn title(
    head: Head,
    header: &str,
    subheads: &[(Head, String)],
    access: Option<&str>,
    r: &KernelReport,
) -> String {
    let header_frame = frame_in(header);
    let func = title_culprit(head, &header_frame, r);
    let with = |t: String| match func {
        Some(f) => format!("{t} in {f}"),
        None => t,
    };
    match head {
        _ if is_list_corruption(r) && head.kind() != ReportKind::Kasan => {
            with("BUG: corrupted list".into())
        }
        Head::Warning => {
            if culprit_is_refcount(r, &header_frame) {
                with("refcount bug".into())
            } else {
                with("WARNING".into())
            }
        }
        Head::Kasan => {
            let what = sanitizer_class(header, 1);
            let acc = access.map(|a| format!(" {a}")).unwrap_or_default();
            with(format!("KASAN: {what}{acc}"))
        }
        Head::Kfence => with(format!("KFENCE: {}", sanitizer_class(header, 2))),
        Head::Ubsan => with(format!("UBSAN: {}", sanitizer_class(header, 3))),
        Head::SoftLockup => with("BUG: soft lockup".into()),
        Head::HardLockup => with("BUG: hard lockup".into()),
        Head::HungTask => with("INFO: task hung".into()),
        Head::RcuStall => with("INFO: rcu detected stall".into()),
        Head::Lockdep => with(lockdep_title(header)),
        Head::KernelBug => with("kernel BUG".into()),
        Head::NullDeref => with("BUG: kernel NULL pointer dereference".into()),
        Head::PageFault => with("BUG: unable to handle page fault".into()),
        Head::Bug => with(bug_title(header)),
        Head::Gpf => with("general protection fault".into()),
        Head::DivideError => with("divide error".into()),
        Head::InvalidOpcode => with("invalid opcode".into()),
        Head::Oops => with(oops_title(header)),
        Head::Panic => panic_title(header),
        Head::FatalSignal => fatal_signal_title(header),
        Head::OomStart | Head::OomKill => {
            oom_kill_title(header, subheads).unwrap_or_else(|| with("out of memory".into()))
        }
    }
}

/// `fatal signal SIGSEGV in famfs_fused`: the signal and the executable
/// (the thread's name when the kernel had no executable to print); the pid
/// and the user addresses change between runs, the program does not.
fn fatal_signal_title(header: &str) -> String {
    let (who, sig) = header
        .split_once(": potentially unexpected fatal signal ")
        .unwrap_or((header, ""));
    let program = who.split(": ").next().unwrap_or(who).trim();
    let n: i32 = sig.trim_end_matches('.').trim().parse().unwrap_or(0);
    format!("fatal signal {} in {program}", kmsg::signal_name(n))
}

fn culprit_is_refcount(r: &KernelReport, header_frame: &Option<Frame>) -> bool {
    header_frame
        .iter()
        .chain(r.rip.iter())
        .next()
        .map(|f| f.func.starts_with("refcount_warn_saturate"))
        .unwrap_or(false)
}

/// Marker lines the guest runner writes around each case: no report spans
/// one.
pub fn is_harness_marker(msg: &str) -> bool {
    msg.starts_with("fh: ")
}

/// Group a kernel log into reports, in order of their headers.
pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<KernelReport> {
    Grouper::default().run(lines)
}

type Who = Option<String>;

#[derive(Default)]
struct Grouper {
    /// The report each printer is writing.
    open: BTreeMap<Who, Builder>,
    /// Finished reports, kept as builders: a panic may still join one.
    done: Vec<Option<Builder>>,
    /// Lines announcing a report to come, per printer.
    pending: BTreeMap<Who, Vec<String>>,
    /// The report a panic may belong to: (index in `done`, kernel line
    /// count and time when it closed).
    last_closed: Option<(usize, usize, Option<f64>, Who)>,
    /// A CPU printing an NMI backtrace for another CPU's stall report.
    alias: BTreeMap<Who, Who>,
    kernel_lines: usize,
}

impl Grouper {
    fn close(&mut self, who: &Who) {
        if let Some(b) = self.open.remove(who) {
            let ts = b.last_ts;
            self.done.push(Some(b));
            self.last_closed = Some((self.done.len() - 1, self.kernel_lines, ts, who.clone()));
        }
    }

    fn run<'a>(mut self, lines: impl IntoIterator<Item = &'a str>) -> Vec<KernelReport> {
        let raw: Vec<&str> = lines.into_iter().collect();
        let parsed: Vec<LogLine> = raw.iter().map(|l| kmsg::split(l)).collect();
        // A log without any printk timestamp (printk.time=0) is all kernel.
        let timestamped = parsed.iter().any(|l| l.kernel);
        // A console cut off in the middle of a message prints what it had,
        // then `** replaying previous printk message **` and the whole
        // message again: the cut-off copy is not a line of its own (a cut
        // header would open a report of its own, without its function).
        let superseded: std::collections::BTreeSet<usize> = raw
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim() == "** replaying previous printk message **")
            .filter_map(|(i, _)| (0..i).rev().find(|&j| parsed[j].kernel || !timestamped))
            .collect();
        for (i, (rawl, l)) in raw.iter().zip(&parsed).enumerate() {
            if (timestamped && !l.kernel) || superseded.contains(&i) {
                continue;
            }
            self.line(i, rawl.trim_end_matches('\r'), l);
        }
        let open: Vec<Who> = self.open.keys().cloned().collect();
        for w in open {
            self.close(&w);
        }
        let mut out: Vec<KernelReport> = self
            .done
            .into_iter()
            .flatten()
            .filter_map(Builder::finish)
            .collect();
        out.sort_by_key(|r| r.line);
        out
    }

    fn line(&mut self, i: usize, rawl: &str, l: &LogLine) {
        self.kernel_lines += 1;
        let mut who = l.caller.clone();
        if let Some(k) = self.alias.get(&who) {
            if self.open.contains_key(k) {
                who = k.clone();
            } else {
                self.alias.remove(&who);
            }
        }
        let m = l.msg.trim();
        if is_harness_marker(m) {
            // A marker ends what its writer was printing; with caller tags
            // another task's report goes on across it, without them nothing
            // can be told apart and everything open ends.
            let ending: Vec<Who> = match &who {
                Some(_) => vec![who.clone()],
                None => self.open.keys().cloned().collect(),
            };
            for w in ending {
                self.close(&w);
            }
            self.pending.remove(&who);
            return;
        }
        // A long silence, or a runaway, ends a report that has no end marker.
        if let (Some(b), Some(ts)) = (self.open.get(&who), l.ts) {
            if b.last_ts.is_some_and(|t| ts - t > 10.0) || b.text.len() > 600 {
                self.close(&who);
            }
        }
        if m.starts_with("NMI backtrace for cpu") && !self.open.contains_key(&who) {
            if let Some(k) = self
                .open
                .iter()
                .find(|(_, b)| b.head.map(Head::kind) == Some(ReportKind::RcuStall))
                .map(|(k, _)| k.clone())
            {
                self.alias.insert(who.clone(), k.clone());
                who = k;
            }
        }
        if let Some(head) = classify(m) {
            self.header(i, rawl, l, who, head);
            return;
        }
        if let Some(b) = self.open.get_mut(&who) {
            b.push(rawl, l);
            if b.ends_with(m) {
                self.close(&who);
            }
            return;
        }
        if is_cut_here(m) || is_separator(m) {
            self.pending.insert(who, vec![rawl.to_string()]);
        } else if let Some(pre) = self.pending.get_mut(&who) {
            // The message of a WARN() comes between `cut here` and `WARNING:`.
            pre.push(rawl.to_string());
            if pre.len() > 8 {
                self.pending.remove(&who);
            }
        }
    }

    fn header(&mut self, i: usize, rawl: &str, l: &LogLine, who: Who, head: Head) {
        let m = l.msg.trim();
        // The panic an oops, a warning or a hang caused belongs to it.
        if head == Head::Panic && !self.open.contains_key(&who) {
            if let Some((ix, at, ts, _)) = self.last_closed.take() {
                let soon = match (ts, l.ts) {
                    (Some(a), Some(b)) => b - a <= 5.0,
                    _ => true,
                };
                if self.kernel_lines - at <= 60 && soon {
                    if let Some(b) = self.done[ix].take() {
                        self.open.insert(who.clone(), b);
                    }
                }
            }
        }
        // A UBSAN check that traps (division by zero) reports, then the
        // trap oopses in the same place: one crash.
        if head.is_oops_line() && !self.open.contains_key(&who) {
            if let Some((ix, at, _, w)) = self.last_closed.clone() {
                let ubsan = self.done[ix]
                    .as_ref()
                    .is_some_and(|b| b.head == Some(Head::Ubsan));
                if ubsan && w == who && self.kernel_lines - at <= 5 {
                    self.last_closed = None;
                    if let Some(mut b) = self.done[ix].take() {
                        b.trace = TraceState::Done;
                        self.open.insert(who.clone(), b);
                    }
                }
            }
        }
        if let Some(b) = self.open.get_mut(&who) {
            let owner = b.head.expect("open builders have a head");
            let belongs = head == Head::Panic
                || (head.is_oops_line() && owner == Head::Ubsan)
                || (head.is_oops_line()
                    && matches!(
                        owner,
                        Head::KernelBug | Head::NullDeref | Head::PageFault | Head::Bug
                    ))
                || (head == Head::OomKill && owner == Head::OomStart);
            if belongs {
                b.subheads.push((head, m.to_string()));
                b.push(rawl, l);
                if b.ends_with(m) {
                    self.close(&who);
                }
                return;
            }
            self.close(&who);
        }
        let mut b = Builder {
            head: Some(head),
            header: m.to_string(),
            ts: l.ts,
            line: i,
            ..Default::default()
        };
        if let Some(pre) = self.pending.remove(&who) {
            b.preamble = pre;
        }
        b.push(rawl, l);
        let ends = b.ends_with(m);
        self.open.insert(who.clone(), b);
        if ends {
            self.close(&who);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(log: &str) -> Vec<String> {
        parse(log.lines()).into_iter().map(|r| r.title).collect()
    }

    #[test]
    fn decoys_in_a_normal_boot_are_not_reports() {
        let boot = "[    0.000000][    T0] Command line: console=ttyS0 panic=-1 oops=panic\r
[    0.100000][    T1] ACPI: Warning: Processor Platform Limit event\r
[    0.200000][    T0] RCU lockdep checking is enabled.\r
[    0.300000][    T1] Please report a bug to the maintainers\r
[    0.500000][    T0] Kernel command line: panic=-1\r
[    0.600000][    T1] x86/fpu: WARNING is not a problem here\r";
        assert!(titles(boot).is_empty());
    }

    #[test]
    fn a_bug_with_its_oops_and_panic_is_one_report() {
        let log = "\
[   20.100000][  T120] ------------[ cut here ]------------
[   20.100001][  T120] kernel BUG at drivers/misc/lkdtm/bugs.c:99!
[   20.100002][  T120] Oops: invalid opcode: 0000 [#1] SMP NOPTI
[   20.100003][  T120] CPU: 1 UID: 0 PID: 120 Comm: sh Not tainted 7.3.4-famfs-harness #1
[   20.100004][  T120] RIP: 0010:lkdtm_BUG+0x5/0x10
[   20.100005][  T120] Code: 90 90 0f 0b
[   20.100006][  T120] RSP: 0018:ffffc90000247dc8 EFLAGS: 00010246
[   20.100007][  T120] Call Trace:
[   20.100008][  T120]  <TASK>
[   20.100009][  T120]  lkdtm_do_action+0x16/0x30
[   20.100010][  T120]  direct_entry.constprop.0+0xd2/0x120
[   20.100011][  T120]  full_proxy_write+0x5a/0x90
[   20.100012][  T120]  vfs_write+0xd5/0x440
[   20.100013][  T120]  </TASK>
[   20.100014][  T120] ---[ end trace 0000000000000000 ]---
[   20.100015][  T120] RIP: 0010:lkdtm_BUG+0x5/0x10
[   20.100016][  T120] Kernel panic - not syncing: Fatal exception
[   20.100017][  T120] Kernel Offset: disabled
[   20.100018][  T120] ---[ end Kernel panic - not syncing: Fatal exception ]---";
        let rs = parse(log.lines());
        assert_eq!(rs.len(), 1, "{rs:#?}");
        let r = &rs[0];
        assert_eq!(r.title, "kernel BUG in lkdtm_BUG");
        assert_eq!(r.kind, ReportKind::Bug);
        assert_eq!(r.header, "kernel BUG at drivers/misc/lkdtm/bugs.c:99!");
        assert_eq!(r.rip.as_ref().unwrap().func, "lkdtm_BUG");
        let funcs: Vec<&str> = r.frames.iter().map(|f| f.func.as_str()).collect();
        assert_eq!(
            funcs,
            [
                "lkdtm_do_action",
                "direct_entry",
                "full_proxy_write",
                "vfs_write"
            ]
        );
        assert_eq!(r.frames[1].symbol, "direct_entry.constprop.0");
        assert!(r.text.first().unwrap().contains("cut here"));
        assert!(r.text.last().unwrap().contains("end Kernel panic"));
    }

    #[test]
    fn warnings_and_interleaved_cpus() {
        // Two CPUs print at once; the caller ids keep the reports apart.
        let log = "\
[    5.000000][  T200] ------------[ cut here ]------------
[    5.000001][  T200] WARNING: fs/dax.c:1024 at dax_iomap_rw+0x2a1/0x2f0, CPU#0: cat/200
[    5.000002][  T201] ------------[ cut here ]------------
[    5.000003][  T200] CPU: 0 UID: 0 PID: 200 Comm: cat Not tainted
[    5.000004][  T201] WARNING: mm/slub.c:10 at kfree.cold+0x1/0x9, CPU#1: rm/201
[    5.000005][  T200] RIP: 0010:dax_iomap_rw+0x2a1/0x2f0
[    5.000006][  T201] RIP: 0010:kfree.cold+0x1/0x9
[    5.000007][  T200] Call Trace:
[    5.000008][  T200]  <TASK>
[    5.000009][  T201] Call Trace:
[    5.000010][  T200]  famfs_fuse_read_iter+0x40/0x90
[    5.000011][  T201]  <TASK>
[    5.000012][  T201]  ? show_regs+0x10/0x20
[    5.000013][  T201]  do_unlinkat+0x10/0x90
[    5.000014][  T200]  </TASK>
[    5.000015][  T201]  </TASK>
[    5.000016][  T200] ---[ end trace 0000000000000000 ]---
[    5.000017][  T201] ---[ end trace 0000000000000000 ]---";
        let rs = parse(log.lines());
        assert_eq!(
            rs.iter().map(|r| r.title.as_str()).collect::<Vec<_>>(),
            ["WARNING in dax_iomap_rw", "WARNING in kfree"]
        );
        assert!(rs[0].text.iter().all(|l| !l.contains("T201")));
        assert_eq!(rs[1].frames.len(), 2);
        assert!(rs[1].frames[0].unreliable);
        // The old header format and a log without callers or timestamps.
        assert_eq!(
            titles("WARNING: CPU: 0 PID: 1 at fs/dax.c:10 dax_insert_entry.isra.0+0x10/0x20\n---[ end trace 0 ]---"),
            ["WARNING in dax_insert_entry"]
        );
    }

    #[test]
    fn kasan_titles_name_the_access_and_skip_library_frames() {
        let log = "\
[    9.000000][  T300] ==================================================================
[    9.000001][  T300] BUG: KASAN: slab-out-of-bounds in strlen+0x93/0xa0
[    9.000002][  T300] Read of size 1 at addr ffff888005e0c4b0 by task sh/300
[    9.000003][  T300] CPU: 0 UID: 0 PID: 300 Comm: sh Not tainted
[    9.000004][  T300] Call Trace:
[    9.000005][  T300]  <TASK>
[    9.000006][  T300]  dump_stack_lvl+0x4d/0x70
[    9.000007][  T300]  print_report+0xcf/0x620
[    9.000008][  T300]  kasan_report+0xb8/0xf0
[    9.000009][  T300]  strlen+0x93/0xa0
[    9.000010][  T300]  famfs_meta_alloc.constprop.0+0x1c/0x90
[    9.000011][  T300]  famfs_file_init+0x1c/0x90
[    9.000012][  T300]  </TASK>
[    9.000013][  T300] 
[    9.000014][  T300] Allocated by task 300:
[    9.000015][  T300]  kasan_save_stack+0x20/0x40
[    9.000016][  T300]  other_alloc_site+0x10/0x40
[    9.000017][  T300] 
[    9.000018][  T300] Memory state around the buggy address:
[    9.000019][  T300]  ffff888005e0c380: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
[    9.000020][  T300] ==================================================================
[    9.500000][  T300] some unrelated line";
        let rs = parse(log.lines());
        assert_eq!(rs.len(), 1);
        assert_eq!(
            rs[0].title,
            "KASAN: slab-out-of-bounds Read in famfs_meta_alloc"
        );
        assert_eq!(
            rs[0].frames.len(),
            6,
            "the allocation stack is not the trace"
        );
        assert!(rs[0].text.last().unwrap().ends_with("====="));
        assert!(
            rs[0].text[0].ends_with("====="),
            "the opening separator belongs"
        );
    }

    #[test]
    fn titles_hold_nothing_that_changes_between_runs() {
        let log = "\
[   30.000000][    C1] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [sh:101]
[   30.000001][    C1] CPU: 1 UID: 0 PID: 101 Comm: sh Not tainted
[   30.000002][    C1] RIP: 0010:lkdtm_SOFTLOCKUP+0x10/0x20
[   30.000003][    C1] Call Trace:
[   30.000004][    C1]  <IRQ>
[   30.000005][    C1]  watchdog_timer_fn+0x1d0/0x240
[   30.000006][    C1]  __hrtimer_run_queues+0x10/0x40
[   30.000007][    C1]  </IRQ>
[   30.000008][    C1]  <TASK>
[   30.000009][    C1]  lkdtm_do_action+0x16/0x30
[   30.000010][    C1]  </TASK>
[   40.000000][   T50] INFO: task umount:200 blocked for more than 30 seconds.
[   40.000001][   T50]       Not tainted 7.3.4 #1
[   40.000002][   T50] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.
[   40.000003][   T50] task:umount state:D stack:0 pid:200 tgid:200 ppid:1
[   40.000004][   T50] Call Trace:
[   40.000005][   T50]  <TASK>
[   40.000006][   T50]  __schedule+0x3b0/0xc40
[   40.000007][   T50]  schedule+0x27/0x80
[   40.000008][   T50]  fuse_wait_aborted+0x96/0xe0
[   40.000009][   T50]  </TASK>
[   41.000000][   T50] INFO: task cat:201 blocked in I/O wait for more than 31 seconds.
[   41.000001][   T50] Call Trace:
[   41.000002][   T50]  <TASK>
[   41.000003][   T50]  io_schedule+0x10/0x20
[   41.000004][   T50]  folio_wait_bit_common+0x10/0x20
[   41.000005][   T50]  filemap_read+0x10/0x20
[   41.000006][   T50]  </TASK>
[   50.000000][  T70] Oops: divide error: 0000 [#2] SMP
[   50.000001][  T70] RIP: 0010:famfs_div.part.0+0x10/0x20
[   50.000002][  T70] ---[ end trace 0000000000000000 ]---
[   51.000000][  T71] UBSAN: shift-out-of-bounds in fs/fuse/famfs.c:300:9
[   51.000001][  T71] shift exponent 40 is too large for 32-bit type 'int'
[   51.000002][  T71] Call Trace:
[   51.000003][  T71]  <TASK>
[   51.000004][  T71]  dump_stack_lvl+0x4d/0x70
[   51.000005][  T71]  __ubsan_handle_shift_out_of_bounds+0x1e7/0x390
[   51.000006][  T71]  famfs_devindex_ok+0x10/0x20
[   51.000007][  T71]  </TASK>
[   51.000008][  T71] ---[ end trace 0000000000000000 ]---
[   60.000000][  T80] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580
[   60.000001][  T80] in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 80, name: sh
[   60.000002][  T80] Call Trace:
[   60.000003][  T80]  <TASK>
[   60.000004][  T80]  __might_resched+0x10/0x20
[   60.000005][  T80]  mutex_lock_nested+0x10/0x20
[   60.000006][  T80]  famfs_lock_it+0x10/0x20
[   60.000007][  T80]  </TASK>
[   70.000000][  T90] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009";
        assert_eq!(
            titles(log),
            [
                "BUG: soft lockup in lkdtm_SOFTLOCKUP",
                "INFO: task hung in fuse_wait_aborted",
                "INFO: task hung in filemap_read",
                "divide error in famfs_div",
                "UBSAN: shift-out-of-bounds in famfs_devindex_ok",
                "BUG: sleeping function called from invalid context in famfs_lock_it",
                "kernel panic: Attempted to kill init!",
            ]
        );
    }

    #[test]
    fn lockdep_reports_are_not_warnings() {
        let log = "\
[    3.000000][  T10] ======================================================
[    3.000001][  T10] WARNING: possible circular locking dependency detected
[    3.000002][  T10] 7.3.4 #1 Not tainted
[    3.000003][  T10] ------------------------------------------------------
[    3.000004][  T10] -> #1 (&fc->lock){+.+.}-{3:3}:
[    3.000005][  T10]        lock_acquire+0xc8/0x2e0
[    3.000006][  T10]        famfs_other+0x10/0x20
[    3.000007][  T10] stack backtrace:
[    3.000008][  T10] Call Trace:
[    3.000009][  T10]  <TASK>
[    3.000010][  T10]  dump_stack_lvl+0x4d/0x70
[    3.000011][  T10]  check_noncircular+0x10/0x20
[    3.000012][  T10]  __lock_acquire+0x10/0x20
[    3.000013][  T10]  lock_acquire+0xc8/0x2e0
[    3.000014][  T10]  __mutex_lock+0x10/0x20
[    3.000015][  T10]  famfs_get_daxdev+0x10/0x20
[    3.000016][  T10]  </TASK>";
        let rs = parse(log.lines());
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].kind, ReportKind::Lockdep);
        assert_eq!(rs[0].title, "possible deadlock in famfs_get_daxdev");
    }

    #[test]
    fn a_panic_long_after_a_report_is_its_own() {
        let mut log = String::from(
            "[ 1.0][ T1] WARNING: a.c:1 at f+0x1/0x2, CPU#0: sh/1\n[ 1.1][ T1] ---[ end trace 0 ]---\n",
        );
        for i in 0..100 {
            log.push_str(&format!("[ 2.{i:03}][ T1] noise {i}\n"));
        }
        log.push_str("[ 3.0][ T1] Kernel panic - not syncing: dumptest\n");
        assert_eq!(titles(&log), ["WARNING in f", "kernel panic: dumptest"]);
        // Right after the warning, with panic_on_warn, it is part of it.
        let log = "[ 1.0][ T1] WARNING: a.c:1 at f+0x1/0x2, CPU#0: sh/1\n[ 1.1][ T1] ---[ end trace 0 ]---\n[ 1.2][ T1] Kernel panic - not syncing: kernel: panic_on_warn set ...\n";
        let rs = parse(log.lines());
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].text.len(), 3);
    }

    #[test]
    fn a_report_goes_on_across_another_tasks_marker() {
        let log = "\
[ 1.0][  T90] WARNING: fs/fuse/dev.c:1 at fuse_conn_put+0x1/0x2, CPU#0: kworker/0:1/90
[ 1.1][   T1] fh: case x/001 end
[ 1.2][  T90] Call Trace:
[ 1.3][  T90]  <TASK>
[ 1.4][  T90]  process_one_work+0x1/0x2
[ 1.5][  T90]  </TASK>
[ 1.6][  T90] ---[ end trace 0000000000000000 ]---";
        let rs = parse(log.lines());
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].frames.len(), 1);
        assert!(rs[0].text.iter().all(|l| !l.contains("fh: case")));
    }

    #[test]
    fn a_daemon_killed_by_a_signal_is_titled_by_program_and_signal() {
        let log = "\
[   10.666657][  T366] famfs_fused: fuse_worker: potentially unexpected fatal signal 11.
[   10.666887][  T366] CPU: 0 UID: 0 PID: 366 Comm: fuse_worker Not tainted 7.3.4-famfs-harness #2 PREEMPTLAZY
[   10.667039][  T366] RIP: 0033:0x7f1ec70ef219
[   10.667230][  T366] RSP: 002b:00007f1eb7ffdaf8 EFLAGS: 00000283
[   10.667334][  T366] FS:  00007f1eb7fff6c0 GS:  0000000000000000
[   10.700000][  T366] fuse: something the same task prints later
[   11.000000][  T412] sh: potentially unexpected fatal signal 7.
[   11.100000][  T413] /opt/x: y: potentially unexpected fatal signal 64.
";
        let rs = parse(log.lines());
        let titles: Vec<&str> = rs.iter().map(|r| r.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "fatal signal SIGSEGV in famfs_fused",
                "fatal signal SIGBUS in sh",
                "fatal signal 64 in /opt/x"
            ]
        );
        assert_eq!(rs[0].kind, ReportKind::FatalSignal);
        // The report ends with the registers; later lines are not in it.
        assert_eq!(rs[0].text.len(), 5);
        assert!(rs[0].rip.is_none());
        assert!(check_finding(&rs[0].title).is_ok());
        assert!(check_finding("fatal signal").is_ok());
    }

    #[test]
    fn a_message_the_console_replays_is_one_line() {
        let log = "\
[   21.558059][   T75] ------------[ cut here ]------------
[   21.558175][   T75] UBSAN: division-overflow in /root/.cache/famf
** replaying previous printk message **
[   21.558175][   T75] UBSAN: division-overflow in /tmp/linux/fs/fuse/famfs.c:723:39
[   21.558307][   T75] division by zero
[   21.559414][   T75] Call Trace:
[   21.559494][   T75]  <TASK>
[   21.559589][   T75]  dump_stack_lvl+0x7c/0x90
[   21.560297][   T75]  __ubsan_handle_divrem_overflow+0x112/0x1d0
[   21.560397][   T75]  famfs_fuse_iomap_begin.cold+0x42/0x57
[   21.560497][   T75]  </TASK>
[   21.562113][   T75] ---[ end trace ]---
";
        assert_eq!(
            titles(log),
            ["UBSAN: division-overflow in famfs_fuse_iomap_begin"]
        );
    }

    #[test]
    fn kinds_by_label() {
        for k in ReportKind::ALL {
            assert_eq!(ReportKind::by_label(k.label()), Some(k));
        }
        assert_eq!(ReportKind::by_label("kasan"), Some(ReportKind::Kasan));
        assert_eq!(ReportKind::by_label("nonsense"), None);
    }
}
