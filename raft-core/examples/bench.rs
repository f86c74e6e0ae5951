//! Core throughput: one thread, in-memory storage, a zero-latency simulated network.
//!
//! ```text
//! cargo run --release -p raft-core --example bench -- --nodes 3 --outstanding 1024 --entries 2000000 --payload 64
//! ```
//!
//! The leader keeps `--outstanding` proposals uncommitted at a time; every message is delivered
//! as soon as its batch is out (messages that wait for a persist go after the batch is stored).
//! Prints one JSON line with `entries_per_sec` (commits at the leader) and `messages_per_sec`.

use clap::Parser;
use raft_core::{
    bootstrap, Bytes, Config, Entry, HardState, LogIndex, Membership, Message, NodeId, RaftNode, Role,
};
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Measure raft-core throughput on a zero-latency in-memory network")]
struct Args {
    /// Servers in the cluster.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Proposals kept in flight (not yet committed) at the leader.
    #[arg(long, default_value_t = 1)]
    outstanding: u64,
    /// Entries to commit.
    #[arg(long, default_value_t = 200_000)]
    entries: u64,
    /// Payload bytes per entry.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Snapshot policy: every node snapshots after this many applied entries and compacts
    /// its log behind it (0: never).
    #[arg(long, default_value_t = 0)]
    snapshot_interval: u64,
}

/// What a node's disk would hold, kept in memory.
#[derive(Default)]
struct MemoryStorage {
    hard_state: HardState,
    entries: Vec<Entry>,
    /// The state machine: a running hash of what was applied (its snapshot is that hash).
    state: u64,
    snapshot: Option<(LogIndex, u64)>,
}

impl MemoryStorage {
    fn persist(&mut self, hard_state: Option<HardState>, entries: Vec<Entry>) {
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state;
        }
        if let Some(first) = entries.first() {
            let stored_from = self.entries.first().map_or(first.index, |e| e.index);
            let keep = first.index.0.saturating_sub(stored_from.0) as usize;
            self.entries.truncate(keep);
            self.entries.extend(entries);
        }
    }

    fn compact(&mut self, through: LogIndex) {
        let stored_from = self.entries.first().map_or(through, |e| e.index);
        let covered = (through.0 + 1).saturating_sub(stored_from.0).min(self.entries.len() as u64);
        self.entries.drain(..covered as usize);
    }
}

struct Cluster {
    nodes: Vec<RaftNode>,
    storage: Vec<MemoryStorage>,
    network: VecDeque<Message>,
    messages: u64,
    applied: u64,
}

impl Cluster {
    fn new(size: usize, snapshot_interval: u64) -> Cluster {
        let membership = Membership::with_voters((1..=size as u64).map(NodeId));
        let nodes = (1..=size as u64)
            .map(|id| {
                let mut config = Config::new(NodeId(id), id);
                config.inflight_messages_max = 256;
                config.snapshot_interval_entries = snapshot_interval;
                RaftNode::new(config, bootstrap(membership.clone())).expect("valid config")
            })
            .collect();
        let storage = (0..size).map(|_| MemoryStorage::default()).collect();
        Cluster { nodes, storage, network: VecDeque::new(), messages: 0, applied: 0 }
    }

    /// Hands out every node's batch and delivers every message until the cluster is quiet.
    fn settle(&mut self) {
        loop {
            let mut busy = false;
            for k in 0..self.nodes.len() {
                if !self.nodes[k].has_ready() {
                    continue;
                }
                busy = true;
                let ready = self.nodes[k].ready();
                self.network.extend(ready.messages);
                self.storage[k].persist(ready.hard_state, ready.entries);
                self.network.extend(ready.messages_after_persist);
                self.applied += ready.committed_entries.len() as u64;
                let storage = &mut self.storage[k];
                for entry in &ready.committed_entries {
                    storage.state = storage.state.rotate_left(5) ^ entry.index.0;
                }
                self.nodes[k].advance();
                if let Some(index) = self.nodes[k].snapshot_wanted() {
                    let created = self.nodes[k].snapshot_created(index).expect("applied index");
                    storage.snapshot = Some((index, storage.state));
                    storage.compact(created.compact_through);
                }
            }
            while let Some(message) = self.network.pop_front() {
                busy = true;
                self.messages += 1;
                let to = (message.to.0 - 1) as usize;
                self.nodes[to].step(message).expect("valid message");
            }
            if !busy {
                return;
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    let mut cluster = Cluster::new(args.nodes, args.snapshot_interval);
    cluster.nodes[0].campaign();
    cluster.settle();
    assert_eq!(cluster.nodes[0].role(), Role::Leader, "node 1 should win the first election");
    let payload = Bytes::from(vec![7u8; args.payload]);
    let start_commit = cluster.nodes[0].commit_index().0;
    let target = start_commit + args.entries;
    let start_messages = cluster.messages;
    let started = Instant::now();
    let mut proposed = start_commit;
    loop {
        let committed = cluster.nodes[0].commit_index().0;
        if committed >= target {
            break;
        }
        while proposed < target && proposed - committed < args.outstanding {
            cluster.nodes[0].propose(payload.clone()).expect("leader takes proposals");
            proposed += 1;
        }
        cluster.settle();
    }
    let seconds = started.elapsed().as_secs_f64();
    let committed = cluster.nodes[0].commit_index().0 - start_commit;
    let messages = cluster.messages - start_messages;
    let summary = serde_json::json!({
        "nodes": args.nodes,
        "outstanding": args.outstanding,
        "payload": args.payload,
        "snapshot_interval": args.snapshot_interval,
        "entries": committed,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "entries_per_sec": (committed as f64 / seconds).round(),
        "messages_per_sec": (messages as f64 / seconds).round(),
        "messages_per_entry": (messages as f64 / committed as f64 * 100.0).round() / 100.0,
    });
    println!("{summary}");
}
