//! A fault-injecting famfs FUSE server (`fh-guest famfsd`).
//!
//! It serves a tree described by a scenario file straight from /dev/fuse
//! (no libfuse), speaks the famfs additions of a chosen protocol profile
//! (GET_FMAP, GET_DAXDEV, the INIT capability bit), and breaks replies on
//! purpose where the scenario says so, to see how a famfs kernel copes.
//!
//! - [`scenario`]: the YAML format and its resolution into a [`Config`].
//! - [`fault`]: the [`Fault`]s and how each changes a reply.
//! - [`dispatch`]: [`Server`], transport-independent: bytes of one request
//!   in, [`Action`]s out, one JSON log line per request.
//! - [`transport`]: reader threads over /dev/fuse or a socketpair.
//! - [`sim`]: a simulated kernel on a socketpair, for tests and [`bench`].
//! - [`cli`]: [`cli_main`], mounting and signal handling.

pub mod bench;
pub mod cli;
pub mod dispatch;
pub mod expect;
pub mod fault;
pub mod oracle;
pub mod scenario;
pub mod sim;
pub mod transport;

pub use bench::bench;
pub use cli::{cli_main, has_cap_sys_rawio, unmount, Mounted};
pub use dispatch::{Action, InitRecord, RequestRecord, Server, WriteFailure};
pub use fault::{Fault, FaultClass};
pub use scenario::{Config, Scenario};
pub use sim::SimKernel;
pub use transport::{serve_socketpair, spawn, ExitMode, FuseConn, Running, ServeEnd, Wake};
