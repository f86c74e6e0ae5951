//! Hostile clients and peers (issue 11): nobody without a credential changes the cluster.

mod common;

use common::{Cluster, SECRET};
use futures_util::{SinkExt, StreamExt};
use native_node::client::http_request;
use raft_core::kv::{Command, KvConfig, KvStore, Operation};
use raft_core::state_machine::StateMachine as _;
use raft_core::{Entry, EntryPayload, LogIndex, NodeId, Term};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A peer address record, as a client would forge it.
const ADDRESS_KEY: &str = "\u{0}flotilla/address/2";

async fn post_client(address: &str, body: &Value) -> (u16, Value) {
    let answer = http_request(address, "POST", "/client", None, body.to_string().as_bytes()).await.unwrap();
    (answer.status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
}

/// A user snapshot (as `/admin/backup` makes them) holding `records`.
fn snapshot_with(records: &[(&str, &str)]) -> Vec<u8> {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    for (i, (key, value)) in records.iter().enumerate() {
        let operation =
            Operation::Put { key: key.as_bytes().to_vec().into(), value: value.as_bytes().to_vec().into() };
        let entry = Entry {
            term: Term(1),
            index: LogIndex(i as u64 + 1),
            payload: EntryPayload::Command(Command::unsessioned(1, operation).encode()),
        };
        store.apply(&entry).unwrap();
    }
    store.snapshot().flat_map(|chunk| chunk.to_vec()).collect()
}

/// Critical 1: the peer address records live outside the user keyspace. Every client path that
/// names a key (JSON over HTTP and WebSocket, the `/v1/kv` shortcuts, the library's `apply`) is
/// refused, lists leave them out, and a restored user snapshot cannot bring its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_touch_the_reserved_address_records() {
    let mut cluster = Cluster::start(3, "reserved").await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = cluster.addresses[(leader - 1) as usize].clone();
    let node2 = cluster.addresses[1].clone();

    for request in [
        json!({"op":"put","key":ADDRESS_KEY,"value":"203.0.113.9:1"}),
        json!({"op":"cas","key":ADDRESS_KEY,"expected":null,"value":"203.0.113.9:1"}),
        json!({"op":"cas","key":ADDRESS_KEY,"expected":node2,"value":"203.0.113.9:1"}),
        json!({"op":"del","key":ADDRESS_KEY}),
        json!({"op":"get","key":ADDRESS_KEY}),
    ] {
        let (status, body) = post_client(&address, &request).await;
        assert_eq!((status, body["error"].clone()), (403, json!("reserved_key")), "{request}: {body}");
    }
    // The same over a WebSocket, with a session.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/client")).await.unwrap();
    let request = json!({"id":1,"op":"put","key":ADDRESS_KEY,"value":"203.0.113.9:1",
        "session":{"client_id":1,"sequence":1}});
    socket.send(WsMessage::text(request.to_string())).await.unwrap();
    let Some(Ok(WsMessage::Text(answer))) = socket.next().await else { panic!("no answer") };
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"], json!("reserved_key"), "{answer}");
    // The curl shortcuts (the key percent-encoded in the path).
    for method in ["PUT", "DELETE", "GET"] {
        let answer =
            http_request(&address, method, "/v1/kv/%00flotilla%2Faddress%2F2", None, b"203.0.113.9:1")
                .await
                .unwrap();
        assert_eq!(answer.status, 403, "{method}: {}", String::from_utf8_lossy(&answer.body));
    }
    // The library handle refuses it as well, whoever calls it.
    let command = Command::unsessioned(
        1,
        Operation::Put { key: ADDRESS_KEY.as_bytes().to_vec().into(), value: "203.0.113.9:1".into() },
    );
    let error = cluster.node(leader).raft.apply(command.encode(), Duration::from_secs(5)).await.unwrap_err();
    assert!(error.to_string().contains("reserved"), "{error}");
    // A list of everything does not show them.
    let (status, body) = post_client(&address, &json!({"op":"list","read":"stale"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("flotilla/address"), "{body}");

    // A restored user snapshot with its own address records: the cluster keeps its own.
    let snapshot = snapshot_with(&[
        ("user", "1"),
        (ADDRESS_KEY, "203.0.113.9:1"),
        ("\u{0}flotilla/address/7", "evil:1"),
    ]);
    let endpoints = cluster.addresses.clone();
    let restored =
        native_node::client::http_admin(&endpoints, Some(SECRET), "POST", "/admin/restore", &snapshot)
            .await
            .unwrap();
    assert_eq!(restored.status, 200, "{}", String::from_utf8_lossy(&restored.body));
    let mut client = cluster.client();
    assert_eq!(client.get("user", "linearizable").await.unwrap()["value"], json!("1"));
    let index: u64 = serde_json::from_slice::<Value>(&restored.body).unwrap()["index"].as_u64().unwrap();
    cluster.wait_for_applied(index, Duration::from_secs(10)).await;
    cluster.node(leader).raft.snapshot(Duration::from_secs(10)).await.unwrap();
    // Addresses are read back from the state at start: restart and look.
    cluster.stop(leader).await;
    cluster.restart(leader).await.unwrap();
    let addresses = cluster.node(leader).transport.addresses();
    assert_eq!(addresses.get(&NodeId(7)), None, "{addresses:?}");
    if leader != 2 {
        assert_eq!(addresses.get(&NodeId(2)), Some(&node2), "{addresses:?}");
    }
    // Nothing was redirected: every node still works together.
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let mut client = cluster.client();
    client.put("after", "ok").await.unwrap();
    cluster.shutdown().await;
}

/// Reads one WebSocket frame (client to server, masked) from `from` and returns its raw bytes.
/// A relay's first step: the HTTP upgrade request, byte by byte up to its blank line, passed on
/// unchanged. False when either side closed.
async fn forward_upgrade_request(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if from.read_exact(&mut byte).await.is_err() {
            return false;
        }
        head.push(byte[0]);
    }
    to.write_all(&head).await.is_ok()
}

async fn read_ws_frame(from: &mut tokio::net::tcp::OwnedReadHalf) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    from.read_exact(&mut head).await.ok()?;
    let mut frame = head.to_vec();
    let length = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            from.read_exact(&mut ext).await.ok()?;
            frame.extend_from_slice(&ext);
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            from.read_exact(&mut ext).await.ok()?;
            frame.extend_from_slice(&ext);
            u64::from_be_bytes(ext)
        }
        short => u64::from(short),
    };
    let mask_bytes = if head[1] & 0x80 != 0 { 4 } else { 0 };
    let mut rest = vec![0u8; mask_bytes + length as usize];
    from.read_exact(&mut rest).await.ok()?;
    frame.extend_from_slice(&rest);
    Some(frame)
}

