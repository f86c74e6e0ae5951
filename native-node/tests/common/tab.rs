//! A browser tab without a browser: a learner that joins a real cluster by invitation exactly
//! as the wasm `LiveNode` does (issue #13), built from raft-core's `RaftNode`, `MemoryStorage`,
//! `KvStore` and `wire`, over tokio-tungstenite. It follows raft-core/GUIDE.md's driver contract
//! (messages, persist, messages after persist, apply, read states, advance), dials every native
//! member it learns from its own applied address records (and, before it has applied them, the
//! members the admitting leader named in `Admitted`), and checks its own apply sequence.
//!
//! As a voter tab (issue #14, [`Tab::join_with`]) it also sends a sealed `TabStatus` after every
//! handshake, answers votes and appends as any voter, never campaigns, and keeps its storage
//! across [`Tab::reload`] (the page reloaded with its OPFS intact: the same id and key, `Hello`
//! to every member, the node restored from its hard state, log and snapshot, no new `Join`).
#![allow(dead_code)]

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use raft_core::kv::{KvConfig, KvStore, Operation, Output};
use raft_core::state_machine::{restore_from_chunks, StateMachine};
use raft_core::storage::MemoryStorage;
use raft_core::wire::invite::{decode_join_answer, tab_key, InviteToken, Join, JoinAnswer, JoinRefusal};
use raft_core::wire::records::{is_browser_node_id, parse_address, ADDRESS_KEY_PREFIX, BROWSER_ADDRESS};
use raft_core::wire::tab::TabStatus;
use raft_core::wire::{
    decode_frame, encode_frame_with_features, Challenge, FrameError, FrameKind, Hello, Opener, Reject,
    Sealer, Side, Transcript, Welcome, FEATURE_SHARED_FRAMES,
};
use raft_core::{Message, NodeId, RaftNode, ReadMode, Restored};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Ws;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn nonce() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    bytes
}

/// Why a join did not admit the tab.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinFailure {
    /// Refused with a reason word.
    Refused(JoinRefusal),
    /// Anything else (closed, garbage, a bad proof).
    Other(String),
}

async fn next_binary(socket: &mut Socket) -> Result<Bytes, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), socket.next()).await {
            Ok(Some(Ok(Ws::Binary(bytes)))) => return Ok(bytes),
            Ok(Some(Ok(Ws::Close(frame)))) => return Err(format!("closed: {frame:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("closed".into()),
            Err(_) => return Err("no answer within 15 s".into()),
        }
    }
}

/// What a successful join hands back: the socket, the admitting node and the address it was
/// reached at (after redirects), the tab's id, its key, the connection's session, and the
/// native members the leader named (their proof checked; empty if it failed or none came).
pub type Joined = (Socket, NodeId, String, NodeId, [u8; 32], (Sealer, Opener), BTreeMap<NodeId, String>);

/// What a test tab does that a test may switch off, to model another tab.
#[derive(Clone, Copy, Debug)]
pub struct TabOptions {
    /// Dial the members the admitting leader named in `Admitted` before the tab's applied
    /// state names them. `false` models a tab built before `Admitted` named them.
    pub use_member_hints: bool,
    /// Redial the node that admitted it (as the wasm tab redials its invite's node). `false`
    /// models a tab whose only other way back, that node, is gone for good.
    pub redial_admitting_node: bool,
    /// Ask for `RaftShared` frames in every `Join` and `Hello` (this build's tabs do). `false`
    /// models a tab built before them, which reads only `Raft` frames and closes a connection
    /// on any other kind.
    pub shared_frames: bool,
}

impl Default for TabOptions {
    fn default() -> TabOptions {
        TabOptions { use_member_hints: true, redial_admitting_node: true, shared_frames: true }
    }
}

/// Dials `address` and sends a join for `token`; follows redirects.
pub async fn join_socket(address: &str, token: &str, cluster_id: &str) -> Result<Joined, JoinFailure> {
    join_socket_with(address, token, cluster_id, FEATURE_SHARED_FRAMES).await
}

