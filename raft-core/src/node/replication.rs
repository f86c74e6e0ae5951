//! Log replication (§5.3) and commitment (§5.4.2): the follower's side of AppendEntries, the
//! leader's handling of answers through flow control (see [`crate::progress`]), and the
//! leader's commit rule.

use super::RaftNode;
use crate::error::StepError;
use crate::events::RaftEvent;
use crate::log::AppendError;
use crate::message::{AppendOutcome, Message, MessageBody};
use crate::progress::{Flow, Recovery};
use crate::quorum;
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, Role, Term};

impl RaftNode {
    /// Leader: appends an entry the protocol itself needs (leaving a joint configuration),
    /// past the checks that guard client proposals. Neither a leadership transfer nor a full
    /// uncommitted window may hold the cluster in C_old,new: nothing else would retry it
    /// until the next commit.
    pub(super) fn append_protocol_entry(&mut self, payload: EntryPayload) {
        let index = self.log.last_index().next();
        let entry = Entry { term: self.term, index, payload };
        self.uncommitted_bytes += entry.size_bytes();
        self.append_as_leader(entry);
    }

    pub(super) fn append_as_leader(&mut self, entry: Entry) {
        let membership_changed = matches!(entry.payload, EntryPayload::Membership(_));
        self.log.append_new(entry);
        self.needs_flush = true;
        if membership_changed {
            // A configuration counts as soon as it is appended (thesis §4.1).
            self.report_membership();
            self.sync_progress_with_membership();
        }
    }

    /// Identifies the configuration in force cheaply: its index and the term of its entry.
    pub(super) fn membership_id(&self) -> (LogIndex, Option<Term>) {
        let index = self.log.membership().0;
        (index, self.log.term(index))
    }

    pub(super) fn report_membership(&mut self) {
        let (index, membership) = self.log.membership();
        let membership = membership.clone();
        self.events.push(RaftEvent::MembershipChanged { index, membership });
    }

    // ----- replication (§5.3) ----------------------------------------------------------------

    pub(super) fn handle_append(
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
        let membership_before = self.membership_id();
        let appended = self.log.try_append(prev_log_index, prev_log_term, entries);
        if self.membership_id() != membership_before {
            // Appended, or rolled back with a truncated suffix (thesis §4.1).
            self.report_membership();
        }
        match appended {
            Ok(last_new) => {
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

    /// Leader: `from` answered. Notes the contact for check-quorum and returns whether it is a
    /// member this leader tracks (answers from strangers are counted and ignored).
    pub(super) fn note_answer(&mut self, from: NodeId) -> bool {
        let ticks = self.ticks;
        match self.progress.get_mut(&from) {
            Some(pr) => {
                pr.last_contact_tick = ticks;
                true
            }
            None => {
                self.stats.messages_from_unknown += 1;
                false
            }
        }
    }

    pub(super) fn handle_append_response(&mut self, from: NodeId, outcome: AppendOutcome) {
        if !self.note_answer(from) {
            return;
        }
        let round = self.round;
        let Some(pr) = self.progress.get_mut(&from) else { return };
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                if !pr.accept(match_index, round) {
                    return;
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
                let below_compaction = self.log.compacted_index().prev();
                let match_hint = if hint_index < self.log.compacted_index() || hint_term.0 == 0 {
                    hint_index
                } else {
                    // Nothing we still hold qualifies: the match point is compacted away (§7).
                    self.log.find_conflict_by_term(hint_index, hint_term).map_or(below_compaction, |(i, _)| i)
                };
                if pr.reject(rejected_index, match_hint) {
                    self.needs_flush = true;
                }
            }
        }
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        if !self.note_answer(from) {
            return;
        }
        let ticks = self.ticks;
        let last_index = self.log.last_index();
        // A chunk unanswered for two heartbeat intervals was lost: send it again.
        let chunk_resend_ticks = 2 * self.config.heartbeat_interval_ticks;
        // Rounds are numbered by this leader; a larger one cannot be a genuine answer.
        let round = if round <= self.round { round } else { 0 };
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.acked_round = pr.acked_round.max(round);
        let mut resend_chunk = false;
        if pr.match_index < last_index {
            // The follower is reachable and behind: whatever should have caught it up may have
            // been lost, and every flow-control state has its way to make progress again.
            resend_chunk = pr.recover(round, last_index, ticks, chunk_resend_ticks) == Recovery::ResendChunk;
            self.needs_flush = true;
        }
        if resend_chunk {
            self.request_snapshot_chunk(from);
        }
        self.release_reads();
    }

    /// Leader: the driver could not reach `peer` (a connection failed or dropped; etcd's
    /// `ReportUnreachable`). AppendEntries in flight to it are presumed lost: a replicating
    /// follower goes back to probing from its match point, and a snapshot chunk in flight is
    /// asked for again at the next heartbeat answer (§5.3: the leader retries indefinitely).
    /// Ignored on a non-leader or for a peer this leader does not track.
    pub fn report_unreachable(&mut self, peer: NodeId) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.unreachable();
            self.needs_flush = true;
        }
    }

    /// §5.3–5.4.2: commit the highest index a majority stores, but only by counting replicas
    /// of an entry from the current term (Figure 8).
    pub(super) fn maybe_commit(&mut self) -> bool {
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

    pub(super) fn broadcast_heartbeat(&mut self) {
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
    pub(super) fn send_appends(&mut self) {
        let me = self.config.id;
        let last_index = self.log.last_index();
        let committed = self.log.committed;
        let round = self.round;
        for (&id, pr) in self.progress.iter_mut() {
            loop {
                if pr.is_paused() {
                    break;
                }
                let has_entries = pr.next_index <= last_index;
                // The commit index travels with the next AppendEntries or heartbeat (§5.3), so
                // a new commit alone sends nothing: that halves the messages per commit.
                // A probe with no entries still finds out where the follower's log stands.
                let probing = matches!(pr.flow, Flow::Probe { .. });
                let probe_needed = probing && pr.match_index < pr.next_index.prev();
                if !has_entries && !pr.check_lost_entries && !probe_needed {
                    break;
                }
                pr.check_lost_entries = false;
                let prev_log_index = pr.next_index.prev();
                let Some(prev_log_term) = self.log.term(prev_log_index) else {
                    // Compacted away: this follower needs a snapshot (§7).
                    if let Some(meta) = &self.snapshot {
                        pr.become_snapshot(meta.index, self.ticks);
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
                pr.sent(prev_log_index.plus(count as u64), bytes, count, round);
                let body = MessageBody::AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit: committed,
                };
                self.messages.push(Message { from: me, to: id, term: self.term, body });
                if count == 0 || probing {
                    break;
                }
            }
        }
    }

    pub(super) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.messages.push(Message { from: self.config.id, to, term: self.term, body });
    }

    pub(super) fn send_after_persist(&mut self, to: NodeId, body: MessageBody) {
        self.messages_after_persist.push(Message { from: self.config.id, to, term: self.term, body });
    }
}
