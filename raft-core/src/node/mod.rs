//! [`RaftNode`]: one server's Raft state machine, driven by `tick`, `step` and `propose`.
//!
//! The node does no I/O. Everything it wants done comes out of [`RaftNode::ready`] as one
//! ordered [`crate::Ready`] batch; the driver does it and calls [`RaftNode::advance`].
//!
//! `step` handles a message's term first (§5.1) and only then dispatches on the node's role.

use crate::config::Config;
use crate::error::{ConfigError, ProposeError, StepError};
use crate::events::RaftEvent;
use crate::log::RaftLog;
use crate::message::{AppendOutcome, CampaignReason, Message, MessageBody, VoteKind};
use crate::progress::{Progress, ProgressState};
use crate::reads::{ReadState, ReadTracker};
use crate::ready::{Restored, SoftState};
use crate::rng::Rng;
use crate::types::{Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, Proposed, Role, Term};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use bytes::Bytes;

mod cycle;
mod election;
mod lease;
mod membership;
mod reads;
mod replication;
mod snapshot;
mod status;

pub use membership::{MembershipChange, MembershipError, TransferError, CATCH_UP_ROUNDS_MAX};
pub use snapshot::{SnapshotError, SnapshotStatus};

/// Counters of what a node did and refused; for observers and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages dropped because they were malformed, misaddressed or contradict committed state.
    pub messages_dropped_invalid: u64,
    /// Messages from an older term, ignored (§5.1).
    pub messages_stale: u64,
    /// Responses from nodes this leader does not track, ignored.
    pub messages_from_unknown: u64,
    /// Vote requests ignored because a leader was heard from recently (thesis §4.2.3).
    pub votes_ignored_in_lease: u64,
    /// Pre-vote rounds started.
    pub pre_votes_started: u64,
    /// Elections started (terms raised by this node).
    pub elections_started: u64,
    /// Times this node became leader.
    pub terms_led: u64,
    /// Times this node stepped down because it lost contact with a majority.
    pub check_quorum_step_downs: u64,
    /// Heartbeat rounds sent ahead of the heartbeat interval because a majority had been silent
    /// for half an election timeout (check-quorum, thesis §6.2). Zero in a calm cluster whose
    /// round trips are well below half an election timeout.
    pub urgent_heartbeats: u64,
    /// Proposals accepted.
    pub proposals: u64,
    /// Proposals refused.
    pub proposals_refused: u64,
    /// AppendEntries rejected by followers and handled here as leader.
    pub append_rejections: u64,
    /// Snapshots this leader finished sending.
    pub snapshots_sent: u64,
    /// Snapshots this node installed from a leader.
    pub snapshots_installed: u64,
    /// Snapshot chunks refused (not staged, not acknowledged; the leader resends them) because
    /// the batch not yet handed out already installs a snapshot: a `Ready` that installs one
    /// never carries chunks after the installed snapshot's last chunk (§7).
    pub snapshot_chunks_deferred: u64,
    /// Configuration changes this node appended as leader.
    pub membership_changes: u64,
    /// Leadership transfers this leader completed by sending TimeoutNow.
    pub leader_transfers: u64,
    /// Messages refused because their term is `u64::MAX`, a term no node may enter
    /// ([`Term::LAST`] is the last one).
    pub messages_term_exhausted: u64,
    /// Messages refused because their term is more than [`crate::error::MAX_TERM_JUMP`] terms
    /// ahead of this node's (see [`StepError::TermTooFarAhead`]).
    pub messages_term_too_far_ahead: u64,
    /// Messages refused because their sender is not a member of this node's configuration and
    /// the message is one only a member may send (see [`StepError::NotAMember`]).
    pub messages_from_non_members: u64,
    /// Campaigns not started because this node's term is [`Term::LAST`].
    pub campaigns_refused_term_exhausted: u64,
    /// TimeoutNow messages ignored because this node does not campaign ([`Config::campaigns`]).
    pub timeout_now_ignored: u64,
}

