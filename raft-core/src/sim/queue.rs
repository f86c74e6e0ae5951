//! The simulator's event queue: events ordered by (time, sequence number), so events of the
//! same millisecond run in the order they were scheduled.
//!
//! A binary heap of small keys over a slab of events. The heap moves only 24-byte keys when it
//! reorders, the events stay where they were put, and a freed slot is reused by the next event,
//! so a run allocates nothing per event once the queue has grown to its working size. (A
//! `BTreeMap` keyed by (time, sequence) did the same job with an allocation per event and node
//! splits and merges on every insert and pop.)

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

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
    /// Smallest (time, sequence) on top. Sequence numbers are unique, so the slot never
    /// decides the order.
    heap: BinaryHeap<Reverse<Key>>,
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    sequence: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), sequence: 0 }
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
        self.heap.push(Reverse(Key { time_ms, sequence: self.sequence, slot }));
    }

    /// Time of the next event.
    pub(crate) fn next_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(key)| key.time_ms)
    }

    /// Takes the next event and its time.
    pub(crate) fn pop(&mut self) -> Option<(u64, T)> {
        let Reverse(key) = self.heap.pop()?;
        let event = self.slots[key.slot as usize].take()?;
        self.free.push(key.slot);
        Some((key.time_ms, event))
    }

    /// Every event with its time, in the order they will run. Sorts: for observers, not for
    /// the run itself.
    pub(crate) fn ordered(&self) -> impl Iterator<Item = (u64, &T)> {
        let mut keys: Vec<Key> = self.heap.iter().map(|Reverse(key)| *key).collect();
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
        self.heap.retain(|Reverse(other)| other.slot != key.slot);
        let event = self.slots[key.slot as usize].take()?;
        self.free.push(key.slot);
        Some((key.time_ms, event))
    }

    fn first_key(&self, matches: impl Fn(&T) -> bool) -> Option<Key> {
        self.heap
            .iter()
            .map(|Reverse(key)| *key)
            .filter(|key| self.slots[key.slot as usize].as_ref().is_some_and(&matches))
            .min()
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

    #[test]
    fn removes_the_first_match_and_reuses_its_slot() {
        let mut queue = EventQueue::default();
        queue.push(7, 1);
        queue.push(4, 1);
        queue.push(6, 2);
        assert_eq!(queue.first(|&e| e == 1), Some((4, &1)));
        assert_eq!(queue.remove_first(|&e| e == 1), Some((4, 1)));
        queue.push(1, 3);
        assert_eq!(queue.slots.len(), 3, "the freed slot is reused");
        let order: Vec<_> = core::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, [(1, 3), (6, 2), (7, 1)]);
        assert_eq!(queue.remove_first(|_| true), None);
    }
}
