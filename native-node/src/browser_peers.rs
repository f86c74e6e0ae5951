//! Browser tabs as learners of this cluster (issue #13): the native side of joining by
//! invitation, of authenticating an admitted tab, of what a tab may send, and of removing a tab
//! that went quiet.
//!
//! The frames and keys are raft-core's ([`raft_core::wire::invite`]); this module holds what
//! only a native node does:
//!
//! - **Records.** A tab's admission is replicated: the use of its invitation is counted with a
//!   compare-and-swap on `\0flotilla/invite-uses/<nonce>` (so concurrent joins and a leader
//!   change can never admit more tabs than the invitation allows), the tab's id is
//!   `2^32 + the log index of that committed swap` (unique and never reused, from the log, not
//!   from a leader's memory), its admission record (`\0flotilla/browser/<id>`: the invitation's
//!   fields and the join nonce, never the mac) and its address record (`browser`) are written,
//!   then it is added as a learner (an ordinary membership change). [`RecordingStateMachine`]
//!   keeps an in-memory mirror of those records as entries apply, so every native node can
//!   recompute a tab's key when it says `Hello`.
//! - **Joining** ([`BrowserPeers::join`]): token checks (mac, cluster, expiry; then uses and
//!   [`BrowserPeerConfig::max`] on the leader), `Redirect` from a follower, `Admitted` once the
//!   membership change is applied, naming the native members and their addresses
//!   ([`raft_core::wire::member_hints`]) so the tab can dial them before it applied anything.
//! - **What a tab may send** ([`BrowserPeers::check_inbound`]): only a learner's messages
//!   (append, heartbeat and snapshot answers, ReadIndex requests, thesis §6.4). Anything else
//!   closes the connection and counts as a malformed frame.
//! - **Liveness** ([`spawn_reaper`]): the leader removes a tab it has not heard from for
//!   [`BrowserPeerConfig::ttl`] (an ordinary RemoveServer); a returning tab joins again.

