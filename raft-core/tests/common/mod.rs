//! A small, fully controlled cluster for scenario tests: messages move only when the test says
//! so, storage is in memory, and persistence is synchronous. Tests read like the paper's
//! figures: `campaign(1)`, `stabilize()`, `isolate(3)`, `crash(2)`.
#![allow(dead_code)]

pub mod kv;
pub mod quiet;

use raft_core::sim::SimStateMachine;
use raft_core::storage::MemoryStorage;
use raft_core::{
    bootstrap, Bytes, Config, Entry, LogIndex, Membership, MembershipChange, MembershipError, Message,
    MessageBody, NodeId, Proposed, RaftEvent, RaftNode, ReadState, Restored, Role, Term,
};
use std::collections::{BTreeSet, VecDeque};

/// What survives a crash: the reference storage (snapshot bytes are a `SimStateMachine`'s).
pub type Disk = MemoryStorage;

/// Bytes per snapshot chunk in tests: tiny, so a snapshot takes many chunks.
pub const TEST_CHUNK_BYTES: usize = 16;

/// Messages one `stabilize` delivers at most: a test whose cluster keeps talking past it (a
/// livelock, a message storm) fails instead of running until memory runs out.
pub const STABILIZE_MESSAGES_MAX: usize = 200_000;

/// Messages delivered over a whole test at most, and batches one node hands out in a row.
pub const DELIVERED_MAX: usize = 2_000_000;
pub const BATCHES_IN_A_ROW_MAX: usize = 100_000;

/// Entries a node's log may hold in a scenario test.
pub const LOG_ENTRIES_MAX: u64 = 1_000_000;

pub struct TestCluster {
    pub nodes: Vec<Option<RaftNode>>,
    pub disks: Vec<Disk>,
    pub configs: Vec<Config>,
    /// Messages sent and not yet delivered.
    pub network: VecDeque<Message>,
    /// Directed links that lose everything.
    pub cut: BTreeSet<(u64, u64)>,
    /// Every message delivered, in order (for counting).
    pub delivered: Vec<Message>,
    /// Entries applied per node (this incarnation).
    pub applied: Vec<Vec<Entry>>,
    /// Each node's state machine.
    pub machines: Vec<SimStateMachine>,
    /// Events each node reported (every incarnation), in order.
    pub events: Vec<Vec<RaftEvent>>,
}

pub fn config(id: u64) -> Config {
    let mut config = Config::new(NodeId(id), 1000 + id);
    config.election_timeout_ticks = 10;
    config.heartbeat_interval_ticks = 2;
    config
}

impl TestCluster {
    /// A bootstrapped cluster of `size` voters with default configs.
    pub fn new(size: u64) -> TestCluster {
        TestCluster::with_configs((1..=size).map(config).collect())
    }

    pub fn with_configs(configs: Vec<Config>) -> TestCluster {
        let membership = Membership::with_voters(configs.iter().map(|c| c.id));
        let restored: Vec<Restored> = configs.iter().map(|_| bootstrap(membership.clone())).collect();
        TestCluster::from_restored(configs, restored)
    }

    /// Nodes restarted from hand-made storage (for logs that diverge on purpose).
    pub fn from_restored(configs: Vec<Config>, restored: Vec<Restored>) -> TestCluster {
        let disks = restored.iter().map(|r| MemoryStorage::from_restored(r.clone())).collect();
        let nodes = configs
            .iter()
            .zip(restored)
            .map(|(c, r)| Some(RaftNode::new(c.clone(), r).expect("valid node")))
            .collect();
        let size = configs.len();
        TestCluster {
            nodes,
            disks,
            configs,
            network: VecDeque::new(),
            cut: BTreeSet::new(),
            delivered: Vec::new(),
            applied: vec![Vec::new(); size],
            machines: vec![SimStateMachine::default(); size],
            events: vec![Vec::new(); size],
        }
    }

    pub fn node(&self, id: u64) -> &RaftNode {
        self.nodes[(id - 1) as usize].as_ref().expect("node is running")
    }

    pub fn node_mut(&mut self, id: u64) -> &mut RaftNode {
        self.nodes[(id - 1) as usize].as_mut().expect("node is running")
    }

