//! [`KvStore`]: the replicated key-value state machine, and its configuration.

use crate::error::ConfigError;
use crate::kv::command::{ClientId, Command, CommandBody, Operation, SessionRequest};
use crate::kv::key::Key;
use crate::kv::limits::{
    LIST_KEYS_MAX, LIST_RESPONSE_BYTES_MAX, RESERVED_KEY_PREFIX, RESTORE_CHUNK_BYTES_MAX,
};
use crate::kv::response::{KvError, Output, Response};
use crate::kv::session::Admission;
use crate::kv::snapshot::{KvRestore, KvSnapshot, KvState, SnapshotError};
use crate::kv::staging::StagedRestore;
use crate::state_machine::{SnapshotRestore, StateMachine};
use crate::types::{Entry, EntryPayload, LogIndex};
use alloc::boxed::Box;
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
    /// Everything replicated, a streamed restore being staged included (`crate::kv::staging`).
    state: KvState,
}

impl KvStore {
    /// An empty store.
    ///
    /// # Errors
    ///
    /// As [`KvConfig::validate`].
    pub fn new(config: KvConfig) -> Result<KvStore, ConfigError> {
        config.validate()?;
        Ok(KvStore { config, state: KvState::default() })
    }

    /// Whether a streamed restore is staged (its first piece applied, its last not yet). A
    /// snapshot taken meanwhile carries the staged pieces (a snapshot is the whole state at its
    /// index, thesis §5.1), so a driver may compact whenever it likes.
    pub fn restore_staged(&self) -> bool {
        self.state.staged.is_some()
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
        // Before the command: a piece that comes too late is refused, whatever it carries.
        let expired =
            self.state.staged.as_ref().and_then(|staged| Some((staged.id, staged.expired(clock_ms)?)));
        if expired.is_some() {
            self.state.staged = None;
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
                let expired = expired.filter(|(id, _)| *id == restore_id).map(|(_, why)| why);
                self.restore_chunk(restore_id, sequence, &data, last, clock_ms).map_err(|error| match expired
                {
                    Some(why) => KvError::RestoreRejected {
                        reason: alloc::format!("restore {restore_id} was dropped: {why}"),
                    },
                    None => error,
                })
            }
            CommandBody::RestoreAbort { restore_id } => {
                if self.state.staged.as_ref().is_some_and(|staged| staged.id == restore_id) {
                    self.state.staged = None;
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

    /// Swaps in a user snapshot's data and sessions (see [`KvStore::swap_in_backup`]).
    fn restore_user_snapshot(&mut self, snapshot: &[u8]) -> Response {
        let rejected = |error: SnapshotError| KvError::RestoreRejected { reason: alloc::format!("{error}") };
        let mut restore = KvRestore::of_backup(self.config);
        restore.write_chunk(snapshot).map_err(rejected)?;
        let state = restore.finish().map_err(rejected)?;
        self.swap_in_backup(state).map_err(|reason| KvError::RestoreRejected { reason })?;
        Ok(Output::Restored)
    }

    /// Stages one piece of a streamed restore; the last piece swaps the whole snapshot in (see
    /// [`KvStore::swap_in_backup`]). Reads see the old state until then, the new one after:
    /// never a mix.
    fn restore_chunk(&mut self, id: u64, sequence: u64, data: &[u8], last: bool, clock_ms: u64) -> Response {
        let rejected = |reason: alloc::string::String| KvError::RestoreRejected { reason };
        if data.len() > RESTORE_CHUNK_BYTES_MAX {
            return Err(rejected(alloc::format!("restore chunk of {} bytes is too large", data.len())));
        }
        if data.is_empty() && !last {
            // It would carry nothing but time: refused, so that it cannot keep a restore staged.
            return Err(rejected(alloc::format!(
                "piece {sequence} of restore {id} is empty and not the last"
            )));
        }
        if sequence == 0 {
            let restore = KvRestore::of_backup(self.config);
            self.state.staged = Some(Box::new(StagedRestore::start(id, clock_ms, restore)));
        }
        let Some(staged) = self.state.staged.as_mut().filter(|s| s.id == id && s.next_sequence == sequence)
        else {
            return Err(rejected(alloc::format!(
                "piece {sequence} of restore {id} does not follow the staged restore (superseded by a newer \
                 restore, aborted, dropped as idle or too long, or out of order)"
            )));
        };
        if let Err(error) = staged.restore.write_chunk(data) {
            self.state.staged = None;
            return Err(rejected(alloc::format!("{error}")));
        }
        staged.next_sequence += 1;
        // Saturating: a crafted snapshot may carry any count.
        staged.bytes = staged.bytes.saturating_add(data.len() as u64);
        staged.last_ms = clock_ms;
        if !last {
            return Ok(Output::RestoreStaged { bytes: staged.bytes });
        }
        let Some(staged) = self.state.staged.take() else { return Ok(Output::RestoreAborted) };
        let state = staged.restore.finish().map_err(|error| rejected(alloc::format!("{error}")))?;
        self.swap_in_backup(state).map_err(rejected)?;
        Ok(Output::Restored)
    }

    /// Makes a user's backup's data the store's, by either restore command. The store's
    /// reserved keys ([`RESERVED_KEY_PREFIX`], the cluster's own records such as member
    /// addresses) are kept and the backup's dropped: a user's backup cannot bring internal
    /// records, and every driver gets this from the store itself. The log, not the backup, says
    /// where this store stands (applied index) and what time it is (the backup's clock is not
    /// taken, so a backup from the future cannot stall the log clock's rules); a streamed restore
    /// staged here stays staged.
    ///
    /// The client sessions stay this store's, and the backup's are dropped (thesis §6.3). A
    /// session id is the index of a `RegisterClient` entry *in the log that assigned it*, and its
    /// cached reply is what that log answered; nothing in a backup proves it comes from this log
    /// (another cluster, an older incarnation, a log rebuilt since), so a backup's session could
    /// name a different client here and answer it with a stranger's cached reply: a lost or
    /// doubled write. This log's own sessions name this log's clients, and their cached replies
    /// are true (each request took effect before the restore, in log order), so they carry on:
    /// a retry is still answered once, a new request applies to the restored data. A client known
    /// only to the backup gets `UnknownSession` (or `SessionExpired`) here and registers again;
    /// never a wrong reply. Decided from the log alone, so every replica keeps the same table.
    ///
    /// Refused (the store unchanged) when the backup's keys with this store's reserved ones
    /// would pass `keys_max`: that state's snapshot would be refused by every reader.
    fn swap_in_backup(&mut self, mut state: KvState) -> Result<(), alloc::string::String> {
        state.data.retain(|key, _| !key.bytes().starts_with(RESERVED_KEY_PREFIX));
        let ours = self
            .state
            .data
            .range::<[u8], _>((Bound::Included(RESERVED_KEY_PREFIX), Bound::Unbounded))
            .take_while(|(key, _)| key.bytes().starts_with(RESERVED_KEY_PREFIX));
        for (key, value) in ours {
            state.data.insert(key.clone(), value.clone());
        }
        if state.data.len() as u64 > self.config.keys_max {
            return Err(alloc::format!(
                "the backup's {} keys with this store's internal records pass keys_max {}",
                state.data.len(),
                self.config.keys_max
            ));
        }
        state.applied_index = self.state.applied_index;
        state.clock_ms = self.state.clock_ms;
        state.sessions = core::mem::take(&mut self.state.sessions);
        state.staged = self.state.staged.take();
        self.state = state;
        Ok(())
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

    /// Installs the whole state, a staged restore included (or none, if none was staged).
    fn finish_restore(&mut self, restore: KvRestore) -> Result<(), SnapshotError> {
        self.state = restore.finish()?;
        Ok(())
    }
}
