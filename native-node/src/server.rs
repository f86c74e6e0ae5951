//! One node's server: storage, the core task, the peer transport and the HTTP/WebSocket API,
//! all on one port.
//!
//! | path | what |
//! |---|---|
//! | `GET /raft` (WebSocket) | peer transport, see [`crate::transport`] |
//! | `GET /client` (WebSocket), `POST /client` | the JSON client API, see [`crate::api`] |
//! | `GET/PUT/DELETE /v1/kv/{key}` | curl-friendly shortcuts (`?read=stale`) |
//! | `GET /events` (WebSocket) | the node's event stream, JSON |
//! | `GET /health` | 200 with role and leader while the node runs |
//! | `GET /metrics` | Prometheus text |
//! | `/` | static files (the playground, `../web` by default) |
//!
//! A follower answers writes and linearizable reads with `not_leader` and the leader's address
//! (HTTP: `307` with `Location`), so clients go to the leader directly next time.
//!
//! [`run`] takes the listener and a shutdown future, as `main` and tests both need.

use crate::admin_routes;
use crate::admission::AdminRefusal;
use crate::api::{self, Operation, Request};
use crate::kv::{decode_response, encode_query, KvStateMachine, StateMachine};
use crate::metrics::Metrics;
use crate::peer_liveness::LivenessConfig;
use crate::raft::{Raft, RaftConfig, RaftError};
use crate::storage::{Identity, Storage, StorageError};
use crate::transport::{Transport, TransportConfig};
use axum::body::Bytes as BodyBytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use raft_core::kv::{KvConfig, KvError, Output};
use raft_core::{Membership, NodeId};
use serde_json::{json, Value};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

/// Read buffer of a client WebSocket. tungstenite zero-fills its read buffer up to this size on
/// every socket read, so the 128 KiB default costs a large memset per small JSON request.
pub const CLIENT_READ_BUFFER_BYTES: usize = 4 * 1024;

/// How often an event stream is pinged, so a quiet one is not closed as idle.
pub const EVENTS_PING_INTERVAL: Duration = Duration::from_secs(20);

/// `TCP_USER_TIMEOUT` of accepted sockets (peers and clients): the kernel drops a connection
/// whose sent data stays unacknowledged this long. Looser than a dialled peer socket's, since
/// clients may be far away; peer connections also have their own idle and write timeouts.
pub const ACCEPTED_TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests one client WebSocket may have in flight; reading pauses beyond it.
pub const CLIENT_INFLIGHT_REQUESTS_MAX: usize = 1024;

/// Everything `raft-node serve` is told.
#[derive(Clone)]
pub struct ServeConfig {
    /// This node.
    pub node_id: NodeId,
    /// The cluster's id; peers and data directories of other clusters are refused.
    pub cluster_id: String,
    /// The peer secret (and the admin secret too, unless `admin_secret` is set).
    pub secret: Vec<u8>,
    /// A separate admin secret (see [`crate::credentials`]).
    pub admin_secret: Option<Vec<u8>>,
    /// The token clients must present; `None`: the client API is open (loopback).
    pub client_token: Option<Vec<u8>>,
    /// TLS for clients and peers; `None`: plaintext.
    pub tls: Option<crate::tls::NodeTls>,
    /// Where the log, hard state and snapshots live.
    pub data_dir: PathBuf,
    /// The host:port peers and clients reach this node at; the listener's address by default.
    pub advertise_address: Option<String>,
    /// Start a new cluster of these members (id, host:port) if the data directory is empty.
    pub bootstrap: Vec<(NodeId, String)>,
    /// Ask this node (host:port) to add us as a voter.
    pub join: Option<String>,
    /// Static files served at `/`.
    pub web_dir: Option<PathBuf>,
    /// Wall-clock length of one Raft tick.
    pub tick_interval: Duration,
    /// Election timeout in ticks (heartbeats go every tenth of it); `None`: the default.
    pub election_timeout_ticks: Option<u64>,
    /// How long a client request may wait for its answer.
    pub request_timeout: Duration,
    /// Size of one preallocated log segment.
    pub wal_segment_bytes: u64,
    /// Take a snapshot (and compact the log) after this many applied entries; 0: never.
    pub snapshot_interval_entries: u64,
    /// Entries kept behind a snapshot for slightly slow followers.
    pub snapshot_trailing_entries: u64,
    /// The largest snapshot from a leader this node stages in memory.
    pub snapshot_staging_bytes_max: u64,
    /// Connection caps and timeouts of the listener.
    pub limits: crate::limits::ListenerLimits,
    /// Browser tabs as learners: TTL and cap (see [`crate::browser_peers`]).
    pub browser_peers: crate::browser_peers::BrowserPeerConfig,
    /// Bytes the store may hold before puts are refused with `no_space`; 0: no quota.
    pub quota_backend_bytes: u64,
    /// Also snapshot once the entries applied since the last snapshot carry this many bytes.
    pub snapshot_interval_bytes: u64,
    /// The largest snapshot `POST /admin/restore` accepts (streamed, see [`crate::restore`]).
    pub restore_bytes_max: u64,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("node_id", &self.node_id)
            .field("cluster_id", &self.cluster_id)
            .field("data_dir", &self.data_dir)
            .field("bootstrap", &self.bootstrap)
            .field("join", &self.join)
            .finish()
    }
}