/// A leader's view of one follower, for observers (the playground, metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower.
    pub id: NodeId,
    /// Highest index known to match the leader's log.
    pub match_index: LogIndex,
    /// Next index the leader will send.
    pub next_index: LogIndex,
    /// Probe or replicate.
    pub state: ProgressState,
    /// AppendEntries in flight.
    pub inflight: usize,
    /// Ticks since the leader last heard from it.
    pub ticks_since_contact: u64,
    /// The latest heartbeat round it answered, and the leader's current round: a follower
    /// that answers rounds yet stays behind is reachable, so the leader's flow control (not
    /// the network) must bring it up to date (§5.3).
    pub acked_round: u64,
    /// The leader's current heartbeat round.
    pub leader_round: u64,
}

/// What a `Ready` handed out, remembered until `advance`.
#[derive(Clone, Copy, Debug)]
struct Pending {
    hard_state: HardState,
    soft_state: SoftState,
    last_entry: Option<(LogIndex, Term)>,
    applied_to: LogIndex,
}

/// One Raft server's state machine (§5, Figure 2). Sans-IO and deterministic: same inputs,
/// same outputs, on every target.
#[derive(Clone, Debug)]
pub struct RaftNode {
    config: Config,
    rng: Rng,
    term: Term,
    voted_for: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    /// The log, and with it the configuration in force: the latest in the log, counted as soon
    /// as it is appended (thesis §4.1). There is no second copy to drift from it.
    log: RaftLog,
    /// Followers and candidates: ticks since the last heartbeat, granted vote or campaign,
    /// counted towards `election_timeout_randomized`. Leaders do not count it: check-quorum
    /// measures the majority's silence from each member's `last_contact_tick` instead.
    election_elapsed: u64,
    /// Ticks since the leader's last heartbeat round.
    heartbeat_elapsed: u64,
    /// This round's election timeout, drawn from `[T, 2T)`.
    election_timeout_randomized: u64,
    /// Ticks since the node started: the leader's clock for each member's last contact
    /// (check-quorum, thesis §6.2, and `ticks_since_contact`) and for its lease (§6.4.1).
    ticks: u64,
    /// Leader only: one entry per other member.
    progress: BTreeMap<NodeId, Progress>,
    /// (Pre-)candidate only: answers received.
    votes: BTreeMap<NodeId, bool>,
    /// Leader only: log bytes proposed in this term and not yet committed.
    uncommitted_bytes: u64,
    /// Leader only: AppendEntries may be due (new entries, acknowledgements, new commit).
    needs_flush: bool,
    /// Heartbeat rounds sent by this leader; answers echo the round (thesis §6.4).
    round: u64,
    /// Leader only: reads waiting for a round or for an entry of this term to commit.
    reads: ReadTracker,
    /// Follower only: reads forwarded to the leader and not yet answered.
    /// (request id, tick it was forwarded at); expired after an election timeout.
    forwarded_reads: Vec<(u64, u64)>,
    /// Reads answered since the last `Ready`.
    read_states: Vec<ReadState>,
    /// Leader only: the server a leadership transfer is handing over to.
    transfer: Option<NodeId>,
    /// Ticks since the transfer started; it is abandoned after an election timeout.
    transfer_elapsed: u64,
    /// Peers the driver said never campaign ([`RaftNode::set_peer_campaigns`]): as leader,
    /// this node never hands leadership to one. Not replicated, kept across role changes.
    non_campaigning_peers: BTreeSet<NodeId>,
    /// The term in which this node last sent TimeoutNow. From then on its lease is forfeited
    /// for the rest of that term (see `lease_is_valid`).
    timeout_now_sent_term: Option<Term>,
    /// The tick at which this node last heard from a leader of its term (AppendEntries,
    /// heartbeat, snapshot chunk). A node that may have acknowledged a leader before it
    /// restarted starts with `Some(0)`, as if it had just heard from one (see `node/lease.rs`).
    leader_contact_tick: Option<u64>,
    /// The latest snapshot this node holds (taken or installed).
    snapshot: Option<crate::ready::SnapshotMeta>,
    /// Follower: the snapshot being received.
    incoming_snapshot: Option<snapshot::Incoming>,
    snapshot_chunks_wanted: Vec<crate::ready::SnapshotChunkRequest>,
    snapshot_chunks: Vec<crate::ready::SnapshotChunk>,
    snapshot_installed: Option<crate::ready::SnapshotMeta>,
    /// Leader: a server catching up before it becomes a voter (thesis §4.2.1).
    catch_up: Option<membership::CatchUp>,
    /// Events since the last `Ready`.
    events: Vec<RaftEvent>,
    messages: Vec<Message>,
    messages_after_persist: Vec<Message>,
    hard_state_handed_out: HardState,
    soft_state_handed_out: SoftState,
    pending: Option<Pending>,
    stats: Stats,
}

