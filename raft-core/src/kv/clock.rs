//! How a leader should stamp commands so that one server's wall clock cannot expire every
//! session at once.
//!
//! The store's clock is the largest timestamp applied (thesis §6.3), so a single command stamped
//! by a leader whose wall clock runs an hour ahead moves it an hour forward for good, and every
//! session idle by that measure expires at its next apply. Stamping from the wall clock trusts
//! every server's clock. [`LeaderClock`] trusts none of them: a leader starts from the store's
//! clock as it finds it when it takes over and advances it by its own *monotonic* elapsed time,
//! so the replicated clock moves at the rate real time passes on the current leader, whatever
//! the servers' wall clocks say. (It lags real time by the gaps between leaders, which only makes
//! sessions live a little longer, the safe direction.)
//!
//! Deterministic and sans-IO: the driver passes its monotonic time in; nothing here reads a
//! clock.

/// A leader's stamping clock; make a new one each time this server becomes leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderClock {
    /// The store's clock when this leadership began (or was first stamped).
    store_base_ms: u64,
    /// The driver's monotonic time then.
    monotonic_base_ms: u64,
}

impl LeaderClock {
    /// Starts stamping from `store_clock_ms` (the applied store's [`crate::kv::KvStore::clock_ms`])
    /// at the driver's monotonic time `monotonic_now_ms`.
    pub fn new(store_clock_ms: u64, monotonic_now_ms: u64) -> LeaderClock {
        LeaderClock { store_base_ms: store_clock_ms, monotonic_base_ms: monotonic_now_ms }
    }

    /// The timestamp for a command proposed now: the store's clock at takeover plus the
    /// monotonic time since, never below what the store has already applied
    /// (`store_clock_ms`). A monotonic clock that seems to go back is taken as standing still.
    pub fn stamp(&self, store_clock_ms: u64, monotonic_now_ms: u64) -> u64 {
        let elapsed = monotonic_now_ms.saturating_sub(self.monotonic_base_ms);
        self.store_base_ms.saturating_add(elapsed).max(store_clock_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_advances_the_store_clock_by_its_own_elapsed_time_only() {
        // The store says 10 s; this server's wall clock would say a day later. Irrelevant.
        let clock = LeaderClock::new(10_000, 5_000_000);
        assert_eq!(clock.stamp(10_000, 5_000_000), 10_000);
        assert_eq!(clock.stamp(10_000, 5_000_250), 10_250);
        // Never behind what is applied (another leader's later stamps were applied meanwhile).
        assert_eq!(clock.stamp(20_000, 5_000_250), 20_000);
        // A monotonic clock going back counts as no time passing.
        assert_eq!(clock.stamp(10_000, 4_000_000), 10_000);
    }
}