impl ServeConfig {
    /// A configuration with defaults for everything but identity, secret and data directory.
    pub fn new(node_id: NodeId, secret: Vec<u8>, data_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            node_id,
            cluster_id: "flotilla".into(),
            secret,
            admin_secret: None,
            client_token: None,
            tls: None,
            data_dir,
            advertise_address: None,
            bootstrap: Vec::new(),
            join: None,
            web_dir: None,
            tick_interval: Duration::from_millis(10),
            election_timeout_ticks: None,
            request_timeout: Duration::from_secs(5),
            wal_segment_bytes: crate::wal::SEGMENT_BYTES_DEFAULT,
            snapshot_interval_entries: 100_000,
            snapshot_trailing_entries: 1024,
            snapshot_staging_bytes_max: 1 << 30,
            limits: crate::limits::ListenerLimits::default(),
            browser_peers: crate::browser_peers::BrowserPeerConfig::default(),
            quota_backend_bytes: crate::quota::QUOTA_BACKEND_BYTES_DEFAULT,
            snapshot_interval_bytes: crate::quota::SNAPSHOT_INTERVAL_BYTES_DEFAULT,
            restore_bytes_max: crate::restore::RESTORE_BYTES_MAX_DEFAULT,
        }
    }
}

impl ServeConfig {
    /// The node's credentials: the peer secret, the admin secret (the peer secret unless set
    /// apart) and the client token.
    pub fn credentials(&self) -> crate::credentials::Credentials {
        crate::credentials::Credentials::separate(
            self.secret.clone(),
            self.admin_secret.clone().unwrap_or_else(|| self.secret.clone()),
            self.client_token.clone(),
        )
    }
}

/// Why a node could not start or had to stop.
#[derive(Debug)]
pub enum ServeError {
    /// Storage could not be opened or holds corrupt data.
    Storage(StorageError),
    /// The node could not start.
    Start(String),
    /// The node stopped on an error while running.
    Fatal(String),
    /// The listener failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Storage(error) => write!(f, "{error}"),
            ServeError::Start(why) => write!(f, "cannot start: {why}"),
            ServeError::Fatal(why) => write!(f, "stopped on an error: {why}"),
            ServeError::Io(error) => write!(f, "listener: {error}"),
        }
    }
}

impl std::error::Error for ServeError {}

pub(crate) struct AppState {
    pub(crate) raft: Raft,
    pub(crate) transport: Transport,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) node_id: NodeId,
    pub(crate) address: String,
    pub(crate) request_timeout: Duration,
    pub(crate) restore_bytes_max: u64,
    /// `/client` and `/events` sockets.
    pub(crate) client_websockets: Arc<Semaphore>,
    /// `/raft` sockets, a pool of their own so that clients never crowd out peers.
    pub(crate) peer_websockets: Arc<Semaphore>,
    pub(crate) admin_guard: crate::admission::AdminGuard,
    pub(crate) client_gate: crate::credentials::ClientGate,
    pub(crate) registrations: crate::admission::RegistrationLimiter,
    pub(crate) handshake_read_bytes_max: u64,
    pub(crate) browser_peers: Arc<crate::browser_peers::BrowserPeers>,
    /// The page an invitation link opens (`/index.html` when this node serves the playground).
    pub(crate) invite_page: String,
    /// Stamps the commands this node proposes (client sessions' clock, thesis §6.3).
    pub(crate) session_clock: crate::session_clock::SessionClock,
    /// `https` when this node serves TLS, else `http`: the scheme of the links it hands out
    /// (redirects, invitations). Every node of a cluster serves the same.
    pub(crate) scheme: &'static str,
    /// `/v1/cluster`'s answer, rebuilt at most every 250 ms (see [`crate::cluster_view`]).
    pub(crate) cluster_view: crate::cluster_view::ClusterView,
}

