//! `cargo xtask nightly --matrix FILE`: every cell of a matrix (named
//! kernels x protocol profiles x case selections x named topologies) run
//! one after another,
//! kernel builds shared through the cache, each cell a run directory of its
//! own (summary.json, junit.xml), and one summary of all cells as JSON,
//! Markdown and a static HTML page. With `--baseline` (an earlier nightly),
//! each cell is compared with the same cell there.

use crate::kernel::resolve::KernelChoice;
use crate::plan::select::Selection;
use crate::report::baseline::{self, Changes};
use crate::run::Options;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The matrix file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Named kernels (kernel-configs/kernels/NAME.yaml).
    pub kernels: Vec<String>,
    /// famfs protocol profiles (default: auto, each kernel's own ABI).
    #[serde(default = "default_profiles")]
    pub profiles: Vec<String>,
    pub selections: Vec<SelectionSpec>,
    /// Named topologies (images/topologies.yaml) every selection runs on;
    /// none: each case on the machine it asks for.
    #[serde(default)]
    pub topologies: Vec<String>,
    /// Every cell on its kernel's coverage variant (`--coverage`): the
    /// night's pages show each cell's famfs.c figure and link its report.
    #[serde(default)]
    pub coverage: bool,
}

fn default_profiles() -> Vec<String> {
    vec![crate::kernel::resolve::AUTO_PROFILE.into()]
}

/// One case selection, as test-vm's filters and groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionSpec {
    pub name: String,
    #[serde(default)]
    pub filters: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
    /// This selection's topologies, instead of the matrix's.
    pub topologies: Option<Vec<String>>,
}

impl SelectionSpec {
    fn topologies<'a>(&'a self, m: &'a Matrix) -> &'a [String] {
        self.topologies.as_deref().unwrap_or(&m.topologies)
    }
}

/// One cell: a kernel, a profile, a selection and a topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub kernel: String,
    pub profile: String,
    pub selection: usize,
    /// A named topology; None: the machines the cases ask for.
    pub topology: Option<String>,
    pub name: String,
}

impl Matrix {
    /// Parse and check a matrix file: unknown keys, kernels, profiles and
    /// empty lists are errors naming the file and line.
    pub fn load(path: &Path, checkout: &Path) -> Result<Matrix> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let m: Matrix = crate::base::yaml::parse(path, &text, 0)?;
        let at = |needle: &str| {
            format!(
                "{}:{}",
                path.display(),
                crate::base::yaml::line_of(&text, 1, needle)
            )
        };
        // Named at the first empty list's line.
        let empty = [
            ("kernels", m.kernels.is_empty()),
            ("profiles", m.profiles.is_empty()),
            ("selections", m.selections.is_empty()),
        ];
        if let Some((key, _)) = empty.iter().find(|(_, e)| *e) {
            bail!(
                "{}: an empty matrix: kernels, profiles and selections each need an entry",
                at(key)
            );
        }
        let known = crate::kernel::named::available(checkout);
        for k in &m.kernels {
            if !known.contains(k) {
                bail!(
                    "{}: unknown kernel `{k}`; named kernels: {}",
                    at(k),
                    known.join(", ")
                );
            }
        }
        for p in m
            .profiles
            .iter()
            .filter(|p| *p != crate::kernel::resolve::AUTO_PROFILE)
        {
            famfs_proto::Profile::parse(p)
                .map_err(|e| anyhow::anyhow!("{}: profile `{p}`: {e}", at(p)))?;
        }
        let table = crate::plan::topologies::Table::load(checkout)?;
        for s in &m.selections {
            for t in s.topologies(&m) {
                table
                    .choose(t)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at(t)))?;
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &m.selections {
            if !names.insert(&s.name) || s.name.is_empty() || s.name.contains('/') {
                bail!(
                    "{}: selection names must be unique, non-empty and without `/`",
                    at(&format!("name: {}", s.name))
                );
            }
        }
        Ok(m)
    }

    /// Every cell, kernel-major (cells of one kernel share its build).
    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        for k in &self.kernels {
            for p in &self.profiles {
                for (i, s) in self.selections.iter().enumerate() {
                    let topos: Vec<Option<&String>> = match s.topologies(self) {
                        [] => vec![None],
                        t => t.iter().map(Some).collect(),
                    };
                    for t in topos {
                        out.push(Cell {
                            kernel: k.clone(),
                            profile: p.clone(),
                            selection: i,
                            topology: t.cloned(),
                            name: match t {
                                None => format!("{k}.{p}.{}", s.name),
                                Some(t) => format!("{k}.{p}.{}.{}", s.name, t.replace(':', "-")),
                            },
                        });
                    }
                }
            }
        }
        out
    }
}

