//! Adversarial review of `RaftShared` frames (commit bdf05c4) against real nodes: what a tab
//! (authenticated with its own key) and an on-path attacker (no key) can do with the new kind
//! and with the feature byte. Unit attacks on the layout and the tag are in raft-core
//! `wire::shared::review`.

mod common;

use common::tab::join_socket_with;
use common::{Cluster, SECRET};
use futures_util::{SinkExt, StreamExt};
use native_node::client::http_admin;
use raft_core::wire::{
    decode_frame, encode_frame_with_features, part_digest, Challenge, FrameKind, Hello, Side, Transcript,
    Welcome, FEATURE_SHARED_FRAMES, PROTOCOL_VERSION, TAG_BYTES,
};
use raft_core::{Entry, EntryPayload, LogIndex, Message, MessageBody, NodeId, Term};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as Ws;

const CLUSTER: &str = "flotilla";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn invite(address: &str) -> String {
    let answer =
        http_admin(&[address.to_string()], Some(SECRET), "POST", "/admin/invite?uses=4", &[]).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let value: Value = serde_json::from_slice(&answer.body).unwrap();
    value["link"].as_str().unwrap().split_once("#join=").unwrap().1.to_string()
}

/// The next binary frame, or why there is none (a close names its reason).
async fn next_binary(socket: &mut Socket) -> Result<Vec<u8>, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Ws::Binary(bytes)))) => return Ok(bytes.to_vec()),
            Ok(Some(Ok(Ws::Close(frame)))) => return Err(format!("closed: {frame:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("closed".into()),
            Err(_) => return Err("silent for 10 s".into()),
        }
    }
}

