//! Rarer, richer views as plain objects (through serde-wasm-bindgen): a node's log, its leader
//! view, one message in full, counters, violations. Built on request, never per frame.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use raft_core::kv::{KvConfig, KvStore};
use raft_core::sim::{SimNode, SimStats, Simulation, Violation};
use raft_core::state_machine::StateMachine;
use raft_core::{Entry, ProgressState, Role};
use serde::Serialize;

use crate::input::describe_payload;
// One message in full: only the playground shows it (the docs widget's package leaves it out).
#[cfg(feature = "playground")]
use crate::frame::MESSAGE_KINDS;
#[cfg(feature = "playground")]
use raft_core::{sim::InFlight, AppendOutcome, MessageBody};

/// One log entry as the log table shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    /// Its index.
    pub index: u64,
    /// The term of the leader that created it.
    pub term: u64,
    /// Whether this node knows it committed.
    pub committed: bool,
    /// Whether this node's disk holds it.
    pub persisted: bool,
    /// `noop`, `command` or `membership`.
    pub kind: &'static str,
    /// What it says, for people.
    pub text: String,
}

/// A node's log, the newest entries first cut to a limit.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogView {
    /// The node.
    pub id: u64,
    /// Last index covered by its snapshot (entries up to it are compacted away).
    pub snapshot: u64,
    /// Its commit index.
    pub commit: u64,
    /// Its last index.
    pub last: u64,
    /// The entries shown: the last `limit` of the log, in index order.
    pub entries: Vec<EntryView>,
}

fn entry_view(entry: &Entry, commit: u64, stable: u64) -> EntryView {
    let (kind, text) = describe_payload(&entry.payload);
    EntryView {
        index: entry.index.0,
        term: entry.term.0,
        committed: entry.index.0 <= commit,
        persisted: entry.index.0 <= stable,
        kind,
        text,
    }
}

/// The log of `node`: the running node's log, or the disk of a crashed one.
pub fn log_view(node: &SimNode, limit: usize) -> LogView {
    match node.raft.as_ref() {
        Some(raft) => {
            let entries = raft.entries();
            let skip = entries.len().saturating_sub(limit);
            let (commit, stable) = (raft.commit_index().0, raft.stable_index().0);
            LogView {
                id: node.id.0,
                snapshot: raft.snapshot_index().0,
                commit,
                last: raft.last_index().0,
                entries: entries[skip..].iter().map(|e| entry_view(e, commit, stable)).collect(),
            }
        }
        None => {
            let entries = &node.storage.entries;
            let skip = entries.len().saturating_sub(limit);
            let commit = node.storage.hard_state.commit.0;
            LogView {
                id: node.id.0,
                snapshot: 0,
                commit,
                last: entries.last().map_or(0, |e| e.index.0),
                entries: entries[skip..].iter().map(|e| entry_view(e, commit, u64::MAX)).collect(),
            }
        }
    }
}

/// A leader's view of one follower.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    /// The follower.
    pub id: u64,
    /// Highest index known to match.
    pub match_index: u64,
    /// Next index to send.
    pub next_index: u64,
    /// `probe` or `replicate`.
    pub state: &'static str,
    /// AppendEntries in flight.
    pub inflight: usize,
    /// Ticks since the leader last heard from it.
    pub ticks_since_contact: u64,
}

/// One vote received by a (pre-)candidate.
#[derive(Serialize)]
pub struct VoteView {
    /// The voter.
    pub id: u64,
    /// Whether it granted the vote.
    pub granted: bool,
}

