//! Wing & Gong's linearizability search (1993) with Lowe's memoization (2017), as in Porcupine.
//!
//! The history is a doubly linked list of call and return events in time order. The search
//! walks it: at a call, it tries to linearize that operation now (the model must accept its
//! output from the current state), removes ("lifts") its call and return from the list and
//! starts again from the front; at a return, the operation returning there was not linearized
//! although it had finished, so the last choice was wrong and it backtracks. The history is
//! linearizable when the list empties.
//!
//! Lowe's improvement: a configuration is the set of linearized operations plus the model state.
//! Reaching a configuration seen before cannot lead anywhere new, so the search remembers every
//! configuration in a cache and never explores one twice. That turns an exponential search
//! into one bounded by the number of distinct configurations, which real histories keep small.

use crate::linearizability::model::{KeyOp, State, ABSENT};
use crate::linearizability::result::Inconclusive;
use alloc::vec;
use alloc::vec::Vec;

/// Marks the end of the event list.
const NIL: u32 = u32::MAX;
/// The list's head sentinel.
const HEAD: u32 = 0;

/// The bounds one search runs under.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SearchLimits {
    pub(crate) steps_max: u64,
    pub(crate) cache_bytes_max: usize,
}

/// How a search ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SearchOutcome {
    /// `order` (positions in the searched slice) is a linearization: the order in which the
    /// operations can take effect (Herlihy & Wing's sequential witness).
    Linearizable { order: Vec<usize> },
    /// No order works. `longest_prefix` (positions in the searched slice, in order) is the
    /// longest sequence of operations the search managed to linearize, if it was asked to track
    /// one.
    NotLinearizable { longest_prefix: Vec<usize> },
    /// A bound was reached first.
    Inconclusive(Inconclusive),
}

/// A search's outcome and the work it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SearchReport {
    pub(crate) outcome: SearchOutcome,
    pub(crate) steps: u64,
}

/// Whether to record the longest linearizable prefix (for reports; costs a copy per record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prefix {
    Track,
    Ignore,
}

/// The event list: node 0 is the head, then one node per call and per return.
struct Events {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// For each node, the operation it belongs to.
    op: Vec<u32>,
    /// For each node, whether it is a call (otherwise a return).
    is_call: Vec<bool>,
    /// For each operation, its call node and its return node.
    call_node: Vec<u32>,
    return_node: Vec<u32>,
}

impl Events {
    fn new(ops: &[KeyOp]) -> Events {
        // A return at the same time as a call sorts after it: the two operations overlap. This
        // errs towards accepting a history, never towards a false alarm.
        let mut order: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            order.push((op.invoke_time, false, index as u32));
            // An unknown outcome may take effect at any time: its return is at infinity.
            order.push((op.complete_time.unwrap_or(u64::MAX), true, index as u32));
        }
        order.sort_unstable();
        let nodes = order.len() + 1;
        let mut events = Events {
            next: vec![NIL; nodes],
            prev: vec![NIL; nodes],
            op: vec![0; nodes],
            is_call: vec![false; nodes],
            call_node: vec![0; ops.len()],
            return_node: vec![0; ops.len()],
        };
        for (position, &(_, is_return, op)) in order.iter().enumerate() {
            let node = position as u32 + 1;
            events.prev[node as usize] = node - 1;
            events.next[node as usize - 1] = node;
            events.op[node as usize] = op;
            events.is_call[node as usize] = !is_return;
            if is_return {
                events.return_node[op as usize] = node;
            } else {
                events.call_node[op as usize] = node;
            }
        }
        events
    }

    fn unlink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = next;
        if next != NIL {
            self.prev[next as usize] = prev;
        }
    }

    fn relink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = node;
        if next != NIL {
            self.prev[next as usize] = node;
        }
    }

    fn lift(&mut self, op: u32) {
        self.unlink(self.call_node[op as usize]);
        self.unlink(self.return_node[op as usize]);
    }

    /// Undoes [`Events::lift`]; lifts must be undone in reverse order (dancing links).
    fn unlift(&mut self, op: u32) {
        self.relink(self.return_node[op as usize]);
        self.relink(self.call_node[op as usize]);
    }
}

