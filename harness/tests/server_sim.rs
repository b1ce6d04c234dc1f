//! The famfs server driven by a simulated kernel: requests are built the
//! way a kernel of each profile sends them, and replies are checked byte
//! for byte. For fmap and daxdev faults the reply is also judged with the
//! protocol model (`kernel_verdict`, `daxdev_verdict`), which gives the
//! errno open() would see on a famfs kernel.

// Inside `mod server` so `cargo test server` selects these tests by name.
mod server {
    use famfs_harness::server::dispatch::RequestRecord;
    use famfs_harness::server::scenario::Config;
    use famfs_harness::server::sim::{
        self, init_payload, name_payload, read_payload, request, SimKernel, KERNEL_OFFER,
    };
    use famfs_harness::server::transport::ServeEnd;
    use famfs_harness::server::{Action, InitRecord, Server};
    use famfs_proto::abi::{
        self, fattr, init_flags, notify, AttrOut, DaxdevOut, EntryOut, ForgetIn, GetxattrIn,
        InitOut, NotifyInvalInodeOut, NotifyStoreOut, OpenOut, OutHeader, SetattrIn, StatfsOut,
        Wire,
    };
    use famfs_proto::errno::{
        EFBIG, EINVAL, EIO, EISDIR, ENODATA, ENOENT, ENOSYS, ENOTDIR, EOPNOTSUPP, ERANGE,
    };
    use famfs_proto::kernel_model::{DaxdevVerdict, Unchecked};
    use famfs_proto::{
        daxdev_verdict, judge_exchange, kernel_verdict, Fmap, KernelVerdict, Opcode, Profile, Rule,
        SimpleExtent,
    };
    use std::io::Write;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// Node ids follow the sorted paths: / 1, /a 2, /dir 3, /dir/hello.txt 4,
    /// /dir/sub 5, /empty 6, /i 7.
    const TREE: &str = r#"
daxdevs: {0: /dev/dax0.0, 1: /dev/dax1.0}
tree:
  - path: /a
    fmap:
      extents:
        - {offset: 2M, len: 2M}
        - {offset: 8M, len: 2M}
  - path: /dir/hello.txt
    content: "hello famfs\n"
  - path: /dir/sub
    type: dir
  - path: /i
    fmap:
      interleave:
        - chunk_size: 2M
          nbytes: 8M
          strips:
            - {offset: 0, len: 4M}
            - {offset: 16M, len: 4M}
  - path: /empty
    size: 4K
"#;
    const ROOT: u64 = 1;
    const A: u64 = 2;
    const DIR: u64 = 3;
    const HELLO: u64 = 4;
    const SUB: u64 = 5;
    const EMPTY: u64 = 6;
    const I: u64 = 7;
    const MIB: u64 = 1 << 20;

    fn config(yaml: &str, profile: Option<&str>) -> Config {
        let p = profile.map(|p| Profile::parse(p).unwrap());
        Config::from_text(Path::new("test.yaml"), yaml, p)
            .unwrap_or_else(|e| panic!("{e:#}\n{yaml}"))
    }

    /// The dispatcher driven directly, one request at a time.
    struct Direct {
        s: Server,
        unique: u64,
    }

    impl Direct {
        fn new(yaml: &str) -> Direct {
            Direct::with_profile(yaml, None)
        }

        fn with_profile(yaml: &str, profile: Option<&str>) -> Direct {
            Direct {
                s: Server::new(config(yaml, profile)),
                unique: 100,
            }
        }

        fn profile(&self) -> Profile {
            self.s.profile().clone()
        }

        fn call(&mut self, op: u32, nodeid: u64, payload: &[u8]) -> (Vec<Action>, RequestRecord) {
            self.unique += 2;
            self.s
                .handle_logged(&request(op, self.unique, nodeid, payload))
        }

        /// The single message written for a request. Record files are
        /// written, as a transport does; pushes are left out (the `push`
        /// tests look at them).
        fn reply(&mut self, op: u32, nodeid: u64, payload: &[u8]) -> Vec<u8> {
            let (a, _) = self.call(op, nodeid, payload);
            let a: Vec<Action> = a
                .into_iter()
                .filter(|a| match a {
                    Action::Record { path, text } => {
                        std::fs::write(path, text).unwrap();
                        false
                    }
                    Action::Push(_) => false,
                    _ => true,
                })
                .collect();
            match a.as_slice() {
                [Action::Write(m)] => {
                    let h = OutHeader::decode(m).unwrap();
                    assert_eq!(h.unique, self.unique);
                    m.clone()
                }
                other => panic!("expected one write, got {other:?}"),
            }
        }

        /// Payload of a successful reply (header checked).
        fn ok(&mut self, op: u32, nodeid: u64, payload: &[u8]) -> Vec<u8> {
            let m = self.reply(op, nodeid, payload);
            let h = OutHeader::decode(&m).unwrap();
            assert_eq!(
                h.error,
                0,
                "{} on node {nodeid} failed",
                abi::opcode_name(op, None)
            );
            assert_eq!(h.len as usize, m.len());
            m[OutHeader::SIZE..].to_vec()
        }

        /// Header `error` of a reply that must carry no payload.
        fn error(&mut self, op: u32, nodeid: u64, payload: &[u8]) -> i32 {
            let m = self.reply(op, nodeid, payload);
            assert_eq!(m.len(), OutHeader::SIZE, "error replies have no payload");
            OutHeader::decode(&m).unwrap().error
        }

        fn init(&mut self, offer: u64) -> InitOut {
            let p = self.ok(Opcode::Init as u32, 0, &init_payload(46, offer));
            let mut b = p.clone();
            b.resize(InitOut::SIZE, 0);
            InitOut::decode(&b).unwrap()
        }

        fn init_famfs(&mut self) -> InitOut {
            let bit = self.profile().flag_mask();
            self.init(KERNEL_OFFER | bit)
        }

        fn get_fmap(&mut self, nodeid: u64) -> Vec<u8> {
            let p = self.profile();
            let payload = sim::get_fmap_payload(&p, p.max_reply);
            self.ok(p.get_fmap, nodeid, &payload)
        }

        fn get_daxdev(&mut self, index: u64) -> Vec<u8> {
            let op = self.profile().get_daxdev;
            self.reply(op, index, &[])
        }
    }

    fn header(m: &[u8]) -> OutHeader {
        OutHeader::decode(m).unwrap()
    }

