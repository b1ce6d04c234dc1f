//! The request dispatcher: one request in, a list of [`Action`]s out.
//!
//! It knows nothing about file descriptors, so the same code answers
//! /dev/fuse and a simulated kernel. Every request leaves one JSON line in
//! the request log; INIT also leaves an [`InitRecord`].

use super::fault::{finish_fmap, Fault, FaultClass, FmapPost, NotifyInval, NotifyStore, PushFault};
use super::scenario::{Config, FamfsMode, InitMalformed, Node, NodeKind, Occurrence, PushMode};
use famfs_proto::abi::{
    self, fattr, init_flags, notify, AttrOut, CreateIn, DaxdevOut, EntryOut, GetFmapIn, GetxattrIn,
    GetxattrOut, InHeader, InitIn, InitOut, NotifyInvalInodeOut, NotifyStoreOut, OpKind, OpenOut,
    OutHeader, ReadIn, SetattrIn, StatfsOut, Wire, WriteIn, WriteOut,
};
use famfs_proto::errno::{EINVAL, EIO, EISDIR, ENODATA, ENOENT, ENOSYS, ENOTDIR, EOPNOTSUPP};
use famfs_proto::{Opcode, Profile, RawFmap};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What a transport does for one request, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write one message (a reply or a notification) to the device.
    Write(Vec<u8>),
    /// Sleep before the next action (transports do it outside any lock).
    Sleep(Duration),
    /// Leave the request unanswered on purpose.
    Withhold { unique: u64 },
    /// Exit with this status while the request is still pending.
    Exit(i32),
    /// Push a dax device into the connection (push profiles); the transport
    /// reports the result with [`Server::note_push`].
    Push(PushReq),
    /// Write a record file whole (written aside, then renamed): a case may
    /// read it at any moment.
    Record { path: PathBuf, text: String },
}

/// One `FUSE_DEV_IOC_DAXDEV_OPEN` the transport is to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushReq {
    pub index: u64,
    /// The file to open and push; `None`: an fd number that is not open.
    pub path: Option<String>,
    /// `mount`, `lookup` or `fault` (the rule's name).
    pub why: String,
    /// Whether famfs was on for the connection, as the server negotiated
    /// it, when the push was scheduled.
    pub famfs_on: bool,
    /// Made after the INIT reply went out (famfs may be on); false for a
    /// push before it (famfs cannot be on yet, whatever the kernel offers).
    #[serde(default)]
    pub after_init: bool,
}

/// Log line of one push, written when the transport reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRecord {
    /// `push`.
    pub event: String,
    pub t_us: u64,
    #[serde(flatten)]
    pub req: PushReq,
    /// What was pushed, as the daemon saw it (fstat and sysfs).
    pub object: Option<famfs_proto::PushObject>,
    /// 0, or the errno of the ioctl (or of opening `path`: `open_failed`).
    pub result: i32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_failed: bool,
}

/// One line of the request log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// `request` (or `write_failed` for [`WriteFailure`] lines).
    pub event: String,
    /// Microseconds since the server started (monotonic).
    pub t_us: u64,
    pub unique: u64,
    pub opcode: u32,
    /// Opcode name under the profile (`GET_FMAP`, `LOOKUP`, `UNKNOWN`).
    pub name: String,
    pub nodeid: u64,
    /// Path the request is about (LOOKUP: the name looked up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Pid of the process that caused the request.
    pub pid: u32,
    /// `data`, `error`, `none` (no reply by protocol), `withheld`, `exit`.
    pub reply: String,
    /// Payload bytes of a data reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// Negated header `error` of an error reply (22 for -EINVAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// Names of the faults applied, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
}

/// Log line for a reply the device refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteFailure {
    pub event: String,
    pub t_us: u64,
    pub unique: u64,
    /// errno of the failed write() (EINVAL: malformed reply; ENOENT: the
    /// request was already gone).
    pub errno: i32,
}

/// What INIT offered and what the server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitRecord {
    pub profile: String,
    pub famfs_bit: u32,
    pub kernel_major: u32,
    pub kernel_minor: u32,
    pub flags: u32,
    pub flags2: u32,
    /// The 64-bit offer.
    pub offered: u64,
    pub offered_names: Vec<String>,
    pub famfs_offered: bool,
    pub famfs_mode: FamfsMode,
    /// The famfs bit is set in the reply.
    pub famfs_echoed: bool,
    /// The kernel will run famfs: offered, echoed, a well-formed reply
    /// with `INIT_EXT`.
    pub famfs_enabled: bool,
    pub reply_major: u32,
    pub reply_minor: u32,
    pub replied: u64,
    pub replied_names: Vec<String>,
    /// Payload bytes of the reply (0 for an error reply).
    pub reply_len: usize,
    #[serde(default)]
    pub malformed: Option<InitMalformed>,
    #[serde(default)]
    pub faults: Vec<String>,
    /// Whether the task that mounted had CAP_SYS_RAWIO (famfs is offered
    /// only to such a mounter); unknown on a simulated kernel. A fact about
    /// the daemon, so a case can say what the kernel must offer.
    #[serde(default)]
    pub mounter_cap_sys_rawio: Option<bool>,
}

