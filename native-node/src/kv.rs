//! The state machine the node serves: raft-core's key-value store with client sessions
//! ([`raft_core::kv`], thesis §6.3), behind the small object-safe trait the core task drives.
//!
//! raft-core's [`raft_core::state_machine::StateMachine`] has associated types (response,
//! snapshot stream, restore), which keeps it generic and `no_std`; the driver wants one boxed
//! state machine and bytes in and out, so this module adapts it: responses and queries travel
//! postcard-encoded between the core task and the API layer.

use bytes::Bytes;
use raft_core::kv::{Command, CommandBody, KvConfig, KvStore, Operation, Output, Response};
use raft_core::state_machine::{restore_from_chunks, StateMachine as CoreStateMachine};
use raft_core::NodeId;
use raft_core::{Entry, LogIndex};

/// What the core task needs from a replicated state machine (hashicorp's `FSM`).
///
/// To ensure correctness: `apply` gets every committed entry exactly once, in order, and must
/// be deterministic (see [`raft_core::state_machine::StateMachine`]).
pub trait StateMachine: Send + 'static {
    /// Applies one committed entry and returns the response for its proposer.
    ///
    /// # Errors
    /// A message when the entry is out of order: the driver must stop, because applying it
    /// would diverge from the other replicas.
    fn apply(&mut self, entry: &Entry) -> Result<Bytes, String>;
    /// The last entry applied (or restored from a snapshot).
    fn applied_index(&self) -> LogIndex;
    /// Answers a read-only query against the current state.
    fn query(&self, query: &[u8]) -> Bytes;
    /// The whole state as of `applied_index`, as a stream of chunks that owns what it needs:
    /// taking it must be cheap, because the core task waits; encoding it happens on a blocking
    /// thread while the state machine goes on applying.
    fn snapshot(&self) -> Box<dyn Iterator<Item = Bytes> + Send>;
    /// Replaces the whole state with a snapshot's; the old state stays on error.
    ///
    /// # Errors
    /// A message saying why the bytes are not a valid snapshot.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
    /// Peer addresses recorded in the state (see [`ADDRESS_KEY_PREFIX`]).
    fn peer_addresses(&self) -> Vec<(NodeId, String)> {
        Vec::new()
    }
    /// The log command for one piece of a streamed restore (see [`crate::restore`]), or `None`
    /// if this state machine cannot restore that way.
    fn restore_piece_command(&self, _piece: crate::restore::RestorePiece) -> Option<Bytes> {
        None
    }
    /// Why a client's command may not be proposed (it touches the node's internal records,
    /// see [`RESERVED_KEY_PREFIX`]), or `None` if it may.
    fn refuse_client_command(&self, _command: &[u8]) -> Option<String> {
        None
    }
    /// Bytes the state holds (keys and values), for the quota and its alarm. No default: a
    /// wrapping state machine that forgot to forward it would switch the alarm off silently.
    fn bytes(&self) -> u64;
    /// The quota of [`StateMachine::bytes`]; 0: none. No default, as for `bytes`.
    fn quota_bytes(&self) -> u64;
}

/// Keys under this prefix are the cluster's own records (peer addresses). No client operation
/// may read, write or delete them, and a user's snapshot cannot bring its own: they change only
/// through authenticated membership operations ([`crate::raft::Raft::add_voter`] and friends).
/// Defined with the records in `raft_core::wire::records`, which the browser peer reads too.
pub use raft_core::wire::records::RESERVED_KEY_PREFIX;

/// Whether `key` belongs to the cluster's internal records.
pub fn is_reserved_key(key: &[u8]) -> bool {
    key.starts_with(RESERVED_KEY_PREFIX)
}

/// The error text for a client operation on a reserved key.
pub fn reserved_key_message() -> String {
    "keys starting with \"\\u0000flotilla/\" are reserved for the cluster's own records".to_string()
}

/// Whether a client operation touches a reserved key. Lists are never refused: their answers
/// leave reserved keys out.
pub fn operation_touches_reserved(operation: &Operation) -> bool {
    operation.key().is_some_and(|key| is_reserved_key(key))
}

/// Keys under this prefix record where a member can be dialled (hashicorp keeps addresses in
/// its configuration; raft-core's `Membership` holds ids only, so the address travels through
/// the log as a key-value record, and every node, including future leaders, learns it).
pub use raft_core::wire::records::ADDRESS_KEY_PREFIX;
const _: () = assert!(ADDRESS_KEY_PREFIX.len() > RESERVED_KEY_PREFIX.len());

