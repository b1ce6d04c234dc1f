//! Kernel coverage of a run (`--coverage`): each case's gcov counts (the
//! `.gcda` files the guest read from debugfs) turned into line, branch and
//! function counts with the host's `gcov` and the build's `.gcno` files,
//! written as lcov tracefiles per case and merged, with an HTML report by
//! `genhtml` and a summary line per file.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which source files a report keeps: what the coverage variant instruments.
pub fn wanted(path: &str) -> bool {
    path.contains("/fs/fuse/") || path.ends_with("/fs/dax.c")
}

/// Counts of one source file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileCov {
    /// Line -> times executed.
    pub lines: BTreeMap<u32, u64>,
    /// (line, branch index) -> times taken.
    pub branches: BTreeMap<(u32, u32), u64>,
    /// Function -> (first line, times called).
    pub functions: BTreeMap<String, (u32, u64)>,
}

/// Counts of a set of source files, by absolute path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    pub files: BTreeMap<String, FileCov>,
}

/// One file's figures: hit and total lines, branches, functions.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSummary {
    pub path: String,
    pub lines: (usize, usize),
    pub branches: (usize, usize),
    pub functions: (usize, usize),
}

fn pct((hit, all): (usize, usize)) -> f64 {
    if all == 0 {
        100.0
    } else {
        hit as f64 * 100.0 / all as f64
    }
}

impl FileSummary {
    /// `fs/fuse/famfs.c: lines 812/903 (89.9%), branches ..., functions ...`
    /// (the path from the kernel tree's `fs/` on).
    pub fn render(&self) -> String {
        let p = self
            .path
            .rfind("/fs/")
            .map_or(self.path.as_str(), |i| &self.path[i + 1..]);
        let f = |(h, a): (usize, usize)| format!("{h}/{a} ({:.1}%)", pct((h, a)));
        format!(
            "{p}: lines {}, branches {}, functions {}",
            f(self.lines),
            f(self.branches),
            f(self.functions)
        )
    }

    pub fn line_pct(&self) -> f64 {
        pct(self.lines)
    }
}

impl Coverage {
    /// Add one `gcov --json-format` document (files outside [`wanted`]
    /// are left out; relative paths are the compiler's working directory's).
    pub fn add_gcov_json(&mut self, doc: &serde_json::Value) {
        let cwd = doc["current_working_directory"].as_str().unwrap_or("/");
        for f in doc["files"].as_array().into_iter().flatten() {
            let Some(name) = f["file"].as_str() else {
                continue;
            };
            let path = normalize(&Path::new(cwd).join(name));
            if !wanted(&path) {
                continue;
            }
            let fc = self.files.entry(path).or_default();
            for l in f["lines"].as_array().into_iter().flatten() {
                let n = l["line_number"].as_u64().unwrap_or(0) as u32;
                *fc.lines.entry(n).or_default() += l["count"].as_u64().unwrap_or(0);
                for (i, b) in l["branches"].as_array().into_iter().flatten().enumerate() {
                    *fc.branches.entry((n, i as u32)).or_default() +=
                        b["count"].as_u64().unwrap_or(0);
                }
            }
            for func in f["functions"].as_array().into_iter().flatten() {
                let name = func["name"].as_str().unwrap_or("?").to_string();
                let e = fc.functions.entry(name).or_default();
                e.0 = func["start_line"].as_u64().unwrap_or(0) as u32;
                e.1 += func["execution_count"].as_u64().unwrap_or(0);
            }
        }
    }

    /// Sum another run's or case's counts into these.
    pub fn merge(&mut self, other: &Coverage) {
        for (path, o) in &other.files {
            let fc = self.files.entry(path.clone()).or_default();
            for (k, v) in &o.lines {
                *fc.lines.entry(*k).or_default() += v;
            }
            for (k, v) in &o.branches {
                *fc.branches.entry(*k).or_default() += v;
            }
            for (k, (line, v)) in &o.functions {
                let e = fc.functions.entry(k.clone()).or_default();
                e.0 = *line;
                e.1 += v;
            }
        }
    }

    /// The lcov tracefile (`geninfo`'s format, which `genhtml` reads).
    pub fn to_lcov(&self, test: &str) -> String {
        let mut s = String::new();
        for (path, f) in &self.files {
            s += &format!(
                "TN:{}\nSF:{path}\n",
                test.replace(['/', '[', ']', '-'], "_")
            );
            for (name, (line, n)) in &f.functions {
                s += &format!("FN:{line},{name}\n");
                s += &format!("FNDA:{n},{name}\n");
            }
            let fh = f.functions.values().filter(|(_, n)| *n > 0).count();
            s += &format!("FNF:{}\nFNH:{fh}\n", f.functions.len());
            for ((line, i), n) in &f.branches {
                s += &format!("BRDA:{line},0,{i},{n}\n");
            }
            let bh = f.branches.values().filter(|n| **n > 0).count();
            s += &format!("BRF:{}\nBRH:{bh}\n", f.branches.len());
            for (line, n) in &f.lines {
                s += &format!("DA:{line},{n}\n");
            }
            let lh = f.lines.values().filter(|n| **n > 0).count();
            s += &format!("LF:{}\nLH:{lh}\nend_of_record\n", f.lines.len());
        }
        s
    }

