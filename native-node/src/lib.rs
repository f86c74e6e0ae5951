//! # native-node
//!
//! Flotilla's Raft core (`raft-core`) run for real: on tokio, durable on disk, peering over
//! WebSockets, serving a key-value API.
//!
//! - [`raft`]: the [`Raft`] handle with hashicorp/raft's operations, and the one task that owns
//!   the core (no lock around it).
//! - [`storage`] and [`wal`]: the log and hard state in a preallocated write-ahead log, one
//!   `fdatasync` per `Ready` batch (group commit); metadata on redb; checksummed snapshot files.
//! - [`transport`]: peer messages over WebSockets at `/raft` (versioned binary frames, an
//!   authenticated handshake, bounded per-peer queues, reconnect with backoff), over
//!   [`peer_auth`] (= `raft_core::wire`)'s frames, handshake proofs and per-frame session tags
//!   (no I/O, no tokio; the browser peer compiles the same module).
//! - [`server`]: one port for `/raft`, the JSON client API (`/client`), `/health`, `/metrics`,
//!   `/events` and static files.
//! - [`client`]: the retrying client the CLI's `kv`, `admin` and `bench` use, over
//!   [`connection`]s that many clients can share.
//! - [`kv`]: the key-value state machine with client sessions.
//! - [`tls`] (rustls beneath HTTP and WebSockets, mutual for peers) and [`credentials`] (peer
//!   secret, admin secret, client token).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

mod address_book;
mod admin_routes;
pub mod admission;
pub mod api;
pub mod backup_download;
pub mod bench;
pub mod browser_peers;
pub mod browser_voters;
mod catch_up;
pub mod client;
mod cluster_view;
pub mod connection;
pub mod credentials;
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod history_cli;
pub mod incarnation;
pub mod invite;
pub mod kv;
pub mod limits;
pub mod metrics;
pub mod outbound;
pub mod peer_liveness;
mod pending;
pub mod quota;
pub mod raft;
pub mod restore;
pub mod server;
pub mod session_clock;
pub mod storage;
pub mod tls;
pub mod transport;

/// The peer protocol (frames, handshake, per-frame tags) lives in raft-core so that browser
/// peers compile the same code; this alias keeps the native paths short.
pub use raft_core::wire as peer_auth;
pub mod wal;

pub use raft::{Raft, RaftConfig, RaftError, ReadMode, Status};
pub use server::{run, ServeConfig};
