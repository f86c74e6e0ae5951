//! Client reads through a chosen server ([`crate::sim::Input::Read`]), served the way a real
//! driver serves them (see the driver's contract in the crate guide): the server's node is asked
//! for a read index with [`crate::RaftNode::read`]; when a [`crate::Ready`]'s `read_states`
//! give one, the read is answered as soon as that server's state machine has applied it
//! (thesis §6.4 step 4). A refused read index (no leader, leadership lost, timed out) is an
//! answer too: the client learns the read failed.
//!
//! The value comes from the server's own applied state: a key-value view of its
//! [`SimStateMachine`], kept per server and brought up to date only when a read is answered.
//! Applied commands are always a prefix of the one committed sequence (State Machine Safety,
//! §5.4.3), so the view only ever extends; when the machine was rebuilt from an older snapshot
//! (shorter than the view) or its last command differs (only possible after a safety
//! violation), the view starts over.

use crate::kv::{KvConfig, KvStore};
use crate::reads::{ReadError, ReadMode, ReadState};
use crate::sim::hash::trace_combine;
use crate::sim::machine::{split_command, SimStateMachine};
use crate::state_machine::StateMachine;
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, Term};
use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// Reads remembered per run; beyond it the oldest record is forgotten (and, if it was still
/// waiting, never answered).
pub const CLIENT_READS_MAX: usize = 65_536;

/// Request ids of client reads have this bit set, so they never meet the ids the key-value
/// workload gives its own reads on the same node (which count up from 1).
const REQUEST_ID_BIT: u64 = 1 << 63;

/// Why a client read got no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadFailure {
    /// The server's node refused a read index.
    Refused(ReadError),
    /// The server was down or paused when asked: nobody took the request.
    NotRunning,
    /// The server crashed while the read waited.
    Crashed,
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFailure::Refused(error) => write!(f, "{error}"),
            ReadFailure::NotRunning => f.write_str("the server is not running"),
            ReadFailure::Crashed => f.write_str("the server crashed before answering"),
        }
    }
}

/// One client read and, once it came, its answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientRead {
    /// Its id, in the order the reads were asked (0 first).
    pub id: u64,
    /// The server asked.
    pub node: NodeId,
    /// The key.
    pub key: Bytes,
    /// How the server checks the read.
    pub mode: ReadMode,
    /// When it was asked.
    pub asked_ms: u64,
    /// The read index the server's node gave, once it gave one.
    pub read_index: Option<LogIndex>,
    /// When it was answered, `None` while it waits.
    pub answered_ms: Option<u64>,
    /// The answer: the key's value (`None` if absent) or why there is none.
    pub answer: Option<Result<Option<Bytes>, ReadFailure>>,
    /// A lease read asked while the server's clock was outside the drift bound: it had been
    /// paused (no ticks) within the last election timeout, so its lease may count time it did
    /// not see pass. The guide's rule 3 for lease reads does not hold, and the checks leave the
    /// answer alone.
    pub beyond_drift_bound: bool,
}

/// A server's key-value state, built from its applied commands up to byte `end` of their
/// encoding ([`SimStateMachine::encoded_commands`]).
#[derive(Clone, Debug)]
struct KvView {
    store: KvStore,
    /// Commands applied to the store.
    commands: u64,
    /// Where in the machine's encoded commands the view stopped.
    end: usize,
    /// The encoding of the last command the view applied: the machine must still hold it just
    /// before `end` for the view to extend.
    tail: Vec<u8>,
}

impl KvView {
    fn new() -> Option<KvView> {
        Some(KvView { store: KvStore::new(KvConfig::default()).ok()?, commands: 0, end: 0, tail: Vec::new() })
    }

    /// Brings the view up to `machine`'s applied commands.
    fn sync(&mut self, machine: &SimStateMachine) {
        let encoded = machine.encoded_commands();
        let extends = self.end <= encoded.len() && encoded[..self.end].ends_with(&self.tail);
        if !extends {
            if let Some(fresh) = KvView::new() {
                *self = fresh;
            }
        }
        let mut rest = &encoded[self.end..];
        let mut last_start = None;
        while let Some((data, after)) = split_command(rest) {
            last_start = Some(encoded.len() - rest.len());
            rest = after;
            // The store wants consecutive indexes; no-ops and configurations are not kept by the
            // machine, so commands number themselves. Plain (non key-value) proposals only
            // answer a decode error.
            self.commands += 1;
            let entry = Entry {
                term: Term(1),
                index: LogIndex(self.commands),
                payload: EntryPayload::Command(Bytes::copy_from_slice(data)),
            };
            let _ = self.store.apply(&entry);
        }
        self.end = encoded.len() - rest.len();
        if let Some(start) = last_start {
            self.tail = encoded[start..self.end].to_vec();
        }
    }
}

