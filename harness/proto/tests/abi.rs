//! Layout and framing tests for the FUSE/famfs structs.

use famfs_proto::abi::*;
use famfs_proto::errno::{ENOENT, ENOSYS};
use famfs_proto::Profile;
use std::mem::{offset_of, size_of};

/// Checks the declared size, the Rust size, the encoded length, and that
/// the codec maps every byte in order (decode then encode of a
/// non-repeating pattern gives the pattern back).
fn check_layout<T: Wire + Default + std::fmt::Debug + PartialEq>(expected: usize) {
    assert_eq!(T::SIZE, expected, "{} SIZE", T::NAME);
    assert_eq!(size_of::<T>(), expected, "{} size_of", T::NAME);
    assert_eq!(
        T::default().to_bytes().len(),
        expected,
        "{} encoded length",
        T::NAME
    );
    let pattern: Vec<u8> = (0..expected).map(|i| (i * 7 + 1) as u8).collect();
    let v = T::decode(&pattern).unwrap();
    assert_eq!(v.to_bytes(), pattern, "{} byte order", T::NAME);
    let short = T::decode(&pattern[..expected - 1]).unwrap_err();
    assert_eq!(
        short,
        AbiError::Short {
            what: T::NAME,
            need: expected,
            got: expected - 1
        }
    );
}

