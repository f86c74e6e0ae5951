//! Counters, gauges and histograms of one node, exposed at `/metrics` in the Prometheus text
//! format by the `prometheus-client` crate.
//!
//! Counters and gauges are plain atomics: every task updates them without a lock, and a scrape
//! reads them without stopping anyone. Each scrape builds a `prometheus_client` registry from
//! their values, the histograms (which are the crate's own) and the per-peer link figures the
//! transport reports, labelled with the node's id. Names follow Prometheus conventions
//! (`_total` counters, units last); `native-node/grafana/flotilla.json` is a dashboard on them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram as PromHistogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the fsync latency histogram's buckets.
const FSYNC_BUCKETS_SECONDS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5];

/// Upper bounds (seconds) of the client request latency histograms' buckets: from a fast
/// local read to a request that waited out its timeout.
const REQUEST_BUCKETS_SECONDS: [f64; 16] =
    [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0];

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A histogram of durations (the fsync latency).
#[derive(Debug, Clone)]
pub struct Histogram(PromHistogram);

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram(PromHistogram::new(FSYNC_BUCKETS_SECONDS))
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, duration: Duration) {
        self.0.observe(duration.as_secs_f64());
    }
}

/// Labels of a client request's latency: its operation and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `put`, `get`, `cas`, ... (the API's op names).
    pub op: &'static str,
    /// `ok`, or the answer's stable error code (`not_leader`, `leadership_lost`, `timeout`, ...).
    pub result: &'static str,
}

fn request_histogram() -> PromHistogram {
    PromHistogram::new(REQUEST_BUCKETS_SECONDS)
}

/// Client request latency per operation and result.
#[derive(Debug, Clone)]
pub struct RequestLatency(Family<RequestLabels, PromHistogram, fn() -> PromHistogram>);

impl Default for RequestLatency {
    fn default() -> RequestLatency {
        RequestLatency(Family::new_with_constructor(request_histogram))
    }
}

impl RequestLatency {
    /// Records one request of `op` that ended with `result` after `duration`.
    pub fn observe(&self, op: &'static str, result: &'static str, duration: Duration) {
        self.0.get_or_create(&RequestLabels { op, result }).observe(duration.as_secs_f64());
    }
}

/// One peer link as the transport sees it, for the per-peer metrics.
#[derive(Clone, Debug, Default)]
pub struct PeerLink {
    /// The peer.
    pub peer: u64,
    /// Live connections to it (0: down).
    pub connections: u64,
    /// Connections after the first.
    pub reconnects: u64,
    /// Connections closed because nothing was heard for the idle timeout.
    pub idle_closes: u64,
    /// Messages dropped for it (queue full or stale).
    pub dropped_messages: u64,
    /// Messages waiting in its queue.
    pub queued_messages: u64,
    /// Time since anything was heard from it, if ever.
    pub since_last_heard: Option<Duration>,
    /// Last ping round trip, if a pong came back.
    pub ping_round_trip: Option<Duration>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: u64,
}

