//! Browser tabs as voters (issue #14): the native side of what a voter tab reports about its
//! storage, what it may send, when it may be promoted, and what the leader does when it goes
//! quiet.
//!
//! A voter's whole worth is that it never forgets its term, its vote or the entries it
//! acknowledged (§5.2, §5.4, thesis §3.8). A tab can keep those promises only with a durable
//! backend, persistent storage granted by the browser, and a node that never campaigns (it has
//! no address and its uptime is a person's whim). The tab says which it has in a sealed
//! [`TabStatus`] frame after every handshake; this module keeps the latest per tab and:
//!
//! - **reads** a tab's connection ([`VoterTabs::open`]): `Raft` and `TabStatus` frames, any
//!   other kind closes the connection as a malformed frame;
//! - **filters** what a voter tab may send ([`check_vote_answer`]): a learner's messages (see
//!   [`crate::browser_peers`]) plus vote and pre-vote *answers* while it is a voter. A request
//!   of its own (a vote or pre-vote, AppendEntries, InstallSnapshot, TimeoutNow) or a forged
//!   `from` still closes the connection;
//! - **refuses a promotion** (`admin add-voter <tab id>`) unless the tab's latest status shows a
//!   durable backend, persistence granted and `campaigns: false`; otherwise the core's AddVoter
//!   applies, with its catch-up rule (thesis §4.2.1);
//! - **refuses a leadership transfer** to a tab (thesis §3.10: the target must campaign at
//!   once), and picks a native voter when the operator names none;
//! - **watches absence** ([`spawn_watch`]): the leader reports voter tabs it has not heard from
//!   for [`BrowserVoterConfig::silent_after`] (`admin status`, metrics), and, only if the operator
//!   asked for it (`--browser-voter-demote-after`), demotes one silent that long to a learner
//!   through an ordinary membership change. Voter tabs are never removed by the learners' TTL.

use crate::api::{error_response, Operation};
use crate::browser_peers::BrowserPeers;
use crate::peer_auth::records::{is_browser_node_id, BROWSER_ADDRESS};
use crate::peer_auth::tab::TabStatus;
use crate::peer_auth::{decode_body, decode_message, FrameError, FrameKind, Opener};
use crate::raft::Status;
use crate::server::AppState;
use axum::http::StatusCode;
use raft_core::{MembershipChange, Message, MessageBody, NodeId, VoteKind};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The absence policy for voter tabs.
#[derive(Clone, Copy, Debug)]
pub struct BrowserVoterConfig {
    /// The leader reports a voter tab it has not heard from for this long (admin status, the
    /// `raft_browser_voters_silent` gauge, the log).
    pub silent_after: Duration,
    /// `--browser-voter-demote-after`: demote a voter tab silent this long to a learner. Off
    /// (`None`) by default: see native-node/README.md for the risk either way.
    pub demote_after: Option<Duration>,
}

impl Default for BrowserVoterConfig {
    fn default() -> BrowserVoterConfig {
        BrowserVoterConfig { silent_after: Duration::from_secs(10), demote_after: None }
    }
}

/// Counters and gauges of voter tabs, rendered at `/metrics` with the browser-peer metrics.
#[derive(Debug, Default)]
pub struct VoterMetrics {
    /// `TabStatus` frames received.
    pub tab_statuses_total: AtomicU64,
    /// `add-voter` requests for a tab refused (its status does not allow it).
    pub promotions_refused_total: AtomicU64,
    /// Leadership transfers to a tab refused.
    pub transfers_refused_total: AtomicU64,
    /// Voter tabs silent longer than [`BrowserVoterConfig::silent_after`] now (leader only).
    pub silent: AtomicU64,
    /// The longest silence of a voter tab now, in milliseconds (leader only; 0 if none).
    pub silent_longest_ms: AtomicU64,
    /// Voter tabs demoted to learners for silence by this node.
    pub demoted_total: AtomicU64,
}