/// [`join_socket`] with the feature byte `features` after the `Join` (0: as a tab built before
/// feature bytes).
pub async fn join_socket_with(
    address: &str,
    token: &str,
    cluster_id: &str,
    features: u8,
) -> Result<Joined, JoinFailure> {
    let mut address = address.to_string();
    let decoded = InviteToken::decode(token).map_err(JoinFailure::Refused)?;
    for _ in 0..4 {
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/raft"))
            .await
            .map_err(|e| JoinFailure::Other(e.to_string()))?;
        let first = next_binary(&mut socket).await.map_err(JoinFailure::Other)?;
        let challenge: Challenge =
            decode_frame(&first, FrameKind::Challenge).map_err(|e| JoinFailure::Other(e.to_string()))?;
        let join = Join { token: token.to_string(), nonce: nonce() };
        socket
            .send(Ws::binary(encode_frame_with_features(FrameKind::Join, &join, features)))
            .await
            .map_err(|e| JoinFailure::Other(e.to_string()))?;
        let answer = next_binary(&mut socket).await.map_err(JoinFailure::Other)?;
        match decode_join_answer(&answer).map_err(|e| JoinFailure::Other(e.to_string()))? {
            JoinAnswer::Redirect(redirect) => {
                address = redirect.address;
                continue;
            }
            JoinAnswer::Refused(Ok(refusal)) => return Err(JoinFailure::Refused(refusal)),
            JoinAnswer::Refused(Err(reason)) => return Err(JoinFailure::Other(reason)),
            JoinAnswer::Admitted(admitted) => {
                let key = tab_key(&decoded.mac, cluster_id, admitted.node_id, &join.nonce);
                let transcript = Transcript {
                    acceptor_nonce: challenge.nonce,
                    dialler_nonce: join.nonce,
                    cluster_id: cluster_id.to_string(),
                    acceptor: challenge.node_id,
                    dialler: admitted.node_id,
                };
                if !transcript.verify_welcome(&key, &admitted.mac) {
                    return Err(JoinFailure::Other("the leader's proof does not verify".into()));
                }
                let members = admitted
                    .members
                    .as_ref()
                    .and_then(|hints| hints.verified(&transcript, &key).ok())
                    .unwrap_or_default();
                let members = members.into_iter().map(|member| (member.node_id, member.address)).collect();
                let mut session = transcript.session(&key, Side::Dialler).split();
                session.1.set_reads_shared(features & FEATURE_SHARED_FRAMES != 0);
                return Ok((socket, challenge.node_id, address, admitted.node_id, key, session, members));
            }
        }
    }
    Err(JoinFailure::Other("too many redirects".into()))
}

/// Dials a native member as an admitted tab (`Hello` with the tab's key). A refusal is
/// `Err("refused: <the node's reason>")`.
pub async fn hello_socket(
    address: &str,
    id: NodeId,
    key: &[u8; 32],
    cluster_id: &str,
) -> Result<(Socket, NodeId, (Sealer, Opener)), String> {
    hello_socket_with(address, id, key, cluster_id, FEATURE_SHARED_FRAMES).await
}

/// [`hello_socket`] with the feature byte `features` after the `Hello`.
pub async fn hello_socket_with(
    address: &str,
    id: NodeId,
    key: &[u8; 32],
    cluster_id: &str,
    features: u8,
) -> Result<(Socket, NodeId, (Sealer, Opener)), String> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/raft")).await.map_err(|e| e.to_string())?;
    let first = next_binary(&mut socket).await?;
    let challenge: Challenge = decode_frame(&first, FrameKind::Challenge).map_err(|e| e.to_string())?;
    let transcript = Transcript {
        acceptor_nonce: challenge.nonce,
        dialler_nonce: nonce(),
        cluster_id: cluster_id.to_string(),
        acceptor: challenge.node_id,
        dialler: id,
    };
    let hello = Hello {
        cluster_id: cluster_id.to_string(),
        node_id: id,
        address: None,
        nonce: transcript.dialler_nonce,
        mac: transcript.hello_mac(key),
    };
    socket
        .send(Ws::binary(encode_frame_with_features(FrameKind::Hello, &hello, features)))
        .await
        .map_err(|e| e.to_string())?;
    let answer = next_binary(&mut socket).await?;
    if let Ok(reject) = decode_frame::<Reject>(&answer, FrameKind::Reject) {
        return Err(format!("refused: {}", reject.reason));
    }
    let welcome: Welcome = decode_frame(&answer, FrameKind::Welcome).map_err(|e| e.to_string())?;
    if !transcript.verify_welcome(key, &welcome.mac) {
        return Err("the node's proof does not verify".into());
    }
    let (sealer, mut opener) = transcript.session(key, Side::Dialler).split();
    opener.set_reads_shared(features & FEATURE_SHARED_FRAMES != 0);
    Ok((socket, challenge.node_id, (sealer, opener)))
}