pub(crate) type Shared = Arc<AppState>;

/// A running node: its handle, its transport and its address. [`Node::shutdown`] stops it.
pub struct Node {
    /// The Raft handle.
    pub raft: Raft,
    /// The peer transport.
    pub transport: Transport,
    /// The bound address.
    pub address: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    helpers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("address", &self.address).finish()
    }
}

fn seed_for(node_id: NodeId) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes = (now.as_nanos() as u64).to_le_bytes();
    }
    u64::from_le_bytes(bytes) ^ node_id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Opens storage, starts the core task, the transport and the HTTP server on `listener`.
///
/// # Errors
/// [`ServeError`] when storage is corrupt or locked, or the node cannot be restored.
pub async fn start(config: ServeConfig, listener: TcpListener) -> Result<Node, ServeError> {
    let address = listener.local_addr().map_err(ServeError::Io)?;
    let advertise = config.advertise_address.clone().unwrap_or_else(|| address.to_string());
    let data_dir = config.data_dir.clone();
    let segment_bytes = config.wal_segment_bytes;
    let storage =
        tokio::task::spawn_blocking(move || Storage::open_with_segment_bytes(&data_dir, segment_bytes))
            .await
            .map_err(|e| ServeError::Start(e.to_string()))?
            .map_err(ServeError::Storage)?;
    storage
        .claim_identity(&Identity { cluster_id: config.cluster_id.clone(), node_id: config.node_id })
        .map_err(ServeError::Storage)?;
    let recovered_addresses = storage.addresses().map_err(ServeError::Storage)?;
    let storage = Arc::new(storage);
    let incarnations = crate::incarnation::Incarnations::load(&storage).map_err(ServeError::Storage)?;

    let metrics = Arc::new(Metrics::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (inbound_tx, inbound_rx) = mpsc::channel(16 * 1024);
    let mut transport_config = TransportConfig::new(
        config.node_id,
        config.cluster_id.clone(),
        config.secret.clone(),
        Some(advertise.clone()),
    );
    // Peer connections are checked against the election timeout: a dead link is replaced
    // before it can cost an election (issue 12).
    let election_ticks = config
        .election_timeout_ticks
        .map_or(RaftConfig::new(config.node_id, 0).core.election_timeout_ticks, |ticks| ticks.max(4));
    let election_timeout = config.tick_interval * u32::try_from(election_ticks).unwrap_or(u32::MAX);
    transport_config.liveness = LivenessConfig::for_election_timeout(election_timeout);
    transport_config.tls = config.tls.as_ref().map(|tls| tls.peer_client.clone());
    transport_config.incarnations = Some(incarnations.clone());
    let transport = Transport::new(transport_config, inbound_tx, metrics.clone(), shutdown_rx.clone());
    let mut addresses = recovered_addresses;
    for (id, peer_address) in &config.bootstrap {
        addresses.insert(*id, peer_address.clone());
    }
    if !config.bootstrap.is_empty() {
        storage.save_addresses(&addresses).map_err(ServeError::Storage)?;
    }

    let mut raft_config = RaftConfig::new(config.node_id, seed_for(config.node_id));
    raft_config.tick_interval = config.tick_interval;
    if let Some(ticks) = config.election_timeout_ticks {
        raft_config.core.election_timeout_ticks = ticks.max(4);
        raft_config.core.heartbeat_interval_ticks = (ticks / 10).max(1);
        raft_config.core.clock_drift_ticks_max = (ticks / 10).max(1);
    }
    raft_config.core.snapshot_interval_entries = config.snapshot_interval_entries;
    raft_config.core.snapshot_trailing_entries = config.snapshot_trailing_entries;
    raft_config.snapshot_staging_bytes_max = config.snapshot_staging_bytes_max;
    raft_config.snapshot_interval_bytes = config.snapshot_interval_bytes;
    if !config.bootstrap.is_empty() {
        raft_config.bootstrap = Some(Membership::with_voters(config.bootstrap.iter().map(|(id, _)| *id)));
    }
    let browser_records = Arc::default();
    let browser_peers = Arc::new(crate::browser_peers::BrowserPeers::new(
        config.browser_peers,
        config.cluster_id.clone(),
        config.node_id,
        transport.config().secret.clone(),
        Arc::clone(&browser_records),
        metrics.browser_peers.clone(),
    ));
    transport.set_browser_gate(browser_peers.clone());
    let kv_machine = KvStateMachine::with_quota(KvConfig::default(), config.quota_backend_bytes)
        .map_err(ServeError::Start)?;
    let session_clock = crate::session_clock::SessionClock::new(kv_machine.store_clock());
    let state_machine: Box<dyn StateMachine> =
        Box::new(crate::browser_peers::RecordingStateMachine::new(kv_machine, browser_records));
    let address_book = (Arc::downgrade(&storage), addresses.clone());
    let raft = Raft::start(
        raft_config,
        state_machine,
        storage,
        Arc::new(transport.clone()),
        inbound_rx,
        metrics.clone(),
    )
    .map_err(|e| match e {
        crate::raft::StartError::Storage(error) => ServeError::Storage(error),
        other => ServeError::Start(other.to_string()),
    })?;
    for (id, peer_address) in addresses {
        transport.set_address(id, peer_address);
    }
    browser_peers.attach(raft.clone(), transport.clone());

    let server_metrics = metrics.clone();
    let state = Arc::new(AppState {
        raft: raft.clone(),
        transport: transport.clone(),
        metrics,
        node_id: config.node_id,
        address: advertise.clone(),
        request_timeout: config.request_timeout,
        restore_bytes_max: config.restore_bytes_max,
        client_websockets: Arc::new(Semaphore::new(config.limits.client_websockets_max)),
        peer_websockets: Arc::new(Semaphore::new(config.limits.peer_websockets_max)),
        admin_guard: crate::admission::AdminGuard::new(config.credentials().admin_secret()),
        client_gate: crate::credentials::ClientGate::new(&config.credentials()),
        registrations: crate::admission::RegistrationLimiter::default(),
        handshake_read_bytes_max: config.limits.handshake_read_bytes_max,
        browser_peers: browser_peers.clone(),
        invite_page: if config.web_dir.is_some() { "/index.html" } else { "/" }.to_string(),
        session_clock,
        scheme: if config.tls.is_some() { "https" } else { "http" },
        cluster_view: crate::cluster_view::ClusterView::default(),
    });
    let router = router(state, config.web_dir.clone());
    // The accept loop: connection caps, header-read and idle timeouts, no Nagle (see
    // `limits`).
    let server = tokio::spawn(crate::limits::serve(
        listener,
        router,
        config.limits.clone(),
        server_metrics,
        config.tls.as_ref().map(crate::tls::NodeTls::acceptor),
        shutdown_rx.clone(),
    ));
    let mut helpers = vec![tokio::spawn(crate::incarnation::forget_removed(raft.clone(), incarnations))];
    // Addresses learnt later (a joined node's peers) are saved too (issue 11, M16).
    helpers.push(tokio::spawn(crate::address_book::keep(
        transport.clone(),
        address_book.0,
        address_book.1,
        shutdown_rx.clone(),
    )));
    helpers.push(crate::browser_voters::spawn_watch(browser_peers.clone(), shutdown_rx.clone()));
    helpers.push(crate::browser_peers::spawn_reaper(browser_peers, shutdown_rx.clone()));
    // A node that already has a log is a member (or was): asking to join again would be refused.
    if let Some(join) = config.join.clone().filter(|_| raft.status().last_index == 0) {
        let credentials = config.credentials();
        let tls = config.tls.as_ref().map(|tls| tls.peer_client.clone());
        helpers.push(tokio::spawn(join_cluster(join, config.node_id, advertise, credentials, tls)));
    }
    tracing::info!(node = %config.node_id, %address, "node serving");
    Ok(Node { raft, transport, address, shutdown: shutdown_tx, server, helpers })
}

/// Asks `join` to add this node as a voter, until it answers for good. Joining is an admin act:
/// it takes the admin secret.
async fn join_cluster(
    join: String,
    node_id: NodeId,
    advertise: String,
    credentials: crate::credentials::Credentials,
    tls: Option<Arc<rustls::ClientConfig>>,
) {
    let mut config = crate::client::ClientConfig::new(vec![join.clone()]);
    config.secret = Some(String::from_utf8_lossy(credentials.admin_secret()).into_owned());
    config.tls = tls;
    config.use_session = false;
    let mut client = crate::client::Client::new(config);
    match client.admin(json!({ "op": "add_voter", "node": node_id.0, "address": advertise })).await {
        Ok(response) => tracing::info!(%join, ?response, "joined the cluster"),
        Err(error) => tracing::error!(%join, %error, "joining the cluster failed"),
    }
}

impl Node {
    /// Stops the node gracefully: the HTTP server stops accepting, peers are told, the core
    /// task finishes its write in flight.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.raft.shutdown().await;
        for helper in self.helpers {
            helper.abort();
        }
        // Connections (client WebSockets) may linger; do not wait for them forever.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.server).await;
    }
}