/// The log command that records `address` for `id`.
pub fn address_record(id: NodeId, address: &str) -> Bytes {
    let key = raft_core::wire::records::address_key(id);
    // Timestamp 0: the store's clock is the largest timestamp applied, so this record moves no
    // session's time (a wall clock here would let one host's clock expire sessions, see
    // crate::session_clock).
    Command::unsessioned(0, Operation::Put { key: Bytes::from(key), value: Bytes::from(address.to_string()) })
        .encode()
}

use raft_core::wire::records::parse_address;

/// The member address a log command records, if it is such a record.
pub fn parse_address_record(command: &[u8]) -> Option<(NodeId, String)> {
    let command = Command::decode(command).ok()?;
    match command.body {
        CommandBody::Request { operation: Operation::Put { key, value }, .. } => parse_address(&key, &value),
        _ => None,
    }
}

/// raft-core's [`KvStore`] as the node's state machine.
pub struct KvStateMachine {
    store: KvStore,
    bytes: crate::quota::StoreBytes,
    quota_bytes: u64,
    /// The store's clock after every apply and restore, for [`crate::session_clock`].
    clock: crate::session_clock::StoreClock,
}

impl KvStateMachine {
    /// A new, empty store. Every replica must use the same `config`.
    ///
    /// # Errors
    /// A message naming the invalid setting.
    pub fn new(config: KvConfig) -> Result<KvStateMachine, String> {
        Ok(KvStateMachine {
            store: KvStore::new(config).map_err(|e| e.to_string())?,
            bytes: crate::quota::StoreBytes::default(),
            quota_bytes: 0,
            clock: Default::default(),
        })
    }

    /// The same, with a byte quota (see [`crate::quota`]); 0: none.
    ///
    /// # Errors
    /// A message naming the invalid setting.
    pub fn with_quota(config: KvConfig, quota_bytes: u64) -> Result<KvStateMachine, String> {
        let mut machine = KvStateMachine::new(config)?;
        machine.quota_bytes = quota_bytes;
        Ok(machine)
    }

    fn apply_counting(&mut self, entry: &Entry) -> Response {
        let command = match &entry.payload {
            raft_core::EntryPayload::Command(data) => Command::decode(data).ok(),
            _ => None,
        };
        let restore = matches!(
            &command,
            Some(Command {
                body: CommandBody::Restore { .. } | CommandBody::RestoreChunk { last: true, .. },
                ..
            })
        );
        let key = command.as_ref().and_then(crate::quota::touched_key);
        let before = key.map_or(0, |key| crate::quota::StoreBytes::before(&self.store, key));
        let response = self.store.apply(entry);
        if let Some(key) = key {
            self.bytes.after(&self.store, key, before);
        } else if restore {
            self.bytes = crate::quota::StoreBytes::count(&self.store);
        }
        response
    }

    /// The store itself, for tests and status.
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// The store's clock as of the last apply or restore, shared with whoever stamps commands.
    pub fn store_clock(&self) -> crate::session_clock::StoreClock {
        std::sync::Arc::clone(&self.clock)
    }

    fn publish_clock(&self) {
        self.clock.store(self.store.clock_ms(), std::sync::atomic::Ordering::Release);
    }
}

/// Encodes a response for the trip from the core task to the API layer.
pub fn encode_response(response: &Response) -> Bytes {
    Bytes::from(postcard::to_allocvec(response).unwrap_or_default())
}

/// Decodes what [`encode_response`] produced.
///
/// # Errors
/// A message if the bytes are not a response (a bug, never a client's doing).
pub fn decode_response(bytes: &[u8]) -> Result<Response, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("undecodable state-machine response: {e}"))
}

/// Encodes a read-only operation for [`StateMachine::query`].
pub fn encode_query(operation: &Operation) -> Bytes {
    Bytes::from(postcard::to_allocvec(operation).unwrap_or_default())
}

impl StateMachine for KvStateMachine {
    fn apply(&mut self, entry: &Entry) -> Result<Bytes, String> {
        let applied = self.store.applied_index();
        if entry.index <= applied {
            // Already part of the state (restored from a snapshot): applying again would repeat.
            return Ok(Bytes::new());
        }
        if entry.index != applied.next() {
            return Err(format!("entry {} handed out after applied index {applied}", entry.index));
        }
        let response = self.apply_counting(entry);
        self.publish_clock();
        Ok(encode_response(&response))
    }

