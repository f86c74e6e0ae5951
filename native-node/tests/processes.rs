//! Real `raft-node` processes on 127.0.0.1: kill -9 of the leader under load, and the binary's
//! behaviour on corrupt data and missing secrets.
//!
//! `FLOTILLA_KILL9_ROUNDS=20 cargo test -p native-node --test processes --release` runs the
//! kill -9 scenario 20 times in a row (the default suite runs it once).

mod common;

use common::TempDir;
use native_node::client::{Client, ClientConfig, ClientError};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");
/// 64 hex digits: `serve` refuses secrets weaker than 128 bits.
const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_node(id: u64, addresses: &[String], root: &Path) -> Process {
    let bootstrap: Vec<String> =
        addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(format!("node-{id}.log")))
        .unwrap();
    let child = Command::new(BINARY)
        .args(["serve", "--id", &id.to_string(), "--listen", &addresses[(id - 1) as usize]])
        .arg("--data-dir")
        .arg(root.join(format!("node-{id}")))
        .args(["--bootstrap", &bootstrap.join(","), "--wal-segment-mib", "2", "--snapshot-interval", "150"])
        .env("FLOTILLA_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process { child }
}

/// A client for one node that gives up quickly: probes must not wait for a dead node.
fn probe(address: &str) -> Client {
    let mut config = ClientConfig::new(vec![address.to_string()]);
    config.secret = Some(SECRET.into());
    config.use_session = false;
    config.attempt_timeout = Duration::from_millis(500);
    config.call_timeout = Duration::from_millis(300);
    Client::new(config)
}

fn client(addresses: &[String], use_session: bool) -> Client {
    let mut config = ClientConfig::new(addresses.to_vec());
    config.secret = Some(SECRET.into());
    config.use_session = use_session;
    config.attempt_timeout = Duration::from_secs(2);
    config.call_timeout = Duration::from_secs(20);
    Client::new(config)
}