/// A masked binary WebSocket frame, as a dialling client sends them.
fn masked_binary_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x82];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x11, 0x22, 0x33, 0x44];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
    frame
}

/// Critical 2: a relay between two nodes passes the handshake through, then injects its own
/// AppendEntries (a forged entry in a higher term). The frame carries no valid session tag:
/// it is refused, the connection is closed and counted, and the forged entry is never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_injects_a_frame_after_the_handshake_is_refused() {
    use native_node::transport::{encode_frame, FrameKind};
    use tokio::io::AsyncWriteExt;
    let dir = common::TempDir::new("relay");
    let listener1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (address1, address2) =
        (listener1.local_addr().unwrap().to_string(), listener2.local_addr().unwrap().to_string());
    let relay_address = relay.local_addr().unwrap().to_string();
    let injected = std::sync::Arc::new(tokio::sync::Notify::new());
    // The relay: node 2 reaches node 1 only through it. It forwards everything; on the first
    // connection, once the handshake has gone through, it adds a frame of its own.
    let relay_task = {
        let address1 = address1.clone();
        let injected = injected.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let Ok((client, _)) = relay.accept().await else { return };
                let Ok(server) = tokio::net::TcpStream::connect(&address1).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let inject = std::mem::take(&mut first);
                let injected = injected.clone();
                tokio::spawn(async move {
                    if !forward_upgrade_request(&mut client_read, &mut server_write).await {
                        return;
                    }
                    let mut frames = 0;
                    while let Some(frame) = read_ws_frame(&mut client_read).await {
                        if server_write.write_all(&frame).await.is_err() {
                            return;
                        }
                        frames += 1;
                        if inject && frames == 1 {
                            // The Hello went through; give node 1 a moment to welcome node 2.
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            let forged = raft_core::Message {
                                from: NodeId(2),
                                to: NodeId(1),
                                term: Term(1000),
                                body: raft_core::MessageBody::AppendEntries {
                                    prev_log_index: LogIndex(0),
                                    prev_log_term: Term(0),
                                    entries: vec![Entry {
                                        term: Term(1000),
                                        index: LogIndex(1),
                                        payload: EntryPayload::Command(
                                            Command::unsessioned(
                                                1,
                                                Operation::Put { key: "forged".into(), value: "yes".into() },
                                            )
                                            .encode(),
                                        ),
                                    }],
                                    leader_commit: LogIndex(1),
                                },
                            };
                            let mut payload = encode_frame(FrameKind::Raft, &forged);
                            payload.extend_from_slice(&[0u8; 16]);
                            let _ = server_write.write_all(&masked_binary_frame(&payload)).await;
                            injected.notify_one();
                        }
                    }
                });
            }
        })
    };
    let mut config1 =
        common::node_config(1, &[(NodeId(1), address1.clone()), (NodeId(2), address2.clone())], &dir);
    config1.election_timeout_ticks = Some(100);
    let mut config2 =
        common::node_config(2, &[(NodeId(1), relay_address.clone()), (NodeId(2), address2.clone())], &dir);
    config2.election_timeout_ticks = Some(100);
    let node1 = native_node::server::start(config1, listener1).await.unwrap();
    let node2 = native_node::server::start(config2, listener2).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), injected.notified())
        .await
        .expect("the relay injected a frame");
    let metrics = node1.raft.metrics().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metrics.peer_frames_unauthenticated_total.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(std::time::Instant::now() < deadline, "node 1 never refused the injected frame");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The forged entry never reached node 1's state, and the two nodes go on working together
    // (node 2 redials through the relay, which now only forwards).
    let mut client = native_node::client::Client::new({
        let mut config = native_node::client::ClientConfig::new(vec![address1.clone(), address2.clone()]);
        config.call_timeout = Duration::from_secs(20);
        config
    });
    let index = client.put("real", "1").await.unwrap()["index"].as_u64().unwrap();
    for node in [&node1, &node2] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while node.raft.status().applied_index < index {
            assert!(std::time::Instant::now() < deadline, "a node did not apply the real write");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(node.raft.status().term < 1000, "the forged term was taken");
    }
    let (status, body) = post_client(&address1, &json!({"op":"get","key":"forged","read":"stale"})).await;
    assert_eq!((status, body["value"].clone()), (200, Value::Null), "{body}");
    relay_task.abort();
    node1.shutdown().await;
    node2.shutdown().await;
}

