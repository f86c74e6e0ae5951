//! Fuzz harnesses: one function per `cargo fuzz` target (see `fuzz/`), each taking the
//! fuzzer's bytes. They live here, in the library, so that the targets are one-line shims and an
//! ordinary stable `cargo test` (`tests/fuzz_regressions.rs`) replays the inputs that once
//! failed through exactly the same code. Each harness panics only when an oracle is broken;
//! any other panic is a bug in the code under test.
//!
//! Not part of the node's API: hidden from the docs, and free to change with the fuzzers.

mod frames;
mod tabs;

pub use tabs::{
    honest_admitted_frame, honest_admitted_frame_without_members, honest_invitation, honest_join_frame,
    honest_tab_hello_frame, honest_tab_key, honest_tab_session, tab_transcript, JOIN_NONCE, NOW_UNIX_MS,
    TAB_ID,
};

use crate::admission::AdminGuard;
use crate::api;
use crate::credentials::{ClientGate, Credentials};
use crate::kv::{encode_query, KvStateMachine, StateMachine};
use crate::peer_auth::{
    decode_frame, encode_frame, BoundIncarnations, Challenge, FrameKind, Hello, HelloProof, Session, Side,
    Transcript, Welcome,
};
use crate::storage::Storage;
use crate::transport::TransportConfig;
use crate::wal::{encode_record, replay_bytes, WalState};
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use raft_core::kv::KvConfig;
use raft_core::sim::{Checker, NodeTrack};
use raft_core::{
    bootstrap, Config, Entry, EntryPayload, HardState, LogIndex, Membership, MembershipChange, Message,
    NodeId, RaftNode, ReadMode, Term,
};
use std::collections::BTreeSet;

/// The cluster the peer-frame harness plays in.
pub const CLUSTER_ID: &str = "fuzz";
/// Its (peer) secret; the fuzzer may find it in the seed corpus, never guess it.
pub const SECRET: &[u8] = b"fuzz-cluster-secret";
/// The admin secret of the `client_request` harness's separate credentials.
pub const ADMIN_SECRET: &[u8] = b"fuzz-admin-secret";
/// The client token of the `client_request` harness's separate credentials.
pub const CLIENT_TOKEN: &[u8] = b"fuzz-client-token";
/// The nonce of the acceptor's (node 1's) Challenge: fixed, so that a recorded Hello stays valid.
pub const CHALLENGE_NONCE: [u8; 16] = *b"challenge-nonce!";
/// The nonce of the dialler's (node 2's) Hello.
pub const HELLO_NONCE: [u8; 16] = *b"hello-nonce-0002";

/// Splits the rest of a harness input into chunks: `[length: u16 LE][bytes]`, repeated; a short
/// last chunk takes what is left.
pub fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let length = u16::from_le_bytes([data[0], data[1]]) as usize;
        let rest = &data[2..];
        let length = length.min(rest.len());
        out.push(&rest[..length]);
        data = &rest[length..];
    }
    out
}

/// Joins chunks into the form [`chunks`] splits (for the corpus generator).
pub fn join_chunks(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(&(part.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&part[..part.len().min(u16::MAX as usize)]);
    }
    out
}

/// The acceptor's (node 1's) transport config.
pub fn acceptor_config() -> TransportConfig {
    TransportConfig::new(NodeId(1), CLUSTER_ID.into(), SECRET.to_vec(), Some("127.0.0.1:7001".into()))
}

/// The dialler's (node 2's) transport config.
pub fn dialler_config() -> TransportConfig {
    TransportConfig::new(NodeId(2), CLUSTER_ID.into(), SECRET.to_vec(), Some("127.0.0.1:7002".into()))
}

/// The Challenge node 1 sends.
pub fn acceptor_challenge() -> Challenge {
    Challenge { cluster_id: CLUSTER_ID.into(), node_id: NodeId(1), nonce: CHALLENGE_NONCE }
}

