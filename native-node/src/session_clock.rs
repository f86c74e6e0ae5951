//! The timestamps this node puts on the commands it proposes as leader (client sessions'
//! activity and expiry, thesis §6.3).
//!
//! The store's clock is the largest timestamp applied, so stamping from the wall clock would let
//! one leader whose clock runs an hour ahead move every replica's clock an hour forward for good
//! and expire every idle session at once (issue 10). [`raft_core::kv::LeaderClock`] trusts no
//! server's wall clock: a leader starts from the store's clock as it finds it when it takes over
//! and advances it by its own monotonic elapsed time. This module keeps one such clock per term
//! this node leads, and the store's clock as of the last apply.

use raft_core::kv::LeaderClock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The store's clock (`KvStore::clock_ms`) as of the last entry this node applied; the state
/// machine writes it, the API layer reads it.
pub type StoreClock = Arc<AtomicU64>;

/// Stamps commands: the term this node leads and its [`LeaderClock`] for that term.
#[derive(Debug)]
pub struct SessionClock {
    store_clock: StoreClock,
    started: Instant,
    leading: Mutex<Option<(u64, LeaderClock)>>,
}

impl SessionClock {
    /// A clock reading the store clock that the state machine keeps in `store_clock`.
    pub fn new(store_clock: StoreClock) -> SessionClock {
        SessionClock { store_clock, started: Instant::now(), leading: Mutex::new(None) }
    }

    /// The timestamp for a command proposed now by this node, which believes itself leader of
    /// `term` when `is_leader`. A node that is not leader proposes nothing that commits, and
    /// gets the store's clock, which moves nothing. The first stamp of a term starts that
    /// term's [`LeaderClock`] from the store's clock as this node has applied it.
    pub fn stamp(&self, term: u64, is_leader: bool) -> u64 {
        let monotonic_ms = self.started.elapsed().as_millis() as u64;
        self.stamp_at(term, is_leader, monotonic_ms)
    }

    fn stamp_at(&self, term: u64, is_leader: bool, monotonic_ms: u64) -> u64 {
        let store_ms = self.store_clock.load(Ordering::Acquire);
        if !is_leader {
            return store_ms;
        }
        let mut leading = self.leading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let clock = match *leading {
            Some((leading_term, clock)) if leading_term == term => clock,
            _ => {
                let clock = LeaderClock::new(store_ms, monotonic_ms);
                *leading = Some((term, clock));
                clock
            }
        };
        clock.stamp(store_ms, monotonic_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_advances_the_store_clock_by_its_monotonic_time_not_its_wall_clock() {
        // The store's clock says 10 s (stamped by earlier leaders), whatever this host's wall
        // clock says.
        let store: StoreClock = Arc::new(AtomicU64::new(10_000));
        let clock = SessionClock::new(store.clone());
        assert_eq!(clock.stamp_at(3, true, 500_000), 10_000);
        assert_eq!(clock.stamp_at(3, true, 501_500), 11_500);
        // Not leader: the store's clock, which moves nothing.
        assert_eq!(clock.stamp_at(3, false, 502_000), 10_000);
    }

    #[test]
    fn a_new_term_restarts_from_the_store_clock_and_never_goes_below_it() {
        let store: StoreClock = Arc::new(AtomicU64::new(10_000));
        let clock = SessionClock::new(store.clone());
        assert_eq!(clock.stamp_at(3, true, 0), 10_000);
        // Another leader's terms moved the store's clock on to 60 s meanwhile.
        store.store(60_000, Ordering::Release);
        assert_eq!(clock.stamp_at(3, true, 1_000), 60_000, "never below what was applied");
        assert_eq!(clock.stamp_at(7, true, 2_000), 60_000);
        assert_eq!(clock.stamp_at(7, true, 2_250), 60_250);
    }
}
