//! Invitations: how a browser tab joins a cluster as a learner without ever holding the
//! cluster's secret (issue #13; learners are thesis §4.2.1's non-voting members).
//!
//! - `invite_key = HMAC(peer secret, "flotilla invite v1")`: the only key an invitation is
//!   signed with, so a leaked invitation says nothing about the peer secret.
//! - An [`InviteToken`] is [`InviteFields`] (cluster, role, expiry, nonce, uses) plus
//!   `mac = HMAC(invite_key, postcard(fields))`, written as postcard then base64url without
//!   padding: the `#join=` part of the link that `raft-node admin invite` prints.
//! - The tab answers the acceptor's `Challenge` with [`Join`] `{ token, nonce }`. A follower
//!   answers a valid token with [`Redirect`] to the leader; the leader admits the tab (a fresh
//!   node id, an AddLearner membership change and a replicated admission record) and answers
//!   [`Admitted`] `{ node_id, mac, members }` (`members`: the native members to dial at once,
//!   with their own proof, see [`super::member_hints`]), or refuses with `Reject { reason }`
//!   where the reason is one of [`JoinRefusal`]'s words.
//! - Once admitted with id `N`, the tab's own credential is
//!   `tab_key = HMAC(token mac, "flotilla tab v1" ‖ cluster ‖ N ‖ join nonce)` ([`tab_key`]):
//!   the tab computes it from the token it holds, every native node recomputes it from the peer
//!   secret and the admission record. It is used exactly like the peer secret in the ordinary
//!   handshake and session ([`super::Transcript`]). No key is ever sent.
//!
//! Every `‖` is a length-prefixed part, as in the transcript's proofs, so no two different
//! inputs hash alike.

use super::{keyed, split_header, FrameError, FrameKind, Reject};
use crate::NodeId;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use core::fmt;
use hmac::Mac;
use serde::{Deserialize, Serialize};

/// Longest token text accepted (before any decoding): a token holds a cluster id, a few
/// numbers, a nonce and a 32-byte mac, about 100 characters for a short cluster id.
pub const TOKEN_CHARS_MAX: usize = 512;

/// The role an invitation grants. Only learners today: a tab never changes the quorum, so
/// admitting one is always reversible (thesis §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteRole {
    /// A non-voting member that receives the log and snapshots.
    Learner,
}

/// What an invitation says, signed by [`InviteToken::sign`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteFields {
    /// The cluster the invitation is for.
    pub cluster_id: String,
    /// The role it grants.
    pub role: InviteRole,
    /// Wall-clock time (ms since the Unix epoch) from which it is refused as `expired`.
    pub expires_unix_ms: u64,
    /// Random bytes naming this invitation (its uses are counted under this nonce).
    pub nonce: [u8; 16],
    /// How many tabs it may admit.
    pub max_uses: u32,
}

/// A signed invitation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteToken {
    /// What it grants.
    pub fields: InviteFields,
    /// `HMAC(invite_key, postcard(fields))`.
    pub mac: [u8; 32],
}

/// Why a join was refused: the words of the `Reject` frame's reason, which the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JoinRefusal {
    /// The invitation's expiry has passed.
    Expired,
    /// The token does not decode or its mac is wrong.
    Forged,
    /// The invitation has admitted as many tabs as it may.
    UsedUp,
    /// The invitation is for another cluster.
    WrongCluster,
    /// The cluster already has as many browser peers as it accepts.
    BrowserPeersMax,
    /// The node asked is not the leader and knows of no leader to redirect to.
    NotLeader,
}

impl JoinRefusal {
    /// Every refusal, for metrics.
    pub const ALL: [JoinRefusal; 6] = [
        JoinRefusal::Expired,
        JoinRefusal::Forged,
        JoinRefusal::UsedUp,
        JoinRefusal::WrongCluster,
        JoinRefusal::BrowserPeersMax,
        JoinRefusal::NotLeader,
    ];