impl RaftNode {
    /// A node restarted from what its storage holds (or from [`crate::bootstrap`] /
    /// [`Restored::empty`] the first time).
    ///
    /// # Errors
    /// [`ConfigError`] if the configuration is invalid or the restored state contradicts itself.
    pub fn new(config: Config, restored: Restored) -> Result<RaftNode, ConfigError> {
        config.validate()?;
        let Restored { hard_state, snapshot, mut entries, applied } = restored;
        let (snapshot_index, snapshot_term, snapshot_membership) = match &snapshot {
            Some(meta) => (meta.index, meta.term, (meta.membership_index, meta.membership.clone())),
            None => (LogIndex(0), Term(0), (LogIndex(0), Membership::default())),
        };
        // Entries the snapshot covers (trailing entries kept for slow followers) are dropped:
        // the log restarts right after the snapshot.
        let covered = entries.iter().take_while(|e| e.index <= snapshot_index).count();
        if covered > 0 {
            if entries[covered - 1].index == snapshot_index && entries[covered - 1].term != snapshot_term {
                return Err(ConfigError::InconsistentRestore("log disagrees with the snapshot"));
            }
            entries.drain(..covered);
        }
        for (k, entry) in entries.iter().enumerate() {
            if entry.index != snapshot_index.plus(k as u64 + 1) {
                return Err(ConfigError::InconsistentRestore(
                    "entries are not contiguous after the snapshot",
                ));
            }
        }
        let mut log = RaftLog::restore(snapshot_index, snapshot_term, snapshot_membership, entries);
        if hard_state.commit > log.last_index() {
            return Err(ConfigError::InconsistentRestore("commit index beyond the last entry"));
        }
        if hard_state.term < log.last_term() {
            return Err(ConfigError::InconsistentRestore("term older than the last entry's"));
        }
        if hard_state.term > Term::LAST {
            return Err(ConfigError::InconsistentRestore("term beyond the last usable term"));
        }
        log.commit_to(hard_state.commit);
        log.applied = applied.max(snapshot_index).min(log.committed);
        let rng = Rng::new(config.seed);
        let soft = SoftState { role: Role::Follower, leader: None, term: hard_state.term };
        let mut node = RaftNode {
            rng,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            role: Role::Follower,
            leader: None,
            log,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            election_timeout_randomized: config.election_timeout_ticks,
            ticks: 0,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            uncommitted_bytes: 0,
            needs_flush: false,
            round: 0,
            reads: ReadTracker::default(),
            forwarded_reads: Vec::new(),
            read_states: Vec::new(),
            transfer: None,
            transfer_elapsed: 0,
            non_campaigning_peers: BTreeSet::new(),
            timeout_now_sent_term: None,
            leader_contact_tick: lease::contact_at_start(hard_state.term),
            snapshot,
            incoming_snapshot: None,
            snapshot_chunks_wanted: Vec::new(),
            snapshot_chunks: Vec::new(),
            snapshot_installed: None,
            catch_up: None,
            events: Vec::new(),
            messages: Vec::new(),
            messages_after_persist: Vec::new(),
            hard_state_handed_out: hard_state,
            soft_state_handed_out: soft,
            pending: None,
            stats: Stats::default(),
            config,
        };
        node.reset_election_timer();
        Ok(node)
    }

    // ----- inputs ----------------------------------------------------------------------------

