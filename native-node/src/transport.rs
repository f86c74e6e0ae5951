//! Peer transport: Raft messages over WebSockets at `/raft`, on the same port as the client API.
//!
//! **Frames.** Every binary frame is `[protocol version: u8][kind: u8][postcard body]`. The
//! version is in every frame, not only in the handshake, so a peer that upgrades mid-connection
//! is noticed. Kind [`FrameKind::Raft`] carries one `raft_core::Message`, the very bytes a browser
//! peer speaks.
//!
//! **Handshake** (mutual, challenge-response, so the secret never crosses the wire):
//! 1. the accepting node sends `Challenge { cluster_id, node_id, nonce }`;
//! 2. the dialler checks the cluster id and answers `Hello { cluster_id, node_id, address,
//!    nonce, mac }`, where `mac = HMAC-SHA256(secret, "hello" ‖ challenge nonce ‖ cluster ‖ ids)`;
//! 3. the acceptor checks version, cluster and mac and answers `Welcome { mac }` (proving it
//!    knows the secret too) or `Reject { reason }` followed by a close frame with the reason.
//!
//! **Peers.** Each peer has one bounded outbound queue; when it is full, messages are dropped
//! and counted (Raft retransmits; a blocked core would be worse). Whichever connection to the
//! peer is up first, dialled or accepted, drains the queue. So a peer that cannot be dialled back
//! (a browser tab) is served over the connection it opened, and a peer with a known address is
//! dialled and redialled with exponential backoff.

use crate::metrics::Metrics;
use crate::raft::Network;
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hmac::{Hmac, Mac};
use raft_core::{Message, NodeId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The peer protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// Largest frame (and WebSocket message) accepted from a peer. raft-core caps one
/// AppendEntries at `message_bytes_max` (1 MiB by default) of payload, plus entry overhead.
pub const FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Read buffer of a peer WebSocket: tungstenite zero-fills it up to this size on every socket
/// read, so it is kept well below the 128 KiB default; large frames just take several reads.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Acceptor → dialler: who I am, and a nonce to prove you know the secret.
    Challenge = 1,
    /// Dialler → acceptor: who I am, and the proof.
    Hello = 2,
    /// Acceptor → dialler: accepted, and my proof.
    Welcome = 3,
    /// Acceptor → dialler: refused, and why.
    Reject = 4,
    /// One Raft message.
    Raft = 16,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::Challenge),
            2 => Some(FrameKind::Hello),
            3 => Some(FrameKind::Welcome),
            4 => Some(FrameKind::Reject),
            16 => Some(FrameKind::Raft),
            _ => None,
        }
    }
}

/// Why a frame could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the two header bytes.
    TooShort,
    /// A protocol version this build does not speak.
    UnsupportedVersion(u8),
    /// An unknown kind byte.
    UnknownKind(u8),
    /// Another kind than the one expected at this point.
    UnexpectedKind(FrameKind),
    /// The body does not decode.
    Body(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort => f.write_str("frame shorter than its 2-byte header"),
            FrameError::UnsupportedVersion(version) => {
                write!(f, "unsupported protocol version {version} (this node speaks {PROTOCOL_VERSION})")
            }
            FrameError::UnknownKind(kind) => write!(f, "unknown frame kind {kind}"),
            FrameError::UnexpectedKind(kind) => write!(f, "unexpected frame kind {kind:?}"),
            FrameError::Body(why) => write!(f, "undecodable frame body: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes a frame with this build's protocol version.
pub fn encode_frame<T: Serialize>(kind: FrameKind, body: &T) -> Bytes {
    encode_frame_with_version(PROTOCOL_VERSION, kind, body)
}

/// Encodes a frame with any version byte (tests speak wrong versions on purpose).
pub fn encode_frame_with_version<T: Serialize>(version: u8, kind: FrameKind, body: &T) -> Bytes {
    let mut out = vec![version, kind as u8];
    // postcard only fails on types serde cannot describe; ours all can.
    out.extend_from_slice(&postcard::to_allocvec(body).unwrap_or_default());
    Bytes::from(out)
}

/// Reads a frame's header and decodes its body as `T`, which must be of kind `expected`.
///
/// # Errors
/// [`FrameError`] naming what is wrong.
pub fn decode_frame<T: DeserializeOwned>(frame: &[u8], expected: FrameKind) -> Result<T, FrameError> {
    let [version, kind, body @ ..] = frame else {
        return Err(FrameError::TooShort);
    };
    if *version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(*version));
    }
    let kind = FrameKind::from_byte(*kind).ok_or(FrameError::UnknownKind(*kind))?;
    if kind == FrameKind::Reject && expected != FrameKind::Reject {
        let reject: Reject = postcard::from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))?;
        return Err(FrameError::Body(format!("refused by peer: {}", reject.reason)));
    }
    if kind != expected {
        return Err(FrameError::UnexpectedKind(kind));
    }
    postcard::from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))
}

