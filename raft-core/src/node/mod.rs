//! [`RaftNode`]: one server's Raft state machine, driven by `tick`, `step` and `propose`.
//!
//! The node does no I/O. Everything it wants done comes out of [`RaftNode::ready`] as one
//! ordered [`Ready`] batch; the driver does it and calls [`RaftNode::advance`].
//!
//! `step` handles a message's term first (§5.1) and only then dispatches on the node's role.

use crate::config::Config;
use crate::error::{ConfigError, ProposeError, StepError};
use crate::events::{RaftEvent, Status};
use crate::log::{AppendError, RaftLog};
use crate::message::{AppendOutcome, CampaignReason, Message, MessageBody, VoteKind};
use crate::progress::{Progress, ProgressState};
use crate::quorum::{self, VoteResult};
use crate::reads::{ReadState, ReadTracker};
use crate::ready::{Ready, Restored, SoftState};
use crate::rng::Rng;
use crate::types::{Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, Proposed, Role, Term};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::Bytes;

mod lease;
mod membership;
mod reads;
mod snapshot;

pub use membership::{MembershipChange, MembershipError, TransferError, CATCH_UP_ROUNDS_MAX};
pub use snapshot::SnapshotError;

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
    /// Configuration changes this node appended as leader.
    pub membership_changes: u64,
    /// Leadership transfers this leader completed by sending TimeoutNow.
    pub leader_transfers: u64,
    /// Messages refused because their term is `u64::MAX`, a term no node may enter
    /// ([`Term::LAST`] is the last one).
    pub messages_term_exhausted: u64,
    /// Messages refused because their sender is not a member of this node's configuration and
    /// the message is one only a member may send (see [`StepError::NotAMember`]).
    pub messages_from_non_members: u64,
    /// Campaigns not started because this node's term is [`Term::LAST`].
    pub campaigns_refused_term_exhausted: u64,
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
    log: RaftLog,
    /// Every configuration entry still in the log (plus the snapshot's), in index order. The
    /// last one is in effect: a configuration counts as soon as it is appended (thesis §4.1).
    memberships: Vec<(LogIndex, Membership)>,
    /// Ticks since the last heartbeat or election (followers), or since the last check-quorum
    /// round (leaders).
    election_elapsed: u64,
    /// Ticks since the leader's last heartbeat round.
    heartbeat_elapsed: u64,
    /// This round's election timeout, drawn from `[T, 2T)`.
    election_timeout_randomized: u64,
    /// Ticks since the node started; only for last-contact reporting.
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
    /// The term in which this node last sent TimeoutNow. From then on its lease is forfeited
    /// for the rest of that term (see `lease_is_valid`).
    timeout_now_sent_term: Option<Term>,
    /// The tick at which this node last heard from a leader of its term (AppendEntries,
    /// heartbeat, snapshot chunk). A node that may have acknowledged a leader before it
    /// restarted starts with `Some(0)`, as if it had just heard from one (see `node/lease.rs`).
    leader_contact_tick: Option<u64>,
    /// The latest snapshot this node holds (taken or installed).
    snapshot: Option<crate::ready::SnapshotMeta>,
    /// Follower: the snapshot being received and the offset expected next.
    incoming_snapshot: Option<(crate::ready::SnapshotMeta, u64)>,
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
        let (snapshot_index, snapshot_term, mut memberships) = match &snapshot {
            Some(meta) => (meta.index, meta.term, alloc::vec![(meta.index, meta.membership.clone())]),
            None => (LogIndex(0), Term(0), Vec::new()),
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
            if let EntryPayload::Membership(m) = &entry.payload {
                memberships.push((entry.index, (**m).clone()));
            }
        }
        let mut log = RaftLog::restore(snapshot_index, snapshot_term, entries);
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
            memberships,
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

    // ----- observers -------------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Who this node voted for in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The leader this node follows (or itself), if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Highest index known committed.
    pub fn commit_index(&self) -> LogIndex {
        self.log.committed
    }

    /// Highest index handed out to apply and acknowledged by `advance`.
    pub fn applied_index(&self) -> LogIndex {
        self.log.applied
    }

    /// Index of the last entry in the log.
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// Term of the last entry in the log.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }

    /// Highest index the driver has confirmed durable.
    pub fn stable_index(&self) -> LogIndex {
        self.log.stable
    }

    /// Last index covered by the snapshot; entries up to it are no longer in the log.
    pub fn snapshot_index(&self) -> LogIndex {
        self.log.snapshot_index()
    }

    /// The term of the entry at `index`, if the log still holds it.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term(index)
    }

    /// The entries the log holds (after the snapshot), in order.
    pub fn entries(&self) -> &[Entry] {
        self.log.all_entries()
    }

    /// The configuration in effect (the latest one in the log).
    pub fn membership(&self) -> &Membership {
        static EMPTY: Membership = Membership {
            voters: alloc::collections::BTreeSet::new(),
            voters_outgoing: alloc::collections::BTreeSet::new(),
            learners: alloc::collections::BTreeSet::new(),
        };
        self.memberships.last().map_or(&EMPTY, |(_, m)| m)
    }

    /// The hard state as it is now (possibly not yet persisted).
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, voted_for: self.voted_for, commit: self.log.committed }
    }

    /// The soft state as it is now.
    pub fn soft_state(&self) -> SoftState {
        SoftState { role: self.role, leader: self.leader, term: self.term }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Ticks this node has counted since it started.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Ticks since the last heartbeat or election round, and the timeout it counts towards.
    /// The playground draws this as the election timer's arc.
    pub fn election_timer(&self) -> (u64, u64) {
        let timeout = if self.role == Role::Leader {
            self.config.election_timeout_ticks
        } else {
            self.election_timeout_randomized
        };
        (self.election_elapsed, timeout)
    }

    /// Votes received in the current (pre-)election: (voter, granted).
    pub fn votes(&self) -> impl Iterator<Item = (NodeId, bool)> + '_ {
        self.votes.iter().map(|(&id, &granted)| (id, granted))
    }

    /// Leader only: the progress of every other member.
    pub fn follower_progress(&self) -> impl Iterator<Item = FollowerProgress> + '_ {
        self.progress.iter().map(|(&id, pr)| FollowerProgress {
            id,
            match_index: pr.match_index,
            next_index: pr.next_index,
            state: pr.state,
            inflight: pr.inflights.len(),
            ticks_since_contact: self.ticks.saturating_sub(pr.last_contact_tick),
        })
    }

    /// Whether this node may campaign: only voters do.
    fn is_promotable(&self) -> bool {
        self.membership().is_voter(self.config.id)
    }

    fn set_role(&mut self, role: Role) {
        if self.role != role {
            self.role = role;
            self.events.push(RaftEvent::RoleChanged { role, term: self.term });
        }
    }

    fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.events.push(RaftEvent::LeaderChanged { leader, term: self.term });
        }
    }

    /// Everything an operator asks about, in one snapshot.
    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.log.committed,
            applied_index: self.log.applied,
            last_index: self.log.last_index(),
            snapshot_index: self.snapshot.as_ref().map_or(LogIndex(0), |m| m.index),
            membership: self.membership().clone(),
            membership_index: self.membership_index(),
            ticks_since_leader_contact: if self.role == Role::Leader { 0 } else { self.election_elapsed },
            followers: self.follower_progress().collect(),
        }
    }

    // ----- inputs ----------------------------------------------------------------------------

    /// Advances the node's logical clock by one tick: election timeouts, heartbeats and
    /// check-quorum are all counted in ticks.
    pub fn tick(&mut self) {
        self.ticks += 1;
        self.election_elapsed += 1;
        self.expire_forwarded_reads();
        if self.role == Role::Leader {
            self.tick_leader();
        } else if self.election_elapsed >= self.election_timeout_randomized && self.is_promotable() {
            self.start_campaign(CampaignReason::ElectionTimeout);
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.tick_transfer();
        self.advance_catch_up();
        if self.election_elapsed >= self.config.election_timeout_ticks {
            self.election_elapsed = 0;
            if self.config.check_quorum && !self.check_quorum_round() {
                self.stats.check_quorum_step_downs += 1;
                self.events.push(RaftEvent::CheckQuorumFailed { term: self.term });
                self.become_follower(self.term, None);
                return;
            }
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_interval_ticks {
            self.broadcast_heartbeat();
        }
    }

    /// Thesis §6.2: a leader that heard from no majority during the last election timeout
    /// steps down, so clients can find the real leader.
    fn check_quorum_round(&mut self) -> bool {
        let me = self.config.id;
        let progress = &self.progress;
        let active = quorum::has_quorum(self.membership(), |id| {
            id == me || progress.get(&id).is_some_and(|pr| pr.recent_active)
        });
        for pr in self.progress.values_mut() {
            pr.recent_active = false;
        }
        active
    }

    /// Starts an election now, as if the election timer had fired.
    pub fn campaign(&mut self) {
        if self.role != Role::Leader && self.is_promotable() {
            self.start_campaign(CampaignReason::ElectionTimeout);
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

    /// Leader: appends an entry the protocol itself needs (leaving a joint configuration),
    /// past the checks that guard client proposals. Neither a leadership transfer nor a full
    /// uncommitted window may hold the cluster in C_old,new: nothing else would retry it
    /// until the next commit.
    fn append_protocol_entry(&mut self, payload: EntryPayload) {
        let index = self.log.last_index().next();
        let entry = Entry { term: self.term, index, payload };
        self.uncommitted_bytes += entry.size_bytes();
        self.append_as_leader(entry);
    }

    fn append_as_leader(&mut self, entry: Entry) {
        let membership_changed = if let EntryPayload::Membership(m) = &entry.payload {
            self.memberships.push((entry.index, (**m).clone()));
            self.events.push(RaftEvent::MembershipChanged { index: entry.index, membership: (**m).clone() });
            true
        } else {
            false
        };
        self.log.append_new(entry);
        self.needs_flush = true;
        if membership_changed {
            // A configuration counts as soon as it is appended (thesis §4.1).
            self.sync_progress_with_membership();
        }
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
                if self.is_promotable() {
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

    // ----- elections (§5.2, thesis §9.6) -----------------------------------------------------

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let timeout = self.config.election_timeout_ticks;
        self.election_timeout_randomized = self.rng.range(timeout, 2 * timeout);
    }

    fn hear_from_leader(&mut self, leader: NodeId) {
        self.election_elapsed = 0;
        self.leader_contact_tick = Some(self.ticks);
        if self.leader != Some(leader) {
            self.fail_reads();
        }
        self.set_leader(Some(leader));
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if self.role == Role::Leader || self.leader != leader {
            self.fail_reads();
        }
        self.transfer = None;
        self.catch_up = None;
        if term != self.term {
            debug_assert!(term > self.term, "terms never go back");
            self.term = term;
            self.voted_for = None;
        }
        self.set_role(Role::Follower);
        self.set_leader(leader);
        self.progress.clear();
        self.votes.clear();
        self.uncommitted_bytes = 0;
        self.needs_flush = false;
        self.reset_election_timer();
    }

    fn start_campaign(&mut self, reason: CampaignReason) {
        if self.term >= Term::LAST {
            // The election would need a term no node accepts (issue 11): never saturate.
            self.stats.campaigns_refused_term_exhausted += 1;
            self.reset_election_timer();
            return;
        }
        let kind = if self.config.pre_vote && reason == CampaignReason::ElectionTimeout {
            VoteKind::PreVote
        } else {
            VoteKind::Vote
        };
        self.campaign_round(kind, reason);
    }

    fn campaign_round(&mut self, kind: VoteKind, reason: CampaignReason) {
        self.fail_reads();
        self.transfer = None;
        self.catch_up = None;
        self.votes.clear();
        self.progress.clear();
        self.set_leader(None);
        self.reset_election_timer();
        let campaign_term = match kind {
            VoteKind::PreVote => {
                self.set_role(Role::PreCandidate);
                self.stats.pre_votes_started += 1;
                self.term.next()
            }
            VoteKind::Vote => {
                self.term = self.term.next();
                self.voted_for = Some(self.config.id);
                self.set_role(Role::Candidate);
                self.stats.elections_started += 1;
                self.term
            }
        };
        self.votes.insert(self.config.id, true);
        if self.tally_votes() == VoteResult::Won {
            self.on_vote_won(kind);
            return;
        }
        let me = self.config.id;
        let voters: Vec<NodeId> = self.membership().members().into_iter().filter(|&id| id != me).collect();
        let membership = self.membership().clone();
        for id in voters {
            if !membership.is_voter(id) {
                continue;
            }
            let body = MessageBody::VoteRequest {
                kind,
                reason,
                last_log_index: self.log.last_index(),
                last_log_term: self.log.last_term(),
            };
            // The candidate's own vote and new term must be durable before it asks for votes.
            self.messages_after_persist.push(Message { from: me, to: id, term: campaign_term, body });
        }
    }

    fn tally_votes(&self) -> VoteResult {
        let votes = &self.votes;
        quorum::vote_result(self.membership(), |id| votes.get(&id).copied())
    }

    fn on_vote_won(&mut self, kind: VoteKind) {
        match kind {
            VoteKind::PreVote => self.campaign_round(VoteKind::Vote, CampaignReason::ElectionTimeout),
            VoteKind::Vote => self.become_leader(),
        }
    }

    fn handle_vote_request(
        &mut self,
        message: &Message,
        kind: VoteKind,
        last_log_index: LogIndex,
        last_log_term: Term,
    ) {
        let candidate = message.from;
        let can_vote = match kind {
            // §5.2: one vote per term, first come first served; repeat a vote already given.
            VoteKind::Vote => {
                message.term == self.term
                    && (self.voted_for == Some(candidate)
                        || (self.voted_for.is_none() && self.leader.is_none()))
            }
            // A pre-vote only asks "would you": grant if the candidate's term would be newer.
            VoteKind::PreVote => message.term > self.term,
        };
        let granted = can_vote && self.log.is_up_to_date(last_log_index, last_log_term);
        if granted && kind == VoteKind::Vote {
            self.voted_for = Some(candidate);
            self.election_elapsed = 0;
        }
        let reply_term = if granted { message.term } else { self.term };
        let body = MessageBody::VoteResponse { kind, granted };
        // A granted vote promises that voted_for is durable (persist before you speak).
        self.messages_after_persist.push(Message {
            from: self.config.id,
            to: candidate,
            term: reply_term,
            body,
        });
    }

    fn handle_vote_response(&mut self, from: NodeId, term: Term, kind: VoteKind, granted: bool) {
        let expected = match (self.role, kind) {
            (Role::PreCandidate, VoteKind::PreVote) => term == self.term.next() || !granted,
            (Role::Candidate, VoteKind::Vote) => term == self.term,
            _ => false,
        };
        if !expected {
            return;
        }
        self.votes.insert(from, granted);
        match self.tally_votes() {
            VoteResult::Won => self.on_vote_won(kind),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    fn become_leader(&mut self) {
        debug_assert_eq!(self.role, Role::Candidate);
        self.set_role(Role::Leader);
        self.set_leader(Some(self.config.id));
        self.votes.clear();
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.uncommitted_bytes = 0;
        self.stats.terms_led += 1;
        let next = self.log.last_index().next();
        let me = self.config.id;
        self.progress = self
            .membership()
            .members()
            .into_iter()
            .filter(|&id| id != me)
            .map(|id| {
                let mut pr =
                    Progress::new(next, self.config.inflight_messages_max, self.config.inflight_bytes_max);
                pr.last_contact_tick = self.ticks;
                // A fresh leader gives everyone one check-quorum round to answer.
                pr.recent_active = true;
                (id, pr)
            })
            .collect();
        // §5.4.2 / §8: commit a no-op of our own term so earlier entries can be committed.
        let noop = Entry { term: self.term, index: next, payload: EntryPayload::Noop };
        self.append_as_leader(noop);
        self.maybe_commit();
    }

    // ----- replication (§5.3) ----------------------------------------------------------------

    fn handle_append(
        &mut self,
        leader: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: &[Entry],
        leader_commit: LogIndex,
    ) -> Result<(), StepError> {
        if prev_log_index < self.log.committed {
            // Everything up to our commit index already matches the leader (§5.4). Skip what we
            // hold and report how far we match; the leader sends the rest.
            let skip = (self.log.committed.0 - prev_log_index.0).min(entries.len() as u64) as usize;
            if skip < entries.len() {
                // `skip >= 1` because `prev_log_index < committed`.
                let rest = &entries[skip..];
                let prev = entries[skip - 1].index;
                let prev_term = entries[skip - 1].term;
                return self.handle_append(leader, prev, prev_term, rest, leader_commit);
            }
            let match_index = self.log.committed;
            let outcome = AppendOutcome::Accepted { match_index };
            self.send_after_persist(leader, MessageBody::AppendResponse { outcome });
            return Ok(());
        }
        match self.log.try_append(prev_log_index, prev_log_term, entries) {
            Ok(last_new) => {
                self.track_appended_memberships(entries);
                // Figure 2, rule 5: commit up to the leader's commit, but only within what this
                // message proved matches.
                self.log.commit_to(leader_commit.min(last_new));
                let outcome = AppendOutcome::Accepted { match_index: last_new };
                self.send_after_persist(leader, MessageBody::AppendResponse { outcome });
                Ok(())
            }
            Err(AppendError::Mismatch { hint_index, hint_term }) => {
                let outcome =
                    AppendOutcome::Rejected { rejected_index: prev_log_index, hint_index, hint_term };
                self.send_after_persist(leader, MessageBody::AppendResponse { outcome });
                Ok(())
            }
            Err(AppendError::WouldTruncateCommitted { index }) => {
                Err(StepError::WouldTruncateCommitted { index })
            }
        }
    }

    /// Keeps the configuration history in step with the log after an append that may have
    /// replaced a suffix.
    fn track_appended_memberships(&mut self, entries: &[Entry]) {
        let log = &self.log;
        self.memberships.retain(|(index, _)| {
            *index <= log.snapshot_index()
                || log.entry(*index).is_some_and(|e| matches!(e.payload, EntryPayload::Membership(_)))
        });
        for entry in entries {
            if let EntryPayload::Membership(m) = &entry.payload {
                let known = self.memberships.iter().any(|(index, _)| *index == entry.index);
                if !known && self.log.matches(entry.index, entry.term) {
                    self.memberships.push((entry.index, (**m).clone()));
                    let membership = (**m).clone();
                    self.events.push(RaftEvent::MembershipChanged { index: entry.index, membership });
                }
            }
        }
        self.memberships.sort_by_key(|(index, _)| *index);
    }

    /// Leader: `from` answered. Marks it active for check-quorum and returns whether it is a
    /// member this leader tracks (answers from strangers are counted and ignored).
    fn note_answer(&mut self, from: NodeId) -> bool {
        let ticks = self.ticks;
        match self.progress.get_mut(&from) {
            Some(pr) => {
                pr.recent_active = true;
                pr.last_contact_tick = ticks;
                true
            }
            None => {
                self.stats.messages_from_unknown += 1;
                false
            }
        }
    }

    fn handle_append_response(&mut self, from: NodeId, outcome: AppendOutcome) {
        if !self.note_answer(from) {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else { return };
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                if !pr.accept(match_index) {
                    return;
                }
                match pr.state {
                    ProgressState::Probe => pr.become_replicate(),
                    ProgressState::Replicate => pr.inflights.free_to(match_index),
                    // Caught up from the log after all (an answer from before the snapshot).
                    ProgressState::Snapshot if pr.match_index >= pr.snapshot_index => pr.become_replicate(),
                    ProgressState::Snapshot => {}
                }
                self.needs_flush = true;
                // Only an acknowledgement past the commit index can move it.
                if match_index > self.log.committed {
                    self.maybe_commit();
                }
                if self.transfer == Some(from) {
                    self.maybe_send_timeout_now();
                }
                if self.catch_up.is_some() {
                    self.advance_catch_up();
                }
            }
            AppendOutcome::Rejected { rejected_index, hint_index, hint_term } => {
                self.stats.append_rejections += 1;
                // Skip back a whole term at a time: the last index of ours whose term is at
                // most the follower's term at its hint may match.
                // A follower behind our compaction point can only be helped by a snapshot: aim
                // below the compacted prefix so the next send finds no term and streams one.
                let match_hint = if hint_index < self.log.snapshot_index() || hint_term.0 == 0 {
                    hint_index
                } else {
                    self.log.find_conflict_by_term(hint_index, hint_term).0
                };
                if pr.reject(rejected_index, match_hint) {
                    self.needs_flush = true;
                }
            }
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        if !self.note_answer(from) {
            return;
        }
        let ticks = self.ticks;
        let Some(pr) = self.progress.get_mut(&from) else { return };
        // Rounds are numbered by this leader; a larger one cannot be a genuine answer.
        if round <= self.round {
            pr.acked_round = pr.acked_round.max(round);
        }
        let mut resend_chunk = false;
        if pr.match_index < self.log.last_index() {
            match pr.state {
                // Resend the probe: the last one or its answer may have been lost.
                ProgressState::Probe => pr.probe_sent = false,
                ProgressState::Replicate => pr.check_lost_entries = pr.next_index > self.log.last_index(),
                // A chunk unanswered for two heartbeat intervals was lost: send it again.
                ProgressState::Snapshot => {
                    let waited = ticks.saturating_sub(pr.chunk_sent_tick);
                    resend_chunk =
                        !pr.chunk_outstanding || waited >= 2 * self.config.heartbeat_interval_ticks;
                }
            }
            self.needs_flush = true;
        }
        if resend_chunk {
            self.request_snapshot_chunk(from);
        }
        self.release_reads();
    }

    /// §5.3–5.4.2: commit the highest index a majority stores, but only by counting replicas
    /// of an entry from the current term (Figure 8).
    fn maybe_commit(&mut self) -> bool {
        let me = self.config.id;
        let stable = self.log.stable;
        let progress = &self.progress;
        let quorum_index = quorum::committed_index(self.membership(), |id| {
            if id == me {
                stable
            } else {
                progress.get(&id).map_or(LogIndex(0), |pr| pr.match_index)
            }
        });
        if quorum_index <= self.log.committed || self.log.term(quorum_index) != Some(self.term) {
            return false;
        }
        let newly_committed: u64 =
            self.log.slice(self.log.committed.next(), quorum_index).iter().map(Entry::size_bytes).sum();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(newly_committed);
        self.log.commit_to(quorum_index);
        self.needs_flush = true;
        self.unpark_reads();
        self.on_commit_membership();
        true
    }

    fn broadcast_heartbeat(&mut self) {
        self.round += 1;
        self.heartbeat_elapsed = 0;
        self.reads.round_sent(self.round, self.ticks);
        let me = self.config.id;
        for (&id, pr) in &self.progress {
            let commit = pr.match_index.min(self.log.committed);
            let body = MessageBody::Heartbeat { commit, context: self.round };
            self.messages.push(Message { from: me, to: id, term: self.term, body });
        }
    }

    /// Sends every AppendEntries that flow control allows. Called once per `Ready`, so proposals
    /// made between two batches travel together.
    fn send_appends(&mut self) {
        let me = self.config.id;
        let last_index = self.log.last_index();
        let committed = self.log.committed;
        for (&id, pr) in self.progress.iter_mut() {
            loop {
                if pr.is_paused() {
                    break;
                }
                let has_entries = pr.next_index <= last_index;
                // The commit index travels with the next AppendEntries or heartbeat (§5.3), so
                // a new commit alone sends nothing: that halves the messages per commit.
                // A probe with no entries still finds out where the follower's log stands.
                let probe_needed = pr.state == ProgressState::Probe && pr.match_index < pr.next_index.prev();
                if !has_entries && !pr.check_lost_entries && !probe_needed {
                    break;
                }
                pr.check_lost_entries = false;
                let prev_log_index = pr.next_index.prev();
                let Some(prev_log_term) = self.log.term(prev_log_index) else {
                    // Compacted away: this follower needs a snapshot (§7).
                    if let Some(meta) = &self.snapshot {
                        pr.become_snapshot(meta.index);
                        pr.chunk_outstanding = true;
                        pr.chunk_sent_tick = self.ticks;
                        let request =
                            crate::ready::SnapshotChunkRequest { to: id, meta: meta.clone(), offset: 0 };
                        self.snapshot_chunks_wanted.push(request);
                    }
                    break;
                };
                let entries = self.log.entries_from(
                    pr.next_index,
                    self.config.entries_per_message_max,
                    self.config.message_bytes_max,
                );
                let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
                let count = entries.len();
                pr.sent(prev_log_index.plus(count as u64), bytes, count);
                let body = MessageBody::AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit: committed,
                };
                self.messages.push(Message { from: me, to: id, term: self.term, body });
                if count == 0 || pr.state == ProgressState::Probe {
                    break;
                }
            }
        }
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.messages.push(Message { from: self.config.id, to, term: self.term, body });
    }

    fn send_after_persist(&mut self, to: NodeId, body: MessageBody) {
        self.messages_after_persist.push(Message { from: self.config.id, to, term: self.term, body });
    }

    // ----- the Ready cycle -------------------------------------------------------------------

    /// Whether [`RaftNode::ready`] would return anything. False while a `Ready` awaits `advance`.
    pub fn has_ready(&self) -> bool {
        if self.pending.is_some() {
            return false;
        }
        self.hard_state() != self.hard_state_handed_out
            || self.soft_state() != self.soft_state_handed_out
            || !self.messages.is_empty()
            || !self.messages_after_persist.is_empty()
            || self.log.unstable_from <= self.log.last_index()
            || self.log.committed > self.log.applied
            || !self.read_states.is_empty()
            || !self.events.is_empty()
            || !self.snapshot_chunks_wanted.is_empty()
            || !self.snapshot_chunks.is_empty()
            || self.snapshot_installed.is_some()
            || (self.role == Role::Leader && (self.needs_flush || self.reads.round_wanted))
    }

    /// Hands out everything to do (see [`Ready`] for the order). Returns an empty batch while an
    /// earlier one awaits [`RaftNode::advance`].
    pub fn ready(&mut self) -> Ready {
        if self.pending.is_some() {
            return Ready::default();
        }
        if self.role == Role::Leader && self.reads.round_wanted {
            // Every read registered since the last batch shares this one round.
            self.broadcast_heartbeat();
        }
        if self.role == Role::Leader && self.needs_flush {
            self.needs_flush = false;
            self.send_appends();
        }
        let hard_state = self.hard_state();
        let soft_state = self.soft_state();
        let entries = self.log.unstable_entries().to_vec();
        let committed_entries = self.log.entries_to_apply().to_vec();
        let pending = Pending {
            hard_state,
            soft_state,
            last_entry: entries.last().map(|e| (e.index, e.term)),
            applied_to: committed_entries.last().map_or(self.log.applied, |e| e.index),
        };
        self.log.unstable_from = self.log.last_index().next();
        self.pending = Some(pending);
        Ready {
            hard_state: (hard_state != self.hard_state_handed_out).then_some(hard_state),
            entries,
            messages: core::mem::take(&mut self.messages),
            messages_after_persist: core::mem::take(&mut self.messages_after_persist),
            committed_entries,
            soft_state: (soft_state != self.soft_state_handed_out).then_some(soft_state),
            read_states: self.take_read_states(),
            snapshot_chunks_wanted: core::mem::take(&mut self.snapshot_chunks_wanted),
            snapshot_chunks: core::mem::take(&mut self.snapshot_chunks),
            snapshot_installed: self.snapshot_installed.take(),
            events: core::mem::take(&mut self.events),
        }
    }

    /// Messages that may leave now, without waiting for the next `Ready`: heartbeats, a
    /// leader's AppendEntries (a leader may send entries before it has persisted them itself,
    /// thesis §10.2.1) and others that promise nothing about durable state. A driver may call
    /// this at any time, in particular while a `Ready` is being persisted, so that replication
    /// and heartbeats do not wait for the disk. Messages that must follow a persist stay queued
    /// for the next `Ready`.
    pub fn take_messages(&mut self) -> Vec<Message> {
        if self.role == Role::Leader && self.reads.round_wanted {
            self.broadcast_heartbeat();
        }
        if self.role == Role::Leader && self.needs_flush {
            self.needs_flush = false;
            self.send_appends();
        }
        core::mem::take(&mut self.messages)
    }

    /// Confirms that the last `Ready` was done: state persisted, messages sent, entries applied.
    pub fn advance(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.hard_state_handed_out = pending.hard_state;
        self.soft_state_handed_out = pending.soft_state;
        if let Some((index, term)) = pending.last_entry {
            // The log may have been cut and refilled since; only a matching entry is stable.
            if self.log.matches(index, term) && index > self.log.stable {
                self.log.stable = index;
            }
        }
        self.log.applied = self.log.applied.max(pending.applied_to);
        debug_assert!(self.log.applied <= self.log.committed, "applied <= committed");
        if self.role == Role::Leader && self.log.stable > self.log.committed {
            // The leader counts itself only once its own entries are durable.
            self.maybe_commit();
        }
    }
}
