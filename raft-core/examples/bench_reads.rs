//! Read throughput: ReadIndex reads (thesis §6.4) batched so that every read registered between
//! two `Ready` batches shares one heartbeat round, served from the leader's key-value store.
//! One thread, in-memory storage, a zero-latency network, three servers (like `bench`).
//!
//! ```text
//! cargo run --release -p raft-core --example bench_reads -- --reads 4000000 --batch 4096
//! ```
//!
//! Phases in one run: writes alone (puts through the log, `--outstanding` in flight), the same
//! writes with `--mixed-batch` reads issued beside every batch of proposals (one phase per
//! value), then reads alone (`--batch` reads per round). Reads write nothing to the log and
//! share the heartbeat round, so the writes' log entries and messages do not change; what reads
//! take from writes is only the one thread's time spent serving them. The last line is JSON
//! with `reads_per_sec`, `writes_per_sec_alone` and `writes_per_sec_with_reads` (by reads per
//! round).

use clap::Parser;
use raft_core::kv::{Command, KvConfig, KvStore, Operation, Output};
use raft_core::state_machine::StateMachine;
use raft_core::{
    bootstrap, Bytes, Config, Entry, HardState, LogIndex, Membership, Message, NodeId, RaftNode, ReadMode,
    Role,
};
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Measure batched ReadIndex reads and writes on a zero-latency in-memory network")]
struct Args {
    /// Reads to serve in the reads-alone phase.
    #[arg(long, default_value_t = 4_000_000)]
    reads: u64,
    /// Reads registered per round (per Ready) in the reads-alone phase.
    #[arg(long, default_value_t = 4096)]
    batch: u64,
    /// Writes to commit in each write phase.
    #[arg(long, default_value_t = 200_000)]
    writes: u64,
    /// Proposals kept in flight at the leader.
    #[arg(long, default_value_t = 256)]
    outstanding: u64,
    /// Reads registered beside every batch of proposals, one mixed phase per value.
    #[arg(long, value_delimiter = ',', default_value = "16,256")]
    mixed_batch: Vec<u64>,
    /// Keys written and read.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
}

/// What a node's disk would hold, kept in memory.
#[derive(Default)]
struct MemoryStorage {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl MemoryStorage {
    fn persist(&mut self, hard_state: Option<HardState>, entries: Vec<Entry>) {
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state;
        }
        if let Some(first) = entries.first() {
            self.entries.truncate((first.index.0 - 1) as usize);
            self.entries.extend(entries);
        }
    }
}

struct Cluster {
    nodes: Vec<RaftNode>,
    storage: Vec<MemoryStorage>,
    stores: Vec<KvStore>,
    network: VecDeque<Message>,
    messages: u64,
    /// The leader's reads with a read index its store has not applied yet, in index order
    /// (reads made on the leader get their indexes in the order they were made).
    reads_waiting: VecDeque<(LogIndex, Operation)>,
    /// Read operations in request id order, until they get a read index.
    reads_pending: VecDeque<(u64, Operation)>,
    reads_served: u64,
    /// A cheap check that reads are really served: keys found.
    reads_found: u64,
}

impl Cluster {
    fn new(size: usize) -> Cluster {
        let membership = Membership::with_voters((1..=size as u64).map(NodeId));
        let nodes = (1..=size as u64)
            .map(|id| {
                let mut config = Config::new(NodeId(id), id);
                config.inflight_messages_max = 256;
                RaftNode::new(config, bootstrap(membership.clone())).expect("valid config")
            })
            .collect();
        Cluster {
            nodes,
            storage: (0..size).map(|_| MemoryStorage::default()).collect(),
            stores: (0..size).map(|_| KvStore::new(KvConfig::default()).expect("valid config")).collect(),
            network: VecDeque::new(),
            messages: 0,
            reads_waiting: VecDeque::new(),
            reads_pending: VecDeque::new(),
            reads_served: 0,
            reads_found: 0,
        }
    }

