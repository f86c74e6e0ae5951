//! Figures of issue #13 (opt-in; they print numbers, they assert nothing about speed):
//!
//! ```text
//! cargo test -p native-node --release --test browser_learner_figures -- --ignored --nocapture --test-threads 1
//! ```
//!
//! 1. catch-up: a tab joining a 3-node cluster that holds 100,000 keys (so it gets a snapshot)
//!    until it has applied a write made after it joined;
//! 2. a tab beside `raft-node bench --clients 64`: its apply rate and the largest lag seen;
//! 3. the leader's bench throughput with 8 tabs attached against none.
//!
//! The tabs are the Rust test tab of `common/tab.rs` (the same raft-core, wire frames and driver
//! contract as the wasm tab), in this process, on loopback.

mod common;

use common::tab::Tab;
use common::{Cluster, SECRET};
use native_node::bench::{self, BenchConfig};
use native_node::client::http_admin;
use raft_core::ReadMode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLUSTER: &str = "flotilla";

async fn invite(address: &str, uses: u32) -> String {
    let path = format!("/admin/invite?uses={uses}&ttl_ms=3600000");
    let answer = http_admin(&[address.to_string()], Some(SECRET), "POST", &path, &[]).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    value["link"].as_str().unwrap().to_string()
}

fn bench_config(cluster: &Cluster, ops: usize) -> BenchConfig {
    BenchConfig {
        endpoints: cluster.addresses.clone(),
        clients: 64,
        connections: 4,
        ops,
        value_size_bytes: 256,
        use_session: true,
        record: None,
        security: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn figure_catch_up_of_a_tab_joining_a_100000_key_cluster() {
    let cluster = Cluster::start_with(3, "fig-catchup", |config| {
        config.snapshot_interval_entries = 20_000;
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let report = bench::run(BenchConfig { ops: 100_000, ..bench_config(&cluster, 100_000) }).await;
    println!("loaded {} keys at {:.0} puts/s", report.ops, report.ops_per_sec);
    let status = cluster.node(leader).raft.status();
    println!("leader: commit {}, snapshot at {}", status.commit_index, status.snapshot_index);
    let link = invite(&cluster.addresses[(leader - 1) as usize], 1).await;
    let started = Instant::now();
    let tab = Tab::join_link(&link, CLUSTER).await.unwrap();
    let admitted = started.elapsed();
    let mut client = cluster.client();
    client.put("after-join", "live").await.unwrap();
    loop {
        if tab.get("after-join", ReadMode::Stale).await.unwrap().is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the tab did not catch up in 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let caught_up = started.elapsed();
    let (snapshots, applied) = {
        let view = tab.view.lock().unwrap();
        (view.snapshots_installed, view.applied)
    };
    println!(
        "FIGURE catch-up: admitted in {:.3} s; snapshot installed ({} snapshots) and a live write applied {:.3} s \
         after the join began; tab applied {} (keys in the cluster: {})",
        admitted.as_secs_f64(),
        snapshots,
        caught_up.as_secs_f64(),
        applied,
        report.ops
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn figure_a_tab_keeps_up_with_bench_64_clients() {
    let cluster = Cluster::start(3, "fig-keepup").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let link = invite(&cluster.addresses[(leader - 1) as usize], 1).await;
    let tab = Tab::join_link(&link, CLUSTER).await.unwrap();
    let start_applied = tab.applied();
    let raft = cluster.node(leader).raft.clone();
    let view = tab.view.clone();
    let lag_max = Arc::new(AtomicU64::new(0));
    let sampled = lag_max.clone();
    let sampler = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let lag = raft.status().commit_index.saturating_sub(view.lock().unwrap().applied);
            sampled.fetch_max(lag, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let report = bench::run(bench_config(&cluster, 50_000)).await;
    let target = cluster.node(leader).raft.status().commit_index;
    while tab.applied() < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    sampler.abort();
    let applied = tab.applied() - start_applied;
    println!(
        "FIGURE keep-up: bench --clients 64: {:.0} puts/s (p99 {:.1} ms); the tab applied {applied} entries in {:.2} s \
         = {:.0} entries/s, largest lag seen {} entries, caught up {:.3} s after the bench ended",
        report.ops_per_sec,
        report.p99_ms,
        elapsed.as_secs_f64(),
        applied as f64 / elapsed.as_secs_f64(),
        lag_max.load(Ordering::Relaxed),
        (elapsed.as_secs_f64() - report.elapsed_s).max(0.0)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn figure_leader_throughput_with_8_tabs_against_none() {
    let cluster = Cluster::start(3, "fig-8tabs").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    // Warm up, then measure without tabs.
    bench::run(bench_config(&cluster, 5_000)).await;
    let none = bench::run(bench_config(&cluster, 30_000)).await;
    let link = invite(&cluster.addresses[(leader - 1) as usize], 8).await;
    let mut tabs = Vec::new();
    for _ in 0..8 {
        tabs.push(Tab::join_link(&link, CLUSTER).await.unwrap());
    }
    let eight = bench::run(bench_config(&cluster, 30_000)).await;
    let target = cluster.node(leader).raft.status().commit_index;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tabs.iter().any(|tab| tab.applied() < target) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let behind = tabs.iter().filter(|tab| tab.applied() < target).count();
    println!(
        "FIGURE 8 tabs: leader bench --clients 64: {:.0} puts/s with no tab, {:.0} puts/s with 8 tabs = {:.0}% \
         ({behind} tabs still behind 30 s later)",
        none.ops_per_sec,
        eight.ops_per_sec,
        100.0 * eight.ops_per_sec / none.ops_per_sec
    );
    cluster.shutdown().await;
}
