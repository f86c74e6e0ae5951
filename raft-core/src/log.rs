//! The replicated log as one node holds it: compacted prefix, entries, and the three marks that
//! move along it (committed, applied, stable).
//!
//! Invariants: `applied <= committed`, `committed <= last_index`, and every entry at or below
//! `committed` is never removed (§5.4: committed entries are permanent).

use crate::types::{Entry, EntryPayload, LogIndex, Membership, Term};
use alloc::vec::Vec;

/// Why appending a leader's entries failed the consistency check (§5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendError {
    /// No entry at `prev_log_index` with `prev_log_term`; the hint tells the leader where to look.
    Mismatch { hint_index: LogIndex, hint_term: Term },
    /// Accepting would remove a committed entry: the leader's log contradicts ours.
    WouldTruncateCommitted { index: LogIndex },
}

/// One node's log, and with it the configuration in force.
///
/// The configuration is not kept anywhere else: it is the configuration entry with the highest
/// index still in the log, or, when the log holds none, the one in force at the compaction
/// point. Every change to the entries goes through this type, which keeps the index of the
/// configuration entries in step with them, so that a truncated configuration entry is rolled
/// back with the entry itself (thesis §4.1), including when the entry replacing it is another
/// configuration entry.
#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    /// Last index compacted away (covered by a snapshot); the log's entries start after it.
    compacted_index: LogIndex,
    /// Term of the entry at `compacted_index`.
    compacted_term: Term,
    /// The configuration in force at `compacted_index` and the index it counts from (its own
    /// entry's index when this node compacted it, the snapshot's index when it was installed).
    compacted_membership: (LogIndex, Membership),
    /// `entries[k].index == compacted_index + 1 + k`.
    entries: Vec<Entry>,
    /// Indexes of the configuration entries in `entries`, ascending.
    /// Invariant: exactly the entries whose payload is a membership.
    membership_indexes: Vec<LogIndex>,
    /// Highest index known to be committed.
    pub(crate) committed: LogIndex,
    /// Highest index handed to the application to apply.
    pub(crate) applied: LogIndex,
    /// Highest index the driver has confirmed durable.
    pub(crate) stable: LogIndex,
    /// First index not yet handed to the driver to persist.
    pub(crate) unstable_from: LogIndex,
}

impl RaftLog {
    /// A log restored from storage: everything given is durable already. `membership` is the
    /// configuration in force at `compacted_index` (a snapshot's) with its own entry's index,
    /// empty for a log from index 1.
    pub(crate) fn restore(
        compacted_index: LogIndex,
        compacted_term: Term,
        membership: (LogIndex, Membership),
        entries: Vec<Entry>,
    ) -> RaftLog {
        let last = LogIndex(compacted_index.0 + entries.len() as u64);
        let membership_indexes = membership_indexes_of(&entries);
        RaftLog {
            compacted_index,
            compacted_term,
            compacted_membership: (membership.0.min(compacted_index), membership.1),
            entries,
            membership_indexes,
            committed: compacted_index,
            applied: compacted_index,
            stable: last,
            unstable_from: last.next(),
        }
    }

    /// The last index compacted away: the log's entries start right after it.
    pub(crate) fn compacted_index(&self) -> LogIndex {
        self.compacted_index
    }

