//! Peer transport: Raft messages over WebSockets at `/raft`, on the same port as the client API.
//!
//! **Frames, handshake and session** are [`crate::peer_auth`]'s: a mutual challenge-response
//! over both ends' fresh nonces (the secret never crosses the wire), then every frame in either
//! direction tagged with a per-connection, per-direction session key and an implicit sequence
//! number. A frame whose tag fails (forged, replayed, reordered) closes the connection and counts
//! in `raft_peer_frames_unauthenticated_total`; a Raft message whose `from` is not the
//! authenticated peer, or whose `to` is not this node, closes it too (`raft_peer_frames_malformed_total`).
//! Until the handshake completes an accepted socket takes messages of at most
//! [`HANDSHAKE_FRAME_BYTES_MAX`] bytes.
//!
//! **Peers.** Each peer has one bounded outbound queue; when it is full, messages are dropped
//! and counted (Raft retransmits; a blocked core would be worse). Whichever connection to the
//! peer is up first, dialled or accepted, drains the queue. So a peer that cannot be dialled back
//! (a browser tab) is served over the connection it opened, and a peer with a known address is
//! dialled and redialled with exponential backoff.

use crate::metrics::Metrics;
use crate::outbound::{self, EntriesCache, Outbound};
pub use crate::peer_auth::{
    decode_frame, encode_frame, encode_frame_with_version, Challenge, FrameError, FrameKind, Hello, Reject,
    Session, Side, Transcript, Welcome, HANDSHAKE_FRAME_BYTES_MAX, PROTOCOL_VERSION,
};
use crate::peer_auth::{decode_frame_with_features, BoundIncarnations, HelloProof, Opener};
use crate::peer_liveness::{self, LinkStats, LivenessConfig, LivenessMessage, PeerQueue, Pushed, QueueLease};
use crate::raft::Network;
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use raft_core::{Message, NodeId};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Largest frame (and WebSocket message) accepted from a peer. raft-core caps one
/// AppendEntries at `message_bytes_max` (1 MiB by default) of payload, plus entry overhead.
pub const FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Read buffer of a peer WebSocket: tungstenite zero-fills it up to this size on every socket
/// read, so it is kept well below the 128 KiB default; large frames just take several reads.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

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
    /// Pings, idle and write timeouts of peer connections (see [`crate::peer_liveness`]).
    pub liveness: LivenessConfig,
    /// Dial peers over TLS (`wss://`) with this configuration, which presents this node's
    /// client certificate (see [`crate::tls`]); `None`: plaintext `ws://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// This node's and its peers' incarnations (see [`crate::incarnation`]); `None`: unchecked.
    pub incarnations: Option<Arc<crate::incarnation::Incarnations>>,
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
            liveness: LivenessConfig::default(),
            tls: None,
            incarnations: None,
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