/// One cell's line of the nightly summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub name: String,
    pub kernel: String,
    pub profile: String,
    pub selection: String,
    /// The named topology (none: the machines the cases ask for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    /// The cell's run directory, relative to the nightly's results root.
    pub run: String,
    pub passed: u32,
    pub failed: u32,
    pub known: u32,
    pub notrun: u32,
    pub errors: u32,
    /// Titles of the kernel reports of failing trials.
    pub titles: Vec<String>,
    pub wall_s: f64,
    /// Where the wall time went: getting the kernel, guest program and
    /// image ready (a cached kernel: seconds), the boots, the cases in them.
    #[serde(default)]
    pub prepare_s: f64,
    /// The kernel was built for this cell (not found in the cache).
    #[serde(default)]
    pub kernel_built: bool,
    #[serde(default)]
    pub boots_s: f64,
    #[serde(default)]
    pub cases_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// Each trial's outcome (`pass`, `fail`, `known`, `notrun`, ...), for
    /// the side-by-side view of the famfs generations.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outcomes: std::collections::BTreeMap<String, String>,
    /// The profile the cell ran with (`auto` resolved from the kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_profile: Option<String>,
    /// famfs.c's line figure of a coverage cell (`366/421 (86.9%)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub famfs_c_lines: Option<String>,
}

/// The whole night.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Night {
    pub id: String,
    pub matrix: String,
    pub cells: Vec<CellResult>,
    pub wall_s: f64,
}

impl Night {
    pub fn failed(&self) -> bool {
        self.cells.iter().any(|c| c.failed + c.errors > 0)
    }

    pub fn regressed(&self) -> bool {
        self.cells
            .iter()
            .any(|c| c.changes.as_ref().is_some_and(Changes::regressed))
    }
}

