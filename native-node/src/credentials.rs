//! The three credentials of a cluster, each with one purpose, and how strong a secret must be.
//!
//! | credential | held by | lets its holder |
//! |---|---|---|
//! | peer secret | every node | join the peer protocol (`/raft`): vote, replicate, be a member |
//! | admin secret | operators (and a node started with `--join`) | change membership, transfer leadership, snapshot, back up, restore, read `status` and `/events` |
//! | client token | applications | read and write keys (`/client`, `/v1/kv`); optional on loopback |
//!
//! Each comes from its own flag, file or variable (see `raft-node serve --help`). A development
//! cluster may give one `FLOTILLA_SECRET` instead: it then serves as both peer and admin secret
//! (one secret, two roles: for loopback and tests only; off loopback the node refuses it) and
//! no client token is asked. The admin secret also opens the client API, so an operator needs
//! one credential.
//!
//! A secret must carry at least [`SECRET_BITS_MIN`] bits by [`estimated_bits`] outside
//! `--insecure-dev`: the peer handshake is an offline guessing oracle for whoever captures it
//! (without TLS), and the admin check is one online.

use crate::metrics::Metrics;
use crate::server::Shared;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::Ordering;

/// The fewest bits of randomness a secret may carry outside `--insecure-dev`.
pub const SECRET_BITS_MIN: u32 = 128;

/// A node's credentials.
#[derive(Clone)]
pub struct Credentials {
    peer_secret: Vec<u8>,
    admin_secret: Vec<u8>,
    client_token: Option<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("separate_admin_secret", &self.separate_admin_secret())
            .field("client_token", &self.client_token.is_some())
            .finish()
    }
}

impl Credentials {
    /// A development cluster's: one secret for peers and admins, no client token.
    pub fn shared(secret: Vec<u8>) -> Credentials {
        Credentials { admin_secret: secret.clone(), peer_secret: secret, client_token: None }
    }

    /// Separate credentials.
    pub fn separate(
        peer_secret: Vec<u8>,
        admin_secret: Vec<u8>,
        client_token: Option<Vec<u8>>,
    ) -> Credentials {
        Credentials { peer_secret, admin_secret, client_token }
    }

    /// The peer secret's bytes: the key of the peer handshake and of every frame's tag, and
    /// (for browser peers) of invite tokens, `HMAC(peer secret, "flotilla invite v1")`.
    pub fn peer_secret(&self) -> &[u8] {
        &self.peer_secret
    }

    /// The admin secret's bytes.
    pub fn admin_secret(&self) -> &[u8] {
        &self.admin_secret
    }

    /// The client token, if clients need one.
    pub fn client_token(&self) -> Option<&[u8]> {
        self.client_token.as_deref()
    }

    /// Whether admins hold something peers do not.
    pub fn separate_admin_secret(&self) -> bool {
        self.admin_secret != self.peer_secret
    }

