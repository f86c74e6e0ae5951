//! Per-frame state as flat `f64` rows: what the renderer reads 60 times a second.
//!
//! One row per node and one per message on the wire, each a fixed number of numbers. `f64`
//! because terms, indexes, times and ids are `u64` that stay far below 2^53 in any run a browser
//! can hold, and one typed array per frame is cheaper than an object per node.

use alloc::vec::Vec;
use raft_core::sim::{InFlight, Liveness, SimNode, Simulation};
use raft_core::{AppendOutcome, MessageBody, Role};

/// Names of the node row's fields, in order.
pub const NODE_FIELDS: [&str; 17] = [
    "role",
    "liveness",
    "term",
    "commit",
    "last",
    "applied",
    "timerElapsed",
    "timerTimeout",
    "leader",
    "votedFor",
    "votesGranted",
    "votesRefused",
    "snapshot",
    "lastTerm",
    "stable",
    "member",
    "campaigns",
];

/// Numbers per node row.
pub const NODE_STRIDE: usize = NODE_FIELDS.len();

/// Names of the message row's fields, in order.
pub const MESSAGE_FIELDS: [&str; 10] =
    ["id", "from", "to", "kind", "sentMs", "deliverMs", "flag", "term", "entries", "index"];

/// Numbers per message row.
pub const MESSAGE_STRIDE: usize = MESSAGE_FIELDS.len();

/// Message kinds by code: the renderer's colour and shape table is indexed by these. Kinds the
/// core does not send yet are listed so their codes stay put when they land.
pub const MESSAGE_KINDS: [&str; 14] = [
    "PreVote",
    "RequestVote",
    "PreVoteResponse",
    "RequestVoteResponse",
    "AppendEntries",
    "AppendEntriesResponse",
    "Heartbeat",
    "HeartbeatResponse",
    "TimeoutNow",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "ReadIndex",
    "ReadIndexResponse",
    "Other",
];

