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
    // The status is published after the batch that acknowledged the put, so it can lag the put
    // for a moment; the put sits after the bootstrap configuration (1) and the leader's no-op (2).
    let mut commit = cluster.node(leader).raft.status().commit_index;
    for _ in 0..100 {
        if commit >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        commit = cluster.node(leader).raft.status().commit_index;
    }
    assert!(commit >= 3, "the put is not committed in the leader's status (commit {commit})");
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

/// The handshake as a dialler that holds the secret and told `honest` in its upgrade, through a
/// relay that rewrote the header to `told`: the Welcome, or the reason it was refused.
async fn dial_through_relay(address: &str, honest: u64, told: u64) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};
    use raft_core::wire::{
        decode_frame, encode_frame, BoundIncarnations, Challenge, FrameKind, Hello, Transcript, Welcome,
    };
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message as Ws};
    let mut request = format!("ws://{address}/raft").into_client_request().unwrap();
    let header = native_node::incarnation::format(told).parse().unwrap();
    request.headers_mut().insert(native_node::incarnation::INCARNATION_HEADER, header);
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let acceptor_told = response
        .headers()
        .get(native_node::incarnation::INCARNATION_HEADER)
        .and_then(|value| native_node::incarnation::parse(value.to_str().ok()?));
    assert!(acceptor_told.is_some(), "the node tells its incarnation");
    let mut frames = Vec::new();
    while frames.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap() {
            Some(Ok(Ws::Binary(bytes))) => {
                frames.push(bytes);
                if frames.len() == 1 {
                    let challenge: Challenge = decode_frame(&frames[0], FrameKind::Challenge).unwrap();
                    let transcript = Transcript {
                        acceptor_nonce: challenge.nonce,
                        dialler_nonce: [7; 16],
                        cluster_id: challenge.cluster_id.clone(),
                        acceptor: challenge.node_id,
                        dialler: NodeId(2),
                    };
                    // The dialler's proof binds what it really told.
                    let bound = BoundIncarnations::told(acceptor_told, Some(honest));
                    let hello = Hello {
                        cluster_id: challenge.cluster_id,
                        node_id: NodeId(2),
                        address: None,
                        nonce: [7; 16],
                        mac: transcript.hello_mac_bound(SECRET.as_bytes(), bound, None),
                    };
                    socket.send(Ws::binary(encode_frame(FrameKind::Hello, &hello))).await.unwrap();
                }
            }
            Some(Ok(_)) => {}
            other => return Err(format!("closed: {other:?}")),
        }
    }
    decode_frame::<Welcome>(&frames[1], FrameKind::Welcome).map_err(|e| e.to_string())?;
    // The incarnation is checked after the Welcome: a Reject may follow within a moment.
    if let Ok(Some(Ok(Ws::Binary(bytes)))) = tokio::time::timeout(Duration::from_secs(1), socket.next()).await
    {
        decode_frame::<Welcome>(&bytes, FrameKind::Welcome).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The incarnation header is bound into the handshake's proofs: a relay that rewrites it (to
/// pass a wiped voter off as its old self, or to get a healthy one refused) breaks the
/// handshake, and the node records nothing it told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cannot_alter_the_incarnation_a_peer_tells() {
    let cluster = Cluster::start(1, "incarnation-relay").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = &cluster.addresses[0];
    let refused = dial_through_relay(address, 0x1111, 0x2222).await.unwrap_err();
    assert!(refused.contains("wrong cluster secret"), "{refused}");
    // Honest: the same incarnation told and bound, welcomed (and recorded as node 2's).
    dial_through_relay(address, 0x1111, 0x1111).await.unwrap();
    // The refused one was never recorded: a different one now is (the book holds 0x1111).
    let refused = dial_through_relay(address, 0x2222, 0x2222).await.unwrap_err();
    assert!(refused.contains("new data directory"), "{refused}");
    cluster.shutdown().await;
}