#[test]
fn struct_sizes_and_codec_cover_every_byte() {
    check_layout::<InHeader>(40);
    check_layout::<OutHeader>(16);
    check_layout::<InitIn>(64);
    check_layout::<InitOut>(64);
    check_layout::<Attr>(88);
    check_layout::<EntryOut>(128);
    check_layout::<AttrOut>(104);
    check_layout::<GetattrIn>(16);
    check_layout::<SetattrIn>(88);
    check_layout::<OpenIn>(8);
    check_layout::<CreateIn>(16);
    check_layout::<OpenOut>(16);
    check_layout::<ReadIn>(40);
    check_layout::<WriteIn>(40);
    check_layout::<WriteOut>(8);
    check_layout::<ReleaseIn>(24);
    check_layout::<FlushIn>(24);
    check_layout::<AccessIn>(8);
    check_layout::<ForgetIn>(8);
    check_layout::<ForgetOne>(16);
    check_layout::<BatchForgetIn>(8);
    check_layout::<InterruptIn>(8);
    check_layout::<GetxattrIn>(8);
    check_layout::<GetxattrOut>(8);
    check_layout::<Kstatfs>(80);
    check_layout::<StatfsOut>(80);
    check_layout::<FileLock>(24);
    check_layout::<LkIn>(48);
    check_layout::<LkOut>(24);
    check_layout::<DirentHeader>(24);
    check_layout::<NotifyInvalInodeOut>(24);
    check_layout::<NotifyInvalEntryOut>(16);
    check_layout::<NotifyDeleteOut>(24);
    check_layout::<NotifyStoreOut>(24);
    check_layout::<FmapHeader>(32);
    check_layout::<FmapSimpleExt>(24);
    check_layout::<FmapInterleaveExt>(24);
    check_layout::<GetFmapIn>(8);
    check_layout::<DaxdevOut>(280);
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn in_header_field_offsets() {
    let h = InHeader {
        len: 0x11,
        opcode: 0x22,
        unique: 0x3333,
        nodeid: 0x4444,
        uid: 0x55,
        gid: 0x66,
        pid: 0x77,
        total_extlen: 0x88,
        padding: 0,
    };
    let b = h.to_bytes();
    assert_eq!((le32(&b, 0), le32(&b, 4)), (0x11, 0x22));
    assert_eq!((le64(&b, 8), le64(&b, 16)), (0x3333, 0x4444));
    assert_eq!(
        (le32(&b, 24), le32(&b, 28), le32(&b, 32)),
        (0x55, 0x66, 0x77)
    );
    assert_eq!(u16::from_le_bytes([b[36], b[37]]), 0x88);
    assert_eq!(offset_of!(InHeader, total_extlen), 36);
}

#[test]
fn out_header_field_offsets() {
    let b = OutHeader {
        len: 16,
        error: -22,
        unique: 0xabcdef,
    }
    .to_bytes();
    assert_eq!(le32(&b, 0), 16);
    assert_eq!(le32(&b, 4) as i32, -22);
    assert_eq!(le64(&b, 8), 0xabcdef);
}

#[test]
fn init_out_flags2_at_offset_32() {
    assert_eq!(offset_of!(InitOut, flags2), 32);
    assert_eq!(offset_of!(InitOut, max_pages), 28);
    assert_eq!(offset_of!(InitOut, map_alignment), 30);
    assert_eq!(offset_of!(InitOut, max_stack_depth), 36);
    assert_eq!(offset_of!(InitOut, request_timeout), 40);
    let mut o = InitOut {
        major: 7,
        minor: 46,
        ..Default::default()
    };
    o.flags2 = 0xa1b2_c3d4;
    o.max_pages = 0x0102;
    let b = o.to_bytes();
    assert_eq!(le32(&b, 32), 0xa1b2_c3d4);
    assert_eq!(&b[28..30], &[0x02, 0x01]);
    assert_eq!(le32(&b, 4), 46);
}

#[test]
fn init_in_offsets_and_compat_decode() {
    assert_eq!(offset_of!(InitIn, flags), 12);
    assert_eq!(offset_of!(InitIn, flags2), 16);
    let full = InitIn {
        major: 7,
        minor: 46,
        max_readahead: 1 << 17,
        flags: 0x4000_0000,
        flags2: 0x800,
        unused: [0; 11],
    };
    let b = full.to_bytes();
    assert_eq!(InitIn::decode(&b).unwrap().flags64(), 0x800_4000_0000);
    // A pre-INIT_EXT kernel sends only 16 bytes.
    let old = InitIn::decode_compat(&b[..16]).unwrap();
    assert_eq!(
        (old.major, old.minor, old.flags, old.flags2),
        (7, 46, 0x4000_0000, 0)
    );
    assert!(matches!(
        InitIn::decode_compat(&b[..12]),
        Err(AbiError::Short {
            need: 16,
            got: 12,
            ..
        })
    ));
    let err = InitIn::decode(&b[..40]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fuse_init_in: need 64 bytes, got 40 (short by 24)"
    );
}

#[test]
fn other_field_offsets() {
    assert_eq!(offset_of!(EntryOut, attr), 40);
    assert_eq!(offset_of!(AttrOut, attr), 16);
    assert_eq!(offset_of!(Attr, mode), 60);
    assert_eq!(offset_of!(Attr, flags), 84);
    assert_eq!(offset_of!(SetattrIn, size), 16);
    assert_eq!(offset_of!(SetattrIn, mode), 68);
    assert_eq!(offset_of!(OpenOut, backing_id), 12);
    assert_eq!(offset_of!(ReadIn, size), 16);
    assert_eq!(offset_of!(Kstatfs, bsize), 40);
    assert_eq!(offset_of!(LkIn, lk_flags), 40);
    assert_eq!(offset_of!(FmapHeader, ext_type), 4);
    assert_eq!(offset_of!(FmapHeader, nextents), 8);
    assert_eq!(offset_of!(FmapHeader, reserved0), 12);
    assert_eq!(offset_of!(FmapHeader, file_size), 16);
    assert_eq!(offset_of!(FmapSimpleExt, offset), 8);
    assert_eq!(offset_of!(FmapInterleaveExt, chunk_size), 4);
    assert_eq!(offset_of!(FmapInterleaveExt, nbytes), 8);

    let mut e = EntryOut {
        nodeid: 5,
        ..Default::default()
    };
    e.attr.mode = 0o100644;
    e.attr.size = 0x1234;
    let b = e.to_bytes();
    assert_eq!(le64(&b, 0), 5);
    assert_eq!(le64(&b, 40 + 8), 0x1234);
    assert_eq!(le32(&b, 40 + 60), 0o100644);
}

#[test]
fn daxdev_out_name_at_offset_24() {
    assert_eq!(offset_of!(DaxdevOut, name), 24);
    let d = DaxdevOut::with_path(3, "/dev/dax0.0").unwrap();
    let b = d.to_bytes();
    assert_eq!(b.len(), 280);
    assert_eq!(&b[0..2], &[3, 0]);
    assert_eq!(&b[24..35], b"/dev/dax0.0");
    assert!(b[35..].iter().all(|&c| c == 0));
    assert_eq!(d.name_bytes(), b"/dev/dax0.0");
    assert!(d.name_terminated());
    assert_eq!(DaxdevOut::decode(&b).unwrap(), d);
}

#[test]
fn daxdev_names_long_and_unterminated() {
    let p255 = "x".repeat(255);
    let d = DaxdevOut::with_path(0, &p255).unwrap();
    assert!(d.name_terminated());
    assert_eq!(d.name_bytes().len(), 255);
    assert_eq!(
        DaxdevOut::with_path(0, &"x".repeat(256)).unwrap_err(),
        NameTooLong { len: 256 }
    );

    let raw = DaxdevOut::with_raw_name(0, [b'a'; 256]);
    assert!(!raw.name_terminated());
    assert_eq!(raw.name_bytes().len(), 256);
    let b = raw.to_bytes();
    assert!(b[24..].iter().all(|&c| c == b'a'));
}

#[test]
fn flags_combine_and_split() {
    assert_eq!(combine_flags(0x4000_0001, 0x800), 0x0000_0800_4000_0001);
    assert_eq!(split_flags(0x0000_0800_4000_0001), (0x4000_0001, 0x800));
    assert_eq!(init_flags::INIT_EXT, 1 << 30);
    assert_eq!(init_flags::WRITEBACK_CACHE, 1 << 16);
    assert_eq!(
        init_flags::DO_READDIRPLUS | init_flags::READDIRPLUS_AUTO,
        0x6000
    );
    assert_eq!(init_flags::MAX_PAGES, 1 << 22);
}

#[test]
fn famfs_flag_lands_in_flags2_per_profile() {
    let v10 = Profile::v10();
    let mut o = InitOut::default();
    o.set_flags64(init_flags::INIT_EXT | v10.flag_mask());
    assert_eq!((o.flags, o.flags2), (1 << 30, 0x800));
    assert_eq!(le32(&o.to_bytes(), 32), 0x800);
    assert_eq!(o.flags64(), init_flags::INIT_EXT | (1 << 43));

    assert!(v10.has_flag(o.flags64()));

    let old = Profile::famfs_6_14();
    assert!(
        !old.has_flag(o.flags64()),
        "bit 43 is not the famfs-6.14 capability"
    );
    o.set_flags64(old.flag_mask());
    assert_eq!((o.flags, o.flags2), (0, 0x400));
    assert!(old.has_flag(o.flags64()) && !v10.has_flag(o.flags64()));
}

#[test]
fn flag_names_follow_profile() {
    let f = init_flags::ASYNC_READ | (1 << 43) | (1 << 50);
    assert_eq!(
        init_flag_names(f, None),
        vec!["ASYNC_READ", "HAS_IO_URING_BUFPOOL", "bit 50"]
    );
    assert_eq!(
        init_flag_names(f, Some(&Profile::v10())),
        vec!["ASYNC_READ", "DAX_FMAP", "bit 50"]
    );
    assert_eq!(
        init_flag_names(1 << 42, Some(&Profile::famfs_6_14())),
        vec!["DAX_FMAP"]
    );
    assert_eq!(
        init_flag_names(1 << 42, Some(&Profile::v10())),
        vec!["REQUEST_TIMEOUT"]
    );
}

#[test]
fn standard_opcode_numbers() {
    let expect = [
        (Opcode::Lookup, 1),
        (Opcode::Forget, 2),
        (Opcode::Getattr, 3),
        (Opcode::Setattr, 4),
        (Opcode::Mknod, 8),
        (Opcode::Open, 14),
        (Opcode::Release, 18),
        (Opcode::Getxattr, 22),
        (Opcode::Flush, 25),
        (Opcode::Init, 26),
        (Opcode::Opendir, 27),
        (Opcode::Readdir, 28),
        (Opcode::Releasedir, 29),
        (Opcode::Create, 35),
        (Opcode::Interrupt, 36),
        (Opcode::Destroy, 38),
        (Opcode::BatchForget, 42),
        (Opcode::Readdirplus, 44),
        (Opcode::Statx, 52),
        (Opcode::CopyFileRange64, 53),
        (Opcode::CuseInit, 4096),
    ];
    for (op, n) in expect {
        assert_eq!(op as u32, n);
        assert_eq!(Opcode::from_u32(n), Some(op));
    }
    assert_eq!(Opcode::from_u32(7), None);
    assert_eq!(Opcode::from_u32(19), None);
}

#[test]
fn opcode_names_depend_on_profile() {
    let v10 = Profile::v10();
    let old = Profile::famfs_6_14();
    assert_eq!(opcode_name(54, Some(&v10)), "GET_FMAP");
    assert_eq!(opcode_name(55, Some(&v10)), "GET_DAXDEV");
    assert_eq!(opcode_name(53, Some(&v10)), "COPY_FILE_RANGE_64");
    assert_eq!(opcode_name(53, Some(&old)), "GET_FMAP");
    assert_eq!(opcode_name(54, Some(&old)), "GET_DAXDEV");
    assert_eq!(opcode_name(55, Some(&old)), "UNKNOWN");
    assert_eq!(opcode_name(53, None), "COPY_FILE_RANGE_64");
    assert_eq!(opcode_name(54, None), "UNKNOWN");
    assert_eq!(opcode_name(26, Some(&v10)), "INIT");
    assert_eq!(opcode_name(44, None), "READDIRPLUS");
    assert_eq!(classify_opcode(54, Some(&v10)), OpKind::GetFmap);
    assert_eq!(classify_opcode(1, Some(&v10)), OpKind::Std(Opcode::Lookup));
    assert_eq!(classify_opcode(999, None), OpKind::Unknown(999));
}

#[test]
fn reply_framing() {
    let r = reply(0x99, b"abc");
    assert_eq!(r.len(), 19);
    let h = OutHeader::decode(&r).unwrap();
    assert_eq!(
        h,
        OutHeader {
            len: 19,
            error: 0,
            unique: 0x99
        }
    );
    assert_eq!(&r[16..], b"abc");

    let e = reply_error(0x99, ENOENT);
    assert_eq!(
        OutHeader::decode(&e).unwrap(),
        OutHeader {
            len: 16,
            error: -2,
            unique: 0x99
        }
    );
    assert_eq!(e.len(), 16);

    let w = reply_with(
        5,
        &OpenOut {
            fh: 7,
            open_flags: fopen::KEEP_CACHE,
            backing_id: 0,
        },
    );
    assert_eq!(w.len(), 32);
    assert_eq!(OpenOut::decode(&w[16..]).unwrap().fh, 7);

    let store = NotifyStoreOut {
        nodeid: 9,
        offset: 0,
        size: 4,
        padding: 0,
    };
    let mut payload = store.to_bytes();
    payload.extend_from_slice(b"data");
    let n = notification(notify::STORE, &payload);
    assert_eq!(
        OutHeader::decode(&n).unwrap(),
        OutHeader {
            len: 44,
            error: 4,
            unique: 0
        }
    );
    assert_eq!(NotifyStoreOut::decode(&n[16..]).unwrap(), store);
    assert_eq!(notify::INVAL_INODE, 2);
    assert_eq!(ENOSYS, 38);
}

#[test]
fn request_splitting() {
    let mut req = InHeader {
        len: 48,
        opcode: 14,
        unique: 3,
        nodeid: 5,
        ..Default::default()
    }
    .to_bytes();
    req.extend_from_slice(
        &OpenIn {
            flags: 2,
            open_flags: 0,
        }
        .to_bytes(),
    );
    let (h, payload) = split_request(&req).unwrap();
    assert_eq!((h.opcode, h.nodeid, payload.len()), (14, 5, 8));
    assert_eq!(OpenIn::decode(payload).unwrap().flags, 2);

    req.push(0);
    assert_eq!(
        split_request(&req).unwrap_err(),
        AbiError::LenMismatch {
            declared: 48,
            got: 49
        }
    );
    assert_eq!(
        split_request(&req[..39]).unwrap_err(),
        AbiError::Short {
            what: "fuse_in_header",
            need: 40,
            got: 39
        }
    );
    let (g, name) = GetxattrIn::split(b"\x10\0\0\0\0\0\0\0user.x\0").unwrap();
    assert_eq!((g.size, name), (16, &b"user.x\0"[..]));
}

#[test]
fn dirent_records_are_padded_to_8() {
    assert_eq!(dirent_size(1), 32);
    assert_eq!(dirent_size(8), 32);
    assert_eq!(dirent_size(9), 40);
    assert_eq!(direntplus_size(3), 160);
    assert_eq!(DIRENTPLUS_NAME_OFFSET, 152);
    assert_eq!(dirent_type(0o100644), 8);
    assert_eq!(dirent_type(0o040755), 4);

    let mut buf = Vec::new();
    push_dirent(&mut buf, 2, 1, 8, b"abc");
    assert_eq!(buf.len(), 32);
    assert_eq!(&buf[24..27], b"abc");
    assert_eq!(&buf[27..32], &[0; 5]);
    push_dirent(&mut buf, 3, 2, 4, b"directory");
    assert_eq!(buf.len(), 72);
    let d = parse_dirents(&buf).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[1],
        Dirent {
            ino: 3,
            off: 2,
            typ: 4,
            name: b"directory".to_vec()
        }
    );

    // A name that runs past the buffer.
    let mut bad = buf[..32].to_vec();
    bad[16] = 100;
    assert_eq!(
        parse_dirents(&bad).unwrap_err(),
        AbiError::DirentName {
            offset: 0,
            namelen: 100,
            available: 8
        }
    );
}

