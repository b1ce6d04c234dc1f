//! fmap encoding, lenient decoding, precise decode errors and the raw
//! builder.

use famfs_proto::abi::{FmapInterleaveExt, FmapSimpleExt};
use famfs_proto::fmap::{walk, Record, FILE_TYPE_LOG};
use famfs_proto::{DecodeError, Extents, Fmap, InterleavedExtent, Profile, RawFmap, SimpleExtent};

const MIB: u64 = 1 << 20;

fn simple_n(n: u64) -> Fmap {
    let ext = (0..n)
        .map(|i| SimpleExtent::new((2 * i + 1) * 2 * MIB, 2 * MIB))
        .collect();
    Fmap::simple(n * 2 * MIB, ext)
}

fn interleaved(nstrips: u64) -> Fmap {
    let strips = (0..nstrips)
        .map(|i| SimpleExtent::new(i * 64 * MIB, 8 * MIB))
        .collect();
    Fmap::interleaved(
        nstrips * 8 * MIB,
        vec![InterleavedExtent::new(2 << 20, nstrips * 8 * MIB, strips)],
    )
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn simple_fmap_bytes_are_as_documented() {
    let mut f = simple_n(1);
    f.file_type = FILE_TYPE_LOG;
    let b = f.encode(&Profile::v10());
    assert_eq!(b.len(), 56);
    assert_eq!(b[0], 2, "file_type");
    assert_eq!(u16::from_le_bytes([b[2], b[3]]), 1, "fmap_version");
    assert_eq!(le32(&b, 4), 0, "ext_type SIMPLE");
    assert_eq!(le32(&b, 8), 1, "nextents");
    assert_eq!(le32(&b, 12), 0, "reserved0 under v10");
    assert_eq!(le64(&b, 16), 2 * MIB, "file_size");
    assert_eq!(le32(&b, 32), 0, "devindex");
    assert_eq!(le64(&b, 40), 2 * MIB, "offset");
    assert_eq!(le64(&b, 48), 2 * MIB, "len");
}

#[test]
fn interleaved_fmap_bytes_are_as_documented() {
    let b = interleaved(3).encode(&Profile::v10());
    assert_eq!(b.len(), 32 + 24 + 3 * 24);
    assert_eq!(le32(&b, 4), 1, "ext_type INTERLEAVE");
    assert_eq!(le32(&b, 8), 1, "nextents counts extents, not strips");
    assert_eq!(le32(&b, 32), 3, "nstrips");
    assert_eq!(le32(&b, 36), 2 << 20, "chunk_size");
    assert_eq!(le64(&b, 40), 24 * MIB, "nbytes");
    assert_eq!(le64(&b, 56 + 2 * 24 + 8), 128 * MIB, "third strip offset");
}

#[test]
fn round_trip_every_class_under_every_profile() {
    let cases = [
        ("simple 1", simple_n(1)),
        ("simple 32", simple_n(32)),
        ("interleave 1x4", interleaved(4)),
        (
            "interleave 2x2 on two devices",
            Fmap::interleaved(
                8 * MIB,
                vec![
                    InterleavedExtent::new(
                        2 << 20,
                        4 * MIB,
                        vec![SimpleExtent::new(0, 2 * MIB); 2],
                    ),
                    InterleavedExtent {
                        chunk_size: 4 << 20,
                        nbytes: 4 * MIB,
                        reserved: 9,
                        strips: vec![
                            SimpleExtent {
                                devindex: 1,
                                reserved: 5,
                                offset: 0,
                                len: 2 * MIB
                            };
                            2
                        ],
                    },
                ],
            ),
        ),
    ];
    for p in Profile::builtins() {
        for (what, f) in &cases {
            let b = f.encode(&p);
            assert_eq!(b.len(), f.encoded_len(), "{what} / {}", p.name);
            let d = Fmap::decode(&p, &b).unwrap();
            assert_eq!(&d.fmap, f, "{what} / {}", p.name);
            assert!(d.trailing.is_empty());
            if p.has_fmap_size() {
                assert_eq!(d.fmap_size, Some(b.len() as u32), "{what} / {}", p.name);
                assert_eq!(le32(&b, 12) as usize, b.len());
            } else {
                assert_eq!(d.fmap_size, None);
            }
            assert_eq!(d.fmap.encode(&p), b);
        }
    }
}

#[test]
fn simple_32_has_expected_length() {
    let b = simple_n(32).encode(&Profile::v10());
    assert_eq!(b.len(), 32 + 32 * 24);
    assert_eq!(le32(&b, 8), 32);
}

#[test]
fn reserved0_survives_under_v10_but_not_as_fmap_size() {
    let mut f = simple_n(1);
    f.reserved0 = 0xdead;
    f.reserved = 3;
    f.reserved1 = 7;
    let v10 = Profile::v10();
    let d = Fmap::decode(&v10, &f.encode(&v10)).unwrap();
    assert_eq!(d.fmap, f);
    // Under an fmap_size profile the word holds the size instead.
    let post = Profile::next();
    let b = f.encode(&post);
    assert_eq!(le32(&b, 12), 56);
    let d = Fmap::decode(&post, &b).unwrap();
    assert_eq!(d.fmap.reserved0, 0);
    assert_eq!(d.fmap_size, Some(56));
}

#[test]
fn decode_is_lenient_about_validity() {
    // Things a kernel rejects but that are structurally fine.
    let mut f = simple_n(2);
    if let Extents::Simple(v) = &mut f.extents {
        v[0].devindex = 31;
        v[1].offset = 4096;
    }
    f.file_size = u64::MAX;
    f.version = 77;
    f.file_type = 200;
    let d = Fmap::decode(&Profile::v10(), &f.encode(&Profile::v10())).unwrap();
    assert_eq!(d.fmap, f);
    // nextents 0 decodes to no extents.
    let b = Fmap::simple(0, vec![]).encode(&Profile::v10());
    assert_eq!(
        Fmap::decode(&Profile::v10(), &b).unwrap().fmap.nextents(),
        0
    );
    // Interleave decodes even under a profile that rejects it.
    let f = interleaved(2);
    assert_eq!(
        Fmap::decode(&Profile::next(), &f.encode(&Profile::v10()))
            .unwrap()
            .fmap,
        f
    );
}

#[test]
fn decode_keeps_trailing_bytes() {
    let p = Profile::v10();
    let mut raw = simple_n(1).to_raw(&p);
    raw.append(&[1, 2, 3]);
    let d = Fmap::decode(&p, &raw.to_bytes()).unwrap();
    assert_eq!(d.trailing, vec![1, 2, 3]);
    assert_eq!(d.fmap, simple_n(1));
}

#[test]
fn decode_error_short_header() {
    let p = Profile::v10();
    let b = simple_n(1).encode(&p);
    let e = Fmap::decode(&p, &b[..31]).unwrap_err();
    assert_eq!(e, DecodeError::Short { need: 32, got: 31 });
    assert_eq!(e.offset(), 0);
    assert_eq!(
        Fmap::decode(&p, &[]).unwrap_err(),
        DecodeError::Short { need: 32, got: 0 }
    );
}

#[test]
fn decode_error_bad_ext_type() {
    let p = Profile::v10();
    let b = simple_n(1).to_raw(&p).set_ext_type(7).to_bytes();
    let e = Fmap::decode(&p, &b).unwrap_err();
    assert_eq!(
        e,
        DecodeError::BadExtType {
            ext_type: 7,
            offset: 4
        }
    );
    assert_eq!(e.offset(), 4);
    assert!(e.to_string().contains("ext_type 7"));
}

#[test]
fn decode_error_truncated_extent() {
    let p = Profile::v10();
    // Three announced, two present: the third starts at 32 + 2*24 = 80.
    let b = simple_n(2).to_raw(&p).set_nextents(3).to_bytes();
    let e = Fmap::decode(&p, &b).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TruncatedExtent {
            index: 2,
            offset: 80,
            need: 24,
            got: 0
        }
    );
    assert_eq!(e.to_string(), "extent 2 at offset 80: need 24 bytes, got 0");
    // Cut in the middle of the second extent.
    let b = simple_n(2).to_raw(&p).truncate(66).to_bytes();
    assert_eq!(
        Fmap::decode(&p, &b).unwrap_err(),
        DecodeError::TruncatedExtent {
            index: 1,
            offset: 56,
            need: 24,
            got: 10
        }
    );
    // Huge counts cost nothing.
    let b = simple_n(1).to_raw(&p).set_nextents(u32::MAX).to_bytes();
    assert_eq!(
        Fmap::decode(&p, &b).unwrap_err(),
        DecodeError::TruncatedExtent {
            index: 1,
            offset: 56,
            need: 24,
            got: 0
        }
    );
}

