//! In-process clusters of real servers on 127.0.0.1: election, replication, restarts from disk,
//! corrupt storage, and hostile peers and clients.

mod common;

use common::{http_get, http_post, Cluster, TempDir, SECRET};
use futures_util::{SinkExt, StreamExt};
use native_node::server::{self, ServeConfig};
use native_node::storage::Storage;
use native_node::transport::{self, HandshakeError, TransportConfig, PROTOCOL_VERSION};
use raft_core::NodeId;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_leader_and_replicate_writes_to_all() {
    let cluster = Cluster::start(3, "replicate").await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    let mut last_index = 0;
    for i in 0..20 {
        let response = client.put(&format!("key-{i}"), &format!("value-{i}")).await.unwrap();
        last_index = response["index"].as_u64().unwrap();
    }
    let response = client.get("key-7", "linearizable").await.unwrap();
    assert_eq!(response["value"], json!("value-7"));
    cluster.wait_for_applied(last_index, Duration::from_secs(5)).await;
    // Every replica holds every write: stale reads are served locally by each node.
    for address in &cluster.addresses {
        let (status, _, body) = http_post(address, r#"{"op":"get","key":"key-19","read":"stale"}"#).await;
        assert_eq!((status, body["value"].clone()), (200, json!("value-19")), "at {address}");
    }
    // A follower sends writes to the leader.
    let follower = cluster.addresses.iter().enumerate().find(|(i, _)| *i as u64 + 1 != leader).unwrap().1;
    let (status, location, body) = http_post(follower, r#"{"op":"put","key":"x","value":"y"}"#).await;
    assert_eq!(status, 307, "{body}");
    assert_eq!(body["error"], json!("not_leader"));
    assert_eq!(body["leader"], json!(leader));
    let leader_address = &cluster.addresses[(leader - 1) as usize];
    assert_eq!(location.as_deref(), Some(format!("http://{leader_address}/client").as_str()));
    let status = client.admin(json!({ "op": "status" })).await.unwrap();
    assert_eq!(status["leader"], json!(leader));
    let (code, metrics) = http_get(leader_address, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("raft_fsync_seconds_count"), "{metrics}");
    assert!(
        metrics.contains("raft_is_leader{node=\"") && metrics.contains("raft_peer_lag_entries{"),
        "{metrics}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cluster_restarts_from_disk_with_every_write() {
    let mut cluster = Cluster::start(3, "restart").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    for i in 0..30 {
        client.put(&format!("k{i}"), &format!("v{i}")).await.unwrap();
    }
    client.cas("k3", Some("v3"), "v3b").await.unwrap();
    for id in 1..=3 {
        cluster.stop(id).await;
    }
    for id in 1..=3 {
        cluster.restart(id).await.unwrap();
    }
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    for i in 0..30 {
        let expected = if i == 3 { "v3b".to_string() } else { format!("v{i}") };
        let response = client.get(&format!("k{i}"), "linearizable").await.unwrap();
        assert_eq!(response["value"], json!(expected));
    }
    // The log is not applied twice after a restart: a cas against the restored value works.
    client.cas("k3", Some("v3b"), "v3c").await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_survives_a_restart_and_later_entries_apply_once() {
    let mut cluster = Cluster::start(1, "snapshot").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    client.put("a", "1").await.unwrap();
    let snapshot = client.admin(json!({ "op": "snapshot" })).await.unwrap();
    assert!(snapshot["index"].as_u64().unwrap() >= 3, "{snapshot}");
    client.cas("a", Some("1"), "2").await.unwrap();
    cluster.stop(1).await;
    cluster.restart(1).await.unwrap();
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    assert_eq!(client.get("a", "linearizable").await.unwrap()["value"], json!("2"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_storage_stops_the_node_with_a_clear_error() {
    let mut cluster = Cluster::start(1, "corrupt").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    cluster.client().put("a", "1").await.unwrap();
    cluster.stop(1).await;
    let data_dir = cluster.dir.0.join("node-1");
    Storage::corrupt_log_for_test(&data_dir).unwrap();
    let error = cluster.restart(1).await.unwrap_err().to_string();
    assert!(error.contains("corrupt data") && error.contains("checksum mismatch"), "{error}");

    // A database file overwritten with garbage is refused too, and left as it was.
    let file = data_dir.join(native_node::storage::DATABASE_FILE);
    let garbage = vec![0xa5u8; 8192];
    std::fs::write(&file, &garbage).unwrap();
    let error = cluster.restart(1).await.unwrap_err().to_string();
    assert!(error.contains("raft.redb"), "{error}");
    assert_eq!(std::fs::read(&file).unwrap(), garbage);

    // A data directory of another node is refused.
    let other = TempDir::new("identity");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = ServeConfig::new(NodeId(1), SECRET.into(), other.0.clone());
    config.bootstrap = vec![(NodeId(1), listener.local_addr().unwrap().to_string())];
    server::start(config, listener).await.unwrap().shutdown().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServeConfig::new(NodeId(2), SECRET.into(), other.0.clone());
    let error = server::start(config, listener).await.unwrap_err().to_string();
    assert!(error.contains("holds node 1"), "{error}");
}

fn peer_config(secret: &str) -> TransportConfig {
    TransportConfig::new(NodeId(99), "flotilla".into(), secret.as_bytes().to_vec(), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_a_wrong_secret_cluster_or_version_are_refused() {
    let cluster = Cluster::start(1, "refuse").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = &cluster.addresses[0];

    let error = transport::dial(address, &peer_config("wrong"), PROTOCOL_VERSION).await.unwrap_err();
    assert!(
        matches!(&error, HandshakeError::Rejected(why) if why.contains("wrong cluster secret")),
        "{error}"
    );
    let error = transport::dial(address, &peer_config(SECRET), 1).await.unwrap_err();
    assert!(
        matches!(&error, HandshakeError::Rejected(why) if why.contains("unsupported protocol version 1")),
        "{error}"
    );
    let mut other_cluster = peer_config(SECRET);
    other_cluster.cluster_id = "another".into();
    let error = transport::dial(address, &other_cluster, PROTOCOL_VERSION).await.unwrap_err();
    assert!(matches!(&error, HandshakeError::Protocol(why) if why.contains("cluster")), "{error}");
    // The right secret gets in.
    let (_socket, acceptor, _) =
        transport::dial(address, &peer_config(SECRET), PROTOCOL_VERSION).await.unwrap();
    assert_eq!(acceptor, NodeId(1));
    let metrics = cluster.node(1).raft.metrics();
    // Wrong secret, wrong version, and the dialler that walked away from a foreign cluster.
    assert_eq!(metrics.peer_handshakes_refused_total.load(std::sync::atomic::Ordering::Relaxed), 3);

    // Admin calls need the secret too.
    let (status, _, body) = http_post(address, r#"{"op":"status"}"#).await;
    assert_eq!((status, body["error"].clone()), (401, json!("unauthorized")));
    let (status, _, body) = http_post(address, r#"{"op":"status","secret":"nope"}"#).await;
    assert_eq!((status, body["error"].clone()), (401, json!("unauthorized")));
    cluster.shutdown().await;
}

async fn expect_closed_with(socket: &mut transport::DialledSocket, code: u16) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("closed in time") {
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), code, "{}", frame.reason);
                return frame.reason.to_string();
            }
            Some(Ok(WsMessage::Close(None))) | None | Some(Err(_)) => return String::new(),
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_peer_frames_are_refused_and_the_node_stays_healthy() {
    let cluster = Cluster::start(1, "frames").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = cluster.addresses[0].clone();
    let config = peer_config(SECRET);

    let (mut socket, _, session) = transport::dial(&address, &config, PROTOCOL_VERSION).await.unwrap();
    let (mut sealer, _) = session.split();
    let garbage = sealer.seal(transport::FrameKind::Raft, &[0xffu8; 3]);
    socket.send(WsMessage::Binary(garbage.into())).await.unwrap();
    let reason = expect_closed_with(&mut socket, transport::CLOSE_PROTOCOL_ERROR).await;
    assert!(reason.contains("undecodable frame body"), "{reason}");

    let (mut socket, _, _) = transport::dial(&address, &config, PROTOCOL_VERSION).await.unwrap();
    socket.send(WsMessage::Binary(vec![7, 16].into())).await.unwrap();
    let reason = expect_closed_with(&mut socket, transport::CLOSE_PROTOCOL_ERROR).await;
    assert!(reason.contains("unsupported protocol version 7"), "{reason}");

    // A message that claims another sender than the authenticated one (correctly tagged).
    let (mut socket, _, session) = transport::dial(&address, &config, PROTOCOL_VERSION).await.unwrap();
    let (mut sealer, _) = session.split();
    let forged = raft_core::Message {
        from: NodeId(5),
        to: NodeId(1),
        term: raft_core::Term(1),
        body: raft_core::MessageBody::HeartbeatResponse { context: 0 },
    };
    socket.send(WsMessage::Binary(sealer.seal(transport::FrameKind::Raft, &forged).into())).await.unwrap();
    let reason = expect_closed_with(&mut socket, transport::CLOSE_PROTOCOL_ERROR).await;
    assert!(reason.contains("claims to come from node 5"), "{reason}");

    // Larger than the frame limit: the connection is dropped, nothing is buffered beyond it.
    let (mut socket, _, _) = transport::dial(&address, &config, PROTOCOL_VERSION).await.unwrap();
    let huge = vec![0u8; transport::FRAME_BYTES_MAX + 1024];
    let _ = socket.send(WsMessage::Binary(huge.into())).await;
    let _ = expect_closed_with(&mut socket, 1009).await;

    let metrics = cluster.node(1).raft.metrics();
    assert!(metrics.peer_frames_malformed_total.load(std::sync::atomic::Ordering::Relaxed) >= 4);
    let (status, body) = http_get(&address, "/health").await;
    assert_eq!(status, 200, "{body}");
    let mut client = cluster.client();
    client.put("still", "alive").await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_json_gets_clear_errors_and_the_connection_stays_usable() {
    let cluster = Cluster::start(1, "json").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = cluster.addresses[0].clone();

    let (status, _, body) = http_post(&address, "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], json!("bad_request"));
    assert!(body["message"].as_str().unwrap().starts_with("invalid JSON"), "{body}");
    let (status, _, body) = http_post(&address, r#"{"op":"put","key":"k"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("value"), "{body}");
    let big_key = "k".repeat(raft_core::kv::KEY_BYTES_MAX + 1);
    let (status, _, body) =
        http_post(&address, &json!({"op":"put","key":big_key,"value":"v"}).to_string()).await;
    assert_eq!((status, body["error"].clone()), (422, json!("key_too_large")), "{body}");

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/client")).await.unwrap();
    for garbage in ["]]]", "42", r#"{"op":"explode"}"#] {
        socket.send(WsMessage::text(garbage)).await.unwrap();
        let Some(Ok(WsMessage::Text(answer))) = socket.next().await else { panic!("no answer") };
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"], json!("bad_request"), "{answer}");
    }
    socket.send(WsMessage::text(r#"{"id":5,"op":"put","key":"k","value":"v"}"#)).await.unwrap();
    let Some(Ok(WsMessage::Text(answer))) = socket.next().await else { panic!("no answer") };
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!((answer["id"].clone(), answer["ok"].clone()), (json!(5), json!(true)), "{answer}");
    let (status, _) = http_get(&address, "/health").await;
    assert_eq!(status, 200);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up() {
    let mut cluster = Cluster::start(3, "catch-up").await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let follower = if leader == 1 { 2 } else { 1 };
    cluster.stop(follower).await;
    let mut client = cluster.client();
    let mut index = 0;
    for i in 0..40 {
        index = client.put(&format!("k{i}"), "v").await.unwrap()["index"].as_u64().unwrap();
    }
    cluster.restart(follower).await.unwrap();
    cluster.wait_for_applied(index, Duration::from_secs(10)).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_every_replica_and_garbage_is_refused() {
    use native_node::client::http_admin;
    let cluster = Cluster::start(3, "backup").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    client.put("a", "1").await.unwrap();
    client.put("b", "2").await.unwrap();
    let endpoints = cluster.addresses.clone();
    let backup = http_admin(&endpoints, Some(SECRET), "GET", "/admin/backup", &[]).await.unwrap();
    assert_eq!(backup.status, 200);
    assert!(!backup.body.is_empty());
    let refused = http_admin(&endpoints, Some("wrong"), "GET", "/admin/backup", &[]).await.unwrap();
    assert_eq!(refused.status, 401);

    client.put("a", "changed").await.unwrap();
    client.put("c", "3").await.unwrap();
    let restored =
        http_admin(&endpoints, Some(SECRET), "POST", "/admin/restore", &backup.body).await.unwrap();
    assert_eq!(restored.status, 200, "{}", String::from_utf8_lossy(&restored.body));
    let mut client = cluster.client();
    assert_eq!(client.get("a", "linearizable").await.unwrap()["value"], json!("1"));
    assert_eq!(client.get("c", "linearizable").await.unwrap()["value"], Value::Null);
    // Every replica swapped at the same log index.
    let index: u64 = serde_json::from_slice::<Value>(&restored.body).unwrap()["index"].as_u64().unwrap();
    cluster.wait_for_applied(index, Duration::from_secs(5)).await;
    for address in &cluster.addresses {
        let (_, _, body) = http_post(address, r#"{"op":"get","key":"c","read":"stale"}"#).await;
        assert_eq!(body["value"], Value::Null, "at {address}");
    }

    let garbage =
        http_admin(&endpoints, Some(SECRET), "POST", "/admin/restore", b"not a snapshot").await.unwrap();
    let body: Value = serde_json::from_slice(&garbage.body).unwrap();
    assert_eq!((garbage.status, body["error"].clone()), (422, json!("restore_rejected")), "{body}");
    assert_eq!(client.get("b", "linearizable").await.unwrap()["value"], json!("2"));

    // Refused before the body is read: without the admin secret, or declaring more than a
    // restore may carry. The body is never sent; the answer must come anyway, at once.
    let address = &cluster.addresses[0];
    let declared = native_node::restore::RESTORE_BYTES_MAX_DEFAULT as usize + 1;
    for (secret, length, code) in [("wrong", 1_000_000, 401), (SECRET, declared, 413)] {
        let status = headers_only_post(address, "/admin/restore", secret, length).await;
        assert_eq!(
            status.as_deref(),
            Some(code.to_string().as_str()),
            "secret {secret}, {length} bytes declared"
        );
    }
    cluster.shutdown().await;
}

/// Sends only the head of a POST declaring `length` bytes of body; the answer's status code if
/// one comes within 3 s (a server that waits for the body sends none).
async fn headers_only_post(address: &str, path: &str, secret: &str, length: usize) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {secret}\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&answer[..read]).to_string();
    text.split_whitespace().nth(1).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_one_connection_each_get_their_own_answers() {
    use native_node::client::{Client, ClientConfig};
    use native_node::connection::ConnectionPool;
    let cluster = Cluster::start(3, "shared-connection").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let pool = ConnectionPool::new();
    let mut tasks = Vec::new();
    for c in 0..64 {
        let mut config = ClientConfig::new(cluster.addresses.clone());
        config.call_timeout = Duration::from_secs(20);
        let mut client = Client::with_pool(config, pool.clone());
        tasks.push(tokio::spawn(async move {
            let mut indexes = Vec::new();
            for i in 0..20 {
                let put = client.put(&format!("c{c}-{i}"), &format!("{c}:{i}")).await.unwrap();
                indexes.push(put["index"].as_u64().unwrap());
            }
            for i in 0..20 {
                let got = client.get(&format!("c{c}-{i}"), "linearizable").await.unwrap();
                assert_eq!(got["value"], json!(format!("{c}:{i}")), "client {c} got another's answer");
            }
            indexes
        }));
    }
    let mut indexes = Vec::new();
    for task in tasks {
        indexes.extend(task.await.unwrap());
    }
    let written = indexes.len();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), written, "every put was answered with its own log index");
    cluster.shutdown().await;
}