/// The transcript of the honest handshake between node 2 (dialler, [`HELLO_NONCE`]) and node 1
/// (acceptor, [`CHALLENGE_NONCE`]).
pub fn honest_transcript() -> Transcript {
    Transcript {
        acceptor_nonce: CHALLENGE_NONCE,
        dialler_nonce: HELLO_NONCE,
        cluster_id: CLUSTER_ID.into(),
        acceptor: NodeId(1),
        dialler: NodeId(2),
    }
}

/// The session of the honest handshake, seen from `side` (its sealer makes the frames the other
/// side's harness accepts; for the corpus).
pub fn honest_session(side: Side) -> Session {
    honest_transcript().session(SECRET, side)
}

/// `peer_frame`: the handshake of [`crate::peer_auth`], checked as [`crate::transport`] checks
/// it, then, if the peer authenticated, sealed frames on the connection, each opened by the
/// session's [`crate::peer_auth::Opener`], checked for sender and recipient by the transport's
/// own check ([`crate::transport::check_addressed`]), and stepped into a node. Input: `[mode][chunk]...` (see [`chunks`]); by `mode % 4`:
/// 0. a node as acceptor of a node: Hello, then Raft frames;
/// 1. a node as dialler: Challenge, Welcome, then Raft frames;
/// 2. a node as acceptor of a browser tab: Join (an invitation) or an admitted tab's Hello,
///    then Raft and TabStatus frames (see `tabs`);
/// 3. a browser tab as dialler: Challenge, the answer to its join (Admitted, Redirect or
///    Reject), then Raft frames.
///
/// Oracles: a peer is accepted only with the MAC only the secret (or the admitted tab's key)
/// makes over this connection's transcript, a tab only with an invitation only the invite key
/// signs; a frame is opened only if it is, byte for byte, what the authenticated peer's sealer
/// makes at the next sequence number (so never one sealed under another key, replayed,
/// reordered or reflected), and the transport's address check delivers exactly the messages
/// that name the authenticated peer as sender and this node as recipient (see `frames`, whose
/// tests show each oracle failing on a known-bad reader); nothing panics.
pub fn peer_frame(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let parts = chunks(rest);
    let mut parts = parts.into_iter();
    match mode % 4 {
        2 => return tabs::tab_acceptor(parts),
        3 => return tabs::tab_dialler(parts),
        _ => {}
    }
    let (transcript, side) = if mode % 4 == 0 {
        // Acceptor (node 1), as `Transport::accept_handshake` on main.
        let config = acceptor_config();
        let challenge = acceptor_challenge();
        let Some(frame) = parts.next() else { return };
        let Ok(hello) = decode_frame::<Hello>(frame, FrameKind::Hello) else { return };
        if hello.cluster_id != config.cluster_id || hello.node_id == config.node_id {
            return;
        }
        let transcript = Transcript {
            acceptor_nonce: challenge.nonce,
            dialler_nonce: hello.nonce,
            cluster_id: config.cluster_id.clone(),
            acceptor: config.node_id,
            dialler: hello.node_id,
        };
        let Some(proof) = transcript.check_hello(SECRET, &hello, BoundIncarnations::NONE) else { return };
        // Oracle: the accepted Hello carries exactly the MAC an honest holder of the secret
        // makes for this transcript and the address it gives, and the Welcome we answer with
        // satisfies that dialler. An address the dialler's proof does not bind (an old build's
        // address-less proof) is never taken as its word.
        let address = hello.address.as_deref();
        match proof {
            HelloProof::Addressed => {
                assert_eq!(
                    hello.mac,
                    transcript.hello_mac_bound(SECRET, BoundIncarnations::NONE, address),
                    "accepted a hello without the secret's proof over its address"
                );
                // Independent of the MAC code: only the honest node 2 holds the secret here, and
                // it gives its own address, so any other address taken is a relay's.
                let honest = dialler_config().advertise_address;
                assert!(
                    address.is_none() || address == honest.as_deref(),
                    "took an address the dialler never gave: {address:?}"
                );
            }
            HelloProof::AddressNotBound => {
                assert!(address.is_some(), "an address-less hello whose proof binds no address");
                assert_eq!(
                    hello.mac,
                    transcript.hello_mac(SECRET),
                    "accepted a hello without the secret's proof"
                );
                assert!(
                    !transcript.verify_hello_bound(SECRET, &hello.mac, BoundIncarnations::NONE, address),
                    "an address-less proof passes for an address's"
                );
            }
        }
        let welcome = Welcome { mac: transcript.welcome_mac(SECRET) };
        let welcome_frame = encode_frame(FrameKind::Welcome, &welcome);
        let decoded: Welcome = decode_frame(&welcome_frame, FrameKind::Welcome).expect("our own welcome");
        assert!(transcript.verify_welcome(SECRET, &decoded.mac), "an honest dialler refuses our welcome");
        (transcript, Side::Acceptor)
    } else {
        // Dialler (node 2), as `transport::dial` on main.
        let config = dialler_config();
        let Some(frame) = parts.next() else { return };
        let Ok(challenge) = decode_frame::<Challenge>(frame, FrameKind::Challenge) else { return };
        if challenge.cluster_id != config.cluster_id {
            return;
        }
        let transcript = Transcript {
            acceptor_nonce: challenge.nonce,
            dialler_nonce: HELLO_NONCE,
            cluster_id: config.cluster_id.clone(),
            acceptor: challenge.node_id,
            dialler: config.node_id,
        };
        let Some(frame) = parts.next() else { return };
        let Ok(welcome) = decode_frame::<Welcome>(frame, FrameKind::Welcome) else { return };
        if !transcript.verify_welcome(SECRET, &welcome.mac) {
            return;
        }
        // Oracle: the accepted Welcome carries the MAC only an acceptor with the secret makes,
        // and it is no Hello proof (a reflected proof must not pass).
        assert_eq!(
            welcome.mac,
            transcript.welcome_mac(SECRET),
            "accepted a welcome without the secret's proof"
        );
        assert!(!transcript.verify_hello(SECRET, &welcome.mac), "a welcome proof passes as a hello proof");
        assert!(
            !transcript.verify_hello_bound(
                SECRET,
                &welcome.mac,
                BoundIncarnations::NONE,
                config.advertise_address.as_deref()
            ),
            "a welcome proof passes as an addressed hello proof"
        );
        (transcript, Side::Dialler)
    };
    // Authenticated: sealed Raft frames, read as `Transport::deliver` reads a node's, delivered
    // to a real node. The connection closes at the first bad frame (tag, body, sender or
    // recipient).
    let mut opener = transcript.session(SECRET, side).opener;
    let connection = frames::Connection::new(&transcript, SECRET, side);
    let me = connection.me;
    let messages = connection.read(frames::open_raft(&mut opener), parts);
    deliver_frames(me, messages);
}