#[test]
fn decode_error_truncated_interleave_header_and_strip() {
    let p = Profile::v10();
    let b = interleaved(1).to_raw(&p).truncate(40).to_bytes();
    assert_eq!(
        Fmap::decode(&p, &b).unwrap_err(),
        DecodeError::TruncatedExtent {
            index: 0,
            offset: 32,
            need: 24,
            got: 8
        }
    );
    // Strip 2 of extent 0 would start at 32 + 24 + 2*24 = 104.
    let mut raw = interleaved(2).to_raw(&p);
    raw.interleave_mut(0).unwrap().nstrips = 3;
    let e = Fmap::decode(&p, &raw.to_bytes()).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TruncatedStrip {
            extent: 0,
            strip: 2,
            offset: 104,
            need: 24,
            got: 0
        }
    );
    assert_eq!(e.offset(), 104);
    raw.append(&[0; 5]);
    assert_eq!(
        Fmap::decode(&p, &raw.to_bytes()).unwrap_err(),
        DecodeError::TruncatedStrip {
            extent: 0,
            strip: 2,
            offset: 104,
            need: 24,
            got: 5
        }
    );
}

#[test]
fn walk_reports_partial_structure() {
    let p = Profile::v10();
    let b = simple_n(3).to_raw(&p).truncate(90).to_bytes();
    let l = walk(&b);
    assert_eq!(l.items.len(), 2);
    assert_eq!(l.items[1].offset, 56);
    assert_eq!(l.end, 80);
    assert_eq!(
        l.error,
        Some(DecodeError::TruncatedExtent {
            index: 2,
            offset: 80,
            need: 24,
            got: 10
        })
    );
    let l = walk(&interleaved(2).encode(&p));
    assert_eq!(l.items.len(), 3);
    assert_eq!((l.items[2].extent, l.items[2].strip), (0, Some(1)));
    assert!(matches!(
        l.items[0].record,
        Record::Interleave(FmapInterleaveExt { nstrips: 2, .. })
    ));
}

