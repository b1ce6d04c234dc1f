//! `summary.json` of a run, as `compare`, `merge`, `--baseline` and the
//! nightly read it back: loaded by [`crate::report::baseline::load`], then
//! compared with a real summary both ways, timed, tallied, rendered as
//! JUnit and (every few inputs) merged with another run. The inputs are a
//! real summary (serialized from one built here, reports from the corpus
//! included) mutated as a JSON tree (deleted keys, swapped and retyped
//! values, huge numbers) and as text.

use super::{located, mutate, Fuzz, Outcome, Rng};
use crate::judge::verdict::Outcome as Verdict;
use crate::report::results::{BootRecord, CaseResult, RunDir, Summary};
use crate::report::{baseline, merge, repeat, results, timing};
use crate::vm::{Accel, Backend, BootEnd};
use anyhow::Result;
use serde_json::Value;
use std::path::PathBuf;

/// A summary like a run writes: every outcome, boots that ended each way,
/// real kernel reports.
pub fn sample() -> Result<Summary> {
    let corpus = crate::image::guest_program::workspace_root().join("harness/tests/corpus");
    let mut reports = Vec::new();
    for name in ["default/lkdtm-003.1.log", "debug/lkdtm-001.1.log"] {
        let text = std::fs::read_to_string(corpus.join(name))?;
        reports.extend(crate::judge::reports::parse(text.lines()));
    }
    let case = |id: &str, outcome: Verdict, ms: u64, reports: Vec<_>| CaseResult {
        id: id.into(),
        outcome: outcome.clone(),
        raw_outcome: outcome.clone(),
        reasons: vec![format!("{outcome:?}: because")],
        duration_ms: ms,
        boot: Some(1),
        reports,
        dir: format!("cases/{}", results::case_dir_name(id)),
        phases: [("boot".to_string(), 900), ("body".to_string(), ms)]
            .into_iter()
            .collect(),
    };
    let mut s = Summary {
        run_id: "20260101-000000-1".into(),
        kernel: serde_json::json!({
            "name": "famfs-v10", "release": "7.3.4", "key": "abc",
            "fragments": ["default", "debug"],
            "source": {"kind": "debian", "patches": [{"name": "0001.patch", "sha256": "00"}]}
        }),
        backend: Backend::Qemu,
        accel: Some(Accel::Tcg),
        profile: "v10".into(),
        boots: vec![
            BootRecord {
                index: 1,
                topology: "nvdimm 512M devdax".into(),
                backend: Backend::Qemu,
                accel: Accel::Tcg,
                end: BootEnd::Completed,
                hello_ms: Some(900),
                setup_ms: Some(1200),
                first_result_ms: Some(2000),
                duration_ms: 30_000,
                console_log: "boot-1/console.log".into(),
                reports_outside_cases: vec![],
            },
            BootRecord {
                index: 2,
                topology: "cxl 256M".into(),
                backend: Backend::Vng,
                accel: Accel::Kvm,
                end: BootEnd::Died {
                    status: Some(1),
                    reason: "kernel panic".into(),
                },
                hello_ms: None,
                setup_ms: None,
                first_result_ms: None,
                duration_ms: 5_000,
                console_log: "boot-2/console.log".into(),
                reports_outside_cases: reports.clone(),
            },
        ],
        cases: vec![
            case("dax/001", Verdict::Pass, 1200, vec![]),
            case(
                "famfs/010[chunk-size-0]",
                Verdict::Fail,
                3400,
                reports.clone(),
            ),
            case("famfs/010[wrap]", Verdict::KnownFail, 2100, reports),
            case("fuse/003", Verdict::NotRun, 0, vec![]),
            case("selftest/001", Verdict::ExpectedFail, 800, vec![]),
            case("boot/2", Verdict::Error, 5000, vec![]),
            case("famfs/001#2", Verdict::Pass, 1500, vec![]),
        ],
        counts: Default::default(),
        duration_ms: 60_000,
    };
    s.count();
    Ok(s)
}

/// A value of another shape or an edge of its own.
fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => Value::from(u64::MAX),
        2 => Value::from(i64::MIN),
        3 => Value::from(-1),
        4 => Value::from(1e300),
        5 => Value::from(0),
        6 => Value::from(mutate::odd_string(rng)),
        7 => Value::Array(vec![]),
        8 => Value::Object(Default::default()),
        9 => Value::Bool(true),
        10 => Value::from(u64::from(u32::MAX) + 1),
        _ => Value::from("pass"),
    }
}

