//! Issue 12: availability under partitions that leave TCP connections stuck.
//!
//! Every node reaches every other through its own proxy (one per ordered pair), so a test can
//! cut exactly the links of one node. A cut link neither forwards nor closes, like a partition,
//! and connections that saw the cut stay stuck after the heal (the worst case of TCP's
//! retransmission backoff): only new connections recover.
//!
//! Bounds here are correctness bounds with generous margins (an election timeout is 500 ms-1 s):
//! without liveness a stuck node never rejoins, and a pending client waits out its 5 s timeout.
//! The measured times are printed.

mod common;

use common::proxy::Proxy;
use common::{http_post, node_config, TempDir, SECRET};
use native_node::client::{Client, ClientConfig};
use native_node::server::{self, Node};
use raft_core::NodeId;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

struct ProxiedCluster {
    nodes: Vec<Node>,
    /// The nodes' real addresses (clients use these; they are never cut).
    addresses: Vec<String>,
    /// Proxy for the link from `.0` to `.1`.
    links: HashMap<(u64, u64), Proxy>,
    _dir: TempDir,
}

impl ProxiedCluster {
    async fn start(size: u64, name: &str) -> ProxiedCluster {
        let dir = TempDir::new(name);
        let mut listeners = Vec::new();
        for _ in 0..size {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addresses: Vec<String> = listeners.iter().map(|l| l.local_addr().unwrap().to_string()).collect();
        let mut links = HashMap::new();
        for from in 1..=size {
            for to in 1..=size {
                if from != to {
                    links.insert((from, to), Proxy::start(addresses[(to - 1) as usize].clone()).await);
                }
            }
        }
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let id = i as u64 + 1;
            // This node's view: itself at its real address, every peer behind its own proxy.
            let members: Vec<(NodeId, String)> = (1..=size)
                .map(|peer| {
                    let address =
                        if peer == id { addresses[i].clone() } else { links[&(id, peer)].address.clone() };
                    (NodeId(peer), address)
                })
                .collect();
            let config = node_config(id, &members, &dir);
            nodes.push(server::start(config, listener).await.unwrap());
        }
        ProxiedCluster { nodes, addresses, links, _dir: dir }
    }

    fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn address(&self, id: u64) -> &str {
        &self.addresses[(id - 1) as usize]
    }

    /// Cuts (or heals) every link to and from `id`.
    fn isolate(&self, id: u64, cut: bool) {
        for ((from, to), proxy) in &self.links {
            if *from == id || *to == id {
                if cut {
                    proxy.cut();
                } else {
                    proxy.heal();
                }
            }
        }
    }

    fn client(&self, first: u64) -> Client {
        // The first endpoint is tried first.
        let mut endpoints = vec![self.address(first).to_string()];
        endpoints.extend(self.addresses.iter().filter(|a| a.as_str() != self.address(first)).cloned());
        let mut config = ClientConfig::new(endpoints);
        config.secret = Some(SECRET.to_string());
        config.call_timeout = Duration::from_secs(20);
        Client::new(config)
    }

    /// Waits until the nodes in `among` agree on one leader among them, which leads.
    async fn wait_for_leader(&self, among: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let leaders: Vec<Option<u64>> =
                among.iter().map(|id| self.node(*id).raft.status().leader).collect();
            if let Some(Some(leader)) = leaders.first() {
                let agreed = leaders.iter().all(|l| *l == Some(*leader));
                if agreed && among.contains(leader) && self.node(*leader).raft.status().role == "leader" {
                    return *leader;
                }
            }
            assert!(Instant::now() < deadline, "no leader among {among:?} within {timeout:?}: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every node has a live connection to every peer.
    async fn wait_for_links(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let peers = self.nodes.len() - 1;
        loop {
            let connected = self.nodes.iter().all(|node| {
                let statuses = node.transport.peer_statuses();
                statuses.len() == peers && statuses.iter().all(|peer| peer.connections > 0)
            });
            if connected {
                return;
            }
            assert!(Instant::now() < deadline, "peers not all connected within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn shutdown(self) {
        self.links.values().for_each(Proxy::heal);
        for node in self.nodes {
            let _ = tokio::time::timeout(Duration::from_secs(5), node.shutdown()).await;
        }
    }
}

/// Issue 12, defect 1: after a partition heals, the cut-off node's connections (stuck, never
/// closed) are found dead and redialled, and it rejoins; and the link between the two followers,
/// which carries no Raft traffic, is live too: when the leader is lost right after the heal, the
/// survivors elect among themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_peer_connections_are_redialled_and_a_healed_node_rejoins() {
    let cluster = ProxiedCluster::start(3, "heal").await;
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10)).await;
    cluster.wait_for_links(Duration::from_secs(10)).await;
    let mut client = cluster.client(leader);
    client.put("before", "1").await.unwrap();
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != follower).unwrap();