/// Run every cell; results under `root/cells/CELL/runs/..`, the night's
/// summaries under `root/nightly/ID/`. `baseline` is an earlier night's
/// directory (or a root whose `nightly/latest` it is).
pub fn run(
    matrix_path: &Path,
    base: &Options,
    root: &Path,
    baseline: Option<&Path>,
    partition: Option<crate::plan::select::Partition>,
    args: &libtest_mimic::Arguments,
) -> Result<(PathBuf, Night)> {
    let m = Matrix::load(matrix_path, &base.root)?;
    let before: Option<Night> = baseline.map(load_night).transpose()?;
    let before_root = baseline.map(b_root);
    let start = std::time::Instant::now();
    let id = crate::report::results::run_id();
    let mut cells = Vec::new();
    for cell in m.cells() {
        let s = &m.selections[cell.selection];
        crate::events::note(format!("nightly: cell {}", cell.name));
        let mut opts = base.clone();
        opts.kernel.choice = KernelChoice::Named(cell.kernel.clone());
        opts.kernel.coverage |= m.coverage;
        opts.profile = cell.profile.clone();
        opts.topology = cell.topology.clone();
        opts.results_root = root.join("cells").join(&cell.name);
        let sel = Selection {
            filters: s.filters.clone(),
            groups: s.groups.clone(),
            skip: s.skip.clone(),
            ..Default::default()
        };
        let mut cases = crate::plan::select::select(&opts.cases_dir(), &sel)?;
        if let Some(p) = partition {
            cases = p.apply(cases);
        }
        let t0 = std::time::Instant::now();
        let mut prepare_s = 0.0;
        let mut kernel_built = false;
        let outcome = match crate::run::prepare(&opts) {
            Ok(p) => {
                prepare_s = p.prepare_time.as_secs_f64();
                kernel_built = p.kernel.built;
                crate::run::trials(p, cases, args)?
            }
            Err(e) => match e.downcast_ref::<crate::kernel::named::Unavailable>() {
                Some(why) => super::test_vm::unavailable(&opts, &cases, &why.0, args)?,
                None => return Err(e.context(format!("cell {}", cell.name))),
            },
        };
        // Each cell's results as KernelCI report data too, beside its
        // summary.json, for `kci-dev submit`.
        let kcidb = crate::report::kcidb::export(&outcome.dir, "famfs_harness").and_then(|v| {
            Ok(std::fs::write(
                outcome.dir.join("kcidb.json"),
                serde_json::to_string_pretty(&v)?,
            )?)
        });
        if let Err(e) = kcidb {
            crate::events::warn(format!("cell {}: kcidb.json: {e:#}", cell.name));
        }
        let cell_run = CellRun {
            wall_s: t0.elapsed().as_secs_f64(),
            prepare_s,
            kernel_built,
        };
        cells.push(cell_result(
            &cell,
            &s.name,
            &outcome,
            root,
            &cell_run,
            before.as_ref().zip(before_root.as_deref()),
        ));
    }
    let night = Night {
        id: id.clone(),
        matrix: matrix_path.display().to_string(),
        cells,
        wall_s: start.elapsed().as_secs_f64(),
    };
    let dir = root.join("nightly").join(&id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&night)? + "\n",
    )?;
    std::fs::write(dir.join("summary.md"), markdown(&night))?;
    std::fs::write(dir.join("index.html"), html(&night))?;
    let link = root.join("nightly").join("latest");
    let tmp = root
        .join("nightly")
        .join(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&id, &tmp)?;
    std::fs::rename(&tmp, &link)?;
    Ok((dir, night))
}

/// How long a cell took, and whether its kernel was built for it.
struct CellRun {
    wall_s: f64,
    prepare_s: f64,
    kernel_built: bool,
}

/// One cell's line of the night: counts, titles, timing and, against the
/// baseline night (with its results root), what changed.
fn cell_result(
    cell: &Cell,
    selection: &str,
    outcome: &crate::report::trials::RunOutcome,
    root: &Path,
    timing: &CellRun,
    before: Option<(&Night, &Path)>,
) -> CellResult {
    let sum = &outcome.summary;
    let c = &sum.counts;
    let mut titles: Vec<String> = sum
        .cases
        .iter()
        .filter(|r| r.outcome.is_failure())
        .flat_map(|r| r.reports.iter().map(|k| k.title.clone()))
        .collect();
    titles.sort();
    titles.dedup();
    let run = outcome
        .dir
        .strip_prefix(root)
        .unwrap_or(&outcome.dir)
        .display()
        .to_string();
    let changes = before.map(|(b, before_root)| {
        let old = b.cells.iter().find(|x| x.name == cell.name).and_then(|x| {
            let r = before_root.join(&x.run);
            baseline::load(&r).ok()
        });
        match old {
            Some(old) => baseline::compare(&old, sum, 50),
            None => Changes {
                new_failures: sum
                    .cases
                    .iter()
                    .filter(|r| r.outcome.is_failure())
                    .map(|r| r.id.clone())
                    .collect(),
                ..Default::default()
            },
        }
    });
    CellResult {
        name: cell.name.clone(),
        kernel: cell.kernel.clone(),
        profile: cell.profile.clone(),
        selection: selection.to_string(),
        topology: cell.topology.clone(),
        run,
        passed: c.passed + c.expected_fail,
        failed: c.failed,
        known: c.known_fail,
        notrun: c.notrun,
        errors: c.errors,
        titles,
        wall_s: timing.wall_s,
        prepare_s: timing.prepare_s,
        kernel_built: timing.kernel_built,
        boots_s: sum
            .boots
            .iter()
            .map(|b| b.duration_ms as f64 / 1000.0)
            .sum(),
        cases_s: sum
            .cases
            .iter()
            .filter(|r| !r.id.starts_with("boot/"))
            .map(|r| r.duration_ms as f64 / 1000.0)
            .sum(),
        changes,
        outcomes: sum
            .cases
            .iter()
            .filter(|r| !r.id.starts_with("boot/"))
            .map(|r| (r.id.clone(), outcome_word(r.outcome.clone()).to_string()))
            .collect(),
        resolved_profile: Some(sum.profile.clone()),
        famfs_c_lines: famfs_c_lines(&outcome.dir),
    }
}