/// Reads until the node closes the socket; panics if it keeps it open.
async fn closed(socket: &mut Socket) -> String {
    loop {
        match next_binary(socket).await {
            Ok(_) => continue,
            Err(why) if why.starts_with("silent") => panic!("the node kept the connection open"),
            Err(why) => return why,
        }
    }
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tab may send only its own progress (issue #13 item 7): a `RaftShared` frame, which can
/// only carry an AppendEntries, is refused (closed, counted malformed) although it is validly
/// tagged; one with a forged tag and 2^16 empty parts likewise. A native node never asks for
/// the kind, so it refuses it before hashing any part (review finding 2: it used to verify
/// them, so the forged one cost 2^16 digests before it was refused as unauthenticated). The
/// leader keeps its role and term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tabs_shared_frames_are_refused_and_counted() {
    let cluster = Cluster::start(3, "review-shared-tab").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let token = invite(&cluster.addresses[0]).await;
    let address = cluster.addresses[(leader - 1) as usize].clone();
    let metrics = |id: u64| {
        let metrics = cluster.node(id).raft.metrics();
        (
            metrics.peer_frames_malformed_total.load(Ordering::Relaxed),
            metrics.peer_frames_unauthenticated_total.load(Ordering::Relaxed),
        )
    };
    let term = Term(cluster.node(leader).raft.status().term);

    let (mut socket, acceptor, _, id, _, (mut sealer, _), _) =
        join_socket_with(&address, &token, CLUSTER, FEATURE_SHARED_FRAMES).await.unwrap();
    assert_eq!(acceptor, NodeId(leader));
    let before = metrics(leader);
    let head = postcard::to_allocvec(&Message {
        from: id,
        to: acceptor,
        term,
        body: MessageBody::AppendEntries {
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: Vec::new(),
            leader_commit: LogIndex(u64::MAX),
        },
    })
    .unwrap();
    let entry = Entry { term, index: LogIndex(1), payload: EntryPayload::Command(b"evil".to_vec().into()) };
    let part = postcard::to_allocvec(&entry).unwrap();
    let frame = sealer.seal_shared(&head, &[(&part[..], &part_digest(&part))]);
    socket.send(Ws::binary(frame)).await.unwrap();
    let why = closed(&mut socket).await;
    assert!(why.contains("unexpected frame kind RaftShared"), "{why}");
    wait_until("the refusal is counted", Duration::from_secs(5), || metrics(leader).0 == before.0 + 1).await;
    assert_eq!(metrics(leader).1, before.1);

    // A forged frame (no key) of many empty parts: refused by its kind, before any hashing.
    let (mut socket, _, _, _, _, _, _) =
        join_socket_with(&address, &token, CLUSTER, FEATURE_SHARED_FRAMES).await.unwrap();
    let before = metrics(leader);
    let count = 1usize << 16;
    let mut forged = vec![PROTOCOL_VERSION, FrameKind::RaftShared as u8, 0, 0, 0, 0];
    forged.extend_from_slice(&(count as u32).to_le_bytes());
    forged.extend(std::iter::repeat_n(0u8, 4 * count + TAG_BYTES));
    socket.send(Ws::binary(forged)).await.unwrap();
    let why = closed(&mut socket).await;
    assert!(why.contains("unexpected frame kind RaftShared"), "{why}");
    wait_until("the forged frame is counted", Duration::from_secs(5), || metrics(leader).0 == before.0 + 1)
        .await;
    assert_eq!(metrics(leader).1, before.1);
    assert_eq!(cluster.node(leader).raft.status().role, "leader");
    assert_eq!(cluster.node(leader).raft.status().term, term.0);
    cluster.client().put("still", "serving").await.unwrap();
    cluster.shutdown().await;
}

/// The feature byte is not under any proof: an on-path attacker could append it to a native
/// node's `Hello` (here: the test dials as stopped member 2, with the secret, and asks). Was a
/// review finding (info): the leader then sent that native peer `RaftShared` frames, which a
/// native node built before them refuses, closing the connection. Now a node honours the byte
/// from tabs only: a native peer keeps getting `Raft` frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_byte_added_to_a_native_hello_still_gets_that_native_peer_raft_frames() {
    let mut cluster = Cluster::start(3, "review-shared-native").await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = if leader == 2 { 3 } else { 2 };
    cluster.stop(follower).await;
    let address = cluster.addresses[(leader - 1) as usize].clone();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/raft")).await.unwrap();
    let challenge: Challenge =
        decode_frame(&next_binary(&mut socket).await.unwrap(), FrameKind::Challenge).unwrap();
    let transcript = Transcript {
        acceptor_nonce: challenge.nonce,
        dialler_nonce: [0x5a; 16],
        cluster_id: CLUSTER.to_string(),
        acceptor: challenge.node_id,
        dialler: NodeId(follower),
    };
    let hello = Hello {
        cluster_id: CLUSTER.to_string(),
        node_id: NodeId(follower),
        address: None,
        nonce: transcript.dialler_nonce,
        mac: transcript.hello_mac(SECRET.as_bytes()),
    };
    // What the native dialler sent, plus the byte the attacker appends.
    let frame = encode_frame_with_features(FrameKind::Hello, &hello, FEATURE_SHARED_FRAMES);
    socket.send(Ws::binary(frame)).await.unwrap();
    let welcome: Welcome =
        decode_frame(&next_binary(&mut socket).await.unwrap(), FrameKind::Welcome).unwrap();
    assert!(transcript.verify_welcome(SECRET.as_bytes(), &welcome.mac));
    let (_, mut opener) = transcript.session(SECRET.as_bytes(), Side::Dialler).split();
    let mut client = cluster.client();
    let writes = tokio::spawn(async move {
        for i in 0..50 {
            let _ = client.put(&format!("k{i}"), "v").await;
        }
    });
    let mut appends = 0;
    for _ in 0..200 {
        let Ok(frame) = next_binary(&mut socket).await else { break };
        assert_eq!(frame[1], FrameKind::Raft as u8, "a native peer was sent another kind of frame");
        let message = opener.open_message(&frame).expect("the leader's frames open in order");
        if matches!(message.body, MessageBody::AppendEntries { ref entries, .. } if !entries.is_empty()) {
            appends += 1;
            break;
        }
    }
    writes.abort();
    assert!(appends > 0, "the leader sent the native peer no entries to check");
    cluster.shutdown().await;
}