/// Steps the messages a connection delivered into a real node `me` of a three-voter cluster.
fn deliver_frames(me: NodeId, messages: Vec<Message>) {
    if messages.is_empty() {
        return;
    }
    let voters = [NodeId(1), NodeId(2), NodeId(3)];
    let Ok(mut node) = RaftNode::new(Config::new(me, 7), bootstrap(Membership::with_voters(voters))) else {
        return;
    };
    for message in messages {
        let _ = node.step(message);
        let _ = node.ready();
        node.advance();
    }
}

/// `client_request`: one client request, as `/client` (JSON, first byte 0), `/v1/kv/{key}`
/// (first byte 1: the rest is `method \n key \n body`) or a request with credentials (first
/// byte 2: the rest is `bearer \n JSON`). A parsed request is checked and, for writes, encoded
/// and applied to a fresh key-value state machine, as the node would after commit; for reads,
/// queried.
///
/// Credentials are checked as the node checks them, with separate ones
/// ([`crate::credentials`]): the client API's gate ([`ClientGate`], client token or admin
/// secret, presented as a bearer) and, for admin operations, the admin guard ([`AdminGuard`],
/// the request's `secret` or the bearer).
///
/// Oracles: nothing panics; a command survives its encoding; the client API opens only to the
/// client token or the admin secret, admin operations only to the admin secret, and the peer
/// secret opens neither.
pub fn client_request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (bearer, rest) = match mode % 3 {
        2 => match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        },
        _ => (None, rest),
    };
    if mode % 3 == 2 && !client_gate_allows(bearer) {
        return;
    }
    let request = match mode % 3 {
        0 | 2 => match api::parse_request(rest) {
            Ok(request) => request,
            Err(message) => {
                assert!(!message.is_empty());
                return;
            }
        },
        _ => {
            let mut fields = rest.splitn(3, |&b| b == b'\n');
            let method = fields.next().unwrap_or_default();
            let key = fields.next().unwrap_or_default();
            let body = fields.next().unwrap_or_default();
            let Ok(key) = std::str::from_utf8(key) else { return };
            match api::kv_path_request(method, key.to_string(), crate::raft::ReadMode::default(), body) {
                Ok(request) => request,
                Err(_) => return,
            }
        }
    };
    if mode % 3 == 2 && request.operation.is_admin() {
        // As `server::execute_request`: the request's secret, else the bearer.
        let given = request.secret.as_deref().map(str::as_bytes).or(bearer).unwrap_or_default();
        let guard = AdminGuard::new(ADMIN_SECRET);
        let metrics = crate::metrics::Metrics::default();
        if guard.check(given, None, &metrics).is_err() {
            assert_ne!(given, ADMIN_SECRET, "the admin secret refused");
            return;
        }
        assert_eq!(given, ADMIN_SECRET, "an admin operation authorized without the admin secret");
    }
    let operation = request.operation;
    // Oracle: whatever is neither a key-value write nor a read is an admin operation, so it
    // went through the admin guard above (a new operation left out of `is_admin` fails here).
    let plain = operation.command(0).is_some() || operation.query().is_some();
    assert_eq!(operation.is_admin(), !plain, "{operation:?} is classified otherwise");
    let Ok(mut machine) = KvStateMachine::new(KvConfig::default()) else { return };
    if let Some(command) = operation.command(1_000) {
        if command.validate().is_err() {
            return;
        }
        let encoded = command.encode();
        let decoded = raft_core::kv::Command::decode(&encoded).expect("a validated command decodes");
        assert_eq!(decoded.encode(), encoded, "a command changed in its encoding");
        let register = raft_core::kv::Command::register(1_000).encode();
        for (index, payload) in [register, encoded].into_iter().enumerate() {
            let entry = Entry {
                term: Term(1),
                index: LogIndex(index as u64 + 1),
                payload: EntryPayload::Command(payload),
            };
            let _ = machine.apply(&entry);
        }
    }
    if let Some((query, _mode)) = operation.query() {
        if query.validate().is_ok() {
            let _ = machine.query(&encode_query(&query));
        }
    }
}