    fn serve(&mut self, operation: &Operation) {
        if let Ok(Output::Value(Some(_))) = self.stores[0].read(operation) {
            self.reads_found += 1;
        }
        self.reads_served += 1;
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
                for entry in &ready.committed_entries {
                    // A put never fails here; its response goes to nobody in this benchmark.
                    let _response = self.stores[k].apply(entry);
                }
                self.nodes[k].advance();
                if k != 0 {
                    continue;
                }
                for state in ready.read_states {
                    let (request_id, operation) = self.reads_pending.pop_front().expect("a read we made");
                    assert_eq!(request_id, state.request_id, "reads are answered in order");
                    let index = state.result.expect("the leader keeps leading");
                    debug_assert!(self.reads_waiting.back().is_none_or(|(last, _)| *last <= index));
                    self.reads_waiting.push_back((index, operation));
                }
                let applied = self.stores[0].applied_index();
                while self.reads_waiting.front().is_some_and(|(index, _)| *index <= applied) {
                    let (_, operation) = self.reads_waiting.pop_front().expect("checked");
                    self.serve(&operation);
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

/// Keys as bytes, made once.
fn keys(count: u64) -> Vec<Bytes> {
    (0..count).map(|k| Bytes::from(format!("key-{k:06}"))).collect()
}

struct Phase {
    writes: u64,
    reads: u64,
    seconds: f64,
    messages: u64,
    entries: u64,
}

/// Commits `writes` puts (unless 0) with `reads_per_round` reads registered beside every batch of
/// proposals; with no writes, serves `reads` reads in rounds of `reads_per_round`.
fn run_phase(cluster: &mut Cluster, args: &Args, writes: u64, reads: u64, reads_per_round: u64) -> Phase {
    let keys = keys(args.keys);
    let value = Bytes::from(vec![7u8; 64]);
    let start_commit = cluster.nodes[0].commit_index().0;
    let start_messages = cluster.messages;
    let start_reads = cluster.reads_served;
    let mut request_id = cluster.reads_served + cluster.reads_pending.len() as u64 + 1_000_000_000;
    let mut proposed = 0u64;
    let mut sequence = 0u64;
    let started = Instant::now();
    loop {
        let committed = cluster.nodes[0].commit_index().0 - start_commit;
        let served = cluster.reads_served - start_reads;
        if committed >= writes && served >= reads {
            break;
        }
        while proposed < writes && proposed - committed < args.outstanding {
            sequence += 1;
            let key = keys[(sequence % args.keys) as usize].clone();
            let command = Command::unsessioned(sequence, Operation::Put { key, value: value.clone() });
            cluster.nodes[0].propose(command.encode()).expect("leader takes proposals");
            proposed += 1;
        }
        let wanted = if writes == 0 { reads_per_round.min(reads - served) } else { reads_per_round };
        for _ in 0..wanted {
            request_id += 1;
            let key = keys[(request_id % args.keys) as usize].clone();
            cluster.reads_pending.push_back((request_id, Operation::Get { key }));
            cluster.nodes[0].read(request_id, ReadMode::Linearizable);
        }
        cluster.settle();
    }
    Phase {
        writes: cluster.nodes[0].commit_index().0 - start_commit,
        reads: cluster.reads_served - start_reads,
        seconds: started.elapsed().as_secs_f64(),
        messages: cluster.messages - start_messages,
        entries: cluster.nodes[0].commit_index().0 - start_commit,
    }
}

/// One figure per mixed phase, keyed by its reads per round.
fn by_batch(batches: &[u64], phases: &[Phase], figure: impl Fn(&Phase) -> f64) -> serde_json::Value {
    let map =
        batches.iter().zip(phases).map(|(batch, phase)| (batch.to_string(), figure(phase).into())).collect();
    serde_json::Value::Object(map)
}

/// The faster of two runs of the same phase.
fn better(best: Option<Phase>, phase: Phase) -> Phase {
    match best {
        Some(best) if best.seconds <= phase.seconds => best,
        _ => phase,
    }
}

fn per_sec(count: u64, seconds: f64) -> f64 {
    (count as f64 / seconds).round()
}

fn main() {
    let args = Args::parse();
    let mut cluster = Cluster::new(3);
    cluster.nodes[0].campaign();
    cluster.settle();
    assert_eq!(cluster.nodes[0].role(), Role::Leader, "node 1 should win the first election");
    // Reads and unsessioned puts need no session. Warm up so that every key exists.
    let warm = run_phase(&mut cluster, &args, args.keys, 0, 0);
    assert_eq!(warm.writes, args.keys);

    // Writes alone and writes beside reads take turns, three times, and the best of each counts,
    // so that warm-up and a busy machine do not favour one of them.
    let mut writes_alone: Option<Phase> = None;
    let mut mixed: Vec<Option<Phase>> = args.mixed_batch.iter().map(|_| None).collect();
    for _ in 0..3 {
        let alone = run_phase(&mut cluster, &args, args.writes, 0, 0);
        writes_alone = Some(better(writes_alone, alone));
        for (best, &reads_per_round) in mixed.iter_mut().zip(&args.mixed_batch) {
            let beside = run_phase(&mut cluster, &args, args.writes, 0, reads_per_round);
            *best = Some(better(best.take(), beside));
        }
    }
    let writes_alone = writes_alone.expect("ran");
    let mixed: Vec<Phase> = mixed.into_iter().map(|phase| phase.expect("ran")).collect();
    let reads_alone = run_phase(&mut cluster, &args, 0, args.reads, args.batch);
    assert_eq!(cluster.reads_found, cluster.reads_served, "every read finds its key");
    let heartbeat_rounds = reads_alone.messages as f64 / 4.0;

    let summary = serde_json::json!({
        "nodes": 3,
        "batch": args.batch,
        "reads": reads_alone.reads,
        "reads_seconds": (reads_alone.seconds * 1000.0).round() / 1000.0,
        "reads_per_sec": per_sec(reads_alone.reads, reads_alone.seconds),
        "reads_per_heartbeat_round": (reads_alone.reads as f64 / heartbeat_rounds).round(),
        "log_entries_for_reads": reads_alone.entries,
        "writes": writes_alone.writes,
        "outstanding": args.outstanding,
        "writes_per_sec_alone": per_sec(writes_alone.writes, writes_alone.seconds),
        "messages_per_write_alone": (writes_alone.messages as f64 / writes_alone.writes as f64 * 100.0).round() / 100.0,
        "writes_per_sec_with_reads": by_batch(&args.mixed_batch, &mixed, |phase| per_sec(phase.writes, phase.seconds)),
        "reads_per_sec_beside_writes": by_batch(&args.mixed_batch, &mixed, |phase| per_sec(phase.reads, phase.seconds)),
        "log_entries_per_write_with_reads": by_batch(&args.mixed_batch, &mixed, |phase| phase.entries as f64 / phase.writes as f64),
        "messages_per_write_with_reads": by_batch(&args.mixed_batch, &mixed, |phase| (phase.messages as f64 / phase.writes as f64 * 100.0).round() / 100.0),
    });
    println!("{summary}");
}
