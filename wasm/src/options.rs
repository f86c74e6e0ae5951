//! The options object of `new SimCluster({...})`, checked and turned into a [`SimConfig`].

use alloc::format;
use alloc::string::String;
use raft_core::sim::SimConfig;
use raft_core::{Config, NodeId};
use serde::{Deserialize, Serialize};

/// What JavaScript may set; anything left out keeps the default of [`SimConfig::new`] (5 nodes,
/// seed 1, 10 ms ticks, T = 10 ticks, heartbeats every 2 ticks, 1–5 ms links).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ClusterOptions {
    /// Servers, 1 to 51.
    pub nodes: Option<usize>,
    /// Seed of every random choice.
    pub seed: Option<u64>,
    /// Simulated milliseconds per tick.
    pub tick_ms: Option<u64>,
    /// Election timeout T in ticks (drawn from `[T, 2T)`).
    pub election_timeout_ticks: Option<u64>,
    /// Heartbeat interval in ticks.
    pub heartbeat_interval_ticks: Option<u64>,
    /// Shortest message delivery time.
    pub latency_ms_min: Option<u64>,
    /// Longest message delivery time.
    pub latency_ms_max: Option<u64>,
    /// Chance in a thousand that a message is lost.
    pub loss_per_mille: Option<u32>,
    /// Chance in a thousand that a message is delivered twice.
    pub duplicate_per_mille: Option<u32>,
    /// Time to make one batch durable.
    pub disk_latency_ms: Option<u64>,
    /// Pre-vote (thesis §9.6).
    pub pre_vote: Option<bool>,
    /// Check-quorum (thesis §6.2).
    pub check_quorum: Option<bool>,
    /// Servers 1..=votersInitial start as voters, the others empty, waiting to be added
    /// (0: all start as voters).
    pub voters_initial: Option<usize>,
    /// Servers snapshot after this many applied entries (0: only on demand).
    pub snapshot_interval_entries: Option<u64>,
    /// Entries kept behind a snapshot for slow followers.
    pub snapshot_trailing_entries: Option<u64>,
    /// The last this many initial voters never campaign (`Config::campaigns = false`): they
    /// vote and acknowledge but never lead, like a browser tab that votes (issue 14).
    pub non_campaigning: Option<usize>,
    /// Each server's clock runs exact or 20% slow (drawn at each start), within the drift
    /// margin a lease allows (thesis §6.4.1): the simulator's drifting-clocks fault.
    pub drifting_clocks: Option<bool>,
}

/// The option names JavaScript may use, as `ClusterOptions` spells them in camelCase.
pub const OPTION_NAMES: [&str; 17] = [
    "nodes",
    "seed",
    "tickMs",
    "electionTimeoutTicks",
    "heartbeatIntervalTicks",
    "latencyMsMin",
    "latencyMsMax",
    "lossPerMille",
    "duplicatePerMille",
    "diskLatencyMs",
    "preVote",
    "checkQuorum",
    "votersInitial",
    "snapshotIntervalEntries",
    "snapshotTrailingEntries",
    "nonCampaigning",
    "driftingClocks",
];

/// Largest seed accepted: JavaScript numbers hold integers exactly only up to 2^53 - 1.
pub const SEED_MAX: u64 = (1 << 53) - 1;