    /// The reason's word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinRefusal::Expired => "expired",
            JoinRefusal::Forged => "forged",
            JoinRefusal::UsedUp => "used_up",
            JoinRefusal::WrongCluster => "wrong_cluster",
            JoinRefusal::BrowserPeersMax => "browser_peers_max",
            JoinRefusal::NotLeader => "not_leader",
        }
    }

    /// The refusal a reason word names, if any.
    pub fn from_reason(reason: &str) -> Option<JoinRefusal> {
        JoinRefusal::ALL.into_iter().find(|refusal| refusal.as_str() == reason)
    }

    /// The `Reject` frame carrying this refusal.
    pub fn reject(self) -> Reject {
        Reject { reason: self.as_str().to_string() }
    }
}

impl fmt::Display for JoinRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for JoinRefusal {}

/// The key invitations are signed with, derived from the peer secret.
pub fn invite_key(peer_secret: &[u8]) -> [u8; 32] {
    keyed(peer_secret, &[b"flotilla invite v1"]).finalize().into_bytes().into()
}

fn fields_mac(invite_key: &[u8], fields: &InviteFields) -> super::HmacSha256 {
    // postcard cannot fail on these plain fields.
    let encoded = postcard::to_allocvec(fields).unwrap_or_default();
    keyed(invite_key, &[b"flotilla invite fields v1", &encoded])
}

impl InviteToken {
    /// Signs `fields` with `invite_key` (see [`invite_key`]).
    pub fn sign(invite_key: &[u8], fields: InviteFields) -> InviteToken {
        let mac = fields_mac(invite_key, &fields).finalize().into_bytes().into();
        InviteToken { fields, mac }
    }

    /// The token as link text: postcard, then base64url without padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(postcard::to_allocvec(self).unwrap_or_default())
    }

    /// Reads link text written by [`InviteToken::encode`]. This does not check the mac: call
    /// [`InviteToken::verify`].
    ///
    /// # Errors
    /// [`JoinRefusal::Forged`] if the text is too long or is not a token.
    pub fn decode(text: &str) -> Result<InviteToken, JoinRefusal> {
        if text.len() > TOKEN_CHARS_MAX {
            return Err(JoinRefusal::Forged);
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| JoinRefusal::Forged)?;
        match postcard::take_from_bytes::<InviteToken>(&bytes) {
            Ok((token, [])) => Ok(token),
            _ => Err(JoinRefusal::Forged),
        }
    }

    /// Checks, in this order, the mac (constant time; nothing in a token is believed before
    /// it), the cluster, the expiry against `now_unix_ms`, and the role. Use counting is the
    /// leader's, from replicated state.
    ///
    /// # Errors
    /// [`JoinRefusal::Forged`], [`JoinRefusal::WrongCluster`] or [`JoinRefusal::Expired`].
    pub fn verify(&self, invite_key: &[u8], cluster_id: &str, now_unix_ms: u64) -> Result<(), JoinRefusal> {
        if fields_mac(invite_key, &self.fields).verify_slice(&self.mac).is_err() {
            return Err(JoinRefusal::Forged);
        }
        if self.fields.cluster_id != cluster_id {
            return Err(JoinRefusal::WrongCluster);
        }
        if now_unix_ms >= self.fields.expires_unix_ms {
            return Err(JoinRefusal::Expired);
        }
        match self.fields.role {
            InviteRole::Learner => {}
        }
        if self.fields.max_uses == 0 {
            return Err(JoinRefusal::UsedUp);
        }
        Ok(())
    }

    /// The mac that a native node recomputes for stored `fields` (an admission record keeps the
    /// fields, never the mac), to derive the tab's key with [`tab_key`].
    pub fn mac_of(invite_key: &[u8], fields: &InviteFields) -> [u8; 32] {
        fields_mac(invite_key, fields).finalize().into_bytes().into()
    }
}

/// The credential of the tab admitted as `node_id` by a join with `join_nonce` under the
/// invitation whose mac is `token_mac`. Both the tab and every native node compute it; it is
/// never sent. It takes the peer secret's place in [`super::Transcript`]'s proofs and session.
pub fn tab_key(token_mac: &[u8], cluster_id: &str, node_id: NodeId, join_nonce: &[u8; 16]) -> [u8; 32] {
    keyed(token_mac, &[b"flotilla tab v1", cluster_id.as_bytes(), &node_id.0.to_le_bytes(), join_nonce])
        .finalize()
        .into_bytes()
        .into()
}

