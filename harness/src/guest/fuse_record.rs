//! What a FUSE daemon said on /dev/fuse, from a recording (strace with
//! `-ff -y -x -e read=all -e write=all`, one file per thread), decoded with
//! the protocol crate: every GET_FMAP reply matched to the file it was for
//! (through the LOOKUP replies that named the node) and checked against what
//! famfs says about that file, its shadow YAML; and every GET_DAXDEV reply.
//! famfs_fused logs neither, so this is how a case sees the fmaps the real
//! daemon serves.

use anyhow::{Context, Result};
use famfs_proto::abi::{classify_opcode, EntryOut, InHeader, OpKind, Opcode, OutHeader};
use famfs_proto::{DaxdevOut, Extents, Fmap, Profile, Wire};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One read(2) or write(2)/writev(2) of /dev/fuse: a request or a reply.
#[derive(Debug, PartialEq)]
pub enum Io {
    Request(Vec<u8>),
    Reply(Vec<u8>),
}

/// The /dev/fuse transfers in one strace output file (one thread), in
/// order. A call is kept when it returned a positive count; its bytes are
/// the hex dump strace printed after it (all buffers of a writev, in order).
pub fn parse_strace(text: &str) -> Vec<Io> {
    let mut out = Vec::new();
    let mut cur: Option<(bool, Vec<u8>)> = None;
    let flush = |cur: &mut Option<(bool, Vec<u8>)>, out: &mut Vec<Io>| {
        if let Some((req, b)) = cur.take() {
            if !b.is_empty() {
                out.push(if req { Io::Request(b) } else { Io::Reply(b) });
            }
        }
    };
    for line in text.lines() {
        if let Some(dump) = line.strip_prefix(" | ") {
            // ` | 00000  2a 00 ... 00  *...ascii... |`: the 16 byte columns
            // sit at fixed places after the offset (the ASCII part may look
            // like hex too).
            if let Some((_, b)) = cur.as_mut() {
                let cols = dump.get(7..).unwrap_or("");
                let hex = &cols[..cols.len().min(49)];
                b.extend(
                    hex.split_whitespace()
                        .filter_map(|t| u8::from_str_radix(t, 16).ok()),
                );
            }
            continue;
        }
        if line.starts_with(" * ") {
            continue; // "N bytes in buffer K": the buffers follow in order
        }
        flush(&mut cur, &mut out);
        let call = line.split('(').next().unwrap_or("");
        let fuse = line.contains("</dev/fuse>");
        let ok = line
            .rsplit_once(") = ")
            .and_then(|(_, r)| r.split_whitespace().next()?.parse::<i64>().ok())
            .is_some_and(|n| n > 0);
        if fuse && ok {
            match call {
                "read" | "readv" => cur = Some((true, Vec::new())),
                "write" | "writev" => cur = Some((false, Vec::new())),
                _ => {}
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// A request and its reply, by `unique`.
struct Exchange {
    req: InHeader,
    req_payload: Vec<u8>,
    reply: Option<(OutHeader, Vec<u8>)>,
}

/// Every exchange in the recording files whose names start with `prefix`.
fn exchanges(prefix: &Path) -> Result<BTreeMap<u64, Exchange>> {
    let dir = prefix.parent().unwrap_or(Path::new("."));
    let stem = prefix
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ios = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&stem))
        .map(|e| e.path())
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no recording {}.* (was the daemon started under the recorder?)",
        prefix.display()
    );
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        ios.extend(parse_strace(&text));
    }
    let mut by_unique: BTreeMap<u64, Exchange> = BTreeMap::new();
    let mut replies = Vec::new();
    for io in ios {
        match io {
            Io::Request(b) => {
                if let Ok(h) = InHeader::decode(&b) {
                    by_unique.insert(
                        h.unique,
                        Exchange {
                            req: h,
                            req_payload: b[InHeader::SIZE..].to_vec(),
                            reply: None,
                        },
                    );
                }
            }
            Io::Reply(b) => {
                if let Ok(h) = OutHeader::decode(&b) {
                    replies.push((h, b[OutHeader::SIZE..].to_vec()));
                }
            }
        }
    }
    // Threads' files are read one after another: match replies at the end.
    for (h, p) in replies {
        if let Some(x) = by_unique.get_mut(&h.unique) {
            x.reply = Some((h, p));
        }
    }
    Ok(by_unique)
}

