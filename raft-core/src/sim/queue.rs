//! The simulator's event queue: events ordered by (time, sequence number), so events of the
//! same millisecond run in the order they were scheduled.
//!
//! Almost every event is due within a few hundred milliseconds (a message's latency, the next
//! tick, a disk write), so the queue is a timing wheel: one first-in-first-out bucket per
//! millisecond of a window starting at the earliest event, where pushing and popping cost O(1).
//! Events outside the window wait in a binary heap, and every pop takes the smaller of the two
//! candidates, so the order is exactly (time, sequence) wherever an event sits. The events
//! themselves live in a slab whose freed slots are reused, so a run allocates nothing per event
//! once the queue has grown to its working size. (A `BTreeMap` keyed by (time, sequence) did
//! the same job with an allocation per event, and a plain binary heap spent more time sifting
//! than the simulator spent delivering messages.)

use alloc::collections::{BinaryHeap, VecDeque};
use alloc::vec::Vec;
use core::cmp::Reverse;

/// Milliseconds the wheel covers; a power of two.
const WINDOW_MS: u64 = 256;

/// Where an event sits: its time, its sequence number and its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    time_ms: u64,
    sequence: u64,
    slot: u32,
}

/// Events waiting for their time.
#[derive(Clone, Debug)]
pub(crate) struct EventQueue<T> {
    /// `wheel[t % WINDOW_MS]`: the keys of the wheel's events at time t, in sequence order.
    /// Every event in the wheel is due in `[base, base + WINDOW_MS)`.
    wheel: Vec<VecDeque<Key>>,
    in_wheel: usize,
    base: u64,
    /// Events outside the window when they were pushed, smallest (time, sequence) on top.
    later: BinaryHeap<Reverse<Key>>,
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    sequence: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            wheel: (0..WINDOW_MS).map(|_| VecDeque::new()).collect(),
            in_wheel: 0,
            base: 0,
            later: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            sequence: 0,
        }
    }
}

impl<T> EventQueue<T> {
    /// Schedules `event` at `time_ms`, after every event already scheduled for that time.
    pub(crate) fn push(&mut self, time_ms: u64, event: T) {
        self.sequence += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        let key = Key { time_ms, sequence: self.sequence, slot };
        if self.in_wheel == 0 {
            // An empty wheel can move anywhere: start the window at this event.
            self.base = time_ms;
        }
        if time_ms >= self.base && time_ms - self.base < WINDOW_MS {
            // Sequence numbers only grow, so appending keeps the bucket in order.
            self.wheel[(time_ms % WINDOW_MS) as usize].push_back(key);
            self.in_wheel += 1;
        } else {
            self.later.push(Reverse(key));
        }
    }

    /// The first key in the wheel. Moves the window up to it (nothing in the wheel is earlier).
    fn wheel_front(&mut self) -> Option<Key> {
        if self.in_wheel == 0 {
            return None;
        }
        loop {
            if let Some(key) = self.wheel[(self.base % WINDOW_MS) as usize].front() {
                return Some(*key);
            }
            self.base += 1;
        }
    }

    /// The next key to run, and whether it is in the wheel.
    fn next_key(&mut self) -> Option<(Key, bool)> {
        let wheel = self.wheel_front();
        let later = self.later.peek().map(|Reverse(key)| *key);
        match (wheel, later) {
            (Some(w), Some(l)) if l < w => Some((l, false)),
            (Some(w), _) => Some((w, true)),
            (None, Some(l)) => Some((l, false)),
            (None, None) => None,
        }
    }

    /// Events waiting.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Time of the next event.
    pub(crate) fn next_time(&mut self) -> Option<u64> {
        self.next_key().map(|(key, _)| key.time_ms)
    }

