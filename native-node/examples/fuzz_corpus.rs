//! Writes the seed corpora of the `peer_frame`, `client_request`, `wal_replay` and `protocol`
//! fuzz targets (`fuzz/corpus/<target>/`) from real traffic and real files: the frames a small
//! cluster of real nodes sends while electing a leader and replicating, the requests of the
//! client API's documentation, and log segments and snapshot files written by the real code.
//!
//! `cargo run -p native-node --example fuzz_corpus [-- <fuzz dir>]`; deterministic.

use native_node::fuzzing::{self, join_chunks};
use native_node::peer_auth::{
    decode_frame, encode_frame, encode_frame_with_version, FrameKind, Hello, JoinRefusal, Redirect, Reject,
    Side, StorageBackend, TabStatus,
};
use native_node::storage::Storage;
use native_node::wal::Wal;
use raft_core::{
    bootstrap, Config, Entry, EntryPayload, HardState, LogIndex, Membership, Message, NodeId, RaftNode,
    SnapshotMeta, Term,
};
use std::fs;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("corpus folder");
    fs::write(dir.join(name), bytes).expect("corpus file");
}

/// Every message a 3-node cluster sends while it elects, replicates 5 proposals and commits.
fn real_traffic() -> Vec<Message> {
    let voters = [NodeId(1), NodeId(2), NodeId(3)];
    let mut nodes: Vec<RaftNode> = voters
        .iter()
        .map(|&id| {
            RaftNode::new(Config::new(id, id.0), bootstrap(Membership::with_voters(voters))).expect("node")
        })
        .collect();
    let mut sent = Vec::new();
    let mut in_flight: Vec<Message> = Vec::new();
    let mut proposed = 0;
    // Node 1 leads, so that the link 1 <-> 2 of the handshake's corpus carries traffic.
    nodes[0].campaign();
    for _ in 0..400 {
        for node in nodes.iter_mut() {
            node.tick();
        }
        for _round in 0..4 {
            for node in nodes.iter_mut() {
                while node.has_ready() {
                    let ready = node.ready();
                    in_flight.extend(ready.messages);
                    in_flight.extend(ready.messages_after_persist);
                    node.advance();
                }
            }
            for message in std::mem::take(&mut in_flight) {
                sent.push(message.clone());
                if let Some(node) = nodes.iter_mut().find(|n| n.id() == message.to) {
                    let _ = node.step(message);
                }
            }
        }
        if let Some(leader) = nodes.iter_mut().find(|n| n.role() == raft_core::Role::Leader) {
            if proposed < 5 && leader.propose(bytes::Bytes::from(format!("x={proposed}"))).is_ok() {
                proposed += 1;
            }
        }
    }
    sent
}

fn entry(index: u64, term: u64, data: &str) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: EntryPayload::Command(bytes::Bytes::from(data.to_string())),
    }
}

