//! What a simulated cluster looks like: size, timing, network behaviour, and faults to inject.

use crate::types::NodeId;
use alloc::string::String;

/// Largest cluster the simulator builds.
pub const NODES_MAX: usize = 51;

/// How messages travel on one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkConfig {
    /// Shortest delivery time.
    pub latency_ms_min: u64,
    /// Longest delivery time; a wide range reorders messages.
    pub latency_ms_max: u64,
    /// Chance in a thousand that a message is lost.
    pub loss_per_mille: u32,
    /// Chance in a thousand that a message is delivered twice.
    pub duplicate_per_mille: u32,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig { latency_ms_min: 1, latency_ms_max: 5, loss_per_mille: 0, duplicate_per_mille: 0 }
    }
}

/// The kinds of fault the nemesis may inject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultSet {
    /// Crash nodes (losing all they had not persisted) and restart them later.
    pub crash: bool,
    /// Split the cluster into two sides that cannot talk, or isolate one node.
    pub partition: bool,
    /// Cut single links in one direction only.
    pub one_way: bool,
    /// Lose messages.
    pub loss: bool,
    /// Deliver some messages twice.
    pub duplicate: bool,
    /// Widen latency so messages overtake each other.
    pub reorder: bool,
    /// Pause nodes (a long GC or a stopped VM): no ticks, no messages handled.
    pub pause: bool,
    /// Change the membership: remove servers (the leader too), demote and re-add voters,
    /// replace the voter set through joint consensus.
    pub membership: bool,
    /// Snapshot every 10–100 entries, so lagging and restarted servers need InstallSnapshot.
    pub snapshot: bool,
    /// Ask the leader to hand over to another server, under load.
    pub transfer: bool,
    /// Wipe a crashed node's disk. Not a fault Raft tolerates, so not part of `all`: it is
    /// there to show that the checkers catch what it breaks.
    pub amnesia: bool,
    /// Clients read through random servers in every read mode (Input::Read), and a leader cut
    /// off by a partition is read from while it may still believe it leads.
    pub reads: bool,
    /// Some messages of the kinds that go stale (AppendEntries and InstallSnapshot and their
    /// answers, vote requests, TimeoutNow) arrive a second time, long after (see
    /// [`Adversary::late_copy_per_mille`]).
    pub late: bool,
    /// The Figure 8 schedule: a leader is crashed right after sending entries of an earlier
    /// term, and AppendEntries carry few entries so old-term entries reach a majority before the
    /// leader's own (see [`Adversary::crash_old_term_sender_per_mille`]).
    pub figure8: bool,
    /// A voter is crashed right after granting its vote, before the rival's next request.
    pub vote_crash: bool,
    /// A new leader is asked for a configuration change right after its election.
    pub eager_membership: bool,
    /// Corners of issue 10, each a reactive fault or a setting (see [`Adversary`]): loss bursts
    /// that swallow a whole in-flight window (with small windows and a burst of proposals),
    /// clocks at the drift bound, TimeoutNow delayed past the transfer's end, configuration
    /// entries proposed on both sides of a partition (and at the same index), a leader crashed
    /// during a catch-up, snapshots taken when a follower's log diverges (and when the
    /// compaction point would fall inside its divergent tail), a deposed leader taking writes,
    /// followers restarted right after answering a partitioned leader's lease round, and a
    /// leader told late that a server it is adding never campaigns.
    pub corners: bool,
}

impl FaultSet {
    /// No faults at all.
    pub fn none() -> FaultSet {
        FaultSet::default()
    }

    /// Every fault the simulator knows.
    pub fn all() -> FaultSet {
        FaultSet {
            crash: true,
            partition: true,
            one_way: true,
            loss: true,
            duplicate: true,
            reorder: true,
            pause: true,
            membership: true,
            snapshot: true,
            transfer: true,
            amnesia: false,
            reads: true,
            late: true,
            figure8: true,
            vote_crash: true,
            eager_membership: true,
            corners: false,
        }
    }

    /// Parses `all`, `none`, or a comma-separated list such as `crash,partition,loss`.
    ///
    /// # Errors
    /// The name of the first unknown fault.
    pub fn parse(spec: &str) -> Result<FaultSet, String> {
        match spec {
            "all" => return Ok(FaultSet::all()),
            "all,corners" | "corners,all" => return Ok(FaultSet { corners: true, ..FaultSet::all() }),
            "none" | "" => return Ok(FaultSet::none()),
            _ => {}
        }
        let mut faults = FaultSet::none();
        for name in spec.split(',') {
            match name.trim() {
                "crash" => faults.crash = true,
                "partition" => faults.partition = true,
                "one-way" | "one_way" => faults.one_way = true,
                "loss" => faults.loss = true,
                "duplicate" | "dup" => faults.duplicate = true,
                "reorder" => faults.reorder = true,
                "pause" => faults.pause = true,
                "amnesia" => faults.amnesia = true,
                "membership" => faults.membership = true,
                "snapshot" => faults.snapshot = true,
                "transfer" => faults.transfer = true,
                "reads" => faults.reads = true,
                "late" => faults.late = true,
                "figure8" => faults.figure8 = true,
                "vote-crash" | "vote_crash" => faults.vote_crash = true,
                "eager-membership" | "eager_membership" => faults.eager_membership = true,
                "corners" => faults.corners = true,
                other => return Err(alloc::format!("unknown fault {other:?}")),
            }
        }
        Ok(faults)
    }

