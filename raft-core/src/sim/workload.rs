//! A client workload for the simulator: clients that use the replicated key-value store the way
//! a client library would, and write down what they saw for the linearizability checker.
//!
//! **Clients.** Each of [`WorkloadConfig::clients`] clients registers a session (thesis §6.3,
//! `RegisterClient`), then issues one operation at a time — get, put, compare-and-swap or
//! delete on one of [`WorkloadConfig::keys`] keys — to the server it believes leads. A refusal
//! with a leader hint sends it there; a timeout sends it to another server. A write is retried
//! with the same session and sequence number, so the store applies it at most once. Every
//! operation goes into a [`HistoryBuilder`] with simulated invocation and completion times; a
//! write whose fate the client could not learn before [`WorkloadConfig::op_timeout_ms`] is
//! recorded as unknown.
//!
//! **Network.** Client i lives next to server `i mod n + 1` (its *home*): a request to server s
//! travels the link home → s and its answer s → home, with those links' latency and loss, and
//! not at all while the link is cut. So partitions put clients on one side, crashes and pauses
//! silence servers, and lost answers leave clients in doubt. Requests are never duplicated
//! (a client library sends once per attempt); answers may be.
//!
//! **Servers.** Each server runs a real [`KvStore`] beside the simulator's chain-hash machine
//! and snapshots both together. Writes go through the log as encoded [`Command`]s stamped with
//! the proposer's (simulated) time. Reads follow [`WorkloadConfig::read_mode`]: `Linearizable`
//! and `Lease` ask [`RaftNode::read`] for a read index on the server the client talks to and
//! answer from its store once it has applied that index (followers forward to the leader);
//! `Stale` answers from the server's store at once, whatever its role.
//!
//! **Audit.** Every write carries a value no other write uses, so the first time each log index
//! is applied anywhere, the audit can tell whether the store *executed* a write (the key took
//! its value) or answered a retry from the session cache. [`WorkloadStats::double_applications`]
//! counts writes executed twice; with sessions it must stay 0.

use crate::error::ProposeError;
use crate::kv::{ClientId, Command, CommandBody, KvConfig, KvError, KvStore, Operation, Output, Response};
use crate::linearizability::{History, HistoryBuilder, Observed, Op, OpId};
use crate::node::RaftNode;
use crate::reads::{ReadError, ReadMode, ReadState};
use crate::rng::Rng;
use crate::sim::config::{LinkConfig, SimConfig};
use crate::sim::machine::SimStateMachine;
use crate::state_machine::{restore_from_chunks, StateMachine};
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, Term};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// The most clients a workload runs.
pub const CLIENTS_MAX: usize = 256;

/// The most keys a workload uses.
pub const KEYS_MAX: usize = 1_000;

/// Requests one server keeps waiting (for a commit or a read index) at most; beyond it the
/// server answers "busy" and the client backs off.
pub const SERVER_PENDING_MAX: usize = 4_096;

/// Reads one server keeps waiting for a read index at most; beyond it the oldest is forgotten
/// (its client gave up long ago). A read index can fail to come: the engine does not answer a
/// forwarded read whose message was lost until the follower's leader changes.
pub const SERVER_READS_WAITING_MAX: usize = 1_024;

/// Wait before retrying at a server named by a leader hint.
const REDIRECT_BACKOFF_MS: u64 = 1;
/// Wait before retrying when nobody knows a leader, or the server was busy.
const NO_LEADER_BACKOFF_MS: u64 = 30;

/// What a client does with a write it has to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetrySafety {
    /// Writes carry the client's session and sequence number: a retry is applied at most once
    /// (thesis §6.3).
    Sessions,
    /// Writes carry no session, so a retry after a lost answer may be applied twice. Unsafe on
    /// purpose: it shows that the audit notices.
    NoSessions,
}

/// Which server a client sends its reads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadsFrom {
    /// The server it believes leads, like its writes.
    Leader,
    /// A random server for every attempt: followers serve reads too (forwarding ReadIndex to
    /// the leader in the linearizable and lease modes).
    AnyServer,
}

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadConfig {
    /// Number of clients, 1 to [`CLIENTS_MAX`].
    pub clients: usize,
    /// Number of keys, 1 to [`KEYS_MAX`]; each operation picks one at random.
    pub keys: usize,
    /// How servers serve reads.
    pub read_mode: ReadMode,
    /// A client waits a random time in `[0, think_ms_max]` between operations.
    pub think_ms_max: u64,
    /// A request unanswered for this long is retried at another server.
    pub request_timeout_ms: u64,
    /// A client gives up on an operation this long after invoking it (a write's outcome is
    /// then unknown).
    pub op_timeout_ms: u64,
    /// Whether writes are retried inside a session.
    pub retry_safety: RetrySafety,
    /// Where reads go.
    pub reads_from: ReadsFrom,
    /// Clients invoke no new operation from this simulated time on (`None`: they never stop).
    pub stop_ms: Option<u64>,
}

