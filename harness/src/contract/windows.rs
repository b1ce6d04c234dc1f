//! Which case was running when the kernel printed a console line: the
//! runner's markers cut a console log into case windows (start to done) and
//! the rest (boot, between cases, after the last case, shutdown). A report
//! belongs to the window its header line is in; nothing falls between. The
//! markers are the guest runner's, so reading them is part of the contract.

use super::kmsg;
use super::marker;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Windows {
    /// (case id, start line, done line); `None` while the case never
    /// finished (the VM went down in it).
    pub cases: Vec<(String, usize, Option<usize>)>,
    /// The line where the guest runner started, if it did.
    pub runner_start: Option<usize>,
}

impl Windows {
    pub fn of(lines: &[&str]) -> Windows {
        let mut w = Windows::default();
        for (i, l) in lines.iter().enumerate() {
            let msg = kmsg::split(l).msg;
            if msg.trim() == marker::RUNNER_START {
                w.runner_start.get_or_insert(i);
                continue;
            }
            match marker::parse(&msg) {
                Some((id, "start")) => {
                    // A window whose `done` never reached the console ends
                    // where the next case starts.
                    if let Some(last) = w.cases.last_mut().filter(|c| c.2.is_none()) {
                        last.2 = Some(i.saturating_sub(1));
                    }
                    w.cases.push((id.to_string(), i, None))
                }
                Some((id, "done")) => {
                    if let Some(c) = w.cases.iter_mut().rev().find(|c| c.0 == id) {
                        c.2 = Some(i);
                    }
                }
                _ => {}
            }
        }
        w
    }

    /// The case whose window holds line `i`.
    pub fn case_at(&self, i: usize) -> Option<&str> {
        self.cases
            .iter()
            .find(|(_, s, e)| i >= *s && e.is_none_or(|e| i <= e))
            .map(|(id, _, _)| id.as_str())
    }

    /// The lines of one case's window (to the end when it never finished).
    pub fn slice<'a>(&self, lines: &[&'a str], id: &str) -> Vec<&'a str> {
        match self.cases.iter().rev().find(|c| c.0 == id) {
            Some((_, s, e)) => {
                lines[*s..=e.unwrap_or(lines.len() - 1).min(lines.len() - 1)].to_vec()
            }
            None => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::reports::KernelReport;

    #[test]
    fn windows_cut_by_markers() {
        let con = [
            "[ 0.5] WARNING: a.c:1 at boot_fn+0x1/0x2, CPU#0: swapper/1",
            "[ 1.0] fh: runner start",
            "[ 2.0] fh: case x/001 start",
            "[ 2.1] WARNING: b.c:2 at case_fn+0x1/0x2, CPU#0: sh/5",
            "[ 2.2] fh: case x/001 end",
            "[ 2.3] WARNING: b.c:3 at tail_fn+0x1/0x2, CPU#0: kworker/5",
            "[ 2.4] fh: case x/001 done",
            "[ 2.5] WARNING: c.c:3 at between_fn+0x1/0x2, CPU#0: kworker/5",
            "[ 3.0] fh: case x/002 start",
            "[ 3.1] Kernel panic - not syncing: dumptest",
        ];
        let w = Windows::of(&con);
        assert_eq!(w.runner_start, Some(1));
        assert_eq!(
            w.cases,
            vec![("x/001".into(), 2, Some(6)), ("x/002".into(), 8, None)]
        );
        let reports = crate::judge::reports::parse(con);
        let outside = crate::judge::outside(&w, &reports);
        let titles = |rs: &[KernelReport]| rs.iter().map(|r| r.title.clone()).collect::<Vec<_>>();
        assert_eq!(
            titles(&outside),
            vec!["WARNING in boot_fn", "WARNING in between_fn"]
        );
        let in_case: Vec<_> = reports
            .iter()
            .filter(|r| w.case_at(r.line) == Some("x/001"))
            .cloned()
            .collect();
        assert_eq!(
            titles(&in_case),
            vec!["WARNING in case_fn", "WARNING in tail_fn"]
        );
        assert_eq!(w.case_at(9), Some("x/002"));
        assert_eq!(w.slice(&con, "x/002").len(), 2);
    }
}
