//! Issue 11, High 5: idle connections cannot stop real `raft-node` processes. Each node runs with
//! an open-file limit of 256 (soft and hard, so raising it at start cannot help) and a cap of 64
//! connections per address; 400 idle connections per node from another loopback address must
//! not stop peers, clients or the log's segment rollover.

mod common;

use common::TempDir;
use native_node::client::{http_request, Client, ClientConfig};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");
/// 64 hex digits: `serve` refuses secrets weaker than 128 bits.
const SECRET: &str = "2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_node(id: u64, addresses: &[String], root: &std::path::Path) -> Process {
    let bootstrap: Vec<String> =
        addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(format!("node-{id}.log")))
        .unwrap();
    let command = format!(
        "ulimit -n 256 && exec \"$0\" serve --id {id} --listen {} --data-dir {} --bootstrap {} --wal-segment-mib 1 \
         --max-conns-per-address 64",
        addresses[(id - 1) as usize],
        root.join(format!("node-{id}")).display(),
        bootstrap.join(","),
    );
    let child = Command::new("sh")
        .args(["-c", &command, BINARY])
        .env("FLOTILLA_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process(child)
}

async fn health(address: &str) -> Option<Value> {
    let answer =
        tokio::time::timeout(Duration::from_secs(2), http_request(address, "GET", "/health", None, b""))
            .await
            .ok()?
            .ok()?;
    serde_json::from_slice(&answer.body).ok()
}

async fn wait_healthy(addresses: &[String], applied_min: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut healthy = 0;
        for address in addresses {
            if let Some(body) = health(address).await {
                let applied = body["applied_index"].as_u64().unwrap_or(0);
                if body["leader"].is_u64() && applied >= applied_min {
                    healthy += 1;
                }
            }
        }
        if healthy == addresses.len() {
            return;
        }
        assert!(Instant::now() < deadline, "the cluster did not become healthy (applied {applied_min})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `count` connections to `address` from 127.0.0.2; every other one sends half a request.
async fn idle_connections(address: &str, count: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let target: std::net::SocketAddr = address.parse().unwrap();
    let mut streams = Vec::new();
    // Bounded: against a node without limits the kernel's backlog fills and connects stall.
    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0..count {
        if Instant::now() > deadline {
            break;
        }
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(2), socket.connect(target)).await
        else {
            continue;
        };
        if i % 2 == 0 {
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
        }
        streams.push(stream);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_stop_peers_clients_or_the_log() {
    native_node::limits::raise_fd_limit();
    let root = TempDir::new("slowloris");
    let ports: Vec<u16> = {
        let listeners: Vec<std::net::TcpListener> =
            (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
    };
    let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut nodes: Vec<Process> = (1..=3).map(|id| spawn_node(id, &addresses, &root.0)).collect();
    wait_healthy(&addresses, 1, Duration::from_secs(20)).await;

    let mut attackers = Vec::new();
    for address in &addresses {
        attackers.push(idle_connections(address, 400).await);
    }
    // Clients still write (60 KiB values: the 1 MiB log segments roll over on every node).
    let mut config = ClientConfig::new(addresses.clone());
    config.call_timeout = Duration::from_secs(20);
    let mut client = Client::new(config);
    let value = "v".repeat(60 * 1024);
    let mut index = 0;
    for i in 0..24 {
        let answer =
            client.put(&format!("key-{i}"), &value).await.expect("a put despite 1,200 idle connections");
        index = answer["index"].as_u64().unwrap();
    }
    // A follower restarted now still reaches its peers and catches up.
    let leader = health(&addresses[0]).await.and_then(|body| body["leader"].as_u64()).unwrap_or(1);
    let follower = if leader == 3 { 2 } else { 3 };
    let _ = nodes[follower - 1].0.kill();
    let _ = nodes[follower - 1].0.wait();
    nodes[follower - 1] = spawn_node(follower as u64, &addresses, &root.0);
    wait_healthy(&addresses, index, Duration::from_secs(30)).await;
    // The connections beyond the per-address cap were refused and counted.
    let metrics = http_request(&addresses[0], "GET", "/metrics", None, b"").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    let refused: u64 = text
        .lines()
        .find(|line| line.starts_with("raft_connections_refused_total{"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(refused > 0, "{text}");
    drop(attackers);
}