fn counter(node: &native_node::server::Node, read: impl Fn(&native_node::metrics::Metrics) -> u64) -> u64 {
    read(node.raft.metrics())
}

/// Waits until the server closes `stream` (end of file or an error); panics after `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => panic!("the server kept an idle socket open for {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
        }
    }
}

/// High 5 / Medium 7: every socket has a header-read and an idle timeout (shortened here), and
/// an idle socket is closed and counted while clients keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_sockets_are_closed_after_their_timeouts() {
    use tokio::io::AsyncWriteExt;
    let cluster = Cluster::start_with(1, "idle", |config| {
        config.limits.idle_timeout = Duration::from_millis(800);
        config.limits.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = cluster.addresses[0].clone();
    // Connected, silent.
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Half a request header, then silence (slowloris).
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // An upgraded client WebSocket that never says anything.
    let (idle_ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/client")).await.unwrap();
    let mut client = cluster.client();
    client.put("during", "ok").await.unwrap();
    closed_within(&mut silent, Duration::from_secs(10)).await;
    closed_within(&mut slow, Duration::from_secs(10)).await;
    let mut idle_ws = idle_ws;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match idle_ws.next().await {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "an idle WebSocket stayed open");
    assert!(
        counter(cluster.node(1), |m| m
            .connections_timed_out_total
            .load(std::sync::atomic::Ordering::Relaxed))
            >= 2
    );
    // A fresh client still gets in.
    let (status, body) = post_client(&address, &json!({"op":"get","key":"during","read":"stale"})).await;
    assert_eq!((status, body["value"].clone()), (200, json!("ok")), "{body}");
    cluster.shutdown().await;
}

/// Medium 8: until its handshake completes, a `/raft` socket may read only a few kilobytes; a
/// peer that sends a large first frame is cut off (and counted) instead of buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_peer_socket_cannot_make_the_node_buffer_megabytes() {
    let cluster = Cluster::start(1, "prehandshake").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = cluster.addresses[0].clone();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/raft")).await.unwrap();
    let Some(Ok(WsMessage::Binary(_challenge))) = socket.next().await else { panic!("no challenge") };
    let before =
        counter(cluster.node(1), |m| m.connections_refused_total.load(std::sync::atomic::Ordering::Relaxed));
    // 1 MiB "hello": far beyond any real one.
    let _ = socket.send(WsMessage::Binary(vec![7u8; 1 << 20].into())).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while counter(cluster.node(1), |m| m.connections_refused_total.load(std::sync::atomic::Ordering::Relaxed))
        == before
    {
        assert!(std::time::Instant::now() < deadline, "the oversized pre-handshake frame was not cut off");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut client = cluster.client();
    client.put("still", "alive").await.unwrap();
    cluster.shutdown().await;
}

/// Medium 13: `/health` fails with "no leader" when the node knows none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_without_a_leader() {
    let dir = common::TempDir::new("health");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // One of three members, alone: it can never win an election.
    let members = vec![
        (NodeId(1), address.clone()),
        (NodeId(2), "127.0.0.1:9".into()),
        (NodeId(3), "127.0.0.1:9".into()),
    ];
    let node = native_node::server::start(common::node_config(1, &members, &dir), listener).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = http_request(&address, "GET", "/health", None, b"").await.unwrap();
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        (answer.status, body["ok"].clone(), body["error"].clone()),
        (503, json!(false), json!("no leader")),
        "{body}"
    );
    node.shutdown().await;
}