/// First frame of the acceptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Challenge {
    /// The acceptor's cluster.
    pub cluster_id: String,
    /// The acceptor's id.
    pub node_id: NodeId,
    /// Random bytes the dialler must sign.
    pub nonce: [u8; 16],
}

/// The dialler's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// The dialler's cluster.
    pub cluster_id: String,
    /// The dialler's id.
    pub node_id: NodeId,
    /// Where the dialler can be reached, if it can be dialled at all (browser tabs cannot).
    pub address: Option<String>,
    /// Random bytes the acceptor must sign.
    pub nonce: [u8; 16],
    /// HMAC proof of the secret, see the module docs.
    pub mac: Vec<u8>,
}

/// The acceptor's proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Welcome {
    /// HMAC over the dialler's nonce.
    pub mac: Vec<u8>,
}

/// A refusal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reject {
    /// Why, lowercase.
    pub reason: String,
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("hmac accepts any key length");
    for part in parts {
        mac.update(&(part.len() as u32).to_le_bytes());
        mac.update(part);
    }
    mac
}

fn hello_mac(secret: &[u8], challenge: &Challenge, dialler: NodeId) -> Hmac<Sha256> {
    mac(
        secret,
        &[
            b"flotilla hello v1",
            &challenge.nonce,
            challenge.cluster_id.as_bytes(),
            &challenge.node_id.0.to_le_bytes(),
            &dialler.0.to_le_bytes(),
        ],
    )
}

fn welcome_mac(secret: &[u8], nonce: &[u8; 16], acceptor: NodeId) -> Hmac<Sha256> {
    mac(secret, &[b"flotilla welcome v1", nonce, &acceptor.0.to_le_bytes()])
}

fn random_nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    if getrandom::getrandom(&mut nonce).is_err() {
        // No OS randomness: fall back to time, still unique per connection in practice.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        nonce[..16].copy_from_slice(&now.as_nanos().to_le_bytes());
    }
    nonce
}

/// What a WebSocket message is, whatever library produced it.
pub enum Incoming {
    /// A binary message.
    Binary(Bytes),
    /// A text message (not part of the peer protocol).
    Text,
    /// The peer closed.
    Close,
    /// Ping/pong; the library answers them.
    Control,
}

/// The few things the peer protocol needs from a WebSocket message type, so one connection loop
/// serves both axum's (accepted) and tokio-tungstenite's (dialled) sockets.
pub trait WsMessage: Sized + Send {
    /// A binary message.
    fn binary(bytes: Bytes) -> Self;
    /// A close frame with a code and a reason (at most 123 bytes are sent).
    fn close(code: u16, reason: &str) -> Self;
    /// Classifies a received message.
    fn classify(self) -> Incoming;
}

fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

impl WsMessage for axum::extract::ws::Message {
    fn binary(bytes: Bytes) -> Self {
        axum::extract::ws::Message::Binary(bytes)
    }
    fn close(code: u16, reason: &str) -> Self {
        axum::extract::ws::Message::Close(Some(axum::extract::ws::CloseFrame {
            code,
            reason: truncate_reason(reason).into(),
        }))
    }
    fn classify(self) -> Incoming {
        use axum::extract::ws::Message as M;
        match self {
            M::Binary(bytes) => Incoming::Binary(bytes),
            M::Text(_) => Incoming::Text,
            M::Close(_) => Incoming::Close,
            M::Ping(_) | M::Pong(_) => Incoming::Control,
        }
    }
}