/// Largest READ reply, well above any FUSE `max_read`.
const MAX_READ_REPLY: u64 = 4 << 20;

/// The reply before generic faults are applied.
enum Out {
    Data(Vec<u8>),
    /// Header `error` value as sent.
    Error(i32),
    /// Requests that take no reply.
    None,
}

/// The reply as the handler made it and the faults left it, with what goes
/// around it.
struct Wrapped {
    /// Before the reply (delays, pushes before it).
    before: Vec<Action>,
    /// After the reply (pushes, notifications).
    after: Vec<Action>,
    out: Out,
    /// Instead of the reply: withhold it, or exit.
    end: Option<Action>,
    /// An error reply that carries 8 payload bytes.
    error_payload: bool,
    /// Header `len` off by this many bytes.
    len_delta: i64,
}

impl Wrapped {
    /// The actions in order, with the reply's account in `rec`; and where
    /// the actions after the reply start.
    fn into_actions(self, unique: u64, rec: &mut RequestRecord) -> (Vec<Action>, usize) {
        let mut actions = self.before;
        let mut reply_bytes = None;
        match self.end {
            Some(a) => {
                rec.reply = if matches!(a, Action::Exit(_)) {
                    "exit"
                } else {
                    "withheld"
                }
                .into();
                actions.push(a);
            }
            None => match self.out {
                Out::None => rec.reply = "none".into(),
                Out::Data(p) => {
                    rec.reply = "data".into();
                    rec.bytes = Some(p.len());
                    reply_bytes = Some(message(unique, 0, &p));
                }
                Out::Error(e) => {
                    rec.reply = "error".into();
                    rec.errno = Some(e.wrapping_neg());
                    let p: &[u8] = if self.error_payload { &[0u8; 8] } else { &[] };
                    rec.bytes = self.error_payload.then_some(p.len());
                    reply_bytes = Some(message(unique, e, p));
                }
            },
        }
        if let Some(mut m) = reply_bytes {
            if self.len_delta != 0 {
                let len = (m.len() as i64 + self.len_delta) as u32;
                m[..4].copy_from_slice(&len.to_le_bytes());
            }
            actions.push(Action::Write(m));
        }
        let after_reply = actions.len();
        actions.extend(self.after);
        (actions, after_reply)
    }
}

/// A `notify_store` fault's NOTIFY_STORE into `node` (and the wait before it).
fn notify_store(n: &NotifyStore, node: u64) -> Vec<Action> {
    let data = match (&n.data, n.len) {
        (Some(d), _) => d.as_bytes().to_vec(),
        (None, Some(l)) => vec![0x5a; l.0 as usize],
        (None, None) => vec![0x5a; 4096],
    };
    let mut p = NotifyStoreOut {
        nodeid: node,
        offset: n.offset.map_or(0, |o| o.0),
        size: data.len() as u32,
        padding: 0,
    }
    .to_bytes();
    p.extend_from_slice(&data);
    let mut out = Vec::new();
    if let Some(ms) = n.after_ms {
        out.push(Action::Sleep(Duration::from_millis(ms)));
    }
    out.push(Action::Write(abi::notification(notify::STORE, &p)));
    out
}

/// A `notify_inval_inode` fault's NOTIFY_INVAL_INODE of `node` (and the
/// wait before it).
fn notify_inval_inode(n: &NotifyInval, node: u64) -> Vec<Action> {
    let p = NotifyInvalInodeOut {
        ino: node,
        off: n.offset,
        len: n.len,
    }
    .to_bytes();
    let mut out = Vec::new();
    if let Some(ms) = n.after_ms {
        out.push(Action::Sleep(Duration::from_millis(ms)));
    }
    out.push(Action::Write(abi::notification(notify::INVAL_INODE, &p)));
    out
}

/// The transport-independent server.
pub struct Server {
    cfg: Config,
    nodes: Vec<Node>,
    /// Per node: not yet CREATEd by the kernel (`create: true`).
    hidden: Vec<bool>,
    /// Per node: the faithful fmap for the profile, and its bytes.
    fmaps: Vec<Option<(RawFmap, Vec<u8>)>>,
    /// Per rule: matching requests seen, and firings.
    seen: Vec<u64>,
    fired: Vec<u64>,
    famfs: bool,
    init: Option<InitRecord>,
    start: Instant,
    wall: u64,
    next_fh: u64,
    log: Option<Box<dyn Write + Send>>,
    log_failed: bool,
    init_path: Option<PathBuf>,
    mounter_rawio: Option<bool>,
    /// Device indices pushed so far (push at lookup pushes each once).
    pushed: std::collections::BTreeSet<u64>,
}

fn message(unique: u64, error: i32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(OutHeader::SIZE + payload.len());
    OutHeader {
        len: (OutHeader::SIZE + payload.len()) as u32,
        error,
        unique,
    }
    .write_to(&mut v);
    v.extend_from_slice(payload);
    v
}

fn err(errno: i32) -> Out {
    Out::Error(-errno)
}

fn split_ms(ms: u64) -> (u64, u32) {
    (ms / 1000, ((ms % 1000) * 1_000_000) as u32)
}

