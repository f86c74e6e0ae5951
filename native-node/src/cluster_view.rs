//! `GET /v1/cluster`: the node's view of its cluster as JSON, for the live page (issue #13,
//! item 5), which polls every member it knows to draw each one's role, term, commit and applied
//! index, lag and last contact.
//!
//! What it discloses is what a node already shows to anyone who can reach it: the status page
//! `/` (id, role, term, leader, commit and applied index, voters, learners) and `/metrics`
//! (snapshot and last index, and on the leader each follower's lag in entries and the time since
//! it was last heard). It adds no secret, no address, no key or value: this node's figures and,
//! on the leader, each member's match index and last contact as the leader tracks them
//! (thesis §3.5: `matchIndex[]`; a learner's progress is tracked the same way, §4.2.1).
//!
//! Bounded under a flood: the answer is built at most once per
//! [`CLUSTER_VIEW_REFRESH_INTERVAL`] and shared (an `Arc` of ready bytes), so a request costs a
//! lock, a clone of the `Arc` and a comparison of its `Origin` header with at most one string
//! per member; nothing is allocated in proportion to what the request carries. Connections are
//! bounded as every route's are (`limits`).
//!
//! Cross-origin reads: the page a node serves (`--web-dir`) polls the other members, so the
//! answer carries `Access-Control-Allow-Origin` for exactly the origins that are members' own
//! HTTP addresses (`<scheme>://<advertised address>`), echoing the stored value, never `*`; any
//! other origin gets the same JSON without the header, which a browser keeps from its page.

use crate::raft::Status;
use crate::server::Shared;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use raft_core::wire::records::is_browser_node_id;
use raft_core::NodeId;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The answer is rebuilt at most this often; requests in between get the cached one. The live
/// page polls every second, so its figures are at most this much older than they would be.
pub const CLUSTER_VIEW_REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// One built answer: the JSON body and the origins allowed to read it.
#[derive(Debug)]
pub(crate) struct Answer {
    body: Bytes,
    /// `<scheme>://<address>` of each native member this node knows an address for.
    origins: Vec<HeaderValue>,
}

impl Answer {
    /// The stored origin equal to the request's `Origin` (ASCII case aside), if any. Compares
    /// bytes; allocates nothing.
    pub(crate) fn allowed_origin(&self, origin: Option<&HeaderValue>) -> Option<&HeaderValue> {
        let origin = origin?.as_bytes();
        self.origins.iter().find(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin))
    }
}

/// The cached answer and when it was built.
#[derive(Debug, Default)]
pub(crate) struct ClusterView {
    cached: Mutex<Option<(Instant, Arc<Answer>)>>,
}

impl ClusterView {
    /// The answer built within the last [`CLUSTER_VIEW_REFRESH_INTERVAL`] before `now`, else a
    /// fresh one from `build` (called under the lock, so at most one build per interval however
    /// many requests wait).
    pub(crate) fn get(&self, now: Instant, build: impl FnOnce() -> Answer) -> Arc<Answer> {
        let mut cached = self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((built_at, answer)) = cached.as_ref() {
            if now.saturating_duration_since(*built_at) < CLUSTER_VIEW_REFRESH_INTERVAL {
                return answer.clone();
            }
        }
        let answer = Arc::new(build());
        *cached = Some((now, answer.clone()));
        answer
    }
}