/// Tab → acceptor, instead of `Hello`: the invitation's text and the tab's fresh nonce (which
/// also serves as the dialler nonce of the connection's transcript).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The token as in the link ([`InviteToken::encode`]).
    pub token: String,
    /// Fresh random bytes of this join; part of the tab's key.
    pub nonce: [u8; 16],
}

/// Follower → tab: the token is good but joins go through the leader; dial it there. The
/// follower closes the connection after this frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The leader this follower knows of.
    pub leader_id: NodeId,
    /// The leader's peer address as recorded in the cluster (`host:port`).
    pub address: String,
}

/// Leader → tab: admitted as `node_id`, committed in the cluster's log.
///
/// Read it with [`decode_join_answer`], which also reads the two-field form of nodes built
/// before `members` (as `members: None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    /// The tab's node id (≥ [`super::records::BROWSER_NODE_ID_MIN`]), never reused.
    pub node_id: NodeId,
    /// `transcript.welcome_mac(tab_key)` with the transcript's dialler id `node_id`: proof that
    /// the leader holds the secret.
    pub mac: Vec<u8>,
    /// The native members to dial before the tab has applied any address record, with their
    /// own proof ([`super::member_hints`]); `None` from a node built before them.
    pub members: Option<super::member_hints::MemberHints>,
}

impl Admitted {
    /// Reads an `Admitted` body: the two fields every version sends, then the optional
    /// member hints (absent from older nodes; an older tab ignores them).
    fn decode_body(body: &[u8]) -> Result<Admitted, FrameError> {
        let body_error = |e: postcard::Error| FrameError::Body(e.to_string());
        let ((node_id, mac), rest): ((NodeId, Vec<u8>), &[u8]) =
            postcard::take_from_bytes(body).map_err(body_error)?;
        let members = if rest.is_empty() { None } else { postcard::from_bytes(rest).map_err(body_error)? };
        Ok(Admitted { node_id, mac, members })
    }
}

/// What an acceptor answered to a [`Join`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinAnswer {
    /// Admitted.
    Admitted(Admitted),
    /// Ask the leader.
    Redirect(Redirect),
    /// Refused; `Err` holds a reason that is not one of [`JoinRefusal`]'s words (an old node).
    Refused(Result<JoinRefusal, String>),
}