impl WorkloadConfig {
    /// `clients` clients on 10 keys, reading in `read_mode`, with sessions.
    pub fn new(clients: usize, read_mode: ReadMode) -> WorkloadConfig {
        WorkloadConfig {
            clients,
            keys: 10,
            read_mode,
            think_ms_max: 400,
            request_timeout_ms: 250,
            op_timeout_ms: 2_000,
            retry_safety: RetrySafety::Sessions,
            reads_from: ReadsFrom::Leader,
            stop_ms: None,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A lowercase description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return Err(format!("clients must be between 1 and {CLIENTS_MAX}"));
        }
        if self.keys == 0 || self.keys > KEYS_MAX {
            return Err(format!("keys must be between 1 and {KEYS_MAX}"));
        }
        if self.request_timeout_ms == 0 {
            return Err(String::from("request_timeout_ms must be positive"));
        }
        if self.op_timeout_ms < self.request_timeout_ms {
            return Err(String::from("op_timeout_ms below request_timeout_ms"));
        }
        Ok(())
    }
}

/// Counters of a workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    /// Operations invoked (registrations not counted).
    pub ops: u64,
    /// Reads invoked.
    pub reads: u64,
    /// Operations that completed with an answer from the store.
    pub ok: u64,
    /// Operations that definitely did not take effect (refused, or given up without ever
    /// possibly reaching a log).
    pub failed: u64,
    /// Writes given up whose outcome is unknown.
    pub unknown: u64,
    /// Sessions registered (a client registers again after its session expired).
    pub registrations: u64,
    /// Requests sent again after a timeout, a refusal or a lost proposal.
    pub retries: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Refusals that named another server as leader.
    pub redirects: u64,
    /// Reads that got a read index refused (no leader, leadership lost).
    pub reads_refused: u64,
    /// Writes whose value reached the log in more than one entry: retries that a session cache
    /// had to answer.
    pub writes_retried_in_log: u64,
    /// Writes the store executed more than once. Must be 0 with [`RetrySafety::Sessions`].
    pub double_applications: u64,
    /// Answers a correct store never gives to this client (a stale sequence number).
    pub unexpected_answers: u64,
}

/// A request from a client to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Open a session.
    Register,
    /// A write through the log.
    Write {
        /// The session and sequence number, unless retries are unsafe.
        session: Option<(ClientId, u64)>,
        /// The operation.
        operation: Operation,
    },
    /// A read, served as the workload's read mode says.
    Read {
        /// The operation.
        operation: Operation,
    },
}

impl Request {
    fn is_write(&self) -> bool {
        !matches!(self, Request::Read { .. })
    }
}

/// A server's answer to one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The store's response: the write was applied (or answered from the session cache), or the
    /// read was served.
    Done(Response),
    /// Only the leader takes writes; the hint says who leads, if known.
    NotLeader(Option<NodeId>),
    /// The server could not take the request now (too much uncommitted, a transfer, too many
    /// waiting); nothing was proposed.
    Busy,
    /// The proposal's log entry was replaced by another leader's: it did not take effect.
    NotCommitted,
    /// The read got no read index.
    ReadRefused(ReadError),
}

/// A request on its way to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToServer {
    client: usize,
    attempt: u64,
    node: NodeId,
    request: Request,
}

/// An answer on its way to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToClient {
    client: usize,
    attempt: u64,
    node: NodeId,
    answer: Answer,
}

/// Something that happens to the workload at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WorkloadEvent {
    /// A client's timer: think time over, backoff over, or request timeout.
    Timer {
        /// The client.
        client: usize,
        /// Which of its timers; only the latest counts.
        timer: u64,
    },
    /// A request reaches its server.
    ToServer(ToServer),
    /// An answer reaches its client.
    ToClient(ToClient),
}

impl WorkloadEvent {
    /// The server the event happens at, if any.
    pub(crate) fn server(&self) -> Option<NodeId> {
        match self {
            WorkloadEvent::ToServer(message) => Some(message.node),
            WorkloadEvent::Timer { .. } | WorkloadEvent::ToClient(_) => None,
        }
    }