async fn leader_of(addresses: &[String], timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        for address in addresses {
            if let Ok(status) = probe(address).admin(json!({ "op": "status" })).await {
                if let Some(leader) = status["leader"].as_u64() {
                    if status["status"]["role"] == json!("leader") {
                        return leader;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Default, Debug)]
struct Outcome {
    acked_keys: Vec<String>,
    /// (chain key, last value acknowledged, value of an unacknowledged attempt after it)
    chains: Vec<(String, Option<u64>, Option<u64>)>,
    cas_mismatches: Vec<String>,
    unavailable: u64,
}

/// One client: unique puts, and a compare-and-swap chain on its own key. Each cas expects the
/// previous acknowledged value, so a write applied twice (a retry not deduplicated by the
/// session) shows up as a cas mismatch, and a lost write as a missing key.
async fn load(number: usize, addresses: Vec<String>, stop: Arc<AtomicBool>) -> Outcome {
    let mut client = client(&addresses, true);
    let chain = format!("chain-{number}");
    let mut outcome = Outcome::default();
    let mut previous: Option<u64> = None;
    let mut pending: Option<u64> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("u-{number}-{n}");
        match client.put(&key, "x").await {
            Ok(_) => outcome.acked_keys.push(key),
            Err(ClientError::Unavailable(_)) => outcome.unavailable += 1,
            Err(error) => panic!("put refused: {error}"),
        }
        if pending.is_some() {
            // The last cas has an unknown outcome: find out where the chain stands.
            match client.get(&chain, "linearizable").await {
                Ok(response) => {
                    previous = response["value"].as_str().map(|v| v.parse().unwrap());
                    pending = None;
                }
                Err(_) => continue,
            }
        }
        let expected = previous.map(|v| v.to_string());
        match client.cas(&chain, expected.as_deref(), &n.to_string()).await {
            Ok(_) => previous = Some(n),
            Err(ClientError::Refused { code, response }) if code == "cas_failed" => {
                outcome.cas_mismatches.push(format!("{chain}: expected {expected:?}, {response}"));
                previous = response["current"].as_str().map(|v| v.parse().unwrap());
            }
            Err(ClientError::Unavailable(_)) => {
                outcome.unavailable += 1;
                pending = Some(n);
            }
            Err(error) => panic!("cas refused: {error}"),
        }
    }
    outcome.chains.push((chain, previous, pending));
    outcome
}

async fn kill_leader_under_load_round(round: usize) {
    let root = TempDir::new(&format!("kill9-{round}"));
    let addresses: Vec<String> = free_ports(3).into_iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut processes: Vec<Option<Process>> =
        (1..=3).map(|id| Some(spawn_node(id, &addresses, &root.0))).collect();
    leader_of(&addresses, Duration::from_secs(15)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> =
        (0..4).map(|number| tokio::spawn(load(number, addresses.clone(), stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let leader = leader_of(&addresses, Duration::from_secs(10)).await;
    // kill -9: no chance to flush anything.
    if let Some(mut process) = processes[(leader - 1) as usize].take() {
        process.child.kill().unwrap();
        process.child.wait().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let new_leader = leader_of(&addresses, Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader, "a killed node cannot lead");
    processes[(leader - 1) as usize] = Some(spawn_node(leader, &addresses, &root.0));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.push(worker.await.unwrap());
    }

    let mut checker = client(&addresses, false);
    let mut acked = 0;
    for outcome in &outcomes {
        assert!(outcome.cas_mismatches.is_empty(), "a write was applied twice: {:?}", outcome.cas_mismatches);
        for key in &outcome.acked_keys {
            let response = checker.get(key, "linearizable").await.unwrap();
            assert_eq!(response["value"], json!("x"), "acknowledged write {key} lost");
            acked += 1;
        }
        for (chain, last_acked, unknown) in &outcome.chains {
            let response = checker.get(chain, "linearizable").await.unwrap();
            let value: Option<u64> = response["value"].as_str().map(|v| v.parse().unwrap());
            assert!(
                value == *last_acked || (unknown.is_some() && value == *unknown),
                "chain {chain} holds {value:?}, last acknowledged {last_acked:?}, unknown {unknown:?}"
            );
        }
    }
    assert!(acked > 20, "too little load got through: {acked} acknowledged writes");

    // The restarted node catches up from its own disk plus the leader.
    let commit = {
        let status = checker.admin(json!({ "op": "status" })).await.unwrap();
        status["status"]["commit_index"].as_u64().unwrap()
    };
    let restarted = addresses[(leader - 1) as usize].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = client(std::slice::from_ref(&restarted), false);
        let applied = probe
            .admin(json!({ "op": "status" }))
            .await
            .ok()
            .and_then(|s: Value| s["status"]["applied_index"].as_u64());
        if applied.is_some_and(|a| a >= commit) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node {leader} did not catch up to {commit}: {applied:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("round {round}: killed leader {leader}; {acked} acknowledged writes verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_loses_no_acknowledged_write_and_applies_none_twice() {
    let rounds: usize = std::env::var("FLOTILLA_KILL9_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    for round in 0..rounds {
        kill_leader_under_load_round(round).await;
    }
}

#[test]
fn the_binary_refuses_corrupt_data_and_a_missing_secret_with_clear_messages() {
    let root = TempDir::new("binary-corrupt");
    let data_dir = root.0.join("node-1");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("raft.redb"), vec![0x5au8; 4096]).unwrap();
    let port = free_ports(1)[0];
    let address = format!("127.0.0.1:{port}");
    let output = Command::new(BINARY)
        .args(["serve", "--id", "1", "--listen", &address, "--bootstrap", &format!("1={address}")])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("FLOTILLA_SECRET", SECRET)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("raft.redb"), "{stderr}");

    let output = Command::new(BINARY)
        .args(["serve", "--id", "1", "--listen", &address, "--data-dir", "/nonexistent"])
        .env_remove("FLOTILLA_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("FLOTILLA_SECRET"));
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(BINARY).args(args).env("FLOTILLA_SECRET", SECRET).env("RUST_LOG", "off").output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_to_a_cluster_of_processes() {
    let root = TempDir::new("cli");
    let addresses: Vec<String> = free_ports(3).into_iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let _processes: Vec<Process> = (1..=3).map(|id| spawn_node(id, &addresses, &root.0)).collect();
    let leader = leader_of(&addresses, Duration::from_secs(15)).await;
    let endpoints = addresses.join(",");
    let output = cli(&["kv", "--endpoints", &endpoints, "put", "greeting", "hello world"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = cli(&["kv", "--endpoints", &endpoints, "get", "greeting"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello world\n");
    let output = cli(&["kv", "--endpoints", &endpoints, "cas", "greeting", "hello world", "bye"]);
    assert!(output.status.success());
    let output = cli(&["kv", "--endpoints", &endpoints, "cas", "greeting", "hello world", "again"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cas_failed"));
    let output = cli(&["kv", "--endpoints", &endpoints, "del", "greeting"]);
    assert!(output.status.success());
    let output = cli(&["kv", "--endpoints", &endpoints, "get", "greeting"]);
    assert_eq!(output.status.code(), Some(1));
    let output = cli(&["admin", "--endpoints", &endpoints, "status"]);
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["leader"], json!(leader));
    let output =
        cli(&["bench", "--endpoints", &endpoints, "--clients", "4", "--ops", "200", "--value-size", "256"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((report["ops"].clone(), report["errors"].clone()), (json!(200), json!(0)), "{report}");
    for field in ["ops_per_sec", "p50_ms", "p99_ms", "p999_ms"] {
        assert!(report[field].as_f64().unwrap() > 0.0, "{field} in {report}");
    }
    // Admin needs the secret.
    let output = Command::new(BINARY)
        .args(["admin", "--endpoints", &endpoints, "status"])
        .env("FLOTILLA_SECRET", "wrong")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unauthorized"));
}
