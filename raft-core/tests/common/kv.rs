//! Driving a lone `KvStore` through the log, as the restore tests do: each helper applies one
//! entry at the next index (term 1), as a replica applying committed entries would.

use bytes::Bytes;
use raft_core::kv::{
    ClientId, Command, CommandBody, KvStore, Operation, Output, Response, RESERVED_KEY_PREFIX,
};
use raft_core::state_machine::{restore_from_chunks, StateMachine};
use raft_core::{Entry, EntryPayload, LogIndex, Term};

/// Applies a command stamped `timestamp_ms` at the next index.
pub fn apply(store: &mut KvStore, timestamp_ms: u64, body: CommandBody) -> Response {
    let index = LogIndex(store.applied_index().0 + 1);
    let command = Command { timestamp_ms, body }.encode();
    store.apply(&Entry { term: Term(1), index, payload: EntryPayload::Command(command) })
}

/// Applies a no-op entry at the next index.
pub fn noop(store: &mut KvStore) {
    let index = LogIndex(store.applied_index().0 + 1);
    store.apply(&Entry { term: Term(1), index, payload: EntryPayload::Noop }).unwrap();
}

/// Puts `value` at `key` without a session; it must be written.
pub fn put(store: &mut KvStore, key: &[u8], value: &[u8]) {
    let operation = Operation::Put { key: Bytes::copy_from_slice(key), value: Bytes::copy_from_slice(value) };
    let body = CommandBody::Request { session: None, operation };
    assert_eq!(apply(store, 1, body), Ok(Output::Written));
}

/// Registers a client; its id is the entry's index.
pub fn register(store: &mut KvStore, timestamp_ms: u64) -> ClientId {
    match apply(store, timestamp_ms, CommandBody::RegisterClient) {
        Ok(Output::Registered { client_id }) => client_id,
        other => panic!("{other:?}"),
    }
}

/// The reserved (internal) key `name`.
pub fn reserved(name: &str) -> Vec<u8> {
    [RESERVED_KEY_PREFIX, name.as_bytes()].concat()
}

/// One piece of a streamed restore.
pub fn chunk(restore_id: u64, sequence: u64, data: &[u8], last: bool) -> CommandBody {
    CommandBody::RestoreChunk { restore_id, sequence, data: Bytes::copy_from_slice(data), last }
}

/// The store's snapshot, whole.
pub fn bytes_of(store: &KvStore) -> Vec<u8> {
    store.snapshot().flat_map(|chunk| chunk.to_vec()).collect()
}

/// A replica restarted from `store`'s snapshot (InstallSnapshot or its own disk); panics if the
/// snapshot is refused.
pub fn replica_of(store: &KvStore) -> KvStore {
    let mut copy = KvStore::new(*store.config()).unwrap();
    restore_from_chunks(&mut copy, store.snapshot()).unwrap();
    copy
}
