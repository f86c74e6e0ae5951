//! Clients waiting for their proposed entries, and what each is told when the answer is not
//! the entry's own response.
//!
//! A waiter is keyed by the index its entry was proposed at, with the term it was proposed in.
//! It is answered exactly once:
//! - **applied**: the entry at its index has its term: the state machine's response;
//! - **not applied**: the entry at its index has another term. Committed entries are never
//!   replaced, so the proposed one will never be applied; a retry is safe even without a
//!   session;
//! - **outcome unknown**: the node stopped leading while the entry was uncommitted (the next
//!   leader may still commit it), or an installed snapshot skipped the index (the entry may be
//!   inside the snapshot). The client retries with the same session sequence and the session
//!   cache answers a retry of an entry that was applied (thesis §6.3).
//!
//! Invariant: every waiter is answered once: by [`PendingWrites::on_applied`], one of the
//! failure paths, or [`PendingWrites::fail_all`] at shutdown.

use crate::raft::{Applied, Outcome, RaftError, Reply};
use bytes::Bytes;
use raft_core::{LogIndex, Term};
use std::collections::BTreeMap;

/// Who waits for an entry to be applied.
pub(crate) enum Waiter {
    /// A command's proposer, waiting for its response.
    Apply(Reply<Applied>),
    /// A barrier or membership change, waiting for its index to be applied.
    Barrier(Reply<LogIndex>),
}

