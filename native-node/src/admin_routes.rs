//! The admin and observer routes: `/events`, `/admin/backup`, `/admin/restore`, `/health` and
//! `/metrics` (the client API is in [`crate::server`]).

use crate::metrics::PeerLink;
use crate::server::{
    admin_refused, bearer, http_response, raft_error, remote_ip, too_many_sockets, AppState, Remote, Shared,
    EVENTS_PING_INTERVAL,
};
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `GET /events`: the node's event stream, for the same credential as `admin status` (a bearer
/// header, or `?secret=` for browsers, which cannot set headers on a WebSocket).
pub(crate) async fn events_socket(
    State(state): State<Shared>,
    remote: Remote,
    headers: HeaderMap,
    Query(params): Query<EventsParams>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let given = bearer(&headers).or(params.secret).unwrap_or_default();
    if let Err(refusal) = state.admin_guard.check(given.as_bytes(), remote_ip(&remote), &state.metrics) {
        let (status, body) = admin_refused(refusal);
        return http_response(status, body);
    }
    let Ok(permit) = state.client_websockets.clone().try_acquire_owned() else {
        return too_many_sockets(&state, "client");
    };
    upgrade.on_upgrade(move |mut socket| async move {
        let _permit = permit;
        let mut events = state.raft.subscribe();
        let status = json!({ "event": "status", "status": state.raft.status() });
        if socket.send(WsMessage::Text(status.to_string().into())).await.is_err() {
            return;
        }
        let mut ping = tokio::time::interval(EVENTS_PING_INTERVAL);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if socket.send(WsMessage::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                event = events.recv() => match event {
                    Ok(event) => {
                        let text = serde_json::to_string(&event).unwrap_or_default();
                        if socket.send(WsMessage::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        let text = json!({ "event": "lagged", "missed": missed }).to_string();
                        if socket.send(WsMessage::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    })
}

#[derive(serde::Deserialize)]
pub(crate) struct EventsParams {
    #[serde(default)]
    secret: Option<String>,
}

/// Checks the bearer secret of an admin HTTP request: the refusal as a response, or `None`.
fn refused_admin(state: &AppState, headers: &HeaderMap, remote: &Remote) -> Option<Response> {
    let given = bearer(headers).unwrap_or_default();
    let refusal = state.admin_guard.check(given.as_bytes(), remote_ip(remote), &state.metrics).err()?;
    let (status, body) = admin_refused(refusal);
    Some(http_response(status, body))
}

/// `GET /admin/backup`: the leader's state machine as snapshot bytes, taken after a barrier,
/// with its applied index in `x-flotilla-index`. A follower redirects to the leader.
pub(crate) async fn admin_backup(
    State(state): State<Shared>,
    remote: Remote,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refused_admin(&state, &headers, &remote) {
        return refused;
    }
    // On the leader, after a barrier: the backup holds every write acknowledged before it.
    let backup = match state.raft.barrier(state.request_timeout).await {
        Ok(_) => state.raft.backup(state.request_timeout).await,
        Err(error) => Err(error),
    };
    match backup {
        Ok((index, data)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::HeaderName::from_static("x-flotilla-index"), index.0.to_string()),
            ],
            data,
        )
            .into_response(),
        Err(error) => {
            let (status, body) = raft_error(&state, &error);
            http_response(status, body)
        }
    }
}

/// `POST /admin/restore`: replaces every replica's state by the snapshot in the body, streamed
/// into the log in pieces (see [`crate::restore`]). The admin secret is checked, and a declared
/// length over `--restore-bytes-max` refused, before a byte of the body is read (a body
/// extractor would buffer it first).
pub(crate) async fn admin_restore(
    State(state): State<Shared>,
    remote: Remote,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if let Some(refused) = refused_admin(&state, &headers, &remote) {
        return refused;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.restore_bytes_max) {
        return crate::restore::too_large(state.restore_bytes_max);
    }
    state.metrics.client_requests_total.fetch_add(1, Ordering::Relaxed);
    crate::restore::stream(&state, body, state.restore_bytes_max).await
}

/// `GET /health`: 200 while the node runs and knows a leader; 503 with `"error": "no leader"`
/// when it knows none (etcd's health says the same), or with the error that stopped it.
pub(crate) async fn health(State(state): State<Shared>) -> Response {
    let status = state.raft.status();
    let running = status.fatal_error.is_none() && status.role != "stopped";
    let error = match (&status.fatal_error, status.leader) {
        (Some(error), _) => Some(error.clone()),
        (None, None) => Some("no leader".to_string()),
        (None, Some(_)) => None,
    };
    let body = json!({
        "ok": running && status.leader.is_some(),
        "node": status.id,
        "role": status.role,
        "term": status.term,
        "leader": status.leader,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "error": error,
    });
    let code = if body["ok"] == json!(true) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text, with the transport's per-peer links and, on a follower,
/// the time since it last heard from a leader.
pub(crate) async fn metrics(State(state): State<Shared>) -> Response {
    let links: Vec<PeerLink> = state
        .transport
        .peer_statuses()
        .into_iter()
        .map(|peer| PeerLink {
            peer: peer.id,
            connections: peer.connections,
            reconnects: peer.reconnects,
            idle_closes: peer.idle_closes,
            dropped_messages: peer.dropped_messages,
            queued_messages: peer.queued_messages,
            since_last_heard: peer.last_heard_ms.map(Duration::from_millis),
            ping_round_trip: peer.ping_round_trip_us.map(Duration::from_micros),
        })
        .collect();
    let since_leader_contact = state.raft.status().last_contact_ms.map(Duration::from_millis);
    let text = state.metrics.render_with_peers(state.node_id.0, &links, since_leader_contact);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}
