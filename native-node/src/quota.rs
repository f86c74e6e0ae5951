//! The store's byte quota and the size-based snapshot trigger (issue 11, M11; etcd's
//! `--quota-backend-bytes` and its `NOSPACE` alarm).
//!
//! Overwriting one key with 64 KiB values grew the log toward gigabytes before the
//! entry-count trigger fired, and nothing bounded the store itself. Now:
//! - the state machine counts the bytes of its keys and values ([`StoreBytes`]); once they
//!   reach the quota, writes that can grow the store (`put`, `cas`) are refused with
//!   `no_space` before they cost a log entry, while `del` (and reads) still work, so an
//!   operator can make room. `raft_kv_bytes` and `raft_no_space_alarm` show it;
//! - the core task snapshots (and so compacts the log) once the entries applied since the last
//!   snapshot carry `snapshot_interval_bytes`, whatever their count.

use raft_core::kv::{Command, CommandBody, KvStore, Operation};

/// Default quota of a node's store, as etcd's default backend quota.
pub const QUOTA_BACKEND_BYTES_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;

/// Default: snapshot once the entries applied since the last one carry this many bytes.
pub const SNAPSHOT_INTERVAL_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// Start of the message of a `no_space` refusal; the API maps it to the `no_space` code.
pub const NO_SPACE: &str = "no_space";

/// Bytes of keys and values in a store, kept up to date entry by entry.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreBytes(pub u64);

fn entry_bytes(store: &KvStore, key: &[u8]) -> u64 {
    store.get(key).map_or(0, |value| (key.len() + value.len()) as u64)
}

/// The key a command may change, if it changes one key.
pub fn touched_key(command: &Command) -> Option<&[u8]> {
    match &command.body {
        CommandBody::Request {
            operation:
                Operation::Put { key, .. } | Operation::Delete { key } | Operation::CompareAndSwap { key, .. },
            ..
        } => Some(key),
        _ => None,
    }
}

impl StoreBytes {
    /// Counts a whole store (after a restore).
    pub fn count(store: &KvStore) -> StoreBytes {
        StoreBytes(store.iter().map(|(key, value)| (key.len() + value.len()) as u64).sum())
    }

    /// The size `key` has now, to compare after the command is applied.
    pub fn before(store: &KvStore, key: &[u8]) -> u64 {
        entry_bytes(store, key)
    }

    /// Accounts for `key` having gone from `before` bytes to what it holds now.
    pub fn after(&mut self, store: &KvStore, key: &[u8], before: u64) {
        self.0 = (self.0 + entry_bytes(store, key)).saturating_sub(before);
    }
}

/// Why `command` may not be proposed with the store at `bytes` of `quota` (0: no quota).
pub fn refuse_over_quota(command: &Command, bytes: StoreBytes, quota: u64) -> Option<String> {
    if quota == 0 || bytes.0 < quota {
        return None;
    }
    let grows = matches!(
        &command.body,
        CommandBody::Request { operation: Operation::Put { .. } | Operation::CompareAndSwap { .. }, .. }
            | CommandBody::Restore { .. }
    );
    grows.then(|| {
        format!(
            "{NO_SPACE}: the store holds {} bytes, its quota is {quota} (--quota-backend-bytes); delete keys \
             or raise the quota",
            bytes.0
        )
    })
}