/// Everything about one node that is not per frame.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Its id.
    pub id: u64,
    /// `follower`, `pre-candidate`, `candidate`, `leader`, or `down`.
    pub role: String,
    /// `up`, `down` or `paused`.
    pub liveness: &'static str,
    /// Current term (a crashed node's persisted term).
    pub term: u64,
    /// Vote in the current term.
    pub voted_for: Option<u64>,
    /// The leader it follows.
    pub leader: Option<u64>,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Last log index.
    pub last: u64,
    /// Last index on disk.
    pub stable: u64,
    /// `RaftNode::election_timer`: ticks elapsed and the timeout it counts to (for a leader,
    /// ticks since a majority last answered, towards its check-quorum step-down).
    pub timer_elapsed: u64,
    /// See `timer_elapsed`.
    pub timer_timeout: u64,
    /// Votes received in the current (pre-)election.
    pub votes: Vec<VoteView>,
    /// Leader only: every follower's progress.
    pub progress: Vec<ProgressView>,
    /// Voters of the configuration in effect.
    pub voters: Vec<u64>,
    /// Learners of the configuration in effect.
    pub learners: Vec<u64>,
    /// The outgoing voters while a joint configuration is in effect (thesis §4.3); else empty.
    pub voters_outgoing: Vec<u64>,
    /// The node's own counters.
    pub stats: Option<NodeStatsView>,
    /// How much slower than the config's `tickMs` its clock ticks, in percent (0 unless the
    /// drifting-clocks option slowed it, thesis §6.4.1).
    pub clock_slow_percent: u64,
}

/// A node's counters.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatsView {
    /// Elections started.
    pub elections_started: u64,
    /// Pre-vote rounds started.
    pub pre_votes_started: u64,
    /// Terms led.
    pub terms_led: u64,
    /// Vote requests ignored during a leader lease.
    pub votes_ignored_in_lease: u64,
    /// Step-downs after losing a majority.
    pub check_quorum_step_downs: u64,
    /// Proposals accepted.
    pub proposals: u64,
    /// Proposals refused.
    pub proposals_refused: u64,
    /// Messages from older terms.
    pub messages_stale: u64,
    /// Invalid messages dropped.
    pub messages_dropped_invalid: u64,
    /// AppendEntries rejections handled as leader.
    pub append_rejections: u64,
}

fn role_name(role: Role) -> String {
    role.to_string()
}