/// What the tab's driver reports, shared with the test.
#[derive(Debug, Default)]
pub struct TabView {
    pub applied: u64,
    pub commit: u64,
    pub leader: Option<u64>,
    pub term: u64,
    /// Entries applied out of order or twice (must stay empty).
    pub apply_violations: Vec<String>,
    pub snapshots_installed: u64,
    /// The hard state as last persisted.
    pub hard_state: raft_core::HardState,
    /// Entries applied one by one (not through a snapshot).
    pub entries_applied: u64,
    /// Native members with a live connection.
    pub connected: Vec<u64>,
    /// Connections closed by the far end, with their reason.
    pub closes: Vec<(u64, String)>,
    /// Vote and pre-vote requests the tab's node sent (a tab with `campaigns: false` must
    /// send none; see [`Tab::join_with`]).
    pub vote_requests_sent: u64,
    /// Vote answers the tab sent (granted or not).
    pub vote_answers_sent: u64,
    /// Messages the node addressed to a member the tab had no connection to (dropped).
    pub sends_without_connection: u64,
    /// Times every connection was silent for [`SILENCE`] and the tab redialled them all.
    pub silences: u64,
    /// The feature byte of this tab's `Join` and `Hello` ([`TabOptions::shared_frames`]).
    pub features: u8,
    /// Frames opened, by kind: `Raft`, `RaftShared`.
    pub raft_frames: u64,
    pub shared_frames: u64,
}

enum Event {
    Frame(NodeId, Message),
    Connected(NodeId, u64, mpsc::UnboundedSender<Message>),
    Closed(NodeId, u64, String),
}

enum Request {
    Get { key: Bytes, mode: ReadMode, reply: ReadReply },
    Raw { to: NodeId, message: Message },
    Kv { reply: oneshot::Sender<BTreeMap<Bytes, Bytes>> },
    Stop { reply: oneshot::Sender<MemoryStorage> },
}

/// A running test tab.
pub struct Tab {
    pub id: NodeId,
    pub view: Arc<Mutex<TabView>>,
    key: [u8; 32],
    cluster_id: String,
    status: Option<TabStatus>,
    /// Addresses known without the applied state (the admitting node's), kept across reloads.
    known: BTreeMap<NodeId, String>,
    /// The members the admission named (see [`Driver::dial_members`]), kept across reloads.
    hints: BTreeMap<NodeId, String>,
    requests: mpsc::UnboundedSender<Request>,
    task: tokio::task::JoinHandle<()>,
}

/// Opens a frame as this tab's build would: one that did not ask for `RaftShared` frames reads
/// only `Raft` ones (as a tab built before them).
fn open(opener: &mut Opener, frame: &[u8], view: &Mutex<TabView>) -> Result<Message, FrameError> {
    let asks_shared = view.lock().unwrap().features & FEATURE_SHARED_FRAMES != 0;
    let message =
        if asks_shared { opener.open_message(frame)? } else { opener.open(frame, FrameKind::Raft)? };
    let mut view = view.lock().unwrap();
    match frame[1] {
        kind if kind == FrameKind::RaftShared as u8 => view.shared_frames += 1,
        _ => view.raft_frames += 1,
    }
    Ok(message)
}