/// Builds the answer from a status, the member addresses the transport knows, this node's own
/// advertised address and the scheme it serves (`http` or `https`).
pub(crate) fn build(
    status: &Status,
    addresses: &BTreeMap<NodeId, String>,
    own_address: &str,
    scheme: &str,
) -> Answer {
    let leader = status.role == "leader";
    let voters = status.voters.iter().map(|id| (*id, true));
    let learners = status.learners.iter().map(|id| (*id, false));
    let members: Vec<_> = voters
        .chain(learners)
        .map(|(id, voter)| {
            // What the leader tracks of each member (its own log counts as matched); null on a
            // follower, which tracks nobody.
            let progress = status.followers.iter().find(|f| f.id == id);
            let (match_index, last_contact_ms) = match progress {
                Some(follower) if leader => (Some(follower.match_index), Some(follower.last_contact_ms)),
                None if leader && id == status.id => (Some(status.last_index), Some(0)),
                _ => (None, None),
            };
            json!({
                "id": id,
                "voter": voter,
                "kind": if is_browser_node_id(NodeId(id)) { "browser" } else { "native" },
                "match_index": match_index,
                "last_contact_ms": last_contact_ms,
            })
        })
        .collect();
    let body = json!({
        "node": status.id,
        "role": status.role,
        "term": status.term,
        "leader": status.leader,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "snapshot_index": status.snapshot_index,
        "last_contact_ms": status.last_contact_ms,
        "members": members,
    });
    // Only members' addresses: a removed node's address may linger in the transport.
    let is_member = |id: u64| status.voters.contains(&id) || status.learners.contains(&id);
    let native = addresses
        .iter()
        .filter(|(id, _)| !is_browser_node_id(**id) && id.0 != status.id && is_member(id.0))
        .map(|(_, address)| address.as_str());
    let origins = std::iter::once(own_address)
        .chain(native)
        .filter_map(|address| HeaderValue::from_str(&format!("{scheme}://{address}")).ok())
        .collect();
    Answer { body: Bytes::from(body.to_string()), origins }
}