    /// A short summary for the trace hash.
    pub(crate) fn trace_key(&self) -> (u8, u64, u64, u64) {
        match self {
            WorkloadEvent::Timer { client, timer } => (0, *client as u64, *timer, 0),
            WorkloadEvent::ToServer(m) => (1, m.client as u64, m.attempt, m.node.0),
            WorkloadEvent::ToClient(m) => (2, m.client as u64, m.attempt, m.node.0),
        }
    }
}

/// Something the workload wants sent or scheduled; [`Workload::route`] puts it on the network.
#[derive(Clone, Debug)]
enum Outgoing {
    Timer { at_ms: u64, client: usize, timer: u64 },
    ToServer(ToServer),
    ToClient(ToClient),
}

/// An operation a client is working on.
#[derive(Clone, Debug)]
struct Outstanding {
    request: Request,
    /// The operation in the history; `None` for a registration.
    history: Option<OpId>,
    invoked_ms: u64,
    /// Whether some attempt may have reached a log without the client learning its fate.
    maybe_applied: bool,
}

#[derive(Clone, Debug)]
enum ClientState {
    /// Between operations; the timer starts the next one.
    Thinking,
    /// A request is out; the timer is its timeout.
    Waiting(Outstanding),
    /// Waiting before a retry; the timer sends it.
    BackingOff(Outstanding),
}

#[derive(Clone, Debug)]
struct Client {
    home: NodeId,
    /// The server it believes leads.
    target: NodeId,
    session: Option<ClientId>,
    /// The last sequence number used in the session.
    sequence: u64,
    /// Operations invoked, for unique values.
    invoked: u64,
    /// Bumped for every request sent; an answer counts only for the latest.
    attempt: u64,
    /// Bumped for every timer set; only the latest fires.
    timer: u64,
    state: ClientState,
    /// The last value seen per key, for compare-and-swap.
    seen: Vec<Option<Bytes>>,
}

#[derive(Clone, Copy, Debug)]
struct PendingWrite {
    term: Term,
    client: usize,
    attempt: u64,
}

#[derive(Clone, Debug)]
struct PendingRead {
    client: usize,
    attempt: u64,
    operation: Operation,
}

/// One server's side of the workload: its key-value store and the requests it is working on.
/// Everything but the store's snapshot is lost when the server crashes.
#[derive(Clone, Debug)]
struct KvServer {
    store: KvStore,
    /// Proposals waiting to be applied, by log index.
    writes: BTreeMap<LogIndex, PendingWrite>,
    /// Reads waiting for a read index, by request id.
    reads: BTreeMap<u64, PendingRead>,
    /// Reads with a read index, waiting for the store to apply it.
    reads_ready: BTreeMap<(LogIndex, u64), PendingRead>,
    /// Requests that arrived while the server was paused.
    held: VecDeque<ToServer>,
}

impl KvServer {
    fn new() -> KvServer {
        KvServer {
            store: new_store(),
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            reads_ready: BTreeMap::new(),
            held: VecDeque::new(),
        }
    }

    fn pending(&self) -> usize {
        self.writes.len() + self.reads.len() + self.reads_ready.len()
    }
}

fn new_store() -> KvStore {
    match KvStore::new(KvConfig::default()) {
        Ok(store) => store,
        Err(_) => unreachable!("the default key-value configuration is valid"),
    }
}

/// The writes the audit has seen: how many log entries carried each value, and how many times
/// the store executed it.
#[derive(Clone, Debug, Default)]
struct Audit {
    /// Every index up to here was audited (on whichever server applied it first).
    through: LogIndex,
    /// value → (entries carrying it, executions).
    writes: BTreeMap<Bytes, (u32, u32)>,
}

/// The clients, the servers' key-value stores, and the history (see the module docs).
#[derive(Clone, Debug)]
pub struct Workload {
    config: WorkloadConfig,
    node_ids: Vec<NodeId>,
    rng: Rng,
    clients: Vec<Client>,
    servers: Vec<KvServer>,
    history: HistoryBuilder,
    outbox: Vec<Outgoing>,
    next_read_id: u64,
    audit: Audit,
    stats: WorkloadStats,
    /// The key of the last write a client saw take effect.
    last_written_key: Option<Bytes>,
}