/// Dials `address`'s `/raft`, runs the handshake as `config.node_id`, and returns the socket,
/// the acceptor's id and the connection's session (which tags and checks every later frame).
/// `version` is normally [`PROTOCOL_VERSION`]; tests pass others.
///
/// # Errors
/// [`HandshakeError`] saying why the peer was not reached or not trusted.
pub async fn dial(
    address: &str,
    config: &TransportConfig,
    version: u8,
) -> Result<(DialledSocket, NodeId, Session), HandshakeError> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(config.frame_bytes_max))
        .max_frame_size(Some(config.frame_bytes_max))
        .read_buffer_size(READ_BUFFER_BYTES);
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{address}/raft");
    let connector = config.tls.clone().map(tokio_tungstenite::Connector::Rustls);
    let handshake = async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().map_err(|e| HandshakeError::Connect(e.to_string()))?;
        if let Some(incarnations) = &config.incarnations {
            if let Ok(value) = crate::incarnation::format(incarnations.own()).parse() {
                request.headers_mut().insert(crate::incarnation::INCARNATION_HEADER, value);
            }
        }
        let (mut socket, response) =
            tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, connector)
                .await
                .map_err(|e| HandshakeError::Connect(e.to_string()))?;
        // The incarnations both told in the upgrade, bound into both proofs (a relay that
        // alters a header breaks the handshake).
        let told = response
            .headers()
            .get(crate::incarnation::INCARNATION_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(crate::incarnation::parse);
        let bound = BoundIncarnations::told(told, config.incarnations.as_ref().map(|book| book.own()));
        let first = next_binary(&mut socket).await?;
        let challenge: Challenge = decode_frame(&first, FrameKind::Challenge).map_err(frame_to_handshake)?;
        if challenge.cluster_id != config.cluster_id {
            return Err(HandshakeError::Protocol(format!(
                "peer belongs to cluster {:?}, not {:?}",
                challenge.cluster_id, config.cluster_id
            )));
        }
        let transcript = Transcript {
            acceptor_nonce: challenge.nonce,
            dialler_nonce: random_nonce(),
            cluster_id: config.cluster_id.clone(),
            acceptor: challenge.node_id,
            dialler: config.node_id,
        };
        let hello = Hello {
            cluster_id: config.cluster_id.clone(),
            node_id: config.node_id,
            address: config.advertise_address.clone(),
            nonce: transcript.dialler_nonce,
            mac: transcript.hello_mac_bound(&config.secret, bound, config.advertise_address.as_deref()),
        };
        socket
            .send(WsMessage::binary(encode_frame_with_version(version, FrameKind::Hello, &hello).into()))
            .await
            .map_err(|e| HandshakeError::Connect(e.to_string()))?;
        let answer = next_binary(&mut socket).await?;
        let welcome: Welcome = decode_frame(&answer, FrameKind::Welcome).map_err(frame_to_handshake)?;
        if !transcript.verify_welcome_bound(&config.secret, &welcome.mac, bound) {
            return Err(HandshakeError::Protocol("the peer does not know the cluster secret".into()));
        }
        if let Some(incarnations) = &config.incarnations {
            incarnations.check(challenge.node_id, told).map_err(HandshakeError::Rejected)?;
        }
        Ok((socket, challenge.node_id, transcript.session(&config.secret, Side::Dialler)))
    };
    tokio::time::timeout(config.handshake_timeout, handshake).await.map_err(|_| HandshakeError::Timeout)?
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
    /// Outbound messages; drained by the connection holding its lease.
    queue: Arc<PeerQueue<Outbound>>,
    dropped: AtomicU64,
    connections: AtomicU64,
    /// Whether a connection was ever established (later ones count as reconnects).
    ever_connected: std::sync::atomic::AtomicBool,
    link: LinkStats,
    dialer_running: std::sync::atomic::AtomicBool,
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
    /// Connections established after the first.
    pub reconnects: u64,
    /// Connections closed because nothing was heard on them for the idle timeout.
    pub idle_closes: u64,
    /// Milliseconds since anything was heard from the peer, if ever.
    pub last_heard_ms: Option<u64>,
    /// The last ping round trip in microseconds, if a pong came back.
    pub ping_round_trip_us: Option<u64>,
    /// Messages waiting in its queue.
    pub queued_messages: u64,
}