/// The client API's gate over the harness's separate credentials, with its oracle.
fn client_gate_allows(bearer: Option<&[u8]>) -> bool {
    let credentials =
        Credentials::separate(SECRET.to_vec(), ADMIN_SECRET.to_vec(), Some(CLIENT_TOKEN.to_vec()));
    let allowed = ClientGate::new(&credentials).allows(bearer);
    let expected = bearer.is_some_and(|given| given == CLIENT_TOKEN || given == ADMIN_SECRET);
    assert_eq!(allowed, expected, "the client gate decided otherwise for {bearer:?}");
    allowed
}

/// One batch the structured WAL mode writes.
#[derive(Arbitrary, Debug)]
struct FuzzBatch {
    term: u8,
    voted_for: Option<u8>,
    commit: u8,
    reset: bool,
    first_index: u8,
    entries: Vec<(u8, Vec<u8>)>,
}

/// One corruption the structured WAL mode applies to what was written.
#[derive(Arbitrary, Debug)]
enum Damage {
    /// Flip bits of one byte.
    Flip { at: u16, mask: u8 },
    /// Cut the data at this offset and zero what follows (a torn write).
    Tear { at: u16 },
    /// Zero a range (a lost sector).
    Zero { at: u16, bytes: u8 },
}

#[derive(Arbitrary, Debug)]
struct WalCase {
    batches: Vec<FuzzBatch>,
    damage: Option<Damage>,
    /// Zeros after the data (preallocated space).
    slack: u8,
    /// Split the records over two segments after this many.
    split: Option<u8>,
}

