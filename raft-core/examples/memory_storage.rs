//! A complete driver in one file: three nodes in one process, each with the reference
//! [`MemoryStorage`], a `SimStateMachine`, and a queue for a network. It follows the driver's
//! contract step by step (see `raft_core::Ready`), snapshots from inside the apply loop when the
//! node asks for it, restarts a node from its storage, and checks that every replica applied the
//! same entries.
//!
//! Run with `cargo run --release -p raft-core --example memory_storage`.

use raft_core::sim::SimStateMachine;
use raft_core::storage::MemoryStorage;
use raft_core::{bootstrap, Bytes, Config, LogIndex, Membership, Message, NodeId, RaftNode, Role};
use std::collections::VecDeque;

/// Bytes per snapshot chunk.
const CHUNK_BYTES_MAX: usize = 64 * 1024;

struct Server {
    node: RaftNode,
    storage: MemoryStorage,
    machine: SimStateMachine,
}

impl Server {
    /// One turn of the driver's loop: everything the node's `Ready` asks, in order.
    fn drive(&mut self, network: &mut VecDeque<Message>) {
        while self.node.has_ready() {
            let ready = self.node.ready();
            // 1. Messages that may leave before anything is durable.
            network.extend(ready.messages.iter().cloned());
            // 2. Persist: staged chunks, an installed snapshot, hard state and entries.
            if let Some(data) = self.storage.persist(&ready) {
                self.machine = SimStateMachine::restore(&data).expect("a complete snapshot");
            }
            // 3. Messages that promise durable state.
            network.extend(ready.messages_after_persist.iter().cloned());
            // Leader: serve the snapshot chunks followers need.
            for request in &ready.snapshot_chunks_wanted {
                if let Some((data, last)) = self.storage.snapshot_chunk(request, CHUNK_BYTES_MAX) {
                    self.node.send_snapshot_chunk(request.to, request.meta.index, request.offset, data, last);
                }
            }
            // 4. Apply, snapshotting from inside the loop when the policy asks.
            for entry in &ready.committed_entries {
                self.machine.apply(entry);
                if self.node.snapshot_wanted().is_some() || entry.index.0 % 50 == 0 {
                    if let Ok(created) = self.node.snapshot_created(entry.index) {
                        self.storage.compact(&created, self.machine.snapshot());
                    }
                }
            }
            // 5. Done.
            self.node.advance();
        }
    }
}

fn config(id: u64) -> Config {
    let mut config = Config::new(NodeId(id), 42 + id);
    config.snapshot_trailing_entries = 10;
    config
}

fn main() {
    let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
    let mut servers: Vec<Server> = (1..=3)
        .map(|id| {
            let storage = MemoryStorage::from_restored(bootstrap(membership.clone()));
            let node = RaftNode::new(config(id), storage.restored(LogIndex(0))).expect("valid configuration");
            Server { node, storage, machine: SimStateMachine::default() }
        })
        .collect();
    let mut network = VecDeque::new();
    let mut proposed = 0;
    for tick in 0..2_000u64 {
        for server in &mut servers {
            server.node.tick();
            server.drive(&mut network);
        }
        while let Some(message) = network.pop_front() {
            let server = &mut servers[(message.to.0 - 1) as usize];
            // A message the node refuses is counted in its stats; a driver only logs it.
            let _ = server.node.step(message);
            server.drive(&mut network);
        }
        if let Some(leader) = servers.iter_mut().find(|s| s.node.role() == Role::Leader) {
            if proposed < 200 && leader.node.propose(Bytes::from(format!("command {proposed}"))).is_ok() {
                proposed += 1;
            }
        }
        if tick == 1_000 {
            // Node 3 crashes and restarts from what its storage holds.
            let server = &mut servers[2];
            server.machine = server
                .storage
                .snapshot()
                .map_or_else(SimStateMachine::default, |(_, data)| SimStateMachine::restore(data).unwrap());
            let restored = server.storage.restored(server.machine.applied);
            server.node = RaftNode::new(config(3), restored).expect("restart from storage");
        }
    }
    let chains: Vec<(LogIndex, u64)> = servers.iter().map(|s| (s.machine.applied, s.machine.chain)).collect();
    for (k, server) in servers.iter().enumerate() {
        let snapshot = server.storage.snapshot().map_or(0, |(meta, _)| meta.index.0);
        println!(
            "node {}: {:?}, term {}, applied {}, snapshot at {snapshot}, {} entries stored",
            k + 1,
            server.node.role(),
            server.node.term(),
            server.machine.applied,
            server.storage.entries().len()
        );
    }
    assert!(chains.windows(2).all(|pair| pair[0] == pair[1]), "replicas differ: {chains:?}");
    assert_eq!(proposed, 200);
    println!("{proposed} commands proposed; every replica applied the same {} entries", chains[0].0);
}