/// A number in famfs's YAML: `0x...` hex, or decimal.
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Int(u64),
        Text(String),
    }
    match N::deserialize(d)? {
        N::Int(n) => Ok(n),
        N::Text(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            }
            .map_err(serde::de::Error::custom)
        }
    }
}

#[derive(Deserialize)]
struct ShadowDoc {
    file: ShadowFile,
}

/// What famfs says about a file (its shadow YAML), the fields an fmap has.
#[derive(Deserialize)]
struct ShadowFile {
    #[serde(deserialize_with = "number")]
    size: u64,
    #[serde(default)]
    simple_ext_list: Vec<ShadowExtent>,
    #[serde(default)]
    striped_ext_list: Vec<ShadowStriped>,
}

#[derive(Deserialize)]
struct ShadowExtent {
    #[serde(deserialize_with = "number")]
    devindex: u64,
    #[serde(deserialize_with = "number")]
    offset: u64,
    #[serde(deserialize_with = "number")]
    length: u64,
}

#[derive(Deserialize)]
struct ShadowStriped {
    #[serde(deserialize_with = "number")]
    nstrips: u64,
    #[serde(deserialize_with = "number")]
    chunk_size: u64,
    #[serde(default)]
    simple_ext_list: Vec<ShadowExtent>,
}

/// Differences between a served fmap and the shadow YAML, as phrases.
fn compare(fmap: &Fmap, shadow: &ShadowFile) -> Vec<String> {
    let mut d = Vec::new();
    if fmap.file_size != shadow.size {
        d.push(format!(
            "file_size {} but famfs says size {}",
            fmap.file_size, shadow.size
        ));
    }
    let ext = |i: usize, what: &str, e: &famfs_proto::SimpleExtent, s: &ShadowExtent| {
        let (got, want) = (
            (e.devindex as u64, e.offset, e.len),
            (s.devindex, s.offset, s.length),
        );
        (got != want).then(|| {
            format!(
                "{what} {i} is dev {} {:#x}+{:#x} but famfs says dev {} {:#x}+{:#x}",
                got.0, got.1, got.2, want.0, want.1, want.2
            )
        })
    };
    match &fmap.extents {
        Extents::Simple(v) => {
            if !shadow.striped_ext_list.is_empty() {
                d.push("simple extents but famfs says striped".into());
            } else if v.len() != shadow.simple_ext_list.len() {
                d.push(format!(
                    "{} extents but famfs says {}",
                    v.len(),
                    shadow.simple_ext_list.len()
                ));
            } else {
                d.extend(
                    v.iter()
                        .zip(&shadow.simple_ext_list)
                        .enumerate()
                        .filter_map(|(i, (e, s))| ext(i, "extent", e, s)),
                );
            }
            let covered: u64 = v.iter().map(|e| e.len).sum();
            if covered < fmap.file_size {
                d.push(format!(
                    "extents cover {covered} of {} bytes",
                    fmap.file_size
                ));
            }
        }
        Extents::Interleave(v) => {
            if v.len() != shadow.striped_ext_list.len() {
                d.push(format!(
                    "{} interleaved extents but famfs says {}",
                    v.len(),
                    shadow.striped_ext_list.len()
                ));
            } else {
                for (i, (e, s)) in v.iter().zip(&shadow.striped_ext_list).enumerate() {
                    if e.strips.len() as u64 != s.nstrips
                        || s.nstrips != s.simple_ext_list.len() as u64
                    {
                        d.push(format!(
                            "interleaved extent {i} has {} strips but famfs says {} ({} listed)",
                            e.strips.len(),
                            s.nstrips,
                            s.simple_ext_list.len()
                        ));
                        continue;
                    }
                    if e.chunk_size as u64 != s.chunk_size {
                        d.push(format!(
                            "interleaved extent {i} chunk {:#x} but famfs says {:#x}",
                            e.chunk_size, s.chunk_size
                        ));
                    }
                    d.extend(
                        e.strips
                            .iter()
                            .zip(&s.simple_ext_list)
                            .enumerate()
                            .filter_map(|(k, (st, ss))| {
                                ext(k, &format!("extent {i} strip"), st, ss)
                            }),
                    );
                }
            }
            let covered: u64 = v.iter().map(|e| e.nbytes).sum();
            if covered < fmap.file_size {
                d.push(format!(
                    "interleaved extents cover {covered} of {} bytes",
                    fmap.file_size
                ));
            }
        }
    }
    d
}