    /// Takes the next event and its time.
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        let (key, in_wheel) = self.next_key()?;
        if in_wheel {
            self.wheel[(key.time_ms % WINDOW_MS) as usize].pop_front();
            self.in_wheel -= 1;
        } else {
            self.later.pop();
        }
        self.take(key)
    }

    fn take(&mut self, key: Key) -> Option<(u64, T)> {
        let event = self.slots[key.slot as usize].take()?;
        self.free.push(key.slot);
        Some((key.time_ms, event))
    }

    /// Every key, in no particular order.
    fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        let wheel = self.wheel.iter().flat_map(|bucket| bucket.iter().copied());
        wheel.chain(self.later.iter().map(|Reverse(key)| *key))
    }

    /// Every event with its time, in the order they will run. Sorts: for observers, not for
    /// the run itself.
    pub(crate) fn ordered(&self) -> impl Iterator<Item = (u64, &T)> {
        let mut keys: Vec<Key> = self.keys().collect();
        keys.sort_unstable();
        keys.into_iter().filter_map(|key| Some((key.time_ms, self.slots[key.slot as usize].as_ref()?)))
    }

    /// The first event (in running order) that `matches`, with its time.
    pub(crate) fn first(&self, matches: impl Fn(&T) -> bool) -> Option<(u64, &T)> {
        let key = self.first_key(matches)?;
        Some((key.time_ms, self.slots[key.slot as usize].as_ref()?))
    }

    /// Removes the first event (in running order) that `matches`, and returns its time and it.
    pub(crate) fn remove_first(&mut self, matches: impl Fn(&T) -> bool) -> Option<(u64, T)> {
        let key = self.first_key(matches)?;
        let bucket = &mut self.wheel[(key.time_ms % WINDOW_MS) as usize];
        if let Some(position) = bucket.iter().position(|other| *other == key) {
            bucket.remove(position);
            self.in_wheel -= 1;
        } else {
            self.later.retain(|Reverse(other)| *other != key);
        }
        self.take(key)
    }

    fn first_key(&self, matches: impl Fn(&T) -> bool) -> Option<Key> {
        self.keys().filter(|key| self.slots[key.slot as usize].as_ref().is_some_and(&matches)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_time_then_scheduling_order() {
        let mut queue = EventQueue::default();
        queue.push(5, 'a');
        queue.push(3, 'b');
        queue.push(5, 'c');
        queue.push(3, 'd');
        let order: Vec<_> = queue.ordered().map(|(t, e)| (t, *e)).collect();
        assert_eq!(order, [(3, 'b'), (3, 'd'), (5, 'a'), (5, 'c')]);
        assert_eq!(queue.next_time(), Some(3));
        let mut popped = Vec::new();
        while let Some(next) = queue.pop() {
            popped.push(next);
        }
        assert_eq!(popped, order);
    }

    /// Events far apart, in the past of the window and beyond it, interleaved with the wheel's:
    /// the queue pops exactly what a sort by (time, sequence) gives.
    #[test]
    fn matches_a_sorted_list_across_the_window() {
        let mut queue = EventQueue::default();
        let mut expected: Vec<(u64, u64)> = Vec::new();
        let mut rng = crate::rng::Rng::new(7);
        let mut now = 0;
        for n in 0..5_000u64 {
            let time = match rng.range(0, 10) {
                0 => now + rng.range(0, 5 * WINDOW_MS),
                1 => now.saturating_sub(rng.range(0, 3)),
                _ => now + rng.range(0, 30),
            };
            queue.push(time, n);
            expected.push((time, n));
            if rng.chance(1, 2) {
                expected.sort_unstable();
                let (time, n) = expected.remove(0);
                assert_eq!(queue.next_time(), Some(time));
                assert_eq!(queue.pop(), Some((time, n)));
                now = now.max(time);
            }
        }
        expected.sort_unstable();
        let ordered: Vec<(u64, u64)> = queue.ordered().map(|(t, n)| (t, *n)).collect();
        assert_eq!(ordered, expected);
        let rest: Vec<(u64, u64)> = core::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn removes_the_first_match_and_reuses_its_slot() {
        let mut queue = EventQueue::default();
        queue.push(7, 1);
        queue.push(4, 1);
        queue.push(6, 2);
        queue.push(7 + WINDOW_MS, 1);
        assert_eq!(queue.first(|&e| e == 1), Some((4, &1)));
        assert_eq!(queue.remove_first(|&e| e == 1), Some((4, 1)));
        queue.push(1, 3);
        assert_eq!(queue.slots.len(), 4, "the freed slot is reused");
        let order: Vec<_> = core::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, [(1, 3), (6, 2), (7, 1), (7 + WINDOW_MS, 1)]);
        assert_eq!(queue.remove_first(|_| true), None);
    }
}
