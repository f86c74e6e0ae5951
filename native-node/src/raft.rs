//! The [`Raft`] handle (hashicorp/raft's API) and the one task that owns the core.
//!
//! One tokio task owns the [`RaftNode`], the state machine and the bookkeeping of waiting
//! clients, and `select!`s over: the tick interval, inbound peer messages, client commands,
//! completions of the storage thread, and shutdown. Nothing else touches the core, so there is
//! no lock around it. The handle only sends [`Command`]s and reads a `watch` of the status.
//!
//! The `Ready` cycle, per raft-core's contract:
//! 1. `ready.messages` leave at once (the leader's AppendEntries go out while it writes its own
//!    log, thesis §10.2.1);
//! 2. `ready.hard_state` + `ready.entries` go to a blocking thread that commits them in one redb
//!    transaction: one fsync for the whole batch. While it runs, the task keeps stepping
//!    messages and taking proposals, which the core gathers into the next batch: group commit;
//! 3. when the write is durable, `ready.messages_after_persist` leave (vote grants and append
//!    acknowledgements promise durability), committed entries are applied, waiting clients are
//!    answered, and `advance()` is called.

use crate::catch_up::{self, CatchUp};
use crate::kv::{address_record, parse_address_record, StateMachine};
use crate::metrics::Metrics;
use crate::pending::{PendingWrites, Waiter};
use crate::storage::{PersistReport, Storage, StorageError};
use bytes::Bytes;
use raft_core::{
    Config, Entry, EntryPayload, HardState, LogIndex, Membership, MembershipChange, Message, NodeId,
    ProposeError, RaftNode, Restored, Role, SnapshotMeta, SoftState, Term,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Where the core task sends peer messages. The transport implements it; tests may use an
/// in-memory network. `send` must not block: it queues or drops.
pub trait Network: Send + Sync + 'static {
    /// Queues `message` for `message.to`.
    fn send(&self, message: Message);

    /// Learns where `id` can be dialled (from a replicated address record or an admin call).
    fn learn_address(&self, _id: NodeId, _address: String) {}

    /// Peers whose connection failed or dropped, or whose messages were dropped, since the last
    /// call. The core task reports each to raft-core (`RaftNode::report_unreachable`) so that
    /// replication to it restarts from its match point instead of waiting on lost messages.
    fn take_unreachable(&self) -> Vec<NodeId> {
        Vec::new()
    }
}

/// A log write slower than this is logged: every message of the next batch waits for it.
const SLOW_PERSIST: Duration = Duration::from_millis(100);

/// Bytes of snapshot data per InstallSnapshot message; well below the peer frame limit.
pub const SNAPSHOT_CHUNK_BYTES: usize = 256 * 1024;

/// How a read is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// Linearizable: the leader proves it still leads before answering (thesis §6.4).
    #[default]
    Linearizable,
    /// A leader lease: no round trip while the lease holds (thesis §6.4.1); linearizable if
    /// clocks drift no more than raft-core's `clock_drift_ticks_max` allows.
    Lease,
    /// Whatever this node has applied; may be stale, served by any node.
    Stale,
}

/// Why an operation failed. `is_retryable` tells a client whether trying again (perhaps at
/// another node) may succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftError {
    /// This node does not lead; `leader` is who it believes does.
    NotLeader {
        /// The leader as far as this node knows.
        leader: Option<NodeId>,
    },
    /// This node stopped leading before the command's answer was known. `outcome` says whether
    /// the command may still be applied by another leader (retry with the same session
    /// sequence, which makes the retry safe) or certainly was not.
    LeadershipLost {
        /// What became of the command.
        outcome: Outcome,
    },
    /// The leader refuses proposals for now (uncommitted window full, or a transfer underway).
    Busy(String),
    /// No answer in time; the command may or may not have been applied.
    Timeout,
    /// The node is shutting down or has stopped.
    ShuttingDown,
    /// The operation needs a raft-core feature that has not landed yet.
    Unsupported(&'static str),
    /// Storage failed; the node stopped.
    Storage(String),
    /// The request cannot succeed as asked (for example adding a voter that already votes).
    Refused(String),
}

impl fmt::Display for RaftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftError::NotLeader { leader: Some(id) } => write!(f, "not the leader; node {id} leads"),
            RaftError::NotLeader { leader: None } => f.write_str("not the leader; no leader known"),
            RaftError::LeadershipLost { outcome: Outcome::NotApplied } => {
                f.write_str("leadership lost; the command was not applied")
            }
            RaftError::LeadershipLost { outcome: Outcome::Unknown } => f.write_str(
                "leadership lost; the command may or may not have been applied (retry it with the same session sequence)",
            ),
            RaftError::Busy(why) => write!(f, "busy: {why}"),
            RaftError::Timeout => f.write_str("timed out; the command may or may not have been applied"),
            RaftError::ShuttingDown => f.write_str("the node is shutting down"),
            RaftError::Unsupported(what) => write!(f, "not supported yet: {what}"),
            RaftError::Storage(why) => write!(f, "storage failed: {why}"),
            RaftError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl std::error::Error for RaftError {}

/// What is known of a command whose proposer could not wait for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was never applied and never will be (never proposed, or its log slot went to another
    /// leader's entry): a retry cannot apply it twice.
    NotApplied,
    /// It may have been applied or may yet be: retry with the same session sequence.
    Unknown,
}

impl Outcome {
    /// The outcome's name in client answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotApplied => "not_applied",
            Outcome::Unknown => "unknown",
        }
    }
}

impl RaftError {
    /// What is known of the command's fate, when the error leaves it open or settles it: `None`
    /// for errors that say nothing about it.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            RaftError::LeadershipLost { outcome } => Some(*outcome),
            RaftError::Timeout => Some(Outcome::Unknown),
            _ => None,
        }
    }

    /// Whether retrying may succeed (possibly at another node).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RaftError::NotLeader { .. }
                | RaftError::LeadershipLost { .. }
                | RaftError::Busy(_)
                | RaftError::Timeout
        )
    }
}

/// A command applied by the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The entry's index.
    pub index: LogIndex,
    /// The state machine's response.
    pub response: Bytes,
}

/// Something observers may want to know (hashicorp's observers; the UI and metrics use it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Role, leader or term changed.
    StateChanged {
        /// New role.
        role: String,
        /// New term.
        term: u64,
        /// Leader, if known.
        leader: Option<u64>,
    },
    /// A configuration entry was applied.
    ConfigurationApplied {
        /// Its index.
        index: u64,
        /// Voters.
        voters: Vec<u64>,
        /// Non-voters.
        learners: Vec<u64>,
    },
    /// A snapshot was written.
    SnapshotTaken {
        /// Last index it covers.
        index: u64,
    },
    /// A snapshot from the leader replaced this node's state.
    SnapshotInstalled {
        /// Last index it covers.
        index: u64,
    },
    /// The node stopped.
    Stopped {
        /// Why, if it was not asked to.
        error: Option<String>,
    },
}

