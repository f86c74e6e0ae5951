//! `raft-node bench`: C concurrent clients, each with its own session, issue puts of 8-byte keys
//! and fixed-size values, one outstanding request each, and the latency of every put is
//! recorded (client send → applied on the leader → answer received). The clients share
//! `connections` WebSockets per server, round-robin, as the clients of one process share a
//! pool (and as etcd's benchmark shares `--conns` among `--clients`): on this 2-core machine a
//! socket per client costs more in system calls and wake-ups than the rest of a put.

use crate::client::{Client, ClientConfig};
use crate::connection::ConnectionPool;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Clients per shared connection unless told otherwise (`raft-node bench --conns`).
pub const CLIENTS_PER_CONNECTION: usize = 16;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// host:port of the nodes.
    pub endpoints: Vec<String>,
    /// Concurrent clients.
    pub clients: usize,
    /// WebSocket connections per server the clients share (at most one per client).
    pub connections: usize,
    /// Total puts across all clients.
    pub ops: usize,
    /// Bytes per value.
    pub value_size_bytes: usize,
    /// Use client sessions (exactly-once retries).
    pub use_session: bool,
    /// Record every operation here (`--record`); the workload then alternates puts and gets on
    /// a few shared keys, so the history is worth checking (see [`crate::history`]).
    pub record: Option<crate::history::Recorder>,
    /// TLS and the client token (see [`crate::connection::ClientSecurity`]).
    pub security: crate::connection::ClientSecurity,
}

/// The result; printed as one JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Concurrent clients.
    pub clients: usize,
    /// Connections per server they shared.
    pub connections: usize,
    /// Puts that succeeded.
    pub ops: usize,
    /// Puts that failed.
    pub errors: usize,
    /// Wall-clock seconds of the run.
    pub elapsed_s: f64,
    /// Successful puts per second.
    pub ops_per_sec: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// 99.9th percentile latency.
    pub p999_ms: f64,
    /// Slowest put.
    pub max_ms: f64,
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Runs the benchmark.
pub async fn run(config: BenchConfig) -> BenchReport {
    let clients = config.clients.max(1);
    let value = "x".repeat(config.value_size_bytes);
    // Connect and open sessions first, so the timed part measures puts only.
    let connections = config.connections.clamp(1, clients);
    let pools: Vec<ConnectionPool> =
        (0..connections).map(|_| ConnectionPool::with_security(config.security.clone())).collect();
    let mut prepared = Vec::with_capacity(clients);
    for number in 0..clients {
        let mut client_config = ClientConfig::new(config.endpoints.clone());
        client_config.use_session = config.use_session;
        client_config.call_timeout = Duration::from_secs(10);
        let mut client = Client::with_pool(client_config, pools[number % connections].clone());
        let _ = client.put("bench-warmup", "1").await;
        prepared.push(client);
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for (number, mut client) in prepared.into_iter().enumerate() {
        let ops = config.ops / clients + usize::from(number < config.ops % clients);
        let value = value.clone();
        let record = config.record.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(ops);
            let mut errors = 0usize;
            for op in 0..ops {
                let key = format!("{:04x}{:04x}", number % 0x10000, op % 0x10000);
                let begun = Instant::now();
                let answer = match &record {
                    Some(recorder) => {
                        let recorded = crate::history::recorded_bench_op(number, op, &value);
                        recorder.run(&mut client, number as u64 + 1, &recorded, "linearizable").await
                    }
                    None => client.put(&key, &value).await,
                };
                match answer {
                    Ok(_) => latencies.push(begun.elapsed()),
                    Err(error) => {
                        errors += 1;
                        tracing::debug!(%error, "bench put failed");
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(config.ops);
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok((mut task_latencies, task_errors)) => {
                latencies.append(&mut task_latencies);
                errors += task_errors;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(Err(error)) = config.record.as_ref().map(crate::history::Recorder::flush) {
        tracing::warn!(%error, "cannot write the recorded history");
    }
    latencies.sort_unstable();
    BenchReport {
        clients,
        connections,
        ops: latencies.len(),
        errors,
        elapsed_s: elapsed,
        ops_per_sec: if elapsed > 0.0 { latencies.len() as f64 / elapsed } else { 0.0 },
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        p999_ms: percentile(&latencies, 0.999),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    }
}
