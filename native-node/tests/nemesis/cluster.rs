//! The `raft-node` processes of one run, each in its own namespace, and what the test asks
//! them over HTTP: health and the agreed leader.

use crate::net::{address, Names};
use native_node::client::http_request;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");
pub const SECRET: &str = "nemesis-only-secret-6f1c0a9e2b7d4358";

/// The nodes of one cluster; the ones still running are killed on drop.
pub struct Processes {
    names: Names,
    pub size: u64,
    pub root: PathBuf,
    children: Vec<Option<Child>>,
    paused: Vec<bool>,
}

impl Processes {
    pub fn start(names: Names, size: u64, root: PathBuf) -> Processes {
        let mut processes = Processes {
            names,
            size,
            root,
            children: (0..size).map(|_| None).collect(),
            paused: vec![false; size as usize],
        };
        for id in 1..=size {
            processes.spawn(id);
        }
        processes
    }

    pub fn all(&self) -> Vec<u64> {
        (1..=self.size).collect()
    }

    pub fn address(&self, id: u64) -> String {
        address(self.size, id)
    }

    /// Starts node `id` (again) on its data directory.
    pub fn spawn(&mut self, id: u64) {
        let bootstrap: Vec<String> = self.all().iter().map(|&i| format!("{i}={}", self.address(i))).collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("node-{id}.log")))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.names.node(id), BINARY, "serve"])
            .args(["--id", &id.to_string(), "--listen", &self.address(id)])
            .arg("--data-dir")
            .arg(self.root.join(format!("node-{id}")))
            .args(["--bootstrap", &bootstrap.join(","), "--web-dir", "/nonexistent"])
            // Cleartext between namespaces that exist only for this test.
            .arg("--insecure-dev")
            .env("FLOTILLA_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[(id - 1) as usize] = Some(child);
    }

    fn pid(&self, id: u64) -> Option<u32> {
        self.children[(id - 1) as usize].as_ref().map(Child::id)
    }

    /// kill -9 (of `ip netns exec`, which has become the node: it execs it).
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children[(id - 1) as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused[(id - 1) as usize] = false;
    }

    pub fn pause(&mut self, id: u64) {
        self.signal(id, "-STOP");
        self.paused[(id - 1) as usize] = true;
    }

    pub fn resume(&mut self, id: u64) {
        self.signal(id, "-CONT");
        self.paused[(id - 1) as usize] = false;
    }

    fn signal(&self, id: u64, signal: &str) {
        if let Some(pid) = self.pid(id) {
            let _ = Command::new("kill").args([signal, &pid.to_string()]).status();
        }
    }

    /// Nodes that exited although nobody killed them.
    pub fn exited(&mut self) -> Vec<u64> {
        let mut exited = Vec::new();
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Some(child) = child {
                if let Ok(Some(_)) = child.try_wait() {
                    exited.push(i as u64 + 1);
                }
            }
        }
        exited
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for id in 1..=self.size {
            if self.paused[(id - 1) as usize] {
                self.resume(id);
            }
            self.kill(id);
        }
    }
}

/// `/health` of one node, or `None` if it does not answer within 300 ms.
pub async fn health(address: &str) -> Option<Value> {
    let answer =
        tokio::time::timeout(Duration::from_millis(300), http_request(address, "GET", "/health", None, b""))
            .await
            .ok()?
            .ok()?;
    serde_json::from_slice(&answer.body).ok()
}

/// The leader every node in `among` names, if they all answer, agree, and it says it leads.
pub async fn agreed_leader(processes: &Processes, among: &[u64]) -> Option<u64> {
    let mut named = Vec::new();
    for &id in among {
        named.push(health(&processes.address(id)).await?.get("leader")?.as_u64()?);
    }
    let leader = *named.first()?;
    if !named.iter().all(|l| *l == leader) || !among.contains(&leader) {
        return None;
    }
    (health(&processes.address(leader)).await?.get("role")?.as_str()? == "leader").then_some(leader)
}

/// Polls every 10 ms until `among` agree on a leader; the leader and how long it took.
pub async fn wait_for_leader(
    processes: &Processes,
    among: &[u64],
    timeout: Duration,
) -> Option<(u64, Duration)> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Some(leader) = agreed_leader(processes, among).await {
            return Some((leader, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