    pub(crate) fn first_index(&self) -> LogIndex {
        self.compacted_index.next()
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.compacted_index.0 + self.entries.len() as u64)
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.compacted_term, |e| e.term)
    }

    /// The configuration in force: the latest in the log, whether committed or not (thesis
    /// §4.1), and the index it counts from.
    pub(crate) fn membership(&self) -> (LogIndex, &Membership) {
        match self.membership_indexes.last() {
            Some(&index) => (index, self.membership_entry(index)),
            None => (self.compacted_membership.0, &self.compacted_membership.1),
        }
    }

    /// The configuration in force at `index`: the latest appended at or before it. Below the
    /// compaction point only the one in force there is known.
    pub(crate) fn membership_at(&self, index: LogIndex) -> &Membership {
        self.membership_with_index_at(index).1
    }

    /// [`RaftLog::membership_at`] with the index of that configuration's own entry.
    pub(crate) fn membership_with_index_at(&self, index: LogIndex) -> (LogIndex, &Membership) {
        let position = self.membership_indexes.partition_point(|&i| i <= index);
        match position.checked_sub(1) {
            Some(k) => (self.membership_indexes[k], self.membership_entry(self.membership_indexes[k])),
            None => (self.compacted_membership.0, &self.compacted_membership.1),
        }
    }

    /// The configuration of the configuration entry at `index` (one of `membership_indexes`).
    fn membership_entry(&self, index: LogIndex) -> &Membership {
        match self.entry(index).map(|e| &e.payload) {
            Some(EntryPayload::Membership(m)) => m,
            // The invariant of `membership_indexes` rules this out.
            _ => unreachable!("membership index {index} does not hold a configuration"),
        }
    }

    /// The term of the entry at `index`, if this log still knows it.
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.compacted_index {
            return Some(self.compacted_term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.compacted_index {
            return None;
        }
        let offset = usize::try_from(index.0 - self.compacted_index.0 - 1).ok()?;
        self.entries.get(offset)
    }

    fn offset(&self, index: LogIndex) -> usize {
        debug_assert!(index > self.compacted_index);
        (index.0 - self.compacted_index.0 - 1) as usize
    }

    pub(crate) fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// §5.4.1: is a log ending at (`last_index`, `last_term`) at least as up to date as ours?
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term() || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Appends one new entry as leader. The caller sets its index to `last_index + 1`.
    pub(crate) fn append_new(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index().next());
        self.push(entry);
    }

    /// The one place entries are added: keeps `membership_indexes` in step.
    fn push(&mut self, entry: Entry) {
        if matches!(entry.payload, EntryPayload::Membership(_)) {
            self.membership_indexes.push(entry.index);
        }
        self.entries.push(entry);
    }

    /// AppendEntries receiver rules 2–4 (§5.3, Figure 2): check that we hold `prev`, skip entries
    /// we already have, truncate at the first conflict, append the rest. Returns the index of the
    /// last entry of the request, which now matches the leader's log.
    ///
    /// A stale or duplicated request whose entries all match changes nothing: the log is never
    /// truncated unless an entry really conflicts.
    pub(crate) fn try_append(
        &mut self,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: &[Entry],
    ) -> Result<LogIndex, AppendError> {
        if !self.matches(prev_log_index, prev_log_term) {
            let hint_index = prev_log_index.min(self.last_index());
            // Our compaction point is committed, so it matches the leader's log whatever its term.
            let (hint_index, hint_term) = self
                .find_conflict_by_term(hint_index, prev_log_term)
                .unwrap_or((self.compacted_index, self.compacted_term));
            return Err(AppendError::Mismatch { hint_index, hint_term });
        }
        let last_new = prev_log_index.plus(entries.len() as u64);
        // Find the first entry we do not already hold with the same term.
        let mut first_new = entries.len();
        for (k, entry) in entries.iter().enumerate() {
            if entry.index <= self.compacted_index {
                continue; // covered by our snapshot: committed, hence matching.
            }
            if self.term(entry.index) != Some(entry.term) {
                first_new = k;
                break;
            }
        }
        if first_new == entries.len() {
            return Ok(last_new);
        }
        let conflict_index = entries[first_new].index;
        if conflict_index <= self.last_index() {
            if conflict_index <= self.committed {
                return Err(AppendError::WouldTruncateCommitted { index: conflict_index });
            }
            self.truncate_from(conflict_index);
        }
        for entry in &entries[first_new..] {
            self.push(entry.clone());
        }
        Ok(last_new)
    }

    /// Discards entries up to and including `index` (they are in a snapshot). Only applied
    /// entries are ever compacted.
    pub(crate) fn compact_to(&mut self, index: LogIndex) {
        if index <= self.compacted_index || index > self.applied {
            return;
        }
        let Some(term) = self.term(index) else {
            return;
        };
        // The configuration in force at the new compaction point outlives its entry.
        let compacted = self.membership_indexes.partition_point(|&i| i <= index);
        if let Some(k) = compacted.checked_sub(1) {
            let at = self.membership_indexes[k];
            self.compacted_membership = (at, self.membership_entry(at).clone());
        }
        self.membership_indexes.drain(..compacted);
        let drop = self.offset(index) + 1;
        self.entries.drain(..drop);
        self.compacted_index = index;
        self.compacted_term = term;
        self.unstable_from = self.unstable_from.max(index.next());
    }

    /// Installs a snapshot ending at (`index`, `term`) (§7): if the log holds that entry, the
    /// entries after it are kept; otherwise the whole log is replaced. Everything kept is
    /// handed out to persist again, so storage can simply start over from the snapshot.
    pub(crate) fn install_snapshot(
        &mut self,
        index: LogIndex,
        term: Term,
        membership: (LogIndex, Membership),
    ) {
        if self.matches(index, term) && index > self.compacted_index {
            let drop = self.offset(index) + 1;
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.membership_indexes = membership_indexes_of(&self.entries);
        // A configuration's index never lies after the snapshot's (a peer's claim is clamped).
        self.compacted_membership = (membership.0.min(index), membership.1);
        self.compacted_index = index;
        self.compacted_term = term;
        self.committed = self.committed.max(index);
        self.applied = index;
        self.stable = index;
        self.unstable_from = index.next();
    }

    /// Removes every entry from `index` on. Never called on committed entries.
    fn truncate_from(&mut self, index: LogIndex) {
        assert!(index > self.committed, "truncating committed entry {index}");
        let offset = self.offset(index);
        self.entries.truncate(offset);
        // A configuration entry goes with its entry: the one before it is in force again.
        let kept = self.membership_indexes.partition_point(|&i| i < index);
        self.membership_indexes.truncate(kept);
        self.stable = self.stable.min(index.prev());
        self.unstable_from = self.unstable_from.min(index);
    }

    /// The largest index `<= index` whose term is `<= term`, with that term, or `None` when no
    /// index this log still knows qualifies (only compacted ones could). Used on both sides of a
    /// rejected AppendEntries to skip a whole term per round trip (§5.3).
    ///
    /// The compaction point qualifies only if its term does: answering it regardless would
    /// send a leader back to probing the same index forever instead of sending a snapshot (§7).
    pub(crate) fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> Option<(LogIndex, Term)> {
        let mut i = index.min(self.last_index());
        while i > self.compacted_index {
            match self.term(i) {
                Some(t) if t <= term => return Some((i, t)),
                _ => i = i.prev(),
            }
        }
        (i == self.compacted_index && self.compacted_term <= term).then_some((i, self.compacted_term))
    }

    /// Entries from `from` on, at most `count_max` of them and about `bytes_max` bytes (at least
    /// one entry when any exists).
    pub(crate) fn entries_from(&self, from: LogIndex, count_max: usize, bytes_max: u64) -> Vec<Entry> {
        if from <= self.compacted_index || from > self.last_index() {
            return Vec::new();
        }
        let start = self.offset(from);
        let mut end = start;
        let mut bytes = 0u64;
        while end < self.entries.len() && end - start < count_max {
            let size = self.entries[end].size_bytes();
            if end > start && bytes + size > bytes_max {
                break;
            }
            bytes += size;
            end += 1;
        }
        self.entries[start..end].to_vec()
    }

    /// Entries between `from` and `to`, both inclusive, borrowed.
    pub(crate) fn slice(&self, from: LogIndex, to: LogIndex) -> &[Entry] {
        if to < from || from <= self.compacted_index || to > self.last_index() {
            return &[];
        }
        &self.entries[self.offset(from)..=self.offset(to)]
    }

    /// Raises the commit index; it never goes down.
    pub(crate) fn commit_to(&mut self, index: LogIndex) -> bool {
        let index = index.min(self.last_index());
        if index > self.committed {
            self.committed = index;
            true
        } else {
            false
        }
    }

    /// Entries that are committed but not yet handed out to apply.
    pub(crate) fn entries_to_apply(&self) -> &[Entry] {
        self.slice(self.applied.next(), self.committed)
    }

    /// Entries not yet handed out to persist.
    pub(crate) fn unstable_entries(&self) -> &[Entry] {
        self.slice(self.unstable_from.max(self.first_index()), self.last_index())
    }

    /// Every entry held (after the snapshot).
    pub(crate) fn all_entries(&self) -> &[Entry] {
        &self.entries
    }
}

