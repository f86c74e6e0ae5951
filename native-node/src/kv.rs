//! The key-value state machine the node serves, with client sessions (Raft thesis §6.3).
//!
//! This is an in-crate stand-in for `raft_core::kv`, which another part of the project is
//! writing: the node talks to it only through [`StateMachine`], so switching to the shared
//! implementation changes this module and nothing else.
//!
//! Commands are postcard-encoded [`KvCommand`]s carried in log entries. Every replica applies the
//! same commands in the same order and so reaches the same state; nothing here reads a clock.
//! Sessions expire by log time (the index of the entry being applied), the same on every replica.

use bytes::Bytes;
use raft_core::LogIndex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the node needs from a replicated state machine (hashicorp's `FSM`).
///
/// To ensure correctness:
/// - `apply` must be deterministic: the same commands in the same order give the same responses
///   and the same state on every replica;
/// - `apply` must not fail for bad input: a command that cannot be decoded gets an error
///   response, because the entry is committed and every replica must treat it the same way.
pub trait StateMachine: Send + 'static {
    /// Applies one committed command at `index` and returns the response for the proposer.
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Bytes;
    /// Answers a read-only query against the current state.
    fn query(&self, query: &[u8]) -> Bytes;
    /// The whole state, for a snapshot.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot's.
    ///
    /// # Errors
    /// A message saying why the bytes are not a snapshot of this state machine.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// Bytes a key may have at most; longer keys get [`KvResponse::Error`].
pub const KEY_BYTES_MAX: usize = 4 * 1024;
/// Bytes a value may have at most.
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;
/// A session not used for this many log entries expires (log time, thesis §6.3).
pub const SESSION_EXPIRY_ENTRIES: u64 = 1_000_000;

/// A client's session and the sequence number of this command within it (thesis §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// The client id: the log index of the client's `Register` entry.
    pub client_id: u64,
    /// Strictly increasing per client; a retry reuses the number of the command it retries.
    pub sequence: u64,
}

/// A write to the store, as carried in a log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Opens a session; the response's `client_id` is this entry's index.
    Register,
    /// Sets `key` to `value`.
    Put {
        /// Exactly-once bookkeeping, if the client uses a session.
        session: Option<SessionRef>,
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Removes `key`.
    Delete {
        /// Exactly-once bookkeeping.
        session: Option<SessionRef>,
        /// The key.
        key: Bytes,
    },
    /// Sets `key` to `value` only if its current value is `expected` (`None`: absent).
    CompareAndSwap {
        /// Exactly-once bookkeeping.
        session: Option<SessionRef>,
        /// The key.
        key: Bytes,
        /// The value the key must have now.
        expected: Option<Bytes>,
        /// The new value.
        value: Bytes,
    },
}

/// A read of the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvQuery {
    /// The value of one key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Keys starting with `prefix`, in order, at most `limit`.
    List {
        /// The prefix.
        prefix: Bytes,
        /// Most keys returned.
        limit: u32,
    },
}

/// What a command or query returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResponse {
    /// The command was applied (or the query answered).
    Ok {
        /// The key's value after the command (for `get`: the current value).
        value: Option<Bytes>,
        /// How many times the key was written since it was created (etcd's `version`): a write
        /// applied twice would show here.
        version: u64,
    },
    /// A session was opened.
    Registered {
        /// The new client id.
        client_id: u64,
    },
    /// Compare-and-swap found another value; nothing changed.
    CasFailed {
        /// The value the key actually has.
        current: Option<Bytes>,
    },
    /// Keys for a `List` query.
    Keys {
        /// The keys, in order.
        keys: Vec<Bytes>,
    },
    /// The command was refused; nothing changed.
    Error {
        /// Why, lowercase.
        message: String,
    },
}

impl KvResponse {
    fn error(message: impl Into<String>) -> KvResponse {
        KvResponse::Error { message: message.into() }
    }

    /// Encodes for the wire between the core task and the API layer.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).unwrap_or_default())
    }

    /// Decodes a response produced by [`KvResponse::encode`].
    pub fn decode(bytes: &[u8]) -> KvResponse {
        postcard::from_bytes(bytes)
            .unwrap_or_else(|error| KvResponse::error(format!("undecodable response: {error}")))
    }
}