    cluster.isolate(follower, true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = client.put("during", "2").await.unwrap();
    cluster.isolate(follower, false);
    let healed = Instant::now();

    // The healed follower hears the leader again and applies what it missed.
    let index = during["index"].as_u64().unwrap();
    let rejoin_bound = Duration::from_secs(6);
    loop {
        let status = cluster.node(follower).raft.status();
        let leader_status = cluster.node(leader).raft.status();
        if status.leader == Some(leader) && status.term == leader_status.term && status.applied_index >= index
        {
            break;
        }
        assert!(
            healed.elapsed() < rejoin_bound,
            "node {follower} did not rejoin within {rejoin_bound:?} of the heal: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rejoined = healed.elapsed();
    // Every link, the one between the two followers included, is redialled.
    cluster.wait_for_links(Duration::from_secs(6)).await;
    let relinked = healed.elapsed();
    println!(
        "heal to rejoin: {} ms; heal to every link up: {} ms (election timeout 500 ms-1 s)",
        rejoined.as_millis(),
        relinked.as_millis()
    );

    // The issue's second finding: the leader is lost 1.5 s after the heal; the survivors'
    // link to each other must be live.
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(healed.elapsed())).await;
    cluster.isolate(leader, true);
    let lost = Instant::now();
    let new_leader = cluster.wait_for_leader(&[follower, other], Duration::from_secs(8)).await;
    println!(
        "leader lost 1.5 s after a heal: survivors elected node {new_leader} in {} ms",
        lost.elapsed().as_millis()
    );
    let mut client = cluster.client(new_leader);
    client.put("after", "3").await.unwrap();
    cluster.shutdown().await;
}

/// Issue 12, defect 2: a write waiting at a leader that loses leadership is answered as soon as
/// the leader steps down (check-quorum, about one election timeout), with `leadership_lost` and
/// outcome unknown, not after the 5 s request timeout; the bundled client retries elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_pending_at_a_leader_that_loses_leadership_is_answered_at_once() {
    let cluster = ProxiedCluster::start(3, "stepdown").await;
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10)).await;
    cluster.wait_for_links(Duration::from_secs(10)).await;
    cluster.client(leader).put("before", "1").await.unwrap();

    cluster.isolate(leader, true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = Instant::now();
    let (status, _, body) =
        http_post(cluster.address(leader), r#"{"op":"put","key":"pending","value":"x"}"#).await;
    let waited = sent.elapsed();
    println!("pending write at a leader that lost leadership answered in {} ms: {body}", waited.as_millis());
    assert_eq!((status, body["error"].clone()), (503, json!("leadership_lost")), "{body}");
    assert_eq!(body["outcome"], json!("unknown"), "{body}");
    assert_eq!(body["retryable"], json!(true), "{body}");
    assert!(waited < Duration::from_secs(3), "answered only after {waited:?} (request timeout 5 s)");

    // The bundled client, pointed at the isolated node first, retries and lands elsewhere; its
    // session makes the compare-and-swap apply once (a second application would fail it).
    let mut client = cluster.client(leader);
    let started = Instant::now();
    let swapped = client.cas("once", None, "1").await.unwrap();
    assert_eq!(swapped["ok"], json!(true), "{swapped}");
    println!("client write during the isolation took {} ms", started.elapsed().as_millis());
    cluster.isolate(leader, false);
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_for_leader(&survivors, Duration::from_secs(8)).await;
    let value = cluster.client(new_leader).get("once", "linearizable").await.unwrap();
    assert_eq!(value["value"], json!("1"));
    cluster.shutdown().await;
}