    /// Advances the node's logical clock by one tick: election timeouts, heartbeats and
    /// check-quorum are all counted in ticks.
    pub fn tick(&mut self) {
        self.ticks += 1;
        self.expire_forwarded_reads();
        if self.role == Role::Leader {
            self.tick_leader();
            return;
        }
        self.election_elapsed += 1;
        // A non-campaigning node lets the timer run on (it says how long the leader has been
        // silent) and never acts on it, beyond forgetting a leader that went silent.
        if !self.may_campaign() {
            self.forget_silent_leader();
        } else if self.election_elapsed >= self.election_timeout_randomized {
            self.start_campaign(CampaignReason::ElectionTimeout);
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.tick_transfer();
        self.advance_catch_up();
        let mut heartbeat_due = self.heartbeat_elapsed >= self.config.heartbeat_interval_ticks;
        if self.config.check_quorum {
            // Thesis §6.2: step down once a majority has been silent for an election timeout.
            let timeout = self.config.election_timeout_ticks;
            if !self.heard_from_quorum_within(timeout) {
                self.stats.check_quorum_step_downs += 1;
                self.events.push(RaftEvent::CheckQuorumFailed { term: self.term });
                self.become_follower(self.term, None);
                return;
            }
            // A majority silent for half a timeout has missed answers (lost, late): ask on every
            // tick until it answers, so that losses or jitter alone rarely depose a leader. Not in
            // a calm cluster, where answers come back within a heartbeat interval and a trip.
            if !heartbeat_due && !self.heard_from_quorum_within(timeout.div_ceil(2)) {
                self.stats.urgent_heartbeats += 1;
                heartbeat_due = true;
            }
        }
        if heartbeat_due {
            self.broadcast_heartbeat();
        }
    }

    /// Proposes a command. Returns the index and term it will have if committed: the command
    /// is applied at `index` only if the entry applied there has `term` (see [`Proposed`]).
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] on anyone but the leader (with the leader's id when known),
    /// [`ProposeError::TooManyUncommitted`] when the leader's uncommitted window is full.
    pub fn propose(&mut self, data: Bytes) -> Result<Proposed, ProposeError> {
        self.propose_payload(EntryPayload::Command(data))
    }

    fn propose_payload(&mut self, payload: EntryPayload) -> Result<Proposed, ProposeError> {
        if self.role != Role::Leader {
            self.stats.proposals_refused += 1;
            return Err(ProposeError::NotLeader { leader: self.leader });
        }
        if self.transfer.is_some() {
            self.stats.proposals_refused += 1;
            return Err(ProposeError::LeadershipTransferInProgress);
        }
        let index = self.log.last_index().next();
        let entry = Entry { term: self.term, index, payload };
        let size = entry.size_bytes();
        // One entry always fits into an empty window, so a large proposal cannot wedge forever.
        if self.uncommitted_bytes > 0 && self.uncommitted_bytes + size > self.config.uncommitted_bytes_max {
            self.stats.proposals_refused += 1;
            return Err(ProposeError::TooManyUncommitted);
        }
        self.uncommitted_bytes += size;
        self.append_as_leader(entry);
        self.stats.proposals += 1;
        Ok(Proposed { index, term: self.term })
    }

    /// Handles one message from a peer.
    ///
    /// # Errors
    /// [`StepError`] when the message is dropped as invalid; the node is unchanged and the drop
    /// is counted. Messages that are merely stale are ignored without an error.
    pub fn step(&mut self, message: Message) -> Result<(), StepError> {
        if let Err(error) = self.validate(&message) {
            match error {
                StepError::TermExhausted => self.stats.messages_term_exhausted += 1,
                StepError::TermTooFarAhead { .. } => self.stats.messages_term_too_far_ahead += 1,
                StepError::NotAMember { .. } => self.stats.messages_from_non_members += 1,
                _ => self.stats.messages_dropped_invalid += 1,
            }
            return Err(error);
        }
        if message.term > self.term {
            if !self.step_higher_term(&message) {
                return Ok(());
            }
        } else if message.term < self.term {
            self.step_lower_term(&message);
            return Ok(());
        }
        let result = match self.role {
            Role::Leader => self.step_leader(message),
            Role::Candidate | Role::PreCandidate => self.step_candidate(message),
            Role::Follower => self.step_follower(message),
        };
        if result.is_err() {
            self.stats.messages_dropped_invalid += 1;
        }
        result
    }

    /// Structural checks that need no state: anything a peer can get wrong is caught here
    /// or in the handlers, never by a panic.
    fn validate(&self, message: &Message) -> Result<(), StepError> {
        if message.to != self.config.id {
            return Err(StepError::WrongRecipient { to: message.to });
        }
        if message.from == self.config.id {
            return Err(StepError::FromSelf);
        }
        // No node may enter a term that has no successor (issue 11): it could never campaign
        // again, and `term + 1` would have to saturate.
        if message.term > Term::LAST {
            return Err(StepError::TermExhausted);
        }
        // Nor jump so far ahead that only a forged or corrupted term could explain it: a single
        // such message at `Term::LAST` would leave the cluster unable to elect anyone again.
        if message.term.0.saturating_sub(self.term.0) > crate::error::MAX_TERM_JUMP {
            return Err(StepError::TermTooFarAhead { term: message.term });
        }
        self.screen_sender(message)?;
        match &message.body {
            MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, .. } => {
                if *prev_log_term > message.term {
                    return Err(StepError::Malformed("prev_log_term above the message term"));
                }
                if prev_log_index.0 == 0 && prev_log_term.0 != 0 {
                    return Err(StepError::Malformed("index 0 has term 0"));
                }
                let mut expected_index = prev_log_index.next();
                let mut previous_term = *prev_log_term;
                for entry in entries {
                    if entry.index != expected_index || expected_index.0 == u64::MAX {
                        return Err(StepError::Malformed("entries are not contiguous"));
                    }
                    if entry.term < previous_term || entry.term > message.term || entry.term.0 == 0 {
                        return Err(StepError::Malformed("entry terms out of order"));
                    }
                    expected_index = expected_index.next();
                    previous_term = entry.term;
                }
                Ok(())
            }
            MessageBody::VoteRequest { last_log_term, .. } if *last_log_term > message.term => {
                Err(StepError::Malformed("last_log_term above the message term"))
            }
            MessageBody::AppendResponse { outcome: AppendOutcome::Accepted { match_index } }
                if *match_index > self.log.last_index()
                    && self.role == Role::Leader
                    && message.term == self.term =>
            {
                Err(StepError::Malformed("acknowledges entries the leader never sent"))
            }
            _ => Ok(()),
        }
    }

