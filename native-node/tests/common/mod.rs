//! Helpers shared by the integration tests: in-process clusters on 127.0.0.1 and a client.
#![allow(dead_code)]

pub mod proxy;
pub mod tab;

use native_node::client::{Client, ClientConfig};
use native_node::server::{self, Node, ServeConfig};
use raft_core::NodeId;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub const SECRET: &str = "test-secret";

/// A fresh directory under the system temp dir, removed when the value is dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let unique = format!(
            "flotilla-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        let dir = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An in-process cluster: every node a real server on its own loopback port.
pub struct Cluster {
    pub nodes: Vec<Option<Node>>,
    pub addresses: Vec<String>,
    pub members: Vec<(NodeId, String)>,
    pub dir: TempDir,
}

pub fn node_config(id: u64, members: &[(NodeId, String)], dir: &TempDir) -> ServeConfig {
    let mut config =
        ServeConfig::new(NodeId(id), SECRET.as_bytes().to_vec(), dir.0.join(format!("node-{id}")));
    config.bootstrap = members.to_vec();
    config.advertise_address = Some(members[(id - 1) as usize].1.clone());
    config.wal_segment_bytes = 1024 * 1024;
    config
}

impl Cluster {
    pub async fn start(size: u64, name: &str) -> Cluster {
        Cluster::start_with(size, name, |_| {}).await
    }

    /// Starts a cluster whose nodes' configurations `tweak` changes first.
    pub async fn start_with(size: u64, name: &str, tweak: impl Fn(&mut ServeConfig)) -> Cluster {
        let dir = TempDir::new(name);
        let mut listeners = Vec::new();
        for _ in 0..size {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addresses: Vec<String> = listeners.iter().map(|l| l.local_addr().unwrap().to_string()).collect();
        let members: Vec<(NodeId, String)> =
            addresses.iter().enumerate().map(|(i, a)| (NodeId(i as u64 + 1), a.clone())).collect();
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let mut config = node_config(i as u64 + 1, &members, &dir);
            tweak(&mut config);
            nodes.push(Some(server::start(config, listener).await.unwrap()));
        }
        Cluster { nodes, addresses, members, dir }
    }

    pub fn endpoints(&self) -> String {
        self.addresses.join(",")
    }

    pub fn client(&self) -> Client {
        let mut config = ClientConfig::new(self.addresses.clone());
        config.secret = Some(SECRET.to_string());
        config.call_timeout = Duration::from_secs(20);
        Client::new(config)
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes[(id - 1) as usize].as_ref().expect("node is running")
    }

    /// Waits until every running node agrees on one leader, and returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let leaders: Vec<Option<u64>> =
                self.nodes.iter().flatten().map(|node| node.raft.status().leader).collect();
            if let Some(Some(leader)) = leaders.first() {
                let is_running = self.nodes[(*leader - 1) as usize].is_some();
                let agreed = leaders.iter().all(|l| *l == Some(*leader));
                let leads = is_running && self.node(*leader).raft.status().role == "leader";
                if agreed && leads {
                    return *leader;
                }
            }
            assert!(Instant::now() < deadline, "no leader agreed on within {timeout:?}: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every running node has applied at least `index`.
    pub async fn wait_for_applied(&self, index: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let applied: Vec<u64> =
                self.nodes.iter().flatten().map(|n| n.raft.status().applied_index).collect();
            if applied.iter().all(|a| *a >= index) {
                return;
            }
            assert!(Instant::now() < deadline, "nodes did not apply {index} within {timeout:?}: {applied:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(&mut self, id: u64) {
        if let Some(node) = self.nodes[(id - 1) as usize].take() {
            node.shutdown().await;
        }
    }

    pub async fn restart(&mut self, id: u64) -> Result<(), server::ServeError> {
        let address = self.addresses[(id - 1) as usize].clone();
        let listener = bind_retrying(&address).await;
        let config = node_config(id, &self.members, &self.dir);
        self.nodes[(id - 1) as usize] = Some(server::start(config, listener).await?);
        Ok(())
    }

    pub async fn shutdown(mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.stop(id).await;
        }
    }
}

/// Binds an address a stopped node just released; the port may linger for a moment.
pub async fn bind_retrying(address: &str) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(address).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {address} again");
}

/// POSTs `body` to `/client` over a raw HTTP/1.1 connection: status, `Location`, JSON body.
pub async fn http_post(address: &str, body: &str) -> (u16, Option<String>, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /client HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let location = head
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("location:"))
        .map(|line| line[9..].trim().to_string());
    (status, location, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// GETs `path` over a raw HTTP/1.1 connection: status and body.
pub async fn http_get(address: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_string())
}