impl WsMessage for tokio_tungstenite::tungstenite::Message {
    fn binary(bytes: Bytes) -> Self {
        tokio_tungstenite::tungstenite::Message::Binary(bytes)
    }
    fn close(code: u16, reason: &str) -> Self {
        use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
        tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: truncate_reason(reason).into(),
        }))
    }
    fn classify(self) -> Incoming {
        use tokio_tungstenite::tungstenite::Message as M;
        match self {
            M::Binary(bytes) => Incoming::Binary(bytes),
            M::Text(_) => Incoming::Text,
            M::Close(_) => Incoming::Close,
            M::Ping(_) | M::Pong(_) | M::Frame(_) => Incoming::Control,
        }
    }
}

/// WebSocket close code for a protocol violation.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// WebSocket close code for a refused handshake (policy violation).
pub const CLOSE_POLICY: u16 = 1008;

/// Who this node is on the peer network.
#[derive(Clone)]
pub struct TransportConfig {
    /// This node.
    pub node_id: NodeId,
    /// The cluster; peers of another cluster are refused.
    pub cluster_id: String,
    /// The shared cluster secret.
    pub secret: Arc<Vec<u8>>,
    /// Where peers can dial this node (host:port), if anywhere.
    pub advertise_address: Option<String>,
    /// Outbound queue length per peer.
    pub queue_messages_max: usize,
    /// Messages written to a socket before one flush.
    pub write_batch_messages_max: usize,
    /// Largest accepted frame.
    pub frame_bytes_max: usize,
    /// Time allowed for a handshake.
    pub handshake_timeout: Duration,
    /// First reconnect delay; doubles up to `reconnect_delay_max`.
    pub reconnect_delay_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_delay_max: Duration,
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("node_id", &self.node_id)
            .field("cluster_id", &self.cluster_id)
            .field("secret", &"<redacted>")
            .field("advertise_address", &self.advertise_address)
            .finish()
    }
}

impl TransportConfig {
    /// Defaults for `node_id` in `cluster_id`.
    pub fn new(
        node_id: NodeId,
        cluster_id: String,
        secret: Vec<u8>,
        advertise_address: Option<String>,
    ) -> Self {
        TransportConfig {
            node_id,
            cluster_id,
            secret: Arc::new(secret),
            advertise_address,
            queue_messages_max: 4096,
            write_batch_messages_max: 256,
            frame_bytes_max: FRAME_BYTES_MAX,
            handshake_timeout: Duration::from_secs(5),
            reconnect_delay_min: Duration::from_millis(20),
            reconnect_delay_max: Duration::from_secs(2),
        }
    }
}

/// Why a dialled handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The WebSocket could not be opened.
    Connect(String),
    /// The peer refused us, with its reason.
    Rejected(String),
    /// The peer broke the protocol or proved nothing.
    Protocol(String),
    /// No answer in time.
    Timeout,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Connect(why) => write!(f, "cannot connect: {why}"),
            HandshakeError::Rejected(why) => write!(f, "refused by peer: {why}"),
            HandshakeError::Protocol(why) => write!(f, "handshake failed: {why}"),
            HandshakeError::Timeout => f.write_str("handshake timed out"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// A dialled, authenticated peer socket.
pub type DialledSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Dials `address`'s `/raft`, runs the handshake as `config.node_id`, and returns the socket
/// and the acceptor's id. `version` is normally [`PROTOCOL_VERSION`]; tests pass others.
///
/// # Errors
/// [`HandshakeError`] saying why the peer was not reached or not trusted.
pub async fn dial(
    address: &str,
    config: &TransportConfig,
    version: u8,
) -> Result<(DialledSocket, NodeId), HandshakeError> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.frame_bytes_max))
        .max_frame_size(Some(config.frame_bytes_max))
        .read_buffer_size(READ_BUFFER_BYTES);
    let url = format!("ws://{address}/raft");
    let handshake = async {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true)
            .await
            .map_err(|e| HandshakeError::Connect(e.to_string()))?;
        let first = next_binary(&mut socket).await?;
        let nonce = random_nonce();
        let (challenge, hello) = answer_challenge(config, &first, nonce)?;
        socket
            .send(WsMessage::binary(encode_frame_with_version(version, FrameKind::Hello, &hello)))
            .await
            .map_err(|e| HandshakeError::Connect(e.to_string()))?;
        let answer = next_binary(&mut socket).await?;
        check_welcome(config, &challenge, &nonce, &answer)?;
        Ok((socket, challenge.node_id))
    };
    tokio::time::timeout(config.handshake_timeout, handshake).await.map_err(|_| HandshakeError::Timeout)?
}