fn batch_parts(batch: &FuzzBatch) -> (HardState, bool, Vec<Entry>) {
    let hard_state = HardState {
        term: Term(u64::from(batch.term)),
        voted_for: batch.voted_for.map(|id| NodeId(u64::from(id))),
        commit: LogIndex(u64::from(batch.commit)),
    };
    let entries = batch
        .entries
        .iter()
        .take(8)
        .enumerate()
        .map(|(k, (term, data))| Entry {
            term: Term(u64::from(*term)),
            index: LogIndex(u64::from(batch.first_index) + 1 + k as u64),
            payload: if data.is_empty() {
                EntryPayload::Noop
            } else {
                EntryPayload::Command(Bytes::copy_from_slice(&data[..data.len().min(64)]))
            },
        })
        .collect();
    (hard_state, batch.reset, entries)
}

fn same_state(a: &WalState, b: &WalState) -> bool {
    a.hard_state == b.hard_state && a.entries == b.entries
}

/// `wal_replay`: WAL segments and snapshot files. First byte 0: the rest is one segment, replayed
/// as the last one. 1: two segments split at the next byte's position. 2: a snapshot file.
/// 3: structured: batches are written as the log writes them, then maybe damaged; a replay must
/// then give exactly the state of a prefix of the batches, refuse to start, and never drop a
/// record written before the damage.
pub fn wal_replay(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
        0 => {
            let _ = replay_bytes(&[rest]);
        }
        1 => {
            let Some((&cut, rest)) = rest.split_first() else { return };
            let at = (usize::from(cut) * rest.len()) / 256;
            let _ = replay_bytes(&[&rest[..at], &rest[at..]]);
        }
        2 => {
            if let Ok((meta, snapshot)) = Storage::decode_snapshot(rest, "fuzz") {
                // Oracle: what was accepted is what such a file holds, byte for byte.
                assert_eq!(
                    Storage::encode_snapshot(&meta, &snapshot),
                    rest,
                    "a snapshot file accepted but not as written"
                );
            }
        }
        _ => wal_structured(rest),
    }
}

fn wal_structured(data: &[u8]) {
    let mut unstructured = Unstructured::new(data);
    let Ok(case) = WalCase::arbitrary(&mut unstructured) else { return };
    // What each prefix of the batches replays to, for the records the log accepts on append.
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut prefixes: Vec<WalState> = vec![WalState::default()];
    for batch in case.batches.iter().take(16) {
        let (hard_state, reset, entries) = batch_parts(batch);
        let Ok(record) = encode_record(&hard_state, reset, &entries) else { return };
        let mut candidate = records.clone();
        candidate.push(record.clone());
        let joined: Vec<u8> = candidate.concat();
        // Batches the log itself would refuse to replay (not contiguous) are not written.
        match replay_bytes(&[&joined]) {
            Ok((state, None)) => {
                records.push(record);
                prefixes.push(state);
            }
            _ => continue,
        }
    }
    let ends: Vec<usize> = records
        .iter()
        .scan(0, |end, r| {
            *end += r.len();
            Some(*end)
        })
        .collect();
    let mut bytes: Vec<u8> = records.concat();
    bytes.extend(std::iter::repeat_n(0u8, usize::from(case.slack) + 8));
    let first_damaged = match case.damage {
        None => None,
        Some(Damage::Flip { at, mask }) => {
            let at = usize::from(at) % bytes.len();
            bytes[at] ^= mask;
            (mask != 0).then_some(at)
        }
        Some(Damage::Tear { at }) => {
            let at = usize::from(at) % bytes.len();
            let changed = bytes[at..].iter().position(|&b| b != 0).map(|k| at + k);
            bytes[at..].iter_mut().for_each(|b| *b = 0);
            changed
        }
        Some(Damage::Zero { at, bytes: length }) => {
            let at = usize::from(at) % bytes.len();
            let end = (at + usize::from(length)).min(bytes.len());
            let changed = bytes[at..end].iter().position(|&b| b != 0).map(|k| at + k);
            bytes[at..end].iter_mut().for_each(|b| *b = 0);
            changed
        }
    };
    // Records that end before the first damaged byte are intact; they must all be replayed.
    let intact = first_damaged.map_or(records.len(), |at| ends.iter().take_while(|&&end| end <= at).count());
    let result = match case.split.map(|k| usize::from(k) % (records.len() + 1)) {
        Some(k) if k > 0 && k < records.len() => {
            let at = ends[k - 1];
            replay_bytes(&[&bytes[..at], &bytes[at..]])
        }
        _ => replay_bytes(&[&bytes]),
    };
    if let Ok((state, _torn)) = result {
        // Never a record accepted that was not written (checksums).
        let matched = prefixes.iter().rposition(|prefix| same_state(prefix, &state));
        let Some(count) = matched else {
            panic!(
                "replay accepted a state no prefix of the written records gives (damage {:?})",
                case.damage
            );
        };
        // Never a silent drop of a record written whole before the damage.
        // Flips included: the header checksum refuses a flipped length instead of taking the
        // record for a torn write.
        assert!(
            count >= intact || same_state(&prefixes[count], &prefixes[intact]),
            "replay dropped record {count} of {intact} intact ones (damage {:?})",
            case.damage
        );
    }
}