/// Runs a node until `shutdown` resolves or the node stops on an error.
///
/// # Errors
/// [`ServeError`] when the node cannot start or stops on an error (for example corrupt storage
/// or a failed fsync).
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let node = start(config, listener).await?;
    let mut status = node.raft.watch_status();
    let fatal = async {
        loop {
            if let Some(error) = status.borrow_and_update().fatal_error.clone() {
                return error;
            }
            if status.changed().await.is_err() {
                return "the core task ended".to_string();
            }
        }
    };
    let result = tokio::select! {
        () = shutdown => Ok(()),
        error = fatal => Err(ServeError::Fatal(error)),
    };
    tracing::info!("shutting down");
    node.shutdown().await;
    result
}

fn router(state: Shared, web_dir: Option<PathBuf>) -> Router {
    let playground = web_dir.is_some();
    let router = Router::new()
        .route("/", get(move |state: State<Shared>| status_page(state, playground)))
        .route("/raft", get(raft_socket))
        .route("/client", get(client_socket).post(client_http))
        .route("/events", get(admin_routes::events_socket))
        .route("/health", get(admin_routes::health))
        .route("/metrics", get(admin_routes::metrics))
        .route("/v1/cluster", get(crate::cluster_view::cluster))
        .route("/v1/kv/{key}", get(kv_get).put(kv_put).delete(kv_delete))
        .route("/admin/backup", get(admin_routes::admin_backup))
        .route("/admin/invite", axum::routing::post(crate::invite::admin_invite))
        // Reads its own body, after the admin check and up to its own bound.
        .route("/admin/restore", axum::routing::post(admin_routes::admin_restore))
        .layer(DefaultBodyLimit::max(api::REQUEST_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::credentials::client_gate))
        .with_state(state);
    match web_dir {
        Some(dir) => router.fallback_service(tower_http::services::ServeDir::new(dir)),
        None => router,
    }
}