/// Dialler, step 1: reads the acceptor's Challenge frame and makes the Hello that answers it,
/// with `nonce` for the acceptor to sign. Pure, so that the fuzzer drives it.
///
/// # Errors
/// [`HandshakeError`] when the frame is not a Challenge of this cluster.
#[doc(hidden)]
pub fn answer_challenge(
    config: &TransportConfig,
    frame: &[u8],
    nonce: [u8; 16],
) -> Result<(Challenge, Hello), HandshakeError> {
    let challenge: Challenge = decode_frame(frame, FrameKind::Challenge).map_err(frame_to_handshake)?;
    if challenge.cluster_id != config.cluster_id {
        return Err(HandshakeError::Protocol(format!(
            "peer belongs to cluster {:?}, not {:?}",
            challenge.cluster_id, config.cluster_id
        )));
    }
    let hello = Hello {
        cluster_id: config.cluster_id.clone(),
        node_id: config.node_id,
        address: config.advertise_address.clone(),
        nonce,
        mac: hello_mac(&config.secret, &challenge, config.node_id).finalize().into_bytes().to_vec(),
    };
    Ok((challenge, hello))
}

/// Dialler, step 2: checks the acceptor's Welcome frame proves the secret over our `nonce`.
///
/// # Errors
/// [`HandshakeError`] when the frame is a refusal, malformed, or its proof is wrong.
#[doc(hidden)]
pub fn check_welcome(
    config: &TransportConfig,
    challenge: &Challenge,
    nonce: &[u8; 16],
    frame: &[u8],
) -> Result<(), HandshakeError> {
    let welcome: Welcome = decode_frame(frame, FrameKind::Welcome).map_err(frame_to_handshake)?;
    welcome_mac(&config.secret, nonce, challenge.node_id)
        .verify_slice(&welcome.mac)
        .map_err(|_| HandshakeError::Protocol("the peer does not know the cluster secret".into()))
}

/// Acceptor: checks the dialler's Hello frame against the `challenge` we sent; on success, the
/// Hello and the Welcome to send back. Pure, so that the fuzzer drives it.
///
/// # Errors
/// Why the dialler is refused, lowercase.
#[doc(hidden)]
pub fn accept_hello(
    config: &TransportConfig,
    challenge: &Challenge,
    frame: &[u8],
) -> Result<(Hello, Welcome), String> {
    let hello: Hello = decode_frame(frame, FrameKind::Hello).map_err(|e| e.to_string())?;
    if hello.cluster_id != config.cluster_id {
        return Err(format!("wrong cluster id {:?} (this is {:?})", hello.cluster_id, config.cluster_id));
    }
    if hello.node_id == config.node_id {
        return Err(format!("node id {} is this node's own id", hello.node_id));
    }
    hello_mac(&config.secret, challenge, hello.node_id)
        .verify_slice(&hello.mac)
        .map_err(|_| "authentication failed: wrong cluster secret".to_string())?;
    let welcome = Welcome {
        mac: welcome_mac(&config.secret, &hello.nonce, config.node_id).finalize().into_bytes().to_vec(),
    };
    Ok((hello, welcome))
}