impl Workload {
    /// Clients for a cluster of `sim`'s servers; each starts after a random think time.
    ///
    /// # Errors
    /// A lowercase description if the configuration is invalid.
    pub(crate) fn new(config: WorkloadConfig, sim: &SimConfig) -> Result<Workload, String> {
        config.validate()?;
        let node_ids: Vec<NodeId> = sim.node_ids().collect();
        if node_ids.is_empty() {
            return Err(String::from("a workload needs servers"));
        }
        // A stream of its own, so the workload does not move the network's randomness.
        let mut rng = Rng::new(sim.seed ^ 0x776F_726B_6C6F_6164);
        let clients = (0..config.clients)
            .map(|c| {
                let home = node_ids[c % node_ids.len()];
                Client {
                    home,
                    target: node_ids[rng.range(0, node_ids.len() as u64) as usize],
                    session: None,
                    sequence: 0,
                    invoked: 0,
                    attempt: 0,
                    timer: 0,
                    state: ClientState::Thinking,
                    seen: alloc::vec![None; config.keys],
                }
            })
            .collect();
        let servers = node_ids.iter().map(|_| KvServer::new()).collect();
        let mut workload = Workload {
            config,
            node_ids,
            rng,
            clients,
            servers,
            history: HistoryBuilder::new(),
            outbox: Vec::new(),
            next_read_id: 0,
            audit: Audit::default(),
            stats: WorkloadStats::default(),
            last_written_key: None,
        };
        for c in 0..config.clients {
            workload.think(c, 0);
        }
        Ok(workload)
    }