/// One step of the protocol harness.
#[derive(Arbitrary, Debug)]
enum Step {
    /// A node's clock ticks.
    Tick(u8),
    /// Several ticks of every node.
    TickAll(u8),
    /// Deliver (and remove) the in-flight message at this position.
    Deliver(u8),
    /// Deliver a copy, keeping the original in flight (duplication).
    Duplicate(u8),
    /// Lose the in-flight message at this position.
    Drop(u8),
    /// Deliver everything in flight, oldest first.
    Flush,
    /// A client proposes to a node.
    Propose(u8, Vec<u8>),
    /// A client reads through a node.
    Read(u8, u8),
    /// A membership change asked of a node.
    Change(u8, u8, u8),
    /// A node's election timer fires.
    Campaign(u8),
    /// A node is asked to hand leadership over.
    Transfer(u8, Option<u8>),
    /// Structurally arbitrary message bytes (postcard) delivered to a node. Only in the
    /// "invalid" mode.
    Forged(u8, Vec<u8>),
}

/// Servers of the protocol harness.
const PROTOCOL_NODES: u64 = 3;
/// Servers that may be added by membership changes (ids above `PROTOCOL_NODES`).
const PROTOCOL_NODES_MAX: u64 = 5;
/// Messages in flight, at most; the oldest are lost beyond it.
const IN_FLIGHT_MAX: usize = 256;
/// Steps per input, at most.
const STEPS_MAX: usize = 512;

struct Cluster {
    nodes: Vec<RaftNode>,
    tracks: Vec<NodeTrack>,
    checker: Checker,
    in_flight: Vec<Message>,
    time_ms: u64,
}

impl Cluster {
    fn new() -> Option<Cluster> {
        let voters: Vec<NodeId> = (1..=PROTOCOL_NODES).map(NodeId).collect();
        let mut nodes = Vec::new();
        for id in 1..=PROTOCOL_NODES_MAX {
            // Every server starts from the same bootstrap configuration, as in the simulator;
            // the spare ones are not in it, so they wait to be added.
            let restored = bootstrap(Membership::with_voters(voters.clone()));
            nodes.push(RaftNode::new(Config::new(NodeId(id), id), restored).ok()?);
        }
        let mut cluster = Cluster {
            tracks: (0..nodes.len()).map(|_| NodeTrack::default()).collect(),
            nodes,
            checker: Checker::new(),
            in_flight: Vec::new(),
            time_ms: 0,
        };
        for k in 0..cluster.nodes.len() {
            let entries = cluster.nodes[k].entries().to_vec();
            cluster.checker.node_started(&mut cluster.tracks[k], None, &entries, 0);
        }
        Some(cluster)
    }

    fn node_index(&self, id: u8) -> usize {
        usize::from(id) % self.nodes.len()
    }

