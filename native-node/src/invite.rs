//! `raft-node admin invite`: the node mints an invitation for a browser tab (issue #13) and
//! answers with its link. It is an admin operation the node performs, so the CLI needs the
//! admin credential only, never the peer secret that signs the token (through the invite key,
//! see [`raft_core::wire::invite`]).
//!
//! `POST /admin/invite?ttl_ms=600000&uses=1` with `Authorization: Bearer <admin secret>` →
//! `{"ok": true, "link": "http://<node>/index.html#join=<token>", "expires_unix_ms", "uses"}`
//! (`https://` when the node serves TLS).

use crate::browser_peers::now_unix_ms;
use crate::peer_auth::invite::{InviteFields, InviteRole, InviteToken};
use crate::server::{admin_refused, bearer, http_response, remote_ip, Remote, Shared};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use std::time::Duration;

/// Default lifetime of an invitation.
pub const INVITE_TTL_DEFAULT: Duration = Duration::from_secs(600);
/// Longest lifetime an invitation may have.
pub const INVITE_TTL_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most tabs one invitation may admit.
pub const INVITE_USES_MAX: u32 = 10_000;

/// A fresh invitation to `cluster_id`, signed with `invite_key`.
///
/// # Errors
/// A message when the lifetime or the number of uses is out of range.
pub fn mint(invite_key: &[u8], cluster_id: &str, ttl: Duration, uses: u32) -> Result<InviteToken, String> {
    if ttl.is_zero() || ttl > INVITE_TTL_MAX {
        return Err(format!("ttl must be between 1 ms and {} s", INVITE_TTL_MAX.as_secs()));
    }
    if uses == 0 || uses > INVITE_USES_MAX {
        return Err(format!("uses must be between 1 and {INVITE_USES_MAX}"));
    }
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).map_err(|e| format!("no randomness for the invitation's nonce: {e}"))?;
    let fields = InviteFields {
        cluster_id: cluster_id.to_string(),
        role: InviteRole::Learner,
        expires_unix_ms: now_unix_ms().saturating_add(ttl.as_millis() as u64),
        nonce,
        max_uses: uses,
    };
    Ok(InviteToken::sign(invite_key, fields))
}

/// The link a person opens: the node's page with the token after `#join=` (a fragment, so the
/// token never reaches a server log). `page` is `/index.html` when the node serves the
/// playground (its `/` is the status page), `/` otherwise.
pub fn link(scheme: &str, address: &str, page: &str, token: &InviteToken) -> String {
    format!("{scheme}://{address}{page}#join={}", token.encode())
}

#[derive(serde::Deserialize)]
pub(crate) struct InviteParams {
    #[serde(default)]
    ttl_ms: Option<u64>,
    #[serde(default)]
    uses: Option<u32>,
}

/// `POST /admin/invite`.
pub(crate) async fn admin_invite(
    State(state): State<Shared>,
    remote: Remote,
    headers: HeaderMap,
    Query(params): Query<InviteParams>,
) -> Response {
    let given = bearer(&headers).unwrap_or_default();
    if let Err(refusal) = state.admin_guard.check(given.as_bytes(), remote_ip(&remote), &state.metrics) {
        let (status, body) = admin_refused(refusal);
        return http_response(status, body);
    }
    let browsers = &state.browser_peers;
    let ttl = params.ttl_ms.map_or(INVITE_TTL_DEFAULT, Duration::from_millis);
    match mint(browsers.invite_key(), browsers.cluster_id(), ttl, params.uses.unwrap_or(1)) {
        Ok(token) => {
            let link = link(state.scheme, &state.address, &state.invite_page, &token);
            http_response(
                StatusCode::OK,
                json!({
                    "ok": true,
                    "link": link,
                    "expires_unix_ms": token.fields.expires_unix_ms,
                    "uses": token.fields.max_uses,
                }),
            )
        }
        Err(why) => {
            http_response(StatusCode::BAD_REQUEST, crate::api::error_response("bad_request", why, false))
        }
    }
}

/// Reads a duration such as `10m`, `90s`, `2h`, `500ms` or `1d` (a bare number is seconds).
///
/// # Errors
/// A message naming the text that is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| format!("{text:?} is not a duration (try 10m, 90s, 2h)"))?;
    let millis = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} is not a duration (try 10m, 90s, 2h)")),
    };
    Ok(Duration::from_millis(value.saturating_mul(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_auth::invite::invite_key;

    #[test]
    fn a_minted_invitation_verifies_and_its_link_carries_it() {
        let key = invite_key(b"secret");
        let token = mint(&key, "c", Duration::from_secs(60), 3).unwrap();
        assert_eq!(token.verify(&key, "c", now_unix_ms()), Ok(()));
        let link = link("http", "127.0.0.1:7001", "/index.html", &token);
        let text = link.strip_prefix("http://127.0.0.1:7001/index.html#join=").unwrap();
        assert_eq!(InviteToken::decode(text).unwrap(), token);
        assert!(mint(&key, "c", Duration::ZERO, 1).is_err());
        assert!(mint(&key, "c", Duration::from_secs(60), 0).is_err());
        assert_ne!(mint(&key, "c", Duration::from_secs(60), 1).unwrap().fields.nonce, token.fields.nonce);
    }

    #[test]
    fn durations_read_like_the_cli_writes_them() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