impl Server {
    pub fn new(cfg: Config) -> Server {
        let fmaps = cfg
            .nodes
            .iter()
            .map(|n| {
                n.fmap().map(|f| {
                    let raw = f.to_raw(&cfg.profile);
                    let bytes = raw.to_bytes();
                    (raw, bytes)
                })
            })
            .collect();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Server {
            hidden: cfg.nodes.iter().map(|n| n.created_by_kernel).collect(),
            nodes: cfg.nodes.clone(),
            fmaps,
            seen: vec![0; cfg.rules.len()],
            fired: vec![0; cfg.rules.len()],
            famfs: false,
            init: None,
            start: Instant::now(),
            wall,
            next_fh: 1,
            log: None,
            log_failed: false,
            init_path: None,
            mounter_rawio: None,
            pushed: Default::default(),
            cfg,
        }
    }

    /// Writes one JSON line per request to `w` (give it a `LineWriter` so
    /// lines reach the file even if the process is killed).
    pub fn set_log(&mut self, w: Box<dyn Write + Send>) {
        self.log = Some(w);
    }

    /// Writes the [`InitRecord`] to this file when INIT is answered.
    pub fn set_init_record(&mut self, path: PathBuf) {
        self.init_path = Some(path);
    }

    /// Whether the task that mounted this connection had CAP_SYS_RAWIO
    /// (written into the INIT record).
    pub fn set_mounter_cap_sys_rawio(&mut self, has: bool) {
        self.mounter_rawio = Some(has);
    }

    pub fn profile(&self) -> &Profile {
        &self.cfg.profile
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The INIT exchange, once it happened.
    pub fn init_record(&self) -> Option<&InitRecord> {
        self.init.as_ref()
    }

    /// Whether INIT turned famfs on.
    pub fn famfs_enabled(&self) -> bool {
        self.famfs
    }

    /// Index into `nodes` of a node id (ids start at 1, the root).
    fn node_index(&self, nodeid: u64) -> Option<usize> {
        nodeid
            .checked_sub(1)
            .map(|i| i as usize)
            .filter(|&i| i < self.nodes.len())
    }

    fn node(&self, nodeid: u64) -> Option<&Node> {
        self.node_index(nodeid).map(|i| &self.nodes[i])
    }

    /// A node the kernel can see (not a `create: true` file before its
    /// CREATE).
    fn visible(&self, nodeid: u64) -> Option<&Node> {
        self.node_index(nodeid)
            .filter(|&i| !self.hidden[i])
            .map(|i| &self.nodes[i])
    }

    /// The meaning of an opcode: by the profile once famfs is on; before
    /// that, standard numbers win and the famfs numbers only name what is
    /// otherwise unknown (a kernel sending them anyway is worth logging).
    pub fn classify(&self, opcode: u32) -> OpKind {
        let p = &self.cfg.profile;
        if self.famfs {
            return abi::classify_opcode(opcode, Some(p));
        }
        match abi::classify_opcode(opcode, None) {
            OpKind::Unknown(_) => abi::classify_opcode(opcode, Some(p)),
            k => k,
        }
    }

    fn kind_name(kind: OpKind) -> &'static str {
        match kind {
            OpKind::Std(op) => op.name(),
            OpKind::GetFmap => "GET_FMAP",
            OpKind::GetDaxdev => "GET_DAXDEV",
            OpKind::Unknown(_) => "UNKNOWN",
        }
    }

    fn t_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn write_log<T: Serialize>(&mut self, rec: &T) {
        let Some(log) = self.log.as_mut() else { return };
        let mut line = serde_json::to_vec(rec).expect("records serialize");
        line.push(b'\n');
        if let Err(e) = log.write_all(&line) {
            if !self.log_failed {
                eprintln!("famfsd: writing the request log failed: {e}");
                self.log_failed = true;
            }
        }
    }

    /// Logs a reply that the device refused.
    pub fn note_write_failure(&mut self, unique: u64, errno: i32) {
        let rec = WriteFailure {
            event: "write_failed".into(),
            t_us: self.t_us(),
            unique,
            errno,
        };
        self.write_log(&rec);
    }

    /// Handles one request read from the device and logs it.
    pub fn handle(&mut self, request: &[u8]) -> Vec<Action> {
        let (actions, rec) = self.handle_logged(request);
        self.write_log(&rec);
        actions
    }