impl KvCommand {
    /// Encodes for a log entry.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).unwrap_or_default())
    }
}

impl KvQuery {
    /// Encodes for [`StateMachine::query`].
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).unwrap_or_default())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    value: Bytes,
    version: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Session {
    /// Highest sequence number applied, and its response.
    last_sequence: u64,
    last_response: KvResponse,
    /// Log time of the last use.
    last_used_index: u64,
}

/// The key-value store with sessions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<Bytes, Record>,
    sessions: BTreeMap<u64, Session>,
    /// Commands applied (not counting retries answered from a session's cache).
    pub commands_applied: u64,
    /// Retries answered from a session's cache instead of being applied again.
    pub duplicates_suppressed: u64,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// The value and version of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<(Bytes, u64)> {
        self.data.get(key).map(|record| (record.value.clone(), record.version))
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn expire_sessions(&mut self, index: u64) {
        // Cheap enough at this scale; a real store would index sessions by last use.
        if index % 1024 == 0 {
            self.sessions
                .retain(|_, session| index.saturating_sub(session.last_used_index) < SESSION_EXPIRY_ENTRIES);
        }
    }

    fn apply_command(&mut self, index: u64, command: KvCommand) -> KvResponse {
        let session = match &command {
            KvCommand::Register => {
                self.sessions.insert(
                    index,
                    Session {
                        last_sequence: 0,
                        last_response: KvResponse::Registered { client_id: index },
                        last_used_index: index,
                    },
                );
                self.commands_applied += 1;
                return KvResponse::Registered { client_id: index };
            }
            KvCommand::Put { session, .. }
            | KvCommand::Delete { session, .. }
            | KvCommand::CompareAndSwap { session, .. } => *session,
        };
        if let Some(reference) = session {
            let Some(state) = self.sessions.get_mut(&reference.client_id) else {
                return KvResponse::error(format!(
                    "session {} is unknown or expired; register again",
                    reference.client_id
                ));
            };
            state.last_used_index = index;
            if reference.sequence == state.last_sequence {
                self.duplicates_suppressed += 1;
                return state.last_response.clone();
            }
            if reference.sequence < state.last_sequence {
                return KvResponse::error(format!(
                    "sequence {} is older than the session's last ({}); its response is gone",
                    reference.sequence, state.last_sequence
                ));
            }
        }
        let response = self.apply_write(command);
        self.commands_applied += 1;
        if let Some(reference) = session {
            if let Some(state) = self.sessions.get_mut(&reference.client_id) {
                state.last_sequence = reference.sequence;
                state.last_response = response.clone();
            }
        }
        response
    }

    fn apply_write(&mut self, command: KvCommand) -> KvResponse {
        match command {
            KvCommand::Register => KvResponse::error("register is not a write"),
            KvCommand::Put { key, value, .. } => {
                if let Err(message) = check_sizes(&key, &value) {
                    return KvResponse::error(message);
                }
                let record = self.data.entry(key).or_insert(Record { value: Bytes::new(), version: 0 });
                record.value = value;
                record.version += 1;
                KvResponse::Ok { value: Some(record.value.clone()), version: record.version }
            }
            KvCommand::Delete { key, .. } => {
                let removed = self.data.remove(&key);
                KvResponse::Ok { value: None, version: removed.map_or(0, |record| record.version) }
            }
            KvCommand::CompareAndSwap { key, expected, value, .. } => {
                if let Err(message) = check_sizes(&key, &value) {
                    return KvResponse::error(message);
                }
                let current = self.data.get(&key).map(|record| record.value.clone());
                if current != expected {
                    return KvResponse::CasFailed { current };
                }
                let record = self.data.entry(key).or_insert(Record { value: Bytes::new(), version: 0 });
                record.value = value;
                record.version += 1;
                KvResponse::Ok { value: Some(record.value.clone()), version: record.version }
            }
        }
    }
}

fn check_sizes(key: &[u8], value: &[u8]) -> Result<(), String> {
    if key.is_empty() {
        return Err("key is empty".to_string());
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(format!("key has {} bytes; at most {KEY_BYTES_MAX} allowed", key.len()));
    }
    if value.len() > VALUE_BYTES_MAX {
        return Err(format!("value has {} bytes; at most {VALUE_BYTES_MAX} allowed", value.len()));
    }
    Ok(())
}