pub(crate) fn too_many_sockets(state: &AppState, what: &str) -> Response {
    state.metrics.connections_refused_total.fetch_add(1, Ordering::Relaxed);
    let body = api::error_response("busy", format!("too many {what} WebSocket connections"), true);
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

async fn raft_socket(
    State(state): State<Shared>,
    connection: Option<axum::Extension<crate::limits::ConnectionContext>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let incarnation = headers
        .get(crate::incarnation::INCARNATION_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::incarnation::parse);
    let own_incarnation = state.transport.config().incarnations.as_ref().map(|book| book.own());
    // Under TLS, only a connection with a client certificate from the CA may be a peer.
    if connection.as_ref().is_some_and(|axum::Extension(context)| !context.peer_proof.may_be_peer()) {
        state.metrics.peer_certificate_missing_total.fetch_add(1, Ordering::Relaxed);
        let body = api::error_response(
            "forbidden",
            "peers must present a client certificate from the cluster CA",
            false,
        );
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let Ok(permit) = state.peer_websockets.clone().try_acquire_owned() else {
        return too_many_sockets(&state, "peer");
    };
    let frame_bytes_max = state.transport.config().frame_bytes_max;
    let transport = state.transport.clone();
    // Until the handshake completes, the socket may read only a few kilobytes.
    let budget = connection.map(|axum::Extension(context)| context.read_budget);
    if let Some(budget) = &budget {
        budget.limit_to(state.handshake_read_bytes_max);
    }
    let mut response = upgrade
        .max_message_size(frame_bytes_max)
        .max_frame_size(frame_bytes_max)
        .read_buffer_size(crate::transport::READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            transport.accept(socket, budget, incarnation).await;
            drop(permit);
        });
    // The dialler checks this node's incarnation as this node checks its (issue 11, M17).
    if let Some(value) = own_incarnation.and_then(|own| crate::incarnation::format(own).parse().ok()) {
        response.headers_mut().insert(crate::incarnation::INCARNATION_HEADER, value);
    }
    response
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_string)
}

pub(crate) fn admin_refused(refusal: AdminRefusal) -> (StatusCode, Value) {
    match refusal {
        AdminRefusal::WrongSecret => (
            StatusCode::UNAUTHORIZED,
            api::error_response("unauthorized", "admin operations need the cluster secret", false),
        ),
        AdminRefusal::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            api::error_response(
                "rate_limited",
                "too many failed admin attempts from this address; wait",
                true,
            ),
        ),
    }
}