/// The client reads of a run: their records, the reads waiting at each server, and each
/// server's key-value view.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientReads {
    /// Every read remembered, oldest first; `records[k]` has id `first_id + k`.
    records: VecDeque<ClientRead>,
    first_id: u64,
    answered: u64,
    /// Per server: reads waiting for a read index, by request id.
    asked: BTreeSet<(usize, u64)>,
    /// Per server: reads with a read index, waiting for the state machine to apply it.
    ready: BTreeSet<(usize, LogIndex, u64)>,
    views: Vec<Option<KvView>>,
}

impl ClientReads {
    /// Records a new read asked at `now` and returns the request id to give the node.
    pub(crate) fn ask(&mut self, node: NodeId, key: Bytes, mode: ReadMode, now: u64) -> u64 {
        if self.records.len() == CLIENT_READS_MAX {
            self.records.pop_front();
            self.first_id += 1;
        }
        let id = self.first_id + self.records.len() as u64;
        self.records.push_back(ClientRead {
            id,
            node,
            key,
            mode,
            asked_ms: now,
            read_index: None,
            answered_ms: None,
            answer: None,
            beyond_drift_bound: false,
        });
        id | REQUEST_ID_BIT
    }

    /// The lease read `request_id` was asked beyond the drift bound (see
    /// [`ClientRead::beyond_drift_bound`]).
    pub(crate) fn beyond_drift_bound(&mut self, request_id: u64) {
        if let Some(read) = self.record_mut(request_id) {
            read.beyond_drift_bound = true;
        }
    }

    /// The node of server `k` was asked for a read index under `request_id`.
    pub(crate) fn waiting(&mut self, k: usize, request_id: u64) {
        self.asked.insert((k, request_id));
    }

    /// Answers a read that never reached a node.
    pub(crate) fn fail(&mut self, request_id: u64, failure: ReadFailure, now: u64, trace: &mut u64) {
        self.answer(request_id, Err(failure), now, trace);
    }

    /// Server `k`'s node answered read indexes: serve those it has applied, keep the others.
    pub(crate) fn read_states(
        &mut self,
        k: usize,
        states: &[ReadState],
        machine: &SimStateMachine,
        store: Option<&KvStore>,
        now: u64,
        trace: &mut u64,
    ) {
        for state in states {
            if !self.asked.remove(&(k, state.request_id)) {
                continue; // The workload's, or forgotten.
            }
            match state.result {
                Ok(index) => {
                    if let Some(read) = self.record_mut(state.request_id) {
                        read.read_index = Some(index);
                    }
                    self.ready.insert((k, index, state.request_id));
                }
                Err(error) => self.answer(state.request_id, Err(ReadFailure::Refused(error)), now, trace),
            }
        }
        self.applied(k, machine, store, now, trace);
    }

    /// Server `k`'s state machine moved: answer every read whose index it has applied, from
    /// `store` when the server runs the kv workload's store (the real one: its sessions are
    /// numbered by log index, which the view, numbering commands itself, cannot reproduce, so
    /// the view would miss every session write), from the view of `machine` otherwise.
    pub(crate) fn applied(
        &mut self,
        k: usize,
        machine: &SimStateMachine,
        store: Option<&KvStore>,
        now: u64,
        trace: &mut u64,
    ) {
        if self.ready.is_empty() {
            return; // The common case, after every persisted batch: nothing to look up.
        }
        let due: Vec<(LogIndex, u64)> = self
            .ready
            .range((k, LogIndex(0), 0)..=(k, machine.applied, u64::MAX))
            .map(|&(_, index, request_id)| (index, request_id))
            .collect();
        if due.is_empty() {
            return;
        }
        if self.views.len() <= k {
            self.views.resize_with(k + 1, || None);
        }
        if self.views[k].is_none() && store.is_none() {
            self.views[k] = KvView::new();
        }
        let store = match (store, self.views[k].as_mut()) {
            (Some(store), _) => store,
            (None, Some(view)) => {
                view.sync(machine);
                &view.store
            }
            (None, None) => return,
        };
        let mut answers = Vec::with_capacity(due.len());
        for (index, request_id) in due {
            self.ready.remove(&(k, index, request_id));
            let position = position(self.first_id, request_id);
            let key = position.and_then(|p| self.records.get(p)).map(|read| &read.key);
            let value = key.and_then(|key| store.get(key).cloned());
            answers.push((request_id, value));
        }
        for (request_id, value) in answers {
            self.answer(request_id, Ok(value), now, trace);
        }
    }

    /// Server `k` crashed: its waiting reads fail.
    pub(crate) fn crashed(&mut self, k: usize, now: u64, trace: &mut u64) {
        let asked: Vec<u64> = self.asked.range((k, 0)..=(k, u64::MAX)).map(|&(_, id)| id).collect();
        let ready: Vec<(LogIndex, u64)> = self
            .ready
            .range((k, LogIndex(0), 0)..=(k, LogIndex(u64::MAX), u64::MAX))
            .map(|&(_, index, id)| (index, id))
            .collect();
        for request_id in asked {
            self.asked.remove(&(k, request_id));
            self.answer(request_id, Err(ReadFailure::Crashed), now, trace);
        }
        for (index, request_id) in ready {
            self.ready.remove(&(k, index, request_id));
            self.answer(request_id, Err(ReadFailure::Crashed), now, trace);
        }
    }