/// Every metric of a node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Current term.
    pub term: AtomicU64,
    /// Highest committed index.
    pub commit_index: AtomicU64,
    /// Highest applied index.
    pub applied_index: AtomicU64,
    /// Last index of the log.
    pub last_index: AtomicU64,
    /// 1 while this node leads.
    pub is_leader: AtomicU64,
    /// Times the known leader changed.
    pub leader_changes_total: AtomicU64,
    /// Proposals accepted by the core.
    pub proposals_total: AtomicU64,
    /// Proposals refused (not leader, window full).
    pub proposals_refused_total: AtomicU64,
    /// Ready batches handed out by the core.
    pub ready_batches_total: AtomicU64,
    /// Entries made durable.
    pub entries_persisted_total: AtomicU64,
    /// Durable commits (one fsync each).
    pub fsyncs_total: AtomicU64,
    /// Fsync (commit) latency.
    pub fsync_seconds: Histogram,
    /// Committed entries applied to the state machine.
    pub entries_applied_total: AtomicU64,
    /// Peer messages handed to the core.
    pub peer_messages_received_total: AtomicU64,
    /// Peer messages the core refused as invalid.
    pub peer_messages_invalid_total: AtomicU64,
    /// Peer messages queued for sending.
    pub peer_messages_sent_total: AtomicU64,
    /// Peer messages dropped because a peer's outbound queue was full.
    pub peer_messages_dropped_total: AtomicU64,
    /// Inbound peer messages dropped because the core's inbox was full.
    pub peer_inbox_dropped_total: AtomicU64,
    /// Peer frames that could not be decoded (bad version, kind or body).
    pub peer_frames_malformed_total: AtomicU64,
    /// Peer frames after the handshake whose session tag failed (forged, replayed, reordered); each closes its connection.
    pub peer_frames_unauthenticated_total: AtomicU64,
    /// Admin requests (and event streams) refused for a wrong or missing secret.
    pub admin_auth_failures_total: AtomicU64,
    /// Admin requests refused because their address failed too often recently.
    pub admin_auth_throttled_total: AtomicU64,
    /// TCP connections or WebSockets refused by a connection limit (per address, clients, peers).
    pub connections_refused_total: AtomicU64,
    /// Connections closed because they sent no complete request in time or stayed idle (a
    /// restore body too slow or silent, answered 408, counts too).
    pub connections_timed_out_total: AtomicU64,
    /// Connections whose TLS handshake failed (no TLS, unknown CA, bad certificate).
    pub connections_tls_failed_total: AtomicU64,
    /// Bytes of keys and values in the store (see `quota`).
    pub kv_bytes: AtomicU64,
    /// 1 while the store is at or over its quota: puts are refused with `no_space`.
    pub no_space_alarm: AtomicU64,
    /// Requests refused for a missing or wrong client token.
    pub client_auth_failures_total: AtomicU64,
    /// `/raft` upgrades refused because the TLS connection presented no client certificate.
    pub peer_certificate_missing_total: AtomicU64,
    /// Session registrations refused by the rate limit.
    pub registrations_throttled_total: AtomicU64,
    /// Snapshots from a leader refused because they outgrew the staging limit.
    pub snapshot_staging_refused_total: AtomicU64,
    /// Peer connections refused at the handshake (secret, cluster, version).
    pub peer_handshakes_refused_total: AtomicU64,
    /// Peer connections established (both directions).
    pub peer_connections_total: AtomicU64,
    /// Client requests answered.
    pub client_requests_total: AtomicU64,
    /// `GET /v1/cluster` requests (answered from a cache rebuilt at most every 250 ms).
    pub cluster_view_requests_total: AtomicU64,
    /// Client requests that were not valid JSON or not a known operation.
    pub client_requests_malformed_total: AtomicU64,
    /// Client requests refused because another node leads.
    pub client_redirects_total: AtomicU64,
    /// Waiting clients answered `leadership_lost` (outcome unknown) when this node stepped down.
    pub leadership_lost_answers_total: AtomicU64,
    /// Peer connections closed because nothing was heard on them for an idle timeout.
    pub peer_idle_closes_total: AtomicU64,
    /// Peer connections closed because a write did not finish within the write timeout.
    pub peer_write_timeouts_total: AtomicU64,
    /// Peer dials that did not connect and authenticate within the dial timeout.
    pub peer_dial_timeouts_total: AtomicU64,
    /// Queued peer messages dropped as stale (older than the queue's staleness bound).
    pub peer_messages_stale_total: AtomicU64,
    /// Per-peer replication lag in entries (leader only), as rendered lines.
    pub peer_lag: Mutex<Vec<(u64, u64)>>,
    /// Client request latency per operation and result.
    pub request_seconds: RequestLatency,
    /// Browser peers (issue #13): connected, joins refused by reason, bytes sent.
    pub browser_peers: std::sync::Arc<crate::browser_peers::BrowserMetrics>,
}

impl Metrics {
    /// Prometheus text exposition, without per-peer link figures.
    pub fn render(&self, node_id: u64) -> String {
        self.render_with_peers(node_id, &[], None)
    }