    /// Handles one request and returns its log record instead of writing it.
    pub fn handle_logged(&mut self, request: &[u8]) -> (Vec<Action>, RequestRecord) {
        let t_us = self.t_us();
        let (h, payload) = match abi::split_request(request) {
            Ok(x) => x,
            Err(e) => return self.malformed_request(request, t_us, &e.to_string()),
        };
        let kind = self.classify(h.opcode);
        let (subject, path) = self.subject(kind, &h, payload);
        let fired = self.match_rules(h.opcode, kind, subject, h.nodeid);
        let mut applied: Vec<String> = Vec::new();
        let (out, pending_init) = self.answer(kind, &h, payload, &fired, &mut applied);

        // Faults that replace or wrap whatever the handler produced.
        let mut before = Vec::new();
        if kind == OpKind::Std(Opcode::Lookup) && self.famfs && self.pushing(PushMode::Lookup) {
            let devices = subject
                .and_then(|n| self.node(n))
                .map(|n| n.fmap_devices())
                .unwrap_or_default();
            before.extend(self.pushes_for(devices, "lookup"));
        }
        let mut w = Wrapped {
            before,
            after: Vec::new(),
            out,
            end: None,
            error_payload: false,
            len_delta: 0,
        };
        self.wrap_faults(&fired, &h, subject, &mut w, &mut applied);

        let mut rec = RequestRecord {
            event: "request".into(),
            t_us,
            unique: h.unique,
            opcode: h.opcode,
            name: Self::kind_name(kind).into(),
            nodeid: h.nodeid,
            path,
            pid: h.pid,
            reply: String::new(),
            bytes: None,
            errno: None,
            faults: Vec::new(),
        };
        let (mut actions, after_reply) = w.into_actions(h.unique, &mut rec);
        if let Some(ir) = pending_init {
            self.init_answered(ir, rec.reply == "data", &applied, &mut actions, after_reply);
        }
        rec.faults = applied;
        (actions, rec)
    }

    /// The node a rule's `path` refers to, and the path the request is
    /// about (LOOKUP: the name looked up).
    fn subject(&self, kind: OpKind, h: &InHeader, payload: &[u8]) -> (Option<u64>, Option<String>) {
        match kind {
            OpKind::Std(Opcode::Lookup) => {
                let name = cstr(payload);
                let parent = self.node(h.nodeid);
                let path = parent.map(|p| join(&p.path, &String::from_utf8_lossy(name)));
                (parent.and_then(|p| child(p, name)), path)
            }
            OpKind::GetDaxdev => (None, None),
            _ => {
                let n = self.node(h.nodeid);
                (n.map(|n| n.nodeid), n.map(|n| n.path.clone()))
            }
        }
    }

    /// The handler's reply (INIT: with its record, written once the reply's
    /// fate is known).
    fn answer(
        &mut self,
        kind: OpKind,
        h: &InHeader,
        payload: &[u8],
        fired: &[usize],
        applied: &mut Vec<String>,
    ) -> (Out, Option<InitRecord>) {
        match kind {
            OpKind::Std(Opcode::Init) => self.init(payload),
            OpKind::GetFmap => (self.get_fmap(h, payload, fired, applied), None),
            OpKind::GetDaxdev => (self.get_daxdev(h, fired, applied), None),
            OpKind::Std(op) => (self.standard(op, h, payload, fired, applied), None),
            OpKind::Unknown(_) => (err(ENOSYS), None),
        }
    }

    /// Applies the faults of any request (errors, delays, no reply, pushes,
    /// notifications) to the reply and what goes around it.
    fn wrap_faults(
        &self,
        fired: &[usize],
        h: &InHeader,
        subject: Option<u64>,
        w: &mut Wrapped,
        applied: &mut Vec<String>,
    ) {
        for &i in fired {
            let rule = &self.cfg.rules[i];
            let mut used = true;
            match &rule.fault {
                Fault::Delay(ms) => w.before.push(Action::Sleep(Duration::from_millis(*ms))),
                Fault::Error(e) => w.out = Out::Error(e.0.wrapping_neg()),
                Fault::RawError(v) => w.out = Out::Error(*v),
                Fault::ErrorWithPayload(e) => {
                    w.out = Out::Error(e.0.wrapping_neg());
                    w.error_payload = true;
                }
                Fault::LenMismatch(d) => w.len_delta += i64::from(*d),
                Fault::NeverReply => w.end = Some(Action::Withhold { unique: h.unique }),
                Fault::Exit(code) => w.end = Some(Action::Exit(*code)),
                Fault::Push(f) => {
                    let push = Action::Push(self.push_fault(f, &rule.name));
                    if f.before_reply {
                        w.before.push(push);
                    } else {
                        w.after.push(push);
                    }
                }
                Fault::NotifyStore(n) => {
                    let node = rule.notify_node.or(subject).unwrap_or(h.nodeid);
                    w.after.extend(notify_store(n, node));
                }
                Fault::NotifyInvalInode(n) => {
                    let node = rule.notify_node.or(subject).unwrap_or(h.nodeid);
                    w.after.extend(notify_inval_inode(n, node));
                }
                _ => used = false,
            }
            if used {
                applied.push(rule.name.clone());
            }
        }
    }

    /// The push a `push` fault makes (rule `why`).
    fn push_fault(&self, f: &PushFault, why: &str) -> PushReq {
        PushReq {
            index: f.index,
            path: (!f.bad_fd).then(|| f.path.clone().unwrap_or_else(|| self.daxdev_path(f.index))),
            why: why.into(),
            famfs_on: self.famfs,
            after_init: self.init.is_some(),
        }
    }