impl Drop for Tab {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn spawn_connection(
    peer: NodeId,
    socket: Socket,
    session: (Sealer, Opener),
    status: Option<TabStatus>,
    events: mpsc::UnboundedSender<Event>,
    view: Arc<Mutex<TabView>>,
) {
    let (mut sealer, mut opener) = session;
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (outgoing, mut to_send) = mpsc::unbounded_channel::<Message>();
    let _ = events.send(Event::Connected(peer, serial, outgoing));
    tokio::spawn(async move {
        let (mut sink, mut stream) = socket.split();
        // The tab's storage status comes first on every connection (issue #14).
        if let Some(status) = status {
            let _ = sink.send(Ws::binary(sealer.seal(FrameKind::TabStatus, &status))).await;
        }
        let reason = loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(Ws::Binary(bytes))) => match open(&mut opener, &bytes, &view) {
                        Ok(message) => { let _ = events.send(Event::Frame(peer, message)); }
                        Err(error) => break format!("bad frame: {error}"),
                    },
                    Some(Ok(Ws::Close(frame))) => break format!("closed by node: {}", frame.map(|f| f.reason.to_string()).unwrap_or_default()),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break error.to_string(),
                    None => break "closed".to_string(),
                },
                message = to_send.recv() => match message {
                    Some(message) => {
                        if sink.send(Ws::binary(sealer.seal(FrameKind::Raft, &message))).await.is_err() {
                            break "write failed".to_string();
                        }
                    }
                    None => break "dropped".to_string(),
                },
            }
        };
        let _ = events.send(Event::Closed(peer, serial, reason));
    });
}

impl Tab {
    /// Joins the cluster at `address` with the invitation `token` (the text after `#join=`).
    pub async fn join(address: &str, token: &str, cluster_id: &str) -> Result<Tab, JoinFailure> {
        Tab::join_with(address, token, cluster_id, None).await
    }

    /// Joins and reports `status` (a voter tab's storage) after every handshake. Its node runs
    /// with `Config::campaigns` as the status says (a voter tab: `false`, it never starts an
    /// election).
    pub async fn join_with(
        address: &str,
        token: &str,
        cluster_id: &str,
        status: Option<TabStatus>,
    ) -> Result<Tab, JoinFailure> {
        Tab::join_with_options(address, token, cluster_id, status, TabOptions::default()).await
    }