/// A set of configurations (linearized set as a bitset, model state), open addressing with
/// linear probing. Its hash comes from the search, which keeps a Zobrist hash of the bitset
/// up to date in O(1) per step; no random seed, so runs are reproducible.
///
/// Operations are numbered by invocation time, so a linearized set is nearly always a run of
/// whole words of ones (everything old) followed by a few scattered bits (the operations in
/// flight). An entry stores only that tail, which keeps a long key's memo small: an entry of a
/// 10,000-operation history costs tens of bytes, not 1,250.
struct Cache {
    /// 0 when empty, otherwise an entry's index plus one.
    slots: Vec<u32>,
    hashes: Vec<u64>,
    states: Vec<State>,
    /// How many leading words of the entry's bitset are all ones.
    full_words: Vec<u32>,
    /// Entry `e`'s remaining words (to its last non-zero one) are `tails[offsets[e]..offsets[e + 1]]`.
    offsets: Vec<u32>,
    tails: Vec<u64>,
    bytes_max: usize,
}

struct CacheFull;

impl Cache {
    fn new(bytes_max: usize) -> Cache {
        Cache {
            slots: vec![0; 1024],
            hashes: Vec::new(),
            states: Vec::new(),
            full_words: Vec::new(),
            offsets: vec![0],
            tails: Vec::new(),
            bytes_max,
        }
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.hashes.capacity() * 8
            + self.states.capacity() * 4
            + self.full_words.capacity() * 4
            + self.offsets.capacity() * 4
            + self.tails.capacity() * 8
    }

    fn tail(&self, entry: usize) -> &[u64] {
        &self.tails[self.offsets[entry] as usize..self.offsets[entry + 1] as usize]
    }

    /// Adds a configuration; `Ok(false)` if it was there already.
    fn insert(&mut self, set_hash: u64, state: State, set: &[u64]) -> Result<bool, CacheFull> {
        let full_words = set.iter().position(|&word| word != u64::MAX).unwrap_or(set.len());
        let used_words = set.iter().rposition(|&word| word != 0).map_or(0, |last| last + 1).max(full_words);
        let tail = &set[full_words..used_words];
        let hash = mix(set_hash ^ u64::from(state).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mask = self.slots.len() - 1;
        let mut slot = (hash as usize) & mask;
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                break;
            }
            let entry = entry as usize - 1;
            if self.hashes[entry] == hash
                && self.states[entry] == state
                && self.full_words[entry] as usize == full_words
                && self.tail(entry) == tail
            {
                return Ok(false);
            }
            slot = (slot + 1) & mask;
        }
        let entries_max = (u32::MAX - 1) as usize;
        if self.bytes() > self.bytes_max
            || self.hashes.len() >= entries_max
            || self.tails.len() + tail.len() > entries_max
        {
            return Err(CacheFull);
        }
        self.hashes.push(hash);
        self.states.push(state);
        self.full_words.push(full_words as u32);
        self.tails.extend_from_slice(tail);
        self.offsets.push(self.tails.len() as u32);
        self.slots[slot] = self.hashes.len() as u32;
        // Keep the load at most one half, so probe sequences stay short.
        if self.hashes.len() * 2 > self.slots.len() {
            self.grow();
        }
        Ok(true)
    }

    fn grow(&mut self) {
        let mut slots = vec![0u32; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for (entry, &hash) in self.hashes.iter().enumerate() {
            let mut slot = (hash as usize) & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = entry as u32 + 1;
        }
        self.slots = slots;
    }
}

