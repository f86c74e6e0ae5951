//! Nemesis test (issue 12), opt-in and partial: three real `raft-node` processes, each in its own
//! network namespace, joined by veth pairs to a bridge inside a hub namespace (addresses in
//! 10.213.0.0/24 exist only inside the namespaces this test creates, and the root namespace
//! gets no interface). Faults cycle one at a time: isolating a follower, isolating the leader
//! (its bridge port goes down: packets vanish, connections stay open), kill -9 of the leader
//! with a restart, and SIGSTOP of the leader for longer than an election timeout. Clients do
//! put, compare-and-swap and linearizable get throughout; the history is checked with
//! raft-core's linearizability checker. After every heal: one agreed leader; at the end:
//! replicas applied the same index and no node exited unexpectedly. Per fault it prints the
//! longest gap between acknowledged writes and the time from heal to one leader.
//!
//! Run: `FLOTILLA_NEMESIS=1 cargo test -p native-node --release --test nemesis -- --nocapture`
//! (root, `ip` with netns support); `FLOTILLA_NEMESIS_SECONDS=600` for a long run. Without the
//! variable, or where namespaces cannot be made, it says so and passes without running.
//!
//! Status on main (no raft-core flow-control fix yet): the faults, figures and history check
//! run, but a follower cut off under load can stay behind for good after the heal, so the
//! final "replicas converge" check fails. Its in-flight window filled with AppendEntries that
//! were lost with the dead connection, and raft-core on main leaves a replicating follower
//! paused until those are answered; the branch core-repl makes such a follower fall back to
//! probing (and adds `report_unreachable`, which the transport's idle closes should feed).
//!
//! Not yet here (see issue 12): 5-node runs and bridge partitions, minority/majority partitions
//! and packet loss with nftables, kill -9 of a majority, a stale-read run that the checker must
//! flag, and a place in `npm test`.

use native_node::client::{http_request, Client, ClientConfig, ClientError};
use raft_core::linearizability::{check, HistoryBuilder, Observed, Op};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raft-node");
/// 64 hex digits: `serve` refuses secrets weaker than 128 bits.
const SECRET: &str = "1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f";
const NODES: u64 = 3;
const SUBNET: &str = "10.213.0";
const PORT: u16 = 7000;
const INNER: &str = "FLOTILLA_NEMESIS_INNER";

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// The namespaces of one run; removed on drop.
struct Namespaces {
    created: Vec<String>,
}

impl Namespaces {
    fn hub(prefix: &str) -> String {
        format!("{prefix}h")
    }

    fn node(prefix: &str, id: u64) -> String {
        format!("{prefix}n{id}")
    }