    /// INIT was answered (`replied_data`: with a data reply, or the
    /// connection is not up): famfs as negotiated, the pushes at mount and
    /// the INIT record. `after_reply`: where the actions after the reply
    /// start.
    fn init_answered(
        &mut self,
        mut ir: InitRecord,
        replied_data: bool,
        applied: &[String],
        actions: &mut Vec<Action>,
        after_reply: usize,
    ) {
        if !replied_data {
            ir.famfs_enabled = false;
            ir.reply_len = 0;
            ir.replied = 0;
            ir.replied_names.clear();
        }
        ir.faults = applied.to_vec();
        self.famfs = ir.famfs_enabled;
        // Pushes after the reply meet the connection the reply made.
        for a in &mut actions[after_reply..] {
            if let Action::Push(p) = a {
                p.famfs_on = self.famfs;
                p.after_init = true;
            }
        }
        if self.famfs && self.pushing(PushMode::Mount) {
            let all: Vec<u64> = self.cfg.daxdevs.keys().map(|&i| u64::from(i)).collect();
            actions.extend(self.pushes_for(all, "mount"));
        }
        if let Some(p) = &self.init_path {
            // Last: a case that sees the record may open files, so the
            // pushes at mount are done by then.
            let text = serde_json::to_string_pretty(&ir).expect("records serialize");
            actions.push(Action::Record {
                path: p.clone(),
                text: text + "\n",
            });
        }
        self.init = Some(ir);
    }

    /// Whether the profile pushes devices and the scenario pushes them
    /// this way.
    fn pushing(&self, mode: PushMode) -> bool {
        self.cfg.profile.pushes_daxdevs() && self.cfg.push == mode
    }

    /// The path pushed for a device index: its `daxdevs` entry, else
    /// index 0's (a push fault into a slot nothing names).
    fn daxdev_path(&self, index: u64) -> String {
        let by_index = |i: u64| {
            u32::try_from(i)
                .ok()
                .and_then(|i| self.cfg.daxdevs.get(&i))
                .cloned()
        };
        by_index(index)
            .or_else(|| by_index(0))
            .unwrap_or_else(|| "/dev/dax0.0".into())
    }

    /// Pushes of the indices not pushed yet (each index once).
    fn pushes_for(&mut self, indices: Vec<u64>, why: &str) -> Vec<Action> {
        let mut out = Vec::new();
        for i in indices {
            if self.pushed.insert(i) {
                out.push(Action::Push(PushReq {
                    index: i,
                    path: Some(self.daxdev_path(i)),
                    why: why.into(),
                    famfs_on: self.famfs,
                    after_init: true,
                }));
            }
        }
        out
    }

    /// Logs the outcome of a push the transport made.
    pub fn note_push(
        &mut self,
        req: PushReq,
        object: Option<famfs_proto::PushObject>,
        result: i32,
        open_failed: bool,
    ) {
        let rec = PushRecord {
            event: "push".into(),
            t_us: self.t_us(),
            req,
            object,
            result,
            open_failed,
        };
        self.write_log(&rec);
    }

    fn malformed_request(
        &mut self,
        req: &[u8],
        t_us: u64,
        why: &str,
    ) -> (Vec<Action>, RequestRecord) {
        eprintln!("famfsd: malformed request ({} bytes): {why}", req.len());
        let h = InHeader::decode(req).ok();
        let mut rec = RequestRecord {
            event: "request".into(),
            t_us,
            unique: h.map_or(0, |h| h.unique),
            opcode: h.map_or(0, |h| h.opcode),
            name: "MALFORMED".into(),
            nodeid: h.map_or(0, |h| h.nodeid),
            path: None,
            pid: h.map_or(0, |h| h.pid),
            reply: "none".into(),
            bytes: None,
            errno: None,
            faults: Vec::new(),
        };
        let mut actions = Vec::new();
        if let Some(h) = h {
            rec.reply = "error".into();
            rec.errno = Some(EIO);
            actions.push(Action::Write(message(h.unique, -EIO, &[])));
        }
        (actions, rec)
    }