impl Waiter {
    fn fail(self, error: RaftError) {
        match self {
            Waiter::Apply(reply) => {
                let _ = reply.send(Err(error));
            }
            Waiter::Barrier(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// The waiters of one node, by index.
#[derive(Default)]
pub(crate) struct PendingWrites {
    waiters: BTreeMap<LogIndex, (Term, Waiter)>,
}

impl PendingWrites {
    /// Registers the proposer of the entry at `index` in `term`.
    pub(crate) fn insert(&mut self, index: LogIndex, term: Term, waiter: Waiter) {
        if let Some((_, earlier)) = self.waiters.insert(index, (term, waiter)) {
            // A new proposal at an index still awaited: the earlier entry there was replaced
            // (a new leadership term reused the slot) and can never apply.
            earlier.fail(RaftError::LeadershipLost { outcome: Outcome::NotApplied });
        }
    }

    /// Waiting clients.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }

    /// The entry at `index` of `term` was applied with `response`: answers its waiter, and the
    /// waiters below it, which it passed over.
    pub(crate) fn on_applied(&mut self, index: LogIndex, term: Term, response: &Bytes) {
        while let Some(mut first) = self.waiters.first_entry() {
            let waiting_at = *first.key();
            if waiting_at > index {
                break;
            }
            let (proposed_term, _) = *first.get_mut();
            let (_, waiter) = first.remove();
            if waiting_at < index {
                // Entries are applied one by one, in order: an index passed over was covered by
                // an installed snapshot, which may hold the entry.
                waiter.fail(RaftError::LeadershipLost { outcome: Outcome::Unknown });
            } else if proposed_term != term {
                waiter.fail(RaftError::LeadershipLost { outcome: Outcome::NotApplied });
            } else {
                match waiter {
                    Waiter::Apply(reply) => {
                        let _ = reply.send(Ok(Applied { index, response: response.clone() }));
                    }
                    Waiter::Barrier(reply) => {
                        let _ = reply.send(Ok(index));
                    }
                }
            }
        }
    }

    /// A snapshot from the leader replaced the state through `through`: the waiters at or below
    /// it will never see their entry applied here, and their entries may be inside it.
    pub(crate) fn on_snapshot_installed(&mut self, through: LogIndex) -> usize {
        let above = self.waiters.split_off(&through.next());
        let covered = std::mem::replace(&mut self.waiters, above);
        let count = covered.len();
        for (_, (_, waiter)) in covered {
            waiter.fail(RaftError::LeadershipLost { outcome: Outcome::Unknown });
        }
        count
    }

    /// This node stopped leading: every waiter is answered now, as outcome unknown (the next
    /// leader may commit the entry or not), so its client retries at the new leader at once
    /// instead of waiting out its timeout.
    pub(crate) fn on_leadership_lost(&mut self) -> usize {
        let count = self.waiters.len();
        self.fail_all(RaftError::LeadershipLost { outcome: Outcome::Unknown });
        count
    }

    /// Answers every waiter with `error` (shutdown).
    pub(crate) fn fail_all(&mut self, error: RaftError) {
        for (_, (_, waiter)) in std::mem::take(&mut self.waiters) {
            waiter.fail(error.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn apply_waiter() -> (Waiter, oneshot::Receiver<Result<Applied, RaftError>>) {
        let (reply, receive) = oneshot::channel();
        (Waiter::Apply(reply), receive)
    }

    fn answer(mut receive: oneshot::Receiver<Result<Applied, RaftError>>) -> Result<Applied, RaftError> {
        receive.try_recv().expect("the waiter was answered")
    }

    const UNKNOWN: RaftError = RaftError::LeadershipLost { outcome: Outcome::Unknown };
    const NOT_APPLIED: RaftError = RaftError::LeadershipLost { outcome: Outcome::NotApplied };

    #[test]
    fn the_entry_itself_answers_and_a_replaced_entry_is_not_applied() {
        let mut pending = PendingWrites::default();
        let (own, own_answer) = apply_waiter();
        let (replaced, replaced_answer) = apply_waiter();
        pending.insert(LogIndex(3), Term(2), own);
        pending.insert(LogIndex(4), Term(2), replaced);
        pending.on_applied(LogIndex(3), Term(2), &Bytes::from_static(b"ok"));
        let applied = answer(own_answer).unwrap();
        assert_eq!((applied.index, applied.response), (LogIndex(3), Bytes::from_static(b"ok")));
        // Another leader's entry took index 4: ours can never be committed.
        pending.on_applied(LogIndex(4), Term(3), &Bytes::new());
        assert_eq!(answer(replaced_answer).unwrap_err(), NOT_APPLIED);
        assert_eq!(pending.len(), 0);
    }

    /// Issue 12, defect 3: an index passed over by an installed snapshot is not "not applied":
    /// the snapshot may hold the entry.
    #[test]
    fn a_waiter_skipped_by_an_installed_snapshot_is_told_outcome_unknown() {
        let mut pending = PendingWrites::default();
        let (covered, covered_answer) = apply_waiter();
        let (later, later_answer) = apply_waiter();
        pending.insert(LogIndex(5), Term(2), covered);
        pending.insert(LogIndex(12), Term(2), later);
        assert_eq!(pending.on_snapshot_installed(LogIndex(10)), 1);
        assert_eq!(answer(covered_answer).unwrap_err(), UNKNOWN);
        assert_eq!(pending.len(), 1);
        // Also when the skip is only seen at the next applied entry.
        let (skipped, skipped_answer) = apply_waiter();
        pending.insert(LogIndex(11), Term(2), skipped);
        pending.on_applied(LogIndex(12), Term(2), &Bytes::new());
        assert_eq!(answer(skipped_answer).unwrap_err(), UNKNOWN);
        assert!(answer(later_answer).is_ok());
    }

    /// Issue 12, defect 2: a leader that steps down answers every waiter at once.
    #[test]
    fn losing_leadership_answers_every_waiter_as_outcome_unknown() {
        let mut pending = PendingWrites::default();
        let (first, first_answer) = apply_waiter();
        let (barrier_reply, mut barrier_answer) = oneshot::channel();
        pending.insert(LogIndex(7), Term(4), first);
        pending.insert(LogIndex(8), Term(4), Waiter::Barrier(barrier_reply));
        assert_eq!(pending.on_leadership_lost(), 2);
        assert_eq!(answer(first_answer).unwrap_err(), UNKNOWN);
        assert_eq!(barrier_answer.try_recv().unwrap().unwrap_err(), UNKNOWN);
        assert!(UNKNOWN.is_retryable() && NOT_APPLIED.is_retryable());
    }
}