/// `probe`, `replicate` or `snapshot`.
pub fn progress_state_name(state: ProgressState) -> &'static str {
    match state {
        ProgressState::Probe => "probe",
        ProgressState::Replicate => "replicate",
        ProgressState::Snapshot => "snapshot",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

/// The view of `node`; `tick_ms` is the config's tick, against which its clock is slow or not.
pub fn node_view(node: &SimNode, tick_ms: u64) -> NodeView {
    let liveness = match node.liveness() {
        raft_core::sim::Liveness::Up => "up",
        raft_core::sim::Liveness::Down => "down",
        raft_core::sim::Liveness::Paused => "paused",
        #[allow(unreachable_patterns)]
        _ => "up",
    };
    let Some(raft) = node.raft.as_ref() else {
        let stored = &node.storage;
        return NodeView {
            id: node.id.0,
            role: String::from("down"),
            liveness,
            term: stored.hard_state.term.0,
            voted_for: stored.hard_state.voted_for.map(|id| id.0),
            leader: None,
            commit: stored.hard_state.commit.0,
            applied: 0,
            last: stored.entries.last().map_or(0, |e| e.index.0),
            stable: stored.entries.last().map_or(0, |e| e.index.0),
            timer_elapsed: 0,
            timer_timeout: 0,
            votes: Vec::new(),
            progress: Vec::new(),
            voters: Vec::new(),
            learners: Vec::new(),
            voters_outgoing: Vec::new(),
            stats: None,
            clock_slow_percent: slow_percent(node, tick_ms),
        };
    };
    let (timer_elapsed, timer_timeout) = raft.election_timer();
    let stats = raft.stats();
    NodeView {
        id: node.id.0,
        role: role_name(raft.role()),
        liveness,
        term: raft.term().0,
        voted_for: raft.voted_for().map(|id| id.0),
        leader: raft.leader().map(|id| id.0),
        commit: raft.commit_index().0,
        applied: raft.applied_index().0,
        last: raft.last_index().0,
        stable: raft.stable_index().0,
        timer_elapsed,
        timer_timeout,
        votes: raft.votes().map(|(id, granted)| VoteView { id: id.0, granted }).collect(),
        progress: raft
            .follower_progress()
            .map(|p| ProgressView {
                id: p.id.0,
                match_index: p.match_index.0,
                next_index: p.next_index.0,
                state: progress_state_name(p.state),
                inflight: p.inflight,
                ticks_since_contact: p.ticks_since_contact,
            })
            .collect(),
        voters: raft.membership().voters.iter().map(|id| id.0).collect(),
        learners: raft.membership().learners.iter().map(|id| id.0).collect(),
        voters_outgoing: raft.membership().voters_outgoing.iter().map(|id| id.0).collect(),
        stats: Some(NodeStatsView {
            elections_started: stats.elections_started,
            pre_votes_started: stats.pre_votes_started,
            terms_led: stats.terms_led,
            votes_ignored_in_lease: stats.votes_ignored_in_lease,
            check_quorum_step_downs: stats.check_quorum_step_downs,
            proposals: stats.proposals,
            proposals_refused: stats.proposals_refused,
            messages_stale: stats.messages_stale,
            messages_dropped_invalid: stats.messages_dropped_invalid,
            append_rejections: stats.append_rejections,
        }),
        clock_slow_percent: slow_percent(node, tick_ms),
    }
}

/// How much slower than `tick_ms` the node's clock ticks, in percent.
fn slow_percent(node: &SimNode, tick_ms: u64) -> u64 {
    node.tick_period_ms().saturating_sub(tick_ms) * 100 / tick_ms.max(1)
}

/// One key-value pair of a node's store.
#[derive(Serialize)]
pub struct KvPair {
    /// The key, as text.
    pub key: String,
    /// The value, as text.
    pub value: String,
}

/// A node's key-value state: the commands its state machine applied, replayed through the kv
/// store. Display only, computed on request; at most `limit` pairs.
pub fn kv_view(node: &SimNode, limit: usize) -> Vec<KvPair> {
    let Ok(mut store) = KvStore::new(KvConfig::default()) else {
        return Vec::new();
    };
    // The simulated machine keeps command payloads only (no-ops and configurations carry
    // nothing for the store), so they get consecutive indexes of their own here.
    for (k, data) in node.machine.commands().enumerate() {
        let entry = Entry {
            term: raft_core::Term(1),
            index: raft_core::LogIndex(k as u64 + 1),
            payload: raft_core::EntryPayload::Command(raft_core::Bytes::copy_from_slice(data)),
        };
        // Commands that are not kv commands (plain proposals) just answer an error.
        let _ = store.apply(&entry);
    }
    store
        .iter()
        .take(limit)
        .map(|(key, value)| KvPair {
            key: String::from_utf8_lossy(key).into_owned(),
            value: String::from_utf8_lossy(value).into_owned(),
        })
        .collect()
}

/// A message on the wire, in full.
#[cfg(feature = "playground")]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Its id (copies share it).
    pub id: u64,
    /// Sender.
    pub from: u64,
    /// Receiver.
    pub to: u64,
    /// Kind name, as in `messageKinds()`.
    pub kind: &'static str,
    /// The sender's term.
    pub term: u64,
    /// When it was sent.
    pub sent_ms: u64,
    /// When it arrives.
    pub deliver_ms: u64,
    /// Whether it is an answer.
    pub response: bool,
    /// Granted / accepted, refused / rejected, or `None` for kinds without an outcome.
    pub ok: Option<bool>,
    /// The fields of the body, for people: `[name, value]` pairs.
    pub fields: Vec<(&'static str, String)>,
}

/// The view of one message.
#[cfg(feature = "playground")]
pub fn message_view(message: &InFlight) -> MessageView {
    let body = &message.message.body;
    let flag = crate::frame::message_flag(body);
    MessageView {
        id: message.id,
        from: message.message.from.0,
        to: message.message.to.0,
        kind: MESSAGE_KINDS[usize::from(crate::frame::message_kind_code(body))],
        term: message.message.term.0,
        sent_ms: message.sent_ms,
        deliver_ms: message.deliver_ms,
        response: body.is_response(),
        ok: (flag >= 0.0).then_some(flag > 0.0),
        fields: body_fields(body),
    }
}

#[cfg(feature = "playground")]
fn body_fields(body: &MessageBody) -> Vec<(&'static str, String)> {
    use alloc::format;
    use alloc::vec;
    match body {
        MessageBody::VoteRequest { reason, last_log_index, last_log_term, .. } => vec![
            ("lastLogIndex", last_log_index.to_string()),
            ("lastLogTerm", last_log_term.to_string()),
            ("reason", format!("{reason:?}")),
        ],
        MessageBody::VoteResponse { granted, .. } => vec![("granted", granted.to_string())],
        MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit } => {
            let mut fields = vec![
                ("prevLogIndex", prev_log_index.to_string()),
                ("prevLogTerm", prev_log_term.to_string()),
                ("leaderCommit", leader_commit.to_string()),
                ("entries", entries.len().to_string()),
            ];
            for entry in entries.iter().take(8) {
                let (_, text) = describe_payload(&entry.payload);
                fields.push(("entry", format!("{} (term {}): {text}", entry.index, entry.term)));
            }
            fields
        }
        MessageBody::AppendResponse { outcome: AppendOutcome::Accepted { match_index } } => {
            vec![("accepted", String::from("true")), ("matchIndex", match_index.to_string())]
        }
        MessageBody::AppendResponse {
            outcome: AppendOutcome::Rejected { rejected_index, hint_index, hint_term },
        } => vec![
            ("accepted", String::from("false")),
            ("rejectedIndex", rejected_index.to_string()),
            ("hintIndex", hint_index.to_string()),
            ("hintTerm", hint_term.to_string()),
        ],
        MessageBody::Heartbeat { commit, context } => {
            vec![("commit", commit.to_string()), ("context", context.to_string())]
        }
        MessageBody::HeartbeatResponse { context } => vec![("context", context.to_string())],
        MessageBody::TimeoutNow => Vec::new(),
        MessageBody::InstallSnapshot { meta, offset, data, last } => vec![
            ("snapshotIndex", meta.index.to_string()),
            ("snapshotTerm", meta.term.to_string()),
            ("offset", offset.to_string()),
            ("chunkBytes", data.len().to_string()),
            ("last", last.to_string()),
        ],
        MessageBody::InstallSnapshotResponse { snapshot_index, next_offset, done } => vec![
            ("snapshotIndex", snapshot_index.to_string()),
            ("nextOffset", next_offset.to_string()),
            ("done", done.to_string()),
        ],
        // A kind the core added after this crate: its debug form says enough for an inspector.
        #[allow(unreachable_patterns)]
        other => vec![("body", format!("{other:?}"))],
    }
}