/// A random node of the tree, up to `depth` levels down.
fn pick_node<'a>(rng: &mut Rng, v: &'a mut Value, depth: usize) -> &'a mut Value {
    let len = match &*v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    if depth == 0 || len == 0 {
        return v;
    }
    let k = rng.below(len);
    match v {
        Value::Object(m) => {
            let x = m.values_mut().nth(k).expect("k is below the length");
            pick_node(rng, x, depth - 1)
        }
        Value::Array(a) => pick_node(rng, &mut a[k], depth - 1),
        other => other,
    }
}

/// JSON-tree mutations.
fn tree(rng: &mut Rng, v: &mut Value) {
    for _ in 0..rng.between(1, 4) {
        let depth = rng.below(6);
        let n = pick_node(rng, v, depth);
        match rng.below(5) {
            0 => {
                if let Value::Object(m) = n {
                    if !m.is_empty() {
                        let k = m
                            .keys()
                            .nth(rng.below(m.len()))
                            .cloned()
                            .unwrap_or_default();
                        m.remove(&k);
                    }
                }
            }
            1 => *n = odd_value(rng),
            2 => {
                if let Value::Array(a) = n {
                    if let Some(x) = a.first().cloned() {
                        for _ in 0..rng.between(1, 50) {
                            a.push(x.clone());
                        }
                    }
                }
            }
            3 => {
                if let Value::Object(m) = n {
                    m.insert(mutate::odd_string(rng), odd_value(rng));
                }
            }
            _ => {
                if let Value::Object(m) = n {
                    let vals: Vec<Value> = m.values().cloned().collect();
                    if vals.len() >= 2 {
                        let keys: Vec<String> = m.keys().cloned().collect();
                        let (a, b) = (rng.below(keys.len()), rng.below(keys.len()));
                        m.insert(keys[a].clone(), vals[b].clone());
                        m.insert(keys[b].clone(), vals[a].clone());
                    }
                }
            }
        }
    }
}

pub struct Summaries {
    _dir: tempfile::TempDir,
    run: PathBuf,
    other: PathBuf,
    out: PathBuf,
    base: Summary,
    json: Value,
    text: String,
    fed: u64,
}

impl Summaries {
    pub fn new() -> Result<Summaries> {
        let base = sample()?;
        let text = serde_json::to_string_pretty(&base)?;
        let dir = tempfile::tempdir()?;
        let run = dir.path().join("run");
        let other = dir.path().join("other");
        std::fs::create_dir_all(&run)?;
        std::fs::create_dir_all(&other)?;
        // The other shard of a merge: a real summary without the trials
        // the fuzzed one has.
        let mut o = base.clone();
        for c in &mut o.cases {
            c.id = format!("other/{}", c.id);
        }
        std::fs::write(other.join("summary.json"), serde_json::to_string(&o)?)?;
        Ok(Summaries {
            out: dir.path().join("merged"),
            _dir: dir,
            run,
            other,
            json: serde_json::to_value(&base)?,
            base,
            text,
            fed: 0,
        })
    }
}

impl Fuzz for Summaries {
    fn input(&mut self, rng: &mut Rng) -> Vec<u8> {
        match rng.below(10) {
            0..=4 => {
                let mut v = self.json.clone();
                tree(rng, &mut v);
                let s = if rng.chance(1, 2) {
                    serde_json::to_string_pretty(&v)
                } else {
                    serde_json::to_string(&v)
                };
                s.unwrap_or_default().into_bytes()
            }
            5..=8 => mutate::text(rng, &self.text, &self.text),
            _ => {
                let mut v = self.json.clone();
                tree(rng, &mut v);
                let s = serde_json::to_string_pretty(&v).unwrap_or_default();
                mutate::text(rng, &s, &self.text)
            }
        }
    }

    fn parse(&mut self, input: &[u8]) -> Outcome {
        let file = self.run.join("summary.json");
        if std::fs::write(&file, input).is_err() {
            return Outcome::Accepted;
        }
        let s = match baseline::load(&self.run) {
            Ok(s) => s,
            Err(e) => return located(&e, &file),
        };
        for pct in [0, 50, u32::MAX] {
            let _ = baseline::compare(&self.base, &s, pct).render();
            let c = baseline::compare(&s, &self.base, pct);
            let _ = (c.render(), c.regressed());
        }
        let t = timing::of(&s);
        let _ = timing::render(&t, 5);
        let _ = timing::render_trials(&t, 5);
        let _ = timing::compare(&timing::of(&self.base), &t);
        let _ = repeat::render(&repeat::tally(s.cases.iter()));
        let _ = results::junit(&s, &RunDir::open(&self.run));
        let _ = results::kernel_properties(&s.kernel);
        // A merge writes a run directory: not every input, it is slow.
        if self.fed.is_multiple_of(16) {
            let _ = std::fs::remove_dir_all(&self.out);
            let _ = merge::merge(&[self.run.clone(), self.other.clone()], &self.out);
        }
        self.fed += 1;
        Outcome::Accepted
    }
}