/// `GET /v1/cluster`: see the module's documentation.
pub(crate) async fn cluster(State(state): State<Shared>, headers: HeaderMap) -> Response {
    state.metrics.cluster_view_requests_total.fetch_add(1, Ordering::Relaxed);
    let answer = state.cluster_view.get(Instant::now(), || {
        build(&state.raft.status(), &state.transport.addresses(), &state.address, state.scheme)
    });
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // The answer depends on the Origin header: no shared cache may mix them up.
            (header::VARY, HeaderValue::from_static("origin")),
        ],
        answer.body.clone(),
    )
        .into_response();
    if let Some(origin) = answer.allowed_origin(headers.get(header::ORIGIN)) {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::FollowerStatus;
    use serde_json::Value;
    use std::cell::Cell;

    const TAB: u64 = 1 << 32;

    fn follower(id: u64, match_index: u64, last_contact_ms: u64) -> FollowerStatus {
        FollowerStatus {
            id,
            match_index,
            next_index: match_index + 1,
            state: "replicate".into(),
            last_contact_ms,
            inflight: 0,
            acked_round: 0,
            leader_round: 0,
        }
    }

    /// Node 1 leads voters 1-3 and learner tab 2^32; node 4 was removed but its address stays.
    fn leader_status() -> Status {
        Status {
            id: 1,
            role: "leader".into(),
            term: 3,
            leader: Some(1),
            commit_index: 40,
            applied_index: 39,
            last_index: 41,
            voters: vec![1, 2, 3],
            learners: vec![TAB],
            followers: vec![follower(2, 40, 20), follower(3, 12, 900), follower(TAB, 38, 50)],
            last_contact_ms: Some(0),
            snapshot_index: 30,
            ..Status::default()
        }
    }

    fn addresses() -> BTreeMap<NodeId, String> {
        [(2, "127.0.0.1:7002"), (3, "127.0.0.1:7003"), (4, "127.0.0.1:7004"), (TAB, "browser")]
            .into_iter()
            .map(|(id, address)| (NodeId(id), address.to_string()))
            .collect()
    }

    fn body(answer: &Answer) -> Value {
        serde_json::from_slice(&answer.body).unwrap()
    }

    fn member(body: &Value, id: u64) -> &Value {
        body["members"].as_array().unwrap().iter().find(|m| m["id"] == id).unwrap()
    }

    #[test]
    fn the_leader_tells_each_members_match_index_and_last_contact() {
        let answer = build(&leader_status(), &addresses(), "127.0.0.1:7001", "http");
        let body = body(&answer);
        assert_eq!(body["node"], 1);
        assert_eq!(body["role"], "leader");
        assert_eq!(body["term"], 3);
        assert_eq!(body["leader"], 1);
        assert_eq!(body["commit_index"], 40);
        assert_eq!(body["applied_index"], 39);
        assert_eq!(body["snapshot_index"], 30);
        assert_eq!(body["members"].as_array().unwrap().len(), 4);
        assert_eq!(member(&body, 1)["match_index"], 41, "the leader's own log is matched");
        assert_eq!(member(&body, 1)["last_contact_ms"], 0);
        assert_eq!(member(&body, 3)["match_index"], 12);
        assert_eq!(member(&body, 3)["last_contact_ms"], 900);
        assert_eq!(member(&body, 3)["voter"], true);
        assert_eq!(member(&body, 3)["kind"], "native");
        let tab = member(&body, TAB);
        assert_eq!(tab["kind"], "browser");
        assert_eq!(tab["voter"], false);
        assert_eq!(tab["match_index"], 38);
        assert_eq!(tab["last_contact_ms"], 50);
    }

    #[test]
    fn a_follower_tells_its_own_figures_and_the_members_but_no_progress() {
        let status = Status {
            id: 2,
            role: "follower".into(),
            leader: Some(1),
            last_contact_ms: Some(30),
            // A stale progress list must not be reported as the leader's.
            followers: vec![follower(3, 5, 5)],
            ..leader_status()
        };
        let body = body(&build(&status, &addresses(), "127.0.0.1:7002", "http"));
        assert_eq!(body["node"], 2);
        assert_eq!(body["role"], "follower");
        assert_eq!(body["last_contact_ms"], 30);
        for id in [1, 2, 3, TAB] {
            assert_eq!(member(&body, id)["match_index"], Value::Null, "member {id}");
            assert_eq!(member(&body, id)["last_contact_ms"], Value::Null, "member {id}");
        }
    }

    #[test]
    fn the_answer_holds_no_address_and_no_secret() {
        let answer = build(&leader_status(), &addresses(), "127.0.0.1:7001", "http");
        let text = std::str::from_utf8(&answer.body).unwrap();
        assert!(!text.contains("127.0.0.1"), "{text}");
        assert!(!text.contains("address"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn cross_origin_reads_are_allowed_to_members_own_addresses_only() {
        let answer = build(&leader_status(), &addresses(), "127.0.0.1:7001", "http");
        let allowed =
            |origin: &str| answer.allowed_origin(Some(&HeaderValue::from_str(origin).unwrap())).cloned();
        for member in ["http://127.0.0.1:7001", "http://127.0.0.1:7002", "http://127.0.0.1:7003"] {
            assert_eq!(allowed(member), Some(HeaderValue::from_str(member).unwrap()), "{member}");
        }
        assert_eq!(
            allowed("HTTP://127.0.0.1:7002").unwrap(),
            "http://127.0.0.1:7002",
            "the stored value is echoed"
        );
        for stranger in [
            "http://127.0.0.1:7004", // removed from the configuration
            "http://browser",
            "https://127.0.0.1:7002", // another scheme is another origin
            "http://127.0.0.1:700",
            "http://127.0.0.1:70022",
            "http://evil.example",
            "null",
            "*",
            "",
        ] {
            assert_eq!(allowed(stranger), None, "{stranger}");
        }
        assert_eq!(answer.allowed_origin(None), None, "same-origin requests need no header");
        let tls = build(&leader_status(), &addresses(), "127.0.0.1:7001", "https");
        assert!(tls.allowed_origin(Some(&HeaderValue::from_static("https://127.0.0.1:7003"))).is_some());
        assert!(tls.allowed_origin(Some(&HeaderValue::from_static("http://127.0.0.1:7003"))).is_none());
    }

    #[test]
    fn the_answer_is_built_at_most_once_per_interval() {
        let view = ClusterView::default();
        let builds = Cell::new(0);
        let counting = || {
            builds.set(builds.get() + 1);
            build(&leader_status(), &addresses(), "127.0.0.1:7001", "http")
        };
        let start = Instant::now();
        let first = view.get(start, counting);
        for k in 0..1000 {
            let again = view.get(start + CLUSTER_VIEW_REFRESH_INTERVAL * k / 1000, counting);
            assert!(Arc::ptr_eq(&first, &again));
        }
        assert_eq!(builds.get(), 1);
        let later = view.get(start + CLUSTER_VIEW_REFRESH_INTERVAL, counting);
        assert_eq!(builds.get(), 2);
        assert!(!Arc::ptr_eq(&first, &later));
        // A clock that goes backwards (another thread's earlier Instant) reuses the answer.
        view.get(start, counting);
        assert_eq!(builds.get(), 2);
    }
}