/// One line naming the fmap's shape (no device offsets: those depend on
/// famfs's allocator).
fn shape(f: &Fmap) -> String {
    match &f.extents {
        Extents::Simple(v) => format!(
            "{} simple extent{}, size {}",
            v.len(),
            if v.len() == 1 { "" } else { "s" },
            f.file_size
        ),
        Extents::Interleave(v) => {
            let strips: Vec<String> = v.iter().map(|e| e.strips.len().to_string()).collect();
            let chunks: Vec<String> = v
                .iter()
                .map(|e| format!("{} MiB", e.chunk_size >> 20))
                .collect();
            format!(
                "{} interleaved extent{} of {} strips, chunk {}, size {}",
                v.len(),
                if v.len() == 1 { "" } else { "s" },
                strips.join("/"),
                chunks.join("/"),
                f.file_size
            )
        }
    }
}

/// `fuse-fmaps PREFIX MOUNT DAX PROFILE`: from the recording PREFIX.*,
/// one line per GET_FMAP reply (by the file's path under the mount, sorted):
/// its shape and whether it is what famfs's shadow YAML says (the shadow
/// tree the famfs mounted at MOUNT names in its `user.famfs.shadow` xattr) (size, extents or strips, chunk size, device offsets), the
/// differences otherwise; then one line per GET_DAXDEV reply (`the device`
/// when it names DAX). Errors the daemon gave are printed as errno numbers.
pub fn fmaps(prefix: &str, mount: &str, dax: &str, profile: &str) -> Result<String> {
    let profile = Profile::by_name(profile).map_err(|e| anyhow::anyhow!("{e}"))?;
    // famfs_fused names its shadow tree in an xattr of the mount's root.
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::getxattr(mount, "user.famfs.shadow", &mut buf[..])
        .with_context(|| format!("getxattr {mount} user.famfs.shadow (is famfs mounted there?)"))?;
    let shadow = String::from_utf8_lossy(&buf[..n]).into_owned();
    let xs = exchanges(Path::new(prefix))?;
    // nodeid -> (parent, name), from the LOOKUP replies.
    let mut names: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    for x in xs.values() {
        if classify_opcode(x.req.opcode, Some(&profile)) != OpKind::Std(Opcode::Lookup) {
            continue;
        }
        let Some((h, p)) = &x.reply else { continue };
        if h.error != 0 {
            continue;
        }
        if let Ok(e) = EntryOut::decode(p) {
            let name = x.req_payload.split(|c| *c == 0).next().unwrap_or(&[]);
            names.insert(
                e.nodeid,
                (x.req.nodeid, String::from_utf8_lossy(name).into_owned()),
            );
        }
    }
    let path_of = |mut node: u64| {
        let mut parts = Vec::new();
        while let Some((parent, name)) = names.get(&node) {
            parts.push(name.clone());
            if parts.len() > 64 {
                break;
            }
            node = *parent;
        }
        parts.reverse();
        (node == famfs_proto::abi::ROOT_ID).then(|| parts.join("/"))
    };
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    let mut daxdevs = Vec::new();
    for x in xs.values() {
        let kind = classify_opcode(x.req.opcode, Some(&profile));
        let Some((h, p)) = &x.reply else { continue };
        match kind {
            OpKind::GetFmap => {
                let path = path_of(x.req.nodeid)
                    .unwrap_or_else(|| format!("(node {:#x}, no LOOKUP recorded)", x.req.nodeid));
                let line = if h.error != 0 {
                    format!("error {}", -h.error)
                } else {
                    match Fmap::decode(&profile, p) {
                        Err(e) => format!("undecodable: {e}"),
                        Ok(d) => {
                            let yaml = Path::new(&shadow).join("root").join(&path);
                            let said = std::fs::read_to_string(&yaml)
                                .map_err(|e| format!("no shadow file {}: {e}", yaml.display()))
                                .and_then(|t| {
                                    serde_saphyr::from_str::<ShadowDoc>(&t)
                                        .map_err(|e| format!("{}: {e}", yaml.display()))
                                });
                            match said {
                                Err(e) => format!("{}; {e}", shape(&d.fmap)),
                                Ok(doc) => match compare(&d.fmap, &doc.file) {
                                    v if v.is_empty() => {
                                        format!("{}, as famfs says", shape(&d.fmap))
                                    }
                                    v => format!("{}; {}", shape(&d.fmap), v.join("; ")),
                                },
                            }
                        }
                    }
                };
                lines.insert(path, line);
            }
            OpKind::GetDaxdev => {
                let line = if h.error != 0 {
                    format!("error {}", -h.error)
                } else {
                    match DaxdevOut::decode(p) {
                        Err(e) => format!("undecodable: {e}"),
                        Ok(o) => match String::from_utf8_lossy(o.name_bytes()) {
                            n if n == dax => "the device".to_string(),
                            n => n.into_owned(),
                        },
                    }
                };
                daxdevs.push(format!("GET_DAXDEV {}: {line}\n", x.req.nodeid));
            }
            _ => {}
        }
    }
    let mut out: String = lines
        .iter()
        .map(|(p, l)| format!("GET_FMAP {p}: {l}\n"))
        .collect();
    daxdevs.sort();
    daxdevs.dedup();
    out.extend(daxdevs);
    if out.is_empty() {
        out.push_str("no GET_FMAP or GET_DAXDEV recorded\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as strace 6.1 prints them (`-ff -y -x -e read=all -e
    /// write=all`).
    const TRACE: &str = r#"read(4</dev/fuse>, "\x2a\x00"..., 1052672) = 42
 | 00000  2a 00 00 00 01 00 00 00  34 00 00 00 00 00 00 00  *.......4....... |
 | 00010  01 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  ................ |
 | 00020  50 00 00 00 00 00 00 00  61 00                    P.......a.       |
writev(4</dev/fuse>, [{iov_base="\x10", iov_len=16}], 1) = 16
 * 16 bytes in buffer 0
 | 00000  10 00 00 00 fe ff ff ff  34 00 00 00 00 00 00 00  ........4....... |
read(7</tmp/famfs_shadow_x/root/a>, "---\n", 4096) = 4
 | 00000  2d 2d 2d 0a                                       ---.             |
read(4</dev/fuse>, 0x7f00, 1052672) = -1 EINTR (Interrupted system call)
writev(4</dev/fuse>, [{iov_base="\x28", iov_len=16}, {iov_base="/tmp", iov_len=4}], 2) = 20
 * 16 bytes in buffer 0
 | 00000  14 00 00 00 00 00 00 00  3c 00 00 00 00 00 00 00  ........<....... |
 * 4 bytes in buffer 1
 | 00000  2f 74 6d 70                                       /tmp             |
"#;

    #[test]
    fn strace_dumps_become_requests_and_replies() {
        let ios = parse_strace(TRACE);
        assert_eq!(ios.len(), 3, "{ios:?}");
        let Io::Request(r) = &ios[0] else {
            panic!("{ios:?}")
        };
        assert_eq!(r.len(), 42);
        let h = InHeader::decode(r).unwrap();
        assert_eq!((h.len, h.opcode, h.unique, h.nodeid), (42, 1, 0x34, 1));
        assert_eq!(&r[40..], b"a\0");
        let Io::Reply(w) = &ios[1] else {
            panic!("{ios:?}")
        };
        assert_eq!(OutHeader::decode(w).unwrap().error, -2);
        // Both buffers of a writev, in order; the shadow file read and the
        // failed read are not /dev/fuse transfers.
        let Io::Reply(w) = &ios[2] else {
            panic!("{ios:?}")
        };
        assert_eq!(w.len(), 20);
        assert_eq!(&w[16..], b"/tmp");
    }

    fn shadow(text: &str) -> ShadowFile {
        serde_saphyr::from_str::<ShadowDoc>(text).unwrap().file
    }

    const STRIPED: &str = "---\nfile:\n  path: s\n  size: 67108864\n  flags: 2\n  mode: 0644\n  uid: 0\n  gid: 0\n  nextents: 1\n  striped_ext_list:\n  - nstrips: 2\n    chunk_size: 0x200000\n    simple_ext_list:\n    - devindex: 0\n      offset: 0x4ea00000\n      length: 0x2000000\n    - devindex: 0\n      offset: 0xe00000\n      length: 0x2000000\n...\n";

    #[test]
    fn a_served_fmap_is_compared_with_the_shadow_yaml() {
        let simple = shadow("---\nfile:\n  path: a\n  size: 4194304\n  mode: 0644\n  nextents: 1\n  simple_ext_list:\n  - devindex: 0\n    offset: 0xa00000\n    length: 0x400000\n...\n");
        let good = Fmap::simple(
            4 << 20,
            vec![famfs_proto::SimpleExtent::new(0xa00000, 0x400000)],
        );
        assert!(compare(&good, &simple).is_empty());
        assert_eq!(shape(&good), "1 simple extent, size 4194304");
        let moved = Fmap::simple(
            4 << 20,
            vec![famfs_proto::SimpleExtent::new(0xc00000, 0x400000)],
        );
        assert_eq!(
            compare(&moved, &simple),
            ["extent 0 is dev 0 0xc00000+0x400000 but famfs says dev 0 0xa00000+0x400000"]
        );
        let short = Fmap::simple(
            8 << 20,
            vec![famfs_proto::SimpleExtent::new(0xa00000, 0x400000)],
        );
        assert_eq!(
            compare(&short, &simple),
            [
                "file_size 8388608 but famfs says size 4194304",
                "extents cover 4194304 of 8388608 bytes"
            ]
        );

        let striped = shadow(STRIPED);
        let strips = vec![
            famfs_proto::SimpleExtent::new(0x4ea00000, 0x2000000),
            famfs_proto::SimpleExtent::new(0xe00000, 0x2000000),
        ];
        let good = Fmap::interleaved(
            64 << 20,
            vec![famfs_proto::InterleavedExtent::new(
                2 << 20,
                64 << 20,
                strips.clone(),
            )],
        );
        assert!(
            compare(&good, &striped).is_empty(),
            "{:?}",
            compare(&good, &striped)
        );
        assert_eq!(
            shape(&good),
            "1 interleaved extent of 2 strips, chunk 2 MiB, size 67108864"
        );
        let chunk = Fmap::interleaved(
            64 << 20,
            vec![famfs_proto::InterleavedExtent::new(
                4 << 20,
                64 << 20,
                strips,
            )],
        );
        assert_eq!(
            compare(&chunk, &striped),
            ["interleaved extent 0 chunk 0x400000 but famfs says 0x200000"]
        );
        assert_eq!(
            compare(&good, &simple)[0],
            "file_size 67108864 but famfs says size 4194304"
        );
    }
}