    /// A message from a later term (§5.1). Returns whether to go on handling it.
    fn step_higher_term(&mut self, message: &Message) -> bool {
        match &message.body {
            MessageBody::VoteRequest { kind, reason, .. } => {
                // Thesis §4.2.3, §9.6: while a leader is heard from (or just after a restart),
                // ignore vote requests so that a removed or partitioned server cannot disrupt
                // the cluster and a leader's lease holds. See `node/lease.rs`.
                if self.withholds_vote(message.from, *kind, *reason) {
                    self.stats.votes_ignored_in_lease += 1;
                    return false;
                }
                if *kind == VoteKind::Vote {
                    self.become_follower(message.term, None);
                }
                true
            }
            // A granted pre-vote carries the term we would campaign in; nothing changes yet.
            MessageBody::VoteResponse { kind: VoteKind::PreVote, granted: true } => true,
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                self.become_follower(message.term, Some(message.from));
                true
            }
            _ => {
                self.become_follower(message.term, None);
                true
            }
        }
    }

    /// A message from an earlier term: mostly ignored, sometimes answered so the sender learns.
    fn step_lower_term(&mut self, message: &Message) {
        self.stats.messages_stale += 1;
        match &message.body {
            // A deposed leader back from a partition may never see a higher term otherwise:
            // with pre-vote and check-quorum no one will raise the term past it. Tell it.
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
                if self.config.check_quorum || self.config.pre_vote =>
            {
                self.send(message.from, MessageBody::HeartbeatResponse { context: 0 });
            }
            MessageBody::VoteRequest { kind: VoteKind::PreVote, .. } => {
                self.send(
                    message.from,
                    MessageBody::VoteResponse { kind: VoteKind::PreVote, granted: false },
                );
            }
            _ => {}
        }
    }

    fn step_follower(&mut self, message: Message) -> Result<(), StepError> {
        match message.body {
            MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit } => {
                self.hear_from_leader(message.from);
                self.handle_append(message.from, prev_log_index, prev_log_term, &entries, leader_commit)
            }
            MessageBody::Heartbeat { commit, context } => {
                self.hear_from_leader(message.from);
                self.log.commit_to(commit);
                self.send_after_persist(message.from, MessageBody::HeartbeatResponse { context });
                Ok(())
            }
            MessageBody::VoteRequest { kind, last_log_index, last_log_term, .. } => {
                self.handle_vote_request(&message, kind, last_log_index, last_log_term);
                Ok(())
            }
            MessageBody::TimeoutNow => {
                // Only the leader this node follows may hand over to it (thesis §3.10).
                if self.leader != Some(message.from) {
                    return Err(StepError::Malformed("TimeoutNow from a server that is not our leader"));
                }
                if !self.config.campaigns {
                    // This node promised never to lead (Config::campaigns): ignoring the
                    // handover is what losing the message would do, and the leader abandons the
                    // transfer after an election timeout (thesis §3.10).
                    self.stats.timeout_now_ignored += 1;
                    self.events.push(RaftEvent::TimeoutNowIgnored { from: message.from, term: self.term });
                } else if self.is_promotable() {
                    self.start_campaign(CampaignReason::LeadershipTransfer);
                }
                Ok(())
            }
            MessageBody::ReadIndex { request_id } => {
                // Not the leader (any more): the follower retries elsewhere.
                self.send(message.from, MessageBody::ReadIndexResponse { request_id, index: None });
                Ok(())
            }
            MessageBody::ReadIndexResponse { request_id, index } => {
                self.handle_read_index_response(request_id, index);
                Ok(())
            }
            MessageBody::InstallSnapshot { meta, offset, data, last } => {
                self.hear_from_leader(message.from);
                self.handle_install_snapshot(message.from, *meta, offset, data, last);
                Ok(())
            }
            MessageBody::InstallSnapshotResponse { .. } => Ok(()),
            // Responses are for leaders and candidates; a follower has nothing to do with them.
            MessageBody::VoteResponse { .. }
            | MessageBody::AppendResponse { .. }
            | MessageBody::HeartbeatResponse { .. } => Ok(()),
        }
    }

    fn step_candidate(&mut self, message: Message) -> Result<(), StepError> {
        match message.body {
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                // §5.2: a leader of our term exists; recognise it.
                self.become_follower(self.term, Some(message.from));
                self.step_follower(message)
            }
            MessageBody::VoteRequest { kind, last_log_index, last_log_term, .. } => {
                self.handle_vote_request(&message, kind, last_log_index, last_log_term);
                Ok(())
            }
            MessageBody::VoteResponse { kind, granted } => {
                self.handle_vote_response(message.from, message.term, kind, granted);
                Ok(())
            }
            MessageBody::ReadIndex { request_id } => {
                self.send(message.from, MessageBody::ReadIndexResponse { request_id, index: None });
                Ok(())
            }
            MessageBody::TimeoutNow
            | MessageBody::AppendResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::ReadIndexResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. } => Ok(()),
        }
    }

    fn step_leader(&mut self, message: Message) -> Result<(), StepError> {
        match message.body {
            MessageBody::AppendResponse { outcome } => {
                self.handle_append_response(message.from, outcome);
                Ok(())
            }
            MessageBody::HeartbeatResponse { context } => {
                self.handle_heartbeat_response(message.from, context);
                Ok(())
            }
            MessageBody::ReadIndex { request_id } => {
                if self.progress.contains_key(&message.from) {
                    self.register_read(request_id, Some(message.from));
                } else {
                    // Not a member this leader serves: say no rather than leave it waiting.
                    self.stats.messages_from_unknown += 1;
                    self.send(message.from, MessageBody::ReadIndexResponse { request_id, index: None });
                }
                Ok(())
            }
            MessageBody::VoteRequest { kind, last_log_index, last_log_term, .. } => {
                self.handle_vote_request(&message, kind, last_log_index, last_log_term);
                Ok(())
            }
            MessageBody::InstallSnapshotResponse { snapshot_index, next_offset, done } => {
                self.handle_snapshot_response(message.from, snapshot_index, next_offset, done);
                Ok(())
            }
            // Election safety (§5.2) means no other leader shares our term.
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                Err(StepError::Malformed("a second leader claims this term"))
            }
            MessageBody::VoteResponse { .. }
            | MessageBody::TimeoutNow
            | MessageBody::ReadIndexResponse { .. } => Ok(()),
        }
    }
}