impl StateMachine for KvStore {
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Bytes {
        self.expire_sessions(index.0);
        let response = match postcard::from_bytes::<KvCommand>(command) {
            Ok(command) => self.apply_command(index.0, command),
            Err(error) => KvResponse::error(format!("undecodable command: {error}")),
        };
        response.encode()
    }

    fn query(&self, query: &[u8]) -> Bytes {
        let response = match postcard::from_bytes::<KvQuery>(query) {
            Ok(KvQuery::Get { key }) => match self.data.get(&key) {
                Some(record) => KvResponse::Ok { value: Some(record.value.clone()), version: record.version },
                None => KvResponse::Ok { value: None, version: 0 },
            },
            Ok(KvQuery::List { prefix, limit }) => {
                let keys = self
                    .data
                    .range(prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(&prefix))
                    .take(limit as usize)
                    .map(|(key, _)| key.clone())
                    .collect();
                KvResponse::Keys { keys }
            }
            Err(error) => KvResponse::error(format!("undecodable query: {error}")),
        };
        response.encode()
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let restored: KvStore =
            postcard::from_bytes(snapshot).map_err(|error| format!("not a kv snapshot: {error}"))?;
        *self = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(session: Option<SessionRef>, key: &str, value: &str) -> Vec<u8> {
        KvCommand::Put { session, key: Bytes::from(key.to_string()), value: Bytes::from(value.to_string()) }
            .encode()
            .to_vec()
    }

    fn apply(store: &mut KvStore, index: u64, command: &[u8]) -> KvResponse {
        KvResponse::decode(&store.apply(LogIndex(index), command))
    }

    #[test]
    fn a_retried_command_is_applied_once_thesis_6_3() {
        let mut store = KvStore::new();
        let KvResponse::Registered { client_id } = apply(&mut store, 1, &KvCommand::Register.encode()) else {
            panic!("register failed");
        };
        let session = Some(SessionRef { client_id, sequence: 1 });
        let first = apply(&mut store, 2, &put(session, "k", "v"));
        let retry = apply(&mut store, 3, &put(session, "k", "v"));
        assert_eq!(first, retry);
        assert_eq!(store.get(b"k").map(|(_, version)| version), Some(1));
        assert_eq!(store.duplicates_suppressed, 1);
        let next = apply(&mut store, 4, &put(Some(SessionRef { client_id, sequence: 2 }), "k", "w"));
        assert_eq!(next, KvResponse::Ok { value: Some(Bytes::from_static(b"w")), version: 2 });
    }

    #[test]
    fn unknown_session_and_garbage_get_clear_errors() {
        let mut store = KvStore::new();
        let response = apply(&mut store, 1, &put(Some(SessionRef { client_id: 99, sequence: 1 }), "k", "v"));
        assert!(matches!(response, KvResponse::Error { ref message } if message.contains("unknown")));
        let response = apply(&mut store, 2, &[0xff, 0xff, 0xff]);
        assert!(matches!(response, KvResponse::Error { ref message } if message.contains("undecodable")));
        assert!(store.is_empty());
    }

    #[test]
    fn compare_and_swap_and_snapshot_round_trip() {
        let mut store = KvStore::new();
        let cas = |expected: Option<&'static [u8]>, value: &'static [u8]| {
            KvCommand::CompareAndSwap {
                session: None,
                key: Bytes::from_static(b"k"),
                expected: expected.map(Bytes::from_static),
                value: Bytes::from_static(value),
            }
            .encode()
        };
        assert!(matches!(apply(&mut store, 1, &cas(None, b"a")), KvResponse::Ok { .. }));
        assert!(matches!(apply(&mut store, 2, &cas(None, b"b")), KvResponse::CasFailed { .. }));
        assert!(matches!(apply(&mut store, 3, &cas(Some(b"a"), b"b")), KvResponse::Ok { version: 2, .. }));
        let mut copy = KvStore::new();
        copy.restore(&store.snapshot()).unwrap();
        assert_eq!(copy.get(b"k"), Some((Bytes::from_static(b"b"), 2)));
        assert!(copy.restore(b"\xff\xff").is_err());
    }
}