/// One follower as its leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FollowerStatus {
    /// The follower.
    pub id: u64,
    /// Highest index known replicated there.
    pub match_index: u64,
    /// Next index to send.
    pub next_index: u64,
    /// "probe" or "replicate".
    pub state: String,
    /// Milliseconds since the leader last heard from it.
    pub last_contact_ms: u64,
    /// AppendEntries in flight to it.
    pub inflight: u64,
    /// The latest heartbeat round it answered (compare `leader_round`: a follower answering
    /// recent rounds is reachable).
    pub acked_round: u64,
    /// The leader's current heartbeat round.
    pub leader_round: u64,
}

/// A node's state as observers see it (hashicorp's `Stats`, `State`, `Leader`,
/// `GetConfiguration`, `LastContact`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// This node.
    pub id: u64,
    /// "leader", "follower", "candidate", "pre-candidate", or "stopped".
    pub role: String,
    /// Current term.
    pub term: u64,
    /// The leader, if known.
    pub leader: Option<u64>,
    /// Highest committed index.
    pub commit_index: u64,
    /// Highest applied index.
    pub applied_index: u64,
    /// Last log index.
    pub last_index: u64,
    /// Voters of the configuration in effect.
    pub voters: Vec<u64>,
    /// Non-voters of the configuration in effect.
    pub learners: Vec<u64>,
    /// Leader only: its followers.
    pub followers: Vec<FollowerStatus>,
    /// Milliseconds since this node last heard from a leader (0 on the leader itself), if ever.
    pub last_contact_ms: Option<u64>,
    /// Index of the configuration entry in effect.
    pub membership_index: u64,
    /// A server being caught up before it becomes a voter, if any.
    pub catching_up: Option<u64>,
    /// Last index covered by this node's latest snapshot.
    pub snapshot_index: u64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// Elections this node started.
    pub elections_started: u64,
    /// Peer messages the core refused as invalid.
    pub messages_dropped_invalid: u64,
    /// Why the node stopped, if it stopped on an error.
    pub fatal_error: Option<String>,
}

/// Knobs of the driver around the core.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// The core's configuration (id, seed, timeouts in ticks, limits).
    pub core: Config,
    /// Wall-clock length of one core tick.
    pub tick_interval: Duration,
    /// Start a new cluster with this configuration if the storage is empty.
    pub bootstrap: Option<Membership>,
    /// Capacity of the command queue from handles to the core task.
    pub command_queue_max: usize,
    /// Commands taken from the queue per wake-up before the next `Ready` is handed out.
    pub commands_per_batch_max: usize,
    /// The largest snapshot a follower stages in memory while the leader sends it. A larger
    /// one stops the node with an error saying so (and counts in
    /// `raft_snapshot_staging_refused_total`) rather than growing without bound.
    pub snapshot_staging_bytes_max: u64,
    /// Also snapshot once the entries applied since the last snapshot carry this many bytes,
    /// whatever their count (see [`crate::quota`]); 0: by count only.
    pub snapshot_interval_bytes: u64,
}

impl RaftConfig {
    /// Defaults for a node on a LAN or loopback: 10 ms ticks, elections after 500 ms-1 s of
    /// silence, heartbeats every 50 ms.
    pub fn new(id: NodeId, seed: u64) -> RaftConfig {
        let mut core = Config::new(id, seed);
        // Heartbeats leave only with a `Ready`, and a `Ready` waits for the fsync before it: on
        // a busy disk an fsync can stall for a few hundred milliseconds, which must not cost the
        // leader its leadership. 500 ms-1 s (etcd uses 1 s) keeps failover under a second or two.
        core.election_timeout_ticks = 50;
        core.heartbeat_interval_ticks = 5;
        // Lease reads assume clocks drift by at most 10% of an election timeout.
        core.clock_drift_ticks_max = 5;
        // etcd's default: a snapshot costs a full copy and write of the state, so not often.
        core.snapshot_interval_entries = 100_000;
        core.snapshot_trailing_entries = 1024;
        RaftConfig {
            core,
            tick_interval: Duration::from_millis(10),
            bootstrap: None,
            command_queue_max: 16 * 1024,
            commands_per_batch_max: 1024,
            snapshot_staging_bytes_max: 1 << 30,
            snapshot_interval_bytes: crate::quota::SNAPSHOT_INTERVAL_BYTES_DEFAULT,
        }
    }
}

/// Why a node could not start.
#[derive(Debug)]
pub enum StartError {
    /// Storage could not be read, or holds corrupt data.
    Storage(StorageError),
    /// The restored state does not make sense to the core.
    Core(String),
    /// The state machine refused the stored snapshot.
    Snapshot(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Storage(error) => write!(f, "{error}"),
            StartError::Core(why) => write!(f, "cannot restore the raft state: {why}"),
            StartError::Snapshot(why) => write!(f, "cannot restore the snapshot: {why}"),
        }
    }
}

impl std::error::Error for StartError {}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, RaftError>>;