    /// Joins as [`Tab::join_with`], with some of the tab's behaviour switched off.
    pub async fn join_with_options(
        address: &str,
        token: &str,
        cluster_id: &str,
        status: Option<TabStatus>,
        options: TabOptions,
    ) -> Result<Tab, JoinFailure> {
        let features = if options.shared_frames { FEATURE_SHARED_FRAMES } else { 0 };
        let (socket, acceptor, acceptor_address, id, key, session, members) =
            join_socket_with(address, token, cluster_id, features).await?;
        let view = Arc::new(Mutex::new(TabView { features, ..TabView::default() }));
        // The node that admitted the tab is where it redials until its own applied state names
        // the members (as the wasm tab keeps its invite's node): the address records of a
        // bootstrapped cluster are written at the first join, so a tab catching up from the
        // start of a long log applies them only at the end of its catch-up.
        let mut known = BTreeMap::new();
        if options.redial_admitting_node {
            known.insert(acceptor, acceptor_address);
        }
        // The admitting node is already connected, where the tab reached it (as the wasm tab
        // does not dial a member it has a link to): never a second socket to it.
        let mut hints = if options.use_member_hints { members } else { BTreeMap::new() };
        hints.remove(&acceptor);
        Ok(Tab::start(
            id,
            key,
            cluster_id,
            status,
            view,
            MemoryStorage::default(),
            (known, hints),
            Some((acceptor, socket, session)),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        id: NodeId,
        key: [u8; 32],
        cluster_id: &str,
        status: Option<TabStatus>,
        view: Arc<Mutex<TabView>>,
        storage: MemoryStorage,
        (known, hints): (BTreeMap<NodeId, String>, BTreeMap<NodeId, String>),
        first: Option<(NodeId, Socket, (Sealer, Opener))>,
    ) -> Tab {
        let (events_tx, events) = mpsc::unbounded_channel();
        if let Some((acceptor, socket, session)) = first {
            spawn_connection(acceptor, socket, session, status, events_tx.clone(), view.clone());
        }
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let driver = Driver::new(
            id,
            key,
            cluster_id.to_string(),
            status,
            storage,
            (known.clone(), hints.clone()),
            view.clone(),
            events_tx,
            events,
            requests_rx,
        );
        let task = tokio::spawn(driver.run());
        Tab { id, view, key, cluster_id: cluster_id.to_string(), status, known, hints, requests, task }
    }

    /// The page reloads with its storage intact: every socket closes, then the node restarts
    /// from the stored hard state, log and snapshot (term and vote included) and dials every
    /// member it knows with `Hello` as the same id.
    pub async fn reload(self) -> Tab {
        let (reply, answer) = oneshot::channel();
        let _ = self.requests.send(Request::Stop { reply });
        let storage = answer.await.expect("the tab's driver hands back its storage");
        let (id, key, cluster_id, status, view) =
            (self.id, self.key, self.cluster_id.clone(), self.status, self.view.clone());
        let addresses = (self.known.clone(), self.hints.clone());
        drop(self);
        view.lock().unwrap().connected.clear();
        Tab::start(id, key, &cluster_id, status, view, storage, addresses, None)
    }

    /// The key the tab proves itself with, as its storage keeps it.
    pub fn key(&self) -> [u8; 32] {
        self.key
    }

    /// The node's persisted hard state (term, vote, commit).
    pub async fn hard_state(&self) -> raft_core::HardState {
        self.view.lock().unwrap().hard_state
    }

    /// Joins from a link `http://host/...#join=TOKEN`.
    pub async fn join_link(link: &str, cluster_id: &str) -> Result<Tab, JoinFailure> {
        let (base, token) = link.split_once("#join=").expect("a link with #join=");
        let host = base.trim_start_matches("http://").split('/').next().unwrap();
        Tab::join(host, token, cluster_id).await
    }

    pub fn applied(&self) -> u64 {
        self.view.lock().unwrap().applied
    }

    /// Whether the tab's driver task has ended (stopped, or panicked).
    pub fn driver_ended(&self) -> bool {
        self.task.is_finished()
    }

    /// The tab's applied key-value pairs (user keys only).
    pub async fn kv(&self) -> BTreeMap<Bytes, Bytes> {
        let (reply, answer) = oneshot::channel();
        let _ = self.requests.send(Request::Kv { reply });
        answer.await.unwrap_or_default()
    }

    /// A read on the tab: stale from its applied state, or linearizable through the leader's
    /// read index (thesis §6.4), answered once the tab has applied that index.
    pub async fn get(&self, key: &str, mode: ReadMode) -> Result<Option<Bytes>, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.requests.send(Request::Get { key: Bytes::from(key.to_string()), mode, reply });
        answer.await.map_err(|_| "tab stopped".to_string())?
    }

    /// Sends `message` as is (a misbehaving tab) on the connection to `to`.
    pub fn send_raw(&self, to: NodeId, message: Message) {
        let _ = self.requests.send(Request::Raw { to, message });
    }

    /// Stops the tab: its sockets close, as when the page is closed.
    pub fn close(self) {}
}

/// Where a read's answer goes.
type ReadReply = oneshot::Sender<Result<Option<Bytes>, String>>;

struct Driver {
    node: RaftNode,
    storage: MemoryStorage,
    store: KvStore,
    id: NodeId,
    key: [u8; 32],
    cluster_id: String,
    view: Arc<Mutex<TabView>>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    requests: mpsc::UnboundedReceiver<Request>,
    connections: HashMap<NodeId, (u64, mpsc::UnboundedSender<Message>)>,
    dialling: Arc<Mutex<std::collections::HashSet<NodeId>>>,
    reads: HashMap<u64, (Bytes, ReadReply)>,
    reads_ready: Vec<(u64, Bytes, ReadReply)>,
    next_read: u64,
    status: Option<TabStatus>,
    /// Native members' addresses known without the applied state (see [`Tab::join_with`]).
    known: BTreeMap<NodeId, String>,
    /// The members the admission named, dialled until the applied state names them.
    hints: BTreeMap<NodeId, String>,
    /// When a frame last arrived on any connection (see [`SILENCE`]).
    last_heard: tokio::time::Instant,
}

/// Silence from every connection this long (twice the default election timeout) and the tab
/// drops its connections and redials every address it knows, as the wasm tab does: a socket a
/// partition left open carries nothing, and nothing else would end it.
const SILENCE: Duration = Duration::from_secs(2);

impl Driver {
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: NodeId,
        key: [u8; 32],
        cluster_id: String,
        status: Option<TabStatus>,
        storage: MemoryStorage,
        (known, hints): (BTreeMap<NodeId, String>, BTreeMap<NodeId, String>),
        view: Arc<Mutex<TabView>>,
        events_tx: mpsc::UnboundedSender<Event>,
        events: mpsc::UnboundedReceiver<Event>,
        requests: mpsc::UnboundedReceiver<Request>,
    ) -> Driver {
        let mut config =
            native_node::RaftConfig::new(id, u64::from_le_bytes(nonce()[..8].try_into().unwrap())).core;
        config.campaigns = status.is_none_or(|status| status.campaigns);
        // A reload: the state machine from the stored snapshot, the rest from the log.
        let mut store = KvStore::new(KvConfig::default()).unwrap();
        if let Some((_, data)) = storage.snapshot().filter(|(_, data)| !data.is_empty()) {
            restore_from_chunks(&mut store, [data.as_ref()]).expect("the stored snapshot restores");
        }
        let restored =
            if storage.hard_state() == raft_core::HardState::default() && storage.entries().is_empty() {
                Restored::empty()
            } else {
                storage.restored(store.applied_index())
            };
        Driver {
            node: RaftNode::new(config, restored).unwrap(),
            storage,
            store,
            status,
            id,
            key,
            cluster_id,
            view,
            events_tx,
            events,
            requests,
            connections: HashMap::new(),
            dialling: Arc::default(),
            reads: HashMap::new(),
            reads_ready: Vec::new(),
            next_read: 1,
            known,
            hints,
            last_heard: tokio::time::Instant::now(),
        }
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut redial = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tick.tick() => self.node.tick(),
                _ = redial.tick() => self.dial_members(),
                Some(event) = self.events.recv() => match event {
                    Event::Frame(_, message) => {
                        self.last_heard = tokio::time::Instant::now();
                        let _ = self.node.step(message);
                    }
                    Event::Connected(peer, serial, sender) => { self.connections.insert(peer, (serial, sender)); }
                    Event::Closed(peer, serial, reason) => {
                        if self.connections.get(&peer).is_some_and(|(current, _)| *current == serial) {
                            self.connections.remove(&peer);
                        }
                        self.dialling.lock().unwrap().remove(&peer);
                        self.node.report_unreachable(peer);
                        self.view.lock().unwrap().closes.push((peer.0, reason));
                    }
                },
                Some(request) = self.requests.recv() => {
                    self.on_request(request);
                    if self.requests.is_closed() {
                        return;
                    }
                }
                else => return,
            }
            self.drive();
        }
    }

    fn on_request(&mut self, request: Request) {
        match request {
            Request::Get { key, mode, reply } => {
                let id = self.next_read;
                self.next_read += 1;
                self.reads.insert(id, (key, reply));
                self.node.read(id, mode);
            }
            Request::Raw { to, message } => {
                if let Some((_, connection)) = self.connections.get(&to) {
                    let _ = connection.send(message);
                }
            }
            Request::Stop { reply } => {
                let _ = reply.send(std::mem::take(&mut self.storage));
                self.requests.close();
            }
            Request::Kv { reply } => {
                let user = self.store.iter().filter(|(k, _)| !k.starts_with(b"\0flotilla/"));
                let _ = reply.send(user.map(|(k, v)| (k.clone(), v.clone())).collect());
            }
        }
    }

    fn send(&self, to: NodeId, message: Message) {
        match &message.body {
            raft_core::MessageBody::VoteRequest { .. } => self.view.lock().unwrap().vote_requests_sent += 1,
            raft_core::MessageBody::VoteResponse { .. } => self.view.lock().unwrap().vote_answers_sent += 1,
            _ => {}
        }
        match self.connections.get(&to) {
            Some((_, connection)) => {
                let _ = connection.send(message);
            }
            None => self.view.lock().unwrap().sends_without_connection += 1,
        }
    }

    /// The driver's contract, for every `Ready` (raft-core/GUIDE.md).
    fn drive(&mut self) {
        while self.node.has_ready() {
            let ready = self.node.ready();
            for message in ready.messages.iter().cloned() {
                self.send(message.to, message);
            }
            if let Some(data) = self.storage.persist(&ready) {
                let mut store = KvStore::new(KvConfig::default()).unwrap();
                restore_from_chunks(&mut store, [data.as_ref()]).expect("the leader's snapshot restores");
                self.store = store;
                self.view.lock().unwrap().snapshots_installed += 1;
            }
            for message in ready.messages_after_persist.iter().cloned() {
                self.send(message.to, message);
            }
            for entry in &ready.committed_entries {
                let applied = self.store.applied_index();
                if entry.index <= applied {
                    continue;
                }
                if entry.index != applied.next() {
                    self.view
                        .lock()
                        .unwrap()
                        .apply_violations
                        .push(format!("entry {} after applied {applied}", entry.index));
                }
                let _ = self.store.apply(entry);
                self.view.lock().unwrap().entries_applied += 1;
            }
            for state in &ready.read_states {
                if let Some((key, reply)) = self.reads.remove(&state.request_id) {
                    match state.result {
                        Ok(index) => self.reads_ready.push((index.0, key, reply)),
                        Err(error) => {
                            let _ = reply.send(Err(error.to_string()));
                        }
                    }
                }
            }
            self.node.advance();
        }
        let applied = self.store.applied_index().0;
        let mut index = 0;
        while index < self.reads_ready.len() {
            if self.reads_ready[index].0 <= applied {
                let (_, key, reply) = self.reads_ready.swap_remove(index);
                let value = match self.store.read(&Operation::Get { key }) {
                    Ok(Output::Value(value)) => Ok(value),
                    other => Err(format!("{other:?}")),
                };
                let _ = reply.send(value);
            } else {
                index += 1;
            }
        }
        let status = self.node.status();
        let mut view = self.view.lock().unwrap();
        view.applied = applied;
        view.commit = status.commit_index.0;
        view.leader = status.leader.map(|l| l.0);
        view.term = status.term.0;
        view.hard_state = self.storage.hard_state();
        view.connected = self.connections.keys().map(|id| id.0).collect();
    }

    /// Dials every native member its applied address records name, every address it knows
    /// otherwise (the admitting node), and the members its admission named (all of them before
    /// it has applied a configuration, then only members of it, the records winning), that it
    /// is not connected to. After [`SILENCE`] on every connection it drops them all first.
    fn dial_members(&mut self) {
        if self.last_heard.elapsed() > SILENCE && !self.connections.is_empty() {
            self.view.lock().unwrap().silences += 1;
            for peer in self.connections.keys().copied().collect::<Vec<_>>() {
                self.node.report_unreachable(peer);
            }
            self.connections.clear();
            self.last_heard = tokio::time::Instant::now();
        }
        let mut members: BTreeMap<NodeId, String> = self.known.clone();
        let configuration: BTreeSet<NodeId> = self.node.membership().members();
        members.extend(
            self.hints
                .iter()
                .filter(|(id, _)| configuration.is_empty() || configuration.contains(id))
                .map(|(id, address)| (*id, address.clone())),
        );
        members.extend(
            self.store
                .iter_prefix(ADDRESS_KEY_PREFIX)
                .filter_map(|(key, value)| parse_address(key, value))
                .filter(|(id, address)| {
                    *id != self.id && !is_browser_node_id(*id) && address != BROWSER_ADDRESS
                }),
        );
        for (peer, address) in members {
            if self.connections.contains_key(&peer) || !self.dialling.lock().unwrap().insert(peer) {
                continue;
            }
            let (id, key, cluster, events, dialling, status, view) = (
                self.id,
                self.key,
                self.cluster_id.clone(),
                self.events_tx.clone(),
                self.dialling.clone(),
                self.status,
                self.view.clone(),
            );
            tokio::spawn(async move {
                // A dial into a partition may never be answered: give up and let the next
                // redial tick try again.
                let features = view.lock().unwrap().features;
                let dialled =
                    tokio::time::timeout(SILENCE, hello_socket_with(&address, id, &key, &cluster, features))
                        .await;
                match dialled {
                    Ok(Ok((socket, acceptor, session))) if acceptor == peer => {
                        spawn_connection(peer, socket, session, status, events, view)
                    }
                    _ => {
                        dialling.lock().unwrap().remove(&peer);
                    }
                }
            });
        }
    }
}
