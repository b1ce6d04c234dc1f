//! Where a case's time went. The case's helpers (cases/common.sh `_phase`
//! and `_phase_end`) append one line per mark to `$FH_PHASES_FILE`:
//! `+NAME UPTIME` opens a phase, `- UPTIME` closes the innermost one, with
//! UPTIME the first field of /proc/uptime (read by the shell without a
//! fork). Time belongs to the innermost open phase; what no phase holds is
//! `body`. The benchmark (`cargo xtask bench suite`) adds these up.

use std::collections::BTreeMap;

/// Milliseconds per phase of a script that ran from `start` to `end`
/// (uptime seconds, as the marks are), `body` included. Damaged lines are
/// skipped; marks outside the script's span are clamped into it; phases
/// left open end with the script.
pub fn tally(marks: &str, start: f64, end: f64) -> BTreeMap<String, u64> {
    let end = end.max(start);
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new();
    let mut last = start;
    let charge = |stack: &[String], from: f64, to: f64, out: &mut BTreeMap<String, f64>| {
        let name = stack.last().map(String::as_str).unwrap_or("body");
        *out.entry(name.to_string()).or_default() += (to - from).max(0.0);
    };
    for line in marks.lines() {
        let mut it = line.split_whitespace();
        let (Some(mark), Some(t), None) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Ok(t) = t.parse::<f64>() else { continue };
        let t = t.clamp(last, end);
        if let Some(name) = mark.strip_prefix('+').filter(|n| !n.is_empty()) {
            charge(&stack, last, t, &mut out);
            stack.push(name.to_string());
        } else if mark == "-" && !stack.is_empty() {
            charge(&stack, last, t, &mut out);
            stack.pop();
        } else {
            continue;
        }
        last = t;
    }
    charge(&stack, last, end, &mut out);
    out.into_iter()
        .map(|(k, v)| (k, (v * 1000.0).round() as u64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_phases_charge_the_innermost_and_the_rest_is_body() {
        let marks = "+setup 10.00\n- 10.50\n+daemon 10.50\n+wait 10.60\n- 10.90\n- 11.00\n+teardown 12.00\n";
        let t = tally(marks, 9.90, 12.25);
        assert_eq!(t["setup"], 500);
        assert_eq!(t["daemon"], 200, "{t:?}");
        assert_eq!(t["wait"], 300);
        assert_eq!(t["teardown"], 250, "open at the end: ends with the script");
        assert_eq!(t["body"], 100 + 1000);
        assert_eq!(t.values().sum::<u64>(), 2350, "all of the script's time");
    }

    #[test]
    fn damaged_or_out_of_order_marks_lose_no_time() {
        let marks = "garbage\n+x\n- \n+wait 5.0\n- 4.0\n+ 6.0\n- 7.0\n+mount 99.0\n";
        let t = tally(marks, 4.5, 8.0);
        assert_eq!(t.values().sum::<u64>(), 3500, "{t:?}");
        // The close before the open is clamped to it; a mark after the
        // script's end opens a phase of no time.
        assert_eq!(t["wait"], 0);
        assert_eq!(t["mount"], 0);
        assert_eq!(t["body"], 3500);
        assert_eq!(tally("", 1.0, 1.0), BTreeMap::from([("body".into(), 0)]));
    }
}