/// The simulator's counters.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Messages handled by their receiver.
    pub messages_delivered: u64,
    /// Messages lost.
    pub messages_dropped: u64,
    /// Extra copies delivered.
    pub messages_duplicated: u64,
    /// Messages refused as invalid.
    pub messages_rejected: u64,
    /// Proposals accepted by a leader.
    pub proposals_accepted: u64,
    /// Proposals refused.
    pub proposals_refused: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Snapshots taken.
    pub snapshots_taken: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Membership changes accepted by a leader.
    pub membership_changes: u64,
    /// Membership changes refused.
    pub membership_changes_refused: u64,
    /// Leadership transfers completed.
    pub leader_transfers: u64,
    /// Elections started.
    pub elections: u64,
    /// Batches made durable.
    pub persists: u64,
    /// Highest index committed anywhere.
    pub committed: u64,
}

/// The counters of `simulation`.
pub fn stats_view(simulation: &Simulation) -> StatsView {
    // Field by field, so a counter the simulator adds later does not break this crate.
    let stats: SimStats = simulation.stats();
    StatsView {
        messages_sent: stats.messages_sent,
        messages_delivered: stats.messages_delivered,
        messages_dropped: stats.messages_dropped,
        messages_duplicated: stats.messages_duplicated,
        messages_rejected: stats.messages_rejected,
        proposals_accepted: stats.proposals_accepted,
        proposals_refused: stats.proposals_refused,
        crashes: stats.crashes,
        snapshots_taken: stats.snapshots_taken,
        snapshots_installed: stats.snapshots_installed,
        membership_changes: stats.membership_changes,
        membership_changes_refused: stats.membership_changes_refused,
        leader_transfers: stats.leader_transfers,
        elections: stats.elections,
        persists: stats.persists,
        committed: simulation.committed_index().0,
    }
}

/// A broken safety property.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationView {
    /// Which property.
    pub property: &'static str,
    /// When it was seen.
    pub time_ms: u64,
    /// What was seen.
    pub detail: String,
}

/// The view of one violation.
pub fn violation_view(violation: &Violation) -> ViolationView {
    ViolationView {
        property: violation.property,
        time_ms: violation.time_ms,
        detail: violation.detail.clone(),
    }
}
