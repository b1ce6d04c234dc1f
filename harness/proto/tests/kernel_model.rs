//! The kernel's verdict on fmaps: one test per row of the V10 rejection
//! table, the order of checks, the unchecked conditions, and the other
//! profiles' differences.

use famfs_proto::abi::{DaxdevOut, FmapSimpleExt, Wire};
use famfs_proto::errno::{EFBIG, EINVAL, EIO, ERANGE};
use famfs_proto::fmap::Record;
use famfs_proto::kernel_model::Place;
use famfs_proto::{
    daxdev_verdict, judge_exchange, kernel_verdict, kernel_verdict_retry, DaxdevVerdict, Fmap,
    InterleavedExtent, KernelVerdict, Profile, RawFmap, Rule, SimpleExtent, Unchecked,
};

const MIB: u64 = 1 << 20;

fn simple_n(n: u64) -> Fmap {
    let ext = (0..n)
        .map(|i| SimpleExtent::new(i * 4 * MIB, 2 * MIB))
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

fn v10() -> Profile {
    Profile::v10()
}

#[track_caller]
fn assert_reject(v: &KernelVerdict, errno: i32, rule: Rule) -> Place {
    match v {
        KernelVerdict::Reject(r) => {
            assert_eq!((r.errno, r.rule), (errno, rule), "{v}");
            assert_eq!(v.open_errno(), Some(errno));
            assert_eq!(v.write_errno(), None);
            r.place.unwrap_or(Place {
                extent: u32::MAX,
                strip: None,
            })
        }
        other => panic!("expected {rule} rejection, got {other}"),
    }
}

#[track_caller]
fn accepted(v: &KernelVerdict) -> Vec<Unchecked> {
    match v {
        KernelVerdict::Accept(s) => s.unchecked.clone(),
        other => panic!("expected accept, got {other}"),
    }
}

fn pl(extent: u32, strip: Option<u32>) -> Place {
    Place { extent, strip }
}

// ---- well-formed fmaps --------------------------------------------------

#[test]
fn well_formed_fmaps_are_accepted_cleanly() {
    for f in [simple_n(1), simple_n(32), interleaved(1), interleaved(32)] {
        let v = kernel_verdict(&v10(), &f.encode(&v10()));
        assert_eq!(accepted(&v), vec![], "{v}");
        let s = v.summary().unwrap();
        assert_eq!(s.file_size, f.file_size);
        assert_eq!(s.devices, vec![0]);
        assert_eq!(s.consumed, f.encoded_len());
        assert_eq!(v.open_errno(), None);
    }
    let s = kernel_verdict(&v10(), &simple_n(3).encode(&v10()));
    assert_eq!(s.summary().unwrap().total_len, 6 * MIB);
}

// ---- one test per row of the V10 table ----------------------------------

#[test]
fn row_payload_shorter_than_32_is_einval() {
    let b = simple_n(1).encode(&v10());
    for n in [0, 1, 31] {
        let v = kernel_verdict(&v10(), &b[..n]);
        assert_reject(&v, EINVAL, Rule::ShortHeader);
        assert_eq!(v.rejection().unwrap().value, n as u64);
    }
    // Exactly a header is not "short": the count check fires next.
    assert_reject(&kernel_verdict(&v10(), &b[..32]), EINVAL, Rule::PastPayload);
}

#[test]
fn row_nextents_zero_is_erange() {
    let b = Fmap::simple(0, vec![]).encode(&v10());
    let v = kernel_verdict(&v10(), &b);
    assert_reject(&v, ERANGE, Rule::ExtentCount);
    assert_eq!(v.rejection().unwrap().offset, 8);
}

#[test]
fn row_nextents_above_32_is_erange() {
    let v = kernel_verdict(&v10(), &simple_n(33).encode(&v10()));
    assert_reject(&v, ERANGE, Rule::ExtentCount);
    assert_eq!(v.rejection().unwrap().value, 33);
    // Also for interleave, and for a huge count without the extents.
    let mut f = interleaved(1);
    if let famfs_proto::Extents::Interleave(v) = &mut f.extents {
        let e = v[0].clone();
        v.resize(33, e);
    }
    assert_reject(
        &kernel_verdict(&v10(), &f.encode(&v10())),
        ERANGE,
        Rule::ExtentCount,
    );
    let b = simple_n(1).to_raw(&v10()).set_nextents(u32::MAX).to_bytes();
    assert_reject(&kernel_verdict(&v10(), &b), ERANGE, Rule::ExtentCount);
    // 32 is the last accepted count.
    accepted(&kernel_verdict(&v10(), &simple_n(32).encode(&v10())));
}

#[test]
fn row_ext_type_not_0_or_1_is_einval() {
    for t in [2, 3, 0x100, u32::MAX] {
        let b = simple_n(1).to_raw(&v10()).set_ext_type(t).to_bytes();
        let v = kernel_verdict(&v10(), &b);
        assert_reject(&v, EINVAL, Rule::ExtType);
        assert_eq!(
            (v.rejection().unwrap().offset, v.rejection().unwrap().value),
            (4, u64::from(t))
        );
    }
}

#[test]
fn row_extents_past_payload_is_einval() {
    // Two announced, one present.
    let b = simple_n(1).to_raw(&v10()).set_nextents(2).to_bytes();
    let v = kernel_verdict(&v10(), &b);
    assert_eq!(assert_reject(&v, EINVAL, Rule::PastPayload), pl(1, None));
    assert_eq!(v.rejection().unwrap().offset, 56);
    // Last extent cut short by one byte.
    let b = simple_n(2).to_raw(&v10()).truncate(79).to_bytes();
    assert_eq!(
        assert_reject(&kernel_verdict(&v10(), &b), EINVAL, Rule::PastPayload),
        pl(1, None)
    );
    // Interleaved header missing.
    let b = interleaved(1).to_raw(&v10()).truncate(50).to_bytes();
    assert_eq!(
        assert_reject(&kernel_verdict(&v10(), &b), EINVAL, Rule::PastPayload),
        pl(0, None)
    );
    // A strip missing.
    let mut raw = interleaved(2).to_raw(&v10());
    raw.interleave_mut(0).unwrap().nstrips = 3;
    let v = kernel_verdict(&v10(), &raw.to_bytes());
    assert_eq!(assert_reject(&v, EINVAL, Rule::PastPayload), pl(0, Some(2)));
    assert_eq!(v.rejection().unwrap().offset, 104);
}

#[test]
fn row_interleave_chunk_size_not_multiple_of_2mib_is_einval() {
    for cs in [4096u32, 1 << 20, 3 << 20, (2 << 20) + 1, u32::MAX] {
        let mut raw = interleaved(2).to_raw(&v10());
        raw.interleave_mut(0).unwrap().chunk_size = cs;
        let v = kernel_verdict(&v10(), &raw.to_bytes());
        assert_eq!(
            assert_reject(&v, EINVAL, Rule::ChunkSize),
            pl(0, None),
            "chunk {cs}"
        );
        assert_eq!(v.rejection().unwrap().offset, 36);
    }
    // Larger multiples are fine.
    let mut raw = interleaved(2).to_raw(&v10());
    raw.interleave_mut(0).unwrap().chunk_size = 64 << 20;
    accepted(&kernel_verdict(&v10(), &raw.to_bytes()));
}

#[test]
fn row_interleave_nbytes_zero_is_einval() {
    let mut raw = interleaved(2).to_raw(&v10());
    raw.interleave_mut(0).unwrap().nbytes = 0;
    raw.set_file_size(0);
    assert_reject(
        &kernel_verdict(&v10(), &raw.to_bytes()),
        EINVAL,
        Rule::ZeroNbytes,
    );
}

#[test]
fn row_interleave_nstrips_zero_is_einval() {
    let mut raw = interleaved(1).to_raw(&v10());
    raw.interleave_mut(0).unwrap().nstrips = 0;
    raw.records.truncate(1);
    let v = kernel_verdict(&v10(), &raw.to_bytes());
    assert_eq!(assert_reject(&v, EINVAL, Rule::StripCount), pl(0, None));
    assert_eq!(v.rejection().unwrap().value, 0);
}

#[test]
fn row_interleave_nstrips_above_32_is_einval() {
    let v = kernel_verdict(&v10(), &interleaved(33).encode(&v10()));
    assert_reject(&v, EINVAL, Rule::StripCount);
    assert_eq!(v.rejection().unwrap().value, 33);
    // Rejected from the count alone, before any strip is read.
    let mut raw = interleaved(1).to_raw(&v10());
    raw.interleave_mut(0).unwrap().nstrips = 1000;
    assert_reject(
        &kernel_verdict(&v10(), &raw.to_bytes()),
        EINVAL,
        Rule::StripCount,
    );
    accepted(&kernel_verdict(&v10(), &interleaved(32).encode(&v10())));
}

#[test]
fn row_devindex_not_0_is_einval() {
    for dev in [1u32, 23, 31, 32, 64, u32::MAX] {
        let mut raw = simple_n(2).to_raw(&v10());
        raw.extent_mut(1).unwrap().devindex = dev;
        let v = kernel_verdict(&v10(), &raw.to_bytes());
        assert_eq!(assert_reject(&v, EINVAL, Rule::DevIndex), pl(1, None));
        assert_eq!(
            (v.rejection().unwrap().offset, v.rejection().unwrap().value),
            (56, u64::from(dev))
        );
    }
    let mut raw = interleaved(3).to_raw(&v10());
    raw.strip_mut(0, 2).unwrap().devindex = 1;
    assert_eq!(
        assert_reject(
            &kernel_verdict(&v10(), &raw.to_bytes()),
            EINVAL,
            Rule::DevIndex
        ),
        pl(0, Some(2))
    );
}

#[test]
fn row_offset_not_2mib_aligned_is_einval() {
    for off in [4096u64, MIB, 2 * MIB + 512] {
        let mut raw = simple_n(1).to_raw(&v10());
        raw.extent_mut(0).unwrap().offset = off;
        let v = kernel_verdict(&v10(), &raw.to_bytes());
        assert_reject(&v, EINVAL, Rule::MisalignedOffset);
        assert_eq!(
            (v.rejection().unwrap().offset, v.rejection().unwrap().value),
            (40, off)
        );
    }
    let mut raw = interleaved(2).to_raw(&v10());
    raw.strip_mut(0, 1).unwrap().offset = 4096;
    assert_eq!(
        assert_reject(
            &kernel_verdict(&v10(), &raw.to_bytes()),
            EINVAL,
            Rule::MisalignedOffset
        ),
        pl(0, Some(1))
    );
}

#[test]
fn row_len_not_2mib_aligned_is_einval() {
    let mut raw = simple_n(1).to_raw(&v10());
    raw.extent_mut(0).unwrap().len = 3 * MIB;
    raw.set_file_size(MIB);
    let v = kernel_verdict(&v10(), &raw.to_bytes());
    assert_reject(&v, EINVAL, Rule::MisalignedLen);
    assert_eq!(v.rejection().unwrap().offset, 48);
    let mut raw = interleaved(2).to_raw(&v10());
    raw.strip_mut(0, 0).unwrap().len = 4096;
    assert_eq!(
        assert_reject(
            &kernel_verdict(&v10(), &raw.to_bytes()),
            EINVAL,
            Rule::MisalignedLen
        ),
        pl(0, Some(0))
    );
}

#[test]
fn row_sum_of_lengths_below_file_size_is_einval() {
    let b = simple_n(2)
        .to_raw(&v10())
        .set_file_size(4 * MIB + 1)
        .to_bytes();
    let v = kernel_verdict(&v10(), &b);
    assert_reject(&v, EINVAL, Rule::ShortOfFileSize);
    assert_eq!(
        (v.rejection().unwrap().offset, v.rejection().unwrap().value),
        (16, 4 * MIB)
    );
    // Equal is enough; file_size may also be smaller than the extents.
    accepted(&kernel_verdict(
        &v10(),
        &simple_n(2).to_raw(&v10()).set_file_size(4 * MIB).to_bytes(),
    ));
    accepted(&kernel_verdict(
        &v10(),
        &simple_n(2).to_raw(&v10()).set_file_size(1).to_bytes(),
    ));
    // For interleave V10 adds the strips' lengths, not nbytes
    // (famfs_fuse_meta_alloc; the fmap fuzzer found the model adding
    // nbytes): strips short of the file size are refused...
    let short = Fmap::interleaved(
        16 * MIB,
        vec![InterleavedExtent::new(
            2 << 20,
            16 * MIB,
            vec![
                SimpleExtent::new(0, 8 * MIB),
                SimpleExtent::new(64 * MIB, 2 * MIB),
            ],
        )],
    );
    assert_reject(
        &kernel_verdict(&v10(), &short.encode(&v10())),
        EINVAL,
        Rule::ShortOfFileSize,
    );
    // ... while nbytes short of it is accepted: offsets past nbytes map
    // nothing.
    let mut raw = interleaved(2).to_raw(&v10());
    raw.interleave_mut(0).unwrap().nbytes = 2 * MIB;
    assert_eq!(
        accepted(&kernel_verdict(&v10(), &raw.to_bytes())),
        vec![Unchecked::NbytesShort {
            nbytes: 2 * MIB,
            file_size: 16 * MIB
        }]
    );
}

#[test]
fn reply_above_4096_is_refused_by_dev_fuse() {
    let p = v10();
    let mut raw = simple_n(1).to_raw(&p);
    raw.append(&vec![0; 4096 - 56]);
    accepted(&kernel_verdict(&p, &raw.to_bytes()));
    raw.append(&[0]);
    let v = kernel_verdict(&p, &raw.to_bytes());
    assert_eq!(
        v,
        KernelVerdict::ReplyRejected {
            len: 4097,
            limit: 4096
        }
    );
    assert_eq!((v.write_errno(), v.open_errno()), (Some(EINVAL), Some(EIO)));
    assert_eq!(v.rule(), None);
    assert_eq!(v.outcome_name(), "reply-too-long");
}

// ---- order of checks ----------------------------------------------------

#[test]
fn checks_happen_in_kernel_order() {
    let p = v10();
    // Length limit before everything.
    let b = vec![0u8; 5000];
    assert!(matches!(
        kernel_verdict(&p, &b),
        KernelVerdict::ReplyRejected { .. }
    ));
    // Count before ext_type.
    let b = Fmap::simple(0, vec![])
        .to_raw(&p)
        .set_ext_type(9)
        .to_bytes();
    assert_reject(&kernel_verdict(&p, &b), ERANGE, Rule::ExtentCount);
    // ext_type before the extents are looked at.
    let b = Fmap::simple(0, vec![])
        .to_raw(&p)
        .set_nextents(1)
        .set_ext_type(9)
        .to_bytes();
    assert_reject(&kernel_verdict(&p, &b), EINVAL, Rule::ExtType);
    // Within an extent: devindex, then offset, then len.
    let mut raw = simple_n(1).to_raw(&p);
    *raw.extent_mut(0).unwrap() = FmapSimpleExt {
        devindex: 1,
        reserved: 0,
        offset: 1,
        len: 1,
    };
    assert_reject(&kernel_verdict(&p, &raw.to_bytes()), EINVAL, Rule::DevIndex);
    raw.extent_mut(0).unwrap().devindex = 0;
    assert_reject(
        &kernel_verdict(&p, &raw.to_bytes()),
        EINVAL,
        Rule::MisalignedOffset,
    );
    // Earlier extents first: a bad extent 0 wins over a missing extent 2.
    let mut raw = simple_n(2).to_raw(&p);
    raw.set_nextents(3).extent_mut(0).unwrap().len = 1;
    assert_reject(
        &kernel_verdict(&p, &raw.to_bytes()),
        EINVAL,
        Rule::MisalignedLen,
    );
    // Interleave header: chunk_size, then nbytes, then nstrips.
    let mut raw = interleaved(1).to_raw(&p);
    {
        let h = raw.interleave_mut(0).unwrap();
        h.chunk_size = 1;
        h.nbytes = 0;
        h.nstrips = 0;
    }
    assert_reject(
        &kernel_verdict(&p, &raw.to_bytes()),
        EINVAL,
        Rule::ChunkSize,
    );
    raw.interleave_mut(0).unwrap().chunk_size = 0;
    assert_reject(
        &kernel_verdict(&p, &raw.to_bytes()),
        EINVAL,
        Rule::ZeroNbytes,
    );
    raw.interleave_mut(0).unwrap().nbytes = 1;
    assert_reject(
        &kernel_verdict(&p, &raw.to_bytes()),
        EINVAL,
        Rule::StripCount,
    );
    // File size is checked last.
    let mut raw = simple_n(1).to_raw(&p);
    raw.set_file_size(u64::MAX).extent_mut(0).unwrap().devindex = 2;
    assert_reject(&kernel_verdict(&p, &raw.to_bytes()), EINVAL, Rule::DevIndex);
}

// ---- not checked by V10: accepted ----------------------------------------

#[test]
fn unchecked_fmap_version_and_file_type() {
    let mut f = simple_n(1);
    f.version = 0;
    f.file_type = 9;
    let notes = accepted(&kernel_verdict(&v10(), &f.encode(&v10())));
    assert_eq!(
        notes,
        vec![Unchecked::FmapVersion(0), Unchecked::FileType(9)]
    );
}

#[test]
fn unchecked_reserved_fields() {
    let mut f = interleaved(1);
    f.reserved = 1;
    f.reserved0 = 2;
    f.reserved1 = 3;
    if let famfs_proto::Extents::Interleave(v) = &mut f.extents {
        v[0].reserved = 4;
        v[0].strips[0].reserved = 5;
    }
    let notes = accepted(&kernel_verdict(&v10(), &f.encode(&v10())));
    assert_eq!(
        notes,
        vec![
            Unchecked::Reserved {
                offset: 1,
                value: 1
            },
            Unchecked::Reserved {
                offset: 12,
                value: 2
            },
            Unchecked::Reserved {
                offset: 24,
                value: 3
            },
            Unchecked::Reserved {
                offset: 48,
                value: 4
            },
            Unchecked::Reserved {
                offset: 60,
                value: 5
            },
        ]
    );
}

#[test]
fn unchecked_trailing_bytes() {
    let b = simple_n(1).to_raw(&v10()).append(&[0xee; 10]).to_bytes();
    assert_eq!(
        accepted(&kernel_verdict(&v10(), &b)),
        vec![Unchecked::TrailingBytes {
            offset: 56,
            count: 10
        }]
    );
}

#[test]
fn unchecked_file_size_of_2_pow_63() {
    let f = Fmap::simple(1 << 63, vec![SimpleExtent::new(0, 1 << 63)]);
    let v = kernel_verdict(&v10(), &f.encode(&v10()));
    assert_eq!(accepted(&v), vec![Unchecked::HugeFileSize(1 << 63)]);
    assert_eq!(v.summary().unwrap().file_size, 1 << 63);
}

#[test]
fn unchecked_offset_plus_len_overflow() {
    let off = u64::MAX - (2 * MIB - 1); // 2 MiB aligned, 2 MiB below 2^64
    let f = Fmap::simple(4 * MIB, vec![SimpleExtent::new(off, 4 * MIB)]);
    let notes = accepted(&kernel_verdict(&v10(), &f.encode(&v10())));
    assert_eq!(
        notes,
        vec![Unchecked::Overflow {
            place: pl(0, None),
            offset: off,
            len: 4 * MIB
        }]
    );
    // Same through a strip.
    let mut raw = interleaved(2).to_raw(&v10());
    raw.strip_mut(0, 1).unwrap().offset = off;
    let notes = accepted(&kernel_verdict(&v10(), &raw.to_bytes()));
    assert!(notes.contains(&Unchecked::Overflow {
        place: pl(0, Some(1)),
        offset: off,
        len: 8 * MIB
    }));
}

#[test]
fn unchecked_overlapping_extents() {
    let f = Fmap::simple(
        8 * MIB,
        vec![
            SimpleExtent::new(0, 4 * MIB),
            SimpleExtent::new(10 * MIB, 2 * MIB),
            SimpleExtent::new(2 * MIB, 2 * MIB),
        ],
    );
    let notes = accepted(&kernel_verdict(&v10(), &f.encode(&v10())));
    assert_eq!(
        notes,
        vec![Unchecked::Overlap {
            devindex: 0,
            first: pl(0, None),
            second: pl(2, None)
        }]
    );
    // Adjacent is not overlapping.
    let f = Fmap::simple(
        4 * MIB,
        vec![
            SimpleExtent::new(0, 2 * MIB),
            SimpleExtent::new(2 * MIB, 2 * MIB),
        ],
    );
    assert_eq!(accepted(&kernel_verdict(&v10(), &f.encode(&v10()))), vec![]);
    // Strips of one interleaved extent on the same range.
    let f = Fmap::interleaved(
        4 * MIB,
        vec![InterleavedExtent::new(
            2 << 20,
            4 * MIB,
            vec![SimpleExtent::new(0, 2 * MIB); 2],
        )],
    );
    let notes = accepted(&kernel_verdict(&v10(), &f.encode(&v10())));
    assert_eq!(
        notes,
        vec![Unchecked::Overlap {
            devindex: 0,
            first: pl(0, Some(0)),
            second: pl(0, Some(1))
        }]
    );
}

#[test]
fn unchecked_nbytes_unaligned_before_another_extent() {
    // Found by the fmap fuzzer on famfs-v10: nbytes 1 then a second
    // extent, which then starts at file offset 1 (WARNING in
    // dax_iomap_pte_fault, and the wrong bytes at every page).
    let e = |off: u64, nbytes: u64| {
        InterleavedExtent::new(2 << 20, nbytes, vec![SimpleExtent::new(off, 4 * MIB)])
    };
    let f = Fmap::interleaved(4 * MIB + 1, vec![e(0, 1), e(64 * MIB, 4 * MIB)]);
    assert_eq!(
        accepted(&kernel_verdict(&v10(), &f.encode(&v10()))),
        vec![Unchecked::NbytesUnaligned {
            extent: 0,
            nbytes: 1
        }]
    );
    // The last extent may end anywhere.
    let f = Fmap::interleaved(4 * MIB + 1, vec![e(0, 4 * MIB), e(64 * MIB, 1)]);
    assert_eq!(accepted(&kernel_verdict(&v10(), &f.encode(&v10()))), vec![]);
}

#[test]
fn unchecked_chunk_size_zero() {
    let mut raw = interleaved(2).to_raw(&v10());
    raw.interleave_mut(0).unwrap().chunk_size = 0;
    let v = kernel_verdict(&v10(), &raw.to_bytes());
    assert_eq!(accepted(&v), vec![Unchecked::ChunkSizeZero { extent: 0 }]);
}

#[test]
fn unchecked_zero_length_and_short_strips() {
    let f = Fmap::simple(
        2 * MIB,
        vec![SimpleExtent::new(0, 2 * MIB), SimpleExtent::new(4 * MIB, 0)],
    );
    assert_eq!(
        accepted(&kernel_verdict(&v10(), &f.encode(&v10()))),
        vec![Unchecked::ZeroLength { place: pl(1, None) }]
    );
    // Extent 0 maps 64M of the file with 16M of strips; extent 1's strips
    // cover the file size, so V10's sum check passes and file offsets
    // 16M..64M map past extent 0's strips.
    let big = InterleavedExtent::new(
        2 << 20,
        64 * MIB,
        vec![SimpleExtent::new(512 * MIB, 64 * MIB)],
    );
    let f = Fmap::interleaved(
        70 * MIB,
        vec![
            InterleavedExtent::new(
                2 << 20,
                16 * MIB,
                vec![
                    SimpleExtent::new(0, 8 * MIB),
                    SimpleExtent::new(64 * MIB, 8 * MIB),
                ],
            ),
            big,
        ],
    );
    let mut raw = f.to_raw(&v10());
    raw.interleave_mut(0).unwrap().nbytes = 64 * MIB;
    assert_eq!(
        accepted(&kernel_verdict(&v10(), &raw.to_bytes())),
        vec![Unchecked::StripsShort {
            extent: 0,
            nbytes: 64 * MIB,
            strips_total: 16 * MIB
        }]
    );
}

// ---- famfs-6.14 ---------------------------------------------------------

#[test]
fn famfs_6_14_limits() {
    let p = Profile::famfs_6_14();
    accepted(&kernel_verdict(&p, &simple_n(2).encode(&p)));
    let v = kernel_verdict(&p, &simple_n(3).encode(&p));
    assert_reject(&v, ERANGE, Rule::ExtentCount);
    assert_eq!(v.rejection().unwrap().value, 3);
    accepted(&kernel_verdict(&p, &interleaved(16).encode(&p)));
    let v = kernel_verdict(&p, &interleaved(17).encode(&p));
    assert_reject(&v, EINVAL, Rule::StripCount);
    assert_eq!(v.rejection().unwrap().value, 17);
    // What famfs-6.14 refuses, V10 takes.
    accepted(&kernel_verdict(&v10(), &simple_n(3).encode(&v10())));
    accepted(&kernel_verdict(&v10(), &interleaved(17).encode(&v10())));
}

// ---- next ----------------------------------------------------

#[test]
fn next_rejects_interleave() {
    let p = Profile::next();
    let v = kernel_verdict(&p, &interleaved(2).encode(&p));
    assert_reject(&v, EINVAL, Rule::InterleaveUnsupported);
    assert_eq!(v.rejection().unwrap().offset, 4);
    // Other ext_types are still plain ext-type errors.
    let b = simple_n(1).to_raw(&p).set_ext_type(2).to_bytes();
    assert_reject(&kernel_verdict(&p, &b), EINVAL, Rule::ExtType);
}

#[test]
fn next_accepts_full_fmap_and_more_than_32_extents() {
    let p = Profile::next();
    let v = kernel_verdict(&p, &simple_n(1).encode(&p));
    assert_eq!(accepted(&v), vec![]);
    // 100 extents: 2432 bytes, fits the first buffer.
    accepted(&kernel_verdict(&p, &simple_n(100).encode(&p)));
    // Same rejection rules as V10 for simple extents.
    let mut raw = simple_n(2).to_raw(&p);
    raw.extent_mut(1).unwrap().devindex = 1;
    assert_reject(&kernel_verdict(&p, &raw.to_bytes()), EINVAL, Rule::DevIndex);
}

#[test]
fn next_fmap_size_mismatch_below_payload_is_unchecked() {
    let p = Profile::next();
    let b = simple_n(1).to_raw(&p).set_fmap_size(40).to_bytes();
    assert_eq!(
        accepted(&kernel_verdict(&p, &b)),
        vec![Unchecked::FmapSizeMismatch {
            fmap_size: 40,
            len: 56
        }]
    );
    // The same word under V10 is just a reserved field.
    let b = simple_n(1).to_raw(&v10()).set_fmap_size(40).to_bytes();
    assert_eq!(
        accepted(&kernel_verdict(&v10(), &b)),
        vec![Unchecked::Reserved {
            offset: 12,
            value: 40
        }]
    );
}

#[test]
fn next_retry_with_fmap_size() {
    let p = Profile::next();
    // 300 extents do not fit 4096 bytes: the server sends the header with
    // the full size, the kernel asks again with that buffer.
    let full = simple_n(300).encode(&p);
    assert_eq!(full.len(), 32 + 300 * 24);
    assert!(matches!(
        kernel_verdict(&p, &full),
        KernelVerdict::ReplyRejected {
            len: 7232,
            limit: 4096
        }
    ));
    let first = &full[..32];
    let v = kernel_verdict(&p, first);
    assert_eq!(v, KernelVerdict::Retry { fmap_size: 7232 });
    assert_eq!(v.open_errno(), None);
    let second = kernel_verdict_retry(&p, 7232, &full);
    assert_eq!(second.summary().unwrap().nextents, 300);
    assert_eq!(judge_exchange(&p, first, Some(&full)), second);
    assert_eq!(judge_exchange(&p, first, None), v);
    // The retry reply must fit the new buffer.
    let mut longer = full.clone();
    longer.push(0);
    assert_eq!(
        judge_exchange(&p, first, Some(&longer)),
        KernelVerdict::ReplyRejected {
            len: 7233,
            limit: 7232
        }
    );
    // A retry reply that again falls short is parsed as it is: no second retry.
    let v = judge_exchange(&p, first, Some(&full[..4000]));
    assert_reject(&v, EINVAL, Rule::PastPayload);
    // V10 has no retry: the same header-only reply is a missing-extent error.
    let b = simple_n(300)
        .to_raw(&v10())
        .set_fmap_size(7232)
        .truncate(32)
        .to_bytes();
    assert_reject(&kernel_verdict(&v10(), &b), ERANGE, Rule::ExtentCount);
}

#[test]
fn next_fmap_size_above_16mib_is_efbig() {
    let p = Profile::next();
    let b = simple_n(1)
        .to_raw(&p)
        .set_fmap_size((16 << 20) + 1)
        .to_bytes();
    let v = kernel_verdict(&p, &b);
    assert_reject(&v, EFBIG, Rule::FmapTooBig);
    assert_eq!(
        (v.rejection().unwrap().offset, v.rejection().unwrap().value),
        (12, (16 << 20) + 1)
    );
    let b = simple_n(1).to_raw(&p).set_fmap_size(16 << 20).to_bytes();
    assert_eq!(
        kernel_verdict(&p, &b),
        KernelVerdict::Retry {
            fmap_size: 16 << 20
        }
    );
}

// ---- custom profiles use their own numbers ------------------------------

#[test]
fn custom_profile_numbers_drive_the_verdict() {
    let p = Profile::parse(
        "custom:max_extents=4,max_strips=3,alignment=4096,devindex_limit=2,max_reply=8192",
    )
    .unwrap();
    assert_reject(
        &kernel_verdict(&p, &simple_n(5).encode(&p)),
        ERANGE,
        Rule::ExtentCount,
    );
    assert_reject(
        &kernel_verdict(&p, &interleaved(4).encode(&p)),
        EINVAL,
        Rule::StripCount,
    );
    let f = Fmap::simple(
        8192,
        vec![SimpleExtent {
            devindex: 1,
            reserved: 0,
            offset: 4096,
            len: 8192,
        }],
    );
    let v = kernel_verdict(&p, &f.encode(&p));
    assert_eq!(v.summary().unwrap().devices, vec![1]);
    // The same fmap is three kinds of wrong under V10.
    assert_reject(
        &kernel_verdict(&v10(), &f.encode(&v10())),
        EINVAL,
        Rule::DevIndex,
    );
    let mut raw = simple_n(1).to_raw(&p);
    raw.append(&vec![0; 5000]);
    accepted(&kernel_verdict(&p, &raw.to_bytes()));
    let mut raw2 = raw.clone();
    raw2.push(Record::Extent(FmapSimpleExt::default()));
    assert!(matches!(
        kernel_verdict(&v10(), &raw2.to_bytes()),
        KernelVerdict::ReplyRejected { limit: 4096, .. }
    ));
}

// ---- GET_DAXDEV replies -------------------------------------------------

#[test]
fn daxdev_reply_verdicts() {
    let p = v10();
    let good = DaxdevOut::with_path(0, "/dev/dax0.0").unwrap().to_bytes();
    assert_eq!(
        daxdev_verdict(&p, &good),
        DaxdevVerdict::Path(b"/dev/dax0.0".to_vec())
    );
    assert_eq!(daxdev_verdict(&p, &good).errno(), None);
    let empty = DaxdevOut::default().to_bytes();
    assert_eq!(daxdev_verdict(&p, &empty), DaxdevVerdict::EmptyName);
    assert_eq!(DaxdevVerdict::EmptyName.errno(), Some(EINVAL));
    let raw = DaxdevOut::with_raw_name(0, [b'/'; 256]).to_bytes();
    assert_eq!(daxdev_verdict(&p, &raw), DaxdevVerdict::Unterminated);
    assert_eq!(
        daxdev_verdict(&p, &good[..279]),
        DaxdevVerdict::ReplyRejected {
            len: 279,
            expected: 280
        }
    );
    let mut long = good.clone();
    long.push(0);
    let v = daxdev_verdict(&p, &long);
    assert_eq!(
        v,
        DaxdevVerdict::ReplyRejected {
            len: 281,
            expected: 280
        }
    );
    assert_eq!(v.errno(), Some(EIO));
    assert_eq!(DaxdevOut::SIZE, 280);
}

#[test]
fn raw_fmap_record_offsets_match_rejection_offsets() {
    let mut raw = simple_n(4).to_raw(&v10());
    raw.extent_mut(3).unwrap().devindex = 1;
    let v = kernel_verdict(&v10(), &raw.to_bytes());
    assert_eq!(v.rejection().unwrap().offset, RawFmap::record_offset(3));
}

// ---- next: the size probe's own checks ----------------------------------

#[test]
fn next_reply_shorter_than_the_header_is_eio() {
    let p = Profile::next();
    let b = simple_n(1).encode(&p);
    for n in [0, 1, 16, 31] {
        assert_reject(&kernel_verdict(&p, &b[..n]), EIO, Rule::ShortReply);
        // The retry's reply is checked the same way.
        assert_reject(
            &kernel_verdict_retry(&p, 8192, &b[..n]),
            EIO,
            Rule::ShortReply,
        );
    }
    // V10 parses it and finds no header: EINVAL.
    assert_reject(&kernel_verdict(&v10(), &b[..16]), EINVAL, Rule::ShortHeader);
}

#[test]
fn next_retries_on_the_buffer_size_not_the_payload() {
    let p = Profile::next();
    // A whole 2-extent fmap whose header claims 200 bytes: 200 fits the
    // page the kernel offered, so it parses the 80 bytes it got.
    let b = simple_n(2).to_raw(&p).set_fmap_size(200).to_bytes();
    assert_eq!(
        accepted(&kernel_verdict(&p, &b)),
        vec![Unchecked::FmapSizeMismatch {
            fmap_size: 200,
            len: 80
        }]
    );
    // One byte over the page: the kernel asks again, even though the
    // reply already held every extent.
    let b = simple_n(2).to_raw(&p).set_fmap_size(4097).to_bytes();
    assert_eq!(
        kernel_verdict(&p, &b),
        KernelVerdict::Retry { fmap_size: 4097 }
    );
    // fmap_size 0 (a V10 server): parsed as it is.
    let b = simple_n(2).to_raw(&p).set_fmap_size(0).to_bytes();
    assert!(kernel_verdict(&p, &b).is_accept());
}

#[test]
fn next_a_growing_fmap_on_the_retry_is_einval_or_efbig() {
    let p = Profile::next();
    let full = simple_n(300).encode(&p);
    let first = &full[..32];
    // The retry's header names more than the buffer the first one asked for.
    let grown = simple_n(300).to_raw(&p).set_fmap_size(7233).to_bytes();
    let v = judge_exchange(&p, first, Some(&grown));
    assert_reject(&v, EINVAL, Rule::FmapGrew);
    // Growing past 16 MiB is EFBIG: that check comes first.
    let huge = simple_n(300)
        .to_raw(&p)
        .set_fmap_size((16 << 20) + 1)
        .to_bytes();
    assert_reject(
        &judge_exchange(&p, first, Some(&huge)),
        EFBIG,
        Rule::FmapTooBig,
    );
    // Shrinking is parsed as it is.
    let shrunk = simple_n(300).to_raw(&p).set_fmap_size(7000).to_bytes();
    assert!(judge_exchange(&p, first, Some(&shrunk)).is_accept());
}

#[test]
fn next_has_no_extent_cap_of_its_own() {
    let p = Profile::next();
    // 40,000 extents claimed, one sent: past the payload, not ERANGE.
    let b = simple_n(1).to_raw(&p).set_nextents(40_000).to_bytes();
    assert_reject(&kernel_verdict(&p, &b), EINVAL, Rule::PastPayload);
    // 0 is still ERANGE.
    let b = simple_n(1).to_raw(&p).set_nextents(0).to_bytes();
    assert_reject(&kernel_verdict(&p, &b), ERANGE, Rule::ExtentCount);
    // 100,000 uniform extents (2.4 MB) are one retry away and accepted.
    let big = simple_n(100_000).encode(&p);
    let first = &big[..32];
    assert_eq!(
        kernel_verdict(&p, first),
        KernelVerdict::Retry {
            fmap_size: big.len() as u32
        }
    );
    let v = judge_exchange(&p, first, Some(&big));
    assert_eq!(v.summary().unwrap().nextents, 100_000);
}

// ---- next: pushed devices ------------------------------------------------

mod push {
    use famfs_proto::errno::{EBADF, EBUSY, EINVAL, EIO, ENODEV, EOPNOTSUPP};
    use famfs_proto::{DaxDriver, DaxTable, Profile, PushObject, Slot};

    const DAX: PushObject = PushObject::Dax {
        dev: 0xfd00,
        driver: DaxDriver::Fsdev,
        held_elsewhere: false,
    };

    #[test]
    fn each_push_error_in_the_documented_order() {
        let p = Profile::next();
        let mut t = DaxTable::new(&p);
        // Before famfs is on, nothing else is looked at.
        assert_eq!(t.push(false, 0, DAX).0, vec![EOPNOTSUPP]);
        assert_eq!(t.push(false, 99, PushObject::BadFd).0, vec![EOPNOTSUPP]);
        // The fd is checked before the index.
        assert_eq!(t.push(true, 64, PushObject::BadFd).0, vec![EBADF]);
        assert_eq!(t.push(true, 64, PushObject::NotChardev).0, vec![EINVAL]);
        assert_eq!(t.push(true, 64, DAX).0, vec![EINVAL]);
        assert_eq!(t.push(true, 63, DAX).0, vec![0]);
        assert_eq!(t.slot(63), Some(Slot::Valid(0xfd00)));
        // The same device into a second slot: EBUSY (or an alias), and
        // the slot stays empty.
        assert_eq!(t.push(true, 0, DAX).0, vec![EBUSY, 0]);
        assert_eq!(t.slot(0), Some(Slot::Empty));
        // Nothing of that touched slot 0.
        assert_eq!(t.slot(0), Some(Slot::Empty));
        // V10's table has 24 slots.
        let mut v = DaxTable::new(&Profile::v10());
        assert_eq!(v.push(true, 24, DAX).0, vec![EINVAL]);
    }

    #[test]
    fn a_valid_slot_takes_a_second_push_and_a_failed_one_stays_failed() {
        let mut t = DaxTable::new(&Profile::next());
        assert!(t.push(true, 0, DAX).allows(0));
        assert!(t.push(true, 0, DAX).allows(0), "again: 0");
        // Even a non-dax device: the slot is valid already.
        assert_eq!(t.push(true, 0, PushObject::NonDax).0, vec![0]);

        let mut t = DaxTable::new(&Profile::next());
        assert_eq!(t.push(true, 1, PushObject::NonDax).0, vec![ENODEV]);
        assert_eq!(t.slot(1), Some(Slot::Failed));
        // The revision caches the failure; retrying is correct too.
        let again = t.push(true, 1, DAX);
        assert_eq!(again.documented(), EIO);
        assert!(again.allows(0) && !again.allows(ENODEV));
        let devdax = PushObject::Dax {
            dev: 1,
            driver: DaxDriver::Other,
            held_elsewhere: false,
        };
        assert_eq!(t.push(true, 2, devdax).0, vec![EOPNOTSUPP]);
        let busy = PushObject::Dax {
            dev: 1,
            driver: DaxDriver::Fsdev,
            held_elsewhere: true,
        };
        assert_eq!(t.push(true, 3, busy).0, vec![EBUSY]);
    }

    #[test]
    fn io_follows_the_table_at_open_and_now() {
        let mut t = DaxTable::new(&Profile::next());
        let opened_early = t.ready(&[0]);
        assert!(!opened_early);
        assert_eq!(t.io(opened_early, &[0]).0, vec![EIO]);
        t.push(true, 0, DAX);
        // Pushed after the open: kept broken (documented) or healed.
        assert_eq!(t.io(opened_early, &[0]).0, vec![EIO, 0]);
        assert_eq!(t.io(t.ready(&[0]), &[0]).0, vec![0]);
        // A failed slot is EIO at I/O time.
        t.push(true, 5, PushObject::NonDax);
        assert_eq!(t.io(t.ready(&[5]), &[5]).0, vec![EIO]);
    }
}