/// After the handshake: decodes one frame from authenticated peer `peer` to node `me`, refusing
/// a message that claims another sender or another recipient.
///
/// # Errors
/// Why the frame is refused (the connection is then closed).
#[doc(hidden)]
pub fn check_raft_frame(peer: NodeId, me: NodeId, frame: &[u8]) -> Result<Message, String> {
    let message: Message = decode_frame(frame, FrameKind::Raft).map_err(|e| e.to_string())?;
    if message.from != peer {
        return Err(format!("message claims to come from node {} on node {peer}'s connection", message.from));
    }
    if message.to != me {
        return Err(format!("message addressed to node {}, this is node {me}", message.to));
    }
    Ok(message)
}

fn frame_to_handshake(error: FrameError) -> HandshakeError {
    match error {
        FrameError::Body(why) if why.starts_with("refused by peer: ") => {
            HandshakeError::Rejected(why.trim_start_matches("refused by peer: ").to_string())
        }
        other => HandshakeError::Protocol(other.to_string()),
    }
}

async fn next_binary(socket: &mut DialledSocket) -> Result<Bytes, HandshakeError> {
    use tokio_tungstenite::tungstenite::Message as M;
    loop {
        match socket.next().await {
            Some(Ok(M::Binary(bytes))) => return Ok(bytes),
            Some(Ok(M::Close(frame))) => {
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(HandshakeError::Rejected(if reason.is_empty() {
                    "connection closed".into()
                } else {
                    reason
                }));
            }
            Some(Ok(M::Text(_))) => return Err(HandshakeError::Protocol("text frame in handshake".into())),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(HandshakeError::Connect(e.to_string())),
            None => return Err(HandshakeError::Rejected("connection closed".into())),
        }
    }
}

/// One peer: its queue and, if known, its address.
struct Peer {
    id: NodeId,
    address: Mutex<Option<String>>,
    queue: mpsc::Sender<Message>,
    /// The receiving end, held by the connection that currently carries our traffic.
    queue_receiver: Mutex<Option<mpsc::Receiver<Message>>>,
    dropped: AtomicU64,
    connections: AtomicU64,
    dialer_running: std::sync::atomic::AtomicBool,
}

/// Gives the queue back to its peer when a connection ends.
struct QueueLease {
    peer: Arc<Peer>,
    receiver: Option<mpsc::Receiver<Message>>,
}

impl Drop for QueueLease {
    fn drop(&mut self) {
        if let (Some(receiver), Ok(mut slot)) = (self.receiver.take(), self.peer.queue_receiver.lock()) {
            *slot = Some(receiver);
        }
    }
}

impl Peer {
    fn lease_queue(self: &Arc<Peer>) -> Option<QueueLease> {
        let receiver = self.queue_receiver.lock().ok()?.take()?;
        Some(QueueLease { peer: self.clone(), receiver: Some(receiver) })
    }
}

/// A peer's state as `/admin` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    /// The peer.
    pub id: u64,
    /// Its address, if it can be dialled.
    pub address: Option<String>,
    /// Live connections to it.
    pub connections: u64,
    /// Messages dropped because its queue was full.
    pub dropped_messages: u64,
}

struct TransportInner {
    config: TransportConfig,
    peers: Mutex<HashMap<NodeId, Arc<Peer>>>,
    inbound: mpsc::Sender<Message>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
}

/// The peer network of one node. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<TransportInner>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").field("config", &self.inner.config).finish()
    }
}