#[test]
fn raw_builder_tampering() {
    let p = Profile::v10();
    let mut raw = interleaved(2).to_raw(&p);
    raw.strip_mut(0, 1).unwrap().devindex = 40;
    raw.interleave_mut(0).unwrap().chunk_size = 0;
    assert!(raw.strip_mut(0, 2).is_none());
    assert!(raw.strip_mut(1, 0).is_none());
    assert!(raw.extent_mut(0).is_none());
    let b = raw.to_bytes();
    assert_eq!(le32(&b, 36), 0, "chunk_size");
    assert_eq!(
        le32(&b, RawFmap::record_offset(2)),
        40,
        "second strip devindex"
    );

    let mut raw = simple_n(1).to_raw(&p);
    raw.extent_mut(0).unwrap().len = 12345;
    raw.push(Record::Extent(FmapSimpleExt {
        devindex: 1,
        reserved: 0,
        offset: 0,
        len: 0,
    }));
    raw.set_file_size(1 << 63).set_fmap_size(99);
    raw.patch(0, &[0xff]).patch(100, &[0xaa, 0xbb]);
    let b = raw.to_bytes();
    assert_eq!(b.len(), 102, "patch past the end grows the buffer");
    assert_eq!(b[0], 0xff);
    assert_eq!(le32(&b, 8), 1, "nextents untouched by push");
    assert_eq!(le32(&b, 12), 99);
    assert_eq!(le64(&b, 16), 1 << 63);
    assert_eq!(le64(&b, 48), 12345);
    assert_eq!(le32(&b, 56), 1);
    assert_eq!(&b[100..], &[0xaa, 0xbb]);
    assert_eq!(raw.truncate(10).to_bytes().len(), 10);
}

#[test]
fn raw_builder_fmap_size_sync() {
    let post = Profile::next();
    let mut raw = simple_n(2).to_raw(&post);
    assert_eq!(raw.header.reserved0, 80);
    raw.append(&[0; 8]);
    assert_eq!(raw.header.reserved0, 80, "appending does not resync");
    raw.sync_fmap_size();
    assert_eq!(raw.header.reserved0, 88);
    assert_eq!(raw.body_len(), 88);
}
