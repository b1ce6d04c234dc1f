//! What the guest saw of one fuzzed famfs file (`fh-guest fuzz-files`),
//! the line the host's fmap fuzzer reads back. The guest only observes;
//! the kernel model judges it (`server::oracle`), on the host while
//! fuzzing and in the guest when a finding is replayed as a case.

use serde::{Deserialize, Serialize};

/// Prefix of an observation line on a case's output.
pub const OBS: &str = "fuzz-obs ";
/// Prefix of the line printed (and synced to the host) before a file is
/// exercised: after a crash the last one names the file that caused it.
pub const BEGIN: &str = "fuzz-begin ";

/// One access at a file offset: through read(2) or a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// File offset (page-aligned for faults).
    pub off: u64,
    /// Device offset the fmap names for `off`, when it maps it on device 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<u64>,
    /// `data` (the device's bytes at `dev`), `other` (bytes that are not
    /// those), `short N` (read returned N bytes), an errno name, or the
    /// signal a fault died of (`SIGBUS`).
    pub got: String,
}

/// Everything one file showed, in the order it was done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub path: String,
    /// open(2): `ok` or the errno name.
    pub open: String,
    /// st_size after a successful open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// statx's DAX attribute after a successful open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dax: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<Probe>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Probe>,
    /// open(2) again after close (the fmap cached, or asked again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen: Option<String>,
    /// A task that stayed in uninterruptible sleep: where (`wchan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang: Option<String>,
    /// The exercise itself failed (not the kernel): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Size of the dax device the fmaps name (device 0), as sysfs says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_size: Option<u64>,
    /// Kernel log lines logged while the file was exercised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kmsg: Vec<String>,
}

impl Observation {
    /// The line the guest prints.
    pub fn line(&self) -> String {
        format!("{OBS}{}", serde_json::to_string(self).expect("serializes"))
    }

    /// Read back a line of a case's output (None: not an observation, or
    /// one a crash cut short).
    pub fn parse(line: &str) -> Option<Observation> {
        serde_json::from_str(line.strip_prefix(OBS)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_and_a_cut_one_does_not() {
        let o = Observation {
            path: "/f0".into(),
            open: "ok".into(),
            size: Some(4096),
            reads: vec![Probe {
                off: 0,
                dev: Some(1 << 21),
                got: "data".into(),
            }],
            ..Default::default()
        };
        let l = o.line();
        assert_eq!(Observation::parse(&l), Some(o));
        assert_eq!(Observation::parse(&l[..l.len() - 3]), None);
        assert_eq!(Observation::parse("fuzz-begin /f0"), None);
    }
}
