//! Figures of issue #13 (opt-in; they print numbers, they assert nothing about speed):
//!
//! ```text
//! cargo test -p native-node --release --test browser_learner_figures -- --ignored --nocapture --test-threads 1
//! ```
//!
//! 1. catch-up: a tab joining a 3-node cluster that holds 100,000 keys (so it gets a snapshot)
//!    until it has applied a write made after it joined;
//! 2. a tab beside `raft-node bench --clients 64`: its apply rate and the largest lag seen;
//! 3. the leader's bench throughput with 8 tabs attached against none, in rounds that alternate
//!    no tab and 8 tabs (`FLOTILLA_FIGURE_ROUNDS`, default 3), twice: with the whole cluster in
//!    this process (what the machine does with everything on it), and with the nodes as
//!    `raft-node serve` processes, where each node's CPU time per put is read from /proc (what
//!    the leader itself spends).
//!
//! The tabs are the Rust test tab of `common/tab.rs` (the same raft-core, wire frames and driver
//! contract as the wasm tab), in this process, on loopback. On a 2-core machine they compete
//! with the nodes for the same cores, as browser tabs on the cluster's own machine would.

mod common;

use common::tab::Tab;
use common::{Cluster, SECRET};
use native_node::bench::{self, BenchConfig};
use native_node::client::http_admin;
use raft_core::wire::records::is_browser_node_id;
use raft_core::{NodeId, ReadMode};
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