    /// Checks what a node started with these credentials may do: every secret strong enough
    /// (unless `insecure_dev`), and off loopback a separate admin secret and a client token.
    ///
    /// # Errors
    /// A message saying which credential is missing or weak, and how to make one.
    pub fn check(&self, loopback: bool, insecure_dev: bool) -> Result<(), String> {
        if insecure_dev {
            return Ok(());
        }
        let mut named: Vec<(&str, &[u8])> =
            vec![("peer secret", &self.peer_secret), ("admin secret", &self.admin_secret)];
        if let Some(token) = &self.client_token {
            named.push(("client token", token));
        }
        for (name, secret) in named {
            let bits = estimated_bits(secret);
            if bits < SECRET_BITS_MIN {
                return Err(format!(
                    "the {name} carries at most {bits} bits of randomness; at least {SECRET_BITS_MIN} are needed \
                     (`raft-node secret` prints one), or pass --insecure-dev"
                ));
            }
        }
        if !loopback {
            if !self.separate_admin_secret() {
                return Err(
                    "off loopback, peers and admins need separate secrets: give --peer-secret-file and \
                            --admin-secret-file (or FLOTILLA_PEER_SECRET and FLOTILLA_ADMIN_SECRET), not one \
                            FLOTILLA_SECRET"
                        .into(),
                );
            }
            if self.client_token.is_none() {
                return Err(
                    "off loopback, clients need a client token: give --client-token-file or FLOTILLA_CLIENT_TOKEN"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// An upper bound on the bits of randomness in `secret`: its length times the bits per
/// character of the smallest alphabet that holds it (hex 4, base64 6, printable ASCII 6.5,
/// other bytes 8). A secret from `raft-node secret` (64 hex digits) has 256; a word or a short
/// phrase has far fewer than it shows, so this only refuses what is surely too weak.
pub fn estimated_bits(secret: &[u8]) -> u32 {
    let hex = secret.iter().all(u8::is_ascii_hexdigit);
    let base64 =
        secret.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='));
    let printable = secret.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    let tenths_per_char: u64 = if hex {
        40
    } else if base64 {
        60
    } else if printable {
        65
    } else {
        80
    };
    u32::try_from(secret.len() as u64 * tenths_per_char / 10).unwrap_or(u32::MAX)
}

type HmacSha256 = Hmac<Sha256>;

/// Compares presented credentials with the expected ones in constant time: both sides are
/// HMACs under a per-process random key, so neither length nor content leaks through timing.
#[derive(Debug)]
pub struct SecretMatcher {
    key: [u8; 32],
    expected: Vec<[u8; 32]>,
}

fn digest(key: &[u8; 32], secret: &[u8]) -> [u8; 32] {
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts keys of any length"),
    };
    mac.update(secret);
    mac.finalize().into_bytes().into()
}

impl SecretMatcher {
    /// A matcher that accepts any of `secrets`.
    pub fn new(secrets: &[&[u8]]) -> SecretMatcher {
        let mut key = [0u8; 32];
        if getrandom::getrandom(&mut key).is_err() {
            key = [0x36; 32];
        }
        let expected = secrets.iter().map(|secret| digest(&key, secret)).collect();
        SecretMatcher { key, expected }
    }

    /// Whether `given` is one of the accepted secrets.
    pub fn matches(&self, given: &[u8]) -> bool {
        let given = digest(&self.key, given);
        // Fold without early exit: every expected digest is compared in full.
        self.expected.iter().fold(false, |found, expected| {
            let difference = expected.iter().zip(given.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (difference == 0)
        })
    }
}

/// The client API's gate: open when no client token is configured, otherwise a request to
/// `/client` or `/v1/kv/...` must present the client token (or the admin secret) as
/// `Authorization: Bearer`, or as `?token=` for browsers, which cannot set headers on a
/// WebSocket.
#[derive(Debug)]
pub struct ClientGate {
    matcher: Option<SecretMatcher>,
}

impl ClientGate {
    /// The gate for `credentials`.
    pub fn new(credentials: &Credentials) -> ClientGate {
        ClientGate {
            matcher: credentials
                .client_token()
                .map(|token| SecretMatcher::new(&[token, credentials.admin_secret()])),
        }
    }

    /// Whether a request presenting `given` may use the client API.
    pub fn allows(&self, given: Option<&[u8]>) -> bool {
        match &self.matcher {
            None => true,
            Some(matcher) => given.is_some_and(|given| matcher.matches(given)),
        }
    }
}

fn guarded_path(path: &str) -> bool {
    path == "/client" || path.starts_with("/v1/kv/")
}

fn presented_token(request: &Request) -> Option<Vec<u8>> {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.as_bytes().to_vec());
    header.or_else(|| {
        request
            .uri()
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(|token| token.as_bytes().to_vec())
    })
}

/// Middleware: refuses the client API without the client token (401, counted in
/// `raft_client_auth_failures_total`).
pub(crate) async fn client_gate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if guarded_path(request.uri().path()) && !state.client_gate.allows(presented_token(&request).as_deref()) {
        refuse(&state.metrics);
        let body = crate::api::error_response(
            "unauthorized",
            "the client API needs the client token (Authorization: Bearer, or ?token=)",
            false,
        );
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    next.run(request).await
}

fn refuse(metrics: &Metrics) {
    metrics.client_auth_failures_total.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_is_estimated_from_the_alphabet() {
        assert_eq!(estimated_bits(&[b'a'; 64]), 256);
        assert_eq!(estimated_bits(b"flotilla-dev"), 72);
        assert!(estimated_bits(b"0123456789abcdef0123456789abcdef") >= SECRET_BITS_MIN);
        assert!(estimated_bits(b"0123456789abcdef") < SECRET_BITS_MIN);
        assert_eq!(estimated_bits(&[0xff; 16]), 128);
    }

    #[test]
    fn off_loopback_needs_separate_strong_credentials() {
        let strong = |c: u8| vec![c; 40];
        let shared = Credentials::shared(strong(b'a'));
        assert!(shared.check(true, false).is_ok());
        assert!(shared.check(false, false).unwrap_err().contains("separate secrets"));
        let no_token = Credentials::separate(strong(b'a'), strong(b'b'), None);
        assert!(no_token.check(false, false).unwrap_err().contains("client token"));
        let full = Credentials::separate(strong(b'a'), strong(b'b'), Some(strong(b'c')));
        assert!(full.check(false, false).is_ok());
        let weak = Credentials::separate(strong(b'a'), b"admin".to_vec(), Some(strong(b'c')));
        assert!(weak.check(true, false).unwrap_err().contains("admin secret"));
        assert!(weak.check(false, true).is_ok(), "--insecure-dev accepts anything");
    }

    #[test]
    fn the_gate_takes_the_token_or_the_admin_secret_and_nothing_else() {
        let open = ClientGate::new(&Credentials::shared(b"s".to_vec()));
        assert!(open.allows(None));
        let gate = ClientGate::new(&Credentials::separate(
            b"peer".to_vec(),
            b"admin".to_vec(),
            Some(b"tok".to_vec()),
        ));
        assert!(gate.allows(Some(b"tok")));
        assert!(gate.allows(Some(b"admin")));
        assert!(!gate.allows(Some(b"peer")), "the peer secret is not a client credential");
        assert!(!gate.allows(Some(b"to")));
        assert!(!gate.allows(None));
    }
}