    /// Read an lcov tracefile (one [`Coverage::to_lcov`] wrote, or lcov's).
    pub fn from_lcov(text: &str, file: &Path) -> Result<Coverage> {
        let mut c = Coverage::default();
        let mut cur: Option<String> = None;
        for (i, l) in text.lines().enumerate() {
            let bad = || anyhow::anyhow!("{}:{}: not an lcov record: {l}", file.display(), i + 1);
            let (key, val) = l.split_once(':').unwrap_or((l, ""));
            let nums = |v: &str| -> Result<Vec<u64>> {
                v.split(',')
                    .map(|x| x.parse::<u64>().map_err(|_| bad()))
                    .collect()
            };
            match key {
                "SF" => cur = Some(val.to_string()),
                "end_of_record" => cur = None,
                "DA" | "BRDA" | "FN" | "FNDA" => {
                    let path = cur.clone().ok_or_else(bad)?;
                    let f = c.files.entry(path).or_default();
                    match key {
                        "DA" => {
                            let n = nums(val)?;
                            *f.lines.entry(n[0] as u32).or_default() +=
                                n.get(1).copied().ok_or_else(bad)?;
                        }
                        "BRDA" => {
                            let p: Vec<&str> = val.split(',').collect();
                            if p.len() != 4 {
                                return Err(bad());
                            }
                            let line = p[0].parse::<u32>().map_err(|_| bad())?;
                            let idx = p[2].parse::<u32>().map_err(|_| bad())?;
                            let n = p[3].parse::<u64>().unwrap_or(0); // "-": never reached
                            *f.branches.entry((line, idx)).or_default() += n;
                        }
                        "FN" => {
                            let (line, name) = val.split_once(',').ok_or_else(bad)?;
                            let line = line.parse::<u32>().map_err(|_| bad())?;
                            f.functions.entry(name.to_string()).or_default().0 = line;
                        }
                        _ => {
                            let (n, name) = val.split_once(',').ok_or_else(bad)?;
                            let n = n.parse::<u64>().map_err(|_| bad())?;
                            f.functions.entry(name.to_string()).or_default().1 += n;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// Per file: hit and total lines, branches and functions.
    pub fn summary(&self) -> Vec<FileSummary> {
        self.files
            .iter()
            .map(|(path, f)| {
                let hit = |it: &mut dyn Iterator<Item = &u64>| it.filter(|n| **n > 0).count();
                FileSummary {
                    path: path.clone(),
                    lines: (hit(&mut f.lines.values()), f.lines.len()),
                    branches: (hit(&mut f.branches.values()), f.branches.len()),
                    functions: (
                        f.functions.values().filter(|(_, n)| *n > 0).count(),
                        f.functions.len(),
                    ),
                }
            })
            .collect()
    }

    /// Lines `self` reached that `other` did not, per file.
    pub fn reached_only(&self, other: &Coverage) -> BTreeMap<String, Vec<u32>> {
        let mut out = BTreeMap::new();
        for (path, f) in &self.files {
            let theirs = other.files.get(path);
            let only: Vec<u32> = f
                .lines
                .iter()
                .filter(|(l, n)| {
                    **n > 0 && theirs.and_then(|t| t.lines.get(l)).copied().unwrap_or(0) == 0
                })
                .map(|(l, _)| *l)
                .collect();
            if !only.is_empty() {
                out.insert(path.clone(), only);
            }
        }
        out
    }
}

/// `a/b/../c` -> `a/c`, without touching the file system.
fn normalize(p: &Path) -> String {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// The counts of one case's `.gcda` files (`gcda`: path below the guest's
/// gcov root, which is the build's object directory -> bytes), read with
/// the host's gcov against the `.gcno` files beside the objects.
pub fn from_gcda(gcda: &BTreeMap<String, Vec<u8>>) -> Result<Coverage> {
    let gcov = crate::base::hostdeps::require_tool("gcov")?;
    let tmp = tempfile::tempdir()?;
    let mut c = Coverage::default();
    for (rel, data) in gcda {
        let obj = Path::new("/").join(rel);
        let gcno = obj.with_extension("gcno");
        if !gcno.exists() {
            bail!(
                "{} has no {}: the kernel's build directory is not where it was built",
                rel,
                gcno.display()
            );
        }
        let stem = obj
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let dir = tmp.path().join(c.files.len().to_string() + "-" + &stem);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{stem}.gcda")), data)?;
        std::os::unix::fs::symlink(&gcno, dir.join(format!("{stem}.gcno")))?;
        let out = std::process::Command::new(&gcov)
            .args(["-b", "--json-format", "--stdout", "-o"])
            .arg(&dir)
            .arg(dir.join(format!("{stem}.gcda")))
            .current_dir(&dir)
            .output()
            .with_context(|| format!("running {}", gcov.display()))?;
        if !out.status.success() {
            bail!(
                "gcov on {rel}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        for doc in
            serde_json::Deserializer::from_slice(&out.stdout).into_iter::<serde_json::Value>()
        {
            c.add_gcov_json(&doc.with_context(|| format!("gcov's JSON for {rel}"))?);
        }
    }
    Ok(c)
}

/// Hex as the guest sent it -> bytes.
pub fn unhex(s: &str) -> Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        bail!("odd number of hex digits");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("not hex"))
        .collect()
}

/// One case's counts, from the guest's hex, as `coverage.info` in its
/// directory.
pub fn write_case(case_dir: &Path, hex: &BTreeMap<String, String>, id: &str) -> Result<()> {
    let gcda = hex
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                unhex(v).with_context(|| format!("{k} from the guest"))?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    let c = from_gcda(&gcda)?;
    std::fs::write(case_dir.join("coverage.info"), c.to_lcov(id))?;
    Ok(())
}

/// The run's coverage, when its cases have any: every case's tracefile
/// merged into `coverage/total.info`, `coverage/summary.txt` and, when
/// lcov's genhtml is installed, `coverage/html/index.html`; a line per
/// file said. Returns the summary.
pub fn write_run(run_dir: &Path) -> Result<Vec<FileSummary>> {
    let mut total = Coverage::default();
    let mut any = false;
    for e in std::fs::read_dir(run_dir.join("cases"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let info = e.path().join("coverage.info");
        if let Ok(text) = std::fs::read_to_string(&info) {
            total.merge(&Coverage::from_lcov(&text, &info)?);
            any = true;
        }
    }
    if !any {
        return Ok(vec![]);
    }
    let dir = run_dir.join("coverage");
    std::fs::create_dir_all(&dir)?;
    let info = dir.join("total.info");
    std::fs::write(&info, total.to_lcov("total"))?;
    let summary = total.summary();
    let text: String = summary.iter().map(|s| s.render() + "\n").collect();
    for s in &summary {
        crate::events::note(format!("coverage: {}", s.render()));
    }
    std::fs::write(dir.join("summary.txt"), &text)?;
    if let Some(genhtml) = crate::base::hostdeps::which("genhtml") {
        let out = std::process::Command::new(genhtml)
            .args(["--branch-coverage", "--function-coverage", "--quiet", "-o"])
            .arg(dir.join("html"))
            .arg(&info)
            .output()
            .context("running genhtml")?;
        if !out.status.success() {
            bail!("genhtml: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        serde_json::json!({
            "current_working_directory": "/b/obj",
            "files": [
                {"file": "../src/fs/fuse/famfs.c",
                 "lines": [
                    {"line_number": 10, "count": 3, "branches": [{"count": 1}, {"count": 0}]},
                    {"line_number": 11, "count": 0, "branches": []}],
                 "functions": [{"name": "famfs_open", "start_line": 9, "execution_count": 3}]},
                {"file": "../src/include/linux/fs.h", "lines": [{"line_number": 1, "count": 1}], "functions": []}
            ]
        })
    }

    #[test]
    fn gcov_json_becomes_counts_of_the_wanted_files_and_lcov_round_trips() {
        let mut c = Coverage::default();
        c.add_gcov_json(&doc());
        assert_eq!(c.files.len(), 1, "{c:?}");
        let f = &c.files["/b/src/fs/fuse/famfs.c"];
        assert_eq!(f.lines[&10], 3);
        assert_eq!(f.branches[&(10, 1)], 0);
        let s = &c.summary()[0];
        assert_eq!((s.lines, s.branches, s.functions), ((1, 2), (1, 2), (1, 1)));
        assert_eq!(
            s.render(),
            "fs/fuse/famfs.c: lines 1/2 (50.0%), branches 1/2 (50.0%), functions 1/1 (100.0%)"
        );
        let lcov = c.to_lcov("famfs/010[x]");
        assert!(
            lcov.starts_with("TN:famfs_010_x_\nSF:/b/src/fs/fuse/famfs.c\n"),
            "{lcov}"
        );
        let back = Coverage::from_lcov(&lcov, Path::new("t.info")).unwrap();
        assert_eq!(back, c);
        // Merging sums; a second case reaching line 11 is what it adds.
        let mut other = c.clone();
        other
            .files
            .get_mut("/b/src/fs/fuse/famfs.c")
            .unwrap()
            .lines
            .insert(11, 2);
        assert_eq!(
            other.reached_only(&c),
            BTreeMap::from([("/b/src/fs/fuse/famfs.c".to_string(), vec![11])])
        );
        c.merge(&other);
        assert_eq!(c.files["/b/src/fs/fuse/famfs.c"].lines[&10], 6);
        let e = Coverage::from_lcov("SF:/x\nDA:zz\n", Path::new("bad.info")).unwrap_err();
        assert_eq!(e.to_string(), "bad.info:2: not an lcov record: DA:zz");
        assert_eq!(unhex("00ff10").unwrap(), vec![0, 255, 16]);
    }
}