/// A request to the core task.
enum Command {
    Apply {
        data: Bytes,
        reply: Reply<Applied>,
    },
    /// The node's own records (reserved keyspace): never refused as a client's command is.
    ApplyRecord {
        data: Bytes,
        reply: Reply<Applied>,
    },
    Barrier {
        reply: Reply<LogIndex>,
    },
    Read {
        query: Bytes,
        mode: ReadMode,
        reply: Reply<Bytes>,
    },
    Campaign,
    Snapshot {
        reply: Reply<LogIndex>,
    },
    ChangeMembership {
        change: MembershipChange,
        address: Option<(NodeId, String)>,
        reply: Reply<LogIndex>,
    },
    Backup {
        reply: Reply<(LogIndex, Bytes)>,
    },
    RestorePiece {
        piece: crate::restore::RestorePiece,
        reply: Reply<Applied>,
    },
    Transfer {
        target: Option<NodeId>,
        reply: Reply<NodeId>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The handle to a running node. Cheap to clone; every clone talks to the same core task.
#[derive(Clone)]
pub struct Raft {
    id: NodeId,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<Event>,
    metrics: Arc<Metrics>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl fmt::Debug for Raft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Raft").field("id", &self.id).finish()
    }
}

impl Raft {
    /// Recovers the node from `storage` (or bootstraps it, or leaves it empty to be joined) and
    /// starts the core task (hashicorp's `NewRaft`).
    ///
    /// # Errors
    /// [`StartError`] when storage is unreadable or corrupt, or its contents are inconsistent.
    pub fn start(
        config: RaftConfig,
        mut state_machine: Box<dyn StateMachine>,
        storage: Arc<Storage>,
        network: Arc<dyn Network>,
        inbound: mpsc::Receiver<Message>,
        metrics: Arc<Metrics>,
    ) -> Result<Raft, StartError> {
        let id = config.core.id;
        let recovered = storage.recover().map_err(StartError::Storage)?;
        let fresh = recovered.hard_state.is_none() && recovered.entries.is_empty();
        let restored = if fresh {
            match &config.bootstrap {
                Some(membership) => {
                    let restored = raft_core::bootstrap(membership.clone());
                    storage.persist(&restored.hard_state, &restored.entries).map_err(StartError::Storage)?;
                    tracing::info!(node = %id, voters = ?membership.voters, "bootstrapped a new cluster");
                    restored
                }
                None => {
                    tracing::info!(node = %id, "empty storage and no bootstrap: waiting to be added to a cluster");
                    Restored::empty()
                }
            }
        } else {
            let mut hard_state = recovered.hard_state.unwrap_or_default();
            if let Some((meta, data)) = &recovered.snapshot {
                // The state machine starts from the snapshot; the core drops the entries it
                // covers and checks that the log agrees with it.
                state_machine.restore(data).map_err(StartError::Snapshot)?;
                hard_state.commit = hard_state.commit.max(meta.index);
            }
            let applied = state_machine.applied_index();
            tracing::info!(
                node = %id,
                term = %hard_state.term,
                entries = recovered.entries.len(),
                applied = %applied,
                "recovered from storage"
            );
            let snapshot = recovered.snapshot.as_ref().map(|(meta, _)| meta.clone());
            Restored { hard_state, snapshot, entries: recovered.entries, applied }
        };
        let snapshot_data = recovered.snapshot.map(|(meta, data)| (meta, Bytes::from(data)));
        for (peer, address) in state_machine.peer_addresses() {
            network.learn_address(peer, address);
        }
        let initial_hard_state = restored.hard_state;
        let node =
            RaftNode::new(config.core.clone(), restored).map_err(|e| StartError::Core(e.to_string()))?;
        let (command_tx, command_rx) = mpsc::channel(config.command_queue_max);
        let (status_tx, status_rx) = watch::channel(Status::default());
        let (events, _) = broadcast::channel(256);
        let core = CoreTask {
            node,
            state_machine,
            storage,
            network,
            inbound,
            commands: command_rx,
            status: status_tx,
            events: events.clone(),
            metrics: metrics.clone(),
            config,
            storage_job: None,
            snapshot_job: None,
            handed_out_hard_state: initial_hard_state,
            persisted_hard_state: initial_hard_state,
            ticked_during_write: false,
            bytes_since_snapshot: 0,
            held_messages: Vec::new(),
            pending: PendingWrites::default(),
            leading: false,
            reads_asked: BTreeMap::new(),
            reads_ready: BTreeMap::new(),
            next_read_id: 1,
            last_leader_contact: None,
            soft_state: None,
            fatal_error: None,
            snapshot_data,
            incoming_snapshot: None,
            snapshot_requested: Vec::new(),
            pending_transfer: None,
        };
        core.publish_status();
        let task = tokio::spawn(core.run());
        Ok(Raft {
            id,
            commands: command_tx,
            status: status_rx,
            events,
            metrics,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        })
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
        timeout: Duration,
    ) -> Result<T, RaftError> {
        let (reply, receive) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| RaftError::ShuttingDown)?;
        match tokio::time::timeout(timeout, receive).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RaftError::ShuttingDown),
            Err(_) => Err(RaftError::Timeout),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Replicates `command` and returns the state machine's response once it is applied here
    /// (hashicorp's `Apply`). Only the leader takes commands.
    ///
    /// # Errors
    /// [`RaftError::NotLeader`] on a follower, [`RaftError::Timeout`] (outcome unknown) after
    /// `timeout`, and the other [`RaftError`]s.
    pub async fn apply(&self, command: Bytes, timeout: Duration) -> Result<Applied, RaftError> {
        if command.is_empty() {
            // Empty commands are the driver's barriers; the state machine never sees them.
            return Err(RaftError::Busy("an empty command is not allowed".into()));
        }
        self.call(|reply| Command::Apply { data: command, reply }, timeout).await
    }

    /// Proposes one of the node's own records (browser admissions, invite use counts, peer
    /// addresses: keys under [`crate::kv::RESERVED_KEY_PREFIX`]), which [`Raft::apply`] refuses
    /// to every caller. Crate-private, so no client path can reach it (issue 11, Critical 1).
    ///
    /// # Errors
    /// As [`Raft::apply`].
    pub(crate) async fn apply_record(&self, command: Bytes, timeout: Duration) -> Result<Applied, RaftError> {
        if command.is_empty() {
            return Err(RaftError::Busy("an empty command is not allowed".into()));
        }
        self.call(|reply| Command::ApplyRecord { data: command, reply }, timeout).await
    }

    /// Waits until every command accepted before this call is applied (hashicorp's `Barrier`).
    ///
    /// # Errors
    /// As [`Raft::apply`].
    pub async fn barrier(&self, timeout: Duration) -> Result<LogIndex, RaftError> {
        self.call(|reply| Command::Barrier { reply }, timeout).await
    }

    /// Answers `query` from the state machine (thesis §6.4). `Linearizable`: ReadIndex, the
    /// leader confirms with one heartbeat round that it still leads (concurrent reads share the
    /// round) and the query runs once this node has applied the read index; on a follower the
    /// core asks the leader for the index. `Lease`: the leader skips the round while its lease
    /// holds. `Stale`: whatever this node has applied.
    ///
    /// # Errors
    /// As [`Raft::apply`]; stale reads only fail when the node is stopping.
    pub async fn read(&self, query: Bytes, mode: ReadMode, timeout: Duration) -> Result<Bytes, RaftError> {
        self.call(|reply| Command::Read { query, mode, reply }, timeout).await
    }

    /// Asks the node to start an election now.
    pub async fn campaign(&self) {
        let _ = self.commands.send(Command::Campaign).await;
    }

    /// Writes a snapshot of the state machine at the applied index (hashicorp's `Snapshot`),
    /// tells raft-core, which compacts its log behind it, and deletes the log segments it
    /// covers. raft-core's policy also asks for one every `snapshot_interval_entries`.
    ///
    /// # Errors
    /// [`RaftError::Storage`] when the file cannot be written (the node then stops).
    pub async fn snapshot(&self, timeout: Duration) -> Result<LogIndex, RaftError> {
        self.call(|reply| Command::Snapshot { reply }, timeout).await
    }

    /// The state machine's state as of this node's applied index, as snapshot bytes (a backup
    /// to stream back with [`Raft::restore_piece`], as `POST /admin/restore` does). Ask the leader after a barrier for the latest state.
    ///
    /// # Errors
    /// [`RaftError::ShuttingDown`] when the node stops.
    pub async fn backup(&self, timeout: Duration) -> Result<(LogIndex, Bytes), RaftError> {
        self.call(|reply| Command::Backup { reply }, timeout).await
    }

    /// Proposes one piece of a streamed restore (see [`crate::restore`]; hashicorp's `Restore`
    /// in pieces) and waits until it is applied; the answer is the state machine's. The pieces
    /// travel through the log, so every replica swaps at the same index, once.
    ///
    /// # Errors
    /// As [`Raft::apply`]; [`RaftError::Unsupported`] if the state machine cannot restore.
    pub async fn restore_piece(
        &self,
        piece: crate::restore::RestorePiece,
        timeout: Duration,
    ) -> Result<Applied, RaftError> {
        self.call(|reply| Command::RestorePiece { piece, reply }, timeout).await
    }

    async fn change(
        &self,
        change: MembershipChange,
        address: Option<(NodeId, String)>,
        timeout: Duration,
    ) -> Result<LogIndex, RaftError> {
        self.call(|reply| Command::ChangeMembership { change, address, reply }, timeout).await
    }