    fn match_rules(
        &mut self,
        opcode: u32,
        kind: OpKind,
        subject: Option<u64>,
        nodeid: u64,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, r) in self.cfg.rules.iter().enumerate() {
            if !r.op.matches(opcode, kind) {
                continue;
            }
            if r.node.is_some() && r.node != subject {
                continue;
            }
            if r.index.is_some_and(|ix| u64::from(ix) != nodeid) {
                continue;
            }
            self.seen[i] += 1;
            let n = self.seen[i];
            let due = match r.when {
                Occurrence::Every => true,
                Occurrence::Nth(k) => n == k,
                Occurrence::From(k) => n >= k,
            };
            if due && r.times.is_none_or(|t| self.fired[i] < t) {
                self.fired[i] += 1;
                out.push(i);
            }
        }
        out
    }

    fn attr(&self, n: &Node) -> abi::Attr {
        let nlink = match &n.kind {
            NodeKind::Dir { children } => {
                2 + children
                    .values()
                    .filter(|&&c| self.node(c).is_some_and(Node::is_dir))
                    .count() as u32
            }
            NodeKind::File { .. } => 1,
        };
        abi::Attr {
            ino: n.nodeid,
            size: n.size,
            blocks: n.size.div_ceil(512),
            atime: self.wall,
            mtime: self.wall,
            ctime: self.wall,
            mode: n.mode(),
            nlink,
            uid: n.uid,
            gid: n.gid,
            blksize: 4096,
            ..Default::default()
        }
    }

    fn entry(&self, n: &Node) -> EntryOut {
        let (es, ens) = split_ms(self.cfg.ttl.entry_ms);
        let (as_, ans) = split_ms(self.cfg.ttl.attr_ms);
        EntryOut {
            nodeid: n.nodeid,
            generation: 1,
            entry_valid: es,
            attr_valid: as_,
            entry_valid_nsec: ens,
            attr_valid_nsec: ans,
            attr: self.attr(n),
        }
    }

    fn attr_out(&self, n: &Node) -> AttrOut {
        let (s, ns) = split_ms(self.cfg.ttl.attr_ms);
        AttrOut {
            attr_valid: s,
            attr_valid_nsec: ns,
            dummy: 0,
            attr: self.attr(n),
        }
    }

    /// Applies `attr_size` faults to an attribute set.
    fn attr_faults(&self, attr: &mut abi::Attr, fired: &[usize], applied: &mut Vec<String>) {
        for &i in fired {
            if let Fault::AttrSize(s) = self.cfg.rules[i].fault {
                attr.size = s.0;
                attr.blocks = s.0.div_ceil(512);
                applied.push(self.cfg.rules[i].name.clone());
            }
        }
    }

    fn init(&mut self, payload: &[u8]) -> (Out, Option<InitRecord>) {
        let Ok(init) = InitIn::decode_compat(payload) else {
            return (err(EINVAL), None);
        };
        let p = &self.cfg.profile;
        let ic = &self.cfg.init;
        let offered = init.flags64();
        let famfs_offered = p.has_flag(offered);
        let mut flags = ((ic.want | init_flags::INIT_EXT) & offered) | ic.force;
        match ic.famfs {
            FamfsMode::Echo if famfs_offered => flags |= p.flag_mask(),
            FamfsMode::Force => flags |= p.flag_mask(),
            _ => flags &= !p.flag_mask(),
        }
        if ic.malformed == Some(InitMalformed::NoInitExt) {
            flags &= !init_flags::INIT_EXT;
        }
        let mut out = InitOut {
            major: if ic.malformed == Some(InitMalformed::BadMajor) {
                abi::KERNEL_VERSION + 1
            } else {
                abi::KERNEL_VERSION
            },
            minor: ic
                .minor
                .unwrap_or_else(|| init.minor.min(abi::KERNEL_MINOR_VERSION)),
            max_readahead: init.max_readahead,
            max_background: 16,
            congestion_threshold: 12,
            max_write: ic.max_write,
            time_gran: 1,
            ..Default::default()
        };
        if flags & init_flags::MAX_PAGES != 0 {
            out.max_pages = (ic.max_write / 4096).clamp(1, u32::from(u16::MAX)) as u16;
        }
        out.set_flags64(flags);
        let mut bytes = out.to_bytes();
        match ic.malformed {
            Some(InitMalformed::TooShort) => bytes.truncate(8),
            Some(InitMalformed::Oversize) => bytes.resize(128, 0),
            _ => {}
        }
        let echoed = p.has_flag(flags);
        let well_formed = matches!(ic.malformed, None | Some(InitMalformed::NoInitExt));
        let rec = InitRecord {
            profile: p.name.clone(),
            famfs_bit: p.flag_bit,
            kernel_major: init.major,
            kernel_minor: init.minor,
            flags: init.flags,
            flags2: init.flags2,
            offered,
            offered_names: abi::init_flag_names(offered, Some(p)),
            famfs_offered,
            famfs_mode: ic.famfs,
            famfs_echoed: echoed,
            famfs_enabled: famfs_offered
                && echoed
                && well_formed
                && flags & init_flags::INIT_EXT != 0,
            reply_major: out.major,
            reply_minor: out.minor,
            replied: flags,
            replied_names: abi::init_flag_names(flags, Some(p)),
            reply_len: bytes.len(),
            malformed: ic.malformed,
            faults: Vec::new(),
            mounter_cap_sys_rawio: self.mounter_rawio,
        };
        (Out::Data(bytes), Some(rec))
    }

    fn standard(
        &mut self,
        op: Opcode,
        h: &InHeader,
        payload: &[u8],
        fired: &[usize],
        applied: &mut Vec<String>,
    ) -> Out {
        match op {
            Opcode::Lookup => self.lookup(h, payload, fired, applied),
            Opcode::Getattr => {
                let Some(n) = self.node(h.nodeid) else {
                    return err(ENOENT);
                };
                let mut a = self.attr_out(n);
                self.attr_faults(&mut a.attr, fired, applied);
                Out::Data(a.to_bytes())
            }
            Opcode::Setattr => self.setattr(h, payload, fired, applied),
            Opcode::Open | Opcode::Opendir => self.open(op, h),
            Opcode::Read => self.read(h, payload),
            Opcode::Readdir | Opcode::Readdirplus => self.readdir(op, h, payload),
            Opcode::Release
            | Opcode::Releasedir
            | Opcode::Flush
            | Opcode::Fsync
            | Opcode::Fsyncdir => Out::Data(Vec::new()),
            Opcode::Statfs => self.statfs(),
            Opcode::Getxattr => err(ENODATA),
            Opcode::Listxattr => match GetxattrIn::decode(payload) {
                Ok(g) if g.size == 0 => Out::Data(
                    GetxattrOut {
                        size: 0,
                        padding: 0,
                    }
                    .to_bytes(),
                ),
                Ok(_) => Out::Data(Vec::new()),
                Err(_) => err(EINVAL),
            },
            Opcode::Create => self.create(h, payload),
            // Only files the kernel created take data (the page cache path
            // weak spot 6 needs); famfs data never goes through WRITE.
            Opcode::Write => match (WriteIn::decode(payload), self.node(h.nodeid)) {
                (Ok(w), Some(n)) if n.created_by_kernel => Out::Data(
                    WriteOut {
                        size: w.size,
                        padding: 0,
                    }
                    .to_bytes(),
                ),
                _ => err(ENOSYS),
            },
            Opcode::Forget | Opcode::BatchForget | Opcode::Interrupt | Opcode::NotifyReply => {
                Out::None
            }
            Opcode::Destroy => Out::Data(Vec::new()),
            _ => err(ENOSYS),
        }
    }

    fn lookup(
        &self,
        h: &InHeader,
        payload: &[u8],
        fired: &[usize],
        applied: &mut Vec<String>,
    ) -> Out {
        let Some(parent) = self.node(h.nodeid) else {
            return err(ENOENT);
        };
        if !parent.is_dir() {
            return err(ENOTDIR);
        }
        let Some(c) = child(parent, cstr(payload)).and_then(|c| self.visible(c)) else {
            return err(ENOENT);
        };
        let mut e = self.entry(c);
        self.attr_faults(&mut e.attr, fired, applied);
        Out::Data(e.to_bytes())
    }

    /// OPEN and OPENDIR: a new file handle.
    fn open(&mut self, op: Opcode, h: &InHeader) -> Out {
        let Some(n) = self.node(h.nodeid) else {
            return err(ENOENT);
        };
        match (op, n.is_dir()) {
            (Opcode::Open, true) => return err(EISDIR),
            (Opcode::Opendir, false) => return err(ENOTDIR),
            _ => {}
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        Out::Data(
            OpenOut {
                fh,
                open_flags: 0,
                backing_id: 0,
            }
            .to_bytes(),
        )
    }

    fn read(&self, h: &InHeader, payload: &[u8]) -> Out {
        let Ok(r) = ReadIn::decode(payload) else {
            return err(EINVAL);
        };
        let Some(n) = self.node(h.nodeid) else {
            return err(ENOENT);
        };
        match &n.kind {
            NodeKind::Dir { .. } => err(EISDIR),
            // famfs data never goes through READ; like famfs_fused,
            // there is no handler for it.
            NodeKind::File { fmap: Some(_), .. } => err(ENOSYS),
            NodeKind::File { content, .. } => {
                // A read never asks for more than max_read; the cap
                // only guards against a misbehaving peer.
                let want = u64::from(r.size).min(MAX_READ_REPLY);
                let end = n.size.min(r.offset.saturating_add(want));
                let start = r.offset.min(end);
                let mut data = vec![0u8; (end - start) as usize];
                if let Some(c) = content {
                    let cs = (start as usize).min(c.len());
                    let ce = (end as usize).min(c.len());
                    data[..ce - cs].copy_from_slice(&c[cs..ce]);
                }
                Out::Data(data)
            }
        }
    }

    /// READDIR and READDIRPLUS.
    fn readdir(&self, op: Opcode, h: &InHeader, payload: &[u8]) -> Out {
        let Ok(r) = ReadIn::decode(payload) else {
            return err(EINVAL);
        };
        let Some(n) = self.node(h.nodeid) else {
            return err(ENOENT);
        };
        let NodeKind::Dir { children } = &n.kind else {
            return err(ENOTDIR);
        };
        let mut list: Vec<(&str, &Node)> = vec![(".", n), ("..", self.node(n.parent).unwrap_or(n))];
        list.extend(
            children
                .iter()
                .filter_map(|(name, id)| Some((name.as_str(), self.visible(*id)?))),
        );
        let mut buf = Vec::new();
        for (i, (name, c)) in list.iter().enumerate().skip(r.offset as usize) {
            let mut one = Vec::new();
            let typ = abi::dirent_type(c.mode());
            if op == Opcode::Readdir {
                abi::push_dirent(&mut one, c.nodeid, i as u64 + 1, typ, name.as_bytes());
            } else {
                let mut e = self.entry(c);
                if i < 2 {
                    // No lookup reference for "." and "..".
                    e.nodeid = 0;
                }
                abi::push_direntplus(&mut one, &e, i as u64 + 1, typ, name.as_bytes());
            }
            if buf.len() + one.len() > r.size as usize {
                break;
            }
            buf.extend_from_slice(&one);
        }
        Out::Data(buf)
    }

    fn statfs(&self) -> Out {
        let used = self
            .nodes
            .iter()
            .fold(0u64, |a, n| a.saturating_add(n.size.div_ceil(4096)));
        let mut s = StatfsOut::default();
        s.st.blocks = used.max(1);
        s.st.files = self.nodes.len() as u64;
        s.st.bsize = 4096;
        s.st.frsize = 4096;
        s.st.namelen = 255;
        Out::Data(s.to_bytes())
    }

    /// famfs_fused refuses to create files (ENOTSUP); a scenario's
    /// `create: true` file comes into being here.
    fn create(&mut self, h: &InHeader, payload: &[u8]) -> Out {
        let name = payload.get(CreateIn::SIZE..).map(cstr);
        let found = self
            .node(h.nodeid)
            .zip(name)
            .and_then(|(dir, name)| child(dir, name))
            .and_then(|id| self.node_index(id))
            .filter(|&i| self.hidden[i]);
        let Some(i) = found else {
            return err(EOPNOTSUPP);
        };
        self.hidden[i] = false;
        let fh = self.next_fh;
        self.next_fh += 1;
        let mut bytes = self.entry(&self.nodes[i]).to_bytes();
        bytes.extend_from_slice(
            &OpenOut {
                fh,
                open_flags: 0,
                backing_id: 0,
            }
            .to_bytes(),
        );
        Out::Data(bytes)
    }

    fn setattr(
        &mut self,
        h: &InHeader,
        payload: &[u8],
        fired: &[usize],
        applied: &mut Vec<String>,
    ) -> Out {
        let Ok(s) = SetattrIn::decode(payload) else {
            return err(EINVAL);
        };
        let Some(idx) = self.node_index(h.nodeid) else {
            return err(ENOENT);
        };
        let n = &mut self.nodes[idx];
        // famfs files have a fixed allocation: size changes are refused
        // like famfs_fused does.
        if s.valid & fattr::SIZE != 0 && s.size != n.size {
            return err(EINVAL);
        }
        if s.valid & fattr::MODE != 0 {
            n.perm = s.mode & 0o7777;
        }
        if s.valid & fattr::UID != 0 {
            n.uid = s.uid;
        }
        if s.valid & fattr::GID != 0 {
            n.gid = s.gid;
        }
        let n = &self.nodes[idx];
        let mut a = self.attr_out(n);
        self.attr_faults(&mut a.attr, fired, applied);
        Out::Data(a.to_bytes())
    }

    fn get_fmap(
        &mut self,
        h: &InHeader,
        payload: &[u8],
        fired: &[usize],
        applied: &mut Vec<String>,
    ) -> Out {
        let p = &self.cfg.profile;
        let Some(idx) = self.node_index(h.nodeid) else {
            return err(EINVAL);
        };
        let Some((tmpl, bytes)) = &self.fmaps[idx] else {
            return err(ENOENT);
        };
        let buffer = if p.get_fmap_in_size > 0 {
            // No kernel offers more than its retry limit; clamp so a bogus
            // size cannot make `oversize` allocate gigabytes.
            let most = p.retry_limit.unwrap_or(0).max(p.max_reply);
            GetFmapIn::decode(payload).map_or(p.max_reply, |g| g.size.min(most)) as usize
        } else {
            p.max_reply as usize
        };
        let fmap_faults: Vec<usize> = fired
            .iter()
            .copied()
            .filter(|&i| self.cfg.rules[i].fault.class() == FaultClass::Fmap)
            .collect();
        if fmap_faults.is_empty() && (p.retry_limit.is_none() || bytes.len() <= buffer) {
            return Out::Data(bytes.clone());
        }
        let mut raw = tmpl.clone();
        let mut post = FmapPost::default();
        for i in fmap_faults {
            let rule = &self.cfg.rules[i];
            if rule.fault.apply_fmap(&mut raw, p, &mut post) {
                applied.push(rule.name.clone());
            } else {
                applied.push(format!("{} (no target)", rule.name));
            }
        }
        Out::Data(finish_fmap(&mut raw, p, post, buffer))
    }

    fn get_daxdev(&mut self, h: &InHeader, fired: &[usize], applied: &mut Vec<String>) -> Out {
        let p = &self.cfg.profile;
        let configured = u32::try_from(h.nodeid)
            .ok()
            .and_then(|i| self.cfg.daxdevs.get(&i))
            .map(String::as_str);
        let faults: Vec<usize> = fired
            .iter()
            .copied()
            .filter(|&i| self.cfg.rules[i].fault.class() == FaultClass::Daxdev)
            .collect();
        if configured.is_none() && faults.is_empty() {
            // famfs_fused: no device configured at all is EOPNOTSUPP.
            return err(if self.cfg.daxdevs.is_empty() {
                EOPNOTSUPP
            } else {
                EINVAL
            });
        }
        let index = h.nodeid as u16;
        let mut out = DaxdevOut::with_path(index, configured.unwrap_or(""))
            .expect("daxdev paths are checked when the scenario is resolved")
            .to_bytes();
        out.resize(p.daxdev_reply_size as usize, 0);
        for i in faults {
            let rule = &self.cfg.rules[i];
            if rule.fault.apply_daxdev(&mut out, index, configured) {
                applied.push(rule.name.clone());
            }
        }
        Out::Data(out)
    }
}

/// Bytes up to the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn child(dir: &Node, name: &[u8]) -> Option<u64> {
    match &dir.kind {
        NodeKind::Dir { children } => std::str::from_utf8(name)
            .ok()
            .and_then(|n| children.get(n).copied()),
        NodeKind::File { .. } => None,
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}
