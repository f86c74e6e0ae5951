//! Counters and gauges of one node, rendered as Prometheus text at `/metrics`.
//!
//! Plain atomics: every task updates them without a lock, and a scrape reads them without
//! stopping anyone. Names follow Prometheus conventions (`_total` counters, units last).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the fsync latency histogram's buckets.
const FSYNC_BUCKETS_SECONDS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5];

/// A fixed-bucket histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        for (bound, bucket) in FSYNC_BUCKETS_SECONDS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in FSYNC_BUCKETS_SECONDS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
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
    /// Connections closed because they sent no complete request in time or stayed idle.
    pub connections_timed_out_total: AtomicU64,
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
    /// Client requests that were not valid JSON or not a known operation.
    pub client_requests_malformed_total: AtomicU64,
    /// Client requests refused because another node leads.
    pub client_redirects_total: AtomicU64,
    /// Per-peer replication lag in entries (leader only), as rendered lines.
    pub peer_lag: Mutex<Vec<(u64, u64)>>,
}

impl Metrics {
    /// Prometheus text exposition.
    pub fn render(&self, node_id: u64) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{node_id}\"}} {value}"
            );
        };
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{node=\"{node_id}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        };
        gauge(&mut out, "raft_term", "Current term.", self.term.load(Ordering::Relaxed));
        gauge(
            &mut out,
            "raft_commit_index",
            "Highest committed log index.",
            self.commit_index.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "raft_applied_index",
            "Highest applied log index.",
            self.applied_index.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "raft_last_index",
            "Index of the last log entry.",
            self.last_index.load(Ordering::Relaxed),
        );
        gauge(&mut out, "raft_is_leader", "1 while this node leads.", self.is_leader.load(Ordering::Relaxed));
        counter(
            &mut out,
            "raft_leader_changes_total",
            "Times the known leader changed.",
            &self.leader_changes_total,
        );
        counter(&mut out, "raft_proposals_total", "Proposals accepted.", &self.proposals_total);
        counter(
            &mut out,
            "raft_proposals_refused_total",
            "Proposals refused.",
            &self.proposals_refused_total,
        );
        counter(&mut out, "raft_ready_batches_total", "Ready batches processed.", &self.ready_batches_total);
        counter(
            &mut out,
            "raft_entries_persisted_total",
            "Log entries made durable.",
            &self.entries_persisted_total,
        );
        counter(&mut out, "raft_fsyncs_total", "Durable commits, one fsync each.", &self.fsyncs_total);
        self.fsync_seconds.render("raft_fsync_seconds", "Latency of one durable commit.", &mut out);
        counter(&mut out, "raft_entries_applied_total", "Entries applied.", &self.entries_applied_total);
        counter(
            &mut out,
            "raft_peer_messages_received_total",
            "Peer messages received.",
            &self.peer_messages_received_total,
        );
        counter(
            &mut out,
            "raft_peer_messages_invalid_total",
            "Peer messages refused by the core.",
            &self.peer_messages_invalid_total,
        );
        counter(
            &mut out,
            "raft_peer_messages_sent_total",
            "Peer messages queued for sending.",
            &self.peer_messages_sent_total,
        );
        counter(
            &mut out,
            "raft_peer_messages_dropped_total",
            "Peer messages dropped: queue full.",
            &self.peer_messages_dropped_total,
        );
        counter(
            &mut out,
            "raft_peer_inbox_dropped_total",
            "Inbound peer messages dropped: core inbox full.",
            &self.peer_inbox_dropped_total,
        );
        counter(
            &mut out,
            "raft_peer_frames_malformed_total",
            "Undecodable peer frames.",
            &self.peer_frames_malformed_total,
        );
        counter(
            &mut out,
            "raft_peer_frames_unauthenticated_total",
            "Peer frames refused: session tag failed.",
            &self.peer_frames_unauthenticated_total,
        );
        counter(
            &mut out,
            "raft_admin_auth_failures_total",
            "Admin requests refused: wrong or missing secret.",
            &self.admin_auth_failures_total,
        );
        counter(
            &mut out,
            "raft_admin_auth_throttled_total",
            "Admin requests refused: too many recent failures from the address.",
            &self.admin_auth_throttled_total,
        );
        counter(
            &mut out,
            "raft_connections_refused_total",
            "Connections refused by a limit.",
            &self.connections_refused_total,
        );
        counter(
            &mut out,
            "raft_connections_timed_out_total",
            "Connections closed: header or idle timeout.",
            &self.connections_timed_out_total,
        );
        counter(
            &mut out,
            "raft_registrations_throttled_total",
            "Session registrations refused: rate limit.",
            &self.registrations_throttled_total,
        );
        counter(
            &mut out,
            "raft_snapshot_staging_refused_total",
            "Snapshots from a leader refused: larger than the staging limit.",
            &self.snapshot_staging_refused_total,
        );
        counter(
            &mut out,
            "raft_peer_handshakes_refused_total",
            "Peer handshakes refused.",
            &self.peer_handshakes_refused_total,
        );
        counter(
            &mut out,
            "raft_peer_connections_total",
            "Peer connections established.",
            &self.peer_connections_total,
        );
        counter(
            &mut out,
            "raft_client_requests_total",
            "Client requests answered.",
            &self.client_requests_total,
        );
        counter(
            &mut out,
            "raft_client_requests_malformed_total",
            "Malformed client requests.",
            &self.client_requests_malformed_total,
        );
        counter(
            &mut out,
            "raft_client_redirects_total",
            "Client requests sent to the leader.",
            &self.client_redirects_total,
        );
        let _ = writeln!(out, "# HELP raft_peer_lag_entries Entries a follower is behind the leader's log.\n# TYPE raft_peer_lag_entries gauge");
        if let Ok(lags) = self.peer_lag.lock() {
            for (peer, lag) in lags.iter() {
                let _ = writeln!(out, "raft_peer_lag_entries{{node=\"{node_id}\",peer=\"{peer}\"}} {lag}");
            }
        }
        out
    }
}