fn membership_indexes_of(entries: &[Entry]) -> Vec<LogIndex> {
    entries.iter().filter(|e| matches!(e.payload, EntryPayload::Membership(_))).map(|e| e.index).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryPayload;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: LogIndex(index), payload: EntryPayload::Noop }
    }

    fn log_with_terms(terms: &[u64]) -> RaftLog {
        let entries = terms.iter().enumerate().map(|(k, t)| entry(k as u64 + 1, *t)).collect();
        RaftLog::restore(LogIndex(0), Term(0), (LogIndex(0), Membership::default()), entries)
    }

    #[test]
    fn duplicate_append_never_truncates() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        // A stale request carrying only entries 2..3 must leave entry 4 alone.
        let result = log.try_append(LogIndex(1), Term(1), &[entry(2, 1), entry(3, 2)]);
        assert_eq!(result, Ok(LogIndex(3)));
        assert_eq!(log.last_index(), LogIndex(4));
    }

    #[test]
    fn conflict_truncates_from_first_mismatch() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        let result = log.try_append(LogIndex(2), Term(1), &[entry(3, 3)]);
        assert_eq!(result, Ok(LogIndex(3)));
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.term(LogIndex(3)), Some(Term(3)));
        assert_eq!(log.unstable_from, LogIndex(3));
    }

    #[test]
    fn committed_entries_are_never_truncated() {
        let mut log = log_with_terms(&[1, 1, 2]);
        log.commit_to(LogIndex(3));
        let result = log.try_append(LogIndex(1), Term(1), &[entry(2, 5)]);
        assert_eq!(result, Err(AppendError::WouldTruncateCommitted { index: LogIndex(2) }));
        assert_eq!(log.last_index(), LogIndex(3));
    }

    #[test]
    fn mismatch_hint_skips_a_term() {
        // Follower holds terms 1 1 2 2 2 2 2; leader probes prev=(7, term 3).
        let mut log = log_with_terms(&[1, 1, 2, 2, 2, 2, 2]);
        let result = log.try_append(LogIndex(7), Term(3), &[]);
        // Every term-2 entry is <= 3, so the hint is the last entry: (7, 2).
        assert_eq!(result, Err(AppendError::Mismatch { hint_index: LogIndex(7), hint_term: Term(2) }));
        // Leader with terms 1 1 3 3 3 3 3 looks for the last index with term <= 2: index 2.
        let leader = log_with_terms(&[1, 1, 3, 3, 3, 3, 3]);
        assert_eq!(leader.find_conflict_by_term(LogIndex(7), Term(2)), Some((LogIndex(2), Term(1))));
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let log = log_with_terms(&[1, 2, 2]);
        assert!(log.is_up_to_date(LogIndex(1), Term(3)));
        assert!(log.is_up_to_date(LogIndex(3), Term(2)));
        assert!(!log.is_up_to_date(LogIndex(2), Term(2)));
        assert!(!log.is_up_to_date(LogIndex(9), Term(1)));
    }

    #[test]
    fn entries_from_respects_limits() {
        let log = log_with_terms(&[1, 1, 1, 1, 1]);
        assert_eq!(log.entries_from(LogIndex(2), 2, u64::MAX).len(), 2);
        // One entry always goes even when it alone exceeds the byte limit.
        assert_eq!(log.entries_from(LogIndex(2), 10, 1).len(), 1);
        assert!(log.entries_from(LogIndex(6), 10, u64::MAX).is_empty());
    }

    /// `replace == with != in RaftLog::find_conflict_by_term` (cargo-mutants; see
    /// `raft-core/MUTANTS.md`): the compaction point is an answer when its term qualifies. The
    /// mutant answers `None` there, which a leader reads as "the match point is compacted away"
    /// and streams a snapshot to a follower that appends from the compaction point would do for.
    #[test]
    fn the_compaction_point_qualifies_when_its_term_does() {
        let entries = (4..=6).map(|i| entry(i, 3)).collect();
        let log = RaftLog::restore(LogIndex(3), Term(1), (LogIndex(0), Membership::default()), entries);
        // Every entry held is of term 3: a follower's hint of term 2 matches at the snapshot.
        assert_eq!(log.find_conflict_by_term(LogIndex(6), Term(2)), Some((LogIndex(3), Term(1))));
        assert_eq!(log.find_conflict_by_term(LogIndex(6), Term(1)), Some((LogIndex(3), Term(1))));
        assert_eq!(log.find_conflict_by_term(LogIndex(6), Term(3)), Some((LogIndex(6), Term(3))));
        // A term below the snapshot's: only compacted entries could match.
        assert_eq!(log.find_conflict_by_term(LogIndex(6), Term(0)), None);
    }
}
