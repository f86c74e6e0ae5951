//! The cluster's own records that a browser peer reads from its replicated key-value state:
//! where members can be dialled, and which members are admitted browser tabs. They live in the
//! reserved keyspace (`\0flotilla/…`) that no client operation may touch, and change only
//! through the log, so every replica, a tab included, sees the same records at the same index.

use super::invite::{InviteFields, TOKEN_CHARS_MAX};
use crate::NodeId;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Every internal record's key starts with this (defined with the store, which keeps these keys
/// through a streamed restore).
pub use crate::kv::RESERVED_KEY_PREFIX;

/// `ADDRESS_KEY_PREFIX ‖ decimal id` → the member's `host:port`, or [`BROWSER_ADDRESS`].
pub const ADDRESS_KEY_PREFIX: &[u8] = b"\x00flotilla/address/";

/// The address recorded for a browser peer: it cannot be dialled; it dials.
pub const BROWSER_ADDRESS: &str = "browser";

/// `BROWSER_KEY_PREFIX ‖ decimal id` → postcard([`BrowserAdmission`]).
pub const BROWSER_KEY_PREFIX: &[u8] = b"\x00flotilla/browser/";

/// Browser peers' node ids start here, far above any id an operator gives a native node, so
/// the two never collide; ids are taken from a replicated counter and never reused.
pub const BROWSER_NODE_ID_MIN: u64 = 1 << 32;

/// Whether `id` names a browser peer.
pub fn is_browser_node_id(id: NodeId) -> bool {
    id.0 >= BROWSER_NODE_ID_MIN
}

/// Why a tab is a member: the invitation it used (its fields, never its mac) and its join
/// nonce. With the peer secret, any native node recomputes the tab's key from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserAdmission {
    /// The invitation's signed fields.
    pub fields: InviteFields,
    /// The nonce of the tab's `Join`.
    pub join_nonce: [u8; 16],
    /// When the leader admitted it (ms since the Unix epoch; informative).
    pub admitted_unix_ms: u64,
}

impl BrowserAdmission {
    /// The record's value.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads a record's value; `None` if it is not one (or too large to be one).
    pub fn decode(value: &[u8]) -> Option<BrowserAdmission> {
        if value.len() > TOKEN_CHARS_MAX {
            return None;
        }
        postcard::from_bytes(value).ok()
    }
}

fn key(prefix: &[u8], id: NodeId) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(id.0.to_string().as_bytes());
    key
}

fn id_after(prefix: &[u8], key: &[u8]) -> Option<NodeId> {
    let digits = key.strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(digits).ok()?.parse().ok().map(NodeId)
}

/// The key of `id`'s address record.
pub fn address_key(id: NodeId) -> Vec<u8> {
    key(ADDRESS_KEY_PREFIX, id)
}

/// The key of browser peer `id`'s admission record.
pub fn browser_key(id: NodeId) -> Vec<u8> {
    key(BROWSER_KEY_PREFIX, id)
}

/// Reads an address record: the member and where to dial it ([`BROWSER_ADDRESS`] for a tab).
pub fn parse_address(key: &[u8], value: &[u8]) -> Option<(NodeId, String)> {
    let id = id_after(ADDRESS_KEY_PREFIX, key)?;
    Some((id, core::str::from_utf8(value).ok()?.to_string()))
}

/// Reads an admission record.
pub fn parse_browser(key: &[u8], value: &[u8]) -> Option<(NodeId, BrowserAdmission)> {
    let id = id_after(BROWSER_KEY_PREFIX, key)?;
    Some((id, BrowserAdmission::decode(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::invite::InviteRole;

    #[test]
    fn records_round_trip_and_foreign_keys_are_not_records() {
        let id = NodeId(BROWSER_NODE_ID_MIN + 7);
        assert!(is_browser_node_id(id));
        assert!(!is_browser_node_id(NodeId(3)));
        assert_eq!(
            parse_address(&address_key(NodeId(2)), b"127.0.0.1:7002"),
            Some((NodeId(2), "127.0.0.1:7002".into()))
        );
        let admission = BrowserAdmission {
            fields: InviteFields {
                cluster_id: "c".into(),
                role: InviteRole::Learner,
                expires_unix_ms: 5,
                nonce: [1; 16],
                max_uses: 1,
            },
            join_nonce: [2; 16],
            admitted_unix_ms: 4,
        };
        assert_eq!(parse_browser(&browser_key(id), &admission.encode()), Some((id, admission.clone())));
        assert_eq!(parse_browser(&address_key(id), &admission.encode()), None);
        assert_eq!(parse_browser(&browser_key(id), b"junk"), None);
        for key in
            [&b"\x00flotilla/address/"[..], b"\x00flotilla/address/x1", b"\x00flotilla/address/-1", b"user"]
        {
            assert_eq!(parse_address(key, b"a"), None);
        }
        assert!(address_key(id).starts_with(RESERVED_KEY_PREFIX));
        assert!(browser_key(id).starts_with(RESERVED_KEY_PREFIX));
    }
}