    pub fn ids(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64).collect()
    }

    /// Hands out every running node's batch: persist, queue messages, apply, advance.
    pub fn flush(&mut self) {
        self.flush_except(0);
    }

    /// Like `flush`, but leaves node `skip` alone (a test reads its batches itself).
    pub fn flush_except(&mut self, skip: u64) {
        for k in 0..self.nodes.len() {
            if k as u64 + 1 == skip {
                continue;
            }
            let Some(node) = self.nodes[k].as_mut() else { continue };
            let mut batches = 0;
            while node.has_ready() {
                batches += 1;
                assert!(
                    batches <= BATCHES_IN_A_ROW_MAX,
                    "node {} keeps handing out batches: a livelock",
                    k + 1
                );
                let log_entries = node.last_index().0.saturating_sub(node.snapshot_index().0);
                assert!(log_entries <= LOG_ENTRIES_MAX, "node {} holds {log_entries} log entries", k + 1);
                let ready = node.ready();
                let mut ready = ready;
                self.network.extend(std::mem::take(&mut ready.messages));
                let disk = &mut self.disks[k];
                // Leader: serve snapshot chunks from the stored snapshot.
                for request in &ready.snapshot_chunks_wanted {
                    if let Some((data, last)) = disk.snapshot_chunk(request, TEST_CHUNK_BYTES) {
                        node.send_snapshot_chunk(request.to, request.meta.index, request.offset, data, last);
                    }
                }
                // Follower: stage received chunks and install a complete snapshot; then the hard
                // state and entries.
                if let Some(data) = disk.persist(&ready) {
                    self.machines[k] = SimStateMachine::restore(&data).expect("a complete snapshot");
                }
                self.network.extend(ready.messages_after_persist);
                for entry in &ready.committed_entries {
                    self.machines[k].apply(entry);
                }
                self.applied[k].extend(ready.committed_entries);
                self.events[k].extend(ready.events);
                node.advance();
            }
        }
    }

    /// Delivers one message (dropping it if its link is cut or its receiver is down).
    pub fn deliver(&mut self, message: Message) {
        if self.cut.contains(&(message.from.0, message.to.0)) {
            return;
        }
        let k = (message.to.0 - 1) as usize;
        if let Some(node) = self.nodes[k].as_mut() {
            assert!(
                self.delivered.len() < DELIVERED_MAX,
                "more than {DELIVERED_MAX} messages delivered: a message storm"
            );
            self.delivered.push(message.clone());
            let _ = node.step(message);
        }
    }

    /// Delivers messages until none are left.
    pub fn stabilize(&mut self) {
        self.flush();
        let mut delivered = 0;
        while let Some(message) = self.network.pop_front() {
            delivered += 1;
            assert!(
                delivered <= STABILIZE_MESSAGES_MAX,
                "the cluster does not settle: a livelock or a message storm"
            );
            self.deliver(message);
            self.flush();
        }
    }

    /// Delivers only the messages `keep` accepts; the others are lost.
    pub fn stabilize_filtered(&mut self, keep: impl Fn(&Message) -> bool) {
        self.flush();
        let mut handled = 0;
        while let Some(message) = self.network.pop_front() {
            handled += 1;
            assert!(
                handled <= STABILIZE_MESSAGES_MAX,
                "the cluster does not settle: a livelock or a message storm"
            );
            if keep(&message) {
                self.deliver(message);
            }
            self.flush();
        }
    }

    pub fn tick(&mut self, id: u64) {
        self.node_mut(id).tick();
        self.flush();
    }

    /// Ticks every running node `count` times, delivering messages after each round.
    pub fn tick_all(&mut self, count: u64) {
        for _ in 0..count {
            for k in 0..self.nodes.len() {
                if let Some(node) = self.nodes[k].as_mut() {
                    node.tick();
                }
            }
            self.stabilize();
        }
    }

    /// Lets every running node's restart quiet period run out (a restarted voter withholds
    /// votes for one election timeout, see `node/lease.rs`): ticks each node that long, and
    /// loses whatever their timers made them send meanwhile.
    pub fn let_restart_leases_lapse(&mut self) {
        for k in 0..self.nodes.len() {
            let ticks = self.configs[k].election_timeout_ticks;
            if let Some(node) = self.nodes[k].as_mut() {
                for _ in 0..ticks {
                    node.tick();
                }
            }
        }
        self.flush();
        self.network.clear();
    }

    pub fn campaign(&mut self, id: u64) {
        self.node_mut(id).campaign();
        self.stabilize();
    }

    pub fn propose(&mut self, id: u64, data: &'static [u8]) -> Proposed {
        let proposed =
            self.node_mut(id).propose(Bytes::from_static(data)).expect("leader takes the proposal");
        self.stabilize();
        proposed
    }

    /// Cuts `id` off from everyone, both ways.
    pub fn isolate(&mut self, id: u64) {
        for other in self.ids() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The process dies; its disk stays.
    pub fn crash(&mut self, id: u64) {
        self.nodes[(id - 1) as usize] = None;
        self.network.retain(|m| m.from.0 != id);
    }

    /// Starts again from the disk.
    pub fn restart(&mut self, id: u64) {
        let k = (id - 1) as usize;
        let disk = &mut self.disks[k];
        disk.staging.clear();
        let machine = disk
            .snapshot
            .as_ref()
            .map_or_else(SimStateMachine::default, |(_, data)| SimStateMachine::restore(data).unwrap());
        let restored = disk.restored(machine.applied);
        self.machines[k] = machine;
        self.nodes[k] = Some(RaftNode::new(self.configs[k].clone(), restored).expect("restart from disk"));
        self.applied[k].clear();
    }

    /// Node `id` snapshots its state machine now and compacts its log and disk.
    pub fn snapshot(&mut self, id: u64) -> LogIndex {
        let k = (id - 1) as usize;
        let index = self.machines[k].applied;
        let data = self.machines[k].snapshot();
        let created = self.node_mut(id).snapshot_created(index).expect("snapshot accepted");
        self.disks[k].compact(&created, data);
        index
    }

    /// Adds a server that starts empty and waits to be added to the configuration.
    pub fn add_empty_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let config = config(id);
        self.nodes.push(Some(RaftNode::new(config.clone(), Restored::empty()).expect("valid node")));
        self.configs.push(config);
        self.disks.push(Disk::default());
        self.applied.push(Vec::new());
        self.machines.push(SimStateMachine::default());
        self.events.push(Vec::new());
        id
    }

    pub fn leaders(&self) -> Vec<u64> {
        self.nodes.iter().flatten().filter(|n| n.role() == Role::Leader).map(|n| n.id().0).collect()
    }

    /// The terms of a node's log, index 1 first.
    pub fn log_terms(&self, id: u64) -> Vec<u64> {
        self.node(id).entries().iter().map(|e| e.term.0).collect()
    }

    pub fn count_delivered(&self, kind: &str) -> usize {
        self.delivered.iter().filter(|m| m.body.kind_name() == kind).count()
    }

    /// `leader` proposes `change` against its current configuration, then the cluster settles.
    pub fn change_membership(
        &mut self,
        leader: u64,
        change: MembershipChange,
    ) -> Result<LogIndex, MembershipError> {
        let expected = self.node(leader).membership_index();
        let result = self.node_mut(leader).change_membership(change, expected);
        self.stabilize();
        result
    }

    /// Takes node `id`'s next batch (its messages go to the network) and returns its read
    /// states, which `flush` would drop.
    pub fn read_states(&mut self, id: u64) -> Vec<ReadState> {
        let node = self.node_mut(id);
        if !node.has_ready() {
            return Vec::new();
        }
        let ready = node.ready();
        node.advance();
        self.network.extend(ready.messages);
        self.network.extend(ready.messages_after_persist);
        ready.read_states
    }

    /// Delivers everything and returns the read states node `id` produced meanwhile.
    pub fn settle_reads(&mut self, id: u64) -> Vec<ReadState> {
        let mut states = self.read_states(id);
        loop {
            self.flush_except(id);
            states.extend(self.read_states(id));
            let Some(message) = self.network.pop_front() else { break };
            self.deliver(message);
        }
        states
    }
}

/// Entries for a hand-made log of a `voters`-node cluster: one per term in `terms`, starting at
/// index 1 (which holds the configuration).
pub fn entries_with_terms(voters: u64, terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let payload = if k == 0 {
                raft_core::EntryPayload::Membership(Box::new(Membership::with_voters(
                    (1..=voters).map(NodeId),
                )))
            } else {
                raft_core::EntryPayload::Command(Bytes::from(format!("{k}@{t}")))
            };
            Entry { term: Term(t), index: LogIndex(k as u64 + 1), payload }
        })
        .collect()
}

pub fn is_append(message: &Message) -> bool {
    matches!(message.body, MessageBody::AppendEntries { .. })
}
