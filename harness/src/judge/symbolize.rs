//! Source lines for report frames, from the DWARF of the kernel's vmlinux.
//!
//! A frame is printed as `func+0x12/0x40`; its address is the symbol's
//! address in vmlinux plus the offset, whatever KASLR did at boot. Frames of
//! a call trace are return addresses, so the call itself is one byte
//! before. Inlined functions give one source line each, innermost first.

use super::reports::{Frame, KernelReport};
use anyhow::{Context, Result};
use object::{Object, ObjectSymbol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct Symbolizer {
    loader: addr2line::Loader,
    /// Function symbols: name -> (address, size); a static function may
    /// exist several times under one name.
    symbols: HashMap<String, Vec<(u64, u64)>>,
    /// Leading directories cut from source paths (the kernel trees the
    /// objects were compiled in), so paths read `fs/fuse/famfs.c`.
    prefixes: Vec<String>,
}

/// Top-level directories of a kernel tree: where a source path starts when
/// the tree it was compiled in is not known.
const TOP_DIRS: &[&str] = &[
    "arch", "block", "certs", "crypto", "drivers", "fs", "include", "init", "io_uring", "ipc",
    "kernel", "lib", "mm", "net", "rust", "samples", "security", "sound", "virt",
];

impl Symbolizer {
    /// `None` when vmlinux has no debug info (nothing to symbolize with).
    pub fn open(vmlinux: &Path, trees: &[PathBuf]) -> Result<Option<Symbolizer>> {
        let file = std::fs::File::open(vmlinux)
            .with_context(|| format!("opening {}", vmlinux.display()))?;
        let cache = object::ReadCache::new(file);
        let obj = object::File::parse(&cache)
            .with_context(|| format!("{} is not an ELF file", vmlinux.display()))?;
        if obj.section_by_name(".debug_info").is_none() {
            return Ok(None);
        }
        let mut symbols: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        for s in obj.symbols() {
            if s.kind() != object::SymbolKind::Text {
                continue;
            }
            if let Ok(name) = s.name() {
                symbols
                    .entry(name.to_string())
                    .or_default()
                    .push((s.address(), s.size()));
            }
        }
        let loader = addr2line::Loader::new(vmlinux)
            .map_err(|e| anyhow::anyhow!("reading the debug info of {}: {e}", vmlinux.display()))?;
        let mut prefixes: Vec<String> = trees
            .iter()
            .flat_map(|t| {
                let mut v = vec![t.display().to_string()];
                if let Ok(c) = t.canonicalize() {
                    v.push(c.display().to_string());
                }
                v
            })
            .map(|p| format!("{}/", p.trim_end_matches('/')))
            .collect();
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Ok(Some(Symbolizer {
            loader,
            symbols,
            prefixes,
        }))
    }

    /// Fill in `source` for the RIP and every frame of the reports.
    pub fn symbolize(&self, reports: &mut [KernelReport]) {
        for r in reports {
            if let Some(f) = r.rip.as_mut() {
                self.frame(f, false);
            }
            for f in &mut r.frames {
                self.frame(f, true);
            }
        }
    }

    fn frame(&self, f: &mut Frame, return_address: bool) {
        if f.module.is_some() {
            return; // a module's code is not in vmlinux
        }
        let Some(cands) = self.symbols.get(&f.symbol) else {
            return;
        };
        let Some(&(base, _)) = cands
            .iter()
            .find(|(_, size)| *size == f.size)
            .or(cands.first())
        else {
            return;
        };
        let addr = base + f.offset - u64::from(return_address && f.offset > 0);
        let Ok(mut frames) = self.loader.find_frames(addr) else {
            return;
        };
        let mut out: Vec<(Option<String>, String)> = Vec::new();
        while let Ok(Some(fr)) = frames.next() {
            let Some(loc) = fr.location else { continue };
            let (Some(file), Some(line)) = (loc.file, loc.line) else {
                continue;
            };
            let func = fr
                .function
                .as_ref()
                .and_then(|n| n.raw_name().ok())
                .map(|n| n.into_owned());
            out.push((func, format!("{}:{line}", self.relative(file))));
        }
        let n = out.len();
        f.source = out
            .into_iter()
            .enumerate()
            .map(|(i, (func, at))| match func {
                // All but the last are inlined into the frame's function.
                Some(func) if i + 1 < n => format!("{at} (inlined {func})"),
                _ => at,
            })
            .collect();
    }

    /// A source path relative to its kernel tree.
    pub fn relative(&self, path: &str) -> String {
        for p in &self.prefixes {
            if let Some(rest) = path.strip_prefix(p.as_str()) {
                return rest.to_string();
            }
        }
        relative_path(path)
    }
}

/// Cut an absolute path down to where a kernel tree's top-level directory
/// starts; a relative path only loses `./`.
pub fn relative_path(path: &str) -> String {
    if !path.starts_with('/') {
        return path.trim_start_matches("./").to_string();
    }
    let parts: Vec<&str> = path.split('/').collect();
    for i in 0..parts.len().saturating_sub(1) {
        if TOP_DIRS.contains(&parts[i]) {
            return parts[i..].join("/");
        }
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_paths_become_tree_relative() {
        assert_eq!(
            relative_path("/root/.cache/h/sources/linux-source-7.3/fs/fuse/famfs.c"),
            "fs/fuse/famfs.c"
        );
        assert_eq!(relative_path("./include/linux/fs.h"), "include/linux/fs.h");
        assert_eq!(relative_path("/elsewhere/x.c"), "/elsewhere/x.c");
    }

    /// A function with a plain symbol name, to symbolize in this binary.
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn fh_symbolize_probe(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(3)
    }

    #[test]
    fn frames_get_source_lines_from_debug_info() {
        assert_eq!(fh_symbolize_probe(2), 6);
        let me = std::env::current_exe().unwrap();
        let Some(s) = Symbolizer::open(&me, &[]).unwrap() else {
            panic!("the test binary is built with debug info (cargo's test profile)");
        };
        let &(_, size) = &s.symbols["fh_symbolize_probe"][0];
        let mut r = KernelReport {
            kind: crate::judge::reports::ReportKind::Warning,
            title: "t".into(),
            header: "h".into(),
            text: vec![],
            rip: Some(Frame {
                func: "fh_symbolize_probe".into(),
                symbol: "fh_symbolize_probe".into(),
                offset: 0,
                size,
                module: None,
                unreliable: false,
                interrupt: false,
                source: vec![],
            }),
            frames: vec![],
            ts: None,
            line: 0,
        };
        s.symbolize(std::slice::from_mut(&mut r));
        let src = &r.rip.unwrap().source;
        assert!(
            src.last().is_some_and(|l| l.contains("symbolize.rs:")),
            "{src:?}"
        );
    }

    #[test]
    fn a_vmlinux_without_debug_info_gives_none_and_a_bad_file_an_error() {
        // The test binary itself is an ELF file; built without debug info it
        // gives None, with it a symbolizer: either way it opens.
        let me = std::env::current_exe().unwrap();
        assert!(Symbolizer::open(&me, &[]).is_ok());
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b"not elf").unwrap();
        let e = Symbolizer::open(t.path(), &[]).err().unwrap();
        assert!(format!("{e:#}").contains("not an ELF file"), "{e:#}");
    }
}