impl VoterMetrics {
    /// Adds these metrics to a scrape's registry.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        for (name, help, value) in [
            ("raft_browser_tab_statuses", "TabStatus frames received from browser tabs", &self.tab_statuses_total),
            (
                "raft_browser_voter_promotions_refused",
                "Promotions of a browser tab to voter refused (storage not durable, not persistent, or it campaigns)",
                &self.promotions_refused_total,
            ),
            (
                "raft_browser_voter_transfers_refused",
                "Leadership transfers to a browser tab refused",
                &self.transfers_refused_total,
            ),
            ("raft_browser_voters_demoted", "Silent voter tabs demoted to learners by this leader", &self.demoted_total),
        ] {
            registry.register(name, help, ConstCounter::new(load(value)));
        }
        registry.register(
            "raft_browser_voters_silent",
            "Voter tabs this leader has not heard from for longer than the silence threshold",
            ConstGauge::new(load(&self.silent) as i64),
        );
        registry.register(
            "raft_browser_voter_silent_longest_seconds",
            "The longest silence of a voter tab seen by this leader",
            ConstGauge::new(load(&self.silent_longest_ms) as f64 / 1000.0),
        );
    }
}

/// The latest [`TabStatus`] of every tab connected since this node started. Only an
/// authenticated tab (a member, see [`BrowserPeers::hello_key`], or one just admitted) can add
/// an entry, and the watcher forgets tabs that are not in the configuration once their last
/// report is older than [`STATUS_GRACE`], so it holds the browser members and the tabs admitted
/// within that grace.
#[derive(Debug, Default)]
pub struct VoterTabs {
    config: BrowserVoterConfig,
    statuses: Mutex<HashMap<NodeId, (TabStatus, Instant)>>,
}

/// How long a status is kept for a tab the configuration does not list yet: a tab reports its
/// storage right after its handshake, which can come before the leader's status shows the
/// learner entry that admitted it.
const STATUS_GRACE: Duration = Duration::from_secs(30);

impl VoterTabs {
    /// The table of a node with `config`.
    pub fn new(config: BrowserVoterConfig) -> VoterTabs {
        VoterTabs { config, statuses: Mutex::default() }
    }

    /// The absence policy in force.
    pub fn config(&self) -> &BrowserVoterConfig {
        &self.config
    }

    /// Reads one sealed frame of browser peer `peer`: `Some(message)` for a `Raft` frame,
    /// `None` for a `TabStatus` (recorded here). Any other kind is an error, which closes the
    /// connection like any malformed frame.
    ///
    /// # Errors
    /// The [`FrameError`] of the tag, the kind or the body.
    pub fn open(
        &self,
        peer: NodeId,
        frame: &[u8],
        opener: &mut Opener,
        metrics: &VoterMetrics,
    ) -> Result<Option<Message>, FrameError> {
        let (kind, body) = opener.open_any(frame)?;
        match kind {
            FrameKind::Raft | FrameKind::RaftShared => decode_message(kind, body).map(Some),
            FrameKind::TabStatus => {
                let status: TabStatus = decode_body(body)?;
                metrics.tab_statuses_total.fetch_add(1, Ordering::Relaxed);
                let previous = self.lock().insert(peer, (status, Instant::now())).map(|(status, _)| status);
                if previous != Some(status) {
                    tracing::info!(tab = %peer, ?status, "a browser tab reported its storage");
                }
                Ok(None)
            }
            other => Err(FrameError::UnexpectedKind(other)),
        }
    }

    /// The latest status tab `id` reported to this node, if any.
    pub fn status_of(&self, id: NodeId) -> Option<TabStatus> {
        self.lock().get(&id).map(|(status, _)| *status)
    }