    /// A `Write` that keeps what the server logs.
    #[derive(Clone, Default)]
    pub(super) struct SharedBuf(pub(super) Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuf {
        fn records(&self) -> Vec<serde_json::Value> {
            let b = self.0.lock().unwrap();
            String::from_utf8_lossy(&b)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("famfsd-sim-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    // ---------------------------------------------------------------------------
    // INIT
    // ---------------------------------------------------------------------------

    #[test]
    fn init_v10_echoes_bit_43_in_flags2() {
        let mut d = Direct::new(TREE);
        let out = d.init_famfs();
        let want = InitOut {
            major: 7,
            minor: 46,
            max_readahead: 128 * 1024,
            flags: (init_flags::ASYNC_READ
                | init_flags::DO_READDIRPLUS
                | init_flags::READDIRPLUS_AUTO
                | init_flags::INIT_EXT) as u32,
            max_background: 16,
            congestion_threshold: 12,
            max_write: 128 * 1024,
            time_gran: 1,
            flags2: 0x800,
            ..Default::default()
        };
        assert_eq!(out, want);
        let rec = d.s.init_record().unwrap();
        assert!(rec.famfs_offered && rec.famfs_echoed && rec.famfs_enabled);
        assert_eq!(rec.famfs_bit, 43);
        assert!(rec.offered_names.contains(&"DAX_FMAP".to_string()));
        assert!(d.s.famfs_enabled());
    }

    #[test]
    fn init_minor_is_the_smaller_of_kernel_and_46() {
        let mut d = Direct::new(TREE);
        let p = d.ok(Opcode::Init as u32, 0, &init_payload(38, KERNEL_OFFER));
        assert_eq!(InitOut::decode(&p).unwrap().minor, 38);
        let mut d = Direct::new(&format!("init: {{minor: 12}}\n{TREE}"));
        assert_eq!(d.init_famfs().minor, 12);
    }

    #[test]
    fn init_famfs_6_14_uses_bit_42() {
        let mut d = Direct::with_profile(TREE, Some("famfs-6.14"));
        let out = d.init_famfs();
        assert_eq!(out.flags2, 0x400);
        assert!(d.s.famfs_enabled());
        // Opcode 53 is GET_FMAP for this profile once famfs is on.
        let (_, rec) = d.call(53, A, &[]);
        assert_eq!(rec.name, "GET_FMAP");
        assert_eq!(rec.bytes, Some(32 + 2 * 24));
    }

    #[test]
    fn init_without_offer_or_withheld_keeps_famfs_off() {
        // A kernel without famfs: the bit is never sent back.
        let mut d = Direct::new(TREE);
        let out = d.init(KERNEL_OFFER);
        assert_eq!(out.flags2 & 0x800, 0);
        let rec = d.s.init_record().unwrap().clone();
        assert!(!rec.famfs_offered && !rec.famfs_echoed && !rec.famfs_enabled);
        // Under famfs-6.14 numbering but without famfs, 53 stays COPY_FILE_RANGE_64.
        let mut d = Direct::with_profile(TREE, Some("famfs-6.14"));
        d.init(KERNEL_OFFER);
        let (_, rec) = d.call(53, A, &[]);
        assert_eq!(
            (rec.name.as_str(), rec.errno),
            ("COPY_FILE_RANGE_64", Some(ENOSYS))
        );

        let mut d = Direct::new(&format!("init: {{famfs: withhold}}\n{TREE}"));
        let out = d.init_famfs();
        assert_eq!(out.flags2, 0);
        let rec = d.s.init_record().unwrap();
        assert!(rec.famfs_offered && !rec.famfs_echoed && !rec.famfs_enabled);
    }

    #[test]
    fn init_force_sets_the_bit_unoffered() {
        let mut d = Direct::new(&format!("init: {{famfs: force}}\n{TREE}"));
        let out = d.init(KERNEL_OFFER);
        assert_eq!(out.flags2, 0x800);
        let rec = d.s.init_record().unwrap();
        assert!(!rec.famfs_offered && rec.famfs_echoed && !rec.famfs_enabled);
    }

    #[test]
    fn init_extra_and_forced_flags() {
        let yaml = format!("init:\n  flags: [ATOMIC_O_TRUNC, FUSE_WRITEBACK_CACHE]\n  force_flags: [POSIX_ACL, 44]\n{TREE}");
        let mut d = Direct::new(&yaml);
        let f = d.init_famfs().flags64();
        assert_eq!(f, d.s.init_record().unwrap().replied);
        assert_ne!(f & init_flags::ATOMIC_O_TRUNC, 0);
        assert_ne!(f & init_flags::WRITEBACK_CACHE, 0);
        assert_ne!(f & init_flags::POSIX_ACL, 0, "forced although not offered");
        assert_ne!(f & (1 << 44), 0, "forced by bit number");
        // Requested but not offered: left out.
        let mut d = Direct::new(&yaml);
        let out = d.init(init_flags::ASYNC_READ | (1 << 43));
        assert_eq!(
            out.flags64() & (init_flags::ATOMIC_O_TRUNC | init_flags::WRITEBACK_CACHE),
            0
        );
        assert_eq!(out.flags2, 0x800 | (1 << 12), "famfs echoed, bit 44 forced");
    }

    #[test]
    fn init_malformed_replies() {
        let mut d = Direct::new(&format!("init: {{malformed: too_short}}\n{TREE}"));
        let p = d.ok(
            Opcode::Init as u32,
            0,
            &init_payload(46, KERNEL_OFFER | (1 << 43)),
        );
        assert_eq!(p, [7u32.to_le_bytes(), 46u32.to_le_bytes()].concat());
        assert!(!d.s.init_record().unwrap().famfs_enabled);

        let mut d = Direct::new(&format!("init: {{malformed: no_init_ext}}\n{TREE}"));
        let out = d.init_famfs();
        assert_eq!(out.flags64() & init_flags::INIT_EXT, 0);
        assert_eq!(
            out.flags2, 0x800,
            "bit present but meaningless without INIT_EXT"
        );
        let rec = d.s.init_record().unwrap();
        assert!(rec.famfs_echoed && !rec.famfs_enabled);

        let mut d = Direct::new(&format!("init: {{malformed: bad_major}}\n{TREE}"));
        assert_eq!(d.init_famfs().major, 8);

        let mut d = Direct::new(&format!("init: {{malformed: oversize}}\n{TREE}"));
        let p = d.ok(Opcode::Init as u32, 0, &init_payload(46, KERNEL_OFFER));
        assert_eq!(p.len(), 128);
        assert_eq!(d.s.init_record().unwrap().reply_len, 128);
    }

    #[test]
    fn init_error_fault_and_record_file() {
        let dir = scratch("initrec");
        let path = dir.join("init.json");
        let mut d = Direct::new(&format!(
            "faults:\n  - {{op: INIT, fault: {{error: EIO}}}}\n{TREE}"
        ));
        d.s.set_init_record(path.clone());
        assert_eq!(
            d.error(
                Opcode::Init as u32,
                0,
                &init_payload(46, KERNEL_OFFER | (1 << 43))
            ),
            -EIO
        );
        let rec: InitRecord =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(rec.famfs_offered && !rec.famfs_enabled);
        assert_eq!(
            (rec.reply_len, rec.faults.as_slice()),
            (0, ["error".to_string()].as_slice())
        );
        assert!(!d.s.famfs_enabled());

        let mut d = Direct::new(TREE);
        d.s.set_init_record(path.clone());
        d.init_famfs();
        let rec: InitRecord =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(&rec, d.s.init_record().unwrap());
        assert_eq!(rec.offered, KERNEL_OFFER | (1 << 43));
        let _ = std::fs::remove_dir_all(dir);
    }

    // ---------------------------------------------------------------------------
    // Namespace operations
    // ---------------------------------------------------------------------------

    #[test]
    fn lookup_getattr_and_errors() {
        let mut d = Direct::new(TREE);
        d.init_famfs();
        let e = EntryOut::decode(&d.ok(Opcode::Lookup as u32, ROOT, &name_payload("a"))).unwrap();
        let want_attr = abi::Attr {
            ino: A,
            size: 4 * MIB,
            blocks: 4 * MIB / 512,
            atime: e.attr.atime,
            mtime: e.attr.atime,
            ctime: e.attr.atime,
            mode: libc::S_IFREG | 0o644,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        };
        assert_eq!(
            e,
            EntryOut {
                nodeid: A,
                generation: 1,
                entry_valid: 1,
                attr_valid: 1,
                attr: want_attr,
                ..Default::default()
            }
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(e.attr.mtime.abs_diff(now) < 60);

        let e = EntryOut::decode(&d.ok(Opcode::Lookup as u32, DIR, &name_payload("hello.txt")))
            .unwrap();
        assert_eq!(
            (e.nodeid, e.attr.size, e.attr.mode),
            (HELLO, 12, libc::S_IFREG | 0o644)
        );
        let e = EntryOut::decode(&d.ok(Opcode::Lookup as u32, ROOT, &name_payload("dir"))).unwrap();
        assert_eq!(
            (e.attr.mode, e.attr.nlink),
            (libc::S_IFDIR | 0o755, 3),
            "one subdirectory"
        );

        assert_eq!(
            d.error(Opcode::Lookup as u32, ROOT, &name_payload("nope")),
            -ENOENT
        );
        assert_eq!(
            d.error(Opcode::Lookup as u32, A, &name_payload("x")),
            -ENOTDIR
        );

        let a = AttrOut::decode(&d.ok(Opcode::Getattr as u32, EMPTY, &[0; 16])).unwrap();
        assert_eq!(
            (a.attr_valid, a.attr.ino, a.attr.size, a.attr.nlink),
            (1, EMPTY, 4096, 1)
        );
        let a = AttrOut::decode(&d.ok(Opcode::Getattr as u32, ROOT, &[0; 16])).unwrap();
        assert_eq!((a.attr.mode, a.attr.nlink), (libc::S_IFDIR | 0o755, 3));
        assert_eq!(d.error(Opcode::Getattr as u32, 99, &[0; 16]), -ENOENT);
    }

    #[test]
    fn a_create_file_exists_only_after_create_and_takes_writes() {
        // Node ids: / 1, /made 2, /other 3.
        let mut d = Direct::new(
            "daxdevs: {0: /dev/dax0.0}\ntree:\n  - path: /made\n    create: true\n    fmap: {extents: [{offset: 2M, len: 2M}]}\n  - path: /other\n    fmap: {extents: [{offset: 4M, len: 2M}]}\n",
        );
        d.init_famfs();
        assert_eq!(
            d.error(Opcode::Lookup as u32, ROOT, &name_payload("made")),
            -ENOENT
        );
        let listed = d.ok(Opcode::Readdir as u32, ROOT, &read_payload(0, 0, 4096));
        assert!(
            !listed.windows(4).any(|w| w == b"made"),
            "hidden from READDIR"
        );
        let create = |name: &str| {
            let mut p = abi::CreateIn {
                flags: 0o100101,
                mode: 0o100644,
                umask: 0o022,
                open_flags: 0,
            }
            .to_bytes();
            p.extend_from_slice(name.as_bytes());
            p.push(0);
            p
        };
        // Only the file the scenario lets the kernel create.
        assert_eq!(
            d.error(Opcode::Create as u32, ROOT, &create("nope")),
            -EOPNOTSUPP
        );
        assert_eq!(
            d.error(Opcode::Create as u32, ROOT, &create("other")),
            -EOPNOTSUPP
        );
        let r = d.ok(Opcode::Create as u32, ROOT, &create("made"));
        assert_eq!(r.len(), EntryOut::SIZE + OpenOut::SIZE);
        let e = EntryOut::decode(&r).unwrap();
        assert_eq!((e.nodeid, e.attr.size), (2, 2 * MIB));
        assert!(OpenOut::decode(&r[EntryOut::SIZE..]).unwrap().fh > 0);
        // Now it is there, takes data, and has its fmap.
        let e =
            EntryOut::decode(&d.ok(Opcode::Lookup as u32, ROOT, &name_payload("made"))).unwrap();
        assert_eq!(e.nodeid, 2);
        let mut w = abi::WriteIn {
            fh: 1,
            offset: 0,
            size: 5,
            write_flags: 0,
            lock_owner: 0,
            flags: 0,
            padding: 0,
        }
        .to_bytes();
        w.extend_from_slice(b"hello");
        assert_eq!(
            abi::WriteOut::decode(&d.ok(Opcode::Write as u32, 2, &w))
                .unwrap()
                .size,
            5
        );
        assert_eq!(d.error(Opcode::Write as u32, 3, &w), -ENOSYS);
        assert_eq!(header(&d.get_fmap(2)).error, 0);
    }

    #[test]
    fn ttl_mode_and_owner_from_the_scenario() {
        let mut d = Direct::new("ttl: {entry_ms: 2500, attr_ms: 0}\ntree:\n  - {path: /f, content: x, mode: '0600', uid: 7, gid: 8}\n");
        d.init(KERNEL_OFFER);
        let e = EntryOut::decode(&d.ok(Opcode::Lookup as u32, ROOT, &name_payload("f"))).unwrap();
        assert_eq!(
            (
                e.entry_valid,
                e.entry_valid_nsec,
                e.attr_valid,
                e.attr_valid_nsec
            ),
            (2, 500_000_000, 0, 0)
        );
        assert_eq!(
            (e.attr.mode, e.attr.uid, e.attr.gid),
            (libc::S_IFREG | 0o600, 7, 8)
        );
    }

    #[test]
    fn open_read_and_release() {
        let mut d = Direct::new(TREE);
        d.init_famfs();
        let open = abi::OpenIn {
            flags: libc::O_RDONLY as u32,
            open_flags: 0,
        }
        .to_bytes();
        let o1 = OpenOut::decode(&d.ok(Opcode::Open as u32, HELLO, &open)).unwrap();
        let o2 = OpenOut::decode(&d.ok(Opcode::Open as u32, A, &open)).unwrap();
        assert_eq!((o1.fh, o1.open_flags, o2.fh), (1, 0, 2));
        assert_eq!(d.error(Opcode::Open as u32, DIR, &open), -EISDIR);
        assert_eq!(d.error(Opcode::Opendir as u32, A, &open), -ENOTDIR);
        assert_eq!(d.error(Opcode::Open as u32, 42, &open), -ENOENT);

        assert_eq!(
            d.ok(Opcode::Read as u32, HELLO, &read_payload(1, 0, 4096)),
            b"hello famfs\n"
        );
        assert_eq!(
            d.ok(Opcode::Read as u32, HELLO, &read_payload(1, 6, 5)),
            b"famfs"
        );
        assert_eq!(
            d.ok(Opcode::Read as u32, HELLO, &read_payload(1, 100, 10)),
            b""
        );
        // A file with a size but no data reads as zeros.
        assert_eq!(
            d.ok(Opcode::Read as u32, EMPTY, &read_payload(1, 4000, 4096)),
            vec![0u8; 96]
        );
        // famfs data never goes through READ.
        assert_eq!(
            d.error(Opcode::Read as u32, A, &read_payload(2, 0, 4096)),
            -ENOSYS
        );
        assert_eq!(
            d.error(Opcode::Read as u32, DIR, &read_payload(2, 0, 4096)),
            -EISDIR
        );

        let rel = abi::ReleaseIn {
            fh: 1,
            ..Default::default()
        }
        .to_bytes();
        assert_eq!(d.ok(Opcode::Release as u32, HELLO, &rel), b"");
        assert_eq!(d.ok(Opcode::Flush as u32, HELLO, &[0; 24]), b"");
        assert_eq!(d.ok(Opcode::Releasedir as u32, DIR, &rel), b"");
    }

    #[test]
    fn readdir_and_readdirplus() {
        let mut d = Direct::new(TREE);
        d.init_famfs();
        let names = |v: &[abi::Dirent]| {
            v.iter()
                .map(|e| String::from_utf8(e.name.clone()).unwrap())
                .collect::<Vec<_>>()
        };
        let all =
            abi::parse_dirents(&d.ok(Opcode::Readdir as u32, ROOT, &read_payload(1, 0, 4096)))
                .unwrap();
        assert_eq!(names(&all), [".", "..", "a", "dir", "empty", "i"]);
        let by_name = |n: &str| all.iter().find(|e| e.name == n.as_bytes()).unwrap().clone();
        assert_eq!(
            by_name("a"),
            abi::Dirent {
                ino: A,
                off: 3,
                typ: libc::DT_REG as u32,
                name: b"a".to_vec()
            }
        );
        assert_eq!(
            by_name("dir"),
            abi::Dirent {
                ino: DIR,
                off: 4,
                typ: libc::DT_DIR as u32,
                name: b"dir".to_vec()
            }
        );
        // Continue from an offset; a small buffer holds whole records only.
        let rest =
            abi::parse_dirents(&d.ok(Opcode::Readdir as u32, ROOT, &read_payload(1, 4, 4096)))
                .unwrap();
        assert_eq!(names(&rest), ["empty", "i"]);
        let two = d.ok(
            Opcode::Readdir as u32,
            ROOT,
            &read_payload(1, 0, 2 * 32 + 8),
        );
        assert_eq!(names(&abi::parse_dirents(&two).unwrap()), [".", ".."]);
        assert!(d
            .ok(Opcode::Readdir as u32, ROOT, &read_payload(1, 6, 4096))
            .is_empty());
        assert_eq!(
            d.error(Opcode::Readdir as u32, A, &read_payload(1, 0, 4096)),
            -ENOTDIR
        );

        let plus = abi::parse_direntplus(&d.ok(
            Opcode::Readdirplus as u32,
            DIR,
            &read_payload(1, 0, 4096),
        ))
        .unwrap();
        let got: Vec<(String, u64, u64, u32)> = plus
            .iter()
            .map(|(e, de)| {
                (
                    String::from_utf8(de.name.clone()).unwrap(),
                    e.nodeid,
                    de.ino,
                    e.attr.mode,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (".".into(), 0, DIR, libc::S_IFDIR | 0o755),
                ("..".into(), 0, ROOT, libc::S_IFDIR | 0o755),
                ("hello.txt".into(), HELLO, HELLO, libc::S_IFREG | 0o644),
                ("sub".into(), SUB, SUB, libc::S_IFDIR | 0o755),
            ]
        );
        assert_eq!(plus[2].0.attr.size, 12);
    }

    #[test]
    fn setattr_refuses_size_changes() {
        let mut d = Direct::new(TREE);
        d.init_famfs();
        let set = |valid: u32, size: u64, mode: u32| {
            SetattrIn {
                valid,
                size,
                mode,
                ..Default::default()
            }
            .to_bytes()
        };
        assert_eq!(
            d.error(Opcode::Setattr as u32, A, &set(fattr::SIZE, 0, 0)),
            -EINVAL
        );
        assert_eq!(
            d.error(
                Opcode::Setattr as u32,
                A,
                &set(fattr::SIZE | fattr::MODE, 8 * MIB, 0o600)
            ),
            -EINVAL
        );
        let a = AttrOut::decode(&d.ok(Opcode::Setattr as u32, A, &set(fattr::SIZE, 4 * MIB, 0)))
            .unwrap();
        assert_eq!(a.attr.size, 4 * MIB, "same size is not a change");
        let a = AttrOut::decode(&d.ok(
            Opcode::Setattr as u32,
            A,
            &set(fattr::MODE | fattr::MTIME, 0, 0o100600),
        ))
        .unwrap();
        assert_eq!(a.attr.mode, libc::S_IFREG | 0o600);
        let a = AttrOut::decode(&d.ok(Opcode::Getattr as u32, A, &[0; 16])).unwrap();
        assert_eq!(a.attr.mode, libc::S_IFREG | 0o600, "mode change kept");
    }

    #[test]
    fn other_requests() {
        let mut d = Direct::new(TREE);
        d.init_famfs();
        let st = StatfsOut::decode(&d.ok(Opcode::Statfs as u32, ROOT, &[])).unwrap();
        assert_eq!((st.st.bsize, st.st.namelen, st.st.files), (4096, 255, 7));
        let mut gx = GetxattrIn {
            size: 64,
            padding: 0,
        }
        .to_bytes();
        gx.extend_from_slice(b"user.x\0");
        assert_eq!(d.error(Opcode::Getxattr as u32, A, &gx), -ENODATA);
        let probe = GetxattrIn {
            size: 0,
            padding: 0,
        }
        .to_bytes();
        assert_eq!(d.ok(Opcode::Listxattr as u32, A, &probe), [0u8; 8]);
        assert_eq!(d.error(Opcode::Create as u32, ROOT, &[0; 24]), -EOPNOTSUPP);
        assert_eq!(d.error(Opcode::Mkdir as u32, ROOT, &[0; 16]), -ENOSYS);
        assert_eq!(d.error(999, ROOT, &[]), -ENOSYS);
        assert_eq!(d.ok(Opcode::Destroy as u32, 0, &[]), b"");

        // No reply at all for these, by protocol.
        for (op, payload) in [
            (Opcode::Forget, ForgetIn { nlookup: 1 }.to_bytes()),
            (
                Opcode::BatchForget,
                [
                    abi::BatchForgetIn { count: 1, dummy: 0 }.to_bytes(),
                    abi::ForgetOne {
                        nodeid: A,
                        nlookup: 2,
                    }
                    .to_bytes(),
                ]
                .concat(),
            ),
            (Opcode::Interrupt, abi::InterruptIn { unique: 5 }.to_bytes()),
        ] {
            let (a, rec) = d.call(op as u32, A, &payload);
            assert!(a.is_empty(), "{op:?}");
            assert_eq!(rec.reply, "none");
        }
        // A request whose header lies about its length gets EIO.
        let mut bad = request(Opcode::Getattr as u32, 77, A, &[0; 16]);
        bad[0] = 99;
        let (a, rec) = d.s.handle_logged(&bad);
        assert_eq!(a, [Action::Write(abi::reply_error(77, EIO))]);
        assert_eq!(rec.name, "MALFORMED");
    }

    // ---------------------------------------------------------------------------
    // GET_FMAP and GET_DAXDEV
    // ---------------------------------------------------------------------------

    fn a_fmap() -> Fmap {
        Fmap::simple(
            4 * MIB,
            vec![
                SimpleExtent::new(2 * MIB, 2 * MIB),
                SimpleExtent::new(8 * MIB, 2 * MIB),
            ],
        )
    }

    #[test]
    fn get_fmap_serves_the_encoded_fmap() {
        for profile in ["v10", "famfs-6.14"] {
            let mut d = Direct::with_profile(TREE, Some(profile));
            d.init_famfs();
            let p = d.profile();
            let bytes = d.get_fmap(A);
            assert_eq!(bytes, a_fmap().encode(&p), "{profile}");
            let v = kernel_verdict(&p, &bytes);
            assert!(v.is_accept(), "{profile}: {v}");
            assert_eq!(v.summary().unwrap().file_size, 4 * MIB);

            let i = d.get_fmap(I);
            let fi = Fmap::decode(&p, &i).unwrap().fmap;
            assert_eq!(fi.file_size, 8 * MIB);
            match &fi.extents {
                famfs_proto::Extents::Interleave(v) => {
                    assert_eq!(
                        (v.len(), v[0].chunk_size, v[0].nbytes, v[0].strips.len()),
                        (1, 2 << 20, 8 * MIB, 2)
                    );
                    assert_eq!(v[0].strips[1], SimpleExtent::new(16 * MIB, 4 * MIB));
                }
                other => panic!("{other:?}"),
            }
            assert!(kernel_verdict(&p, &i).is_accept());

            // famfs_fused: unknown node id EINVAL, no fmap ENOENT.
            assert_eq!(d.error(p.get_fmap, 99, &[]), -EINVAL);
            assert_eq!(d.error(p.get_fmap, HELLO, &[]), -ENOENT);
            assert_eq!(d.error(p.get_fmap, DIR, &[]), -ENOENT);
        }
    }

    #[test]
    fn next_retry_with_fmap_size() {
        let mut yaml = String::from("tree:\n  - path: /big\n    fmap:\n      extents:\n");
        for i in 0..200 {
            yaml += &format!("        - {{offset: {}M, len: 2M}}\n", i * 2);
        }
        yaml += "  - path: /small\n    fmap: {extents: [{offset: 0, len: 2M}]}\n";
        let mut d = Direct::with_profile(&yaml, Some("next"));
        d.init_famfs();
        let p = d.profile();
        let full = 32 + 200 * 24;
        // First request offers 4096 bytes: header only, announcing the size.
        let first = d.ok(p.get_fmap, 2, &sim::get_fmap_payload(&p, 4096));
        assert_eq!(first.len(), 32);
        assert_eq!(u32::from_le_bytes(first[12..16].try_into().unwrap()), full);
        assert_eq!(
            kernel_verdict(&p, &first),
            KernelVerdict::Retry { fmap_size: full }
        );
        // The retry offers fmap_size bytes and gets everything.
        let second = d.ok(p.get_fmap, 2, &sim::get_fmap_payload(&p, full));
        assert_eq!(second.len() as u32, full);
        let v = judge_exchange(&p, &first, Some(&second));
        assert!(v.is_accept(), "{v}");
        assert_eq!(v.summary().unwrap().nextents, 200);
        // A small fmap fits at once and carries its own length.
        let small = d.ok(p.get_fmap, 3, &sim::get_fmap_payload(&p, 4096));
        assert_eq!(small.len(), 56);
        assert_eq!(u32::from_le_bytes(small[12..16].try_into().unwrap()), 56);
        assert!(kernel_verdict(&p, &small).is_accept());
    }

    #[test]
    fn get_daxdev_serves_paths() {
        let mut d = Direct::new(TREE);
        d.init_famfs();
        let p = d.profile();
        for (index, path) in [(0u64, "/dev/dax0.0"), (1, "/dev/dax1.0")] {
            let m = d.get_daxdev(index);
            assert_eq!(
                m,
                abi::reply(
                    d.unique,
                    &DaxdevOut::with_path(index as u16, path).unwrap().to_bytes()
                )
            );
            assert_eq!(
                daxdev_verdict(&p, &m[16..]),
                DaxdevVerdict::Path(path.as_bytes().to_vec())
            );
        }
        assert_eq!(header(&d.get_daxdev(2)).error, -EINVAL);
        // famfs_fused: no device configured at all is EOPNOTSUPP.
        let mut d = Direct::new("tree: []\n");
        d.init_famfs();
        assert_eq!(header(&d.get_daxdev(0)).error, -EOPNOTSUPP);
    }

    /// What the protocol model must say about a faulted fmap.
    enum Expect {
        Reject(i32, Rule),
        Accept(fn(&Unchecked) -> bool),
        ReplyRejected(usize),
        Retry(u32),
    }

    fn check_fmap_fault(profile: &str, path: &str, fault: &str, expect: Expect) -> Vec<u8> {
        let yaml = format!("{TREE}faults:\n  - path: {path}\n    fault: {fault}\n");
        let mut d = Direct::with_profile(&yaml, Some(profile));
        d.init_famfs();
        let p = d.profile();
        let node = if path == "/a" { A } else { I };
        let (a, rec) = d.call(p.get_fmap, node, &sim::get_fmap_payload(&p, p.max_reply));
        let [Action::Write(m)] = a.as_slice() else {
            panic!("{fault}: {a:?}")
        };
        assert_eq!(header(m).error, 0, "{fault}");
        assert_eq!(header(m).len as usize, m.len(), "{fault}");
        assert_eq!(rec.faults.len(), 1, "{fault}: {:?}", rec.faults);
        assert!(
            !rec.faults[0].contains("no target"),
            "{fault}: {:?}",
            rec.faults
        );
        let bytes = m[16..].to_vec();
        let v = kernel_verdict(&p, &bytes);
        let ctx = format!("{profile} {path} {fault}: {v}");
        match expect {
            Expect::Reject(errno, rule) => {
                assert_eq!(v.open_errno(), Some(errno), "{ctx}");
                assert_eq!(v.rule(), Some(rule), "{ctx}");
            }
            Expect::Accept(note) => {
                let s = v.summary().unwrap_or_else(|| panic!("{ctx}"));
                assert!(s.unchecked.iter().any(note), "{ctx}: {:?}", s.unchecked);
            }
            Expect::ReplyRejected(len) => {
                assert_eq!(
                    v,
                    KernelVerdict::ReplyRejected {
                        len,
                        limit: p.max_reply as usize
                    },
                    "{ctx}"
                );
                assert_eq!(
                    (v.open_errno(), v.write_errno()),
                    (Some(EIO), Some(EINVAL)),
                    "{ctx}"
                );
            }
            Expect::Retry(size) => assert_eq!(v, KernelVerdict::Retry { fmap_size: size }, "{ctx}"),
        }
        bytes
    }

    #[test]
    fn fmap_faults_get_the_errno_of_the_v10_table() {
        use Expect::*;
        use Rule::*;
        let b = check_fmap_fault(
            "v10",
            "/a",
            "{short_payload: 16}",
            Reject(EINVAL, ShortHeader),
        );
        assert_eq!(b.len(), 16);
        let b = check_fmap_fault("v10", "/a", "{nextents: 0}", Reject(ERANGE, ExtentCount));
        assert_eq!(&b[8..12], &0u32.to_le_bytes());
        check_fmap_fault("v10", "/a", "{nextents: 33}", Reject(ERANGE, ExtentCount));
        let b = check_fmap_fault(
            "v10",
            "/a",
            "nextents_over_max",
            Reject(ERANGE, ExtentCount),
        );
        assert_eq!(&b[8..12], &33u32.to_le_bytes());
        check_fmap_fault("v10", "/a", "{ext_type: 2}", Reject(EINVAL, ExtType));
        let b = check_fmap_fault(
            "v10",
            "/a",
            "truncated_extents",
            Reject(EINVAL, PastPayload),
        );
        assert_eq!(b.len(), 32 + 24 + 12);
        let b = check_fmap_fault(
            "v10",
            "/a",
            "{misaligned_offset: {}}",
            Reject(EINVAL, MisalignedOffset),
        );
        assert_eq!(&b[40..48], &(2 * MIB + 4096).to_le_bytes());
        check_fmap_fault(
            "v10",
            "/a",
            "{misaligned_offset: {extent: 1, by: 1M}}",
            Reject(EINVAL, MisalignedOffset),
        );
        check_fmap_fault(
            "v10",
            "/a",
            "{misaligned_len: {extent: 1}}",
            Reject(EINVAL, MisalignedLen),
        );
        let b = check_fmap_fault(
            "v10",
            "/a",
            "{devindex: {value: 1}}",
            Reject(EINVAL, DevIndex),
        );
        assert_eq!(&b[32..36], &1u32.to_le_bytes());
        let b = check_fmap_fault(
            "v10",
            "/a",
            "{devindex: {value: 32, extent: 1}}",
            Reject(EINVAL, DevIndex),
        );
        assert_eq!(&b[56..60], &32u32.to_le_bytes());
        check_fmap_fault(
            "v10",
            "/a",
            "short_of_file_size",
            Reject(EINVAL, ShortOfFileSize),
        );
        check_fmap_fault(
            "v10",
            "/a",
            "{file_size: 1G}",
            Reject(EINVAL, ShortOfFileSize),
        );
        check_fmap_fault(
            "v10",
            "/a",
            "{patch: {offset: 4, hex: '05000000'}}",
            Reject(EINVAL, ExtType),
        );
        check_fmap_fault("v10", "/a", "oversize", ReplyRejected(4097));

        // Interleaved extents.
        check_fmap_fault(
            "v10",
            "/i",
            "{nstrips: {value: 0}}",
            Reject(EINVAL, StripCount),
        );
        check_fmap_fault(
            "v10",
            "/i",
            "{nstrips: {value: 33}}",
            Reject(EINVAL, StripCount),
        );
        let b = check_fmap_fault(
            "v10",
            "/i",
            "{nstrips_over_max: {}}",
            Reject(EINVAL, StripCount),
        );
        assert_eq!(&b[32..36], &33u32.to_le_bytes());
        check_fmap_fault(
            "v10",
            "/i",
            "{chunk_size: {value: 1M}}",
            Reject(EINVAL, ChunkSize),
        );
        check_fmap_fault(
            "v10",
            "/i",
            "{nbytes: {value: 0}}",
            Reject(EINVAL, ZeroNbytes),
        );
        check_fmap_fault(
            "v10",
            "/i",
            "{devindex: {value: 40, strip: 1}}",
            Reject(EINVAL, DevIndex),
        );
        check_fmap_fault(
            "v10",
            "/i",
            "{misaligned_len: {strip: 1}}",
            Reject(EINVAL, MisalignedLen),
        );
        check_fmap_fault(
            "v10",
            "/i",
            "truncated_extents",
            Reject(EINVAL, PastPayload),
        );

        // famfs-6.14 limits: 2 extents, 16 strips.
        let b = check_fmap_fault(
            "famfs-6.14",
            "/a",
            "nextents_over_max",
            Reject(ERANGE, ExtentCount),
        );
        assert_eq!(&b[8..12], &3u32.to_le_bytes());
        check_fmap_fault(
            "famfs-6.14",
            "/i",
            "{nstrips_over_max: {}}",
            Reject(EINVAL, StripCount),
        );
    }

    #[test]
    fn fmap_faults_the_v10_kernel_does_not_check() {
        use Expect::*;
        let b = check_fmap_fault(
            "v10",
            "/i",
            "{chunk_size: {value: 0}}",
            Accept(|u| matches!(u, Unchecked::ChunkSizeZero { extent: 0 })),
        );
        assert_eq!(&b[36..40], &0u32.to_le_bytes());
        let b = check_fmap_fault(
            "v10",
            "/a",
            "huge_file_size",
            Accept(|u| matches!(u, Unchecked::HugeFileSize(s) if *s == 1 << 63)),
        );
        assert_eq!(&b[16..24], &(1u64 << 63).to_le_bytes());
        check_fmap_fault(
            "v10",
            "/a",
            "{offset_wrap: {}}",
            Accept(|u| matches!(u, Unchecked::Overflow { .. })),
        );
        check_fmap_fault(
            "v10",
            "/i",
            "{offset_wrap: {strip: 1}}",
            Accept(|u| matches!(u, Unchecked::Overflow { .. })),
        );
        let b = check_fmap_fault(
            "v10",
            "/a",
            "overlap",
            Accept(|u| matches!(u, Unchecked::Overlap { devindex: 0, .. })),
        );
        assert_eq!(&b[8..12], &3u32.to_le_bytes());
        check_fmap_fault(
            "v10",
            "/i",
            "overlap",
            Accept(|u| matches!(u, Unchecked::Overlap { .. })),
        );
        let b = check_fmap_fault(
            "v10",
            "/a",
            "{trailing_bytes: 8}",
            Accept(|u| {
                *u == Unchecked::TrailingBytes {
                    offset: 80,
                    count: 8,
                }
            }),
        );
        assert_eq!(&b[80..], &[0xa5; 8]);
        check_fmap_fault(
            "v10",
            "/a",
            "{fmap_version: 7}",
            Accept(|u| *u == Unchecked::FmapVersion(7)),
        );
        check_fmap_fault(
            "v10",
            "/a",
            "{file_type: 9}",
            Accept(|u| *u == Unchecked::FileType(9)),
        );
    }

    #[test]
    fn fmap_faults_under_next() {
        use Expect::*;
        check_fmap_fault(
            "next",
            "/a",
            "{fmap_size: 0x2000000}",
            Reject(EFBIG, Rule::FmapTooBig),
        );
        // A retry when fmap_size exceeds the page the kernel offered, not
        // when it merely exceeds what was sent.
        check_fmap_fault("next", "/a", "{fmap_size: 5000}", Retry(5000));
        check_fmap_fault(
            "next",
            "/a",
            "{fmap_size: 4000}",
            Accept(|u| {
                matches!(
                    u,
                    Unchecked::FmapSizeMismatch {
                        fmap_size: 4000,
                        ..
                    }
                )
            }),
        );
        check_fmap_fault(
            "next",
            "/a",
            "header_only",
            Reject(EINVAL, Rule::PastPayload),
        );
        // Truncation keeps fmap_size equal to what is sent, so no retry.
        let b = check_fmap_fault(
            "next",
            "/a",
            "truncated_extents",
            Reject(EINVAL, Rule::PastPayload),
        );
        assert_eq!(
            u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize,
            b.len()
        );
        check_fmap_fault("next", "/a", "oversize", ReplyRejected(4097));
        // No cap of its own: "the maximum + 1" is u32::MAX extents claimed,
        // which run past the payload.
        check_fmap_fault(
            "next",
            "/a",
            "nextents_over_max",
            Reject(EINVAL, Rule::PastPayload),
        );
        // Interleaved fmaps are served as they are; the model says they are refused.
        let mut d = Direct::with_profile(TREE, Some("next"));
        d.init_famfs();
        let p = d.profile();
        assert_eq!(
            kernel_verdict(&p, &d.get_fmap(I)).rule(),
            Some(Rule::InterleaveUnsupported)
        );
    }

    #[test]
    fn daxdev_faults() {
        let p = Profile::v10();
        let run = |fault: &str| {
            let mut d = Direct::new(&format!(
                "{TREE}faults:\n  - {{index: 0, fault: {fault}}}\n"
            ));
            d.init_famfs();
            let m = d.get_daxdev(0);
            assert_eq!((header(&m).error, header(&m).len as usize), (0, m.len()));
            // Index 1 is not selected by the rule.
            assert_eq!(
                daxdev_verdict(&p, &d.get_daxdev(1)[16..]),
                DaxdevVerdict::Path(b"/dev/dax1.0".to_vec())
            );
            m[16..].to_vec()
        };
        let v = daxdev_verdict(&p, &run("daxdev_empty_name"));
        assert_eq!(
            (v.clone(), v.errno()),
            (DaxdevVerdict::EmptyName, Some(EINVAL))
        );
        assert_eq!(
            daxdev_verdict(&p, &run("daxdev_nonexistent")),
            DaxdevVerdict::Path(b"/dev/fh-no-such-daxdev".to_vec())
        );
        assert_eq!(
            daxdev_verdict(&p, &run("daxdev_not_chardev")),
            DaxdevVerdict::Path(b"/dev".to_vec())
        );
        assert_eq!(
            daxdev_verdict(&p, &run("daxdev_non_dax")),
            DaxdevVerdict::Path(b"/dev/null".to_vec())
        );
        assert_eq!(
            daxdev_verdict(&p, &run("{daxdev_path: /dev/dax9.9}")),
            DaxdevVerdict::Path(b"/dev/dax9.9".to_vec())
        );
        let b = run("daxdev_unterminated");
        assert_eq!(daxdev_verdict(&p, &b), DaxdevVerdict::Unterminated);
        assert!(b[24..].starts_with(b"/dev/dax0.0A"));
        assert!(!b[24..].contains(&0));
        let v = daxdev_verdict(&p, &run("{daxdev_reply_size: 279}"));
        assert_eq!(
            (v.clone(), v.errno()),
            (
                DaxdevVerdict::ReplyRejected {
                    len: 279,
                    expected: 280
                },
                Some(EIO)
            )
        );
        assert_eq!(
            daxdev_verdict(&p, &run("{daxdev_reply_size: 300}")),
            DaxdevVerdict::ReplyRejected {
                len: 300,
                expected: 280
            }
        );

        // A fault on an unconfigured index still produces a reply.
        let mut d = Direct::new(&format!(
            "{TREE}faults:\n  - {{index: 5, fault: daxdev_non_dax}}\n"
        ));
        d.init_famfs();
        assert_eq!(
            daxdev_verdict(&p, &d.get_daxdev(5)[16..]),
            DaxdevVerdict::Path(b"/dev/null".to_vec())
        );
    }

    // ---------------------------------------------------------------------------
    // Generic faults and rule matching
    // ---------------------------------------------------------------------------

    #[test]
    fn error_faults_write_exact_headers() {
        let mut d = Direct::new(&format!(
        "{TREE}faults:\n  - {{op: GETATTR, path: /a, fault: {{error: EIO}}}}\n  - {{op: GETATTR, path: /empty, fault: {{error: 600}}}}\n  - {{op: GETATTR, path: /i, fault: {{raw_error: 1}}}}\n  - {{op: GETATTR, path: /dir, fault: {{raw_error: -600}}}}\n  - {{op: OPEN, path: /a, fault: {{error_with_payload: EINVAL}}}}\n  - {{op: OPEN, path: /i, fault: {{len_mismatch: 8}}}}\n  - {{op: LOOKUP, path: /a, fault: {{len_mismatch: -4}}}}\n"
    ));
        d.init_famfs();
        assert_eq!(
            d.reply(Opcode::Getattr as u32, A, &[0; 16]),
            abi::reply_error(d.unique, EIO)
        );
        assert_eq!(
            d.reply(Opcode::Getattr as u32, EMPTY, &[0; 16]),
            abi::reply_error(d.unique, 600)
        );
        let m = d.reply(Opcode::Getattr as u32, I, &[0; 16]);
        assert_eq!(
            header(&m),
            OutHeader {
                len: 16,
                error: 1,
                unique: d.unique
            }
        );
        let (_, rec) = d.call(Opcode::Getattr as u32, DIR, &[0; 16]);
        assert_eq!(
            (rec.errno, rec.faults.as_slice()),
            (Some(600), ["raw_error".to_string()].as_slice())
        );
        let m = d.reply(Opcode::Open as u32, A, &[0; 8]);
        assert_eq!(
            (header(&m).len, header(&m).error, m.len()),
            (24, -EINVAL, 24)
        );
        let m = d.reply(Opcode::Open as u32, I, &[0; 8]);
        assert_eq!((header(&m).len as usize, m.len()), (16 + 16 + 8, 16 + 16));
        let m = d.reply(Opcode::Lookup as u32, ROOT, &name_payload("a"));
        assert_eq!((header(&m).len as usize, m.len()), (16 + 128 - 4, 16 + 128));
        // Other nodes are untouched.
        assert_eq!(
            header(&d.reply(Opcode::Getattr as u32, HELLO, &[0; 16])).error,
            0
        );
    }

    #[test]
    fn never_reply_exit_and_delay_actions() {
        let mut d = Direct::new(&format!(
        "{TREE}faults:\n  - {{op: GETATTR, path: /a, fault: never_reply}}\n  - {{op: GETATTR, path: /i, fault: {{exit: 3}}}}\n  - {{op: GETATTR, path: /empty, fault: {{delay: 50}}}}\n"
    ));
        d.init_famfs();
        let (a, rec) = d.call(Opcode::Getattr as u32, A, &[0; 16]);
        assert_eq!(
            (a, rec.reply.as_str()),
            (vec![Action::Withhold { unique: d.unique }], "withheld")
        );
        let (a, rec) = d.call(Opcode::Getattr as u32, I, &[0; 16]);
        assert_eq!((a, rec.reply.as_str()), (vec![Action::Exit(3)], "exit"));
        let (a, _) = d.call(Opcode::Getattr as u32, EMPTY, &[0; 16]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], Action::Sleep(Duration::from_millis(50)));
        assert!(matches!(&a[1], Action::Write(m) if header(m).error == 0));
    }

    #[test]
    fn file_level_faults_default_to_get_fmap() {
        let yaml = "tree:\n  - path: /f\n    fmap: {extents: [{offset: 0, len: 2M}]}\n    faults:\n      - {nth: 2, fault: {error: ENOSYS}}\n      - fault: {nextents: 0}\n        times: 1\n";
        let mut d = Direct::new(yaml);
        d.init_famfs();
        let p = d.profile();
        let (_, rec) = d.call(p.get_fmap, 2, &[]);
        assert_eq!(
            (rec.errno, rec.faults.as_slice()),
            (None, ["nextents".to_string()].as_slice())
        );
        let (_, rec) = d.call(p.get_fmap, 2, &[]);
        assert_eq!(
            (rec.errno, rec.faults.as_slice()),
            (Some(ENOSYS), ["error".to_string()].as_slice())
        );
        let b = d.get_fmap(2);
        assert!(kernel_verdict(&p, &b).is_accept(), "third request is clean");
    }

    #[test]
    fn nth_from_times_path_and_index_select_requests() {
        let yaml = format!(
        "{TREE}faults:\n  - {{op: GETATTR, path: /a, from: 3, fault: {{attr_size: 1G}}}}\n  - {{op: GETATTR, path: /i, from: 2, times: 2, fault: {{error: EIO}}}}\n  - {{op: LOOKUP, path: /dir/hello.txt, nth: 2, fault: {{error: ENOENT}}}}\n  - {{op: GET_DAXDEV, index: 1, nth: 1, fault: {{error: ENODEV}}}}\n"
    );
        let mut d = Direct::new(&yaml);
        d.init_famfs();
        let sizes: Vec<u64> = (0..4)
            .map(|_| {
                AttrOut::decode(&d.ok(Opcode::Getattr as u32, A, &[0; 16]))
                    .unwrap()
                    .attr
                    .size
            })
            .collect();
        assert_eq!(
            sizes,
            [4 * MIB, 4 * MIB, 1 << 30, 1 << 30],
            "GETATTR changes size from the 3rd call on"
        );
        let errs: Vec<i32> = (0..5)
            .map(|_| header(&d.reply(Opcode::Getattr as u32, I, &[0; 16])).error)
            .collect();
        assert_eq!(errs, [0, -EIO, -EIO, 0, 0]);
        // LOOKUP rules match the name looked up, not the parent.
        let errs: Vec<i32> = (0..3)
            .map(|_| header(&d.reply(Opcode::Lookup as u32, DIR, &name_payload("hello.txt"))).error)
            .collect();
        assert_eq!(errs, [0, -ENOENT, 0]);
        assert_eq!(
            header(&d.reply(Opcode::Lookup as u32, DIR, &name_payload("sub"))).error,
            0
        );
        assert_eq!(header(&d.get_daxdev(0)).error, 0);
        assert_eq!(header(&d.get_daxdev(1)).error, -19);
        assert_eq!(header(&d.get_daxdev(1)).error, 0);
    }

    #[test]
    fn notifications_follow_the_reply() {
        let yaml = format!(
        "{TREE}faults:\n  - {{op: GET_FMAP, path: /a, nth: 2, fault: {{notify_store: {{offset: 4096, data: famfs}}}}}}\n  - {{op: GET_FMAP, path: /i, fault: {{notify_inval_inode: {{node: /a, offset: 0, len: -1}}}}}}\n"
    );
        let mut d = Direct::new(&yaml);
        d.init_famfs();
        let op = d.profile().get_fmap;
        let (a, _) = d.call(op, A, &[]);
        assert_eq!(a.len(), 1, "first GET_FMAP: reply only");
        let (a, rec) = d.call(op, A, &[]);
        assert_eq!(rec.faults, ["notify_store"]);
        assert_eq!(a.len(), 2);
        assert!(
            matches!(&a[0], Action::Write(m) if header(m).unique == d.unique && header(m).error == 0)
        );
        let mut want = NotifyStoreOut {
            nodeid: A,
            offset: 4096,
            size: 5,
            padding: 0,
        }
        .to_bytes();
        want.extend_from_slice(b"famfs");
        assert_eq!(a[1], Action::Write(abi::notification(notify::STORE, &want)));

        let (a, _) = d.call(op, I, &[]);
        let want = NotifyInvalInodeOut {
            ino: A,
            off: 0,
            len: -1,
        }
        .to_bytes();
        assert_eq!(
            a[1],
            Action::Write(abi::notification(notify::INVAL_INODE, &want))
        );
    }

    // ---------------------------------------------------------------------------
    // Over the socketpair
    // ---------------------------------------------------------------------------

    #[test]
    fn socketpair_session_and_request_log() {
        let log = SharedBuf::default();
        let mut server = Server::new(config(
        &format!("{TREE}faults:\n  - {{op: GET_FMAP, path: /a, nth: 2, fault: {{notify_store: {{data: xy}}}}}}\n  - {{op: GET_FMAP, path: /i, fault: {{devindex: {{value: 32}}}}}}\n"),
        None,
    ));
        server.set_log(Box::new(log.clone()));
        let (mut k, running) = SimKernel::start(server, 1).unwrap();
        let out = k.init_famfs().unwrap();
        assert_eq!(out.flags2, 0x800);
        let a = k.walk("/a").unwrap();
        assert_eq!(a, A);
        let o = k.open(a).unwrap();
        assert_eq!(o.decode::<OpenOut>().unwrap().fh, 1);
        let f = k.get_fmap(a).unwrap();
        assert_eq!(f.payload(), a_fmap().encode(&k.profile));
        let dx = k.get_daxdev(0).unwrap();
        assert_eq!(
            dx.payload(),
            DaxdevOut::with_path(0, "/dev/dax0.0").unwrap().to_bytes()
        );
        // Second GET_FMAP of /a: the store notification arrives after the reply.
        k.get_fmap(a).unwrap();
        assert_eq!(k.notifications.len(), 0, "the reply came first");
        let n = k
            .recv(Duration::from_secs(5))
            .unwrap()
            .expect("notification");
        assert_eq!((n.unique(), n.error()), (0, notify::STORE));
        assert_eq!(&n.payload()[24..], b"xy");
        let i = k.get_fmap(I).unwrap();
        assert_eq!(
            kernel_verdict(&k.profile, i.payload()).rule(),
            Some(Rule::DevIndex)
        );
        drop(k);
        assert_eq!(running.join(), [ServeEnd::Disconnected]);

        let recs = log.records();
        let names: Vec<&str> = recs.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "INIT",
                "LOOKUP",
                "OPEN",
                "GET_FMAP",
                "GET_DAXDEV",
                "GET_FMAP",
                "GET_FMAP"
            ]
        );
        assert_eq!(
            recs.iter()
                .filter(|r| r["name"] == "GET_FMAP" && r["path"] == "/a")
                .count(),
            2
        );
        assert_eq!(recs.iter().filter(|r| r["name"] == "GET_DAXDEV").count(), 1);
        let t: Vec<u64> = recs.iter().map(|r| r["t_us"].as_u64().unwrap()).collect();
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "monotonic: {t:?}");
        let fmap = &recs[3];
        assert_eq!(fmap["opcode"], 54);
        assert_eq!(fmap["nodeid"], A);
        assert_eq!(fmap["reply"], "data");
        assert_eq!(fmap["bytes"], 80);
        assert_eq!(fmap["event"], "request");
        assert!(fmap.get("faults").is_none());
        assert_eq!(recs[1]["path"], "/a");
        assert_eq!(recs[4]["nodeid"], 0);
        assert_eq!(recs[5]["faults"], serde_json::json!(["notify_store"]));
        assert_eq!(recs[6]["faults"], serde_json::json!(["devindex"]));
        let uniques: Vec<u64> = recs.iter().map(|r| r["unique"].as_u64().unwrap()).collect();
        assert_eq!(uniques, [2, 4, 6, 8, 10, 12, 14]);
        // Records read back as the typed form too.
        let typed: RequestRecord = serde_json::from_value(recs[3].clone()).unwrap();
        assert_eq!((typed.name.as_str(), typed.bytes), ("GET_FMAP", Some(80)));
    }

    #[test]
    fn socketpair_delay_never_reply_and_exit() {
        let yaml = format!(
        "{TREE}faults:\n  - {{op: GETATTR, path: /a, fault: {{delay: 150}}}}\n  - {{op: GETATTR, path: /i, fault: never_reply}}\n  - {{op: GET_FMAP, path: /a, nth: 2, fault: {{exit: 3}}}}\n"
    );
        let (mut k, running) = SimKernel::start(Server::new(config(&yaml, None)), 1).unwrap();
        k.init_famfs().unwrap();
        let t = Instant::now();
        let r = k.call(Opcode::Getattr as u32, A, &[0; 16]).unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(r.decode::<AttrOut>().unwrap().attr.size, 4 * MIB);

        k.send(Opcode::Getattr as u32, I, &[0; 16]).unwrap();
        assert!(
            k.recv(Duration::from_millis(300)).unwrap().is_none(),
            "no reply, ever"
        );
        // The server is still serving.
        assert_eq!(
            k.call(Opcode::Getattr as u32, HELLO, &[0; 16])
                .unwrap()
                .error(),
            0
        );

        k.get_fmap(A).unwrap();
        k.send(k.profile.get_fmap, A, &[]).unwrap();
        let e = format!("{:#}", k.recv(Duration::from_secs(5)).unwrap_err());
        assert!(e.contains("closed"), "{e}");
        assert_eq!(running.join(), [ServeEnd::Exit(3)]);
    }

    #[test]
    fn threads_answer_while_one_request_sleeps() {
        let yaml = format!("{TREE}faults:\n  - {{op: GETATTR, path: /a, fault: {{delay: 400}}}}\n");
        let (mut k, running) = SimKernel::start(Server::new(config(&yaml, None)), 4).unwrap();
        k.init_famfs().unwrap();
        let slow = k.send(Opcode::Getattr as u32, A, &[0; 16]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let fast = k.send(Opcode::Getattr as u32, HELLO, &[0; 16]).unwrap();
        let first = k.recv(Duration::from_secs(5)).unwrap().unwrap();
        let second = k.recv(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!((first.unique(), second.unique()), (fast, slow));
        running.stop();
        let ends = running.join();
        assert_eq!(ends.len(), 4);
        assert!(ends.iter().all(|e| *e == ServeEnd::Stopped), "{ends:?}");
    }

    // ---------------------------------------------------------------------------
    // Example scenarios
    // ---------------------------------------------------------------------------

    #[test]
    fn example_scenarios_resolve_under_every_profile() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/scenarios");
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            seen += 1;
            let cfg = Config::load(&path, None).unwrap_or_else(|e| panic!("{e:#}"));
            // Ask for every fmap once: each request gets some action.
            let mut s = Server::new(cfg.clone());
            s.handle(&request(
                Opcode::Init as u32,
                1,
                0,
                &init_payload(46, KERNEL_OFFER | cfg.profile.flag_mask()),
            ));
            for n in cfg.nodes.iter().filter(|n| n.fmap().is_some()) {
                let a = s.handle(&request(
                    cfg.profile.get_fmap,
                    3,
                    n.nodeid,
                    &sim::get_fmap_payload(&cfg.profile, cfg.profile.max_reply),
                ));
                assert!(!a.is_empty(), "{}: {}", path.display(), n.path);
            }
            for p in Profile::names() {
                Config::load(&path, Some(p))
                    .unwrap_or_else(|e| panic!("{} under {p}: {e:#}", path.display()));
            }
        }
        assert!(seen >= 5, "expected example scenarios in {}", dir.display());
    }

    #[test]
    fn bench_runs_every_row() {
        let table = famfs_harness::server::bench(2000);
        println!("{table}");
        assert_eq!(table.lines().count(), 2 + 6, "{table}");
        assert!(!table.contains("failed"), "{table}");
    }
}

// Pushed dax devices (next profile), outside `mod server` so that
// `cargo test push` selects them.
mod push {
    use famfs_harness::server::dispatch::PushReq;
    use famfs_harness::server::scenario::Config;
    use famfs_harness::server::sim::{init_payload, SimKernel};
    use famfs_harness::server::sim::{name_payload, request, KERNEL_OFFER};
    use famfs_harness::server::{Action, Server};
    use famfs_proto::{Opcode, Profile};
    use std::path::Path;
    use std::time::Duration;

    const TREE: &str = "daxdevs: {0: /dev/dax0.0, 3: /dev/dax3.0}\ntree:\n  - path: /a\n    fmap: {extents: [{offset: 2M, len: 2M}]}\n  - path: /b\n    fmap: {extents: [{dev: 3, offset: 0, len: 2M}]}\n";

    fn server(extra: &str, profile: &str) -> Server {
        let p = Profile::parse(profile).unwrap();
        Server::new(
            Config::from_text(Path::new("t.yaml"), &format!("{TREE}{extra}"), Some(p))
                .unwrap_or_else(|e| panic!("{e:#}")),
        )
    }

    fn pushes(actions: &[Action]) -> Vec<PushReq> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Push(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    fn init(s: &mut Server) -> Vec<Action> {
        let bit = s.profile().flag_mask();
        s.handle(&request(
            Opcode::Init as u32,
            2,
            0,
            &init_payload(46, KERNEL_OFFER | bit),
        ))
    }

    fn lookup(s: &mut Server, name: &str) -> Vec<Action> {
        s.handle(&request(Opcode::Lookup as u32, 4, 1, &name_payload(name)))
    }

    #[test]
    fn next_pushes_every_device_after_the_init_reply() {
        let mut s = server("", "next");
        let a = init(&mut s);
        // The reply first (it turns famfs on), then one push per device.
        assert!(matches!(a[0], Action::Write(_)), "{a:?}");
        let p = pushes(&a);
        assert_eq!(
            p.iter()
                .map(|p| (p.index, p.path.clone().unwrap(), p.why.as_str(), p.famfs_on))
                .collect::<Vec<_>>(),
            vec![
                (0, "/dev/dax0.0".into(), "mount", true),
                (3, "/dev/dax3.0".into(), "mount", true)
            ]
        );
        // Nothing more at lookup.
        assert!(pushes(&lookup(&mut s, "a")).is_empty());
    }

    #[test]
    fn v10_never_pushes_and_a_withheld_capability_pushes_nothing() {
        let mut s = server("", "v10");
        assert!(pushes(&init(&mut s)).is_empty());
        assert!(pushes(&lookup(&mut s, "b")).is_empty());
        let mut s = server("init: {famfs: withhold}\n", "next");
        assert!(pushes(&init(&mut s)).is_empty(), "famfs is off: no push");
    }

    #[test]
    fn push_at_lookup_pushes_each_named_device_once_before_the_reply() {
        let mut s = server("push: lookup\n", "next");
        assert!(pushes(&init(&mut s)).is_empty());
        let a = lookup(&mut s, "b");
        assert!(
            matches!(a[0], Action::Push(_)),
            "the push precedes the reply: {a:?}"
        );
        assert_eq!(pushes(&a)[0].index, 3);
        assert!(pushes(&lookup(&mut s, "b")).is_empty(), "once");
        let a = lookup(&mut s, "a");
        assert_eq!(
            pushes(&a).iter().map(|p| p.index).collect::<Vec<_>>(),
            vec![0]
        );
        let mut s = server("push: never\n", "next");
        assert!(pushes(&init(&mut s)).is_empty());
        assert!(pushes(&lookup(&mut s, "a")).is_empty());
    }

    #[test]
    fn push_faults_before_and_after_the_reply() {
        let mut s = server(
            "push: never\nfaults:\n  - {op: INIT, fault: {push: {index: 0, before_reply: true}}}\n  - {op: LOOKUP, path: /a, fault: {push: {index: 64}}}\n  - {op: LOOKUP, path: /b, fault: {push: {bad_fd: true}}}\n",
            "next",
        );
        let a = init(&mut s);
        assert!(matches!(a[0], Action::Push(_)), "{a:?}");
        assert!(
            !pushes(&a)[0].famfs_on,
            "before the reply famfs is not on yet"
        );
        let a = lookup(&mut s, "a");
        assert!(matches!(a.last(), Some(Action::Push(_))), "after: {a:?}");
        assert_eq!(pushes(&a)[0].index, 64);
        assert_eq!(pushes(&a)[0].path.as_deref(), Some("/dev/dax0.0"));
        assert_eq!(pushes(&lookup(&mut s, "b"))[0].path, None);
        // A path and bad_fd together are refused with the place.
        let e = Config::from_text(
            Path::new("t.yaml"),
            &format!("{TREE}faults:\n  - {{op: INIT, fault: {{push: {{bad_fd: true, path: /dev/null}}}}}}\n"),
            None,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("t.yaml:"), "{e:#}");
    }

    #[test]
    fn simulated_kernel_judges_pushes_and_the_report_agrees() {
        // /dev/null is a non-dax character device on any host; the model
        // refuses it (ENODEV), and index 64 is past the 64 slots.
        let mut s = server(
            "push: never\nfaults:\n  - {op: LOOKUP, path: /a, fault: {push: {path: /dev/null}}}\n  - {op: LOOKUP, path: /b, fault: {push: {index: 64, path: /dev/null}}}\n  - {op: LOOKUP, path: /b, fault: {push: {index: 1, bad_fd: true}}}\n",
            "next",
        );
        // Pushes go to the kernel model's table, logged with their results.
        let log = super::server::SharedBuf::default();
        s.set_log(Box::new(log.clone()));
        let (mut k, running) = SimKernel::start(s, 1).unwrap();
        k.init_famfs().unwrap();
        k.walk("/a").unwrap();
        k.walk("/b").unwrap();
        // The pushes run after the replies: wait until all three are logged.
        let text = || String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
        let t0 = std::time::Instant::now();
        while text().matches("\"event\":\"push\"").count() < 3 {
            assert!(t0.elapsed() < Duration::from_secs(10), "{}", text());
            std::thread::sleep(Duration::from_millis(10));
        }
        running.stop();
        let _ = running.join();
        let report = famfs_harness::server::expect::push_report(&Profile::next(), &text(), None);
        assert_eq!(
            report,
            "push 0 by push: a character device that is not dax: ENODEV\n\
             push 64 by push: a character device that is not dax: EINVAL\n\
             push 1 by push: an fd that is not open: EBADF\n",
            "{}",
            text()
        );
        // Judged by what the build says (famfs on after INIT): the same.
        assert_eq!(
            famfs_harness::server::expect::push_report(&Profile::next(), &text(), Some(true)),
            report
        );
        // A kernel that never turned famfs on, though its build says it
        // must: its EOPNOTSUPP is wrong, not "as negotiated".
        let off = regex::Regex::new(r#""result":\d+"#)
            .unwrap()
            .replace_all(
                &text().replace("\"famfs_on\":true", "\"famfs_on\":false"),
                "\"result\":95",
            )
            .into_owned();
        let r = famfs_harness::server::expect::push_report(&Profile::next(), &off, None);
        assert!(!r.contains("but a correct kernel"), "{r}");
        let r = famfs_harness::server::expect::push_report(&Profile::next(), &off, Some(true));
        assert!(
            r.contains("EOPNOTSUPP, but a correct kernel gives ENODEV"),
            "{r}\n{off}"
        );
    }
}