    fn create(prefix: &str) -> Result<Namespaces, String> {
        let mut namespaces = Namespaces { created: Vec::new() };
        let hub = Namespaces::hub(prefix);
        ip(&["netns", "add", &hub])?;
        namespaces.created.push(hub.clone());
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&["-n", &hub, "addr", "add", &format!("{SUBNET}.254/24"), "dev", "br0"])?;
        for id in 1..=NODES {
            let node = Namespaces::node(prefix, id);
            ip(&["netns", "add", &node])?;
            namespaces.created.push(node.clone());
            let port = format!("port{id}");
            ip(&["-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &node])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            ip(&["-n", &node, "link", "set", "lo", "up"])?;
            ip(&["-n", &node, "addr", "add", &format!("{SUBNET}.{id}/24"), "dev", "eth0"])?;
            ip(&["-n", &node, "link", "set", "eth0", "up"])?;
        }
        Ok(namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for namespace in self.created.iter().rev() {
            if let Err(why) = ip(&["netns", "del", namespace]) {
                eprintln!("nemesis: cleanup of {namespace} failed: {why}");
            }
        }
    }
}

#[test]
fn nemesis_real_processes_in_network_namespaces() {
    if let Ok(prefix) = std::env::var(INNER) {
        return inner(&prefix);
    }
    if std::env::var_os("FLOTILLA_NEMESIS").is_none() {
        eprintln!("nemesis skipped: opt-in, set FLOTILLA_NEMESIS=1 (needs root and `ip netns`)");
        return;
    }
    let prefix = format!("flt{}", std::process::id() % 100_000);
    let namespaces = match Namespaces::create(&prefix) {
        Ok(namespaces) => namespaces,
        Err(why) => {
            eprintln!("nemesis skipped: cannot create network namespaces here: {why}");
            return;
        }
    };
    // The test itself runs again inside the hub namespace, where it reaches every node.
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", &Namespaces::hub(&prefix)])
        .arg(exe)
        .args(["nemesis_real_processes_in_network_namespaces", "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, &prefix)
        .status()
        .unwrap();
    drop(namespaces);
    assert!(status.success(), "the nemesis run failed: {status}");
}

fn address(id: u64) -> String {
    format!("{SUBNET}.{id}:{PORT}")
}

struct Processes {
    prefix: String,
    root: PathBuf,
    children: Vec<Option<Child>>,
}

impl Processes {
    fn spawn(&mut self, id: u64) {
        let bootstrap: Vec<String> = (1..=NODES).map(|i| format!("{i}={}", address(i))).collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("node-{id}.log")))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &Namespaces::node(&self.prefix, id), BINARY, "serve"])
            .args(["--id", &id.to_string(), "--listen", &address(id)])
            .arg("--data-dir")
            .arg(self.root.join(format!("node-{id}")))
            .args(["--bootstrap", &bootstrap.join(","), "--web-dir", "/nonexistent"])
            .env("FLOTILLA_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[(id - 1) as usize] = Some(child);
    }

    fn pid(&self, id: u64) -> u32 {
        self.children[(id - 1) as usize].as_ref().expect("running").id()
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children[(id - 1) as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, id: u64, signal: &str) {
        let _ = Command::new("kill").args([signal, &self.pid(id).to_string()]).status();
    }

    /// Nodes that exited although nobody killed them.
    fn exited(&mut self) -> Vec<u64> {
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
        for id in 1..=NODES {
            if self.children[(id - 1) as usize].is_some() {
                self.signal(id, "-CONT");
            }
            self.kill(id);
        }
    }
}

async fn health(id: u64) -> Option<Value> {
    let answer = tokio::time::timeout(
        Duration::from_millis(300),
        http_request(&address(id), "GET", "/health", None, b""),
    )
    .await
    .ok()?
    .ok()?;
    serde_json::from_slice(&answer.body).ok()
}

/// The leader every node in `among` names, if they agree and it says it leads.
async fn agreed_leader(among: &[u64]) -> Option<u64> {
    let mut named = Vec::new();
    for id in among {
        named.push(health(*id).await?.get("leader")?.as_u64()?);
    }
    let leader = *named.first()?;
    if !named.iter().all(|l| *l == leader) || !among.contains(&leader) {
        return None;
    }
    (health(leader).await?.get("role")?.as_str()? == "leader").then_some(leader)
}

async fn wait_for_leader(among: &[u64], timeout: Duration) -> Option<(u64, Duration)> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Some(leader) = agreed_leader(among).await {
            return Some((leader, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    IsolateFollower,
    IsolateLeader,
    KillLeader,
    PauseLeader,
}

struct FaultRecord {
    fault: Fault,
    started_ms: u64,
    healed_ms: u64,
    settled_ms: u64,
    heal_to_leader: Option<Duration>,
}

struct Recorder {
    start: Instant,
    history: Mutex<HistoryBuilder>,
    acks_ms: Mutex<Vec<u64>>,
}

impl Recorder {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

async fn client_loop(client_id: u64, recorder: Arc<Recorder>, stop: Arc<AtomicBool>) {
    let endpoints: Vec<String> = (1..=NODES).map(address).collect();
    let mut config = ClientConfig::new(endpoints);
    config.attempt_timeout = Duration::from_secs(1);
    config.call_timeout = Duration::from_secs(4);
    let mut client = Client::new(config);
    let mut seed = client_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let key = format!("k{}", seed % 4);
        sequence += 1;
        let value = format!("c{client_id}-{sequence}");
        let choice = (seed >> 8) % 3;
        let op = match choice {
            0 => Op::put(key.clone(), value.clone()),
            1 => Op::get(key.clone()),
            _ => {
                // Expect whatever this client last read there (or absent).
                let expected = current_value(&mut client, &key).await;
                Op::cas(key.clone(), expected.map(Into::into), value.clone())
            }
        };
        let invoked = recorder.now_us();
        let id = recorder.history.lock().unwrap().invoke(client_id, invoked, op.clone());
        let observed = match &op {
            Op::Put { .. } => match client.put(&key, &value).await {
                Ok(_) => Observed::Done,
                Err(_) => Observed::Unknown,
            },
            Op::Get { .. } => match client.get(&key, "linearizable").await {
                Ok(answer) => Observed::Value(answer["value"].as_str().map(|v| v.as_bytes().to_vec().into())),
                Err(_) => Observed::Failed,
            },
            Op::CompareAndSwap { expected, .. } => {
                let expected = expected.as_ref().map(|e| String::from_utf8_lossy(e).into_owned());
                match client.cas(&key, expected.as_deref(), &value).await {
                    Ok(_) => Observed::Swapped(true),
                    Err(ClientError::Refused { code, .. }) if code == "cas_failed" => {
                        Observed::Swapped(false)
                    }
                    Err(_) => Observed::Unknown,
                }
            }
            _ => Observed::Unknown,
        };
        let completed = recorder.now_us();
        if matches!(observed, Observed::Done | Observed::Swapped(true)) {
            recorder.acks_ms.lock().unwrap().push(completed / 1000);
        }
        let _ = recorder.history.lock().unwrap().complete(id, completed, observed);
    }
}

/// A stale read to pick a compare-and-swap's expected value; not part of the history.
async fn current_value(client: &mut Client, key: &str) -> Option<String> {
    client.get(key, "stale").await.ok()?["value"].as_str().map(str::to_string)
}

fn longest_gap(acks_ms: &[u64], from_ms: u64, to_ms: u64) -> u64 {
    let mut previous = from_ms;
    let mut longest = 0;
    for &ack in acks_ms.iter().filter(|a| **a > from_ms && **a <= to_ms) {
        longest = longest.max(ack - previous);
        previous = ack;
    }
    longest.max(to_ms.saturating_sub(previous))
}

fn inner(prefix: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run(prefix));
}

async fn run(prefix: &str) {
    let seconds: u64 =
        std::env::var("FLOTILLA_NEMESIS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let root = std::env::temp_dir().join(format!("flotilla-nemesis-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let mut processes = Processes {
        prefix: prefix.to_string(),
        root: root.clone(),
        children: (0..NODES).map(|_| None).collect(),
    };
    for id in 1..=NODES {
        processes.spawn(id);
    }
    let all: Vec<u64> = (1..=NODES).collect();
    wait_for_leader(&all, Duration::from_secs(20)).await.expect("a first leader");

    let recorder = Arc::new(Recorder {
        start: Instant::now(),
        history: Mutex::new(HistoryBuilder::new()),
        acks_ms: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=5)
        .map(|client_id| tokio::spawn(client_loop(client_id, recorder.clone(), stop.clone())))
        .collect();
    let faults = [Fault::IsolateFollower, Fault::IsolateLeader, Fault::KillLeader, Fault::PauseLeader];
    let mut records: Vec<FaultRecord> = Vec::new();
    let hub_port = |id: u64| format!("port{id}");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut round = 0;
    while Instant::now() < deadline {
        let fault = faults[round % faults.len()];
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some((leader, _)) = wait_for_leader(&all, Duration::from_secs(10)).await else {
            panic!("no agreed leader before fault {round} ({fault:?})");
        };
        let follower = all.iter().copied().find(|id| *id != leader).unwrap();
        let started_ms = recorder.start.elapsed().as_millis() as u64;
        match fault {
            Fault::IsolateFollower => ip(&["link", "set", &hub_port(follower), "down"]).unwrap(),
            Fault::IsolateLeader => ip(&["link", "set", &hub_port(leader), "down"]).unwrap(),
            Fault::KillLeader => processes.kill(leader),
            Fault::PauseLeader => processes.signal(leader, "-STOP"),
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        match fault {
            Fault::IsolateFollower => ip(&["link", "set", &hub_port(follower), "up"]).unwrap(),
            Fault::IsolateLeader => ip(&["link", "set", &hub_port(leader), "up"]).unwrap(),
            Fault::KillLeader => processes.spawn(leader),
            Fault::PauseLeader => processes.signal(leader, "-CONT"),
        }
        let healed_ms = recorder.start.elapsed().as_millis() as u64;
        let heal_to_leader = wait_for_leader(&all, Duration::from_secs(15)).await.map(|(_, took)| took);
        assert!(heal_to_leader.is_some(), "no agreed leader within 15 s of healing {fault:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let settled_ms = recorder.start.elapsed().as_millis() as u64;
        records.push(FaultRecord { fault, started_ms, healed_ms, settled_ms, heal_to_leader });
        let exited = processes.exited();
        assert!(exited.is_empty(), "nodes {exited:?} exited unexpectedly; logs in {}", root.display());
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), client).await;
    }

    let acks = recorder.acks_ms.lock().unwrap().clone();
    println!("nemesis: {} faults in {seconds} s, {} acknowledged writes", records.len(), acks.len());
    println!("fault              | write stall max ms | heal to one leader ms");
    for record in &records {
        let stall = longest_gap(&acks, record.started_ms, record.settled_ms);
        let heal = record.heal_to_leader.map_or("none".to_string(), |d| d.as_millis().to_string());
        println!(
            "{:<18} | {stall:>18} | {heal:>21}   (fault {} ms)",
            format!("{:?}", record.fault),
            record.healed_ms - record.started_ms
        );
    }
    // Replicas converge on the same applied index.
    let mut last_seen = Vec::new();
    let mut converged = None;
    let converge_deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < converge_deadline {
        last_seen.clear();
        for id in 1..=NODES {
            last_seen.push(health(id).await);
        }
        let applied: Vec<Option<u64>> =
            last_seen.iter().map(|h| h.as_ref().and_then(|h| h["applied_index"].as_u64())).collect();
        if applied.iter().all(|a| a.is_some() && *a == applied[0]) {
            converged = applied[0];
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(applied) = converged else {
        panic!("replicas did not converge within 15 s: {last_seen:?}; logs in {}", root.display());
    };
    println!("replicas converged at applied index {applied}");
    let builder = std::mem::take(&mut *recorder.history.lock().unwrap());
    let history = builder.build();
    let operations = history.len();
    let result = check(&history);
    println!("linearizability: {:?} over {operations} operations", result.verdict());
    assert!(result.is_linearizable(), "not linearizable:\n{result}");
    drop(processes);
    let _ = std::fs::remove_dir_all(Path::new(&root));
}
