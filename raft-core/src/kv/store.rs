//! [`KvStore`]: the replicated key-value state machine, and its configuration.

use crate::error::ConfigError;
use crate::kv::command::{ClientId, Command, CommandBody, Operation, SessionRequest};
use crate::kv::key::Key;
use crate::kv::limits::{LIST_KEYS_MAX, LIST_RESPONSE_BYTES_MAX, RESERVED_KEY_PREFIX, RESTORE_IDLE_MS};
use crate::kv::response::{KvError, Output, Response};
use crate::kv::session::Admission;
use crate::kv::snapshot::{KvRestore, KvSnapshot, KvState, SnapshotError};
use crate::state_machine::{SnapshotRestore, StateMachine};
use crate::types::{Entry, EntryPayload, LogIndex};
use alloc::collections::btree_map::Entry as Slot;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::Bytes;
use core::ops::Bound;

/// How a [`KvStore`] behaves. **Every replica must use the same configuration**: these values
/// decide outcomes during `apply` (which session expires, whether a put fits), so replicas that
/// disagree would diverge. Treat it as part of the cluster's definition, like its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KvConfig {
    /// A session unused for longer than this, by the store's log clock, expires (thesis §6.3).
    pub session_timeout_ms: u64,
    /// The most live sessions; registering one more evicts the least recently used.
    pub sessions_max: u64,
    /// How many expired session ids to remember, to answer "expired" rather than "unknown".
    pub expired_sessions_remembered_max: u64,
    /// The most keys the store holds; a put of a new key beyond it fails with
    /// [`KvError::StoreFull`].
    pub keys_max: u64,
}

impl Default for KvConfig {
    fn default() -> KvConfig {
        KvConfig {
            session_timeout_ms: 60_000,
            sessions_max: 1024,
            expired_sessions_remembered_max: 1024,
            keys_max: 1 << 20,
        }
    }
}

impl KvConfig {
    /// Checks that the configuration can work.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] naming a limit that must be positive and is zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.session_timeout_ms == 0 {
            return Err(ConfigError::ZeroLimit("session_timeout_ms"));
        }
        if self.sessions_max == 0 {
            return Err(ConfigError::ZeroLimit("sessions_max"));
        }
        if self.keys_max == 0 {
            return Err(ConfigError::ZeroLimit("keys_max"));
        }
        Ok(())
    }

    fn sessions_capacity(&self) -> usize {
        usize::try_from(self.sessions_max).unwrap_or(usize::MAX)
    }

    fn expired_capacity(&self) -> usize {
        usize::try_from(self.expired_sessions_remembered_max).unwrap_or(usize::MAX)
    }
}

/// The replicated key-value store with client sessions (thesis §6.3), as a [`StateMachine`].
///
/// Feed it every committed entry with [`StateMachine::apply`]; [`crate::EntryPayload::Command`]
/// entries must hold an encoded [`Command`]. Reads may also be served locally with
/// [`KvStore::read`] once the store has applied up to a read index (thesis §6.4).
#[derive(Clone, Debug)]
pub struct KvStore {
    config: KvConfig,
    state: KvState,
    /// A streamed restore being received (see [`CommandBody::RestoreChunk`]). Not part of the
    /// snapshot: a driver must not take a snapshot while one is staged
    /// ([`KvStore::restore_staged`]), so that replaying the log after its last snapshot always
    /// sees every piece again.
    staged: Option<StagedRestore>,
}

/// The pieces of a streamed restore received so far, decoded as they arrive: memory grows with
/// the store being built, never with a second copy of the raw snapshot.
#[derive(Clone, Debug)]
struct StagedRestore {
    id: u64,
    next_sequence: u64,
    bytes: u64,
    /// The log clock when the last piece was applied, for [`RESTORE_IDLE_MS`].
    last_ms: u64,
    restore: KvRestore,
}

impl KvStore {
    /// An empty store.
    ///
    /// # Errors
    ///
    /// As [`KvConfig::validate`].
    pub fn new(config: KvConfig) -> Result<KvStore, ConfigError> {
        config.validate()?;
        Ok(KvStore { config, state: KvState::default(), staged: None })
    }