/// Runs one request from `remote` and records its latency by op and result. Returns the HTTP
/// status and the JSON body (without `id`).
async fn execute(
    state: &AppState,
    request: Request,
    header_secret: Option<String>,
    remote: Option<IpAddr>,
) -> (StatusCode, Value) {
    let op = request.operation.name();
    let started = std::time::Instant::now();
    let (status, body) = execute_request(state, request, header_secret, remote).await;
    state.metrics.request_seconds.observe(op, api::result_label(&body), started.elapsed());
    (status, body)
}

async fn execute_request(
    state: &AppState,
    request: Request,
    header_secret: Option<String>,
    remote: Option<IpAddr>,
) -> (StatusCode, Value) {
    state.metrics.client_requests_total.fetch_add(1, Ordering::Relaxed);
    let operation = request.operation;
    if operation.is_admin() {
        let given = request.secret.or(header_secret).unwrap_or_default();
        if let Err(refusal) = state.admin_guard.check(given.as_bytes(), remote, &state.metrics) {
            return admin_refused(refusal);
        }
    }
    // Promotions of and transfers to browser tabs (issue #14), once the caller is an admin.
    let operation = match crate::browser_voters::screen_admin(state, operation) {
        Ok(operation) => operation,
        Err(refused) => return refused,
    };
    if matches!(operation, Operation::Register) && !state.registrations.allow(remote) {
        state.metrics.registrations_throttled_total.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            api::error_response(
                "rate_limited",
                "too many session registrations from this address; retry later",
                true,
            ),
        );
    }
    if operation.touches_reserved_key() {
        state.metrics.client_requests_malformed_total.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::FORBIDDEN,
            api::error_response("reserved_key", crate::kv::reserved_key_message(), false),
        );
    }
    let timeout = state.request_timeout;
    let (term, is_leader) = {
        let status = state.raft.watch_status();
        let status = status.borrow();
        (status.term, status.role == "leader")
    };
    let timestamp_ms = state.session_clock.stamp(term, is_leader);
    if let Some(command) = operation.command(timestamp_ms) {
        // Refuse what the store would refuse before it costs a log entry.
        if let Err(error) = command.validate() {
            return (StatusCode::UNPROCESSABLE_ENTITY, api::kv_response(Err(error), None));
        }
        return match state.raft.apply(command.encode(), timeout).await {
            Ok(applied) => kv_answer(decode_response(&applied.response), Some(applied.index.0)),
            Err(error) => raft_error(state, &error),
        };
    }
    if let Some((query, mode)) = operation.query() {
        if let Err(error) = query.validate() {
            return (StatusCode::UNPROCESSABLE_ENTITY, api::kv_response(Err(error), None));
        }
        return match state.raft.read(encode_query(&query), mode, timeout).await {
            Ok(bytes) => kv_answer(decode_response(&bytes), None),
            Err(error) => raft_error(state, &error),
        };
    }
    let result = match operation {
        Operation::Status => {
            let status = state.raft.status();
            let leader_address = status.leader.and_then(|id| state.transport.address(NodeId(id)));
            return (
                StatusCode::OK,
                json!({
                    "ok": true,
                    "node": state.node_id.0,
                    "address": state.address,
                    "leader": status.leader,
                    "leader_address": leader_address,
                    "status": status,
                    "peers": state.transport.peer_statuses(),
                    "browser_peers": state.browser_peers.statuses(),
                    "browser_voters_silent": state.browser_peers.silent_voters(),
                }),
            );
        }
        Operation::Snapshot => {
            state.raft.snapshot(timeout).await.map(|index| json!({ "ok": true, "index": index.0 }))
        }
        Operation::AddVoter { node, address } => state
            .raft
            .add_voter(NodeId(node), address, timeout)
            .await
            .map(|index| json!({ "ok": true, "index": index.0 })),
        Operation::AddNonvoter { node, address } => state
            .raft
            .add_nonvoter(NodeId(node), address, timeout)
            .await
            .map(|index| json!({ "ok": true, "index": index.0 })),
        Operation::Demote { node } => state
            .raft
            .demote_voter(NodeId(node), timeout)
            .await
            .map(|index| json!({ "ok": true, "index": index.0 })),
        Operation::Remove { node } => state
            .raft
            .remove_server(NodeId(node), timeout)
            .await
            .map(|index| json!({ "ok": true, "index": index.0 })),
        Operation::Transfer { node } => state
            .raft
            .leadership_transfer(node.map(NodeId), timeout)
            .await
            .map(|leader| json!({ "ok": true, "leader": leader.0 })),
        _ => {
            return (StatusCode::BAD_REQUEST, api::error_response("bad_request", "unknown operation", false))
        }
    };
    match result {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => raft_error(state, &error),
    }
}