/// The results root of a nightly directory (`ROOT/nightly/ID` -> `ROOT`).
fn b_root(dir: &Path) -> PathBuf {
    let d = if dir.join("summary.json").is_file() {
        dir.to_path_buf()
    } else {
        dir.join("nightly/latest")
    };
    d.canonicalize()
        .unwrap_or(d)
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// An earlier night: its directory, or a results root with `nightly/latest`.
pub fn load_night(dir: &Path) -> Result<Night> {
    let path = [dir.join("summary.json"), dir.join("nightly/latest/summary.json")]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "--baseline {}: not a nightly results directory (no summary.json, nor nightly/latest/summary.json)",
                dir.display()
            )
        })?;
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a nightly summary", path.display()))
}

fn changes_text(c: &CellResult) -> String {
    match &c.changes {
        None => String::new(),
        Some(ch) => ch.render().trim_end().replace('\n', "; "),
    }
}

/// The night as a Markdown table.
pub fn markdown(n: &Night) -> String {
    let mut s = format!(
        "# Nightly {}\n\nMatrix `{}`, {} cells, {:.0} s.\n\n| cell | passed | failed | known | not run | errors | wall | ready / boots / cases | reports | changes |\n|---|---|---|---|---|---|---|---|---|---|\n",
        n.id,
        n.matrix,
        n.cells.len(),
        n.wall_s
    );
    for c in &n.cells {
        s += &format!(
            "| [{}]({}/summary.json) | {} | {} | {} | {} | {} | {:.0} s | {:.0} / {:.0} / {:.0} s | {} | {} |\n",
            c.name,
            c.run,
            c.passed,
            c.failed,
            c.known,
            c.notrun,
            c.errors,
            c.wall_s,
            c.prepare_s,
            c.boots_s,
            c.cases_s,
            c.titles.join("<br>"),
            changes_text(c)
        );
    }
    s + &coverage_markdown(n)
}

/// famfs.c's line figure in a coverage run's summary, if it has one.
fn famfs_c_lines(run: &Path) -> Option<String> {
    let text = std::fs::read_to_string(run.join("coverage/summary.txt")).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("fs/fuse/famfs.c: lines "))?;
    Some(
        line["fs/fuse/famfs.c: lines ".len()..]
            .split(',')
            .next()?
            .to_string(),
    )
}

