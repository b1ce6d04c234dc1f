//! Which famfs ABI a kernel tree defines, read from its uapi header
//! (`include/uapi/linux/fuse.h`), so that `--profile auto` picks the
//! protocol profile from the source under test rather than from anything
//! the running kernel says about itself.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The profile a tree's famfs uapi names, and the line that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamfsAbi {
    /// A built-in profile name (`v10`, `next`, `famfs-6.14`), or `none`
    /// when the tree has no famfs uapi at all.
    pub profile: String,
    /// Why, in a kernel developer's words.
    pub evidence: String,
}

/// The value of `NAME = N` (an enum entry) or `#define NAME N` in `text`.
fn number(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l
            .strip_prefix("#define")
            .map(str::trim_start)
            .unwrap_or(l)
            .strip_prefix(name)?;
        let v = rest.trim_start().trim_start_matches('=').trim();
        let v = v.trim_end_matches(',').trim();
        let v = v.split_whitespace().next()?;
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    })
}

fn defines(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l.strip_prefix("#define")
            .is_some_and(|r| r.split_whitespace().next() == Some(name))
    })
}

/// The famfs ABI of the uapi header text. The push ioctl makes it `next`;
/// GET_FMAP 54 with GET_DAXDEV 55 is V10; 53/54 is the famfs-6.14 era.
pub fn from_uapi(text: &str) -> FamfsAbi {
    let get_fmap = number(text, "FUSE_GET_FMAP");
    let abi = |p: &str, e: String| FamfsAbi {
        profile: p.into(),
        evidence: e,
    };
    if defines(text, "FUSE_DEV_IOC_DAXDEV_OPEN") {
        return abi(
            "next",
            "include/uapi/linux/fuse.h defines FUSE_DEV_IOC_DAXDEV_OPEN (devices pushed by the daemon)".into(),
        );
    }
    match (get_fmap, number(text, "FUSE_GET_DAXDEV")) {
        (Some(54), Some(55)) => abi(
            "v10",
            "include/uapi/linux/fuse.h has FUSE_GET_FMAP = 54 and FUSE_GET_DAXDEV = 55".into(),
        ),
        (Some(53), Some(54)) => abi(
            "famfs-6.14",
            "include/uapi/linux/fuse.h has FUSE_GET_FMAP = 53 and FUSE_GET_DAXDEV = 54".into(),
        ),
        (Some(f), d) => abi(
            "v10",
            format!(
                "include/uapi/linux/fuse.h has FUSE_GET_FMAP = {f}{}, numbers no built-in profile has: v10 assumed (give --profile custom:...)",
                d.map(|d| format!(" and FUSE_GET_DAXDEV = {d}")).unwrap_or_default()
            ),
        ),
        (None, _) => abi(
            "none",
            "include/uapi/linux/fuse.h has no FUSE_GET_FMAP".into(),
        ),
    }
}

/// The famfs ABI of the kernel tree at `dir`; `None` when the header is
/// not there (a prebuilt image, an unreadable tree).
pub fn of_tree(dir: &Path) -> Option<FamfsAbi> {
    std::fs::read_to_string(dir.join("include/uapi/linux/fuse.h"))
        .ok()
        .map(|t| from_uapi(&t))
}

/// The profile `--profile auto` runs with: the tree's, or `v10` where the
/// tree has none (the cases then find no famfs and say so).
pub fn auto_profile(abi: Option<&FamfsAbi>) -> &str {
    match abi {
        Some(a) if a.profile != "none" => &a.profile,
        _ => "v10",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_is_told_apart_by_its_uapi() {
        let v10 = "enum fuse_opcode {\n\tFUSE_GET_FMAP\t\t= 54,\n\tFUSE_GET_DAXDEV\t\t= 55,\n";
        assert_eq!(from_uapi(v10).profile, "v10");
        let next = "\tFUSE_GET_FMAP = 54,\n#define FUSE_DEV_IOC_DAXDEV_OPEN\t_IOW(FUSE_DEV_IOC_MAGIC, 4, struct fuse_backing_map)\n";
        let a = from_uapi(next);
        assert_eq!(a.profile, "next");
        assert!(a.evidence.contains("FUSE_DEV_IOC_DAXDEV_OPEN"));
        assert_eq!(
            from_uapi("FUSE_GET_FMAP = 53,\nFUSE_GET_DAXDEV = 54,\n").profile,
            "famfs-6.14"
        );
        let up = from_uapi("\tFUSE_COPY_FILE_RANGE_64\t= 53,\n");
        assert_eq!(up.profile, "none");
        assert_eq!(auto_profile(Some(&up)), "v10");
        let odd = from_uapi("FUSE_GET_FMAP = 60,\nFUSE_GET_DAXDEV = 61,\n");
        assert_eq!(odd.profile, "v10");
        assert!(odd.evidence.contains("custom"), "{}", odd.evidence);
    }

    #[test]
    fn the_fixtures_headers_when_present() {
        // The real trees' headers, where a build left them in the cache.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (dir, want) in [
            ("shared/kernels/famfs-next-7.3", "next"),
            ("shared/kernels/famfs-v10-7.3", "v10"),
        ] {
            let d = root.join(dir);
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            // The uapi hunk of the series, applied to nothing: its `+`
            // lines are the header's famfs section.
            let mut added = String::new();
            for e in entries.flatten() {
                let t = std::fs::read_to_string(e.path()).unwrap_or_default();
                let mut in_uapi = false;
                for l in t.lines() {
                    if l.starts_with("+++ ") {
                        in_uapi = l.ends_with("include/uapi/linux/fuse.h");
                    } else if in_uapi && l.starts_with('+') {
                        added += &l[1..];
                        added.push('\n');
                    }
                }
            }
            assert_eq!(from_uapi(&added).profile, want, "{dir}");
        }
    }
}