pub(crate) fn kv_answer(
    response: Result<raft_core::kv::Response, String>,
    index: Option<u64>,
) -> (StatusCode, Value) {
    let response = match response {
        Ok(response) => response,
        Err(why) => return (StatusCode::INTERNAL_SERVER_ERROR, api::error_response("internal", why, false)),
    };
    let status = match &response {
        Ok(Output::NotSwapped { .. }) => StatusCode::CONFLICT,
        Ok(_) => StatusCode::OK,
        Err(
            KvError::SessionExpired { .. } | KvError::UnknownSession { .. } | KvError::StaleSequence { .. },
        ) => StatusCode::CONFLICT,
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, api::kv_response(response, index))
}

pub(crate) fn raft_error(state: &AppState, error: &RaftError) -> (StatusCode, Value) {
    let code = api::raft_error_code(error);
    let mut body = api::error_response(code, error.to_string(), error.is_retryable());
    if let (Some(outcome), Some(object)) = (error.outcome(), body.as_object_mut()) {
        object.insert("outcome".into(), json!(outcome.as_str()));
    }
    let status = match error {
        RaftError::NotLeader { leader } => {
            state.metrics.client_redirects_total.fetch_add(1, Ordering::Relaxed);
            if let (Some(object), Some(leader)) = (body.as_object_mut(), leader) {
                object.insert("leader".into(), json!(leader.0));
                let address = state.transport.address(*leader);
                let url = address.as_ref().map(|address| format!("{}://{address}/client", state.scheme));
                object.insert("leader_address".into(), json!(address));
                object.insert("leader_url".into(), json!(url));
            }
            if leader.is_some() {
                StatusCode::TEMPORARY_REDIRECT
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
        RaftError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
        RaftError::Refused(_) => StatusCode::CONFLICT,
        RaftError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RaftError::LeadershipLost { .. }
        | RaftError::Busy(_)
        | RaftError::Timeout
        | RaftError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, body)
}

pub(crate) fn http_response(status: StatusCode, body: Value) -> Response {
    // The leader's URL in this node's scheme (`raft_error`): `https://` under TLS.
    let location = (status == StatusCode::TEMPORARY_REDIRECT)
        .then(|| body.get("leader_url").and_then(Value::as_str).map(str::to_string))
        .flatten();
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(location) = location {
        if let Ok(value) = header::HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    response
}

/// The client's address, when the request came through [`crate::limits::serve`].
pub(crate) type Remote = Option<axum::Extension<crate::limits::ConnectionContext>>;

pub(crate) fn remote_ip(remote: &Remote) -> Option<IpAddr> {
    remote.as_ref().map(|axum::Extension(context)| context.remote.ip())
}

async fn client_http(
    State(state): State<Shared>,
    remote: Remote,
    headers: HeaderMap,
    body: BodyBytes,
) -> Response {
    match api::parse_request(&body) {
        Ok(request) => {
            let id = request.id;
            let (status, body) = execute(&state, request, bearer(&headers), remote_ip(&remote)).await;
            http_response(status, api::with_id(body, id))
        }
        Err(message) => {
            state.metrics.client_requests_malformed_total.fetch_add(1, Ordering::Relaxed);
            http_response(StatusCode::BAD_REQUEST, api::error_response("bad_request", message, false))
        }
    }
}

async fn client_socket(State(state): State<Shared>, remote: Remote, upgrade: WebSocketUpgrade) -> Response {
    let Ok(permit) = state.client_websockets.clone().try_acquire_owned() else {
        return too_many_sockets(&state, "client");
    };
    let remote = remote_ip(&remote);
    upgrade.max_message_size(api::REQUEST_BYTES_MAX).read_buffer_size(CLIENT_READ_BUFFER_BYTES).on_upgrade(
        move |socket| async move {
            serve_client_socket(state, socket, remote).await;
            drop(permit);
        },
    )
}

/// One task per socket reads requests, runs them concurrently (at most
/// [`CLIENT_INFLIGHT_REQUESTS_MAX`]) and writes answers in completion order, matched by `id`.
/// The requests are futures polled by this task rather than tasks of their own: no spawn,
/// permit or answer channel per request, and no cross-task wake-up to write each answer.
/// Answers that are ready together go out in one flush.
async fn serve_client_socket(state: Shared, socket: WebSocket, remote: Option<IpAddr>) {
    let (mut sink, mut stream) = socket.split();
    let mut inflight = FuturesUnordered::new();
    let mut reading = true;
    loop {
        let mut answer = tokio::select! {
            message = stream.next(), if reading && inflight.len() < CLIENT_INFLIGHT_REQUESTS_MAX => {
                let bytes: Vec<u8> = match message {
                    Some(Ok(WsMessage::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(WsMessage::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(WsMessage::Close(_))) | None => {
                        reading = false;
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        state.metrics.client_requests_malformed_total.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%error, "client socket error");
                        reading = false;
                        continue;
                    }
                };
                match api::parse_request(&bytes) {
                    Ok(request) => {
                        let state = state.clone();
                        inflight.push(async move {
                            let id = request.id;
                            let (_, body) = execute(&state, request, None, remote).await;
                            api::with_id(body, id).to_string()
                        });
                        continue;
                    }
                    Err(message) => {
                        state.metrics.client_requests_malformed_total.fetch_add(1, Ordering::Relaxed);
                        api::error_response("bad_request", message, false).to_string()
                    }
                }
            }
            Some(answer) = inflight.next(), if !inflight.is_empty() => answer,
            else => break,
        };
        // Write this answer and every other one already finished, then flush once.
        loop {
            if sink.feed(WsMessage::Text(answer.into())).await.is_err() {
                return;
            }
            match inflight.next().now_or_never() {
                Some(Some(next)) => answer = next,
                _ => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// `/`: what this is, plainly: one real node of a cluster, its id, role, term, commit index and
/// members, and where the (simulated) playground is. Refreshes itself every 2 s.
async fn status_page(State(state): State<Shared>, playground: bool) -> Response {
    let status = state.raft.status();
    let list = |ids: &[u64]| {
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    let leader = status.leader.map_or_else(|| "none known".to_string(), |id| id.to_string());
    let playground_link = if playground {
        "<a href=\"/index.html\">the playground</a> (served from this node's files, but a <strong>simulation</strong> \
         running in your browser: it does not show or touch this cluster)"
    } else {
        "the playground (<code>npm start</code> serves it at http://127.0.0.1:8080/; a <strong>simulation</strong> \
         running in your browser, not this cluster)"
    };
    let error = status.fatal_error.as_deref().map_or(String::new(), |e| {
        format!(
            "<p><strong>Stopped on an error:</strong> {}</p>",
            e.replace('&', "&amp;").replace('<', "&lt;")
        )
    });
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"2\"><title>Flotilla node {id}: {role}</title></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem\">\
         <h1>Flotilla node {id}</h1>\
         <p>This is one <strong>real</strong> Raft node (native-node), not the simulated playground.</p>\
         <dl><dt>Node id</dt><dd>{id}</dd><dt>Role</dt><dd>{role}</dd><dt>Term</dt><dd>{term}</dd>\
         <dt>Leader</dt><dd>{leader}</dd><dt>Commit index</dt><dd>{commit}</dd><dt>Applied index</dt><dd>{applied}</dd>\
         <dt>Voters</dt><dd>{voters}</dd><dt>Learners</dt><dd>{learners}</dd></dl>{error}\
         <p>Machine-readable: <a href=\"/health\">/health</a>, <a href=\"/metrics\">/metrics</a>. \
         To learn Raft by watching it: {playground_link}.</p></body></html>",
        id = status.id,
        role = status.role,
        term = status.term,
        commit = status.commit_index,
        applied = status.applied_index,
        voters = list(&status.voters),
        learners = list(&status.learners),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

#[derive(serde::Deserialize)]
struct ReadParams {
    #[serde(default)]
    read: crate::raft::ReadMode,
}

async fn kv_path(
    state: Shared,
    method: &[u8],
    key: String,
    read: crate::raft::ReadMode,
    body: &[u8],
) -> Response {
    let request = match api::kv_path_request(method, key, read, body) {
        Ok(request) => request,
        Err((status, body)) => {
            return http_response(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), body)
        }
    };
    let (status, body) = execute(&state, request, None, None).await;
    http_response(status, body)
}

async fn kv_get(
    State(state): State<Shared>,
    UrlPath(key): UrlPath<String>,
    Query(params): Query<ReadParams>,
) -> Response {
    kv_path(state, b"GET", key, params.read, b"").await
}

async fn kv_put(State(state): State<Shared>, UrlPath(key): UrlPath<String>, body: BodyBytes) -> Response {
    kv_path(state, b"PUT", key, crate::raft::ReadMode::default(), &body).await
}

async fn kv_delete(State(state): State<Shared>, UrlPath(key): UrlPath<String>) -> Response {
    kv_path(state, b"DELETE", key, crate::raft::ReadMode::default(), b"").await
}