    /// Prometheus text exposition with the transport's per-peer links and, on a follower, the
    /// time since it last heard from a leader.
    pub fn render_with_peers(
        &self,
        node_id: u64,
        links: &[PeerLink],
        since_leader_contact: Option<Duration>,
    ) -> String {
        let labels = [(std::borrow::Cow::Borrowed("node"), std::borrow::Cow::Owned(node_id.to_string()))];
        let mut registry = Registry::with_labels(labels.into_iter());
        let gauge = |registry: &mut Registry, name: &str, help: &str, value: &AtomicU64| {
            registry.register(name, help, ConstGauge::new(value.load(Ordering::Relaxed) as i64));
        };
        // Registered without `_total`: the encoder appends it to counters.
        let counter = |registry: &mut Registry, name: &str, help: &str, value: &AtomicU64| {
            let name = name.strip_suffix("_total").unwrap_or(name);
            registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
        };
        gauge(&mut registry, "raft_term", "Current term", &self.term);
        gauge(&mut registry, "raft_commit_index", "Highest committed log index", &self.commit_index);
        gauge(&mut registry, "raft_applied_index", "Highest applied log index", &self.applied_index);
        gauge(&mut registry, "raft_last_index", "Index of the last log entry", &self.last_index);
        gauge(&mut registry, "raft_is_leader", "1 while this node leads", &self.is_leader);
        gauge(&mut registry, "raft_kv_bytes", "Bytes of keys and values in the store", &self.kv_bytes);
        gauge(
            &mut registry,
            "raft_no_space_alarm",
            "1 while the store is at its quota (puts refused with no_space)",
            &self.no_space_alarm,
        );
        let counters: Vec<(&str, &str, &AtomicU64)> = vec![
            ("raft_leader_changes_total", "Times the known leader changed", &self.leader_changes_total),
            ("raft_proposals_total", "Proposals accepted", &self.proposals_total),
            ("raft_proposals_refused_total", "Proposals refused", &self.proposals_refused_total),
            ("raft_ready_batches_total", "Ready batches processed", &self.ready_batches_total),
            ("raft_entries_persisted_total", "Log entries made durable", &self.entries_persisted_total),
            ("raft_fsyncs_total", "Durable commits, one fsync each", &self.fsyncs_total),
            ("raft_entries_applied_total", "Entries applied", &self.entries_applied_total),
            (
                "raft_peer_messages_received_total",
                "Peer messages received",
                &self.peer_messages_received_total,
            ),
            (
                "raft_peer_messages_invalid_total",
                "Peer messages refused by the core",
                &self.peer_messages_invalid_total,
            ),
            (
                "raft_peer_messages_sent_total",
                "Peer messages queued for sending",
                &self.peer_messages_sent_total,
            ),
            (
                "raft_peer_messages_dropped_total",
                "Peer messages dropped: queue full (the oldest goes)",
                &self.peer_messages_dropped_total,
            ),
            (
                "raft_peer_messages_stale_total",
                "Queued peer messages dropped as stale before sending",
                &self.peer_messages_stale_total,
            ),
            (
                "raft_peer_inbox_dropped_total",
                "Inbound peer messages dropped: core inbox full",
                &self.peer_inbox_dropped_total,
            ),
            (
                "raft_peer_frames_malformed_total",
                "Undecodable peer frames",
                &self.peer_frames_malformed_total,
            ),
            (
                "raft_snapshot_staging_refused_total",
                "Snapshots from a leader refused: larger than the staging limit",
                &self.snapshot_staging_refused_total,
            ),
            (
                "raft_peer_handshakes_refused_total",
                "Peer handshakes refused",
                &self.peer_handshakes_refused_total,
            ),
            ("raft_peer_connections_total", "Peer connections established", &self.peer_connections_total),
            (
                "raft_peer_idle_closes_total",
                "Peer connections closed: nothing heard for an election timeout",
                &self.peer_idle_closes_total,
            ),
            (
                "raft_peer_write_timeouts_total",
                "Peer connections closed: a write timed out",
                &self.peer_write_timeouts_total,
            ),
            (
                "raft_peer_dial_timeouts_total",
                "Peer dials abandoned after the dial timeout",
                &self.peer_dial_timeouts_total,
            ),
            (
                "raft_peer_frames_unauthenticated_total",
                "Peer frames refused: session tag failed",
                &self.peer_frames_unauthenticated_total,
            ),
            (
                "raft_admin_auth_failures_total",
                "Admin requests refused: wrong or missing secret",
                &self.admin_auth_failures_total,
            ),
            (
                "raft_admin_auth_throttled_total",
                "Admin requests refused: too many recent failures from the address",
                &self.admin_auth_throttled_total,
            ),
            (
                "raft_connections_refused_total",
                "Connections refused by a limit",
                &self.connections_refused_total,
            ),
            (
                "raft_connections_timed_out_total",
                "Connections closed: header, idle or restore-body timeout",
                &self.connections_timed_out_total,
            ),
            (
                "raft_connections_tls_failed_total",
                "Connections whose TLS handshake failed",
                &self.connections_tls_failed_total,
            ),
            (
                "raft_client_auth_failures_total",
                "Client requests refused: missing or wrong client token",
                &self.client_auth_failures_total,
            ),
            (
                "raft_peer_certificate_missing_total",
                "Peer sockets refused: TLS connection without a client certificate",
                &self.peer_certificate_missing_total,
            ),
            (
                "raft_registrations_throttled_total",
                "Session registrations refused: rate limit",
                &self.registrations_throttled_total,
            ),
            ("raft_client_requests_total", "Client requests answered", &self.client_requests_total),
            (
                "raft_cluster_view_requests_total",
                "GET /v1/cluster requests (the live page's view of the cluster)",
                &self.cluster_view_requests_total,
            ),
            (
                "raft_client_requests_malformed_total",
                "Malformed client requests",
                &self.client_requests_malformed_total,
            ),
            (
                "raft_client_redirects_total",
                "Client requests sent to the leader",
                &self.client_redirects_total,
            ),
            (
                "raft_leadership_lost_answers_total",
                "Waiting client requests answered leadership_lost (outcome unknown) at a step-down",
                &self.leadership_lost_answers_total,
            ),
        ];
        for (name, help, value) in counters {
            counter(&mut registry, name, help, value);
        }
        registry.register(
            "raft_fsync_seconds",
            "Latency of one durable commit",
            self.fsync_seconds.0.clone(),
        );
        registry.register(
            "raft_client_request_seconds",
            "Client request latency by operation and result",
            self.request_seconds.0.clone(),
        );
        if let Some(since) = since_leader_contact {
            registry.register(
                "raft_leader_last_contact_seconds",
                "Time since this node last heard from a leader (0 on the leader)",
                ConstGauge::new(since.as_secs_f64()),
            );
        }
        let lag = Family::<PeerLabels, Gauge>::default();
        if let Ok(lags) = self.peer_lag.lock() {
            for (peer, entries) in lags.iter() {
                lag.get_or_create(&PeerLabels { peer: *peer }).set(*entries as i64);
            }
        }
        registry.register("raft_peer_lag_entries", "Entries a follower is behind the leader's log", lag);
        register_links(&mut registry, links);
        self.browser_peers.register(&mut registry);
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

fn register_links(registry: &mut Registry, links: &[PeerLink]) {
    let gauge = |value: fn(&PeerLink) -> u64| {
        let family = Family::<PeerLabels, Gauge>::default();
        for link in links {
            family.get_or_create(&PeerLabels { peer: link.peer }).set(value(link) as i64);
        }
        family
    };
    let counter = |value: fn(&PeerLink) -> u64| {
        let family = Family::<PeerLabels, Counter>::default();
        for link in links {
            family.get_or_create(&PeerLabels { peer: link.peer }).inc_by(value(link));
        }
        family
    };
    let seconds = |value: fn(&PeerLink) -> Option<Duration>| {
        let family = Family::<PeerLabels, Gauge<f64, AtomicU64>>::default();
        for link in links {
            if let Some(duration) = value(link) {
                family.get_or_create(&PeerLabels { peer: link.peer }).set(duration.as_secs_f64());
            }
        }
        family
    };
    registry.register(
        "raft_peer_connected",
        "Live connections to the peer (0: down)",
        gauge(|l| l.connections),
    );
    registry.register(
        "raft_peer_queued_messages",
        "Messages waiting in the peer's queue",
        gauge(|l| l.queued_messages),
    );
    // Counter names without `_total`: the encoder appends it.
    registry.register(
        "raft_peer_reconnects",
        "Connections to the peer after the first",
        counter(|l| l.reconnects),
    );
    registry.register(
        "raft_peer_idle_closes",
        "Connections to the peer closed: nothing heard for an election timeout",
        counter(|l| l.idle_closes),
    );
    registry.register(
        "raft_peer_dropped_messages",
        "Messages for the peer dropped: queue full or stale",
        counter(|l| l.dropped_messages),
    );
    registry.register(
        "raft_peer_last_heard_seconds",
        "Time since anything was heard from the peer",
        seconds(|l| l.since_last_heard),
    );
    registry.register(
        "raft_peer_ping_round_trip_seconds",
        "Last WebSocket ping round trip to the peer",
        seconds(|l| l.ping_round_trip),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_keeps_the_names_and_adds_latency_and_peer_links() {
        let metrics = Metrics::default();
        metrics.snapshot_staging_refused_total.store(1, Ordering::Relaxed);
        metrics.is_leader.store(1, Ordering::Relaxed);
        metrics.fsync_seconds.observe(Duration::from_millis(3));
        metrics.request_seconds.observe("put", "ok", Duration::from_millis(2));
        metrics.request_seconds.observe("put", "leadership_lost", Duration::from_millis(900));
        if let Ok(mut lags) = metrics.peer_lag.lock() {
            lags.push((2, 7));
        }
        let links = [PeerLink {
            peer: 2,
            connections: 1,
            reconnects: 3,
            since_last_heard: Some(Duration::from_millis(40)),
            ping_round_trip: Some(Duration::from_micros(90)),
            ..PeerLink::default()
        }];
        let text = metrics.render_with_peers(4, &links, Some(Duration::ZERO));
        for expected in [
            "raft_snapshot_staging_refused_total{node=\"4\"} 1",
            "raft_is_leader{node=\"4\"} 1",
            "raft_fsync_seconds_count{node=\"4\"} 1",
            "raft_peer_lag_entries{node=\"4\",peer=\"2\"} 7",
            "raft_peer_connected{node=\"4\",peer=\"2\"} 1",
            "raft_peer_reconnects_total{node=\"4\",peer=\"2\"} 3",
            "raft_peer_ping_round_trip_seconds{node=\"4\",peer=\"2\"} 0.00009",
            "# TYPE raft_client_request_seconds histogram",
            "raft_leader_last_contact_seconds{node=\"4\"} 0",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        assert!(text.contains("raft_client_request_seconds_count{"), "{text}");
        assert!(text.contains("op=\"put\"") && text.contains("result=\"leadership_lost\""), "{text}");
    }
}
