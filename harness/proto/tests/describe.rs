//! The readable fmap dump.

use famfs_proto::describe::fmt_mib;
use famfs_proto::{describe, Fmap, InterleavedExtent, Profile, SimpleExtent};

const MIB: u64 = 1 << 20;

#[test]
fn mib_formatting() {
    assert_eq!(fmt_mib(0), "0 MiB");
    assert_eq!(fmt_mib(6 * MIB), "6 MiB");
    assert_eq!(fmt_mib(3 * MIB / 2), "1.500 MiB");
}

#[test]
fn describes_simple_fmap_and_rejection() {
    let p = Profile::v10();
    let f = Fmap::simple(
        6 * MIB,
        vec![
            SimpleExtent::new(2 * MIB, 4 * MIB),
            SimpleExtent::new(0, 3 * MIB / 2),
        ],
    );
    let text = describe(&p, &f.encode(&p));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "fmap: 80 bytes, profile v10");
    assert!(
        lines[1].contains("ext_type 0 (SIMPLE), nextents 2"),
        "{text}"
    );
    assert!(lines[2].contains("file_size 0x600000 (6 MiB)"), "{text}");
    assert_eq!(
        lines[3],
        "extent 0 @32: devindex 0, offset 0x200000, len 0x400000 (4 MiB)"
    );
    assert_eq!(
        lines[4],
        "extent 1 @56: devindex 0, offset 0x0, len 0x180000 (1.500 MiB)"
    );
    assert_eq!(
        lines[5],
        "verdict: REJECT EINVAL (22) by rule misaligned-len at extent 1 (offset 72, value 0x180000)"
    );
    assert_eq!(lines.len(), 6);
}

#[test]
fn describes_interleave_trailing_and_unchecked() {
    let p = Profile::v10();
    let f = Fmap::interleaved(
        16 * MIB,
        vec![InterleavedExtent::new(
            0,
            16 * MIB,
            vec![
                SimpleExtent::new(0, 8 * MIB),
                SimpleExtent::new(8 * MIB, 8 * MIB),
            ],
        )],
    );
    let b = f.to_raw(&p).append(&[1, 2, 3]).to_bytes();
    let text = describe(&p, &b);
    assert!(text.contains("interleaved extent 0 @32: nstrips 2, chunk_size 0x0 (0 MiB), nbytes 0x1000000 (16 MiB)\n"), "{text}");
    assert!(
        text.contains("    strip 1 @80: devindex 0, offset 0x800000, len 0x800000 (8 MiB)\n"),
        "{text}"
    );
    assert!(text.contains("trailing: 3 bytes at offset 104\n"), "{text}");
    assert!(
        text.contains("verdict: ACCEPT: 1 extent(s), file_size 0x1000000"),
        "{text}"
    );
    assert!(
        text.contains("not checked: extent 0: chunk_size 0\n"),
        "{text}"
    );
    assert!(
        text.contains("not checked: 3 trailing bytes at offset 104\n"),
        "{text}"
    );
}

#[test]
fn describes_structural_errors() {
    let p = Profile::v10();
    let b = Fmap::simple(6 * MIB, vec![SimpleExtent::new(2 * MIB, 4 * MIB)])
        .to_raw(&p)
        .set_nextents(3)
        .to_bytes();
    let text = describe(&p, &b);
    assert!(
        text.contains("decode error: extent 1 at offset 56: need 24 bytes, got 0\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "verdict: REJECT EINVAL (22) by rule past-payload at extent 1 (offset 56, value 56)"
        ),
        "{text}"
    );
    let text = describe(&p, &b[..20]);
    assert!(
        text.contains("decode error: fmap header: need 32 bytes, got 20"),
        "{text}"
    );
    assert!(text.contains("rule short-header"), "{text}");
    assert!(!text.contains("\nheader:"), "{text}");
    let text = describe(&p, &b.iter().copied().chain([0; 5000]).collect::<Vec<u8>>());
    assert!(
        text.contains("REPLY REJECTED: 5056 bytes > 4096: write() EINVAL (22), open() EIO (5)"),
        "{text}"
    );
}

#[test]
fn describes_fmap_size_and_retry() {
    let p = Profile::next();
    let b = Fmap::simple(6 * MIB, vec![SimpleExtent::new(2 * MIB, 4 * MIB)])
        .to_raw(&p)
        .set_fmap_size(9000)
        .truncate(32)
        .to_bytes();
    let text = describe(&p, &b);
    assert!(text.contains("fmap_size 0x2328"), "{text}");
    assert!(!text.contains("reserved0"), "{text}");
    assert!(
        text.contains("verdict: RETRY: kernel asks again with a 9000-byte buffer"),
        "{text}"
    );
}