    fn applied_index(&self) -> LogIndex {
        self.store.applied_index()
    }

    fn query(&self, query: &[u8]) -> Bytes {
        let response = match postcard::from_bytes::<Operation>(query) {
            Ok(operation) if operation_touches_reserved(&operation) => Ok(Output::Value(None)),
            Ok(operation) => match self.store.read(&operation) {
                // Reserved keys are not part of the user keyspace: lists leave them out.
                Ok(Output::Keys { keys, truncated }) => Ok(Output::Keys {
                    keys: keys.into_iter().filter(|key| !is_reserved_key(key)).collect(),
                    truncated,
                }),
                other => other,
            },
            Err(_) => Err(raft_core::kv::KvError::NotReadOnly),
        };
        encode_response(&response)
    }

    fn snapshot(&self) -> Box<dyn Iterator<Item = Bytes> + Send> {
        Box::new(self.store.snapshot())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        restore_from_chunks(&mut self.store, [snapshot]).map_err(|e| e.to_string())?;
        self.bytes = crate::quota::StoreBytes::count(&self.store);
        self.publish_clock();
        Ok(())
    }

    fn bytes(&self) -> u64 {
        self.bytes.0
    }

    fn quota_bytes(&self) -> u64 {
        self.quota_bytes
    }

    fn peer_addresses(&self) -> Vec<(NodeId, String)> {
        self.store
            .iter_prefix(ADDRESS_KEY_PREFIX)
            .filter_map(|(key, value)| parse_address(key, value))
            .collect()
    }

    fn restore_piece_command(&self, piece: crate::restore::RestorePiece) -> Option<Bytes> {
        // The store's own clock, never a wall clock (see crate::session_clock): a restore moves
        // no session's time.
        let timestamp_ms = self.store.clock_ms();
        Some(Command { timestamp_ms, body: piece.into_body() }.encode())
    }

    fn refuse_client_command(&self, command: &[u8]) -> Option<String> {
        let command = Command::decode(command).ok()?;
        match &command.body {
            CommandBody::Request { operation, .. } if operation_touches_reserved(operation) => {
                Some(reserved_key_message())
            }
            _ => crate::quota::refuse_over_quota(&command, self.bytes, self.quota_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::kv::{ClientId, Command, Output};
    use raft_core::{EntryPayload, Term};

    fn entry(index: u64, command: &Command) -> Entry {
        Entry { term: Term(1), index: LogIndex(index), payload: EntryPayload::Command(command.encode()) }
    }

    #[test]
    fn applies_in_order_refuses_gaps_and_skips_what_a_snapshot_holds() {
        let mut machine = KvStateMachine::new(KvConfig::default()).unwrap();
        let put = Operation::Put { key: Bytes::from("k"), value: Bytes::from("v") };
        let response = machine.apply(&entry(1, &Command::unsessioned(1, put.clone()))).unwrap();
        assert_eq!(decode_response(&response).unwrap(), Ok(Output::Written));
        assert!(machine.apply(&entry(3, &Command::unsessioned(2, put.clone()))).is_err());
        let snapshot: Vec<u8> = machine.snapshot().flat_map(|chunk| chunk.to_vec()).collect();
        let mut copy = KvStateMachine::new(KvConfig::default()).unwrap();
        copy.restore(&snapshot).unwrap();
        assert_eq!(copy.applied_index(), LogIndex(1));
        // A replayed entry that the snapshot already covers is not applied twice.
        assert!(copy.apply(&entry(1, &Command::unsessioned(1, put.clone()))).unwrap().is_empty());
        let get = encode_query(&Operation::Get { key: Bytes::from("k") });
        assert_eq!(decode_response(&copy.query(&get)).unwrap(), Ok(Output::Value(Some(Bytes::from("v")))));
        assert!(copy.restore(b"garbage").is_err());
        assert_eq!(copy.applied_index(), LogIndex(1));
        let record = address_record(NodeId(4), "127.0.0.1:7004");
        assert_eq!(parse_address_record(&record), Some((NodeId(4), "127.0.0.1:7004".to_string())));
        assert_eq!(parse_address_record(&Command::unsessioned(1, put.clone()).encode()), None);
        copy.apply(&entry(2, &Command::decode(&record).unwrap())).unwrap();
        assert_eq!(copy.peer_addresses(), vec![(NodeId(4), "127.0.0.1:7004".to_string())]);
        let _ = ClientId(0);
    }
}
