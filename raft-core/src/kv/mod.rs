//! The replicated key-value store with client sessions: Flotilla's one state machine.
//!
//! - [`Command`] is what a proposer puts in [`crate::EntryPayload::Command`]
//!   ([`Command::encode`]); [`KvStore`] applies it ([`crate::state_machine::StateMachine`]) and
//!   answers a [`Response`].
//! - Operations: get, put, delete, compare-and-swap, list by prefix. Keys and values are bytes
//!   bounded by [`KEY_BYTES_MAX`] and [`VALUE_BYTES_MAX`].
//! - **Sessions** (thesis §6.3) make retries safe. A client registers ([`Command::register`])
//!   and gets a [`ClientId`], the log index of its registration. Each request carries that id
//!   and a sequence number; the store applies each sequence number once, caches the last
//!   response, answers a retry from the cache and refuses an older number as stale.
//!   **One request at a time per session:** only the last response is cached, so a client must
//!   not send sequence `n + 1` before it has the answer to `n` (it may retry `n` as often as it
//!   likes). A client that pipelines opens one session per outstanding request; a retry of an
//!   older number after a newer one was applied is refused as stale, never applied twice.
//!   (The thesis's variant caches every response the client has not acknowledged; this one keeps
//!   the table's memory bounded by one response per session.)
//! - **Log time.** Every command carries a proposer timestamp; the store's clock is the
//!   largest one applied so far. Sessions idle longer than [`KvConfig::session_timeout_ms`] by
//!   that clock expire during `apply`, identically on every replica. A leader should stamp with
//!   [`LeaderClock`] (the store's clock at takeover plus its monotonic elapsed time), not its
//!   wall clock: one server whose wall clock runs ahead would otherwise move the store's clock
//!   forward for good and expire every idle session at once. The table is bounded by
//!   [`KvConfig::sessions_max`]; registering beyond it evicts the least recently used.
//! - Reads may go through the log (for linearizability without ReadIndex) or be served locally
//!   with [`KvStore::read`] after ReadIndex or a lease (thesis §6.4).
//! - Snapshots are a deterministic, versioned, checksummed stream (see [`KvSnapshot`]).
//!
//! ```
//! use raft_core::kv::{Command, KvConfig, KvStore, Operation, Output};
//! use raft_core::state_machine::StateMachine;
//! use raft_core::{Bytes, Entry, EntryPayload, LogIndex, Term};
//!
//! let mut store = KvStore::new(KvConfig::default()).unwrap();
//! let mut apply = |index: u64, command: Command| {
//!     let entry = Entry { term: Term(1), index: LogIndex(index), payload: EntryPayload::Command(command.encode()) };
//!     store.apply(&entry)
//! };
//! let Ok(Output::Registered { client_id }) = apply(1, Command::register(1_000)) else { panic!() };
//! let put = Operation::Put { key: Bytes::from("k"), value: Bytes::from("v") };
//! assert_eq!(apply(2, Command::request(1_001, client_id, 1, put.clone())), Ok(Output::Written));
//! // A retry of sequence 1 is answered from the session cache, not applied again.
//! assert_eq!(apply(3, Command::request(1_002, client_id, 1, put)), Ok(Output::Written));
//! ```

mod checksum;
mod clock;
mod command;
mod key;
mod limits;
mod response;
mod session;
mod snapshot;
mod staging;
mod store;

pub use clock::LeaderClock;
pub use command::{ClientId, Command, CommandBody, Operation, SessionRequest, COMMAND_FORMAT_VERSION};
pub use limits::{
    COMMAND_BYTES_MAX, ENCODED_COMMAND_BYTES_MAX, KEY_BYTES_MAX, LIST_KEYS_MAX, LIST_RESPONSE_BYTES_MAX,
    RESERVED_KEY_PREFIX, RESTORE_BYTES_MAX, RESTORE_CHUNK_BYTES_MAX, RESTORE_IDLE_MS, RESTORE_PIECES_MAX,
    RESTORE_STAGED_MS_MAX, VALUE_BYTES_MAX,
};
pub use response::{DecodeError, KvError, Output, Response};
pub use snapshot::{
    KvRestore, KvSnapshot, SnapshotError, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_FRAME_BYTES_MAX, SNAPSHOT_MAGIC,
};
pub use store::{KvConfig, KvStore};
