//! Issue 11, Mediums 16 and 17: a node that joined with `--join` keeps its peers' addresses on
//! disk, so after a restart without `--join` it can dial them before any leader has reached it;
//! and a voter whose data directory was wiped is refused until it is removed and joins again.

mod common;

use common::{Cluster, SECRET};
use native_node::server::{self, ServeConfig};
use raft_core::NodeId;
use std::time::{Duration, Instant};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fourth_config(cluster: &Cluster, address: &str) -> ServeConfig {
    let mut config = ServeConfig::new(NodeId(4), SECRET.into(), cluster.dir.0.join("node-4"));
    config.advertise_address = Some(address.to_string());
    config.wal_segment_bytes = 1024 * 1024;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_node_knows_its_peers_addresses_after_a_restart_without_join() {
    let mut cluster = Cluster::start(3, "join-addresses").await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mut config = fourth_config(&cluster, &address);
    config.join = Some(cluster.addresses[(leader - 1) as usize].clone());
    let fourth = server::start(config, listener).await.unwrap();
    let leader_raft = cluster.node(leader).raft.clone();
    wait_until("node 4 to be a voter", Duration::from_secs(20), || {
        leader_raft.configuration().0.contains(&4)
    })
    .await;
    wait_until("node 4 to learn every address", Duration::from_secs(10), || {
        (1..=3).all(|id| fourth.transport.address(NodeId(id)).is_some())
    })
    .await;
    // Give the address book a moment to write what the transport learnt.
    tokio::time::sleep(Duration::from_millis(600)).await;
    fourth.shutdown().await;

    // The whole cluster is down, so node 4 can learn nothing from a peer: what it knows after a
    // restart without --join is what it kept.
    let addresses = cluster.addresses.clone();
    for id in 1..=3 {
        cluster.stop(id).await;
    }
    let listener = common::bind_retrying(&address).await;
    let fourth = server::start(fourth_config(&cluster, &address), listener).await.unwrap();
    for id in 1..=3u64 {
        assert_eq!(
            fourth.transport.address(NodeId(id)).as_deref(),
            Some(addresses[(id - 1) as usize].as_str()),
            "node 4 forgot where node {id} is"
        );
    }
    fourth.shutdown().await;
}

/// Issue 11, Medium 17: a voter whose data directory was wiped and that is started again with
/// the same `--bootstrap` has forgotten its log and its vote. The cluster refuses it (its
/// incarnation changed) instead of taking it back silently. The recovery of the README then
/// works: remove the member, wipe, join again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_is_refused_until_it_is_removed_and_joins_again() {
    let mut cluster = Cluster::start(3, "incarnation").await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    client.put("before", "wipe").await.unwrap();
    let victim = if leader == 3 { 2 } else { 3 };
    let commit = cluster.node(leader).raft.status().commit_index;
    cluster.wait_for_applied(commit, Duration::from_secs(5)).await;

    cluster.stop(victim).await;
    let victim_dir = cluster.dir.0.join(format!("node-{victim}"));
    std::fs::remove_dir_all(&victim_dir).unwrap();
    cluster.restart(victim).await.unwrap();
    // Its peers refuse it both ways: it learns nothing of the log it forgot.
    tokio::time::sleep(Duration::from_secs(2)).await;
    client.put("during", "refusal").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let applied = cluster.node(victim).raft.status().applied_index;
    assert!(applied < commit, "the wiped voter rejoined silently (applied {applied}, cluster at {commit}+)");
    let refused: u64 = (1..=3)
        .filter(|id| *id != victim)
        .map(|id| {
            cluster
                .node(id)
                .raft
                .metrics()
                .peer_handshakes_refused_total
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert!(refused > 0, "no node refused the wiped voter's connections");

    // Recovery: remove it, wipe it, join it again as a new member.
    cluster.stop(victim).await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let answer = client.admin(serde_json::json!({ "op": "remove", "node": victim })).await.unwrap();
    assert_eq!(answer["ok"], serde_json::json!(true), "{answer}");
    let _ = std::fs::remove_dir_all(&victim_dir);
    let address = cluster.addresses[(victim - 1) as usize].clone();
    let listener = common::bind_retrying(&address).await;
    let mut config = ServeConfig::new(NodeId(victim), SECRET.into(), victim_dir.clone());
    config.advertise_address = Some(address);
    config.join = Some(cluster.addresses[(leader - 1) as usize].clone());
    config.wal_segment_bytes = 1024 * 1024;
    let rejoined = server::start(config, listener).await.unwrap();
    let leader_raft = cluster.node(leader).raft.clone();
    wait_until("the wiped node to be a voter again", Duration::from_secs(20), || {
        leader_raft.configuration().0.contains(&victim)
    })
    .await;
    let commit = leader_raft.status().commit_index;
    wait_until("the rejoined node to catch up", Duration::from_secs(10), || {
        rejoined.raft.status().applied_index >= commit
    })
    .await;
    rejoined.shutdown().await;
    cluster.shutdown().await;
}