    /// The names of the faults in the set, comma-separated (`none` for the empty set).
    pub fn describe(&self) -> String {
        if *self == FaultSet::all() {
            return String::from("all");
        }
        let names = [
            (self.crash, "crash"),
            (self.partition, "partition"),
            (self.one_way, "one-way"),
            (self.loss, "loss"),
            (self.duplicate, "duplicate"),
            (self.reorder, "reorder"),
            (self.pause, "pause"),
            (self.membership, "membership"),
            (self.snapshot, "snapshot"),
            (self.transfer, "transfer"),
            (self.amnesia, "amnesia"),
            (self.reads, "reads"),
            (self.late, "late"),
            (self.figure8, "figure8"),
            (self.vote_crash, "vote-crash"),
            (self.eager_membership, "eager-membership"),
            (self.corners, "corners"),
        ];
        let chosen: alloc::vec::Vec<&str> = names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        if chosen.is_empty() {
            String::from("none")
        } else {
            chosen.join(",")
        }
    }
}

/// Everything that fixes a simulated run, together with its [`crate::sim::Script`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimConfig {
    /// Number of servers, 1 to [`NODES_MAX`]; their ids are 1..=nodes.
    pub nodes: usize,
    /// Seed of every random choice in the run.
    pub seed: u64,
    /// Simulated milliseconds per node tick.
    pub tick_ms: u64,
    /// Raft election timeout T in ticks (timeouts are drawn from `[T, 2T)`).
    pub election_timeout_ticks: u64,
    /// Raft heartbeat interval in ticks.
    pub heartbeat_interval_ticks: u64,
    /// Pre-vote on (thesis §9.6).
    pub pre_vote: bool,
    /// Check-quorum on (thesis §6.2).
    pub check_quorum: bool,
    /// Time for a node's storage to make one batch durable.
    pub disk_latency_ms: u64,
    /// Default behaviour of every link.
    pub link: LinkConfig,
    /// Servers 1..=voters_initial start as the cluster's voters; the others start empty and
    /// wait to be added (0: all of them).
    pub voters_initial: usize,
    /// Servers snapshot after this many applied entries (0: only on demand).
    pub snapshot_interval_entries: u64,
    /// Entries kept behind a snapshot for slow followers.
    pub snapshot_trailing_entries: u64,
    /// Entries per AppendEntries at most (0: the node's default).
    pub entries_per_message_max: usize,
    /// AppendEntries in flight per follower at most (0: the node's default).
    pub inflight_messages_max: usize,
    /// The last this many of the initial voters never campaign (`Config::campaigns = false`,
    /// issue 14), and every server is told so (`RaftNode::set_peer_campaigns`). 0: all do.
    pub non_campaigning: usize,
    /// The reactive faults: chances of faults injected when the cluster reaches a corner.
    pub adversary: Adversary,
    /// Limits that turn a runaway run (a livelock, a message storm, a log that grows without
    /// end) into a `budget` violation with its seed instead of a hang.
    pub budget: Budget,
}