/// `peer_frame` seeds an honest reader refuses after an honest handshake: frames replayed,
/// reordered, sealed without the secret or reflected, and messages with a forged sender, on a
/// node's connection, a tab's connection to a node and a node's connection to a tab. The
/// harness's oracles fail on these if the reader under test ever accepts one.
fn known_bad_peer_frames(dir: &Path, to_1: &[&Message], from_tab: &[Message], to_tab: &[Message]) {
    let connection = |mode: u8, handshake: &[Vec<u8>], frames: &[Vec<u8>]| -> Vec<u8> {
        let parts: Vec<&[u8]> = handshake.iter().chain(frames).map(|f| &f[..]).collect();
        [&[mode][..], &join_chunks(&parts)].concat()
    };
    let seal_all = |mut sealer: native_node::peer_auth::Sealer, messages: &[Message]| -> Vec<Vec<u8>> {
        messages.iter().map(|m| sealer.seal(FrameKind::Raft, m)).collect()
    };
    let forge_from = |m: &Message, from: u64| Message { from: NodeId(from), ..m.clone() };

    // Node 1 reading node 2.
    let hello = vec![fuzzing::honest_hello_frame()];
    let honest: Vec<Message> = to_1.iter().take(3).map(|m| (*m).clone()).collect();
    let sealed = seal_all(fuzzing::honest_session(Side::Dialler).sealer, &honest);
    let replayed = [sealed[0].clone(), sealed[0].clone(), sealed[1].clone()];
    write(dir, "bad-acceptor-replayed", &connection(0, &hello, &replayed));
    let reordered = [sealed[1].clone(), sealed[0].clone()];
    write(dir, "bad-acceptor-reordered", &connection(0, &hello, &reordered));
    let other_secret = fuzzing::honest_transcript().session(b"not the cluster secret", Side::Dialler);
    write(dir, "bad-acceptor-wrong-key", &connection(0, &hello, &seal_all(other_secret.sealer, &honest)));
    let reflected = seal_all(fuzzing::honest_session(Side::Acceptor).sealer, &honest);
    write(dir, "bad-acceptor-reflected", &connection(0, &hello, &reflected));
    let forged = [honest[0].clone(), forge_from(&honest[1], 3)];
    let forged = seal_all(fuzzing::honest_session(Side::Dialler).sealer, &forged);
    write(dir, "bad-acceptor-forged-from", &connection(0, &hello, &forged));
    // A relay's rewrite of the address node 2's Hello gives (its proof binds it).
    let mut rewritten: Hello = decode_frame(&hello[0], FrameKind::Hello).expect("the honest hello");
    rewritten.address = Some("203.0.113.9:7002".into());
    let rewritten = vec![encode_frame(FrameKind::Hello, &rewritten)];
    write(dir, "bad-acceptor-rewritten-address", &connection(0, &rewritten, &sealed));

    // Node 1 reading the admitted tab: a status, then a message claiming to be node 2's.
    let join = vec![fuzzing::honest_join_frame()];
    let status = TabStatus { backend: StorageBackend::Opfs, persistent: true, campaigns: false };
    let mut sealer = fuzzing::honest_tab_session(Side::Dialler).sealer;
    let first_status = sealer.seal(FrameKind::TabStatus, &status);
    let forged = [first_status.clone(), sealer.seal(FrameKind::Raft, &forge_from(&from_tab[0], 2))];
    write(dir, "bad-tab-acceptor-forged-from", &connection(2, &join, &forged));
    let replayed = [first_status.clone(), first_status];
    write(dir, "bad-tab-acceptor-replayed", &connection(2, &join, &replayed));

    // The tab reading node 1: a message claiming to be node 3's.
    let challenge = encode_frame(FrameKind::Challenge, &fuzzing::acceptor_challenge());
    let handshake = vec![challenge, fuzzing::honest_admitted_frame()];
    let forged = [to_tab[0].clone(), forge_from(&to_tab[1], 3)];
    let forged = seal_all(fuzzing::honest_tab_session(Side::Acceptor).sealer, &forged);
    write(dir, "bad-tab-dialler-forged-from", &connection(3, &handshake, &forged));
}

/// `message` sealed as a `RaftShared` frame, its entries in two parts, if it is an
/// AppendEntries with entries; as a `Raft` frame otherwise.
fn seal_shared_if_entries(sealer: &mut native_node::peer_auth::Sealer, message: &Message) -> Vec<u8> {
    let mut head = message.clone();
    let raft_core::MessageBody::AppendEntries { entries, .. } = &mut head.body else {
        return sealer.seal(FrameKind::Raft, message);
    };
    if entries.is_empty() {
        return sealer.seal(FrameKind::Raft, message);
    }
    let taken = std::mem::take(entries);
    let (first, second) = taken.split_at(taken.len() / 2);
    let encode = |run: &[raft_core::Entry]| {
        run.iter().fold(Vec::new(), |out, entry| postcard::to_extend(entry, out).expect("entries encode"))
    };
    let parts = [encode(first), encode(second)];
    let digests = parts.each_ref().map(|part| native_node::peer_auth::part_digest(part));
    let head = postcard::to_allocvec(&head).expect("messages encode");
    sealer.seal_shared(&head, &[(&parts[0], &digests[0]), (&parts[1], &digests[1])])
}