    /// Runs a node's `Ready` as a driver would: persist (the checker sees the entries), then
    /// send, then apply.
    fn drain(&mut self, k: usize) {
        while self.nodes[k].has_ready() {
            let ready = self.nodes[k].ready();
            self.checker.entries_appended(&mut self.tracks[k], &ready.entries, self.time_ms);
            self.in_flight.extend(ready.messages);
            self.in_flight.extend(ready.messages_after_persist);
            self.nodes[k].advance();
        }
        if self.in_flight.len() > IN_FLIGHT_MAX {
            let excess = self.in_flight.len() - IN_FLIGHT_MAX;
            self.in_flight.drain(..excess);
        }
        let node = &self.nodes[k];
        let id = node.id();
        self.checker.observe_node(
            id,
            &mut self.tracks[k],
            node.role() == raft_core::Role::Leader,
            node.term(),
            node.commit_index(),
            |index| node.term_at(index),
            node.snapshot_index(),
            self.time_ms,
        );
    }

    fn deliver(&mut self, message: Message) {
        let Some(k) = self.nodes.iter().position(|node| node.id() == message.to) else { return };
        let _ = self.nodes[k].step(message);
        self.drain(k);
    }

    fn check(&self, step: &Step) {
        if let Some(violation) = self.checker.violations().first() {
            panic!("safety violation after {step:?}: {violation:?}");
        }
        for node in &self.nodes {
            assert!(node.commit_index() <= node.last_index(), "node {} commits past its log", node.id());
            assert!(node.applied_index() <= node.commit_index(), "node {} applies past commit", node.id());
        }
    }
}

