//! Changing a running cluster: a fourth node joins and a node is removed (thesis §4.2),
//! leadership is handed over (thesis §3.10), and a follower too far behind is caught up with a
//! snapshot (thesis §5.3).

mod common;

use common::{bind_retrying, node_config, Cluster, SECRET};
use futures_util::StreamExt;
use native_node::client::{Client, ClientConfig};
use native_node::server::{self, ServeConfig};
use raft_core::NodeId;
use serde_json::json;
use std::time::{Duration, Instant};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn client_for(addresses: Vec<String>) -> Client {
    let mut config = ClientConfig::new(addresses);
    config.secret = Some(SECRET.to_string());
    config.call_timeout = Duration::from_secs(20);
    Client::new(config)
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_as_a_voter_and_a_node_is_removed() {
    let mut cluster = Cluster::start(3, "join").await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    for i in 0..20 {
        client.put(&format!("k{i}"), "v").await.unwrap();
    }

    // Node 4 starts empty and asks a follower to add it; the follower sends it to the leader.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let follower = if leader == 1 { 2 } else { 1 };
    let mut config = ServeConfig::new(NodeId(4), SECRET.into(), cluster.dir.0.join("node-4"));
    config.advertise_address = Some(address.clone());
    config.join = Some(cluster.addresses[(follower - 1) as usize].clone());
    config.wal_segment_bytes = 1024 * 1024;
    let fourth = server::start(config, listener).await.unwrap();
    let leader_raft = cluster.node(leader).raft.clone();
    wait_until("node 4 to be a voter", Duration::from_secs(20), || {
        leader_raft.configuration().0.contains(&4)
    })
    .await;
    let commit = leader_raft.status().commit_index;
    wait_until("node 4 to catch up", Duration::from_secs(10), || {
        fourth.raft.status().applied_index >= commit
    })
    .await;
    let mut at_four = client_for(vec![address.clone()]);
    assert_eq!(at_four.get("k19", "stale").await.unwrap()["value"], json!("v"));
    // Every node learned where node 4 is, from the replicated address record.
    for id in 1..=3 {
        let node = cluster.node(id);
        wait_until("the address of node 4", Duration::from_secs(5), || {
            node.transport.address(NodeId(4)).as_deref() == Some(address.as_str())
        })
        .await;
    }

    // Remove a follower that is not node 4; the rest keeps serving.
    let removed = (1..=3).find(|id| *id != leader).unwrap();
    let response = client.admin(json!({ "op": "remove", "node": removed })).await.unwrap();
    assert_eq!(response["ok"], json!(true), "{response}");
    wait_until("the removal", Duration::from_secs(10), || !leader_raft.configuration().0.contains(&removed))
        .await;
    cluster.stop(removed).await;
    let remaining: Vec<String> = (1..=3)
        .filter(|id| *id != removed)
        .map(|id| cluster.addresses[(id - 1) as usize].clone())
        .chain([address])
        .collect();
    let mut client = client_for(remaining);
    client.put("after-removal", "yes").await.unwrap();
    assert_eq!(client.get("after-removal", "linearizable").await.unwrap()["value"], json!("yes"));
    // Adding a voter that already votes is refused with a clear error.
    let error =
        client.admin(json!({ "op": "add_voter", "node": 4, "address": "127.0.0.1:1" })).await.unwrap_err();
    assert!(error.to_string().contains("refused"), "{error}");
    fourth.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_named_follower() {
    let cluster = Cluster::start(3, "transfer").await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let target = if leader == 3 { 1 } else { leader + 1 };
    let mut client = cluster.client();
    client.put("before", "1").await.unwrap();
    // Observers see the handover on the event stream.
    let events_url = format!("ws://{}/events", cluster.addresses[(leader - 1) as usize]);
    // The event stream needs the admin secret, as `admin status` does.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let refused = tokio_tungstenite::connect_async(events_url.clone()).await;
    assert!(refused.is_err(), "an event stream without the secret was opened");
    let mut request = events_url.into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
    let (mut events, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let first = events.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(first.contains("\"event\":\"status\""), "{first}");
    let response = client.admin(json!({ "op": "transfer", "node": target })).await.unwrap();
    assert_eq!(response["leader"], json!(target), "{response}");
    assert_eq!(cluster.wait_for_leader(LEADER_TIMEOUT).await, target);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(remaining, events.next()).await.expect("a state change event");
        let text = event.unwrap().unwrap().into_text().unwrap().to_string();
        if text.contains("state_changed") && text.contains(&format!("\"leader\":{target}")) {
            break;
        }
    }
    client.put("after", "2").await.unwrap();
    assert_eq!(client.get("before", "linearizable").await.unwrap()["value"], json!("1"));
    cluster.shutdown().await;
}

/// Three nodes with small snapshot settings (every 40 entries, 5 kept); one follower is stopped
/// while 150 puts go in, so the leader compacts away what it missed. Returns the cluster, the
/// stopped follower and the index of the last put.
async fn leader_snapshotted_past_a_stopped_follower(name: &str) -> (Cluster, u64, u64) {
    let mut cluster = Cluster::start(3, name).await;
    for id in 1..=3 {
        cluster.stop(id).await;
    }
    let members = cluster.members.clone();
    for id in 1..=3u64 {
        let listener = bind_retrying(&cluster.addresses[(id - 1) as usize]).await;
        let mut config = node_config(id, &members, &cluster.dir);
        config.snapshot_interval_entries = 40;
        config.snapshot_trailing_entries = 5;
        cluster.nodes[(id - 1) as usize] = Some(server::start(config, listener).await.unwrap());
    }
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let lagging = if leader == 1 { 2 } else { 1 };
    cluster.stop(lagging).await;
    let mut client = cluster.client();
    let mut last = 0;
    for i in 0..150 {
        last = client.put(&format!("k{i}"), &format!("v{i}")).await.unwrap()["index"].as_u64().unwrap();
    }
    // The snapshot is taken off the apply path: under load the one due at 80 can still be in
    // progress when the last put is acknowledged.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leader_status = cluster.node(leader).raft.status();
        if leader_status.snapshot_index >= 80 {
            break;
        }
        assert!(Instant::now() < deadline, "the leader snapshotted: {leader_status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (cluster, lagging, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_too_far_behind_is_caught_up_with_a_snapshot() {
    let (mut cluster, lagging, last) = leader_snapshotted_past_a_stopped_follower("install").await;
    let members = cluster.members.clone();
    let restart = |cluster: &mut Cluster| {
        let address = cluster.addresses[(lagging - 1) as usize].clone();
        let mut config = node_config(lagging, &members, &cluster.dir);
        config.snapshot_interval_entries = 40;
        config.snapshot_trailing_entries = 5;
        (address, config)
    };
    let (address, config) = restart(&mut cluster);
    cluster.nodes[(lagging - 1) as usize] =
        Some(server::start(config, bind_retrying(&address).await).await.unwrap());
    cluster.wait_for_applied(last, Duration::from_secs(15)).await;
    let status = cluster.node(lagging).raft.status();
    assert!(status.snapshots_installed >= 1, "node {lagging} was sent a snapshot: {status:?}");
    let mut at_lagging = client_for(vec![address.clone()]);
    assert_eq!(at_lagging.get("k0", "stale").await.unwrap()["value"], json!("v0"));

    // It restarts from the snapshot it installed, plus its log.
    cluster.stop(lagging).await;
    let (address, config) = restart(&mut cluster);
    cluster.nodes[(lagging - 1) as usize] =
        Some(server::start(config, bind_retrying(&address).await).await.unwrap());
    cluster.wait_for_applied(last, Duration::from_secs(10)).await;
    let mut at_lagging = client_for(vec![address]);
    assert_eq!(at_lagging.get("k149", "stale").await.unwrap()["value"], json!("v149"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_the_staging_limit_stops_the_follower_with_a_clear_error() {
    let (mut cluster, lagging, _) = leader_snapshotted_past_a_stopped_follower("staging").await;
    let members = cluster.members.clone();

    // The lagging node may stage only 64 bytes: the leader's snapshot (150 keys) is larger.
    let address = cluster.addresses[(lagging - 1) as usize].clone();
    let mut config = node_config(lagging, &members, &cluster.dir);
    config.snapshot_staging_bytes_max = 64;
    cluster.nodes[(lagging - 1) as usize] =
        Some(server::start(config, bind_retrying(&address).await).await.unwrap());
    let node = cluster.node(lagging);
    let status = node.raft.watch_status();
    wait_until("the lagging node stops", Duration::from_secs(15), || status.borrow().fatal_error.is_some())
        .await;
    let error = status.borrow().fatal_error.clone().unwrap();
    assert!(error.contains("larger than the staging limit of 64 bytes"), "{error}");
    assert_eq!(
        node.raft.metrics().snapshot_staging_refused_total.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let metrics = node.raft.metrics().render(lagging);
    assert!(
        metrics.contains(&format!("raft_snapshot_staging_refused_total{{node=\"{lagging}\"}} 1")),
        "{metrics}"
    );
    assert_eq!(node.raft.status().role, "stopped");
    cluster.shutdown().await;
}