    // ----- observers -------------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> WorkloadStats {
        self.stats
    }

    /// The history so far; operations still in progress have an unknown outcome.
    pub fn history(&self) -> History {
        self.history.clone().build()
    }

    /// Server `id`'s key-value store.
    pub fn store(&self, id: NodeId) -> Option<&KvStore> {
        let k = self.node_ids.iter().position(|&n| n == id)?;
        Some(&self.servers[k].store)
    }

    // ----- clients ---------------------------------------------------------------------------

    fn set_timer(&mut self, c: usize, at_ms: u64) {
        let client = &mut self.clients[c];
        client.timer += 1;
        self.outbox.push(Outgoing::Timer { at_ms, client: c, timer: client.timer });
    }

    fn think(&mut self, c: usize, now: u64) {
        self.clients[c].state = ClientState::Thinking;
        let delay = self.rng.range(0, self.config.think_ms_max + 1);
        self.set_timer(c, now + delay);
    }

    fn random_other(&mut self, current: NodeId) -> NodeId {
        if self.node_ids.len() == 1 {
            return current;
        }
        loop {
            let id = self.node_ids[self.rng.range(0, self.node_ids.len() as u64) as usize];
            if id != current {
                return id;
            }
        }
    }

    /// A client's timer fired.
    pub(crate) fn client_timer(&mut self, c: usize, timer: u64, now: u64) {
        if self.clients.get(c).is_none_or(|client| client.timer != timer) {
            return;
        }
        match core::mem::replace(&mut self.clients[c].state, ClientState::Thinking) {
            ClientState::Thinking => self.start_next(c, now),
            ClientState::Waiting(mut outstanding) => {
                self.stats.timeouts += 1;
                // The request or its answer may be lost anywhere, even after the write committed.
                outstanding.maybe_applied |= outstanding.request.is_write();
                let target = self.clients[c].target;
                self.clients[c].target = self.random_other(target);
                self.retry(c, outstanding, now);
            }
            ClientState::BackingOff(outstanding) => self.retry(c, outstanding, now),
        }
    }

    fn start_next(&mut self, c: usize, now: u64) {
        if self.config.stop_ms.is_some_and(|stop_ms| now >= stop_ms) {
            return; // Done: no timer, so the client stays idle.
        }
        let needs_session = self.config.retry_safety == RetrySafety::Sessions;
        if needs_session && self.clients[c].session.is_none() {
            let outstanding = Outstanding {
                request: Request::Register,
                history: None,
                invoked_ms: now,
                maybe_applied: false,
            };
            self.send(c, outstanding, now);
            return;
        }
        let operation = self.random_operation(c);
        let Some(op) = Op::from_kv(&operation) else {
            unreachable!("the workload issues single-key operations only")
        };
        let history = self.history.invoke(c as u64 + 1, now, op);
        self.stats.ops += 1;
        let client = &mut self.clients[c];
        let request = if operation.is_read_only() {
            self.stats.reads += 1;
            Request::Read { operation }
        } else {
            client.sequence += 1;
            let session = client.session.map(|id| (id, client.sequence));
            Request::Write { session, operation }
        };
        let outstanding =
            Outstanding { request, history: Some(history), invoked_ms: now, maybe_applied: false };
        self.send(c, outstanding, now);
    }

    fn random_operation(&mut self, c: usize) -> Operation {
        let key_index = self.rng.range(0, self.config.keys as u64) as usize;
        let key = Bytes::from(format!("k{key_index}"));
        let client = &mut self.clients[c];
        client.invoked += 1;
        // Values are unique: the audit and the checker rely on it.
        let value = Bytes::from(format!("{}.{}", c + 1, client.invoked));
        match self.rng.range(0, 100) {
            0..50 => Operation::Get { key },
            50..75 => Operation::Put { key, value },
            75..90 => {
                // Usually expect what this client saw last, so that some swaps succeed.
                let expected = if self.rng.chance(1, 5) { None } else { client.seen[key_index].clone() };
                Operation::CompareAndSwap { key, expected, new: value }
            }
            _ => Operation::Delete { key },
        }
    }

    fn retry(&mut self, c: usize, outstanding: Outstanding, now: u64) {
        if now.saturating_sub(outstanding.invoked_ms) >= self.config.op_timeout_ms {
            self.give_up(c, outstanding, now);
            return;
        }
        self.stats.retries += 1;
        self.send(c, outstanding, now);
    }

    fn send(&mut self, c: usize, outstanding: Outstanding, now: u64) {
        let node = match (&outstanding.request, self.config.reads_from) {
            (Request::Read { .. }, ReadsFrom::AnyServer) => {
                self.node_ids[self.rng.range(0, self.node_ids.len() as u64) as usize]
            }
            _ => self.clients[c].target,
        };
        let client = &mut self.clients[c];
        client.attempt += 1;
        let message =
            ToServer { client: c, attempt: client.attempt, node, request: outstanding.request.clone() };
        client.state = ClientState::Waiting(outstanding);
        self.outbox.push(Outgoing::ToServer(message));
        self.set_timer(c, now + self.config.request_timeout_ms);
    }

    fn back_off(&mut self, c: usize, outstanding: Outstanding, delay_ms: u64, now: u64) {
        self.clients[c].state = ClientState::BackingOff(outstanding);
        self.set_timer(c, now + delay_ms);
    }

    fn give_up(&mut self, c: usize, outstanding: Outstanding, now: u64) {
        if let Some(id) = outstanding.history {
            let observed = if outstanding.maybe_applied {
                self.stats.unknown += 1;
                Observed::Unknown
            } else {
                self.stats.failed += 1;
                Observed::Failed
            };
            self.complete(id, now, observed);
        }
        self.think(c, now);
    }

    fn complete(&mut self, id: OpId, now: u64, observed: Observed) {
        // The workload invokes each operation once and completes it once, with an output that
        // fits it, after its invocation.
        if let Err(error) = self.history.complete(id, now, observed) {
            unreachable!("workload history is consistent: {error}");
        }
    }

    /// An answer reached its client.
    pub(crate) fn client_answer(&mut self, message: ToClient, now: u64) {
        let c = message.client;
        let Some(client) = self.clients.get_mut(c) else { return };
        if client.attempt != message.attempt || !matches!(client.state, ClientState::Waiting(_)) {
            return; // An answer to an earlier attempt, or a duplicate.
        }
        let ClientState::Waiting(outstanding) = core::mem::replace(&mut client.state, ClientState::Thinking)
        else {
            return;
        };
        match message.answer {
            Answer::Done(response) => self.finish(c, outstanding, response, now),
            Answer::NotLeader(hint) => {
                let hint = hint.filter(|&id| id != message.node && self.node_ids.contains(&id));
                let delay = match hint {
                    Some(leader) => {
                        self.stats.redirects += 1;
                        self.clients[c].target = leader;
                        REDIRECT_BACKOFF_MS
                    }
                    None => {
                        self.clients[c].target = self.random_other(message.node);
                        NO_LEADER_BACKOFF_MS
                    }
                };
                self.back_off(c, outstanding, delay, now);
            }
            Answer::Busy => self.back_off(c, outstanding, NO_LEADER_BACKOFF_MS, now),
            Answer::NotCommitted => self.back_off(c, outstanding, REDIRECT_BACKOFF_MS, now),
            Answer::ReadRefused(_) => {
                self.stats.reads_refused += 1;
                self.clients[c].target = self.random_other(message.node);
                self.back_off(c, outstanding, NO_LEADER_BACKOFF_MS, now);
            }
        }
    }

    fn finish(&mut self, c: usize, outstanding: Outstanding, response: Response, now: u64) {
        let Some(id) = outstanding.history else {
            // A registration.
            if let Ok(Output::Registered { client_id }) = response {
                self.stats.registrations += 1;
                let client = &mut self.clients[c];
                client.session = Some(client_id);
                client.sequence = 0;
                self.think(c, now);
            } else {
                self.back_off(c, outstanding, NO_LEADER_BACKOFF_MS, now);
            }
            return;
        };
        let observed = match &response {
            Err(KvError::SessionExpired { .. } | KvError::UnknownSession { .. }) => {
                self.clients[c].session = None;
                // An earlier attempt may have been applied before the session ended.
                if outstanding.maybe_applied {
                    Observed::Unknown
                } else {
                    Observed::Failed
                }
            }
            Err(KvError::StaleSequence { .. }) => {
                self.stats.unexpected_answers += 1;
                Observed::Unknown
            }
            other => Observed::from_kv(other),
        };
        if let (Request::Write { operation, .. }, Observed::Done | Observed::Swapped(true)) =
            (&outstanding.request, &observed)
        {
            self.last_written_key = operation.key().cloned();
        }
        match observed {
            Observed::Unknown => self.stats.unknown += 1,
            Observed::Failed => self.stats.failed += 1,
            _ => self.stats.ok += 1,
        }
        self.remember(c, &outstanding.request, &response);
        self.complete(id, now, observed);
        self.think(c, now);
    }

    /// Notes the value a key had, for the client's next compare-and-swap.
    fn remember(&mut self, c: usize, request: &Request, response: &Response) {
        let operation = match request {
            Request::Write { operation, .. } | Request::Read { operation } => operation,
            Request::Register => return,
        };
        let Some(index) = operation.key().and_then(|key| key_index(key)) else { return };
        let Some(seen) = self.clients[c].seen.get_mut(index) else { return };
        match (operation, response) {
            (_, Ok(Output::Value(value))) => *seen = value.clone(),
            (Operation::Put { value, .. }, Ok(Output::Written)) => *seen = Some(value.clone()),
            (Operation::CompareAndSwap { new, .. }, Ok(Output::Swapped)) => *seen = Some(new.clone()),
            (_, Ok(Output::NotSwapped { current })) => *seen = current.clone(),
            (_, Ok(Output::Deleted { .. })) => *seen = None,
            _ => {}
        }
    }

    // ----- servers ---------------------------------------------------------------------------

    fn answer(&mut self, client: usize, attempt: u64, node: NodeId, answer: Answer) {
        self.outbox.push(Outgoing::ToClient(ToClient { client, attempt, node, answer }));
    }

    /// A request reached server `k`, which is paused: it waits for the server to resume.
    pub(crate) fn hold(&mut self, k: usize, message: ToServer) {
        // A full socket buffer drops what comes next.
        if self.servers[k].held.len() < SERVER_PENDING_MAX {
            self.servers[k].held.push_back(message);
        }
    }

    /// Server `k` resumed: it handles the requests that arrived meanwhile.
    pub(crate) fn resume(&mut self, k: usize, raft: &mut RaftNode, now: u64) {
        while let Some(message) = self.servers[k].held.pop_front() {
            self.serve(k, raft, message, now);
        }
    }

    /// The key of the last write a client saw take effect, if any: what an adversary's read
    /// asks for, so that it can miss that write.
    pub(crate) fn last_written_key(&self) -> Option<Bytes> {
        self.last_written_key.clone()
    }

    /// The id of the last read index asked for (0: none yet); ids count up from 1.
    pub(crate) fn last_read_id(&self) -> u64 {
        self.next_read_id
    }

    /// How servers serve reads.
    pub(crate) fn read_mode(&self) -> ReadMode {
        self.config.read_mode
    }

    /// Server `k` (running) handles a request.
    pub(crate) fn serve(&mut self, k: usize, raft: &mut RaftNode, message: ToServer, now: u64) {
        let ToServer { client, attempt, node, request } = message;
        if self.servers[k].pending() >= SERVER_PENDING_MAX {
            self.answer(client, attempt, node, Answer::Busy);
            return;
        }
        let command = match request {
            Request::Register => Command::register(now),
            Request::Write { session: Some((client_id, sequence)), operation } => {
                Command::request(now, client_id, sequence, operation)
            }
            Request::Write { session: None, operation } => Command::unsessioned(now, operation),
            Request::Read { operation } => {
                if self.config.read_mode == ReadMode::Stale {
                    let response = self.servers[k].store.read(&operation);
                    self.answer(client, attempt, node, Answer::Done(response));
                    return;
                }
                self.next_read_id += 1;
                let request_id = self.next_read_id;
                let reads = &mut self.servers[k].reads;
                if reads.len() >= SERVER_READS_WAITING_MAX {
                    reads.pop_first();
                }
                reads.insert(request_id, PendingRead { client, attempt, operation });
                raft.read(request_id, self.config.read_mode);
                return;
            }
        };
        match raft.propose(command.encode()) {
            Ok(proposed) => {
                let index = proposed.index;
                let write = PendingWrite { term: proposed.term, client, attempt };
                if let Some(replaced) = self.servers[k].writes.insert(index, write) {
                    // A proposal of an earlier term at this index was cut from the log.
                    self.answer(replaced.client, replaced.attempt, node, Answer::NotCommitted);
                }
            }
            Err(ProposeError::NotLeader { leader }) => {
                self.answer(client, attempt, node, Answer::NotLeader(leader))
            }
            Err(ProposeError::TooManyUncommitted | ProposeError::LeadershipTransferInProgress) => {
                self.answer(client, attempt, node, Answer::Busy);
            }
        }
    }

    /// Server `k`'s node answered reads.
    pub(crate) fn read_states(&mut self, k: usize, states: &[ReadState]) {
        let node = self.node_ids[k];
        for state in states {
            let Some(read) = self.servers[k].reads.remove(&state.request_id) else { continue };
            match state.result {
                Ok(index) => {
                    self.servers[k].reads_ready.insert((index, state.request_id), read);
                }
                Err(error) => self.answer(read.client, read.attempt, node, Answer::ReadRefused(error)),
            }
        }
        self.serve_reads(k);
    }

    /// Answers every read whose read index server `k`'s store has applied.
    fn serve_reads(&mut self, k: usize) {
        let node = self.node_ids[k];
        let server = &mut self.servers[k];
        let applied = server.store.applied_index();
        let mut answers = Vec::new();
        while let Some(entry) = server.reads_ready.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            let read = entry.remove();
            answers.push((read.client, read.attempt, server.store.read(&read.operation)));
        }
        for (client, attempt, response) in answers {
            self.answer(client, attempt, node, Answer::Done(response));
        }
    }

    /// Server `k` applies a committed entry to its store and answers the write waiting for it.
    pub(crate) fn apply(&mut self, k: usize, entry: &Entry) {
        let node = self.node_ids[k];
        if entry.index <= self.servers[k].store.applied_index() {
            return; // Covered by the snapshot the store was restored from.
        }
        let audited = entry.index == self.audit.through.next();
        let audit = if audited { audit_before(&self.servers[k].store, entry) } else { None };
        let response = self.servers[k].store.apply(entry);
        if audited {
            self.audit.through = entry.index;
            if let Some((value, before)) = audit {
                let (key, value) = value;
                let executed = !before && self.servers[k].store.get(&key) == Some(&value);
                let counts = self.audit.writes.entry(value).or_default();
                counts.0 += 1;
                if counts.0 == 2 {
                    self.stats.writes_retried_in_log += 1;
                }
                if executed {
                    counts.1 += 1;
                    if counts.1 == 2 {
                        self.stats.double_applications += 1;
                    }
                }
            }
        }
        if let Some(write) = self.servers[k].writes.remove(&entry.index) {
            let answer = if write.term == entry.term { Answer::Done(response) } else { Answer::NotCommitted };
            self.answer(write.client, write.attempt, node, answer);
        }
        self.serve_reads(k);
    }

    /// Server `k` crashed: everything but its disk is gone.
    pub(crate) fn crashed(&mut self, k: usize) {
        self.servers[k] = KvServer::new();
    }

    /// Server `k` started from its disk: its store comes back from the snapshot, if any.
    ///
    /// # Errors
    /// A lowercase description if the snapshot holds no valid key-value state.
    pub(crate) fn started(&mut self, k: usize, snapshot: Option<&[u8]>) -> Result<(), String> {
        self.servers[k] = KvServer::new();
        if let Some(data) = snapshot {
            self.restore(k, data)?;
        }
        Ok(())
    }

    /// Server `k` installed a snapshot from the leader: its store takes the snapshot's state.
    ///
    /// # Errors
    /// A lowercase description if the snapshot holds no valid key-value state.
    pub(crate) fn snapshot_installed(&mut self, k: usize, data: &[u8]) -> Result<(), String> {
        self.restore(k, data)?;
        // Proposals the snapshot covers may or may not have committed: their clients will time
        // out and retry, and the session cache answers them.
        let applied = self.servers[k].store.applied_index();
        self.servers[k].writes.retain(|&index, _| index > applied);
        self.serve_reads(k);
        Ok(())
    }

    fn restore(&mut self, k: usize, data: &[u8]) -> Result<(), String> {
        let kv = kv_part(data).ok_or_else(|| String::from("snapshot holds no simulator state"))?;
        let mut store = new_store();
        restore_from_chunks(&mut store, [kv]).map_err(|error| format!("key-value snapshot: {error}"))?;
        self.servers[k].store = store;
        Ok(())
    }

    /// Server `k`'s store as snapshot bytes, to append to the simulator machine's snapshot.
    pub(crate) fn snapshot(&self, k: usize) -> (LogIndex, Vec<u8>) {
        let store = &self.servers[k].store;
        let mut bytes = Vec::new();
        for chunk in store.snapshot() {
            bytes.extend_from_slice(&chunk);
        }
        (store.applied_index(), bytes)
    }

    // ----- network ---------------------------------------------------------------------------

    /// Puts everything the workload sent on the network: `link(from, to)` is the link's
    /// behaviour, or `None` while it is cut. Returns the events to schedule.
    pub(crate) fn route(
        &mut self,
        now: u64,
        link: impl Fn(NodeId, NodeId) -> Option<LinkConfig>,
    ) -> Vec<(u64, WorkloadEvent)> {
        let mut events = Vec::new();
        for outgoing in core::mem::take(&mut self.outbox) {
            match outgoing {
                Outgoing::Timer { at_ms, client, timer } => {
                    events.push((at_ms, WorkloadEvent::Timer { client, timer }));
                }
                Outgoing::ToServer(message) => {
                    let home = self.clients[message.client].home;
                    let Some(link) = link(home, message.node) else { continue };
                    for deliver_ms in self.deliveries(&link, now, false) {
                        events.push((deliver_ms, WorkloadEvent::ToServer(message.clone())));
                    }
                }
                Outgoing::ToClient(message) => {
                    let home = self.clients[message.client].home;
                    let Some(link) = link(message.node, home) else { continue };
                    for deliver_ms in self.deliveries(&link, now, true) {
                        events.push((deliver_ms, WorkloadEvent::ToClient(message.clone())));
                    }
                }
            }
        }
        events
    }

    /// When copies of one message arrive: none if lost, two if duplicated (and allowed).
    fn deliveries(&mut self, link: &LinkConfig, now: u64, may_duplicate: bool) -> Vec<u64> {
        if link.loss_per_mille > 0 && self.rng.chance(u64::from(link.loss_per_mille), 1000) {
            return Vec::new();
        }
        let copies = if may_duplicate
            && link.duplicate_per_mille > 0
            && self.rng.chance(u64::from(link.duplicate_per_mille), 1000)
        {
            2
        } else {
            1
        };
        (0..copies).map(|_| now + self.rng.range(link.latency_ms_min, link.latency_ms_max + 1)).collect()
    }
}