/// `protocol`: a small cluster of real `RaftNode`s driven by an arbitrary sequence of ticks,
/// proposals, reads, membership changes and message deliveries. First byte even: the honest
/// mode; odd: the forged mode.
///
/// **Why two modes.** A message is the sender's word: a forged AppendEntries that claims a
/// higher term is, to its recipient, indistinguishable from a real new leader's, and obeying it
/// is correct Raft. Stopping forgeries is the transport's job (authenticated peers, and a frame
/// whose `from` is not the connection's peer is refused: see [`peer_frame`]). So:
/// - **honest** (even first byte): every message delivered is a copy of one a real node sent,
///   delivered late, out of order, twice or never, which Raft must survive (an honest-but-faulty
///   network). After every step the simulator's checker ([`Checker`]: election safety, log
///   matching, leader completeness, state-machine safety, commit monotonicity) must hold;
/// - **forged** (odd first byte): the same, plus [`Step::Forged`]: arbitrary bytes decoded as a
///   [`Message`] (structurally anything postcard accepts) and stepped into a node. The oracle is
///   only "no panic, and the node either refuses it (a `StepError`) or stays internally
///   consistent (commit within its log, applied within commit)"; the cross-node checkers are not
///   applied, because a forgery may legitimately make nodes disagree.
pub fn protocol(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let forged_mode = mode % 2 == 1;
    let mut unstructured = Unstructured::new(rest);
    let Some(mut cluster) = Cluster::new() else { return };
    let mut request_id = 0u64;
    for _ in 0..STEPS_MAX {
        let Ok(step) = Step::arbitrary(&mut unstructured) else { break };
        match &step {
            Step::Tick(id) => {
                let k = cluster.node_index(*id);
                cluster.nodes[k].tick();
                cluster.time_ms += 10;
                cluster.drain(k);
            }
            Step::TickAll(count) => {
                for _ in 0..(count % 16) {
                    for k in 0..cluster.nodes.len() {
                        cluster.nodes[k].tick();
                        cluster.drain(k);
                    }
                    cluster.time_ms += 10;
                }
            }
            Step::Deliver(at) | Step::Duplicate(at) | Step::Drop(at) => {
                if cluster.in_flight.is_empty() {
                    continue;
                }
                let at = usize::from(*at) % cluster.in_flight.len();
                match step {
                    Step::Deliver(_) => {
                        let message = cluster.in_flight.remove(at);
                        cluster.deliver(message);
                    }
                    Step::Duplicate(_) => {
                        let message = cluster.in_flight[at].clone();
                        cluster.deliver(message);
                    }
                    _ => {
                        cluster.in_flight.remove(at);
                    }
                }
            }
            Step::Flush => {
                let messages = std::mem::take(&mut cluster.in_flight);
                for message in messages {
                    cluster.deliver(message);
                }
            }
            Step::Propose(id, data) => {
                let k = cluster.node_index(*id);
                let data = Bytes::copy_from_slice(&data[..data.len().min(256)]);
                let _ = cluster.nodes[k].propose(data);
                cluster.drain(k);
            }
            Step::Read(id, mode) => {
                let k = cluster.node_index(*id);
                let mode = [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale][usize::from(*mode) % 3];
                request_id += 1;
                cluster.nodes[k].read(request_id, mode);
                cluster.drain(k);
            }
            Step::Change(id, kind, target) => {
                let k = cluster.node_index(*id);
                let target = NodeId(1 + u64::from(*target) % PROTOCOL_NODES_MAX);
                let change = match kind % 5 {
                    0 => MembershipChange::AddVoter(target),
                    1 => MembershipChange::AddLearner(target),
                    2 => MembershipChange::DemoteVoter(target),
                    3 => MembershipChange::RemoveServer(target),
                    _ => {
                        let voters: BTreeSet<NodeId> = (1..=PROTOCOL_NODES_MAX)
                            .filter(|v| (target.0 >> (v - 1)) & 1 == 1 || *v == target.0)
                            .map(NodeId)
                            .collect();
                        MembershipChange::ReplaceVoters(voters)
                    }
                };
                let expected = cluster.nodes[k].membership_index();
                let _ = cluster.nodes[k].change_membership(change, expected);
                cluster.drain(k);
            }
            Step::Campaign(id) => {
                let k = cluster.node_index(*id);
                cluster.nodes[k].campaign();
                cluster.drain(k);
            }
            Step::Transfer(id, target) => {
                let k = cluster.node_index(*id);
                let target = target.map(|t| NodeId(1 + u64::from(t) % PROTOCOL_NODES_MAX));
                let _ = cluster.nodes[k].transfer_leadership(target);
                cluster.drain(k);
            }
            Step::Forged(id, bytes) => {
                if !forged_mode {
                    continue;
                }
                let Ok(message) = postcard::from_bytes::<Message>(bytes) else { continue };
                let k = cluster.node_index(*id);
                // A refusal (StepError) is fine; so is obeying it, see above.
                let _ = cluster.nodes[k].step(message);
                cluster.drain(k);
            }
        }
        if forged_mode {
            // Only local consistency (see above).
            for node in &cluster.nodes {
                assert!(node.commit_index() <= node.last_index(), "node {} commits past its log", node.id());
                assert!(
                    node.applied_index() <= node.commit_index(),
                    "node {} applies past commit",
                    node.id()
                );
            }
        } else {
            cluster.check(&step);
        }
    }
}

/// Hello frame an honest node 2 sends in answer to [`acceptor_challenge`] (for the corpus).
pub fn honest_hello_frame() -> Vec<u8> {
    let transcript = honest_transcript();
    let hello = Hello {
        cluster_id: CLUSTER_ID.into(),
        node_id: NodeId(2),
        address: dialler_config().advertise_address,
        nonce: HELLO_NONCE,
        mac: transcript.hello_mac_bound(
            SECRET,
            BoundIncarnations::NONE,
            dialler_config().advertise_address.as_deref(),
        ),
    };
    encode_frame(FrameKind::Hello, &hello)
}

/// The Hello of node 2 built before address binding: its address-less proof, with its address
/// (for the corpus: accepted, the address ignored).
pub fn legacy_hello_frame() -> Vec<u8> {
    let hello = Hello {
        cluster_id: CLUSTER_ID.into(),
        node_id: NodeId(2),
        address: dialler_config().advertise_address,
        nonce: HELLO_NONCE,
        mac: honest_transcript().hello_mac(SECRET),
    };
    encode_frame(FrameKind::Hello, &hello)
}

/// Welcome frame an honest node 1 sends to node 2's Hello (for the corpus).
pub fn honest_welcome_frame() -> Vec<u8> {
    encode_frame(FrameKind::Welcome, &Welcome { mac: honest_transcript().welcome_mac(SECRET) })
}