/// The coverage of the night's cells that have one: famfs.c's lines and
/// the HTML report, a line a cell (markdown).
fn coverage_markdown(n: &Night) -> String {
    let cells: Vec<&CellResult> = n
        .cells
        .iter()
        .filter(|c| c.famfs_c_lines.is_some())
        .collect();
    if cells.is_empty() {
        return String::new();
    }
    let mut s =
        "\n## Coverage\n\n| cell | fs/fuse/famfs.c lines | report |\n|---|---|---|\n".to_string();
    for c in cells {
        s += &format!(
            "| {} | {} | [html]({}/coverage/html/index.html) |\n",
            c.name,
            c.famfs_c_lines.as_deref().unwrap_or(""),
            c.run
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn outcome_word(o: crate::judge::verdict::Outcome) -> &'static str {
    use crate::judge::verdict::Outcome::*;
    match o {
        Pass => "pass",
        Fail => "fail",
        NotRun => "notrun",
        ExpectedFail => "expected",
        KnownFail => "known",
        Error => "error",
    }
}

/// The famfs kernels' cells of each selection side by side: one row per
/// trial whose outcome differs between them (what changed between the
/// famfs generations), one column per kernel.
pub fn generations_html(n: &Night) -> String {
    let mut out = String::new();
    let mut keys: Vec<(&str, Option<&str>)> = n
        .cells
        .iter()
        .map(|c| (c.selection.as_str(), c.topology.as_deref()))
        .collect();
    keys.dedup();
    for (sel, topo) in keys {
        let cells: Vec<&CellResult> = n
            .cells
            .iter()
            .filter(|c| {
                c.selection == sel
                    && c.topology.as_deref() == topo
                    && c.kernel.starts_with("famfs-")
            })
            .collect();
        if cells.len() < 2 {
            continue;
        }
        let ids: std::collections::BTreeSet<&String> =
            cells.iter().flat_map(|c| c.outcomes.keys()).collect();
        let mut rows = String::new();
        for id in ids {
            let o: Vec<&str> = cells
                .iter()
                .map(|c| c.outcomes.get(id).map_or("-", String::as_str))
                .collect();
            if o.iter().all(|x| *x == o[0]) {
                continue;
            }
            rows += &format!("<tr><td>{}</td>", esc(id));
            for x in o {
                rows += &format!("<td class=\"{x}\">{x}</td>");
            }
            rows += "</tr>\n";
        }
        let head: String = cells
            .iter()
            .map(|c| {
                format!(
                    "<th>{} ({})</th>",
                    esc(&c.kernel),
                    esc(c.resolved_profile.as_deref().unwrap_or(&c.profile))
                )
            })
            .collect();
        out += &format!(
            "<h2>famfs generations: {}{}</h2>\n<table><thead><tr><th>trial</th>{head}</tr></thead><tbody>\n{}</tbody></table>\n",
            esc(sel),
            topo.map(|t| format!(" on {}", esc(t))).unwrap_or_default(),
            if rows.is_empty() {
                "<tr><td colspan=\"99\">every trial ends the same way on each</td></tr>\n".to_string()
            } else {
                rows
            }
        );
    }
    out
}

/// The night as one static page: a pass/fail grid, each cell linking to its
/// run's summary and JUnit, its report titles beside it, then the famfs
/// generations side by side.
pub fn html(n: &Night) -> String {
    let mut rows = String::new();
    for c in &n.cells {
        let state = if c.failed + c.errors > 0 {
            "fail"
        } else if c.passed + c.known == 0 {
            "notrun"
        } else {
            "pass"
        };
        rows += &format!(
            "<tr class=\"{state}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} s</td><td><a href=\"../../{run}/summary.json\">summary</a> <a href=\"../../{run}/junit.xml\">junit</a></td><td>{}</td><td>{}</td></tr>\n",
            esc(&c.kernel),
            esc(&c.profile),
            esc(&c.selection),
            esc(c.topology.as_deref().unwrap_or("as the cases ask")),
            c.passed,
            c.failed,
            c.known,
            c.notrun,
            c.errors,
            c.wall_s,
            esc(&c.titles.join("\n")).replace('\n', "<br>"),
            esc(&changes_text(c)),
            run = esc(&c.run),
        );
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Nightly {id}</title>\n<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px 8px}}tr.pass td:first-child{{background:#9d9}}tr.fail td:first-child{{background:#e88}}tr.notrun td:first-child{{background:#ddd}}</style></head>\n<body><h1>Nightly {id}</h1><p>Matrix <code>{matrix}</code>, {cells} cells, {wall:.0} s.</p>\n<table><thead><tr><th>kernel</th><th>profile</th><th>selection</th><th>topology</th><th>passed</th><th>failed</th><th>known</th><th>not run</th><th>errors</th><th>wall</th><th>results</th><th>reports</th><th>changes</th></tr></thead><tbody>\n{rows}</tbody></table>\n{coverage}{generations}</body></html>\n",
        coverage = coverage_html(n),
        generations = generations_html(n),
        id = esc(&n.id),
        matrix = esc(&n.matrix),
        cells = n.cells.len(),
        wall = n.wall_s,
    )
}

/// Each coverage cell's famfs.c lines, linked to its HTML report.
fn coverage_html(n: &Night) -> String {
    let rows: String = n
        .cells
        .iter()
        .filter_map(|c| {
            let f = c.famfs_c_lines.as_deref()?;
            Some(format!(
                "<tr><td>{}</td><td>{}</td><td><a href=\"../../{}/coverage/html/index.html\">html</a></td></tr>\n",
                esc(&c.name),
                esc(f),
                esc(&c.run)
            ))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!("<h2>Coverage</h2><table><thead><tr><th>cell</th><th>fs/fuse/famfs.c lines</th><th>report</th></tr></thead><tbody>\n{rows}</tbody></table>\n")
}

/// `cargo xtask nightly`: the night's markdown on stdout; exit 101 when a
/// cell failed (with a baseline: when one regressed).
pub fn main(
    matrix: &Path,
    opts: &Options,
    results: Option<PathBuf>,
    baseline: Option<&Path>,
    partition: Option<&str>,
) -> Result<i32> {
    let partition = partition
        .map(crate::plan::select::Partition::parse)
        .transpose()?;
    let root = results.unwrap_or_else(|| opts.results_root.clone());
    let args = libtest_mimic::Arguments {
        format: Some(libtest_mimic::FormatSetting::Terse),
        ..Default::default()
    };
    let (dir, night) = run(matrix, opts, &root, baseline, partition, &args)?;
    print!("{}", markdown(&night));
    eprintln!("[harness] nightly: {}", dir.display());
    let bad = match baseline {
        Some(_) => night.regressed(),
        None => night.failed(),
    };
    Ok(if bad { 101 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout() -> PathBuf {
        crate::image::guest_program::workspace_root()
    }

    #[test]
    fn the_shipped_matrix_parses_and_bad_ones_name_the_line() {
        let root = checkout();
        let m = Matrix::load(&root.join("kernel-configs/matrix/default.yaml"), &root).unwrap();
        let cells = m.cells();
        let per_kernel: usize = m
            .selections
            .iter()
            .map(|s| s.topologies(&m).len().max(1))
            .sum();
        assert_eq!(cells.len(), m.kernels.len() * m.profiles.len() * per_kernel);
        let t = tempfile::tempdir().unwrap();
        let bad = |text: &str| {
            let p = t.path().join("m.yaml");
            std::fs::write(&p, text).unwrap();
            Matrix::load(&p, &root).unwrap_err().to_string()
        };
        let e = bad("kernels: [default]\nselections: [{name: a}]\nbogus: 1\n");
        assert!(e.contains("m.yaml:3") && e.contains("bogus"), "{e}");
        let e = bad("kernels: [default, nope]\nselections: [{name: a}]\n");
        assert!(
            e.contains("m.yaml:1") && e.contains("unknown kernel `nope`"),
            "{e}"
        );
        let e = bad("kernels: [default]\nprofiles: [v99]\nselections: [{name: a}]\n");
        assert!(e.contains("m.yaml:2") && e.contains("profile `v99`"), "{e}");
        let e = bad("kernels: []\nselections: [{name: a}]\n");
        assert!(e.contains("an empty matrix"), "{e}");
        let e = bad("kernels: [default]\nselections: [{name: a}]\ntopologies: [nvdimm, floppy]\n");
        assert!(
            e.contains("m.yaml:3") && e.contains("no topology `floppy`"),
            "{e}"
        );
        let p = t.path().join("m.yaml");
        std::fs::write(
            &p,
            "kernels: [default]\ntopologies: [nvdimm, cxl]\nselections:\n  - {name: a}\n  - {name: b, topologies: []}\n  - {name: c, topologies: [cxl-volatile]}\n",
        )
        .unwrap();
        let names: Vec<String> = Matrix::load(&p, &root)
            .unwrap()
            .cells()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(
            names,
            [
                "default.auto.a.nvdimm",
                "default.auto.a.cxl",
                "default.auto.b",
                "default.auto.c.cxl-volatile"
            ]
        );
    }

    #[test]
    fn the_html_page_escapes_and_links_each_cell() {
        let n = Night {
            id: "n1".into(),
            matrix: "m.yaml".into(),
            wall_s: 3.0,
            cells: vec![CellResult {
                name: "default.v10.smoke".into(),
                kernel: "default".into(),
                profile: "v10".into(),
                selection: "smoke".into(),
                topology: None,
                run: "cells/default.v10.smoke/runs/r1".into(),
                passed: 3,
                failed: 1,
                known: 0,
                notrun: 2,
                errors: 0,
                titles: vec!["KASAN: use-after-free Read in <f>".into()],
                wall_s: 2.0,
                prepare_s: 0.5,
                kernel_built: false,
                boots_s: 1.4,
                cases_s: 1.0,
                changes: None,
                outcomes: Default::default(),
                resolved_profile: None,
                famfs_c_lines: None,
            }],
        };
        let h = html(&n);
        assert!(!h.contains("Coverage"), "{h}");
        assert!(h.contains("<tr class=\"fail\">"), "{h}");
        assert!(
            h.contains("href=\"../../cells/default.v10.smoke/runs/r1/junit.xml\""),
            "{h}"
        );
        assert!(h.contains("Read in &lt;f&gt;") && !h.contains("<f>"), "{h}");
        let md = markdown(&n);
        assert!(md.contains("| [default.v10.smoke](cells/default.v10.smoke/runs/r1/summary.json) | 3 | 1 | 0 | 2 | 0 | 2 s | 0 / 1 / 1 s |"), "{md}");
        // A coverage cell: its famfs.c figure, from its run's summary.txt,
        // linked to its report on both pages.
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("coverage")).unwrap();
        std::fs::write(
            t.path().join("coverage/summary.txt"),
            "fs/dax.c: lines 1/2 (50.0%), branches 0/0 (100.0%), functions 1/1 (100.0%)\nfs/fuse/famfs.c: lines 366/421 (86.9%), branches 167/220 (75.9%), functions 22/24 (91.7%)\n",
        )
        .unwrap();
        let mut n = n;
        n.cells[0].famfs_c_lines = famfs_c_lines(t.path());
        assert_eq!(n.cells[0].famfs_c_lines.as_deref(), Some("366/421 (86.9%)"));
        assert!(markdown(&n).contains("| default.v10.smoke | 366/421 (86.9%) | [html](cells/default.v10.smoke/runs/r1/coverage/html/index.html) |"));
        assert!(html(&n).contains("<td>366/421 (86.9%)</td><td><a href=\"../../cells/default.v10.smoke/runs/r1/coverage/html/index.html\">"));
        assert_eq!(famfs_c_lines(&t.path().join("none")), None);
    }

    #[test]
    fn the_famfs_generations_stand_side_by_side_where_they_differ() {
        let cell = |kernel: &str, profile: &str, outcomes: &[(&str, &str)]| CellResult {
            name: format!("{kernel}.auto.famfs"),
            kernel: kernel.into(),
            profile: "auto".into(),
            selection: "famfs".into(),
            topology: None,
            run: "r".into(),
            famfs_c_lines: None,
            passed: 1,
            failed: 0,
            known: 0,
            notrun: 0,
            errors: 0,
            titles: vec![],
            wall_s: 1.0,
            prepare_s: 0.0,
            kernel_built: false,
            boots_s: 0.0,
            cases_s: 0.0,
            changes: None,
            outcomes: outcomes
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            resolved_profile: Some(profile.into()),
        };
        let n = Night {
            id: "n".into(),
            matrix: "m".into(),
            wall_s: 1.0,
            cells: vec![
                cell("default", "v10", &[("famfs/001", "notrun")]),
                cell(
                    "famfs-v10",
                    "v10",
                    &[("famfs/001", "pass"), ("famfs/050[never]", "notrun")],
                ),
                cell(
                    "famfs-next",
                    "next",
                    &[("famfs/001", "pass"), ("famfs/050[never]", "pass")],
                ),
            ],
        };
        let g = generations_html(&n);
        assert!(
            g.contains("<th>famfs-v10 (v10)</th><th>famfs-next (next)</th>"),
            "{g}"
        );
        assert!(g.contains("<tr><td>famfs/050[never]</td><td class=\"notrun\">notrun</td><td class=\"pass\">pass</td></tr>"), "{g}");
        assert!(
            !g.contains("<td>famfs/001</td>"),
            "the same on both: not listed\n{g}"
        );
        assert!(html(&n).contains(&g));
    }
}