/// Medium 15: admin failures are counted and throttled per address, and `/events` needs the
/// secret like `admin status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_failures_are_counted_and_throttled_and_events_need_the_secret() {
    let cluster = Cluster::start(1, "admin").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = cluster.addresses[0].clone();
    let events = tokio_tungstenite::connect_async(format!("ws://{address}/events")).await;
    assert!(events.is_err(), "an event stream opened without the secret");
    let mut throttled = false;
    for guess in 0..40 {
        let (status, body) =
            post_client(&address, &json!({"op":"status","secret":format!("guess-{guess}")})).await;
        match status {
            401 => assert_eq!(body["error"], json!("unauthorized")),
            429 => {
                assert_eq!(body["error"], json!("rate_limited"));
                throttled = true;
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(throttled, "40 wrong secrets in a row were never throttled");
    // Even the right secret waits now, from this address.
    let (status, _) = post_client(&address, &json!({"op":"status","secret":SECRET})).await;
    assert_eq!(status, 429);
    let metrics = cluster.node(1).raft.metrics();
    assert!(metrics.admin_auth_failures_total.load(std::sync::atomic::Ordering::Relaxed) >= 10);
    assert!(metrics.admin_auth_throttled_total.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    cluster.shutdown().await;
}

/// Medium 9: unauthenticated registrations are rate-limited per address, and the bundled client
/// registers again (and sends its write once) after the cluster forgot its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_and_the_client_registers_again_after_eviction() {
    let cluster = Cluster::start(1, "register").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = cluster.addresses[0].clone();
    let mut limited = 0;
    for _ in 0..600 {
        let (status, body) = post_client(&address, &json!({"op":"register"})).await;
        if status == 429 {
            assert_eq!(body["error"], json!("rate_limited"), "{body}");
            limited += 1;
        }
    }
    assert!(limited > 0, "600 registrations in a row were never limited");
    assert!(
        cluster
            .node(1)
            .raft
            .metrics()
            .registrations_throttled_total
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );

    let mut client = cluster.client();
    client.put("k", "1").await.unwrap();
    // Evict the client's session: more registrations than the store keeps sessions.
    let sessions_max = raft_core::kv::KvConfig::default().sessions_max;
    let register = Command::register(1).encode();
    for _ in 0..=sessions_max {
        cluster.node(1).raft.apply(register.clone(), Duration::from_secs(5)).await.unwrap();
    }
    client.put("k", "2").await.expect("the client registers again after its session was evicted");
    let (_, body) = post_client(&address, &json!({"op":"get","key":"k","read":"stale"})).await;
    assert_eq!(body["value"], json!("2"));
    cluster.shutdown().await;
}

/// The payload of a masked client-to-server WebSocket frame as [`read_ws_frame`] returns it.
fn unmasked_payload(frame: &[u8]) -> Vec<u8> {
    let start = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let (mask, payload) = frame[start..].split_at(4);
    payload.iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]).collect()
}