impl Transport {
    /// A transport that delivers inbound messages to `inbound` and stops when `shutdown`
    /// becomes true.
    pub fn new(
        config: TransportConfig,
        inbound: mpsc::Sender<Message>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Transport {
        Transport {
            inner: Arc::new(TransportInner {
                config,
                peers: Mutex::new(HashMap::new()),
                inbound,
                metrics,
                shutdown,
            }),
        }
    }

    /// The transport's configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    fn peer(&self, id: NodeId) -> Arc<Peer> {
        let mut peers = self.inner.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        peers
            .entry(id)
            .or_insert_with(|| {
                let (queue, receiver) = mpsc::channel(self.inner.config.queue_messages_max);
                Arc::new(Peer {
                    id,
                    address: Mutex::new(None),
                    queue,
                    queue_receiver: Mutex::new(Some(receiver)),
                    dropped: AtomicU64::new(0),
                    connections: AtomicU64::new(0),
                    dialer_running: std::sync::atomic::AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Records where `id` can be dialled and starts dialling it (once).
    pub fn set_address(&self, id: NodeId, address: String) {
        if id == self.inner.config.node_id {
            return;
        }
        let peer = self.peer(id);
        if let Ok(mut slot) = peer.address.lock() {
            *slot = Some(address);
        }
        if !peer.dialer_running.swap(true, Ordering::SeqCst) {
            let transport = self.clone();
            tokio::spawn(async move { transport.dial_loop(peer).await });
        }
    }

    /// The address of `id`, if known.
    pub fn address(&self, id: NodeId) -> Option<String> {
        if id == self.inner.config.node_id {
            return self.inner.config.advertise_address.clone();
        }
        let peers = self.inner.peers.lock().ok()?;
        let peer = peers.get(&id)?;
        let address = peer.address.lock().ok()?.clone();
        address
    }

    /// Every known peer address.
    pub fn addresses(&self) -> std::collections::BTreeMap<NodeId, String> {
        let peers = self.inner.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        peers.values().filter_map(|peer| Some((peer.id, peer.address.lock().ok()?.clone()?))).collect()
    }

    /// Per-peer state for status reports.
    pub fn peer_statuses(&self) -> Vec<PeerStatus> {
        let peers = self.inner.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out: Vec<PeerStatus> = peers
            .values()
            .map(|peer| PeerStatus {
                id: peer.id.0,
                address: peer.address.lock().ok().and_then(|a| a.clone()),
                connections: peer.connections.load(Ordering::Relaxed),
                dropped_messages: peer.dropped.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    async fn dial_loop(self, peer: Arc<Peer>) {
        let config = &self.inner.config;
        let mut delay = config.reconnect_delay_min;
        let mut shutdown = self.inner.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let Some(address) = peer.address.lock().ok().and_then(|a| a.clone()) else { return };
            match dial(&address, config, PROTOCOL_VERSION).await {
                Ok((socket, acceptor)) if acceptor == peer.id => {
                    tracing::info!(peer = %peer.id, %address, "connected to peer");
                    delay = config.reconnect_delay_min;
                    self.run_connection(peer.clone(), socket).await;
                    tracing::info!(peer = %peer.id, "connection to peer closed");
                }
                Ok((_, acceptor)) => {
                    tracing::warn!(peer = %peer.id, %address, %acceptor, "address answers as another node");
                }
                Err(error) => {
                    tracing::debug!(peer = %peer.id, %address, %error, "dial failed");
                    if matches!(error, HandshakeError::Rejected(_) | HandshakeError::Protocol(_)) {
                        tracing::warn!(peer = %peer.id, %address, %error, "peer refused the handshake");
                    }
                }
            }
            // Exponential backoff with jitter, so restarted nodes do not reconnect in lockstep.
            let jitter = Duration::from_micros(u64::from(random_nonce()[0]) * delay.as_micros() as u64 / 512);
            tokio::select! {
                _ = tokio::time::sleep(delay + jitter) => {}
                _ = shutdown.changed() => {}
            }
            delay = (delay * 2).min(config.reconnect_delay_max);
        }
    }

    /// Serves an accepted `/raft` socket: handshake as acceptor, then the connection loop.
    pub async fn accept(&self, mut socket: axum::extract::ws::WebSocket) {
        let metrics = &self.inner.metrics;
        match self.accept_handshake(&mut socket).await {
            Ok((peer_id, address)) => {
                let peer = self.peer(peer_id);
                if let Some(address) = address {
                    let known = peer.address.lock().ok().and_then(|a| a.clone());
                    if known.is_none() {
                        self.set_address(peer_id, address);
                    }
                }
                tracing::info!(peer = %peer_id, "peer connected");
                self.run_connection(peer, socket).await;
                tracing::info!(peer = %peer_id, "peer disconnected");
            }
            Err(reason) => {
                metrics.peer_handshakes_refused_total.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "refused a peer connection");
                let _ = socket
                    .send(WsMessage::binary(encode_frame(
                        FrameKind::Reject,
                        &Reject { reason: reason.clone() },
                    )))
                    .await;
                let _ = socket
                    .send(<axum::extract::ws::Message as WsMessage>::close(CLOSE_POLICY, &reason))
                    .await;
            }
        }
    }

    async fn accept_handshake(
        &self,
        socket: &mut axum::extract::ws::WebSocket,
    ) -> Result<(NodeId, Option<String>), String> {
        let config = &self.inner.config;
        let challenge = Challenge {
            cluster_id: config.cluster_id.clone(),
            node_id: config.node_id,
            nonce: random_nonce(),
        };
        socket
            .send(WsMessage::binary(encode_frame(FrameKind::Challenge, &challenge)))
            .await
            .map_err(|e| format!("cannot send challenge: {e}"))?;
        let frame = tokio::time::timeout(config.handshake_timeout, async {
            loop {
                match socket.next().await {
                    Some(Ok(message)) => match message.classify() {
                        Incoming::Binary(bytes) => return Ok(bytes),
                        Incoming::Control => continue,
                        Incoming::Text => return Err("text frame in handshake".to_string()),
                        Incoming::Close => return Err("closed during handshake".to_string()),
                    },
                    Some(Err(e)) => return Err(format!("socket error in handshake: {e}")),
                    None => return Err("closed during handshake".to_string()),
                }
            }
        })
        .await
        .map_err(|_| "handshake timed out".to_string())??;
        let (hello, welcome) = accept_hello(config, &challenge, &frame)?;
        socket
            .send(WsMessage::binary(encode_frame(FrameKind::Welcome, &welcome)))
            .await
            .map_err(|e| format!("cannot send welcome: {e}"))?;
        Ok((hello.node_id, hello.address))
    }

    /// Carries traffic on one authenticated connection until it closes: inbound frames go to the
    /// core; if this connection holds the peer's queue, outbound messages go out here.
    async fn run_connection<S, M, E>(&self, peer: Arc<Peer>, socket: S)
    where
        S: Stream<Item = Result<M, E>> + Sink<M> + Unpin + Send,
        M: WsMessage,
        E: fmt::Display,
    {
        let metrics = &self.inner.metrics;
        metrics.peer_connections_total.fetch_add(1, Ordering::Relaxed);
        peer.connections.fetch_add(1, Ordering::Relaxed);
        let (mut sink, mut stream) = socket.split();
        let mut lease = peer.lease_queue();
        let mut shutdown = self.inner.shutdown.clone();
        let mut lease_retry = tokio::time::interval(Duration::from_millis(100));
        let me = self.inner.config.node_id;
        let close_reason: Option<(u16, String)> = loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(message)) => match message.classify() {
                        Incoming::Binary(bytes) => {
                            if let Err(why) = self.deliver(&peer, me, &bytes) {
                                metrics.peer_frames_malformed_total.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(peer = %peer.id, error = %why, "malformed peer frame; closing");
                                break Some((CLOSE_PROTOCOL_ERROR, why));
                            }
                        }
                        Incoming::Text => {
                            metrics.peer_frames_malformed_total.fetch_add(1, Ordering::Relaxed);
                            break Some((CLOSE_PROTOCOL_ERROR, "text frames are not part of the peer protocol".into()));
                        }
                        Incoming::Close => break None,
                        Incoming::Control => {}
                    },
                    Some(Err(error)) => {
                        metrics.peer_frames_malformed_total.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer = %peer.id, %error, "peer socket error");
                        break None;
                    }
                    None => break None,
                },
                message = next_queued(&mut lease) => {
                    let Some(message) = message else { break None };
                    if sink.feed(M::binary(encode_frame(FrameKind::Raft, &message))).await.is_err() {
                        break None;
                    }
                    let mut written = 1;
                    while written < self.inner.config.write_batch_messages_max {
                        let Some(receiver) = lease.as_mut().and_then(|l| l.receiver.as_mut()) else { break };
                        let Ok(message) = receiver.try_recv() else { break };
                        if sink.feed(M::binary(encode_frame(FrameKind::Raft, &message))).await.is_err() {
                            break;
                        }
                        written += 1;
                    }
                    if sink.flush().await.is_err() {
                        break None;
                    }
                }
                _ = lease_retry.tick(), if lease.is_none() => {
                    lease = peer.lease_queue();
                }
                _ = shutdown.changed() => break Some((1001, "node shutting down".into())),
            }
        };
        if let Some((code, reason)) = close_reason {
            let _ = sink.send(M::close(code, &reason)).await;
        }
        peer.connections.fetch_sub(1, Ordering::Relaxed);
        drop(lease);
    }

    fn deliver(&self, peer: &Peer, me: NodeId, frame: &[u8]) -> Result<(), String> {
        let message = check_raft_frame(peer.id, me, frame)?;
        if self.inner.inbound.try_send(message).is_err() {
            self.inner.metrics.peer_inbox_dropped_total.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

async fn next_queued(lease: &mut Option<QueueLease>) -> Option<Message> {
    match lease.as_mut().and_then(|l| l.receiver.as_mut()) {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

impl Network for Transport {
    fn learn_address(&self, id: NodeId, address: String) {
        if self.address(id).as_deref() != Some(address.as_str()) {
            tracing::info!(peer = %id, %address, "learned a peer address");
            self.set_address(id, address);
        }
    }

    fn send(&self, message: Message) {
        if message.to == self.inner.config.node_id {
            return;
        }
        let peer = self.peer(message.to);
        if peer.queue.try_send(message).is_err() {
            peer.dropped.fetch_add(1, Ordering::Relaxed);
            self.inner.metrics.peer_messages_dropped_total.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{MessageBody, Term};

    #[test]
    fn frames_round_trip_and_bad_frames_get_clear_errors() {
        let message = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: MessageBody::HeartbeatResponse { context: 9 },
        };
        let frame = encode_frame(FrameKind::Raft, &message);
        assert_eq!(frame[0], PROTOCOL_VERSION);
        assert_eq!(decode_frame::<Message>(&frame, FrameKind::Raft).unwrap(), message);
        assert_eq!(decode_frame::<Message>(&[], FrameKind::Raft).unwrap_err(), FrameError::TooShort);
        let wrong_version = encode_frame_with_version(9, FrameKind::Raft, &message);
        let error = decode_frame::<Message>(&wrong_version, FrameKind::Raft).unwrap_err();
        assert_eq!(error.to_string(), "unsupported protocol version 9 (this node speaks 1)");
        assert_eq!(
            decode_frame::<Message>(&[1, 77], FrameKind::Raft).unwrap_err(),
            FrameError::UnknownKind(77)
        );
        assert!(matches!(
            decode_frame::<Message>(&[1, 16, 0xff, 0xff], FrameKind::Raft),
            Err(FrameError::Body(_))
        ));
    }

    #[test]
    fn macs_bind_the_nonce_and_the_secret() {
        let challenge = Challenge { cluster_id: "c".into(), node_id: NodeId(1), nonce: [7; 16] };
        let good = hello_mac(b"secret", &challenge, NodeId(2)).finalize().into_bytes().to_vec();
        assert!(hello_mac(b"secret", &challenge, NodeId(2)).verify_slice(&good).is_ok());
        assert!(hello_mac(b"other", &challenge, NodeId(2)).verify_slice(&good).is_err());
        assert!(hello_mac(b"secret", &challenge, NodeId(3)).verify_slice(&good).is_err());
        let replay = Challenge { nonce: [8; 16], ..challenge };
        assert!(hello_mac(b"secret", &replay, NodeId(2)).verify_slice(&good).is_err());
    }
}