    /// Whether a streamed restore is staged (its first piece applied, its last not yet). A
    /// driver defers its snapshots meanwhile: the staged pieces are not in the snapshot, so a
    /// snapshot taken now and replayed from would lose them (Raft §7: a snapshot must capture
    /// the whole state at its index).
    pub fn restore_staged(&self) -> bool {
        self.staged.is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &KvConfig {
        &self.config
    }

    /// The store's clock: the largest command timestamp applied so far, in milliseconds.
    pub fn clock_ms(&self) -> u64 {
        self.state.clock_ms
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.state.data.len()
    }

    /// Whether the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.state.data.is_empty()
    }

    /// The value of `key`, read locally.
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.state.data.get(key)
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.state.data.iter().map(|(key, value)| (key.bytes(), value))
    }

    /// The keys starting with `prefix` and their values, in key order: a range of the tree,
    /// not a scan of every key (drivers read their address records this way).
    pub fn iter_prefix<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a Bytes, &'a Bytes)> + 'a {
        self.state
            .data
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(key, value)| (key.bytes(), value))
            .take_while(move |(key, _)| key.starts_with(prefix))
    }

    /// The number of live sessions.
    pub fn session_count(&self) -> usize {
        self.state.sessions.live().len()
    }

    /// Whether `client_id` names a live session.
    pub fn is_session_live(&self, client_id: ClientId) -> bool {
        self.state.sessions.is_live(client_id)
    }

    /// Serves a read-only operation from the local state, without the log: for ReadIndex and
    /// lease reads (thesis §6.4), once this store has applied up to the read index.
    ///
    /// # Errors
    ///
    /// [`KvError::NotReadOnly`] for a write; size-limit errors as when applied.
    pub fn read(&self, operation: &Operation) -> Response {
        operation.validate()?;
        match operation {
            Operation::Get { key } => Ok(Output::Value(self.state.data.get(&Key::new(key.clone())).cloned())),
            Operation::List { prefix, start_after, limit } => {
                Ok(list(&self.state.data, prefix, start_after.as_ref(), *limit))
            }
            Operation::Put { .. } | Operation::Delete { .. } | Operation::CompareAndSwap { .. } => {
                Err(KvError::NotReadOnly)
            }
        }
    }

    fn apply_command(&mut self, index: LogIndex, bytes: &[u8]) -> Response {
        let command = Command::decode(bytes).map_err(KvError::Decode)?;
        // The log clock: the largest proposer timestamp so far, identical on every replica and
        // monotonic even when a new leader's clock is behind the old one's (thesis §6.3).
        self.state.clock_ms = self.state.clock_ms.max(command.timestamp_ms);
        let clock_ms = self.state.clock_ms;
        let remembered_max = self.config.expired_capacity();
        self.state.sessions.expire_idle(clock_ms, self.config.session_timeout_ms, remembered_max);
        if self
            .staged
            .as_ref()
            .is_some_and(|staged| clock_ms.saturating_sub(staged.last_ms) > RESTORE_IDLE_MS)
        {
            self.staged = None;
        }
        match command.body {
            CommandBody::RegisterClient => {
                let client_id = ClientId::from(index);
                let sessions_max = self.config.sessions_capacity();
                self.state.sessions.register(client_id, clock_ms, sessions_max, remembered_max);
                Ok(Output::Registered { client_id })
            }
            CommandBody::CloseSession { client_id } => {
                self.state.sessions.close(client_id).map(|()| Output::SessionClosed)
            }
            CommandBody::Restore { snapshot } => self.restore_user_snapshot(&snapshot),
            CommandBody::RestoreChunk { restore_id, sequence, data, last } => {
                self.restore_chunk(restore_id, sequence, &data, last, clock_ms)
            }
            CommandBody::RestoreAbort { restore_id } => {
                if self.staged.as_ref().is_some_and(|staged| staged.id == restore_id) {
                    self.staged = None;
                }
                Ok(Output::RestoreAborted)
            }
            CommandBody::Request { session: None, operation } => self.execute(&operation),
            CommandBody::Request { session: Some(SessionRequest { client_id, sequence }), operation } => {
                match self.state.sessions.admit(client_id, sequence, clock_ms) {
                    Admission::Apply => {}
                    Admission::Cached(response) => return response.clone(),
                    Admission::Refused(error) => return Err(error),
                }
                let response = self.execute(&operation);
                self.state.sessions.record(client_id, sequence, response.clone());
                response
            }
        }
    }

    /// Swaps in a user snapshot's data and sessions. The log, not the snapshot, says where this
    /// store stands (applied index) and what time it is (the clock never goes back).
    fn restore_user_snapshot(&mut self, snapshot: &[u8]) -> Response {
        let rejected = |error: SnapshotError| KvError::RestoreRejected { reason: alloc::format!("{error}") };
        let mut restore = KvRestore::new(self.config);
        restore.write_chunk(snapshot).map_err(rejected)?;
        let state = restore.finish().map_err(rejected)?;
        self.swap_in(state);
        Ok(Output::Restored)
    }

    /// Stages one piece of a streamed restore; the last piece swaps the whole snapshot in, with
    /// this store's reserved keys kept and the snapshot's dropped (a user's backup cannot bring
    /// internal records). Reads see the old state until then, the new one after: never a mix.
    fn restore_chunk(&mut self, id: u64, sequence: u64, data: &[u8], last: bool, clock_ms: u64) -> Response {
        let rejected = |reason: alloc::string::String| KvError::RestoreRejected { reason };
        if data.len() > crate::kv::limits::RESTORE_CHUNK_BYTES_MAX {
            return Err(rejected(alloc::format!("restore chunk of {} bytes is too large", data.len())));
        }
        if sequence == 0 {
            let restore = KvRestore::new(self.config);
            self.staged = Some(StagedRestore { id, next_sequence: 0, bytes: 0, last_ms: clock_ms, restore });
        }
        let Some(staged) = self.staged.as_mut().filter(|s| s.id == id && s.next_sequence == sequence) else {
            return Err(rejected(alloc::format!(
                "piece {sequence} of restore {id} does not follow the staged restore (superseded by a newer \
                 restore, aborted, idle for over {RESTORE_IDLE_MS} ms, or out of order)"
            )));
        };
        if let Err(error) = staged.restore.write_chunk(data) {
            self.staged = None;
            return Err(rejected(alloc::format!("{error}")));
        }
        staged.next_sequence += 1;
        staged.bytes += data.len() as u64;
        staged.last_ms = clock_ms;
        if !last {
            return Ok(Output::RestoreStaged { bytes: staged.bytes });
        }
        let Some(staged) = self.staged.take() else { return Ok(Output::RestoreAborted) };
        let mut state = staged.restore.finish().map_err(|error| rejected(alloc::format!("{error}")))?;
        state.data.retain(|key, _| !key.bytes().starts_with(RESERVED_KEY_PREFIX));
        let ours = self
            .state
            .data
            .range::<[u8], _>((Bound::Included(RESERVED_KEY_PREFIX), Bound::Unbounded))
            .take_while(|(key, _)| key.bytes().starts_with(RESERVED_KEY_PREFIX));
        for (key, value) in ours {
            state.data.insert(key.clone(), value.clone());
        }
        self.swap_in(state);
        Ok(Output::Restored)
    }

    /// Makes a restored snapshot's data and sessions the store's. The log, not the snapshot,
    /// says where this store stands (applied index) and what time it is (never back).
    fn swap_in(&mut self, mut state: KvState) {
        state.applied_index = self.state.applied_index;
        state.clock_ms = state.clock_ms.max(self.state.clock_ms);
        self.state = state;
    }

    fn execute(&mut self, operation: &Operation) -> Response {
        operation.validate()?;
        let data = &mut self.state.data;
        match operation {
            Operation::Get { .. } | Operation::List { .. } => self.read(operation),
            Operation::Put { key, value } => {
                write(data, key, value, self.config.keys_max)?;
                Ok(Output::Written)
            }
            Operation::Delete { key } => {
                Ok(Output::Deleted { existed: data.remove(&Key::new(key.clone())).is_some() })
            }
            Operation::CompareAndSwap { key, expected, new } => {
                let keys_max = self.config.keys_max;
                let full = data.len() as u64 >= keys_max;
                // One descent of the tree for the comparison and the write.
                match data.entry(Key::new(key.clone())) {
                    Slot::Occupied(mut slot) => {
                        if Some(slot.get()) != expected.as_ref() {
                            return Ok(Output::NotSwapped { current: Some(slot.get().clone()) });
                        }
                        slot.insert(new.clone());
                    }
                    Slot::Vacant(slot) => {
                        if expected.is_some() {
                            return Ok(Output::NotSwapped { current: None });
                        }
                        if full {
                            return Err(KvError::StoreFull { keys_max });
                        }
                        slot.insert(new.clone());
                    }
                }
                Ok(Output::Swapped)
            }
        }
    }
}

