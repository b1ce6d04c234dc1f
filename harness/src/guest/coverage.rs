//! The kernel's gcov counts, per case: reset before the case, every
//! `.gcda` under debugfs read after it. Only a kernel built with
//! CONFIG_GCOV_KERNEL has /sys/kernel/debug/gcov; elsewhere both are no-ops.

use std::collections::BTreeMap;
use std::path::Path;

const ROOT: &str = "/sys/kernel/debug/gcov";

/// Zero every counter, so that what is read after a case is the case's.
pub fn reset() {
    let _ = std::fs::write(Path::new(ROOT).join("reset"), "1");
}

/// Every `.gcda` under the gcov root, by its path below it, in hex.
pub fn collect() -> BTreeMap<String, String> {
    collect_under(Path::new(ROOT))
}

fn collect_under(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            // The .gcno entries are links into the build tree: not ours.
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                dirs.push(p);
            } else if ft.is_file() && p.extension().is_some_and(|x| x == "gcda") {
                if let (Ok(data), Ok(rel)) = (std::fs::read(&p), p.strip_prefix(root)) {
                    out.insert(rel.display().to_string(), crate::base::hex(&data));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcda_files_are_collected_by_path_in_hex_and_links_are_not() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("work/obj/fs/fuse");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("famfs.gcda"), [0x61u8, 0x64, 0x00, 0xff]).unwrap();
        std::fs::write(d.join("famfs.gcno.txt"), "x").unwrap();
        std::os::unix::fs::symlink(d.join("famfs.gcda"), d.join("link.gcda")).unwrap();
        let got = collect_under(t.path());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got["work/obj/fs/fuse/famfs.gcda"], "616400ff");
        assert!(collect_under(&t.path().join("absent")).is_empty());
    }
}
