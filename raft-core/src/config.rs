//! The knobs of one Raft node, each with a name that says its unit, and their validation.

use crate::error::ConfigError;
use crate::types::NodeId;

/// How one node behaves. Build with [`Config::new`] and adjust fields; [`Config::validate`]
/// checks the combination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// Seed of the node's PRNG (election timeouts). Two nodes should not share a seed.
    pub seed: u64,
    /// T: a follower that hears from no leader for a random time in `[T, 2T)` ticks campaigns
    /// (§5.2). Also the check-quorum and leader-lease period.
    pub election_timeout_ticks: u64,
    /// A leader sends heartbeats every this many ticks; at most T / 2 (§5.6, thesis §6.2).
    pub heartbeat_interval_ticks: u64,
    /// Ask for pre-votes before raising the term (thesis §9.6), so a server that rejoins from a
    /// partition cannot depose a working leader.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down, and
    /// followers ignore vote requests while they hear from a leader (thesis §6.2, §4.2.3).
    pub check_quorum: bool,
    /// Whether this node ever starts an election (default `true`). With `false` it is a voter
    /// that never campaigns: it votes, pre-votes, acknowledges entries and counts in every
    /// quorum as any voter does, and keeps a follower's quiet period (`node/lease.rs`), but its
    /// election timeout starts neither a pre-vote (thesis §9.6) nor an election (§3.4), it
    /// ignores `TimeoutNow` (§3.10; a [`crate::RaftEvent::TimeoutNowIgnored`] says so) and
    /// [`crate::RaftNode::campaign`] does nothing. So it never leads, and check-quorum (§6.2)
    /// and leases (§6.4.1) never apply to it as a leader. A browser tab that votes runs so.
    ///
    /// Consequence: only campaigning voters lead, and a candidate wins only with the votes of a
    /// majority whose logs are no more up to date than its own (§5.4.1). While the campaigning
    /// voters that are up and connected are a majority of the voters, the most up to date of
    /// them can always win. Otherwise the cluster needs the votes of non-campaigning voters,
    /// and those refuse a candidate that lacks entries they hold (for example the last entries
    /// a leader replicated before it crashed): then no leader is elected until a campaigning
    /// voter that holds them returns. A cluster whose campaigning voters are a minority cannot
    /// elect a leader while they are down. Leaders learn which peers do not campaign from
    /// [`crate::RaftNode::set_peer_campaigns`], so that they never hand leadership to one.
    pub campaigns: bool,
    /// At most this many entries in one AppendEntries.
    pub entries_per_message_max: usize,
    /// At most this many payload bytes in one AppendEntries (a single larger entry still goes).
    pub message_bytes_max: u64,
    /// At most this many AppendEntries in flight to one follower in the replicate state.
    pub inflight_messages_max: usize,
    /// At most this many entry bytes in flight to one follower in the replicate state.
    pub inflight_bytes_max: u64,
    /// A leader refuses proposals while this many bytes of its log are not yet committed.
    pub uncommitted_bytes_max: u64,
    /// The most two servers' clocks may drift apart during one election timeout, in ticks.
    /// Lease reads stop this long before the lease would end on a perfect clock (thesis
    /// §6.4.1); it must be below the election timeout.
    pub clock_drift_ticks_max: u64,
    /// [`crate::RaftNode::snapshot_wanted`] asks for a snapshot once this many entries were
    /// applied since the last one (0: only on demand).
    pub snapshot_interval_entries: u64,
    /// Entries kept in the log behind a snapshot, so that a slightly slow follower can still
    /// catch up from the log instead of needing the whole snapshot.
    pub snapshot_trailing_entries: u64,
}

impl Config {
    /// Defaults that suit a simulator tick of 10 ms: elections after 100–200 ms of silence,
    /// heartbeats every 20 ms.
    pub fn new(id: NodeId, seed: u64) -> Config {
        Config {
            id,
            seed,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            campaigns: true,
            entries_per_message_max: 256,
            message_bytes_max: 1 << 20,
            inflight_messages_max: 64,
            inflight_bytes_max: 8 << 20,
            uncommitted_bytes_max: 64 << 20,
            clock_drift_ticks_max: 2,
            snapshot_interval_entries: 0,
            snapshot_trailing_entries: 1024,
        }
    }

    /// Checks that the values make sense together.
    ///
    /// # Errors
    /// [`ConfigError`] names the first field that does not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.election_timeout_ticks < 2 {
            return Err(ConfigError::ElectionTimeoutTooShort);
        }
        // At least two heartbeats per election timeout (thesis §6.2): otherwise one late or lost
        // answer leaves a majority silent for a whole timeout and check-quorum deposes a
        // healthy leader.
        if self.heartbeat_interval_ticks == 0
            || self.heartbeat_interval_ticks.saturating_mul(2) > self.election_timeout_ticks
        {
            return Err(ConfigError::HeartbeatInterval);
        }
        if self.entries_per_message_max == 0 || self.message_bytes_max == 0 {
            return Err(ConfigError::ZeroLimit("entries_per_message_max/message_bytes_max"));
        }
        if self.inflight_messages_max == 0 || self.inflight_bytes_max == 0 {
            return Err(ConfigError::ZeroLimit("inflight_messages_max/inflight_bytes_max"));
        }
        if self.clock_drift_ticks_max >= self.election_timeout_ticks {
            return Err(ConfigError::ClockDrift);
        }
        if self.uncommitted_bytes_max == 0 {
            return Err(ConfigError::ZeroLimit("uncommitted_bytes_max"));
        }
        Ok(())
    }
}