    fn answer(
        &mut self,
        request_id: u64,
        answer: Result<Option<Bytes>, ReadFailure>,
        now: u64,
        trace: &mut u64,
    ) {
        let Some(read) = self.record_mut(request_id) else {
            return;
        };
        if read.answer.is_some() {
            return;
        }
        *trace = trace_combine(*trace, &(now, 'r', read.id, &answer, read.read_index));
        read.answered_ms = Some(now);
        read.answer = Some(answer);
        self.answered += 1;
    }

    fn record_mut(&mut self, request_id: u64) -> Option<&mut ClientRead> {
        self.records.get_mut(position(self.first_id, request_id)?)
    }

    /// Every read remembered, oldest first.
    pub(crate) fn records(&self) -> &VecDeque<ClientRead> {
        &self.records
    }

    /// The read with id `id`, if still remembered.
    pub(crate) fn get(&self, id: u64) -> Option<&ClientRead> {
        self.records.get(position(self.first_id, id)?)
    }

    /// Reads asked so far (the next read's id).
    pub(crate) fn asked_total(&self) -> u64 {
        self.first_id + self.records.len() as u64
    }

    /// Reads answered so far.
    pub(crate) fn answered_total(&self) -> u64 {
        self.answered
    }
}

/// Where the read with `id` (or its request id) sits among records starting at `first_id`.
fn position(first_id: u64, id: u64) -> Option<usize> {
    usize::try_from((id & !REQUEST_ID_BIT).checked_sub(first_id)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Command, CommandBody, Operation};

    fn put(key: &str, value: &str) -> Bytes {
        let operation = Operation::Put {
            key: Bytes::from(key.as_bytes().to_vec()),
            value: Bytes::from(value.as_bytes().to_vec()),
        };
        Command { timestamp_ms: 0, body: CommandBody::Request { session: None, operation } }.encode()
    }

    fn machine(commands: &[Bytes]) -> SimStateMachine {
        let mut machine = SimStateMachine::default();
        for (k, data) in commands.iter().enumerate() {
            let payload = EntryPayload::Command(data.clone());
            machine.apply(&Entry { term: Term(1), index: LogIndex(k as u64 + 1), payload });
        }
        machine
    }

    #[test]
    fn the_view_extends_and_starts_over_when_the_machine_goes_back() {
        let mut view = KvView::new().unwrap();
        view.sync(&machine(&[put("x", "1")]));
        view.sync(&machine(&[put("x", "1"), put("x", "2"), Bytes::from_static(b"plain")]));
        assert_eq!(view.store.get(b"x").map(|v| &v[..]), Some(&b"2"[..]));
        assert_eq!(view.commands, 3);
        // Restored from an older snapshot: shorter than the view.
        view.sync(&machine(&[put("x", "1")]));
        assert_eq!(view.store.get(b"x").map(|v| &v[..]), Some(&b"1"[..]));
        // A different history of the same length (a safety violation): rebuilt too.
        view.sync(&machine(&[put("y", "7")]));
        assert_eq!(view.store.get(b"x"), None);
        assert_eq!(view.store.get(b"y").map(|v| &v[..]), Some(&b"7"[..]));
    }

    #[test]
    fn a_read_waits_for_its_index_and_failures_are_answers() {
        let mut reads = ClientReads::default();
        let mut trace = 0;
        let key = Bytes::from_static(b"x");
        let a = reads.ask(NodeId(1), key.clone(), ReadMode::Linearizable, 5);
        let b = reads.ask(NodeId(1), key.clone(), ReadMode::Linearizable, 5);
        reads.waiting(0, a);
        reads.waiting(0, b);
        let states = [
            ReadState { request_id: a, result: Ok(LogIndex(2)) },
            ReadState { request_id: b, result: Err(ReadError::NoLeader) },
            ReadState { request_id: 3, result: Ok(LogIndex(1)) }, // not ours
        ];
        reads.read_states(0, &states, &machine(&[put("x", "1")]), None, 6, &mut trace);
        assert_eq!(reads.answered_total(), 1);
        assert_eq!(reads.get(1).unwrap().answer, Some(Err(ReadFailure::Refused(ReadError::NoLeader))));
        assert_eq!(reads.get(0).unwrap().answer, None, "index 2 is not applied yet");
        reads.applied(0, &machine(&[put("x", "1"), put("x", "2")]), None, 9, &mut trace);
        let read = reads.get(0).unwrap();
        assert_eq!(read.answer, Some(Ok(Some(Bytes::from_static(b"2")))));
        assert_eq!((read.read_index, read.answered_ms), (Some(LogIndex(2)), Some(9)));
        let c = reads.ask(NodeId(1), key, ReadMode::Lease, 10);
        reads.waiting(0, c);
        reads.crashed(0, 11, &mut trace);
        assert_eq!(reads.get(2).unwrap().answer, Some(Err(ReadFailure::Crashed)));
        assert_eq!(reads.asked_total(), 3);
        assert_ne!(trace, 0);
    }
}