struct TransportInner {
    config: TransportConfig,
    peers: Mutex<HashMap<NodeId, Arc<Peer>>>,
    inbound: mpsc::Sender<Message>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    /// Peers to report unreachable to the core (see [`Network::take_unreachable`]).
    unreachable: Mutex<std::collections::BTreeSet<NodeId>>,
    /// Joins and credentials of browser peers (issue #13), once the node has set it.
    browser: std::sync::OnceLock<Arc<crate::browser_peers::BrowserPeers>>,
    /// Entries of the last AppendEntries queued, encoded once for every peer sent them.
    entries: EntriesCache,
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
                unreachable: Mutex::new(std::collections::BTreeSet::new()),
                browser: std::sync::OnceLock::new(),
                entries: EntriesCache::default(),
            }),
        }
    }

    /// Notes that messages to `id` may have been lost.
    fn mark_unreachable(&self, id: NodeId) {
        self.inner.unreachable.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id);
    }

    /// Lets browser tabs join and connect through `gate` (see [`crate::browser_peers`]).
    pub fn set_browser_gate(&self, gate: Arc<crate::browser_peers::BrowserPeers>) {
        let _ = self.inner.browser.set(gate);
    }

    fn browser_gate(&self) -> Option<&Arc<crate::browser_peers::BrowserPeers>> {
        self.inner.browser.get()
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
                Arc::new(Peer {
                    id,
                    address: Mutex::new(None),
                    queue: PeerQueue::new(self.inner.config.queue_messages_max),
                    dropped: AtomicU64::new(0),
                    connections: AtomicU64::new(0),
                    ever_connected: std::sync::atomic::AtomicBool::new(false),
                    link: LinkStats::default(),
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
        // A browser tab cannot be dialled: it dials us, and we answer on its socket.
        let dialable = address != crate::peer_auth::records::BROWSER_ADDRESS;
        if let Ok(mut slot) = peer.address.lock() {
            *slot = Some(address);
        }
        if dialable && !peer.dialer_running.swap(true, Ordering::SeqCst) {
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
                reconnects: peer.link.reconnects.load(Ordering::Relaxed),
                idle_closes: peer.link.idle_closes.load(Ordering::Relaxed),
                last_heard_ms: peer.link.since_last_heard().map(|d| d.as_millis() as u64),
                ping_round_trip_us: peer.link.ping_round_trip().map(|d| d.as_micros() as u64),
                queued_messages: peer.queue.len() as u64,
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
            // A dial sent into a partition is abandoned after the dial timeout and retried, so a
            // heal is noticed by the next dial rather than after a long handshake timeout.
            let dialled = match tokio::time::timeout(
                config.liveness.dial_timeout,
                dial(&address, config, PROTOCOL_VERSION),
            )
            .await
            {
                Ok(dialled) => dialled,
                Err(_) => {
                    self.inner.metrics.peer_dial_timeouts_total.fetch_add(1, Ordering::Relaxed);
                    Err(HandshakeError::Timeout)
                }
            };
            match dialled {
                Ok((socket, acceptor, session)) if acceptor == peer.id => {
                    tracing::info!(peer = %peer.id, %address, "connected to peer");
                    if let Some(tcp) = crate::tls::dialled_tcp(socket.get_ref()) {
                        if let Err(error) =
                            peer_liveness::set_tcp_user_timeout(tcp, config.liveness.tcp_user_timeout)
                        {
                            tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT on a peer socket");
                        }
                    }
                    delay = config.reconnect_delay_min;
                    self.run_connection(peer.clone(), socket, session).await;
                    self.mark_unreachable(peer.id);
                    tracing::info!(peer = %peer.id, "connection to peer closed");
                }
                Ok((_, acceptor, _)) => {
                    tracing::warn!(peer = %peer.id, %address, %acceptor, "address answers as another node");
                }
                Err(error) => {
                    self.mark_unreachable(peer.id);
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
            delay = (delay * 2).min(config.reconnect_delay_max.min(config.liveness.redial_delay_max));
        }
    }

    /// Serves an accepted `/raft` socket: handshake as acceptor, then the connection loop.
    /// `budget`, if given, limits what the socket may read until the handshake completes; it
    /// is lifted once the peer is authenticated.
    pub async fn accept(
        &self,
        mut socket: axum::extract::ws::WebSocket,
        budget: Option<Arc<crate::limits::ReadBudget>>,
        incarnation: Option<u64>,
    ) {
        let metrics = &self.inner.metrics;
        let accepted =
            self.accept_handshake(&mut socket, incarnation).await.and_then(|accepted| {
                match &self.inner.config.incarnations {
                    Some(incarnations) => incarnations.check(accepted.0, incarnation).map(|()| accepted),
                    None => Ok(accepted),
                }
            });
        match accepted {
            Ok((peer_id, address, session)) => {
                if let Some(budget) = budget {
                    budget.lift();
                }
                let peer = self.peer(peer_id);
                if let Some(address) = address {
                    let known = peer.address.lock().ok().and_then(|a| a.clone());
                    if known.is_none() {
                        self.set_address(peer_id, address);
                    }
                }
                tracing::info!(peer = %peer_id, "peer connected");
                let _browser = self
                    .browser_gate()
                    .filter(|_| crate::peer_auth::records::is_browser_node_id(peer_id))
                    .map(|gate| gate.connection());
                self.run_connection(peer, socket, session).await;
                self.mark_unreachable(peer_id);
                tracing::info!(peer = %peer_id, "peer disconnected");
            }
            Err(reason) => {
                metrics.peer_handshakes_refused_total.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "refused a peer connection");
                let _ = socket
                    .send(WsMessage::binary(
                        encode_frame(FrameKind::Reject, &Reject { reason: reason.clone() }).into(),
                    ))
                    .await;
                let _ = socket
                    .send(<axum::extract::ws::Message as WsMessage>::close(CLOSE_POLICY, &reason))
                    .await;
            }
        }
    }

    /// `incarnation`: what the dialler told in its upgrade request (bound into the proofs).
    async fn accept_handshake(
        &self,
        socket: &mut axum::extract::ws::WebSocket,
        incarnation: Option<u64>,
    ) -> Result<(NodeId, Option<String>, Session), String> {
        let config = &self.inner.config;
        let challenge = Challenge {
            cluster_id: config.cluster_id.clone(),
            node_id: config.node_id,
            nonce: random_nonce(),
        };
        socket
            .send(WsMessage::binary(encode_frame(FrameKind::Challenge, &challenge).into()))
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
        if frame.get(1) == Some(&(FrameKind::Join as u8)) {
            let gate = self.browser_gate().ok_or("this node takes no browser peers")?.clone();
            let (id, session) = gate.join(socket, &challenge, &frame).await?;
            return Ok((id, None, session));
        }
        let (hello, features): (Hello, u8) =
            decode_frame_with_features(&frame, FrameKind::Hello).map_err(|e| e.to_string())?;
        if hello.cluster_id != config.cluster_id {
            return Err(format!("wrong cluster id {:?} (this is {:?})", hello.cluster_id, config.cluster_id));
        }
        if hello.node_id == config.node_id {
            return Err(format!("node id {} is this node's own id", hello.node_id));
        }
        let transcript = Transcript {
            acceptor_nonce: challenge.nonce,
            dialler_nonce: hello.nonce,
            cluster_id: config.cluster_id.clone(),
            acceptor: config.node_id,
            dialler: hello.node_id,
        };
        // An admitted browser tab proves its own key, which this node recomputes (issue #13).
        let tab_key;
        let secret: &[u8] = if crate::peer_auth::records::is_browser_node_id(hello.node_id) {
            let gate = self.browser_gate().ok_or("this node takes no browser peers")?;
            tab_key = gate.hello_key(hello.node_id)?;
            &tab_key
        } else {
            &config.secret
        };
        // This node told its own incarnation in the upgrade answer (`server::raft_socket`).
        let bound = BoundIncarnations::told(config.incarnations.as_ref().map(|book| book.own()), incarnation);
        // The proof binds the address the Hello gives (which this node may dial back), so a
        // relay that rewrites it is refused here.
        let proof = transcript.check_hello(secret, &hello, bound).ok_or_else(|| {
            "authentication failed: wrong cluster secret (or an altered handshake)".to_string()
        })?;
        let welcome = Welcome { mac: transcript.welcome_mac_bound(secret, bound) };
        socket
            .send(WsMessage::binary(encode_frame(FrameKind::Welcome, &welcome).into()))
            .await
            .map_err(|e| format!("cannot send welcome: {e}"))?;
        let address = match proof {
            HelloProof::Addressed => hello.address,
            HelloProof::AddressNotBound => {
                tracing::info!(peer = %hello.node_id, "an older build's hello: its address is not bound, ignored");
                None
            }
        };
        let address = address.filter(|_| !crate::peer_auth::records::is_browser_node_id(hello.node_id));
        let mut session = transcript.session(secret, Side::Acceptor);
        // The dialler reads `RaftShared` frames (a tab of this build; `outbound`). Honoured
        // for tabs only: the byte is not under the handshake proof, and a native peer of an
        // older build would close the connection on the unknown kind.
        let tab = crate::peer_auth::records::is_browser_node_id(hello.node_id);
        session.sealer.set_peer_reads_shared(tab && features & crate::peer_auth::FEATURE_SHARED_FRAMES != 0);
        Ok((hello.node_id, address, session))
    }

    /// Carries traffic on one authenticated connection until it closes: inbound frames go to the
    /// core; if this connection holds the peer's queue, outbound messages go out here. It pings
    /// the peer and closes when nothing was heard for the idle timeout or a write takes longer
    /// than the write timeout (see [`crate::peer_liveness`]); the queue then passes to the next
    /// connection.
    async fn run_connection<S, M, E>(&self, peer: Arc<Peer>, socket: S, session: Session)
    where
        S: Stream<Item = Result<M, E>> + Sink<M> + Unpin + Send,
        M: WsMessage + LivenessMessage,
        E: fmt::Display,
    {
        let metrics = &self.inner.metrics;
        let liveness = self.inner.config.liveness;
        metrics.peer_connections_total.fetch_add(1, Ordering::Relaxed);
        peer.connections.fetch_add(1, Ordering::Relaxed);
        if peer.ever_connected.swap(true, Ordering::Relaxed) {
            peer.link.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        peer.link.heard();
        let (mut sink, mut stream) = socket.split();
        let (mut sealer, mut opener) = session.split();
        let mut lease = peer.queue.try_lease();
        let mut shutdown = self.inner.shutdown.clone();
        let mut lease_retry = tokio::time::interval(Duration::from_millis(50));
        let mut ping = tokio::time::interval(liveness.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        // When this connection may write again (learner tabs only, see `outbound`).
        let mut next_write: Option<tokio::time::Instant> = None;
        let me = self.inner.config.node_id;
        let browser = self.browser_gate().filter(|_| crate::peer_auth::records::is_browser_node_id(peer.id));
        let close_reason: Option<(u16, String)> = loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        peer.link.heard();
                        if let Some(round_trip) = message.pong_payload().and_then(peer_liveness::pong_round_trip) {
                            peer.link.ping_round_trip_micros.store(round_trip.as_micros() as u64, Ordering::Relaxed);
                        }
                        match message.classify() {
                            Incoming::Binary(bytes) => {
                                if let Err(why) = self.deliver(&peer, me, &bytes, &mut opener) {
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
                        }
                    }
                    Some(Err(error)) => {
                        metrics.peer_frames_malformed_total.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer = %peer.id, %error, "peer socket error");
                        break None;
                    }
                    None => break None,
                },
                next = next_queued(&lease, liveness.stale_after) => {
                    let (message, stale) = next;
                    // A learner tab's appends wait a little and travel merged (`outbound`).
                    let learner_tab = browser.filter(|gate| !gate.is_voter(peer.id)).is_some();
                    if let Some(at) = next_write.filter(|_| learner_tab && message.carries_entries()) {
                        tokio::time::sleep_until(at).await;
                    }
                    let merge = learner_tab.then_some(outbound::MERGE_BYTES_MAX);
                    let batch_max = self.inner.config.write_batch_messages_max;
                    let (batch, stale_more) = match lease.as_ref() {
                        Some(lease) => outbound::drain(message, lease.queue(), liveness.stale_after, batch_max, merge),
                        None => (vec![message], 0),
                    };
                    let stale_total = stale + stale_more;
                    let write = async {
                        let mut bytes = 0;
                        for message in &batch {
                            let frame = message.seal(&mut sealer);
                            bytes += frame.len();
                            sink.feed(M::binary(frame)).await.map_err(|_| ())?;
                        }
                        if let Some(browser) = browser {
                            browser.sent(bytes);
                        }
                        sink.flush().await.map_err(|_| ())
                    };
                    let written = tokio::time::timeout(liveness.write_timeout, write).await;
                    if stale_total > 0 {
                        peer.dropped.fetch_add(stale_total, Ordering::Relaxed);
                        metrics.peer_messages_stale_total.fetch_add(stale_total, Ordering::Relaxed);
                        // Lost as surely as a full queue's oldest: the core re-sends from the
                        // match point at once rather than after a heartbeat round.
                        self.mark_unreachable(peer.id);
                    }
                    if learner_tab {
                        next_write = Some(tokio::time::Instant::now() + outbound::LEARNER_WRITE_INTERVAL);
                    }
                    match written {
                        Ok(Ok(())) => {}
                        Ok(Err(())) => break None,
                        Err(_) => {
                            self.on_write_timeout(&peer);
                            break None;
                        }
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= liveness.idle_timeout {
                        peer.link.idle_closes.fetch_add(1, Ordering::Relaxed);
                        metrics.peer_idle_closes_total.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(peer = %peer.id, idle_ms = last_heard.elapsed().as_millis() as u64, "nothing heard from peer; closing the connection");
                        // TODO(core-repl): tell the core the peer is unreachable
                        // (`RaftNode::report_unreachable(peer.id)`), so a leader moves the follower
                        // to probe at once instead of streaming into the void. Here, on a write
                        // timeout and on a failed dial are the hook points.
                        break Some((1001, "idle: nothing heard within the idle timeout".into()));
                    }
                    let sent = tokio::time::timeout(liveness.write_timeout, sink.send(<M as LivenessMessage>::ping(peer_liveness::ping_payload()))).await;
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => {
                            self.on_write_timeout(&peer);
                            break None;
                        }
                    }
                }
                _ = lease_retry.tick(), if lease.is_none() => {
                    lease = peer.queue.try_lease();
                }
                _ = shutdown.changed() => break Some((1001, "node shutting down".into())),
            }
        };
        if let Some((code, reason)) = close_reason {
            // The far end may be the reason we are closing: do not wait on it for long.
            let _ = tokio::time::timeout(liveness.write_timeout, sink.send(M::close(code, &reason))).await;
        }
        peer.connections.fetch_sub(1, Ordering::Relaxed);
        drop(lease);
    }

    fn on_write_timeout(&self, peer: &Peer) {
        peer.link.write_timeouts.fetch_add(1, Ordering::Relaxed);
        self.inner.metrics.peer_write_timeouts_total.fetch_add(1, Ordering::Relaxed);
        tracing::info!(peer = %peer.id, "a write to the peer timed out; closing the connection");
    }

    /// Checks one inbound frame (tag, then body, then sender and recipient) and hands its
    /// message to the core. Every refusal is counted here; the caller closes the connection.
    fn deliver(&self, peer: &Peer, me: NodeId, frame: &[u8], opener: &mut Opener) -> Result<(), String> {
        let metrics = &self.inner.metrics;
        let browser = self.browser_gate().filter(|_| crate::peer_auth::records::is_browser_node_id(peer.id));
        // A tab's connection carries `TabStatus` frames too (issue #14, `browser_voters`).
        let opened = match browser {
            Some(gate) => gate.voters.open(peer.id, frame, opener, &gate.metrics.voters),
            None => opener.open_message(frame).map(Some),
        };
        let message: Message = match opened {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(()),
            Err(error @ FrameError::BadTag { .. }) => {
                metrics.peer_frames_unauthenticated_total.fetch_add(1, Ordering::Relaxed);
                return Err(error.to_string());
            }
            Err(error) => {
                metrics.peer_frames_malformed_total.fetch_add(1, Ordering::Relaxed);
                return Err(error.to_string());
            }
        };
        if let Err(why) = check_addressed(&message, peer.id, me) {
            metrics.peer_frames_malformed_total.fetch_add(1, Ordering::Relaxed);
            return Err(why);
        }
        if let Some(gate) = browser {
            match gate.check_inbound(&message) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(why) => {
                    metrics.peer_frames_malformed_total.fetch_add(1, Ordering::Relaxed);
                    return Err(why);
                }
            }
        }
        if self.inner.inbound.try_send(message).is_err() {
            self.inner.metrics.peer_inbox_dropped_total.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Whether a message read on the authenticated connection of `peer` may go to node `me`: it
/// must name that peer as its sender (a peer may not speak for another) and this node as its
/// recipient. Public for the `peer_frame` fuzz harness, which checks it against its own oracle.
///
/// # Errors
/// Why the message is refused; the caller closes the connection.
pub fn check_addressed(message: &Message, peer: NodeId, me: NodeId) -> Result<(), String> {
    if message.from != peer {
        return Err(format!("message claims to come from node {} on node {peer}'s connection", message.from));
    }
    if message.to != me {
        return Err(format!("message addressed to node {}, this is node {me}", message.to));
    }
    Ok(())
}

/// The next message of the leased queue; never, without a lease.
async fn next_queued(lease: &Option<QueueLease<Outbound>>, stale_after: Duration) -> (Outbound, u64) {
    match lease {
        Some(lease) => lease.queue().pop(stale_after).await,
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
        if peer.queue.push(self.inner.entries.outbound(message)) == Pushed::DroppedOldest {
            peer.dropped.fetch_add(1, Ordering::Relaxed);
            self.inner.metrics.peer_messages_dropped_total.fetch_add(1, Ordering::Relaxed);
            self.mark_unreachable(peer.id);
        }
    }

    fn take_unreachable(&self) -> Vec<NodeId> {
        let mut unreachable = self.inner.unreachable.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        core::mem::take(&mut *unreachable).into_iter().collect()
    }
}