use crate::kv::{KvStateMachine, StateMachine};
use crate::peer_auth::invite::{invite_key, tab_key, Admitted, InviteToken, Join, JoinRefusal, Redirect};
use crate::peer_auth::member_hints::{MemberAddress, MemberHints};
use crate::peer_auth::records::{
    address_key, browser_key, is_browser_node_id, parse_browser, BrowserAdmission, ADDRESS_KEY_PREFIX,
    BROWSER_ADDRESS, BROWSER_KEY_PREFIX, BROWSER_NODE_ID_MIN, RESERVED_KEY_PREFIX,
};
use crate::peer_auth::{
    decode_frame_with_features, encode_frame, Challenge, FrameKind, Session, Side, Transcript,
    FEATURE_SHARED_FRAMES,
};
use crate::raft::{Raft, RaftError};
use axum::extract::ws::{Message as WsMessage, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use raft_core::kv::{Command, CommandBody, Operation, Output};
use raft_core::{Entry, EntryPayload, LogIndex, Message, MessageBody, NodeId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `INVITE_USES_KEY_PREFIX ‖ hex(invitation nonce)` → how many tabs it admitted (decimal).
pub const INVITE_USES_KEY_PREFIX: &[u8] = b"\x00flotilla/invite-uses/";

/// Attempts at the use-count swap before a join gives up (each lost race means another tab of
/// the same invitation was admitted meanwhile).
const USE_SWAP_ATTEMPTS_MAX: usize = 16;

/// Limits of browser peers.
#[derive(Clone, Copy, Debug)]
pub struct BrowserPeerConfig {
    /// A learner tab silent this long is removed by the leader (`--browser-peer-ttl`).
    pub ttl: Duration,
    /// Browser peers in the configuration at most (`--browser-peers-max`).
    pub max: usize,
    /// Time allowed for one admission (three commits and a membership change).
    pub join_timeout: Duration,
    /// Voter tabs: silence reports and the optional demotion (see [`crate::browser_voters`]).
    pub voters: crate::browser_voters::BrowserVoterConfig,
}

impl Default for BrowserPeerConfig {
    fn default() -> BrowserPeerConfig {
        BrowserPeerConfig {
            ttl: Duration::from_secs(300),
            max: 32,
            join_timeout: Duration::from_secs(10),
            voters: Default::default(),
        }
    }
}

/// Counters of browser peers, rendered at `/metrics` by [`crate::metrics`].
#[derive(Debug, Default)]
pub struct BrowserMetrics {
    /// Browser peer connections open now.
    pub connected: AtomicU64,
    /// Tabs admitted by this node (as leader).
    pub admitted_total: AtomicU64,
    /// Tabs redirected to the leader.
    pub redirected_total: AtomicU64,
    /// Joins refused, by [`JoinRefusal`] in the order of [`JoinRefusal::ALL`].
    pub refused_total: [AtomicU64; 6],
    /// Frame bytes sent to browser peers.
    pub bytes_sent_total: AtomicU64,
    /// Tabs removed for silence.
    pub removed_total: AtomicU64,
    /// Messages from a tab dropped because their term is ahead of this node's.
    pub term_ahead_dropped_total: AtomicU64,
    /// Voter tabs' metrics (see [`crate::browser_voters`]).
    pub voters: crate::browser_voters::VoterMetrics,
}

/// The `reason` label of refused joins.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

impl BrowserMetrics {
    /// Adds these metrics to a scrape's registry.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        use prometheus_client::metrics::counter::{ConstCounter, Counter};
        use prometheus_client::metrics::family::Family;
        use prometheus_client::metrics::gauge::ConstGauge;
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        registry.register(
            "raft_browser_peers_connected",
            "Browser peer connections open",
            ConstGauge::new(load(&self.connected) as i64),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        for (refusal, count) in JoinRefusal::ALL.iter().zip(&self.refused_total) {
            refused.get_or_create(&ReasonLabels { reason: refusal.as_str() }).inc_by(load(count));
        }
        registry.register("raft_browser_joins_refused", "Browser joins refused, by reason", refused);
        for (name, help, value) in [
            (
                "raft_browser_joins_admitted",
                "Browser tabs admitted as learners by this node",
                &self.admitted_total,
            ),
            (
                "raft_browser_joins_redirected",
                "Browser joins redirected to the leader",
                &self.redirected_total,
            ),
            ("raft_browser_bytes_sent", "Frame bytes sent to browser peers", &self.bytes_sent_total),
            (
                "raft_browser_peers_removed",
                "Silent browser peers removed by this leader",
                &self.removed_total,
            ),
            (
                "raft_browser_messages_term_ahead",
                "Browser peer messages dropped: their term was ahead of this node's",
                &self.term_ahead_dropped_total,
            ),
        ] {
            registry.register(name, help, ConstCounter::new(load(value)));
        }
        self.voters.register(registry);
    }

    fn refused(&self, refusal: JoinRefusal) {
        if let Some(index) = JoinRefusal::ALL.iter().position(|r| *r == refusal) {
            self.refused_total[index].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The browser records of the applied state, mirrored as entries apply.
#[derive(Debug, Default)]
pub struct BrowserRecords {
    admissions: BTreeMap<NodeId, BrowserAdmission>,
    /// Members with an address record (a bootstrapped cluster's first members have none until
    /// the first admission writes them: the tab learns where to dial from these records).
    addressed: std::collections::BTreeSet<NodeId>,
    uses: HashMap<[u8; 16], u32>,
}

fn uses_key(nonce: &[u8; 16]) -> Vec<u8> {
    let mut key = INVITE_USES_KEY_PREFIX.to_vec();
    key.extend_from_slice(hex::encode(nonce).as_bytes());
    key
}

fn parse_uses(key: &[u8], value: &[u8]) -> Option<([u8; 16], u32)> {
    let hex_nonce = key.strip_prefix(INVITE_USES_KEY_PREFIX)?;
    let nonce: [u8; 16] = hex::decode(hex_nonce).ok()?.try_into().ok()?;
    Some((nonce, std::str::from_utf8(value).ok()?.parse().ok()?))
}

impl BrowserRecords {
    fn refresh(&mut self, key: &[u8], value: Option<&Bytes>) {
        if key.starts_with(ADDRESS_KEY_PREFIX) {
            let digits =
                std::str::from_utf8(&key[ADDRESS_KEY_PREFIX.len()..]).ok().and_then(|d| d.parse().ok());
            if let Some(id) = digits.map(NodeId) {
                if value.is_some() {
                    self.addressed.insert(id);
                } else {
                    self.addressed.remove(&id);
                }
            }
        } else if key.starts_with(BROWSER_KEY_PREFIX) {
            let parsed = value.and_then(|value| parse_browser(key, value));
            match parsed {
                Some((id, admission)) => {
                    self.admissions.insert(id, admission);
                }
                None => {
                    if let Some(id) = std::str::from_utf8(&key[BROWSER_KEY_PREFIX.len()..])
                        .ok()
                        .and_then(|digits| digits.parse().ok())
                    {
                        self.admissions.remove(&NodeId(id));
                    }
                }
            }
        } else if key.starts_with(INVITE_USES_KEY_PREFIX) {
            match value.and_then(|value| parse_uses(key, value)) {
                Some((nonce, count)) => {
                    self.uses.insert(nonce, count);
                }
                None => {
                    if let Ok(Ok(nonce)) =
                        hex::decode(&key[INVITE_USES_KEY_PREFIX.len()..]).map(<[u8; 16]>::try_from)
                    {
                        self.uses.remove(&nonce);
                    }
                }
            }
        }
    }
}

fn is_browser_record_key(key: &[u8]) -> bool {
    key.starts_with(BROWSER_KEY_PREFIX)
        || key.starts_with(INVITE_USES_KEY_PREFIX)
        || key.starts_with(ADDRESS_KEY_PREFIX)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The node's key-value state machine with a mirror of its browser records. Everything is
/// delegated to [`KvStateMachine`]; only the entries that touch browser records (found by a
/// byte scan before anything is decoded) update the mirror, after they apply.
pub struct RecordingStateMachine {
    inner: KvStateMachine,
    records: Arc<Mutex<BrowserRecords>>,
}

impl RecordingStateMachine {
    /// Wraps `inner`, mirroring into `records`.
    pub fn new(inner: KvStateMachine, records: Arc<Mutex<BrowserRecords>>) -> RecordingStateMachine {
        let machine = RecordingStateMachine { inner, records };
        machine.rebuild();
        machine
    }

    fn rebuild(&self) {
        let mut records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *records = BrowserRecords::default();
        for (key, value) in self.inner.store().iter().filter(|(key, _)| is_browser_record_key(key)) {
            records.refresh(key, Some(value));
        }
    }

    fn browser_keys_of(entry: &Entry) -> Option<CommandBody> {
        let EntryPayload::Command(data) = &entry.payload else { return None };
        let command = Command::decode(data).ok()?;
        match &command.body {
            CommandBody::Request { operation, .. }
                if operation.key().is_some_and(|k| is_browser_record_key(k)) =>
            {
                Some(command.body)
            }
            CommandBody::Restore { .. } => Some(command.body),
            _ => None,
        }
    }
}

impl StateMachine for RecordingStateMachine {
    fn apply(&mut self, entry: &Entry) -> Result<Bytes, String> {
        // Only entries holding the reserved prefix can touch the records (a user's restore
        // keeps this store's reserved keys, see `raft_core::kv::KvStore`, so it changes none).
        let touched = match &entry.payload {
            EntryPayload::Command(data) if contains(data, RESERVED_KEY_PREFIX) => {
                Self::browser_keys_of(entry)
            }
            _ => None,
        };
        let response = self.inner.apply(entry)?;
        match touched {
            Some(CommandBody::Request { operation, .. }) => {
                if let Some(key) = operation.key() {
                    let value = self.inner.store().get(key).cloned();
                    let mut records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    records.refresh(key, value.as_ref());
                }
            }
            Some(CommandBody::Restore { .. }) => self.rebuild(),
            _ => {}
        }
        Ok(response)
    }
    fn applied_index(&self) -> LogIndex {
        self.inner.applied_index()
    }
    fn query(&self, query: &[u8]) -> Bytes {
        self.inner.query(query)
    }
    fn snapshot(&self) -> Box<dyn Iterator<Item = Bytes> + Send> {
        self.inner.snapshot()
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.inner.restore(snapshot)?;
        self.rebuild();
        Ok(())
    }
    fn peer_addresses(&self) -> Vec<(NodeId, String)> {
        self.inner.peer_addresses()
    }
    fn bytes(&self) -> u64 {
        self.inner.bytes()
    }
    fn quota_bytes(&self) -> u64 {
        self.inner.quota_bytes()
    }
    fn restore_piece_command(&self, piece: crate::restore::RestorePiece) -> Option<Bytes> {
        self.inner.restore_piece_command(piece)
    }
    /// Every reserved key stays refused to callers of [`Raft::apply`]: this module writes its
    /// records through the crate-private `Raft::apply_record`.
    fn refuse_client_command(&self, command: &[u8]) -> Option<String> {
        self.inner.refuse_client_command(command)
    }
}

/// One browser peer as `admin status` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct BrowserPeerStatus {
    /// Its node id (≥ 2^32).
    pub id: u64,
    /// `voter` or `learner`.
    pub role: &'static str,
    /// Always `browser`: it dials, it cannot be dialled.
    pub address: &'static str,
    /// Milliseconds since the leader last heard from it (leader only).
    pub last_contact_ms: Option<u64>,
    /// Entries it is behind the leader's commit index (leader only).
    pub lag: Option<u64>,
    /// When it was admitted (ms since the Unix epoch).
    pub admitted_unix_ms: u64,
    /// What the tab last reported about its storage, if it did (issue #14).
    pub storage: Option<crate::peer_auth::tab::TabStatus>,
}

/// The browser-peer gate of one node: shared by the `/raft` acceptor, the admin routes and the
/// reaper.
pub struct BrowserPeers {
    config: BrowserPeerConfig,
    cluster_id: String,
    node_id: NodeId,
    invite_key: [u8; 32],
    records: Arc<Mutex<BrowserRecords>>,
    raft: OnceLock<Raft>,
    /// The node's status, read without a copy for every message a tab sends.
    status: OnceLock<tokio::sync::watch::Receiver<crate::raft::Status>>,
    /// Peer addresses, to redirect a tab to the leader.
    addresses: OnceLock<crate::transport::Transport>,
    /// One admission at a time on this node, so two joins do not race for the same swap.
    admitting: tokio::sync::Mutex<()>,
    /// Counters rendered at `/metrics`.
    pub metrics: Arc<BrowserMetrics>,
    /// The latest storage status of every tab (see [`crate::browser_voters`]).
    pub voters: crate::browser_voters::VoterTabs,
}

impl std::fmt::Debug for BrowserPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPeers").field("node_id", &self.node_id).field("config", &self.config).finish()
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl BrowserPeers {
    /// The gate of node `node_id`. `records` is the mirror its [`RecordingStateMachine`] keeps.
    pub fn new(
        config: BrowserPeerConfig,
        cluster_id: String,
        node_id: NodeId,
        peer_secret: Arc<Vec<u8>>,
        records: Arc<Mutex<BrowserRecords>>,
        metrics: Arc<BrowserMetrics>,
    ) -> BrowserPeers {
        BrowserPeers {
            config,
            cluster_id,
            node_id,
            invite_key: invite_key(&peer_secret),
            records,
            raft: OnceLock::new(),
            status: OnceLock::new(),
            addresses: OnceLock::new(),
            admitting: tokio::sync::Mutex::new(()),
            metrics,
            voters: crate::browser_voters::VoterTabs::new(config.voters),
        }
    }

    /// Connects the gate to the running node.
    pub fn attach(&self, raft: Raft, transport: crate::transport::Transport) {
        let _ = self.status.set(raft.watch_status());
        let _ = self.raft.set(raft);
        let _ = self.addresses.set(transport);
    }

    /// The key invitations of this cluster are signed with.
    pub fn invite_key(&self) -> &[u8; 32] {
        &self.invite_key
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The limits in force.
    pub fn config(&self) -> &BrowserPeerConfig {
        &self.config
    }

    /// The running node, once attached.
    pub(crate) fn raft_handle(&self) -> Option<&Raft> {
        self.raft.get()
    }

    /// The node's status now, once attached.
    pub(crate) fn status_now(&self) -> Option<crate::raft::Status> {
        self.raft.get().map(Raft::status)
    }

    fn refuse(&self, refusal: JoinRefusal) -> String {
        self.metrics.refused(refusal);
        tracing::info!(reason = %refusal, "refused a browser join");
        refusal.as_str().to_string()
    }

    /// Serves a `Join` frame on an accepted `/raft` socket after `challenge`. Returns the tab's
    /// id and the session to run the connection with, or the reason to send in a `Reject`
    /// (`Err` after a `Redirect` too: the caller closes the socket).
    ///
    /// # Errors
    /// A [`JoinRefusal`] word, or why the frame was not a join.
    pub async fn join(
        &self,
        socket: &mut WebSocket,
        challenge: &Challenge,
        frame: &[u8],
    ) -> Result<(NodeId, Session), String> {
        let (join, features): (Join, u8) =
            decode_frame_with_features(frame, FrameKind::Join).map_err(|e| e.to_string())?;
        let token = match InviteToken::decode(&join.token) {
            Ok(token) => token,
            Err(refusal) => return Err(self.refuse(refusal)),
        };
        if let Err(refusal) = token.verify(&self.invite_key, &self.cluster_id, now_unix_ms()) {
            return Err(self.refuse(refusal));
        }
        let Some(raft) = self.raft.get() else { return Err(self.refuse(JoinRefusal::NotLeader)) };
        let status = raft.status();
        if status.role != "leader" {
            let leader = status.leader.map(NodeId).filter(|leader| *leader != self.node_id);
            let address = leader.and_then(|leader| self.addresses.get()?.address(leader));
            return match (leader, address) {
                (Some(leader_id), Some(address)) => {
                    self.metrics.redirected_total.fetch_add(1, Ordering::Relaxed);
                    let redirect = Redirect { leader_id, address };
                    let _ = socket
                        .send(WsMessage::Binary(encode_frame(FrameKind::Redirect, &redirect).into()))
                        .await;
                    let _ = socket.close().await;
                    Err(format!("redirected to the leader, node {leader_id}"))
                }
                _ => Err(self.refuse(JoinRefusal::NotLeader)),
            };
        }
        let admitted =
            tokio::time::timeout(self.config.join_timeout, self.admit(raft, &token, join.nonce)).await;
        let id = match admitted {
            Ok(Ok(id)) => id,
            Ok(Err(refusal)) => return Err(self.refuse(refusal)),
            Err(_) => return Err(self.refuse(JoinRefusal::NotLeader)),
        };
        let key = tab_key(&token.mac, &self.cluster_id, id, &join.nonce);
        let transcript = Transcript {
            acceptor_nonce: challenge.nonce,
            dialler_nonce: join.nonce,
            cluster_id: self.cluster_id.clone(),
            acceptor: self.node_id,
            dialler: id,
        };
        // The native members and their addresses, so the tab can dial them before it has
        // applied any address record (it would be stranded if this node died first).
        let status = raft.status();
        let native = status.voters.iter().chain(&status.learners).map(|id| NodeId(*id));
        let members = native.filter_map(|id| {
            Some(MemberAddress { node_id: id, address: self.addresses.get()?.address(id)? })
        });
        let members = Some(MemberHints::sign(&transcript, &key, members));
        let admitted = Admitted { node_id: id, mac: transcript.welcome_mac(&key), members };
        socket
            .send(WsMessage::Binary(encode_frame(FrameKind::Admitted, &admitted).into()))
            .await
            .map_err(|e| format!("cannot send admitted: {e}"))?;
        self.metrics.admitted_total.fetch_add(1, Ordering::Relaxed);
        tracing::info!(tab = %id, "admitted a browser tab as a learner");
        let mut session = transcript.session(&key, Side::Acceptor);
        session.sealer.set_peer_reads_shared(features & FEATURE_SHARED_FRAMES != 0);
        Ok((id, session))
    }

    /// The leader's part of a join: count the use, take an id, write the records, add the
    /// learner. Every step is a committed log entry.
    async fn admit(
        &self,
        raft: &Raft,
        token: &InviteToken,
        join_nonce: [u8; 16],
    ) -> Result<NodeId, JoinRefusal> {
        let _one_at_a_time = self.admitting.lock().await;
        let timeout = self.config.join_timeout;
        let fields = &token.fields;
        let key = Bytes::from(uses_key(&fields.nonce));
        // The applied count first, so a used-up invitation says so whatever else is full; the
        // swap below decides for good.
        let mut current =
            self.records.lock().map_or(0, |records| records.uses.get(&fields.nonce).copied().unwrap_or(0));
        if current >= fields.max_uses {
            return Err(JoinRefusal::UsedUp);
        }
        if self.browser_count(&raft.status()) >= self.config.max {
            return Err(JoinRefusal::BrowserPeersMax);
        }
        let mut swap_index = None;
        for _ in 0..USE_SWAP_ATTEMPTS_MAX {
            if current >= fields.max_uses {
                return Err(JoinRefusal::UsedUp);
            }
            let expected = (current > 0).then(|| Bytes::from(current.to_string()));
            let operation = Operation::CompareAndSwap {
                key: key.clone(),
                expected,
                new: Bytes::from((current + 1).to_string()),
            };
            let applied = raft.apply_record(Command::unsessioned(0, operation).encode(), timeout).await;
            let applied = applied.map_err(|error| leadership_refusal(&error))?;
            match crate::kv::decode_response(&applied.response) {
                Ok(Ok(Output::Swapped)) => {
                    swap_index = Some(applied.index);
                    break;
                }
                Ok(Ok(Output::NotSwapped { current: found })) => {
                    current = found
                        .and_then(|value| std::str::from_utf8(&value).ok().and_then(|text| text.parse().ok()))
                        .unwrap_or(u32::MAX);
                }
                _ => return Err(JoinRefusal::NotLeader),
            }
        }
        let Some(swap_index) = swap_index else { return Err(JoinRefusal::NotLeader) };
        let id = NodeId(BROWSER_NODE_ID_MIN + swap_index.0);
        let admission =
            BrowserAdmission { fields: fields.clone(), join_nonce, admitted_unix_ms: now_unix_ms() };
        let record =
            Operation::Put { key: Bytes::from(browser_key(id)), value: Bytes::from(admission.encode()) };
        raft.apply_record(Command::unsessioned(0, record).encode(), timeout)
            .await
            .map_err(|error| leadership_refusal(&error))?;
        self.record_member_addresses(raft, timeout).await?;
        // Another membership change may be under way (another tab's removal, a promotion):
        // wait for it a little rather than refuse.
        let deadline = Instant::now() + timeout;
        loop {
            match raft.add_nonvoter(id, BROWSER_ADDRESS.to_string(), timeout).await {
                Ok(_) => return Ok(id),
                Err(RaftError::Busy(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => return Err(leadership_refusal(&error)),
            }
        }
    }

    /// Browser peers in the configuration, plus those admitted after it (their admission
    /// record is applied, their AddLearner not yet): the published status can be a tick old.
    fn browser_count(&self, status: &crate::raft::Status) -> usize {
        let members = status.learners.iter().filter(|id| is_browser_node_id(NodeId(**id))).count();
        let records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let pending = records
            .admissions
            .keys()
            .filter(|id| {
                id.0 - BROWSER_NODE_ID_MIN > status.membership_index && !status.learners.contains(&id.0)
            })
            .count();
        members + pending
    }

    /// Writes the address records a tab needs to dial every native member: the members of a
    /// bootstrapped cluster have their addresses in each node's local storage only.
    async fn record_member_addresses(&self, raft: &Raft, timeout: Duration) -> Result<(), JoinRefusal> {
        let status = raft.status();
        let Some(transport) = self.addresses.get() else { return Ok(()) };
        for id in status.voters.iter().chain(&status.learners).map(|id| NodeId(*id)) {
            if is_browser_node_id(id)
                || self.records.lock().map_or(true, |records| records.addressed.contains(&id))
            {
                continue;
            }
            let Some(address) = transport.address(id) else { continue };
            raft.apply_record(crate::kv::address_record(id, &address), timeout)
                .await
                .map_err(|error| leadership_refusal(&error))?;
        }
        Ok(())
    }

    /// The key an admitted tab proves itself with in `Hello`, recomputed from the peer secret
    /// and its admission record; refused if it is not (or no longer) a member here.
    ///
    /// # Errors
    /// Why the tab is not known.
    pub fn hello_key(&self, id: NodeId) -> Result<[u8; 32], String> {
        let admission = self
            .records
            .lock()
            .ok()
            .and_then(|records| records.admissions.get(&id).cloned())
            .ok_or_else(|| format!("browser peer {id} is not admitted here (yet)"))?;
        if let Some(raft) = self.raft.get() {
            let status = raft.status();
            let member = status.learners.contains(&id.0) || status.voters.contains(&id.0);
            if !member && status.membership_index > 0 {
                return Err(format!("browser peer {id} is not a member (removed?); join again"));
            }
        }
        let mac = InviteToken::mac_of(&self.invite_key, &admission.fields);
        Ok(tab_key(&mac, &self.cluster_id, id, &admission.join_nonce))
    }

    /// Whether a message from browser peer `peer` may go to the core: `Ok(true)` to deliver,
    /// `Ok(false)` to drop quietly (its term is ahead of ours: a tab may have heard of a newer
    /// leader, but its word alone must never move this node's term), `Err` to close.
    ///
    /// # Errors
    /// Why the message is not one a learner sends.
    pub fn check_inbound(&self, message: &Message) -> Result<bool, String> {
        match message.body {
            MessageBody::AppendResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
            | MessageBody::ReadIndex { .. } => {}
            // A voter tab's answers (issue #14); its requests fall through to the refusal.
            MessageBody::VoteResponse { .. } => {
                let Some(status) = self.status.get() else { return Ok(false) };
                let delivered = crate::browser_voters::check_vote_answer(message, &status.borrow())?;
                if !delivered {
                    self.metrics.term_ahead_dropped_total.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(delivered);
            }
            ref other => {
                return Err(format!("a browser learner may not send {}", other.kind_name()));
            }
        }
        let term = self.status.get().map_or(u64::MAX, |status| status.borrow().term);
        if message.term.0 > term {
            self.metrics.term_ahead_dropped_total.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    /// Counts `bytes` sent to a browser peer.
    pub fn sent(&self, bytes: usize) {
        self.metrics.bytes_sent_total.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Whether `id` votes in the configuration this node last reported (a promoted tab, issue
    /// #14); tabs that do not are learners.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.status.get().is_some_and(|status| status.borrow().voters.contains(&id.0))
    }

    /// Counts a browser peer connection until the guard drops.
    pub fn connection(&self) -> ConnectionGuard {
        self.metrics.connected.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard { metrics: self.metrics.clone() }
    }

    /// The browser peers of the configuration, with the leader's view of each.
    pub fn statuses(&self) -> Vec<BrowserPeerStatus> {
        let Some(raft) = self.raft.get() else { return Vec::new() };
        let status = raft.status();
        let records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let voters = status.voters.iter().map(|id| (id, "voter"));
        voters
            .chain(status.learners.iter().map(|id| (id, "learner")))
            .filter(|(id, _)| is_browser_node_id(NodeId(**id)))
            .map(|(id, role)| {
                let follower = status.followers.iter().find(|f| f.id == *id);
                BrowserPeerStatus {
                    id: *id,
                    role,
                    address: BROWSER_ADDRESS,
                    last_contact_ms: follower.map(|f| f.last_contact_ms),
                    lag: follower.map(|f| status.commit_index.saturating_sub(f.match_index)),
                    admitted_unix_ms: records.admissions.get(&NodeId(*id)).map_or(0, |a| a.admitted_unix_ms),
                    storage: self.voters.status_of(NodeId(*id)),
                }
            })
            .collect()
    }

    /// Leader: removes the browser learners silent longer than the TTL, and their records.
    /// Voter tabs are never removed here: see [`crate::browser_voters`].
    async fn reap(&self) {
        let Some(raft) = self.raft.get() else { return };
        let ttl_ms = self.config.ttl.as_millis() as u64;
        let silent: Vec<u64> = self
            .statuses()
            .into_iter()
            .filter(|peer| peer.role == "learner" && peer.last_contact_ms.is_some_and(|ms| ms > ttl_ms))
            .map(|peer| peer.id)
            .collect();
        for id in silent {
            let id = NodeId(id);
            match raft.remove_server(id, self.config.join_timeout).await {
                Ok(_) => {
                    self.metrics.removed_total.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(tab = %id, ttl_ms, "removed a silent browser peer");
                    for key in [browser_key(id), address_key(id)] {
                        let delete = Operation::Delete { key: Bytes::from(key) };
                        let _ = raft
                            .apply_record(Command::unsessioned(0, delete).encode(), self.config.join_timeout)
                            .await;
                    }
                }
                Err(error) => {
                    tracing::debug!(tab = %id, %error, "could not remove a silent browser peer yet")
                }
            }
        }
    }
}

fn leadership_refusal(error: &RaftError) -> JoinRefusal {
    tracing::info!(%error, "a browser admission did not complete");
    JoinRefusal::NotLeader
}

/// Keeps [`BrowserMetrics::connected`] counted while a browser connection lives.
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: Arc<BrowserMetrics>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs the leader's removal of silent tabs until `shutdown`: a check every tenth of the TTL.
pub fn spawn_reaper(
    peers: Arc<BrowserPeers>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = (peers.config.ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(10));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => peers.reap().await,
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::kv::KvConfig;
    use raft_core::wire::invite::{InviteFields, InviteRole};
    use raft_core::Term;

    fn entry(index: u64, operation: Operation) -> Entry {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            payload: EntryPayload::Command(Command::unsessioned(1, operation).encode()),
        }
    }

    #[test]
    fn the_mirror_follows_applied_records_and_survives_a_snapshot() {
        let records = Arc::new(Mutex::new(BrowserRecords::default()));
        let mut machine =
            RecordingStateMachine::new(KvStateMachine::new(KvConfig::default()).unwrap(), records.clone());
        let id = NodeId(BROWSER_NODE_ID_MIN + 2);
        let admission = BrowserAdmission {
            fields: InviteFields {
                cluster_id: "c".into(),
                role: InviteRole::Learner,
                expires_unix_ms: 9,
                nonce: [4; 16],
                max_uses: 2,
            },
            join_nonce: [5; 16],
            admitted_unix_ms: 1,
        };
        let swap = Operation::CompareAndSwap {
            key: Bytes::from(uses_key(&[4; 16])),
            expected: None,
            new: Bytes::from("1"),
        };
        // Records are written through `Raft::apply_record`; callers of `Raft::apply` are refused.
        assert!(machine.refuse_client_command(&Command::unsessioned(1, swap.clone()).encode()).is_some());
        machine.apply(&entry(1, swap.clone())).unwrap();
        // A lost swap (expected absent, found 1) changes nothing.
        machine.apply(&entry(2, swap)).unwrap();
        let put =
            Operation::Put { key: Bytes::from(browser_key(id)), value: Bytes::from(admission.encode()) };
        machine.apply(&entry(3, put)).unwrap();
        machine
            .apply(&entry(4, Operation::Put { key: Bytes::from("user"), value: Bytes::from("v") }))
            .unwrap();
        {
            let records = records.lock().unwrap();
            assert_eq!(records.uses.get(&[4; 16]), Some(&1));
            assert_eq!(records.admissions.get(&id), Some(&admission));
        }
        let snapshot: Vec<u8> = machine.snapshot().flat_map(|chunk| chunk.to_vec()).collect();
        let fresh_records = Arc::new(Mutex::new(BrowserRecords::default()));
        let mut copy = RecordingStateMachine::new(
            KvStateMachine::new(KvConfig::default()).unwrap(),
            fresh_records.clone(),
        );
        copy.restore(&snapshot).unwrap();
        assert_eq!(fresh_records.lock().unwrap().admissions.get(&id), Some(&admission));
        copy.apply(&entry(5, Operation::Delete { key: Bytes::from(browser_key(id)) })).unwrap();
        assert!(fresh_records.lock().unwrap().admissions.is_empty());
        // Every reserved key stays refused.
        let other =
            Operation::Put { key: Bytes::from_static(b"\x00flotilla/other"), value: Bytes::from("x") };
        assert!(copy.refuse_client_command(&Command::unsessioned(1, other).encode()).is_some());
    }

    #[test]
    fn a_browser_learner_may_send_only_a_learners_messages() {
        let peers = BrowserPeers::new(
            BrowserPeerConfig::default(),
            "c".into(),
            NodeId(1),
            Arc::new(b"s".to_vec()),
            Arc::default(),
            Arc::default(),
        );
        let message =
            |body| Message { from: NodeId(BROWSER_NODE_ID_MIN), to: NodeId(1), term: Term(1), body };
        assert_eq!(peers.check_inbound(&message(MessageBody::HeartbeatResponse { context: 1 })), Ok(true));
        assert_eq!(peers.check_inbound(&message(MessageBody::ReadIndex { request_id: 1 })), Ok(true));
        for body in [
            MessageBody::TimeoutNow,
            MessageBody::Heartbeat { commit: LogIndex(1), context: 1 },
            MessageBody::AppendEntries {
                prev_log_index: LogIndex(0),
                prev_log_term: Term(0),
                entries: Vec::new(),
                leader_commit: LogIndex(0),
            },
        ] {
            assert!(peers.check_inbound(&message(body)).is_err());
        }
    }
}