#[test]
fn direntplus_records() {
    let mut e = EntryOut {
        nodeid: 10,
        ..Default::default()
    };
    e.attr.ino = 10;
    let mut buf = Vec::new();
    push_direntplus(&mut buf, &e, 1, 8, b"f");
    push_direntplus(&mut buf, &e, 2, 8, b"longer-name");
    assert_eq!(buf.len(), direntplus_size(1) + direntplus_size(11));
    assert_eq!(buf[152], b'f');
    let v = parse_direntplus(&buf).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].0.nodeid, 10);
    assert_eq!(v[1].1.name, b"longer-name");
    assert_eq!(v[1].1.ino, 10);
    assert!(matches!(
        parse_direntplus(&buf[..100]),
        Err(AbiError::Short {
            what: "fuse_entry_out",
            ..
        })
    ));
}

#[test]
fn batch_forget_parsing() {
    let mut p = BatchForgetIn { count: 2, dummy: 0 }.to_bytes();
    p.extend(
        ForgetOne {
            nodeid: 4,
            nlookup: 1,
        }
        .to_bytes(),
    );
    p.extend(
        ForgetOne {
            nodeid: 5,
            nlookup: 3,
        }
        .to_bytes(),
    );
    let v = parse_batch_forget(&p).unwrap();
    assert_eq!(
        v[1],
        ForgetOne {
            nodeid: 5,
            nlookup: 3
        }
    );
    assert_eq!(
        parse_batch_forget(&p[..30]).unwrap_err(),
        AbiError::Short {
            what: "fuse_forget_one",
            need: 32,
            got: 22
        }
    );
}
