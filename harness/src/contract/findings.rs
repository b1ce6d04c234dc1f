//! The kinds of kernel report and the shapes of their titles: the
//! vocabulary a case's `expect.fail` names and the judge's titles use, so
//! the case loader can check a header without the judge.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Warning,
    Bug,
    Oops,
    Gpf,
    Kasan,
    Kfence,
    Ubsan,
    Lockdep,
    HungTask,
    SoftLockup,
    RcuStall,
    Panic,
    Oom,
    /// A user process killed by a signal that dumps core, as
    /// `print-fatal-signals` shows it: a daemon crash is a finding.
    FatalSignal,
}

impl ReportKind {
    /// The name `expect.fail` uses for the kind.
    pub fn label(self) -> &'static str {
        match self {
            ReportKind::Warning => "WARNING",
            ReportKind::Bug => "BUG",
            ReportKind::Oops => "Oops",
            ReportKind::Gpf => "general protection fault",
            ReportKind::Kasan => "KASAN",
            ReportKind::Kfence => "KFENCE",
            ReportKind::Ubsan => "UBSAN",
            ReportKind::Lockdep => "lockdep",
            ReportKind::HungTask => "hung task",
            ReportKind::SoftLockup => "soft lockup",
            ReportKind::RcuStall => "RCU stall",
            ReportKind::Panic => "panic",
            ReportKind::Oom => "out of memory",
            ReportKind::FatalSignal => "fatal signal",
        }
    }

    pub const ALL: [ReportKind; 14] = [
        ReportKind::Warning,
        ReportKind::Bug,
        ReportKind::Oops,
        ReportKind::Gpf,
        ReportKind::Kasan,
        ReportKind::Kfence,
        ReportKind::Ubsan,
        ReportKind::Lockdep,
        ReportKind::HungTask,
        ReportKind::SoftLockup,
        ReportKind::RcuStall,
        ReportKind::Panic,
        ReportKind::Oom,
        ReportKind::FatalSignal,
    ];

    pub fn by_label(s: &str) -> Option<ReportKind> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.label().eq_ignore_ascii_case(s))
    }
}

/// How titles begin (see `title`): what a whole title in `expect.fail` or
/// a known-defect entry must start with.
pub const TITLE_FORMS: &[&str] = &[
    "WARNING in ",
    "refcount bug in ",
    "kernel BUG in ",
    "BUG: ",
    "KASAN: ",
    "KFENCE: ",
    "UBSAN: ",
    "INFO: ",
    "possible deadlock in ",
    "task still has locks held",
    "general protection fault",
    "divide error",
    "invalid opcode",
    "Oops",
    "kernel panic: ",
    "out of memory",
    "fatal signal ",
];

/// Is `s` a finding kind (`WARNING`) or shaped like a report title
/// (`WARNING in dax_iomap_rw`)? An error otherwise, with the closest kind.
pub fn check_finding(s: &str) -> Result<(), String> {
    if ReportKind::by_label(s).is_some() || TITLE_FORMS.iter().any(|f| s.starts_with(f)) {
        return Ok(());
    }
    let labels: Vec<&str> = ReportKind::ALL.iter().map(|k| k.label()).collect();
    let hint = crate::base::yaml::closest(s, labels.iter().copied())
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
    Err(format!(
        "`{s}` is neither a finding kind ({}) nor a report title (like `WARNING in FUNCTION`){hint}",
        labels.join(", ")
    ))
}