    /// Adds a voter (hashicorp's `AddVoter`): it joins as a non-voter, catches up, and raft-core
    /// promotes it once a catch-up round finishes within an election timeout (thesis §4.2.1).
    /// Its address is replicated, so every node can reach it. Returns once the first
    /// configuration entry is applied here.
    ///
    /// # Errors
    /// [`RaftError::NotLeader`], [`RaftError::Busy`] while another change runs,
    /// [`RaftError::Refused`] if it already votes.
    pub async fn add_voter(
        &self,
        id: NodeId,
        address: String,
        timeout: Duration,
    ) -> Result<LogIndex, RaftError> {
        self.change(MembershipChange::AddVoter(id), Some((id, address)), timeout).await
    }

    /// Adds a non-voter (hashicorp's `AddNonvoter`).
    ///
    /// # Errors
    /// As [`Raft::add_voter`].
    pub async fn add_nonvoter(
        &self,
        id: NodeId,
        address: String,
        timeout: Duration,
    ) -> Result<LogIndex, RaftError> {
        self.change(MembershipChange::AddLearner(id), Some((id, address)), timeout).await
    }

    /// Demotes a voter to non-voter (hashicorp's `DemoteVoter`).
    ///
    /// # Errors
    /// As [`Raft::add_voter`].
    pub async fn demote_voter(&self, id: NodeId, timeout: Duration) -> Result<LogIndex, RaftError> {
        self.change(MembershipChange::DemoteVoter(id), None, timeout).await
    }

    /// Removes a server (hashicorp's `RemoveServer`). Removing the leader: it leads until the
    /// change commits, then steps down.
    ///
    /// # Errors
    /// As [`Raft::add_voter`].
    pub async fn remove_server(&self, id: NodeId, timeout: Duration) -> Result<LogIndex, RaftError> {
        self.change(MembershipChange::RemoveServer(id), None, timeout).await
    }

    /// Hands leadership to `target`, or to the most up-to-date other voter (hashicorp's
    /// `LeadershipTransfer[ToServer]`, thesis §3.10). Returns the new leader once this node
    /// has heard from it.
    ///
    /// # Errors
    /// [`RaftError::NotLeader`], [`RaftError::Busy`] while a transfer runs,
    /// [`RaftError::Refused`] for a target that is not another voter, [`RaftError::Timeout`] if
    /// the target did not take over in time.
    pub async fn leadership_transfer(
        &self,
        target: Option<NodeId>,
        timeout: Duration,
    ) -> Result<NodeId, RaftError> {
        self.call(|reply| Command::Transfer { target, reply }, timeout).await
    }

    /// The node's status as of the last tick or state change.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status update.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The node's role (hashicorp's `State`).
    pub fn state(&self) -> String {
        self.status.borrow().role.clone()
    }

    /// The leader, if known (hashicorp's `Leader`).
    pub fn leader(&self) -> Option<NodeId> {
        self.status.borrow().leader.map(NodeId)
    }

    /// Voters and non-voters in effect (hashicorp's `GetConfiguration`).
    pub fn configuration(&self) -> (Vec<u64>, Vec<u64>) {
        let status = self.status.borrow();
        (status.voters.clone(), status.learners.clone())
    }