    /// Forgets tabs that are not members and have not reported within [`STATUS_GRACE`].
    fn retain_members(&self, status: &Status) {
        self.lock().retain(|id, (_, reported)| {
            status.voters.contains(&id.0)
                || status.learners.contains(&id.0)
                || reported.elapsed() < STATUS_GRACE
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, (TabStatus, Instant)>> {
        self.statuses.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Why a tab with this status may not vote, in words for an operator; `None` when it may.
/// [`TabStatus::voter_refusal`] (backend and persistence) plus the campaigns flag.
pub fn status_refusal(status: &TabStatus) -> Option<&'static str> {
    status.voter_refusal().or(if status.campaigns {
        Some("the tab's node campaigns (Config::campaigns = true): a voter tab must never start an election")
    } else {
        None
    })
}

/// Whether a vote or pre-vote answer from browser peer `message.from` goes to the core:
/// `Ok(true)` to deliver, `Ok(false)` to drop quietly. Only a voter's answers count, and only
/// in this node's term, or the next one for a granted pre-vote (thesis §9.6: a pre-vote is
/// granted in the term the candidate would take, without anyone moving to it). A tab's word
/// alone never moves a native node's term, as for learners. A learner's answer is dropped, not
/// punished: it may have been a voter when the request left.
///
/// # Errors
/// Never today (kept so a later rule may close the connection).
pub fn check_vote_answer(message: &Message, status: &Status) -> Result<bool, String> {
    let MessageBody::VoteResponse { kind, granted } = message.body else {
        return Err(format!("a browser tab may not send {}", message.body.kind_name()));
    };
    if !status.voters.contains(&message.from.0) {
        return Ok(false);
    }
    let allowed = match (kind, granted) {
        (VoteKind::PreVote, true) => status.term + 1,
        _ => status.term,
    };
    Ok(message.term.0 <= allowed)
}

/// Tells the core that every browser tab of the configuration, and any tab in `named`, never
/// campaigns ([`raft_core::RaftNode::set_peer_campaigns`]), so that as leader it never hands
/// leadership to one (thesis §3.10) and refuses a change that would leave the campaigning
/// voters a minority. Called before every membership change and transfer, on whichever node
/// receives it: the set is kept by each node and not replicated.
pub(crate) fn tell_core_tabs_never_campaign(node: &mut raft_core::RaftNode, named: &[NodeId]) {
    let members = node.membership().members();
    for id in members.into_iter().chain(named.iter().copied()).filter(|id| is_browser_node_id(*id)) {
        node.set_peer_campaigns(id, false);
    }
}

/// The servers a membership change names.
pub(crate) fn named_in(change: &MembershipChange) -> Vec<NodeId> {
    match change {
        MembershipChange::AddVoter(id)
        | MembershipChange::AddLearner(id)
        | MembershipChange::DemoteVoter(id)
        | MembershipChange::RemoveServer(id) => vec![*id],
        MembershipChange::ReplaceVoters(voters) => voters.iter().copied().collect(),
    }
}

/// A voter tab the leader has not heard from for a while.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SilentVoter {
    /// The tab's id.
    pub id: u64,
    /// Milliseconds since the leader last heard from it.
    pub silent_ms: u64,
    /// For an operator: "voter tab 4294967301 silent for 40 s".
    pub message: String,
}

impl SilentVoter {
    fn new(id: u64, silent_ms: u64) -> SilentVoter {
        SilentVoter { id, silent_ms, message: format!("voter tab {id} silent for {} s", silent_ms / 1000) }
    }
}

/// The leader's silent voter tabs (empty on any other node: only a leader hears from everyone).
pub fn silent_voters(status: &Status, silent_after: Duration) -> Vec<SilentVoter> {
    if status.role != "leader" {
        return Vec::new();
    }
    let threshold = silent_after.as_millis() as u64;
    status
        .followers
        .iter()
        .filter(|f| is_browser_node_id(NodeId(f.id)) && status.voters.contains(&f.id))
        .filter(|f| f.last_contact_ms >= threshold)
        .map(|f| SilentVoter::new(f.id, f.last_contact_ms))
        .collect()
}

impl BrowserPeers {
    /// Why `admin add-voter <id>` for browser tab `id` is refused, or `None` to go ahead.
    pub fn promotion_refusal(&self, id: NodeId, status: &Status) -> Option<String> {
        if status.voters.contains(&id.0) {
            return None; // The core answers that it already votes.
        }
        if !status.learners.contains(&id.0) {
            return Some(format!(
                "browser tab {id} is not a learner of this cluster: a tab joins by invitation first"
            ));
        }
        let Some(tab) = self.voters.status_of(id) else {
            return Some(format!(
                "browser tab {id} has not reported its storage to the leader (no TabStatus since it connected)"
            ));
        };
        status_refusal(&tab).map(|why| format!("browser tab {id} cannot vote: {why}"))
    }

    /// The leader's silent voter tabs, as `admin status` shows them.
    pub fn silent_voters(&self) -> Vec<SilentVoter> {
        self.status_now()
            .map_or_else(Vec::new, |status| silent_voters(&status, self.voters.config.silent_after))
    }

    /// Leader, every watch period: refreshes the silence gauges, and demotes voter tabs silent
    /// longer than `--browser-voter-demote-after` if it is set.
    async fn watch_voters(&self) {
        let Some(status) = self.status_now() else { return };
        self.voters.retain_members(&status);
        let silent = silent_voters(&status, self.voters.config.silent_after);
        let metrics = &self.metrics.voters;
        metrics.silent.store(silent.len() as u64, Ordering::Relaxed);
        metrics
            .silent_longest_ms
            .store(silent.iter().map(|s| s.silent_ms).max().unwrap_or(0), Ordering::Relaxed);
        for tab in &silent {
            tracing::warn!(tab = tab.id, silent_ms = tab.silent_ms, "{}", tab.message);
        }
        let (Some(demote_after), Some(raft)) = (self.voters.config.demote_after, self.raft_handle()) else {
            return;
        };
        let timeout = self.config().join_timeout;
        for tab in silent.iter().filter(|tab| tab.silent_ms >= demote_after.as_millis() as u64) {
            match raft.demote_voter(NodeId(tab.id), timeout).await {
                Ok(_) => {
                    metrics.demoted_total.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        tab = tab.id,
                        silent_ms = tab.silent_ms,
                        "demoted a silent voter tab to learner"
                    );
                }
                Err(error) => tracing::info!(tab = tab.id, %error, "could not demote a silent voter tab yet"),
            }
        }
    }
}

/// Screens an admin operation that concerns a browser tab, on the leader (a follower passes it
/// on, and the core redirects): `add_voter` for a tab gets the tab's address word and is refused
/// unless its status allows it; `transfer` to a tab is refused, and a `transfer` to no one in
/// particular is sent to the most up-to-date native voter while tabs vote.
///
/// # Errors
/// The refusal to answer with (409 and a reason).
pub(crate) fn screen_admin(state: &AppState, operation: Operation) -> Result<Operation, (StatusCode, Value)> {
    let status = state.raft.status();
    if status.role != "leader" {
        return Ok(operation);
    }
    let metrics = &state.browser_peers.metrics.voters;
    let refuse = |code: &str, why: String| (StatusCode::CONFLICT, error_response(code, why, false));
    match operation {
        Operation::AddVoter { node, .. } if is_browser_node_id(NodeId(node)) => {
            if let Some(why) = state.browser_peers.promotion_refusal(NodeId(node), &status) {
                metrics.promotions_refused_total.fetch_add(1, Ordering::Relaxed);
                tracing::info!(tab = node, %why, "refused to promote a browser tab");
                return Err(refuse("voter_refused", why));
            }
            Ok(Operation::AddVoter { node, address: BROWSER_ADDRESS.to_string() })
        }
        Operation::Transfer { node: Some(node) } if is_browser_node_id(NodeId(node)) => {
            metrics.transfers_refused_total.fetch_add(1, Ordering::Relaxed);
            Err(refuse(
                "transfer_refused",
                format!("node {node} is a browser tab: a tab never campaigns, so it cannot take leadership"),
            ))
        }
        Operation::Transfer { node: None }
            if status.voters.iter().any(|id| is_browser_node_id(NodeId(*id))) =>
        {
            let target = status
                .followers
                .iter()
                .filter(|f| status.voters.contains(&f.id) && !is_browser_node_id(NodeId(f.id)))
                .max_by_key(|f| (f.match_index, std::cmp::Reverse(f.last_contact_ms)))
                .map(|f| f.id);
            match target {
                Some(target) => Ok(Operation::Transfer { node: Some(target) }),
                None => Err(refuse(
                    "transfer_refused",
                    "no other native voter to hand leadership to (browser tabs never campaign)".to_string(),
                )),
            }
        }
        other => Ok(other),
    }
}

/// Runs the leader's watch over voter tabs until `shutdown`: a check every tenth of the
/// silence threshold (between 50 ms and 1 s).
pub fn spawn_watch(
    peers: Arc<BrowserPeers>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = peers.voters.config;
        let shortest = config.demote_after.map_or(config.silent_after, |d| d.min(config.silent_after));
        let period = (shortest / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => peers.watch_voters().await,
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_auth::tab::StorageBackend;
    use raft_core::{LogIndex, Term};

    fn status(term: u64, voters: &[u64], learners: &[u64]) -> Status {
        Status {
            role: "leader".into(),
            term,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..Status::default()
        }
    }

    const TAB: u64 = 1 << 32;

    fn answer(term: u64, kind: VoteKind, granted: bool) -> Message {
        Message {
            from: NodeId(TAB),
            to: NodeId(1),
            term: Term(term),
            body: MessageBody::VoteResponse { kind, granted },
        }
    }

    #[test]
    fn a_voter_tabs_vote_answers_count_in_this_term_and_a_granted_pre_vote_in_the_next() {
        let voter = status(5, &[1, 2, TAB], &[]);
        assert_eq!(check_vote_answer(&answer(5, VoteKind::Vote, true), &voter), Ok(true));
        assert_eq!(check_vote_answer(&answer(5, VoteKind::Vote, false), &voter), Ok(true));
        assert_eq!(check_vote_answer(&answer(6, VoteKind::PreVote, true), &voter), Ok(true));
        // A term ahead otherwise: the tab's word alone must not move ours.
        assert_eq!(check_vote_answer(&answer(6, VoteKind::Vote, true), &voter), Ok(false));
        assert_eq!(check_vote_answer(&answer(6, VoteKind::PreVote, false), &voter), Ok(false));
        assert_eq!(check_vote_answer(&answer(7, VoteKind::PreVote, true), &voter), Ok(false));
        // A learner's answer is dropped.
        let learner = status(5, &[1, 2], &[TAB]);
        assert_eq!(check_vote_answer(&answer(5, VoteKind::Vote, true), &learner), Ok(false));
        // Anything else is not an answer.
        let request = Message { body: MessageBody::TimeoutNow, ..answer(5, VoteKind::Vote, true) };
        assert!(check_vote_answer(&request, &voter).is_err());
    }

    #[test]
    fn only_a_durable_persistent_non_campaigning_status_may_vote() {
        let ok = TabStatus { backend: StorageBackend::Opfs, persistent: true, campaigns: false };
        assert_eq!(status_refusal(&ok), None);
        assert!(status_refusal(&TabStatus { backend: StorageBackend::Memory, ..ok })
            .unwrap()
            .contains("memory"));
        assert!(status_refusal(&TabStatus { persistent: false, ..ok }).unwrap().contains("persist"));
        assert!(status_refusal(&TabStatus { campaigns: true, ..ok }).unwrap().contains("campaigns"));
    }

    #[test]
    fn the_leader_reports_voter_tabs_silent_past_the_threshold_and_nothing_else() {
        let follower = |id, last_contact_ms| crate::raft::FollowerStatus {
            id,
            match_index: 1,
            next_index: 2,
            state: "replicate".into(),
            last_contact_ms,
            inflight: 0,
            acked_round: 0,
            leader_round: 0,
        };
        let mut leader = status(3, &[1, 2, TAB, TAB + 1], &[TAB + 2]);
        leader.followers = vec![
            follower(2, 60_000),
            follower(TAB, 40_000),
            follower(TAB + 1, 10),
            follower(TAB + 2, 60_000),
        ];
        let silent = silent_voters(&leader, Duration::from_secs(10));
        assert_eq!(silent, vec![SilentVoter::new(TAB, 40_000)]);
        assert_eq!(silent[0].message, format!("voter tab {TAB} silent for 40 s"));
        let follower_view = Status { role: "follower".into(), ..leader };
        assert!(silent_voters(&follower_view, Duration::from_secs(10)).is_empty());
        let _ = LogIndex(0);
    }
}