/// For the audit: the key and unique value a write would set, and whether the key holds it
/// already.
fn audit_before(store: &KvStore, entry: &Entry) -> Option<((Bytes, Bytes), bool)> {
    let EntryPayload::Command(bytes) = &entry.payload else { return None };
    let command = Command::decode(bytes).ok()?;
    let CommandBody::Request { operation, .. } = command.body else { return None };
    let (key, value) = match operation {
        Operation::Put { key, value } => (key, value),
        Operation::CompareAndSwap { key, new, .. } => (key, new),
        Operation::Get { .. } | Operation::Delete { .. } | Operation::List { .. } => return None,
    };
    let before = store.get(&key) == Some(&value);
    Some(((key, value), before))
}

/// The index of a workload key (`k<index>`).
fn key_index(key: &[u8]) -> Option<usize> {
    core::str::from_utf8(key.strip_prefix(b"k")?).ok()?.parse().ok()
}

/// The key-value part of a server snapshot: the bytes after the simulator machine's state.
pub(crate) fn kv_part(data: &[u8]) -> Option<&[u8]> {
    SimStateMachine::split(data).map(|(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        assert!(WorkloadConfig::new(8, ReadMode::Linearizable).validate().is_ok());
        assert!(WorkloadConfig::new(0, ReadMode::Linearizable).validate().is_err());
        let mut config = WorkloadConfig::new(1, ReadMode::Stale);
        config.keys = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn key_index_reads_workload_keys() {
        assert_eq!(key_index(b"k7"), Some(7));
        assert_eq!(key_index(b"x7"), None);
    }

    #[test]
    fn snapshot_parts_split() {
        let mut machine = SimStateMachine::default();
        machine.applied = LogIndex(3);
        let mut data = machine.snapshot().to_vec();
        data.extend_from_slice(b"tail");
        assert_eq!(kv_part(&data), Some(&b"tail"[..]));
        assert_eq!(SimStateMachine::restore(&data).map(|m| m.applied), Some(LogIndex(3)));
    }
}
