//! Elections (§5.2) with pre-vote (thesis §9.6) and check-quorum (thesis §6.2): timers,
//! campaigns, votes, and the role changes they lead to.

use super::RaftNode;
use crate::message::{CampaignReason, Message, MessageBody, VoteKind};
use crate::progress::Progress;
use crate::quorum::{self, VoteResult};
use crate::types::{Entry, EntryPayload, LogIndex, NodeId, Role, Term};
use alloc::vec::Vec;

impl RaftNode {
    /// Thesis §6.2: a leader steps down once an election timeout has passed without hearing
    /// from a majority, so clients can find the real leader. Evaluated on every tick against
    /// each member's last answer (a sliding window), not once per timeout-long round: a round
    /// that began just before the leader was cut off would let it lead on, unheard, for up to
    /// two timeouts, and its clients wait that long for a `leadership_lost` answer.
    ///
    /// Stepping down sooner only shortens the leader's lease (`lease_is_valid` needs the
    /// leader role), so lease reads stay within what followers promise (see `node/lease.rs`).
    pub(super) fn heard_from_quorum_within(&self, window: u64) -> bool {
        self.quorum_silence_ticks() < window
    }

    /// Leader: ticks since a majority (of both halves when joint, thesis §4.3) last answered,
    /// i.e. the smallest age `a` such that the members heard from within `a` ticks make a
    /// quorum. The leader counts as heard from now; a member it tracks no progress for never.
    /// Check-quorum steps down when this reaches the election timeout.
    pub(super) fn quorum_silence_ticks(&self) -> u64 {
        let me = self.config.id;
        let ticks = self.ticks;
        let progress = &self.progress;
        let age_of = |id: NodeId| {
            if id == me {
                0
            } else {
                progress.get(&id).map_or(u64::MAX, |pr| ticks.saturating_sub(pr.last_contact_tick))
            }
        };
        let mut ages: Vec<u64> = progress.keys().map(|&id| age_of(id)).collect();
        ages.push(0);
        ages.sort_unstable();
        ages.dedup();
        let membership = self.membership();
        ages.into_iter()
            .find(|&age| quorum::has_quorum(membership, |id| age_of(id) <= age))
            .unwrap_or(u64::MAX)
    }

    /// Starts an election now, as if the election timer had fired. Does nothing on a leader, a
    /// server that is not a voter, or one that does not campaign ([`crate::Config::campaigns`]).
    pub fn campaign(&mut self) {
        if self.role != Role::Leader && self.may_campaign() {
            self.start_campaign(CampaignReason::ElectionTimeout);
        }
    }

    /// Whether this node may start a (pre-)election now: it campaigns at all
    /// ([`crate::Config::campaigns`]) and is a voter (or was removed by a configuration not yet
    /// committed, see `is_promotable`).
    pub(super) fn may_campaign(&self) -> bool {
        self.config.campaigns && self.is_promotable()
    }

    // ----- elections (§5.2, thesis §9.6) -----------------------------------------------------

    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let timeout = self.config.election_timeout_ticks;
        self.election_timeout_randomized = self.rng.range(timeout, 2 * timeout);
    }

    pub(super) fn hear_from_leader(&mut self, leader: NodeId) {
        self.election_elapsed = 0;
        self.leader_contact_tick = Some(self.ticks);
        if self.leader != Some(leader) {
            self.fail_reads();
        }
        self.set_leader(Some(leader));
    }

    /// A node that never campaigns (a learner, or a voter with `Config::campaigns` false)
    /// forgets its leader once an election timeout passes without hearing from it: thesis §3.4
    /// ("if a follower receives no communication over a period of time called the election
    /// timeout, then it assumes there is no viable leader"), and §6.2, which asks followers to
    /// drop stale leader information so that they do not keep redirecting clients to a server
    /// that is gone. A campaigning follower drops it when it campaigns. Only the hint goes:
    /// `leader_contact_tick` is left as it is, because the quiet period that withholds votes
    /// (thesis §4.2.3) and backs a leader's lease (§6.4.1) is measured from it.
    pub(super) fn forget_silent_leader(&mut self) {
        if self.leader.is_some() && !self.heard_from_leader_recently() {
            self.set_leader(None);
        }
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
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

    pub(super) fn start_campaign(&mut self, reason: CampaignReason) {
        // The one door to candidacy (`campaign_round` is entered only from here, or from a won
        // pre-vote, which needs a pre-candidate): a node that does not campaign never passes.
        if !self.config.campaigns {
            return;
        }
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

    pub(super) fn campaign_round(&mut self, kind: VoteKind, reason: CampaignReason) {
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

    pub(super) fn tally_votes(&self) -> VoteResult {
        let votes = &self.votes;
        quorum::vote_result(self.membership(), |id| votes.get(&id).copied())
    }

    pub(super) fn on_vote_won(&mut self, kind: VoteKind) {
        match kind {
            VoteKind::PreVote => self.campaign_round(VoteKind::Vote, CampaignReason::ElectionTimeout),
            VoteKind::Vote => self.become_leader(),
        }
    }

    pub(super) fn handle_vote_request(
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

    pub(super) fn handle_vote_response(&mut self, from: NodeId, term: Term, kind: VoteKind, granted: bool) {
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

    pub(super) fn become_leader(&mut self) {
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
                // A fresh leader gives everyone an election timeout to answer.
                pr.last_contact_tick = self.ticks;
                (id, pr)
            })
            .collect();
        // §5.4.2 / §8: commit a no-op of our own term so earlier entries can be committed.
        let noop = Entry { term: self.term, index: next, payload: EntryPayload::Noop };
        self.append_as_leader(noop);
        self.maybe_commit();
    }
}