/// Role codes of the node row (`role`); a crashed node reports `Follower` and liveness `Down`.
pub fn role_code(role: Role) -> u8 {
    match role {
        Role::Follower => 0,
        Role::PreCandidate => 1,
        Role::Candidate => 2,
        Role::Leader => 3,
        // A role the core adds later draws as a follower until this table learns it.
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// Liveness codes of the node row (`liveness`).
pub fn liveness_code(liveness: Liveness) -> u8 {
    match liveness {
        Liveness::Up => 0,
        Liveness::Down => 1,
        Liveness::Paused => 2,
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// The `member` code of the node row: 0 not a member (as far as the node knows), 1 voter,
/// 2 learner.
pub fn member_code(membership: &raft_core::Membership, id: raft_core::NodeId) -> u8 {
    if membership.is_voter(id) {
        1
    } else if membership.contains(id) {
        2
    } else {
        0
    }
}

/// Appends one node's row to `out`; `campaigns` is its `Config::campaigns` (known even while
/// it is down: the simulator's config decides it).
pub fn push_node_row(out: &mut Vec<f64>, node: &SimNode, campaigns: bool) {
    let start = out.len();
    match node.raft.as_ref() {
        Some(raft) => {
            let (elapsed, timeout) = raft.election_timer();
            let (granted, refused) =
                raft.votes().fold((0u32, 0u32), |(g, r), (_, ok)| if ok { (g + 1, r) } else { (g, r + 1) });
            let member = f64::from(member_code(raft.membership(), node.id));
            out.extend_from_slice(&[
                f64::from(role_code(raft.role())),
                f64::from(liveness_code(node.liveness())),
                raft.term().0 as f64,
                raft.commit_index().0 as f64,
                raft.last_index().0 as f64,
                raft.applied_index().0 as f64,
                elapsed as f64,
                timeout as f64,
                raft.leader().map_or(0.0, |id| id.0 as f64),
                raft.voted_for().map_or(0.0, |id| id.0 as f64),
                f64::from(granted),
                f64::from(refused),
                raft.snapshot_index().0 as f64,
                raft.last_term().0 as f64,
                raft.stable_index().0 as f64,
                member,
            ]);
        }
        None => {
            // Down: only the disk is left. Show what it holds, so a restart is no surprise.
            let stored = &node.storage;
            let last = stored.entries.last();
            out.extend_from_slice(&[
                0.0,
                f64::from(liveness_code(Liveness::Down)),
                stored.hard_state.term.0 as f64,
                stored.hard_state.commit.0 as f64,
                last.map_or(0.0, |e| e.index.0 as f64),
                0.0,
                0.0,
                0.0,
                0.0,
                stored.hard_state.voted_for.map_or(0.0, |id| id.0 as f64),
                0.0,
                0.0,
                0.0,
                last.map_or(0.0, |e| e.term.0 as f64),
                last.map_or(0.0, |e| e.index.0 as f64),
                1.0,
            ]);
        }
    }
    out.push(f64::from(u8::from(campaigns)));
    debug_assert_eq!(out.len() - start, NODE_STRIDE);
}

/// The code of a message kind in [`MESSAGE_KINDS`]. Matched by name so that a kind the core
/// adds later shows up as `Other` instead of breaking this crate's build.
pub fn message_kind_code(body: &MessageBody) -> u8 {
    let name = body.kind_name();
    MESSAGE_KINDS.iter().position(|&k| k == name).unwrap_or(MESSAGE_KINDS.len() - 1) as u8
}

/// 1 granted or accepted, 0 refused or rejected, -1 when the kind has no outcome.
pub fn message_flag(body: &MessageBody) -> f64 {
    match body {
        MessageBody::VoteResponse { granted, .. } => f64::from(u8::from(*granted)),
        MessageBody::AppendResponse { outcome: AppendOutcome::Accepted { .. } } => 1.0,
        MessageBody::AppendResponse { outcome: AppendOutcome::Rejected { .. } } => 0.0,
        _ => -1.0,
    }
}

/// The one index worth showing on a message: where an AppendEntries starts (its
/// `prev_log_index`), what a response matched or rejected, a candidate's last index, the
/// commit index a heartbeat carries.
fn message_index(body: &MessageBody) -> (f64, f64) {
    match body {
        MessageBody::AppendEntries { prev_log_index, entries, .. } => {
            (entries.len() as f64, prev_log_index.0 as f64)
        }
        MessageBody::AppendResponse { outcome: AppendOutcome::Accepted { match_index } } => {
            (0.0, match_index.0 as f64)
        }
        MessageBody::AppendResponse { outcome: AppendOutcome::Rejected { rejected_index, .. } } => {
            (0.0, rejected_index.0 as f64)
        }
        MessageBody::VoteRequest { last_log_index, .. } => (0.0, last_log_index.0 as f64),
        MessageBody::Heartbeat { commit, .. } => (0.0, commit.0 as f64),
        MessageBody::InstallSnapshot { meta, .. } => (0.0, meta.index.0 as f64),
        MessageBody::InstallSnapshotResponse { snapshot_index, .. } => (0.0, snapshot_index.0 as f64),
        _ => (0.0, 0.0),
    }
}

/// Appends one message's row to `out`.
pub fn push_message_row(out: &mut Vec<f64>, message: &InFlight) {
    let body = &message.message.body;
    let (entries, index) = message_index(body);
    out.extend_from_slice(&[
        message.id as f64,
        message.message.from.0 as f64,
        message.message.to.0 as f64,
        f64::from(message_kind_code(body)),
        message.sent_ms as f64,
        message.deliver_ms as f64,
        message_flag(body),
        message.message.term.0 as f64,
        entries,
        index,
    ]);
}

/// Every node's row, in id order.
pub fn node_frame(simulation: &Simulation, out: &mut Vec<f64>) {
    out.clear();
    for node in simulation.nodes() {
        push_node_row(out, node, simulation.config().campaigns(node.id));
    }
}

/// Every message on the wire, in delivery order, at most `limit` of them (the earliest).
pub fn message_frame(simulation: &Simulation, limit: usize, out: &mut Vec<f64>) {
    out.clear();
    for message in simulation.in_flight().take(limit) {
        push_message_row(out, message);
    }
}