fn main() {
    let fuzz_dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz"));
    let corpus = fuzz_dir.join("corpus");
    let traffic = real_traffic();

    // peer_frame: an honest handshake each way, then the real frames of that link.
    let dir = corpus.join("peer_frame");
    let hello = fuzzing::honest_hello_frame();
    let welcome = fuzzing::honest_welcome_frame();
    let challenge = encode_frame(FrameKind::Challenge, &fuzzing::acceptor_challenge());
    let to_1: Vec<_> = traffic.iter().filter(|m| m.from == NodeId(2) && m.to == NodeId(1)).collect();
    let to_2: Vec<_> = traffic.iter().filter(|m| m.from == NodeId(1) && m.to == NodeId(2)).collect();
    let mut kinds_seen = std::collections::BTreeSet::new();
    // Frames after the handshake are sealed by the honest session (fixed nonces, so fixed keys):
    // node 2 (the dialler) seals what node 1's harness opens, and the other way round.
    for (k, window) in to_1.chunks(6).take(10).enumerate() {
        // Each file is a fresh connection: sequence numbers start again at 0.
        let mut dialler_sealer = fuzzing::honest_session(Side::Dialler).sealer;
        let frames: Vec<_> = window.iter().map(|m| dialler_sealer.seal(FrameKind::Raft, *m)).collect();
        let mut parts: Vec<&[u8]> = vec![&hello];
        parts.extend(frames.iter().map(|f| &f[..]));
        write(&dir, &format!("acceptor-{k:02}"), &[&[0u8][..], &join_chunks(&parts)].concat());
    }
    for message in &to_2 {
        if !kinds_seen.insert(message.body.kind_name()) {
            continue;
        }
        // Each file is a fresh connection: the first frame of the acceptor's session.
        let frame = fuzzing::honest_session(Side::Acceptor).sealer.seal(FrameKind::Raft, *message);
        let parts: Vec<&[u8]> = vec![&challenge, &welcome, &frame];
        write(
            &dir,
            &format!("dialler-{}", message.body.kind_name()),
            &[&[1u8][..], &join_chunks(&parts)].concat(),
        );
    }
    // Node 2 built before address binding: accepted, its address ignored.
    let legacy = fuzzing::legacy_hello_frame();
    let mut dialler_sealer = fuzzing::honest_session(Side::Dialler).sealer;
    let frames: Vec<_> = to_1.iter().take(6).map(|m| dialler_sealer.seal(FrameKind::Raft, *m)).collect();
    let mut parts: Vec<&[u8]> = vec![&legacy];
    parts.extend(frames.iter().map(|f| &f[..]));
    write(&dir, "acceptor-legacy-hello", &[&[0u8][..], &join_chunks(&parts)].concat());
    let reject = encode_frame(FrameKind::Reject, &Reject { reason: "wrong cluster secret".into() });
    let old_version = encode_frame_with_version(0, FrameKind::Hello, &());
    write(&dir, "acceptor-reject", &[&[0u8][..], &join_chunks(&[&reject])].concat());
    write(&dir, "acceptor-old-version", &[&[0u8][..], &join_chunks(&[&old_version])].concat());
    write(&dir, "dialler-reject", &[&[1u8][..], &join_chunks(&[&challenge, &reject])].concat());

    // Browser tabs (mode 2: node 1 reads a tab; mode 3: a tab reads node 1): a join under an
    // honest invitation or an admitted tab's hello, then its status and real learner traffic;
    // the node's Admitted, Redirect and Reject, then real traffic to the tab.
    let tab = fuzzing::TAB_ID;
    let retarget = |m: &Message, from: NodeId, to: NodeId| Message { from, to, ..m.clone() };
    let from_tab: Vec<Message> = to_1.iter().take(6).map(|m| retarget(m, tab, NodeId(1))).collect();
    let to_tab: Vec<Message> = to_2.iter().take(6).map(|m| retarget(m, NodeId(1), tab)).collect();
    let statuses = [
        TabStatus { backend: StorageBackend::Opfs, persistent: true, campaigns: false },
        TabStatus { backend: StorageBackend::Memory, persistent: false, campaigns: true },
        TabStatus { backend: StorageBackend::IndexedDb, persistent: false, campaigns: false },
    ];
    for (k, first) in [fuzzing::honest_join_frame(), fuzzing::honest_tab_hello_frame()].iter().enumerate() {
        for (j, status) in statuses.iter().enumerate() {
            let mut sealer = fuzzing::honest_tab_session(Side::Dialler).sealer;
            let mut frames = vec![sealer.seal(FrameKind::TabStatus, status)];
            frames.extend(from_tab.iter().map(|m| sealer.seal(FrameKind::Raft, m)));
            let mut parts: Vec<&[u8]> = vec![first];
            parts.extend(frames.iter().map(|f| &f[..]));
            write(&dir, &format!("tab-acceptor-{k}-{j}"), &[&[2u8][..], &join_chunks(&parts)].concat());
        }
    }
    let mut sealer = fuzzing::honest_tab_session(Side::Acceptor).sealer;
    let frames: Vec<Vec<u8>> = to_tab.iter().map(|m| sealer.seal(FrameKind::Raft, m)).collect();
    // Admitted naming the members (this build), and in the two-field form of older nodes.
    let answers = [
        ("tab-dialler-admitted", fuzzing::honest_admitted_frame()),
        ("tab-dialler-admitted-legacy", fuzzing::honest_admitted_frame_without_members()),
    ];
    for (name, admitted) in answers {
        let mut parts: Vec<&[u8]> = vec![&challenge, &admitted];
        parts.extend(frames.iter().map(|f| &f[..]));
        write(&dir, name, &[&[3u8][..], &join_chunks(&parts)].concat());
    }
    // The same traffic with every AppendEntries that carries entries sealed as `RaftShared`
    // (what this build's leader sends a tab that asks for it), its entries in two parts.
    let mut sealer = fuzzing::honest_tab_session(Side::Acceptor).sealer;
    let shared: Vec<Vec<u8>> = to_tab.iter().map(|m| seal_shared_if_entries(&mut sealer, m)).collect();
    let admitted = fuzzing::honest_admitted_frame();
    let mut parts: Vec<&[u8]> = vec![&challenge, &admitted];
    parts.extend(shared.iter().map(|f| &f[..]));
    write(&dir, "tab-dialler-admitted-shared", &[&[3u8][..], &join_chunks(&parts)].concat());
    let mut sealer = fuzzing::honest_session(Side::Acceptor).sealer;
    let shared: Vec<Vec<u8>> = to_2.iter().take(6).map(|m| seal_shared_if_entries(&mut sealer, m)).collect();
    let mut parts: Vec<&[u8]> = vec![&challenge, &welcome];
    parts.extend(shared.iter().map(|f| &f[..]));
    write(&dir, "dialler-shared", &[&[1u8][..], &join_chunks(&parts)].concat());
    let redirect = encode_frame(
        FrameKind::Redirect,
        &Redirect { leader_id: NodeId(2), address: "127.0.0.1:7002".into() },
    );
    write(&dir, "tab-dialler-redirect", &[&[3u8][..], &join_chunks(&[&challenge, &redirect])].concat());
    let used_up = encode_frame(FrameKind::Reject, &JoinRefusal::UsedUp.reject());
    write(&dir, "tab-dialler-refused", &[&[3u8][..], &join_chunks(&[&challenge, &used_up])].concat());
    known_bad_peer_frames(&dir, &to_1, &from_tab, &to_tab);

    // client_request: the documented requests, the /v1/kv calls, admin requests.
    let dir = corpus.join("client_request");
    let json = [
        r#"{"id":7,"op":"put","key":"k","value":"v","session":{"client_id":3,"sequence":12}}"#,
        r#"{"op":"get","key":"k","read":"linearizable"}"#,
        r#"{"op":"get","key":"k","read":"stale"}"#,
        r#"{"op":"del","key":"k"}"#,
        r#"{"op":"cas","key":"k","expected":null,"value":"v"}"#,
        r#"{"op":"cas","key":"k","expected":"a","value":"b","session":{"client_id":1,"sequence":1}}"#,
        r#"{"op":"list","prefix":"a","limit":10,"read":"lease"}"#,
        r#"{"op":"register"}"#,
        r#"{"op":"put","key":"","value":""}"#,
        r#"[1,2,3]"#,
        r#"{"key":"k"}"#,
    ];
    for (k, text) in json.iter().enumerate() {
        write(&dir, &format!("client-{k:02}"), &[b"\x00", text.as_bytes()].concat());
    }
    let paths: [&[u8]; 5] = [b"GET\nkey", b"PUT\nkey\nvalue", b"DELETE\nkey", b"PUT\nk\n\xff", b"POST\nk"];
    for (k, text) in paths.iter().enumerate() {
        write(&dir, &format!("kv-path-{k:02}"), &[b"\x01", *text].concat());
    }
    // Mode 2: `bearer \n JSON`, over separate credentials (peer, admin, client token).
    let admin = [
        ("fuzz-admin-secret", r#"{"op":"status"}"#),
        ("fuzz-client-token", r#"{"op":"status","secret":"fuzz-admin-secret"}"#),
        (
            "fuzz-client-token",
            r#"{"op":"add_voter","node":4,"address":"127.0.0.1:7004","secret":"fuzz-admin-secret"}"#,
        ),
        ("fuzz-client-token", r#"{"op":"add_nonvoter","node":5,"address":"h:1","secret":"wrong"}"#),
        ("fuzz-client-token", r#"{"op":"demote","node":2,"secret":"fuzz-cluster-secret"}"#),
        ("fuzz-admin-secret", r#"{"op":"remove","node":3}"#),
        ("fuzz-client-token", r#"{"op":"transfer"}"#),
        ("fuzz-cluster-secret", r#"{"op":"snapshot","secret":"fuzz-admin-secret"}"#),
        ("fuzz-client-token", r#"{"op":"put","key":"k","value":"v"}"#),
        ("", r#"{"op":"get","key":"k"}"#),
    ];
    for (k, (bearer, text)) in admin.iter().enumerate() {
        write(&dir, &format!("admin-{k:02}"), &[b"\x02", bearer.as_bytes(), b"\n", text.as_bytes()].concat());
    }

    // wal_replay: segments and snapshot files written by the real code.
    let dir = corpus.join("wal_replay");
    let scratch = std::env::temp_dir().join(format!("flotilla-fuzz-corpus-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    {
        let (mut wal, _) = Wal::open(&scratch, 1 << 14).expect("wal");
        let hs = |term| HardState { term: Term(term), voted_for: Some(NodeId(1)), commit: LogIndex(0) };
        wal.append(&hs(1), false, &[entry(1, 1, "a"), entry(2, 1, "b")]).expect("append");
        wal.append(&hs(1), false, &[entry(3, 1, "c")]).expect("append");
        wal.append(&hs(2), false, &[entry(3, 2, "c2")]).expect("append");
        wal.append(&hs(2), false, &[]).expect("append");
        let membership = Membership::with_voters([NodeId(1), NodeId(2)]);
        let config = Entry {
            term: Term(2),
            index: LogIndex(4),
            payload: EntryPayload::Membership(Box::new(membership)),
        };
        wal.append(&hs(2), false, &[config]).expect("append");
        wal.append(&hs(3), true, &[entry(10, 3, "after snapshot")]).expect("append");
    }
    let segment = fs::read(scratch.join("wal").join(format!("wal-{:020}.log", 1))).expect("segment");
    let end = segment.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let used = &segment[..(end + 16).min(segment.len())];
    write(&dir, "segment", &[&[0u8][..], used].concat());
    write(&dir, "segment-torn", &[&[0u8][..], &used[..end - 5], &[0u8; 21][..]].concat());
    write(&dir, "segment-two", &[&[1u8, 128][..], used].concat());
    let meta = SnapshotMeta {
        index: LogIndex(9),
        term: Term(3),
        membership: Membership::with_voters([NodeId(1)]),
        membership_index: LogIndex(1),
    };
    write(&dir, "snapshot", &[&[2u8][..], &Storage::encode_snapshot(&meta, b"state bytes")].concat());
    write(&dir, "snapshot-empty", &[&[2u8][..], &Storage::encode_snapshot(&meta, b"")].concat());
    let _ = fs::remove_dir_all(&scratch);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect()
    };
    for k in 0..8 {
        write(&dir, &format!("structured-{k}"), &[&[3u8][..], &random(64 + 32 * k)].concat());
    }

    // protocol: the harness reads its steps with `arbitrary`; seeds are random step streams,
    // honest (even first byte) and forged (odd), and forged ones carrying real messages.
    let dir = corpus.join("protocol");
    for k in 0..12 {
        write(&dir, &format!("honest-{k:02}"), &[&[0u8][..], &random(256 + 64 * k)].concat());
    }
    for k in 0..6 {
        write(&dir, &format!("forged-{k:02}"), &[&[1u8][..], &random(256 + 64 * k)].concat());
    }
    println!("wrote the corpora under {}", corpus.display());
}