/// Sets `key` to `value` with a single descent of the tree (the lookup is the costly part of a
/// put: one cache miss per key compared); a new key is refused when the store holds
/// `keys_max` keys already.
fn write(data: &mut BTreeMap<Key, Bytes>, key: &Bytes, value: &Bytes, keys_max: u64) -> Result<(), KvError> {
    let full = data.len() as u64 >= keys_max;
    match data.entry(Key::new(key.clone())) {
        Slot::Occupied(mut slot) => {
            slot.insert(value.clone());
        }
        Slot::Vacant(slot) => {
            if full {
                return Err(KvError::StoreFull { keys_max });
            }
            slot.insert(value.clone());
        }
    }
    Ok(())
}

/// Keys starting with `prefix`, after `start_after`, at most `limit` of them and at most
/// [`LIST_RESPONSE_BYTES_MAX`] bytes of keys.
fn list(data: &BTreeMap<Key, Bytes>, prefix: &Bytes, start_after: Option<&Bytes>, limit: u32) -> Output {
    let keys_max = limit.min(LIST_KEYS_MAX) as usize;
    let start: Bound<&[u8]> = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    let mut matching = data.range::<[u8], _>((start, Bound::Unbounded)).map(|(key, _)| key.bytes());
    let mut matching = core::iter::from_fn(move || matching.next().filter(|key| key.starts_with(prefix)));
    let mut keys = Vec::new();
    let mut bytes = 0;
    let truncated = loop {
        let Some(key) = matching.next() else { break false };
        if keys.len() == keys_max || bytes + key.len() > LIST_RESPONSE_BYTES_MAX {
            break true;
        }
        bytes += key.len();
        keys.push(key.clone());
    };
    Output::Keys { keys, truncated }
}