/// SplitMix64's finalizer: spreads bits so nearby inputs give unrelated outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Searches for a linearization of `ops`, all on one key, starting from an absent key.
pub(crate) fn search(ops: &[KeyOp], limits: SearchLimits, prefix: Prefix) -> SearchReport {
    let mut events = Events::new(ops);
    let words_per_set = ops.len().div_ceil(64).max(1);
    let mut cache = Cache::new(limits.cache_bytes_max);
    let zobrist: Vec<u64> = (0..ops.len() as u64).map(|op| mix(op.wrapping_add(1))).collect();
    let mut linearized = vec![0u64; words_per_set];
    let mut linearized_hash = 0u64;
    let mut state = ABSENT;
    // The operations linearized so far, in order, with the state before each.
    let mut stack: Vec<(u32, State)> = Vec::with_capacity(ops.len());
    let mut longest: Vec<u32> = Vec::new();
    let mut steps = 0u64;
    let mut entry = events.next[HEAD as usize];

    let report = |outcome, steps| SearchReport { outcome, steps };
    while events.next[HEAD as usize] != NIL {
        if steps >= limits.steps_max {
            return report(SearchOutcome::Inconclusive(Inconclusive::StepsExhausted { steps }), steps);
        }
        steps += 1;
        // Invariant: every call is followed by its return, so the walk meets a return before
        // it can run off the end of a non-empty list.
        debug_assert_ne!(entry, NIL);
        let op = events.op[entry as usize];
        if !events.is_call[entry as usize] {
            // A return: that operation had to be linearized by now. Undo the latest choice.
            let Some((undone, previous)) = stack.pop() else {
                let longest_prefix = longest.iter().map(|&op| op as usize).collect();
                return report(SearchOutcome::NotLinearizable { longest_prefix }, steps);
            };
            state = previous;
            linearized[undone as usize / 64] &= !(1 << (undone % 64));
            linearized_hash ^= zobrist[undone as usize];
            events.unlift(undone);
            entry = events.next[events.call_node[undone as usize] as usize];
            continue;
        }
        if let Some(next_state) = ops[op as usize].apply(state) {
            linearized[op as usize / 64] |= 1 << (op % 64);
            linearized_hash ^= zobrist[op as usize];
            match cache.insert(linearized_hash, next_state, &linearized) {
                Err(CacheFull) => {
                    let cache_bytes_max = limits.cache_bytes_max;
                    return report(
                        SearchOutcome::Inconclusive(Inconclusive::CacheFull { cache_bytes_max }),
                        steps,
                    );
                }
                Ok(true) => {
                    stack.push((op, state));
                    state = next_state;
                    events.lift(op);
                    if prefix == Prefix::Track && stack.len() > longest.len() {
                        longest = stack.iter().map(|&(op, _)| op).collect();
                    }
                    entry = events.next[HEAD as usize];
                    continue;
                }
                // Seen before: nothing new down this path.
                Ok(false) => {
                    linearized[op as usize / 64] &= !(1 << (op % 64));
                    linearized_hash ^= zobrist[op as usize];
                }
            }
        }
        entry = events.next[entry as usize];
    }
    // The list is empty: every operation is on the stack, in the order they took effect.
    let order = stack.iter().map(|&(op, _)| op as usize).collect();
    report(SearchOutcome::Linearizable { order }, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::model::Step;

    const LIMITS: SearchLimits = SearchLimits { steps_max: 1_000_000, cache_bytes_max: 1 << 24 };

    fn op(invoke_time: u64, complete_time: u64, step: Step) -> KeyOp {
        KeyOp { record: 0, invoke_time, complete_time: Some(complete_time), step }
    }

    fn outcome(ops: &[KeyOp]) -> SearchOutcome {
        search(ops, LIMITS, Prefix::Track).outcome
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert_eq!(outcome(&[]), SearchOutcome::Linearizable { order: vec![] });
    }

    #[test]
    fn overlapping_write_can_be_seen_or_not() {
        let write = op(0, 10, Step::Write { value: 1 });
        let saw_new = op(5, 6, Step::Get { observed: 1 });
        let saw_old = op(5, 6, Step::Get { observed: ABSENT });
        // The order found puts the write before the read that saw it, after the one that did not.
        assert_eq!(outcome(&[write, saw_new]), SearchOutcome::Linearizable { order: vec![0, 1] });
        assert_eq!(outcome(&[write, saw_old]), SearchOutcome::Linearizable { order: vec![1, 0] });
    }

    #[test]
    fn stale_read_is_caught_with_its_longest_prefix() {
        let write = op(0, 1, Step::Write { value: 1 });
        let stale = op(2, 3, Step::Get { observed: ABSENT });
        assert_eq!(outcome(&[write, stale]), SearchOutcome::NotLinearizable { longest_prefix: vec![0] });
    }

    #[test]
    fn step_bound_gives_up() {
        let ops: Vec<KeyOp> = (0..20).map(|value| op(0, 100, Step::Write { value })).collect();
        let limits = SearchLimits { steps_max: 5, ..LIMITS };
        let report = search(&ops, limits, Prefix::Ignore);
        assert_eq!(report.outcome, SearchOutcome::Inconclusive(Inconclusive::StepsExhausted { steps: 5 }));
    }
}