/// Issue 11 finding 2, the Hello's address: a relay between node 2 and node 1 rewrites the
/// address node 2's Hello gives (so that node 1 would dial the relay's choice for node 2 from
/// then on). The address is bound into the Hello's proof: node 1 refuses the handshake and never
/// records the address. Once the relay stops rewriting, node 1 does record node 2's own (so the
/// refusal is what kept the rewritten one out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_rewrites_the_hello_address_is_refused() {
    use native_node::transport::{decode_frame, encode_frame, FrameKind, Hello};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;
    const REWRITTEN: &str = "203.0.113.9:7002";
    let dir = common::TempDir::new("hello-address");
    let listener1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (address1, address2) =
        (listener1.local_addr().unwrap().to_string(), listener2.local_addr().unwrap().to_string());
    let relay_address = relay.local_addr().unwrap().to_string();
    let rewrite = Arc::new(AtomicBool::new(true));
    let rewritten = Arc::new(AtomicU64::new(0));
    // The relay: node 2 reaches node 1 only through it. It forwards everything but the Hello,
    // whose address it replaces while `rewrite` holds.
    let relay_task = {
        let (address1, address2) = (address1.clone(), address2.clone());
        let (rewrite, rewritten) = (rewrite.clone(), rewritten.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = relay.accept().await else { return };
                let Ok(server) = tokio::net::TcpStream::connect(&address1).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let (rewrite, rewritten, address2) = (rewrite.clone(), rewritten.clone(), address2.clone());
                tokio::spawn(async move {
                    if !forward_upgrade_request(&mut client_read, &mut server_write).await {
                        return;
                    }
                    let mut first = true;
                    while let Some(mut frame) = read_ws_frame(&mut client_read).await {
                        if std::mem::take(&mut first) && rewrite.load(Ordering::SeqCst) {
                            let payload = unmasked_payload(&frame);
                            if let Ok(mut hello) = decode_frame::<Hello>(&payload, FrameKind::Hello) {
                                assert_eq!(
                                    hello.address.as_ref(),
                                    Some(&address2),
                                    "node 2 gives its own address"
                                );
                                hello.address = Some(REWRITTEN.into());
                                frame = masked_binary_frame(&encode_frame(FrameKind::Hello, &hello));
                                rewritten.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        if server_write.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    };
    // Node 1 alone knows no address for node 2; node 2 dials node 1 through the relay.
    let config1 = common::node_config(1, &[(NodeId(1), address1.clone())], &dir);
    let config2 =
        common::node_config(2, &[(NodeId(1), relay_address.clone()), (NodeId(2), address2.clone())], &dir);
    let node1 = native_node::server::start(config1, listener1).await.unwrap();
    let node2 = native_node::server::start(config2, listener2).await.unwrap();
    let metrics = node1.raft.metrics().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metrics.peer_handshakes_refused_total.load(Ordering::Relaxed) < 2 {
        assert_eq!(node1.transport.address(NodeId(2)), None, "node 1 took the relay's address for node 2");
        assert!(std::time::Instant::now() < deadline, "node 1 never refused a rewritten hello");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rewritten.load(Ordering::SeqCst) >= 2, "the relay rewrote no hello");
    assert_eq!(node1.transport.address(NodeId(2)), None);
    // The relay only forwards now: node 2's own address is bound, and taken.
    rewrite.store(false, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while node1.transport.address(NodeId(2)).as_deref() != Some(address2.as_str()) {
        assert!(std::time::Instant::now() < deadline, "node 1 never took node 2's own address");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay_task.abort();
    node1.shutdown().await;
    node2.shutdown().await;
}

/// A native node built before the Hello's address was bound sends an address-less proof with an
/// address: it is welcomed (so a rolling upgrade's old nodes can still dial the new ones) but its
/// address is nobody's word, and is not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_builds_hello_is_welcomed_but_its_unbound_address_is_ignored() {
    use native_node::transport::{
        decode_frame, encode_frame, Challenge, FrameKind, Hello, Transcript, Welcome,
    };
    let cluster = Cluster::start(1, "legacy-hello").await;
    cluster.wait_for_leader(LEADER_TIMEOUT).await;
    let address = &cluster.addresses[0];
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/raft")).await.unwrap();
    let first = match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap() {
        Some(Ok(WsMessage::Binary(bytes))) => bytes,
        other => panic!("no challenge: {other:?}"),
    };
    let challenge: Challenge = decode_frame(&first, FrameKind::Challenge).unwrap();
    let transcript = Transcript {
        acceptor_nonce: challenge.nonce,
        dialler_nonce: [5; 16],
        cluster_id: challenge.cluster_id.clone(),
        acceptor: challenge.node_id,
        dialler: NodeId(2),
    };
    let hello = Hello {
        cluster_id: challenge.cluster_id,
        node_id: NodeId(2),
        address: Some("203.0.113.9:7002".into()),
        nonce: [5; 16],
        mac: transcript.hello_mac(SECRET.as_bytes()),
    };
    socket.send(WsMessage::binary(encode_frame(FrameKind::Hello, &hello))).await.unwrap();
    let answer = match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap() {
        Some(Ok(WsMessage::Binary(bytes))) => bytes,
        other => panic!("no answer: {other:?}"),
    };
    let welcome: Welcome = decode_frame(&answer, FrameKind::Welcome).unwrap();
    assert!(transcript.verify_welcome(SECRET.as_bytes(), &welcome.mac));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cluster.nodes[0].as_ref().unwrap().transport.address(NodeId(2)), None);
    cluster.shutdown().await;
}