impl ClusterOptions {
    /// The simulator config these options describe.
    ///
    /// # Errors
    /// A lowercase description of the first value out of range.
    pub fn to_config(&self) -> Result<SimConfig, String> {
        let nodes = self.nodes.unwrap_or(5);
        crate::run_text::check_nodes(nodes)?;
        let mut config = SimConfig::new(nodes, self.seed.unwrap_or(1));
        if config.seed > SEED_MAX {
            return Err(format!("seed must be at most {SEED_MAX}"));
        }
        let set = |target: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(&mut config.tick_ms, self.tick_ms);
        set(&mut config.election_timeout_ticks, self.election_timeout_ticks);
        set(&mut config.heartbeat_interval_ticks, self.heartbeat_interval_ticks);
        set(&mut config.link.latency_ms_min, self.latency_ms_min);
        set(&mut config.link.latency_ms_max, self.latency_ms_max);
        set(&mut config.disk_latency_ms, self.disk_latency_ms);
        if let Some(loss) = self.loss_per_mille {
            config.link.loss_per_mille = loss;
        }
        if let Some(duplicate) = self.duplicate_per_mille {
            config.link.duplicate_per_mille = duplicate;
        }
        if let Some(pre_vote) = self.pre_vote {
            config.pre_vote = pre_vote;
        }
        if let Some(check_quorum) = self.check_quorum {
            config.check_quorum = check_quorum;
        }
        if let Some(voters) = self.voters_initial {
            config.voters_initial = voters;
        }
        set(&mut config.snapshot_interval_entries, self.snapshot_interval_entries);
        set(&mut config.snapshot_trailing_entries, self.snapshot_trailing_entries);
        if let Some(quiet) = self.non_campaigning {
            config.non_campaigning = quiet;
        }
        if let Some(drifting) = self.drifting_clocks {
            config.adversary.drifting_clocks = drifting;
        }
        check_config(&config)?;
        Ok(config)
    }

    /// The options that describe `config` exactly.
    pub fn from_config(config: &SimConfig) -> ClusterOptions {
        ClusterOptions {
            nodes: Some(config.nodes),
            seed: Some(config.seed),
            tick_ms: Some(config.tick_ms),
            election_timeout_ticks: Some(config.election_timeout_ticks),
            heartbeat_interval_ticks: Some(config.heartbeat_interval_ticks),
            latency_ms_min: Some(config.link.latency_ms_min),
            latency_ms_max: Some(config.link.latency_ms_max),
            loss_per_mille: Some(config.link.loss_per_mille),
            duplicate_per_mille: Some(config.link.duplicate_per_mille),
            disk_latency_ms: Some(config.disk_latency_ms),
            pre_vote: Some(config.pre_vote),
            check_quorum: Some(config.check_quorum),
            voters_initial: Some(config.voters_initial),
            snapshot_interval_entries: Some(config.snapshot_interval_entries),
            snapshot_trailing_entries: Some(config.snapshot_trailing_entries),
            non_campaigning: Some(config.non_campaigning),
            drifting_clocks: Some(config.adversary.drifting_clocks),
        }
    }
}

/// Checks what the simulator would otherwise only find when a node fails to start: the
/// simulator validates its own fields, the node config its timing.
///
/// # Errors
/// A lowercase description of the first problem.
pub fn check_config(config: &SimConfig) -> Result<(), String> {
    config.validate()?;
    if config.seed > SEED_MAX {
        return Err(format!("seed must be at most {SEED_MAX}"));
    }
    let mut node = Config::new(NodeId(1), 0);
    node.election_timeout_ticks = config.election_timeout_ticks;
    node.heartbeat_interval_ticks = config.heartbeat_interval_ticks;
    node.validate().map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_simulator_and_bad_timing_is_refused() {
        assert_eq!(ClusterOptions::default().to_config().unwrap(), SimConfig::new(5, 1));
        let options = ClusterOptions { heartbeat_interval_ticks: Some(20), ..ClusterOptions::default() };
        assert!(options.to_config().unwrap_err().contains("heartbeat"));
        let options = ClusterOptions { nodes: Some(0), ..ClusterOptions::default() };
        assert!(options.to_config().unwrap_err().contains("nodes"));
        let mut config = SimConfig::new(9, 77);
        config.non_campaigning = 2;
        assert_eq!(ClusterOptions::from_config(&config).to_config().unwrap(), config);
        let options = ClusterOptions { non_campaigning: Some(6), ..ClusterOptions::default() };
        assert!(options.to_config().unwrap_err().contains("non_campaigning"));
        config.adversary.drifting_clocks = true;
        assert_eq!(ClusterOptions::from_config(&config).to_config().unwrap(), config);
        let options = ClusterOptions { drifting_clocks: Some(true), ..ClusterOptions::default() };
        assert!(options.to_config().unwrap().adversary.drifting_clocks);
    }
}