impl StateMachine for KvStore {
    type Response = Response;
    type Snapshot = KvSnapshot;
    type Restore = KvRestore;
    type RestoreError = SnapshotError;

    /// Applies one committed entry. No-op and membership entries only advance the applied
    /// index and answer [`Output::NoCommand`]; command entries answer the command's response,
    /// an error response for bytes that are not a command.
    ///
    /// # Panics
    ///
    /// If `entry.index` is not `applied_index().next()` (the driver skipped or repeated an
    /// entry). Nothing a client sends can cause it.
    fn apply(&mut self, entry: &Entry) -> Response {
        assert_eq!(
            entry.index,
            self.state.applied_index.next(),
            "entries must be applied once each, in log order"
        );
        self.state.applied_index = entry.index;
        match &entry.payload {
            EntryPayload::Noop | EntryPayload::Membership(_) => Ok(Output::NoCommand),
            EntryPayload::Command(bytes) => self.apply_command(entry.index, bytes),
        }
    }

    fn applied_index(&self) -> LogIndex {
        self.state.applied_index
    }

    /// Copies the state (keys and values are reference-counted, so this copies the maps'
    /// structure, not the data) into a stream that encodes it lazily.
    fn snapshot(&self) -> KvSnapshot {
        KvSnapshot::new(self.state.clone())
    }

    fn begin_restore(&self) -> KvRestore {
        KvRestore::new(self.config)
    }

    fn finish_restore(&mut self, restore: KvRestore) -> Result<(), SnapshotError> {
        self.state = restore.finish()?;
        // A snapshot is only ever taken with no restore staged (see `restore_staged`), so the
        // state it installs has none either.
        self.staged = None;
        Ok(())
    }
}