/// Rounds of the 8-tab figures, each a run without tabs then one with 8
/// (`FLOTILLA_FIGURE_ROUNDS`, default 3).
fn rounds() -> usize {
    std::env::var("FLOTILLA_FIGURE_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(3)
}

/// Puts per measured bench run of the 8-tab figures.
const PUTS_PER_RUN: usize = 30_000;

fn summary(label: &str, ratios: &[f64]) -> String {
    let mut sorted = ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    let text: Vec<String> = ratios.iter().map(|r| format!("{:.0}%", 100.0 * r)).collect();
    format!("{label}: {} (median {:.0}%)", text.join(", "), 100.0 * sorted[sorted.len() / 2])
}

/// Joins `count` tabs, each by an invitation of the node `leader_address` names then (a loaded
/// machine may change leaders: a refused join is retried with a fresh invitation).
async fn attach_tabs<F, Fut>(leader_address: F, secret: &str, count: usize) -> Vec<Tab>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let mut tabs = Vec::new();
    let mut refused = 0;
    while tabs.len() < count {
        let link = invite_with(&leader_address().await, secret, 1).await;
        match Tab::join_link(&link, CLUSTER).await {
            Ok(tab) => tabs.push(tab),
            Err(error) => {
                refused += 1;
                assert!(refused < 20, "tabs refused 20 times, the last: {error:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    tabs
}

/// Waits (60 s at most) until every tab has applied `target`.
async fn wait_caught_up(tabs: &[Tab], target: u64, addresses: &[String], secret: &str) {
    if tabs_catch_up(tabs, target).await.is_none() {
        let applied: Vec<u64> = tabs.iter().map(|tab| tab.applied()).collect();
        dump_stall(tabs, target, addresses, secret).await;
        panic!("the tabs did not apply {target} before the run: {applied:?}");
    }
}

/// After a run with tabs: how long until every tab applied the leader's commit (the tabs must
/// keep up, or the leader would be sending them less than everything).
async fn tabs_catch_up(tabs: &[Tab], target: u64) -> Option<f64> {
    let started = Instant::now();
    while tabs.iter().any(|tab| tab.applied() < target) {
        if started.elapsed() > Duration::from_secs(60) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Some(started.elapsed().as_secs_f64())
}

/// What a stall looks like from both ends: for each tab short of `target`, its own view
/// (applied, commit, leader, connections, closes, unsent messages, whether its driver ended)
/// and every native node's progress record for it (state, match, next, in-flight window,
/// rounds answered), then every nonzero drop counter of every node's metrics.
async fn dump_stall(tabs: &[Tab], target: u64, addresses: &[String], secret: &str) {
    println!("STALL: tabs short of {target}");
    let mut statuses = Vec::new();
    for address in addresses {
        statuses.push((address, admin_status_with(address.clone(), secret).await));
    }
    for tab in tabs.iter().filter(|tab| tab.applied() < target) {
        {
            let view = tab.view.lock().unwrap();
            println!(
                "  tab {}: applied {} commit {} term {} leader {:?} connected {:?} closes {:?} \
                 sends_without_connection {} apply_violations {:?} driver_ended {}",
                tab.id,
                view.applied,
                view.commit,
                view.term,
                view.leader,
                view.connected,
                view.closes,
                view.sends_without_connection,
                view.apply_violations,
                tab.driver_ended()
            );
        }
        for (address, status) in &statuses {
            let Some(status) = status else { continue };
            let status = &status["status"];
            let followers = status["followers"].as_array().cloned().unwrap_or_default();
            if let Some(progress) = followers.iter().find(|f| f["id"].as_u64() == Some(tab.id.0)) {
                println!(
                    "    {address} ({}, term {}, last {} commit {}): {progress}",
                    status["role"], status["term"], status["last_index"], status["commit_index"]
                );
            }
        }
    }
    for address in addresses {
        let Ok(answer) =
            http_admin(std::slice::from_ref(address), Some(secret), "GET", "/metrics", &[]).await
        else {
            println!("  {address}: no metrics");
            continue;
        };
        let text = String::from_utf8_lossy(&answer.body);
        let words =
            ["dropped", "stale", "malformed", "unauthenticated", "timeout", "idle", "refused", "unreachable"];
        let counters: Vec<&str> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| words.iter().any(|word| line.contains(word)))
            .filter(|line| !line.ends_with(" 0"))
            .collect();
        println!("  {address} nonzero drop counters: {counters:?}");
    }
}

/// The whole cluster, the bench clients and the 8 tabs in this one process on its two worker
/// threads, on a 2-core machine: this measures the machine shared by all of them, so a tab's
/// own work (applying every entry, as a follower does) counts against the leader. See the
/// `processes` figure for the leader's own cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn figure_leader_throughput_with_8_tabs_against_none() {
    let cluster = Cluster::start_with(3, "fig-8tabs", |config| {
        // Closed tabs leave the configuration quickly, so the next run has none.
        config.browser_peers.ttl = Duration::from_secs(3);
    })
    .await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    bench::run(bench_config(&cluster, 5_000)).await;
    let mut ratios = Vec::new();
    for round in 1..=rounds() {
        let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
        let raft = cluster.node(leader).raft.clone();
        let none = bench::run(bench_config(&cluster, PUTS_PER_RUN)).await;
        let leader_address = || async {
            cluster.addresses[(cluster.wait_for_leader(Duration::from_secs(10)).await - 1) as usize].clone()
        };
        let tabs = attach_tabs(leader_address, SECRET, 8).await;
        wait_caught_up(&tabs, raft.status().commit_index, &cluster.addresses, SECRET).await;
        let eight = bench::run(bench_config(&cluster, PUTS_PER_RUN)).await;
        let target = raft.status().commit_index;
        let caught_up = tabs_catch_up(&tabs, target).await;
        if caught_up.is_none() {
            dump_stall(&tabs, target, &cluster.addresses, SECRET).await;
        }
        drop(tabs);
        ratios.push(eight.ops_per_sec / none.ops_per_sec);
        let leader_after = cluster.wait_for_leader(Duration::from_secs(10)).await;
        if leader_after != leader {
            println!("round {round}: the leader changed from {leader} to {leader_after} during the round");
        }
        println!(
            "round {round}: {:.0} puts/s with no tab, {:.0} with 8 tabs = {:.0}% (tabs caught up {})",
            none.ops_per_sec,
            eight.ops_per_sec,
            100.0 * eight.ops_per_sec / none.ops_per_sec,
            caught_up.map_or("never within 60 s".into(), |s| format!("{s:.3} s after the run"))
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while raft.status().learners.iter().any(|id| is_browser_node_id(NodeId(*id))) {
            assert!(Instant::now() < deadline, "closed tabs were not removed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "FIGURE 8 tabs, in-process (cluster, bench and tabs share 2 cores): {}",
        summary("8 tabs / none", &ratios)
    );
    cluster.shutdown().await;
}

/// `raft-node serve` processes for the processes figure.
mod node_processes {
    use std::path::Path;
    use std::process::{Child, Command, Stdio};

    /// The node binary: this build's, or `FLOTILLA_FIGURE_NODE_BINARY` (to compare two builds
    /// in one sitting).
    pub fn binary() -> String {
        std::env::var("FLOTILLA_FIGURE_NODE_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_raft-node").into())
    }

    /// 64 hex digits: `serve` refuses weaker secrets.
    pub const SECRET: &str = "5a69788796a5b4c3d2e1f00f1e2d3c4b0f1e2d3c4b5a69788796a5b4c3d2e1f0";

    /// A node process, killed when dropped.
    pub struct NodeProcess(pub Child);

    impl Drop for NodeProcess {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    pub fn free_addresses(count: usize) -> Vec<String> {
        let listeners: Vec<std::net::TcpListener> =
            (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        listeners.iter().map(|l| l.local_addr().unwrap().to_string()).collect()
    }

    /// Starts node `id` of the cluster at `addresses`; closed tabs leave after a 3 s TTL and no
    /// snapshot is taken during the runs.
    pub fn spawn(id: u64, addresses: &[String], root: &Path) -> NodeProcess {
        let bootstrap: Vec<String> =
            addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
        let child = Command::new(binary())
            .args(["serve", "--id", &id.to_string(), "--listen", &addresses[(id - 1) as usize]])
            .arg("--data-dir")
            .arg(root.join(format!("node-{id}")))
            .args(["--bootstrap", &bootstrap.join(","), "--browser-peer-ttl", "3s"])
            .args(["--snapshot-interval", "10000000"])
            .env("FLOTILLA_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        NodeProcess(child)
    }

    /// CPU seconds (user + system, every thread) the process `pid` has used ("self": this one).
    pub fn cpu_seconds(pid: &str) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // USER_HZ is 100 on Linux for every architecture it runs this on.
        ticks as f64 / 100.0
    }
}

/// One measured run: throughput and CPU seconds per 1,000 puts of each process.
struct CostedRun {
    ops_per_sec: f64,
    leader_ms_per_kput: f64,
    followers_ms_per_kput: f64,
    this_process_ms_per_kput: f64,
}

async fn costed_run(addresses: &[String], pids: &[String], leader: u64) -> CostedRun {
    use node_processes::cpu_seconds;
    let before: Vec<f64> = pids.iter().map(|pid| cpu_seconds(pid)).collect();
    let own_before = cpu_seconds("self");
    // Wall-clock bounds of the run, to cut a `perf record -k CLOCK_REALTIME` profile with
    // `perf report --time`.
    let unix_now = || std::time::UNIX_EPOCH.elapsed().unwrap_or_default().as_secs_f64();
    let started_unix = unix_now();
    let config = BenchConfig {
        endpoints: addresses.to_vec(),
        clients: 64,
        connections: 4,
        ops: PUTS_PER_RUN,
        value_size_bytes: 256,
        use_session: true,
        record: None,
        security: Default::default(),
    };
    let report = bench::run(config).await;
    println!("run from {started_unix:.6} to {:.6} (unix seconds)", unix_now());
    let used: Vec<f64> = pids.iter().zip(&before).map(|(pid, before)| cpu_seconds(pid) - before).collect();
    let per_kput = |seconds: f64| 1000.0 * seconds / (report.ops as f64 / 1000.0);
    let leader_index = (leader - 1) as usize;
    let followers: f64 = used.iter().enumerate().filter(|(i, _)| *i != leader_index).map(|(_, s)| s).sum();
    CostedRun {
        ops_per_sec: report.ops_per_sec,
        leader_ms_per_kput: per_kput(used[leader_index]),
        followers_ms_per_kput: per_kput(followers / 2.0),
        this_process_ms_per_kput: per_kput(cpu_seconds("self") - own_before),
    }
}

/// The leader's own cost of 8 tabs: the 3 nodes are `raft-node serve` processes, the bench
/// clients and the 8 tabs run in this test process. All of them still share this machine's
/// cores, so throughput here is the machine's; what isolates the leader is its CPU time per
/// 1,000 puts (from /proc), read with no tab and with 8. On a leader bound by its CPU, its
/// throughput with tabs is the inverse ratio of those costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn figure_leader_cost_of_8_tabs_with_nodes_in_processes() {
    let root = common::TempDir::new("fig-8tabs-processes");
    let addresses = node_processes::free_addresses(3);
    let processes: Vec<_> = (1..=3).map(|id| node_processes::spawn(id, &addresses, &root.0)).collect();
    let pids: Vec<String> = processes.iter().map(|p| p.0.id().to_string()).collect();
    let leader = leader_of(&addresses).await;
    let leader_address = addresses[(leader - 1) as usize].clone();
    let status = |address: String| admin_status(address);
    println!("leader: node {leader} (pid {}); followers' pids {:?}", pids[(leader - 1) as usize], pids);
    let mut throughput = Vec::new();
    let mut leader_cost = Vec::new();
    costed_run(&addresses, &pids, leader).await;
    for round in 1..=rounds() {
        let none = costed_run(&addresses, &pids, leader).await;
        let tabs = attach_tabs(|| async { leader_address.clone() }, node_processes::SECRET, 8).await;
        let commit = || {
            let leader_address = leader_address.clone();
            async move {
                status(leader_address).await.and_then(|s| s["status"]["commit_index"].as_u64()).unwrap_or(0)
            }
        };
        wait_caught_up(&tabs, commit().await, &addresses, node_processes::SECRET).await;
        let eight = costed_run(&addresses, &pids, leader).await;
        let target = commit().await;
        let caught_up = tabs_catch_up(&tabs, target).await;
        if caught_up.is_none() {
            dump_stall(&tabs, target, &addresses, node_processes::SECRET).await;
        }
        drop(tabs);
        for (label, run) in [("no tab", &none), ("8 tabs", &eight)] {
            println!(
                "round {round}, {label}: {:.0} puts/s; CPU ms per 1,000 puts: leader {:.0}, each follower {:.0}, \
                 bench+tabs process {:.0}",
                run.ops_per_sec, run.leader_ms_per_kput, run.followers_ms_per_kput, run.this_process_ms_per_kput
            );
        }
        println!(
            "round {round}: tabs caught up {}",
            caught_up.map_or("never within 60 s".into(), |s| format!("{s:.3} s after the run"))
        );
        assert_eq!(leader_of(&addresses).await, leader, "the leader changed during round {round}");
        throughput.push(eight.ops_per_sec / none.ops_per_sec);
        leader_cost.push(none.leader_ms_per_kput / eight.leader_ms_per_kput);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let learners = status(leader_address.clone()).await.map(|s| s["status"]["learners"].clone());
            if learners.is_some_and(|l| l.as_array().is_some_and(|l| l.is_empty())) {
                break;
            }
            assert!(Instant::now() < deadline, "closed tabs were not removed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "FIGURE 8 tabs, nodes in processes, the machine shared: {}",
        summary("throughput 8 tabs / none", &throughput)
    );
    println!(
        "FIGURE 8 tabs, nodes in processes, the leader's own CPU: {}",
        summary("leader CPU per put, none / 8 tabs (= its CPU-bound throughput ratio)", &leader_cost)
    );
}

async fn invite_with(address: &str, secret: &str, uses: u32) -> String {
    let path = format!("/admin/invite?uses={uses}&ttl_ms=3600000");
    let answer = http_admin(&[address.to_string()], Some(secret), "POST", &path, &[]).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    value["link"].as_str().unwrap().to_string()
}

/// `admin status` of one node, or `None` if it does not answer.
async fn admin_status(address: String) -> Option<serde_json::Value> {
    admin_status_with(address, node_processes::SECRET).await
}

/// `admin status` of one node with the cluster secret `secret`.
async fn admin_status_with(address: String, secret: &str) -> Option<serde_json::Value> {
    let mut config = native_node::client::ClientConfig::new(vec![address]);
    config.secret = Some(secret.into());
    config.use_session = false;
    config.call_timeout = Duration::from_secs(2);
    native_node::client::Client::new(config).admin(serde_json::json!({ "op": "status" })).await.ok()
}

async fn leader_of(addresses: &[String]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for address in addresses {
            if let Some(status) = admin_status(address.clone()).await {
                if status["status"]["role"] == "leader" {
                    return status["node"].as_u64().unwrap();
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
