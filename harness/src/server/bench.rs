//! Request throughput of the server, for `cargo xtask bench server`.
//! Prints numbers; asserts nothing.

use super::dispatch::Server;
use super::scenario::Config;
use super::sim::{self, SimKernel};
use anyhow::{bail, Result};
use famfs_proto::abi::{OutHeader, Wire};
use famfs_proto::{Opcode, Profile};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Requests kept in flight on the channel when pipelining.
const WINDOW: u64 = 64;

fn scenario(profile: &Profile) -> Config {
    let mut y = String::from(
        "daxdevs: {0: /dev/dax0.0}\ntree:\n  - path: /big\n    fmap:\n      extents:\n",
    );
    for i in 0..profile.max_extents.min(32) {
        let _ = writeln!(y, "        - {{offset: {}M, len: 2M}}", i * 4);
    }
    for i in 0..16 {
        let _ = writeln!(y, "  - path: /d/file{i}\n    content: \"{i}\"");
    }
    Config::from_text(Path::new("<bench>"), &y, Some(profile.clone()))
        .expect("the bench scenario is valid")
}

fn started(cfg: &Config) -> Result<Server> {
    let mut s = Server::new(cfg.clone());
    let init = sim::request(
        Opcode::Init as u32,
        1,
        0,
        &sim::init_payload(46, sim::KERNEL_OFFER | cfg.profile.flag_mask()),
    );
    s.handle(&init);
    if !s.famfs_enabled() {
        bail!("INIT did not enable famfs");
    }
    Ok(s)
}

/// The dispatcher alone: no channel, no log.
fn direct(cfg: &Config, req: &[u8], n: u64) -> Result<Duration> {
    let mut s = started(cfg)?;
    let t = Instant::now();
    for _ in 0..n {
        let a = s.handle(req);
        std::hint::black_box(&a);
    }
    Ok(t.elapsed())
}

/// Over a socketpair to one server thread, `window` requests in flight.
fn channel(cfg: &Config, req: &[u8], n: u64, window: u64) -> Result<Duration> {
    let (mut k, running) = SimKernel::start(started(cfg)?, 1)?;
    let mut msg = req.to_vec();
    let mut buf = vec![0u8; 1 << 16];
    let (mut sent, mut got) = (0u64, 0u64);
    let t = Instant::now();
    while got < n {
        while sent < n && sent - got < window {
            msg[8..16].copy_from_slice(&(sent * 2 + 2).to_le_bytes());
            k.send_raw(&msg)?;
            sent += 1;
        }
        let r = rustix::net::recv(&k, &mut buf, rustix::net::RecvFlags::empty()).map(|(n, _)| n);
        if !matches!(r, Ok(n) if n >= OutHeader::SIZE) {
            bail!("short or failed receive ({r:?})");
        }
        let h = OutHeader::decode(&buf).expect("checked length");
        if h.error != 0 {
            bail!("request failed with error {}", h.error);
        }
        got += 1;
    }
    let d = t.elapsed();
    drop(k);
    running.stop();
    running.join();
    Ok(d)
}

/// Measures GET_FMAP (a 32-extent fmap) and LOOKUP with `n` requests each:
/// through the dispatcher alone, and over a socketpair to one server
/// thread with 1 and with 64 requests in flight. Returns a table.
pub fn bench(n: u64) -> String {
    let n = n.max(1);
    let p = Profile::v10();
    let cfg = scenario(&p);
    let big = cfg.lookup_path("/big").expect("bench tree").nodeid;
    let dir = cfg.lookup_path("/d").expect("bench tree").nodeid;
    let fmap_len = cfg
        .lookup_path("/big")
        .and_then(|b| b.fmap())
        .map_or(0, |f| f.encoded_len());
    let get_fmap = sim::request(p.get_fmap, 2, big, &[]);
    let lookup = sim::request(Opcode::Lookup as u32, 2, dir, &sim::name_payload("file7"));

    let mut out = format!(
        "famfsd request throughput (profile {}, GET_FMAP reply {} bytes = 32 extents)\n",
        p.name, fmap_len
    );
    let _ = writeln!(
        out,
        "{:<10} {:<28} {:>10} {:>10} {:>12}",
        "request", "path", "requests", "seconds", "req/s"
    );
    let runs: [(&str, &[u8], &str, u64); 6] = [
        ("GET_FMAP", &get_fmap, "dispatcher only", 0),
        ("GET_FMAP", &get_fmap, "socketpair, 1 in flight", 1),
        ("GET_FMAP", &get_fmap, "socketpair, 64 in flight", WINDOW),
        ("LOOKUP", &lookup, "dispatcher only", 0),
        ("LOOKUP", &lookup, "socketpair, 1 in flight", 1),
        ("LOOKUP", &lookup, "socketpair, 64 in flight", WINDOW),
    ];
    for (name, req, how, window) in runs {
        let r = if window == 0 {
            direct(&cfg, req, n)
        } else {
            channel(&cfg, req, n, window)
        };
        match r {
            Ok(d) => {
                let secs = d.as_secs_f64();
                let _ = writeln!(
                    out,
                    "{name:<10} {how:<28} {n:>10} {secs:>10.3} {:>12.0}",
                    n as f64 / secs.max(1e-9)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{name:<10} {how:<28} failed: {e:#}");
            }
        }
    }
    out
}
