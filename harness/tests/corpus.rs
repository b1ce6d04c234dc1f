//! The report parser against real console logs captured in the VM
//! (`tests/corpus/`): every log gives exactly the reports `titles.yaml`
//! lists (one per event), the same in every capture.

use famfs_harness::judge::reports;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn captures(stem: &str) -> Vec<PathBuf> {
    let p = corpus().join(stem);
    let dir = p.parent().unwrap();
    let base = p.file_name().unwrap().to_string_lossy().into_owned();
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| {
            let n = f.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{base}.")) && n.ends_with(".log")
        })
        .collect();
    v.sort();
    v
}

/// One report's title, or the titles of a log with several events.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Titles {
    One(String),
    Several(Vec<String>),
}

#[test]
fn every_captured_event_gives_one_report_with_a_stable_title() {
    let text = std::fs::read_to_string(corpus().join("titles.yaml")).unwrap();
    let want: BTreeMap<String, Titles> = serde_saphyr::from_str(&text).unwrap();
    assert!(!want.is_empty());
    // Nothing that changes between runs may be in a title.
    let unstable = regex::Regex::new(r"0x[0-9a-f]|\[#\d|CPU#|\d+s!|/root/|pid").unwrap();
    let mut listed = 0;
    for (stem, titles_want) in &want {
        let want_titles: Vec<&str> = match titles_want {
            Titles::One(t) => vec![t.as_str()],
            Titles::Several(v) => v.iter().map(String::as_str).collect(),
        };
        let files = captures(stem);
        assert!(
            files.len() >= 2,
            "{stem}: two captures needed, found {files:?}"
        );
        for f in files {
            let log = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            let rs = reports::parse(log.lines());
            let titles: Vec<&str> = rs.iter().map(|r| r.title.as_str()).collect();
            assert_eq!(titles, want_titles, "{}", f.display());
            for title in &titles {
                assert!(!unstable.is_match(title), "{title}");
            }
            listed += 1;
        }
    }
    // Every log in the corpus is listed.
    let mut all = 0;
    for kernel in std::fs::read_dir(corpus()).unwrap().flatten() {
        if kernel.path().is_dir() {
            all += std::fs::read_dir(kernel.path())
                .unwrap()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .count();
        }
    }
    assert_eq!(listed, all, "a corpus log is missing from titles.yaml");
}