/// Decodes the acceptor's answer to a [`Join`] (an untagged frame).
///
/// # Errors
/// [`FrameError`] if the frame is none of `Admitted`, `Redirect` or `Reject`, or is malformed.
pub fn decode_join_answer(frame: &[u8]) -> Result<JoinAnswer, FrameError> {
    if frame.len() > super::HANDSHAKE_FRAME_BYTES_MAX {
        return Err(FrameError::Body(alloc::format!(
            "a handshake frame of {} bytes (at most {})",
            frame.len(),
            super::HANDSHAKE_FRAME_BYTES_MAX
        )));
    }
    let (kind, body) = split_header(frame)?;
    let body_error = |e: postcard::Error| FrameError::Body(e.to_string());
    match kind {
        FrameKind::Admitted => Ok(JoinAnswer::Admitted(Admitted::decode_body(body)?)),
        FrameKind::Redirect => Ok(JoinAnswer::Redirect(postcard::from_bytes(body).map_err(body_error)?)),
        FrameKind::Reject => {
            let reject: Reject = postcard::from_bytes(body).map_err(body_error)?;
            Ok(JoinAnswer::Refused(JoinRefusal::from_reason(&reject.reason).ok_or(reject.reason)))
        }
        other => Err(FrameError::UnexpectedKind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_frame, Side, Transcript};

    fn fields() -> InviteFields {
        InviteFields {
            cluster_id: "flotilla".into(),
            role: InviteRole::Learner,
            expires_unix_ms: 1_000_000,
            nonce: [3; 16],
            max_uses: 2,
        }
    }

    #[test]
    fn a_signed_token_round_trips_through_link_text_and_verifies() {
        let key = invite_key(b"peer secret");
        let token = InviteToken::sign(&key, fields());
        let text = token.encode();
        assert!(text.len() < 200, "{}", text.len());
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{text}");
        let decoded = InviteToken::decode(&text).unwrap();
        assert_eq!(decoded, token);
        assert_eq!(decoded.verify(&key, "flotilla", 999_999), Ok(()));
        assert_eq!(InviteToken::mac_of(&key, &decoded.fields), token.mac);
    }

    #[test]
    fn forged_expired_wrong_cluster_and_tampered_tokens_are_refused_with_their_reason() {
        let key = invite_key(b"peer secret");
        let token = InviteToken::sign(&key, fields());
        // Signed with another secret: forged.
        let other = InviteToken::sign(&invite_key(b"guess"), fields());
        assert_eq!(other.verify(&key, "flotilla", 0), Err(JoinRefusal::Forged));
        // The invite key is not the peer secret: a token signed with the raw secret is forged.
        let raw = InviteToken::sign(b"peer secret", fields());
        assert_eq!(raw.verify(&key, "flotilla", 0), Err(JoinRefusal::Forged));
        // Tampered fields: more uses, a later expiry, another nonce, another cluster.
        for tampered in [
            InviteFields { max_uses: 1000, ..fields() },
            InviteFields { expires_unix_ms: u64::MAX, ..fields() },
            InviteFields { nonce: [4; 16], ..fields() },
            InviteFields { cluster_id: "other".into(), ..fields() },
        ] {
            let forged = InviteToken { fields: tampered.clone(), mac: token.mac };
            assert_eq!(forged.verify(&key, "flotilla", 0), Err(JoinRefusal::Forged), "{tampered:?}");
        }
        // A flipped bit of the mac.
        let mut flipped = token.clone();
        flipped.mac[0] ^= 1;
        assert_eq!(flipped.verify(&key, "flotilla", 0), Err(JoinRefusal::Forged));
        // Genuine, but for another cluster that shares the secret.
        let elsewhere = InviteToken::sign(&key, InviteFields { cluster_id: "other".into(), ..fields() });
        assert_eq!(elsewhere.verify(&key, "flotilla", 0), Err(JoinRefusal::WrongCluster));
        // Expired at its expiry, not before.
        assert_eq!(token.verify(&key, "flotilla", 999_999), Ok(()));
        assert_eq!(token.verify(&key, "flotilla", 1_000_000), Err(JoinRefusal::Expired));
        // No uses at all.
        let none = InviteToken::sign(&key, InviteFields { max_uses: 0, ..fields() });
        assert_eq!(none.verify(&key, "flotilla", 0), Err(JoinRefusal::UsedUp));
    }

    #[test]
    fn undecodable_text_is_forged_and_never_panics() {
        let key = invite_key(b"s");
        let mut text = InviteToken::sign(&key, fields()).encode();
        for garbage in ["", "!!!", "AAAA", "a", &"A".repeat(TOKEN_CHARS_MAX + 1), &alloc::format!("{text}AA")]
        {
            assert_eq!(InviteToken::decode(garbage), Err(JoinRefusal::Forged), "{garbage}");
        }
        // A changed character decodes to other fields or does not decode; never verifies.
        let last = text.pop().unwrap();
        text.push(if last == 'A' { 'B' } else { 'A' });
        assert!(InviteToken::decode(&text).and_then(|t| t.verify(&key, "flotilla", 0)).is_err());
    }

    #[test]
    fn a_tab_key_binds_the_token_the_cluster_the_node_id_and_the_join_nonce() {
        let mac = [1; 32];
        let key = tab_key(&mac, "c", NodeId(1 << 32), &[5; 16]);
        assert_eq!(key, tab_key(&mac, "c", NodeId(1 << 32), &[5; 16]));
        for other in [
            tab_key(&[2; 32], "c", NodeId(1 << 32), &[5; 16]),
            tab_key(&mac, "d", NodeId(1 << 32), &[5; 16]),
            tab_key(&mac, "c", NodeId((1 << 32) + 1), &[5; 16]),
            tab_key(&mac, "c", NodeId(1 << 32), &[6; 16]),
        ] {
            assert_ne!(key, other);
        }
        // The leader's Admitted proof is a welcome proof under the tab key: the tab checks it,
        // and a proof under another tab's key fails.
        let transcript = Transcript {
            acceptor_nonce: [7; 16],
            dialler_nonce: [5; 16],
            cluster_id: "c".into(),
            acceptor: NodeId(1),
            dialler: NodeId(1 << 32),
        };
        let admitted =
            Admitted { node_id: NodeId(1 << 32), mac: transcript.welcome_mac(&key), members: None };
        assert!(transcript.verify_welcome(&key, &admitted.mac));
        assert!(!transcript.verify_welcome(&tab_key(&mac, "c", NodeId(1 << 32), &[6; 16]), &admitted.mac));
        let (mut tab, _) = transcript.session(&key, Side::Dialler).split();
        let (_, mut node) = transcript.session(&key, Side::Acceptor).split();
        let frame = tab.seal(FrameKind::Raft, &7u64);
        assert_eq!(node.open::<u64>(&frame, FrameKind::Raft), Ok(7));
    }

    #[test]
    fn join_answers_decode_by_kind() {
        let admitted = Admitted { node_id: NodeId(1 << 32), mac: alloc::vec![1, 2], members: None };
        let frame = encode_frame(FrameKind::Admitted, &admitted);
        assert_eq!(decode_join_answer(&frame), Ok(JoinAnswer::Admitted(admitted.clone())));
        // A node built before the member hints sent the two fields alone: read as no hints.
        let legacy = encode_frame(FrameKind::Admitted, &(admitted.node_id, admitted.mac.clone()));
        assert_eq!(legacy.len() + 1, frame.len());
        assert_eq!(decode_join_answer(&legacy), Ok(JoinAnswer::Admitted(admitted.clone())));
        // A tab built before them reads the two fields it knows and ignores the hints.
        let member = crate::wire::MemberAddress { node_id: NodeId(2), address: "127.0.0.1:7002".into() };
        let hints = crate::wire::MemberHints { members: alloc::vec![member], mac: alloc::vec![3; 32] };
        let with_hints = Admitted { members: Some(hints), ..admitted.clone() };
        let frame = encode_frame(FrameKind::Admitted, &with_hints);
        assert_eq!(decode_join_answer(&frame), Ok(JoinAnswer::Admitted(with_hints)));
        let (_, old_body) = frame.split_at(2);
        assert_eq!(postcard::from_bytes::<(NodeId, Vec<u8>)>(old_body), Ok((admitted.node_id, admitted.mac)));
        // Garbage after the two fields is an error, not silently no hints.
        let mut trailing = legacy.clone();
        trailing.push(7);
        assert!(decode_join_answer(&trailing).is_err());
        let oversized = [&legacy[..], &[0u8; crate::wire::HANDSHAKE_FRAME_BYTES_MAX][..]].concat();
        assert!(decode_join_answer(&oversized).is_err());
        let redirect = Redirect { leader_id: NodeId(2), address: "127.0.0.1:7002".into() };
        let frame = encode_frame(FrameKind::Redirect, &redirect);
        assert_eq!(decode_join_answer(&frame), Ok(JoinAnswer::Redirect(redirect)));
        for refusal in JoinRefusal::ALL {
            let frame = encode_frame(FrameKind::Reject, &refusal.reject());
            assert_eq!(decode_join_answer(&frame), Ok(JoinAnswer::Refused(Ok(refusal))));
            assert_eq!(JoinRefusal::from_reason(&refusal.to_string()), Some(refusal));
        }
        let frame = encode_frame(FrameKind::Reject, &Reject { reason: "busy".into() });
        assert_eq!(decode_join_answer(&frame), Ok(JoinAnswer::Refused(Err("busy".into()))));
        let join = Join { token: "abc".into(), nonce: [9; 16] };
        let frame = encode_frame(FrameKind::Join, &join);
        assert_eq!(decode_join_answer(&frame), Err(FrameError::UnexpectedKind(FrameKind::Join)));
        assert_eq!(crate::wire::decode_frame::<Join>(&frame, FrameKind::Join), Ok(join));
        let v = crate::wire::PROTOCOL_VERSION;
        for garbage in [&[][..], &[v], &[v, 7], &[v, 6, 200], &[v, 99]] {
            assert!(decode_join_answer(garbage).is_err());
        }
    }
}