/// Faults injected in reaction to what the cluster does, to reach corners that faults at random
/// times almost never hit. Every chance is per opportunity, in thousandths; all zero (the
/// default, and the playground's) changes nothing, not even the random stream of the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Adversary {
    /// A message that can go stale (AppendEntries, InstallSnapshot and their answers, vote
    /// requests, TimeoutNow) is also delivered a second time, 50 ms to 2 s later.
    pub late_copy_per_mille: u32,
    /// A server that grants a vote is crashed right after the grant left (its vote on disk),
    /// and restarted 5 to 300 ms later, before or after the rival's next request.
    pub crash_after_vote_per_mille: u32,
    /// A leader that sends entries of an earlier term is crashed 1 to 15 ms later, right after
    /// partially replicating them (the Figure 8 schedule), and restarted 200 ms to 1 s later.
    pub crash_old_term_sender_per_mille: u32,
    /// A new leader is asked for a configuration change 0 to 20 ms after its election.
    pub membership_after_election_per_mille: u32,
    /// A leader that appends a joint configuration is partitioned at once with the incoming
    /// voters, away from the rest of the outgoing ones (a split of the old and new majorities),
    /// for 100 ms to 1.5 s.
    pub split_joint_per_mille: u32,
    /// A leader cut off from a majority by a partition gets a client read every 5 ms for 600 ms,
    /// in a random read mode (it may still believe it leads); half the time it is paused first
    /// for 300 ms to 1.2 s, so it resumes, still cut off and believing it leads, after the
    /// majority's new leader committed writes, and the reads start then. And a leader that
    /// sends TimeoutNow has its inbound links fail just before it lands, half the time, so it
    /// cannot hear the election it causes while its clients keep reading from it.
    pub deposed_leader_reads: bool,
    /// A leader cut off from a majority by a partition is asked for a configuration change of
    /// its own, competing with whatever the majority's next leader appends at that index.
    pub competing_membership: bool,
    /// Each server, at each start, ticks either every `tick_ms` or 20% slower: clocks that
    /// drift apart as far as a lease allows (`clock_drift_ticks_max` 2 of 10 ticks).
    pub drifting_clocks: bool,
    /// A TimeoutNow is delayed by up to this long (0: never), so that transfers are abandoned
    /// while it is in flight.
    pub timeout_now_delay_ms_max: u64,
    /// A leader that accepts an AddVoter is crashed 5 to 60 ms later, during the catch-up.
    pub crash_during_catch_up_per_mille: u32,
    /// A leader that gets a rejected AppendEntries snapshots (and compacts) at once.
    pub snapshot_on_reject_per_mille: u32,
    /// A leader that gets a rejected AppendEntries snapshots at once whenever its compaction
    /// point would then fall where the follower's log diverges from its own, at or below the
    /// follower's rejection hint (issue 10, defect 4: the hint lands on the compaction point).
    pub snapshot_at_divergence: bool,
    /// A leader cut off from a majority by a partition keeps taking writes from clients that
    /// still reach it, every 5 ms for 100 to 800 ms: a long uncommitted tail the majority's
    /// next leader must overwrite (and may have compacted past the start of).
    pub deposed_leader_writes: bool,
    /// A follower answering a leader's heartbeat round is crashed at once and restarted 1 to
    /// 15 ms later, with as many other followers as a rival needs for a majority, while the
    /// leader is partitioned away serving lease reads; the rival campaigns as soon as they are
    /// back (issue 10, defect 3: a restarted voter must stay quiet for an election timeout).
    /// Chance per heartbeat answer, in thousandths, at most one such episode every 2 s.
    pub restart_ackers_per_mille: u32,
    /// The leader is told that a non-campaigning server it is asked to `AddVoter` campaigns,
    /// just for the `change_membership` call, and the truth right after, before any message
    /// moves: a driver that learned late (`RaftNode::set_peer_campaigns`), so the promotion is
    /// accepted and must be re-judged when its catch-up completes (thesis §4.2.1, §3.10).
    pub late_campaign_news: bool,
}

/// Limits on one run; exceeding one is a `budget` violation and stops the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Events and inputs handled.
    pub steps_max: u64,
    /// Events waiting in the queue (messages on the wire, timers).
    pub queued_max: usize,
    /// Entries in one server's log after its snapshot.
    pub log_entries_max: u64,
}

impl Default for Budget {
    fn default() -> Self {
        // A 20,000-tick run of 5 servers under every fault handles about 1.5 million events
        // and keeps a few thousand queued: these leave two orders of magnitude.
        Budget { steps_max: 200_000_000, queued_max: 2_000_000, log_entries_max: 2_000_000 }
    }
}

impl SimConfig {
    /// A calm cluster of `nodes` servers.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            tick_ms: 10,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            disk_latency_ms: 1,
            link: LinkConfig::default(),
            voters_initial: 0,
            snapshot_interval_entries: 0,
            snapshot_trailing_entries: 16,
            entries_per_message_max: 0,
            inflight_messages_max: 0,
            non_campaigning: 0,
            adversary: Adversary::default(),
            budget: Budget::default(),
        }
    }

    /// Whether server `id` is one of the voters the cluster is bootstrapped with.
    pub fn is_initial_voter(&self, id: NodeId) -> bool {
        self.voters_initial == 0 || id.0 <= self.voters_initial as u64
    }

    /// Whether server `id` campaigns: all do but the last [`SimConfig::non_campaigning`] of the
    /// initial voters.
    pub fn campaigns(&self, id: NodeId) -> bool {
        let voters = if self.voters_initial == 0 { self.nodes } else { self.voters_initial } as u64;
        let first_quiet = voters.saturating_sub(self.non_campaigning as u64) + 1;
        !(first_quiet..=voters).contains(&id.0)
    }

    /// Ids of the servers: 1..=nodes.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        (1..=self.nodes as u64).map(NodeId)
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A lowercase description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > NODES_MAX {
            return Err(alloc::format!("nodes must be between 1 and {NODES_MAX}"));
        }
        if self.tick_ms == 0 {
            return Err(String::from("tick_ms must be positive"));
        }
        if self.link.latency_ms_min > self.link.latency_ms_max {
            return Err(String::from("latency_ms_min above latency_ms_max"));
        }
        if self.voters_initial > self.nodes {
            return Err(String::from("voters_initial above the number of servers"));
        }
        let voters_initial = if self.voters_initial == 0 { self.nodes } else { self.voters_initial };
        if self.non_campaigning > voters_initial {
            return Err(String::from("non_campaigning above the number of initial voters"));
        }
        if self.link.loss_per_mille > 1000 || self.link.duplicate_per_mille > 1000 {
            return Err(String::from("per-mille chances must be at most 1000"));
        }
        Ok(())
    }
}