    /// Time since this node last heard from a leader (hashicorp's `LastContact`).
    pub fn last_contact(&self) -> Option<Duration> {
        self.status.borrow().last_contact_ms.map(Duration::from_millis)
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Subscribes to events (hashicorp's observers). Slow subscribers miss events and are told
    /// so by the broadcast channel.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Stops the node: waits for the storage write in flight, answers waiting clients with
    /// [`RaftError::ShuttingDown`] and ends the core task. Idempotent.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = done.await;
        }
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// What a `Ready` still owes once its write is durable.
struct PendingReady {
    messages_after_persist: Vec<Message>,
    committed_entries: Vec<Entry>,
    /// A snapshot from the leader, now on disk, to restore the state machine from.
    installed: Option<(SnapshotMeta, Bytes)>,
}

enum StorageDone {
    Persisted { result: Result<PersistReport, StorageError>, pending: PendingReady, hard_state: HardState },
    Snapshot { result: Result<(), StorageError>, meta: SnapshotMeta, data: Bytes },
    Compacted { result: Result<usize, StorageError> },
}

struct CoreTask {
    node: RaftNode,
    state_machine: Box<dyn StateMachine>,
    storage: Arc<Storage>,
    network: Arc<dyn Network>,
    inbound: mpsc::Receiver<Message>,
    commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
    events: broadcast::Sender<Event>,
    metrics: Arc<Metrics>,
    config: RaftConfig,
    /// The one storage job in flight, if any. Invariant: at most one, so writes reach the disk
    /// in the order the core produced them.
    storage_job: Option<JoinHandle<StorageDone>>,
    /// Writing a snapshot of our own, then deleting the log segments it covers. Beside the log
    /// writes, not in their line: a snapshot of a large state takes long, and heartbeats must
    /// not wait for it.
    snapshot_job: Option<JoinHandle<StorageDone>>,
    /// The latest hard state the core handed out (persisted or not).
    handed_out_hard_state: HardState,
    /// The latest hard state known durable.
    persisted_hard_state: HardState,
    /// A tick passed while a log write was in flight: heartbeats may be due (issue 11, M14).
    ticked_during_write: bool,
    /// Payload bytes of the entries applied since the last snapshot began (issue 11, M11).
    bytes_since_snapshot: u64,
    /// Messages taken from the core during a log write that were not heartbeats; they leave
    /// with the next batch, in order, so appends are not split into more, smaller ones.
    held_messages: Vec<Message>,
    /// Clients waiting for an index to be applied, with the term their entry was proposed in.
    pending: PendingWrites,
    /// Whether the node led as of the last look; a step down answers every waiter at once.
    leading: bool,
    /// Reads handed to the core, by request id, until it answers with a read index.
    reads_asked: BTreeMap<u64, (Bytes, Reply<Bytes>)>,
    /// Reads with a read index, waiting until the state machine has applied it.
    reads_ready: BTreeMap<LogIndex, Vec<(Bytes, Reply<Bytes>)>>,
    next_read_id: u64,
    last_leader_contact: Option<Instant>,
    soft_state: Option<SoftState>,
    fatal_error: Option<String>,
    /// The latest snapshot's bytes, served to followers in chunks.
    snapshot_data: Option<(SnapshotMeta, Bytes)>,
    /// Chunks of a snapshot the leader is sending us. Kept in memory: raft-core forgets a
    /// partial transfer on restart anyway, and the whole snapshot is made durable before the
    /// last chunk is acknowledged.
    incoming_snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    /// Callers of `Raft::snapshot` waiting for the next snapshot.
    snapshot_requested: Vec<Reply<LogIndex>>,
    /// A leadership transfer: its target, deadline and caller.
    pending_transfer: Option<(NodeId, Instant, Reply<NodeId>)>,
}

impl CatchUp for CoreTask {
    fn step_queued_peer_message(&mut self) -> bool {
        match self.inbound.try_recv() {
            Ok(message) => {
                self.step(message);
                true
            }
            Err(_) => false,
        }
    }

    fn tick(&mut self) {
        self.node.tick();
    }
}

impl CoreTask {
    async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.tick_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The core's clock is its tick count. After a stall (a stopped process, a slow disk,
        // an overloaded machine) the ticks it missed are delivered at once, after the peer
        // messages already queued but before any client request, so its election timer and
        // leader lease never lag real time (thesis §6.4.1: lease reads are only as safe as the
        // clock; `catch_up` says why peer messages go first).
        let clock_start = Instant::now();
        let mut ticks_delivered: u64 = 0;
        let mut shutdown_reply: Option<oneshot::Sender<()>> = None;
        loop {
            if self.fatal_error.is_some() {
                break;
            }
            // Snapshot first: with no write in flight the state machine and the core agree on
            // the applied index (`drive_ready` may apply entries ahead of `advance`).
            self.maybe_snapshot();
            self.drive_ready();
            self.check_leadership();
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    let interval_nanos = self.config.tick_interval.as_nanos().max(1);
                    let due = (clock_start.elapsed().as_nanos() / interval_nanos) as u64;
                    let owed = due.saturating_sub(ticks_delivered);
                    // Peer messages that arrived during a stall go first (`catch_up`).
                    let queued = self.inbound.len();
                    catch_up::deliver_owed_ticks(&mut self, owed, queued);
                    ticks_delivered += owed;
                    self.ticked_during_write = owed > 0;
                    for peer in self.network.take_unreachable() {
                        self.node.report_unreachable(peer);
                    }
                    self.check_transfer();
                    self.publish_status();
                }
                done = wait_job(&mut self.storage_job), if self.storage_job.is_some() => {
                    self.storage_job = None;
                    self.on_storage_done(done);
                }
                done = wait_job(&mut self.snapshot_job), if self.snapshot_job.is_some() => {
                    self.snapshot_job = None;
                    self.on_storage_done(done);
                }
                message = self.inbound.recv() => {
                    let Some(message) = message else { break };
                    self.step(message);
                    while let Ok(message) = self.inbound.try_recv() {
                        self.step(message);
                    }
                }
                command = self.commands.recv() => {
                    match command {
                        Some(Command::Shutdown { reply }) => {
                            shutdown_reply = Some(reply);
                            break;
                        }
                        Some(command) => self.handle(command),
                        None => break,
                    }
                    let mut taken = 1;
                    while taken < self.config.commands_per_batch_max {
                        match self.commands.try_recv() {
                            Ok(Command::Shutdown { reply }) => {
                                shutdown_reply = Some(reply);
                                break;
                            }
                            Ok(command) => self.handle(command),
                            Err(_) => break,
                        }
                        taken += 1;
                    }
                    if shutdown_reply.is_some() {
                        break;
                    }
                }
            }
        }
        // Let the write in flight finish: what it promised becomes durable, nothing is torn.
        if let Some(job) = self.snapshot_job.take() {
            let _ = job.await;
        }
        if let Some(job) = self.storage_job.take() {
            if let Ok(StorageDone::Persisted { result: Ok(_), .. }) = job.await {
                tracing::debug!("last write completed before shutdown");
            }
        }
        self.pending.fail_all(RaftError::ShuttingDown);
        let asked = std::mem::take(&mut self.reads_asked).into_values();
        let ready = std::mem::take(&mut self.reads_ready).into_values().flatten();
        for (_, reply) in asked.chain(ready) {
            let _ = reply.send(Err(RaftError::ShuttingDown));
        }
        for reply in std::mem::take(&mut self.snapshot_requested) {
            let _ = reply.send(Err(RaftError::ShuttingDown));
        }
        if let Some((_, _, reply)) = self.pending_transfer.take() {
            let _ = reply.send(Err(RaftError::ShuttingDown));
        }
        let error = self.fatal_error.clone();
        let mut status = self.build_status();
        status.role = "stopped".into();
        status.fatal_error = error.clone();
        self.status.send_replace(status);
        let _ = self.events.send(Event::Stopped { error });
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn step(&mut self, message: Message) {
        self.metrics.peer_messages_received_total.fetch_add(1, Ordering::Relaxed);
        let from = message.from;
        let kind = message.body.kind_name();
        if let Err(error) = self.node.step(message) {
            self.metrics.peer_messages_invalid_total.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %from, kind, %error, "dropped an invalid peer message");
            return;
        }
        if self.node.leader() == Some(from) {
            self.last_leader_contact = Some(Instant::now());
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Apply { data, reply } if self.state_machine.refuse_client_command(&data).is_some() => {
                let why = self.state_machine.refuse_client_command(&data).unwrap_or_default();
                let _ = reply.send(Err(RaftError::Refused(why)));
            }
            Command::Apply { data, reply } | Command::ApplyRecord { data, reply } => match self.propose(data)
            {
                Ok((index, term)) => {
                    self.pending.insert(index, term, Waiter::Apply(reply));
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            Command::Barrier { reply } => match self.propose(Bytes::new()) {
                Ok((index, term)) => {
                    self.pending.insert(index, term, Waiter::Barrier(reply));
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            Command::Read { query, mode: ReadMode::Stale, reply } => {
                let _ = reply.send(Ok(self.state_machine.query(&query)));
            }
            Command::Read { query, mode, reply } => {
                let id = self.next_read_id;
                self.next_read_id += 1;
                self.reads_asked.insert(id, (query, reply));
                let mode = match mode {
                    ReadMode::Lease => raft_core::ReadMode::Lease,
                    _ => raft_core::ReadMode::Linearizable,
                };
                self.node.read(id, mode);
            }
            Command::Campaign => self.node.campaign(),
            Command::Snapshot { reply } => self.snapshot_requested.push(reply),
            Command::ChangeMembership { change, address, reply } => {
                let named = crate::browser_voters::named_in(&change);
                crate::browser_voters::tell_core_tabs_never_campaign(&mut self.node, &named);
                self.change_membership(change, address, reply)
            }
            Command::Backup { reply } => {
                let index = self.state_machine.applied_index();
                let chunks = self.state_machine.snapshot();
                tokio::task::spawn_blocking(move || {
                    let data: Vec<u8> = chunks.flat_map(|chunk| chunk.to_vec()).collect();
                    let _ = reply.send(Ok((index, Bytes::from(data))));
                });
            }
            Command::RestorePiece { piece, reply } => match self.state_machine.restore_piece_command(piece) {
                Some(command) => match self.propose(command) {
                    Ok((index, term)) => self.pending.insert(index, term, Waiter::Apply(reply)),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                },
                None => {
                    let _ =
                        reply.send(Err(RaftError::Unsupported("this state machine cannot stream a restore")));
                }
            },
            Command::Transfer { target, reply } => match self.transfer_leadership(target) {
                Ok(target) => {
                    let ticks = 2 * self.config.core.election_timeout_ticks;
                    let deadline = Instant::now() + self.config.tick_interval * ticks as u32;
                    if let Some((_, _, earlier)) = self.pending_transfer.replace((target, deadline, reply)) {
                        let _ = earlier.send(Err(RaftError::Busy("superseded by another transfer".into())));
                    }
                }
                Err(error) => {
                    let error = match error {
                        raft_core::TransferError::NotLeader { leader } => RaftError::NotLeader { leader },
                        raft_core::TransferError::InProgress => RaftError::Busy(error.to_string()),
                        other => RaftError::Refused(other.to_string()),
                    };
                    let _ = reply.send(Err(error));
                }
            },
            Command::Shutdown { reply } => {
                // Handled in `run`; unreachable in practice, answered anyway.
                let _ = reply.send(());
            }
        }
    }

    /// A leadership transfer, after telling the core which members are browser tabs (they
    /// never campaign, so it must never pick one: issue #14).
    fn transfer_leadership(&mut self, target: Option<NodeId>) -> Result<NodeId, raft_core::TransferError> {
        crate::browser_voters::tell_core_tabs_never_campaign(&mut self.node, target.as_slice());
        self.node.transfer_leadership(target)
    }

    fn propose(&mut self, data: Bytes) -> Result<(LogIndex, Term), RaftError> {
        match self.node.propose(data) {
            Ok(proposed) => {
                self.metrics.proposals_total.fetch_add(1, Ordering::Relaxed);
                Ok((proposed.index, proposed.term))
            }
            Err(error) => {
                self.metrics.proposals_refused_total.fetch_add(1, Ordering::Relaxed);
                Err(match error {
                    ProposeError::NotLeader { leader } => RaftError::NotLeader { leader },
                    other => RaftError::Busy(other.to_string()),
                })
            }
        }
    }

    /// A membership change; with an address, the address is replicated first (a kv record under
    /// [`crate::kv::ADDRESS_KEY_PREFIX`]) so that every node, and every future leader, can dial the server.
    fn change_membership(
        &mut self,
        change: MembershipChange,
        address: Option<(NodeId, String)>,
        reply: Reply<LogIndex>,
    ) {
        if let Some((id, address)) = address {
            let record = address_record(id, &address);
            if let Err(error) = self.propose(record) {
                let _ = reply.send(Err(error));
                return;
            }
            self.network.learn_address(id, address);
        }
        let expected = self.node.membership_index();
        match self.node.change_membership(change, expected) {
            Ok(index) => {
                let term = self.node.term();
                self.pending.insert(index, term, Waiter::Barrier(reply));
            }
            Err(error) => {
                use raft_core::MembershipError as E;
                let error = match error {
                    E::NotLeader { leader } => RaftError::NotLeader { leader },
                    E::ChangeInProgress | E::LeaderNotReady | E::LeadershipTransferInProgress => {
                        RaftError::Busy(error.to_string())
                    }
                    other => RaftError::Refused(other.to_string()),
                };
                let _ = reply.send(Err(error));
            }
        }
    }

    /// Issue 12: a leader that steps down (check-quorum, a higher term, a transfer) answers its
    /// waiting clients now, not when their requests time out: the next leader decides whether
    /// their entries commit, so their outcome is unknown and they retry there.
    fn check_leadership(&mut self) {
        let leading = self.node.role() == Role::Leader;
        if self.leading && !leading {
            let answered = self.pending.on_leadership_lost();
            if answered > 0 {
                self.metrics.leadership_lost_answers_total.fetch_add(answered as u64, Ordering::Relaxed);
                tracing::info!(answered, "stepped down: waiting clients told outcome unknown");
            }
        }
        self.leading = leading;
    }

    fn check_transfer(&mut self) {
        let Some((target, deadline, _)) = &self.pending_transfer else { return };
        if self.node.leader() == Some(*target) {
            if let Some((target, _, reply)) = self.pending_transfer.take() {
                let _ = reply.send(Ok(target));
            }
        } else if Instant::now() > *deadline {
            if let Some((_, _, reply)) = self.pending_transfer.take() {
                let _ = reply.send(Err(RaftError::Timeout));
            }
        }
    }

    /// Takes a snapshot when asked to or when raft-core's policy wants one, one at a time. The
    /// state machine's snapshot stream is taken here, in the task that owns it, so it is exactly
    /// the state at the applied index; encoding and writing it happen on the blocking pool,
    /// beside the log writes.
    fn maybe_snapshot(&mut self) {
        if self.snapshot_job.is_some() || self.fatal_error.is_some() {
            return;
        }
        let interval_bytes = self.config.snapshot_interval_bytes;
        let by_size = interval_bytes > 0 && self.bytes_since_snapshot >= interval_bytes;
        if self.snapshot_requested.is_empty() && self.node.snapshot_wanted().is_none() && !by_size {
            return;
        }
        let index = self.node.applied_index();
        // A streamed restore staged now is part of the snapshot (raft_core::kv's staging).
        if index != self.state_machine.applied_index() {
            return;
        }
        let current = self.node.latest_snapshot().map_or(self.node.snapshot_index(), |meta| meta.index);
        if index <= current {
            for reply in std::mem::take(&mut self.snapshot_requested) {
                let _ = reply.send(Ok(current));
            }
            return;
        }
        let Some(meta) = self.node.snapshot_meta_at(index) else { return };
        let chunks = self.state_machine.snapshot();
        self.bytes_since_snapshot = 0;
        let storage = self.storage.clone();
        self.snapshot_job = Some(tokio::task::spawn_blocking(move || {
            let data: Vec<u8> = chunks.flat_map(|chunk| chunk.to_vec()).collect();
            let data = Bytes::from(data);
            let result = storage.save_snapshot(&meta, &data).map(|_| ());
            StorageDone::Snapshot { result, meta, data }
        }));
    }

    /// Leader: hands raft-core the chunk of the latest snapshot a follower needs next.
    fn send_snapshot_chunk(&mut self, request: raft_core::SnapshotChunkRequest) {
        let Some((meta, data)) =
            self.snapshot_data.as_ref().filter(|(meta, _)| meta.index == request.meta.index)
        else {
            // The snapshot asked for is not held any more: the leader gives the transfer up and
            // starts over with the current one.
            self.node.report_snapshot(request.to, raft_core::SnapshotStatus::Failed);
            return;
        };
        let start = (request.offset as usize).min(data.len());
        let end = (start + SNAPSHOT_CHUNK_BYTES).min(data.len());
        let chunk = data.slice(start..end);
        let last = end == data.len();
        self.node.send_snapshot_chunk(request.to, meta.index, request.offset, chunk, last);
    }

    /// Follower: collects a chunk of the snapshot the leader is sending.
    fn receive_snapshot_chunk(&mut self, chunk: raft_core::SnapshotChunk) {
        if chunk.offset == 0 {
            self.incoming_snapshot = Some((chunk.meta.clone(), Vec::new()));
        }
        match &mut self.incoming_snapshot {
            Some((meta, data)) if *meta == chunk.meta && data.len() as u64 == chunk.offset => {
                let limit = self.config.snapshot_staging_bytes_max;
                if (data.len() + chunk.data.len()) as u64 > limit {
                    // raft-core has taken the chunk and will acknowledge it: the transfer cannot
                    // be refused from here, and a follower without the snapshot cannot catch up.
                    let index = meta.index;
                    self.incoming_snapshot = None;
                    self.metrics.snapshot_staging_refused_total.fetch_add(1, Ordering::Relaxed);
                    self.fail(format!(
                        "the leader's snapshot {index} is larger than the staging limit of {limit} bytes \
                         (RaftConfig::snapshot_staging_bytes_max)"
                    ));
                    return;
                }
                data.extend_from_slice(&chunk.data);
            }
            _ => {
                // raft-core hands chunks over in order and without gaps; anything else is a bug
                // that would install a wrong snapshot.
                self.fail(format!(
                    "snapshot chunk at offset {} of snapshot {} does not follow the chunks received",
                    chunk.offset, chunk.meta.index
                ));
            }
        }
    }

    fn drive_ready(&mut self) {
        if self.storage_job.is_some() {
            // Heartbeats promise nothing about this node's disk: they leave on the tick that
            // makes them, not after the write in flight, so a slow fsync (a flood of large puts)
            // cannot starve followers of heartbeats and depose the leader (issue 11, M14). The
            // other messages wait for the next batch: sending appends early splits them into
            // more, smaller ones, which cost more CPU than they save (see the README).
            if std::mem::take(&mut self.ticked_during_write) {
                for message in self.node.take_messages() {
                    if matches!(message.body, raft_core::MessageBody::Heartbeat { .. }) {
                        self.send(message);
                    } else {
                        self.held_messages.push(message);
                    }
                }
            }
            return;
        }
        for message in std::mem::take(&mut self.held_messages) {
            self.send(message);
        }
        if !self.node.has_ready() {
            return;
        }
        let ready = self.node.ready();
        self.metrics.ready_batches_total.fetch_add(1, Ordering::Relaxed);
        if let Some(soft_state) = ready.soft_state {
            self.on_soft_state(soft_state);
        }
        for message in ready.messages {
            self.send(message);
        }
        for read in ready.read_states {
            let Some((query, reply)) = self.reads_asked.remove(&read.request_id) else { continue };
            match read.result {
                Ok(index) => self.reads_ready.entry(index).or_default().push((query, reply)),
                Err(error) => {
                    let error = match error {
                        raft_core::ReadError::NoLeader => RaftError::NotLeader { leader: None },
                        // A read changes nothing: retrying it is always safe.
                        raft_core::ReadError::LeadershipLost => {
                            RaftError::LeadershipLost { outcome: Outcome::NotApplied }
                        }
                        other => RaftError::Busy(other.to_string()),
                    };
                    let _ = reply.send(Err(error));
                }
            }
        }
        self.serve_reads();
        for request in ready.snapshot_chunks_wanted {
            self.send_snapshot_chunk(request);
        }
        for chunk in ready.snapshot_chunks {
            self.receive_snapshot_chunk(chunk);
        }
        if self.fatal_error.is_some() {
            return;
        }
        let installed = match ready.snapshot_installed {
            Some(meta) => match self.incoming_snapshot.take() {
                Some((received, data)) if received == meta => Some((meta, Bytes::from(data))),
                _ => {
                    self.fail(format!("snapshot {} installed without all of its chunks", meta.index));
                    return;
                }
            },
            None => None,
        };
        if let Some(hard_state) = ready.hard_state {
            self.handed_out_hard_state = hard_state;
        }
        let hard_state = self.handed_out_hard_state;
        // The commit index alone need not be durable (raft-core's HardState docs), so a batch
        // that only moves it costs no fsync; it is written with the next batch that has to be.
        let vote_changed = hard_state.term != self.persisted_hard_state.term
            || hard_state.voted_for != self.persisted_hard_state.voted_for;
        let reset = installed.is_some();
        let mut committed_entries = ready.committed_entries;
        if !reset {
            // Committed entries below this batch's first new entry were made durable here by
            // earlier batches (one write at a time), and committed means durable on a majority:
            // apply them now and answer their clients, rather than after this batch's fsync.
            // A leader's committed entries always qualify (it counts itself toward a majority
            // only once its own write is durable); a follower may be told an index it is only
            // now writing, and those entries wait for the write. After an installed snapshot
            // everything waits for the restore.
            let durable_below = ready.entries.first().map_or(LogIndex(u64::MAX), |entry| entry.index);
            let split = committed_entries.partition_point(|entry| entry.index < durable_below);
            let later = committed_entries.split_off(split);
            for entry in std::mem::replace(&mut committed_entries, later) {
                if self.fatal_error.is_some() {
                    return;
                }
                self.apply_entry(entry);
            }
            self.serve_reads();
        }
        let pending = PendingReady {
            messages_after_persist: ready.messages_after_persist,
            committed_entries,
            installed,
        };
        if ready.entries.is_empty() && !vote_changed && !reset {
            self.finish_ready(pending);
            return;
        }
        let entries = ready.entries;
        let storage = self.storage.clone();
        self.storage_job = Some(tokio::task::spawn_blocking(move || {
            // An installed snapshot is written whole before the log restarts after it, and
            // both before the last chunk is acknowledged.
            let saved = match &pending.installed {
                Some((meta, data)) => storage.save_snapshot(meta, data).map(|_| ()),
                None => Ok(()),
            };
            let result = saved.and_then(|()| storage.persist_batch(&hard_state, reset, &entries));
            StorageDone::Persisted { result, pending, hard_state }
        }));
    }

    fn on_storage_done(&mut self, done: Result<StorageDone, tokio::task::JoinError>) {
        match done {
            Ok(StorageDone::Persisted { result: Ok(report), mut pending, hard_state }) => {
                self.persisted_hard_state = hard_state;
                if let Some((meta, data)) = pending.installed.take() {
                    if let Err(why) = self.state_machine.restore(&data) {
                        self.fail(format!("the leader's snapshot {} does not restore: {why}", meta.index));
                        return;
                    }
                    for (peer, address) in self.state_machine.peer_addresses() {
                        self.network.learn_address(peer, address);
                    }
                    let covered = self.pending.on_snapshot_installed(meta.index);
                    if covered > 0 {
                        tracing::info!(covered, index = %meta.index, "waiters covered by a snapshot told: outcome unknown");
                    }
                    tracing::info!(index = %meta.index, bytes = data.len(), "installed a snapshot from the leader");
                    let _ = self.events.send(Event::SnapshotInstalled { index: meta.index.0 });
                    self.snapshot_data = Some((meta, data));
                }
                self.metrics.fsyncs_total.fetch_add(1, Ordering::Relaxed);
                self.metrics.fsync_seconds.observe(report.commit_duration);
                if report.commit_duration > SLOW_PERSIST {
                    tracing::warn!(
                        duration_ms = report.commit_duration.as_millis() as u64,
                        entries = report.entries_written,
                        "slow log write: heartbeats and replies wait for it"
                    );
                }
                self.metrics
                    .entries_persisted_total
                    .fetch_add(report.entries_written as u64, Ordering::Relaxed);
                self.finish_ready(pending);
            }
            Ok(StorageDone::Persisted { result: Err(error), .. }) => {
                // What the batch promised may not be durable: stop before anyone relies on it.
                self.fail(format!("persisting a batch failed: {error}"));
            }
            Ok(StorageDone::Snapshot { result: Ok(()), meta, data }) => {
                match self.node.snapshot_created(meta.index) {
                    Ok(created) => {
                        tracing::info!(index = %meta.index, bytes = data.len(), "snapshot written");
                        let _ = self.events.send(Event::SnapshotTaken { index: meta.index.0 });
                        for reply in std::mem::take(&mut self.snapshot_requested) {
                            let _ = reply.send(Ok(meta.index));
                        }
                        self.snapshot_data = Some((created.meta, data));
                        let storage = self.storage.clone();
                        let through = created.compact_through;
                        self.snapshot_job = Some(tokio::task::spawn_blocking(move || {
                            StorageDone::Compacted { result: storage.compact_log(through) }
                        }));
                    }
                    Err(error) => {
                        tracing::warn!(index = %meta.index, %error, "raft-core did not take the snapshot");
                        for reply in std::mem::take(&mut self.snapshot_requested) {
                            let _ = reply.send(Err(RaftError::Busy(error.to_string())));
                        }
                    }
                }
            }
            Ok(StorageDone::Snapshot { result: Err(error), .. }) => {
                for reply in std::mem::take(&mut self.snapshot_requested) {
                    let _ = reply.send(Err(RaftError::Storage(error.to_string())));
                }
                self.fail(format!("writing a snapshot failed: {error}"));
            }
            Ok(StorageDone::Compacted { result }) => match result {
                Ok(deleted) => tracing::debug!(deleted, "log segments deleted behind the snapshot"),
                // Old segments that stay are replayed again at start; harmless, so only logged.
                Err(error) => tracing::warn!(%error, "deleting old log segments failed"),
            },
            Err(join_error) => self.fail(format!("storage thread failed: {join_error}")),
        }
    }

    fn fail(&mut self, why: String) {
        tracing::error!(error = %why, "stopping the node");
        // The first error is the cause; later ones are its consequences.
        self.fatal_error.get_or_insert(why);
    }

    fn finish_ready(&mut self, pending: PendingReady) {
        for message in pending.messages_after_persist {
            self.send(message);
        }
        for entry in pending.committed_entries {
            if self.fatal_error.is_some() {
                return;
            }
            self.apply_entry(entry);
        }
        self.node.advance();
        self.serve_reads();
        self.update_metrics();
    }

    /// Answers the reads whose read index the state machine has reached.
    fn serve_reads(&mut self) {
        let applied = self.state_machine.applied_index();
        while let Some(entry) = self.reads_ready.first_entry() {
            if *entry.key() > applied {
                break;
            }
            for (query, reply) in entry.remove() {
                let _ = reply.send(Ok(self.state_machine.query(&query)));
            }
        }
    }

    fn apply_entry(&mut self, entry: Entry) {
        self.metrics.entries_applied_total.fetch_add(1, Ordering::Relaxed);
        if let EntryPayload::Command(data) = &entry.payload {
            if let Some((id, address)) = parse_address_record(data) {
                self.network.learn_address(id, address);
            }
        }
        if let EntryPayload::Membership(membership) = &entry.payload {
            let _ = self.events.send(Event::ConfigurationApplied {
                index: entry.index.0,
                voters: membership.voters.iter().map(|id| id.0).collect(),
                learners: membership.learners.iter().map(|id| id.0).collect(),
            });
        }
        // Every entry goes to the state machine (it tracks the applied index); barrier entries
        // (empty commands) get a deterministic error response there that nobody reads.
        if let EntryPayload::Command(data) = &entry.payload {
            self.bytes_since_snapshot += data.len() as u64;
        }
        let response = match self.state_machine.apply(&entry) {
            Ok(response) => response,
            Err(why) => {
                self.fail(format!("state machine refused entry {}: {why}", entry.index));
                return;
            }
        };
        let (bytes, quota) = (self.state_machine.bytes(), self.state_machine.quota_bytes());
        self.metrics.kv_bytes.store(bytes, Ordering::Relaxed);
        self.metrics.no_space_alarm.store(u64::from(quota > 0 && bytes >= quota), Ordering::Relaxed);
        // The entry answers its waiter only if it is the very entry that was proposed; waiters
        // below it were passed over (see `pending`).
        self.pending.on_applied(entry.index, entry.term, &response);
    }

    fn send(&self, message: Message) {
        self.metrics.peer_messages_sent_total.fetch_add(1, Ordering::Relaxed);
        self.network.send(message);
    }

    fn on_soft_state(&mut self, soft_state: SoftState) {
        let leader_changed = self.soft_state.map(|old| old.leader) != Some(soft_state.leader);
        if leader_changed {
            self.metrics.leader_changes_total.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(role = %soft_state.role, term = %soft_state.term, leader = ?soft_state.leader.map(|id| id.0), "state changed");
        self.soft_state = Some(soft_state);
        self.check_transfer();
        let _ = self.events.send(Event::StateChanged {
            role: soft_state.role.to_string(),
            term: soft_state.term.0,
            leader: soft_state.leader.map(|id| id.0),
        });
        self.publish_status();
    }

    fn update_metrics(&self) {
        let metrics = &self.metrics;
        metrics.term.store(self.node.term().0, Ordering::Relaxed);
        metrics.commit_index.store(self.node.commit_index().0, Ordering::Relaxed);
        metrics.applied_index.store(self.node.applied_index().0, Ordering::Relaxed);
        metrics.last_index.store(self.node.last_index().0, Ordering::Relaxed);
        metrics.is_leader.store(u64::from(self.node.role() == Role::Leader), Ordering::Relaxed);
    }

    fn build_status(&self) -> Status {
        let node = &self.node;
        let membership = node.membership();
        let tick_ms = self.config.tick_interval.as_millis() as u64;
        let last_index = node.last_index().0;
        let followers: Vec<FollowerStatus> = node
            .follower_progress()
            .map(|progress| FollowerStatus {
                id: progress.id.0,
                match_index: progress.match_index.0,
                next_index: progress.next_index.0,
                state: format!("{:?}", progress.state).to_lowercase(),
                last_contact_ms: progress.ticks_since_contact * tick_ms,
                inflight: progress.inflight as u64,
                acked_round: progress.acked_round,
                leader_round: progress.leader_round,
            })
            .collect();
        if let Ok(mut lags) = self.metrics.peer_lag.lock() {
            lags.clear();
            lags.extend(followers.iter().map(|f| (f.id, last_index.saturating_sub(f.match_index))));
        }
        let last_contact_ms = if node.role() == Role::Leader {
            Some(0)
        } else {
            self.last_leader_contact.map(|at| at.elapsed().as_millis() as u64)
        };
        Status {
            id: node.id().0,
            role: node.role().to_string(),
            term: node.term().0,
            leader: node.leader().map(|id| id.0),
            commit_index: node.commit_index().0,
            applied_index: node.applied_index().0,
            last_index,
            voters: membership.voters.iter().map(|id| id.0).collect(),
            learners: membership.learners.iter().map(|id| id.0).collect(),
            followers,
            last_contact_ms,
            membership_index: node.membership_index().0,
            catching_up: node.catching_up().map(|id| id.0),
            snapshot_index: node.latest_snapshot().map_or(node.snapshot_index().0, |meta| meta.index.0),
            snapshots_installed: node.stats().snapshots_installed,
            elections_started: node.stats().elections_started,
            messages_dropped_invalid: node.stats().messages_dropped_invalid,
            fatal_error: self.fatal_error.clone(),
        }
    }

    fn publish_status(&self) {
        self.update_metrics();
        self.status.send_replace(self.build_status());
    }
}

async fn wait_job(job: &mut Option<JoinHandle<StorageDone>>) -> Result<StorageDone, tokio::task::JoinError> {
    match job {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}
