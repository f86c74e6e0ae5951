//! The native members an admitting leader names in its [`super::Admitted`] answer, so that a
//! tab that has applied nothing yet can still dial them (issue #13).
//!
//! A tab learns where the native members are from the replicated address records in its own
//! applied state. A tab catching up through a long log applies them late (the address records of
//! a bootstrapped cluster are written at the first join, so they sit after everything before it):
//! until then the only node it knows is the one that admitted it, and if that node dies the tab
//! cannot dial anyone, and a native node cannot dial a tab. So the leader names, in `Admitted`,
//! the native members of its configuration and their peer addresses, and the tab dials them at
//! once. These are hints: once the tab has applied a configuration, it dials only its members,
//! and the address records it applied win for every member they name.
//!
//! **Authenticated.** `Admitted` is an untagged handshake frame: its `mac` is the welcome proof
//! under the tab key, which binds the connection's transcript (both nonces, cluster, both ids)
//! but not the frame's other bytes. So the hints carry their own proof,
//! `HMAC(tab_key, "flotilla admitted members v1" ‖ transcript ‖ postcard(members))`, which only
//! the tab and a node holding the peer secret can compute and which is bound to this connection:
//! a relay can neither add, alter nor replay hints. (Like everything keyed by the tab key, this
//! holds against a relay that never saw the invitation's token: a tab reached over plain `ws://`
//! sends its token in clear in its `Join`, so use TLS where the path is not trusted.)
//!
//! **Bounded.** At most [`MEMBER_HINTS_MAX`] members, each address at most
//! [`MEMBER_ADDRESS_BYTES_MAX`] bytes of `host:port`, so the whole `Admitted` frame fits
//! [`super::HANDSHAKE_FRAME_BYTES_MAX`]. The leader leaves out what does not fit; the tab takes
//! only the first [`MEMBER_HINTS_MAX`] and ignores any it could not dial (a browser id, its own,
//! or an address that is not a plain `host:port`).
//!
//! **Compatible.** The hints travel after `Admitted`'s two fields, as a postcard `Option`: a tab
//! built before them ignores trailing bytes (postcard's `from_bytes` reads what it needs), and
//! [`super::decode_join_answer`] reads an `Admitted` without them, from a node built before
//! them, as `members: None`. Nothing that was read before reads differently, so the protocol
//! version is unchanged (the wire module's rule: bump it only when a frame would be misread).

use super::records::is_browser_node_id;
use super::Transcript;
use crate::NodeId;
use alloc::string::String;
use alloc::vec::Vec;
use hmac::Mac;
use serde::{Deserialize, Serialize};

/// Members an `Admitted` names at most (a cluster's native voters and learners; more are left
/// out by the leader and ignored by the tab).
pub const MEMBER_HINTS_MAX: usize = 16;

/// Longest member address named (`host:port`); longer ones are left out and ignored.
pub const MEMBER_ADDRESS_BYTES_MAX: usize = 200;

/// One native member and where it accepts peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    /// The member's id.
    pub node_id: NodeId,
    /// Its peer address, `host:port`.
    pub address: String,
}

/// The members an admitting leader names, with their proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberHints {
    /// Native members of the leader's configuration (itself included) and their addresses.
    pub members: Vec<MemberAddress>,
    /// `HMAC(tab_key, "flotilla admitted members v1" ‖ transcript ‖ postcard(members))`.
    pub mac: Vec<u8>,
}

/// Whether `address` is something a tab may dial as `ws(s)://<address>/raft`: at most
/// [`MEMBER_ADDRESS_BYTES_MAX`] bytes, printable ASCII with no character that would change the
/// URL's host or path (`/ \ @ ? #`, whitespace), and ending in `:<port>`.
pub fn is_dialable_address(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else { return false };
    address.len() <= MEMBER_ADDRESS_BYTES_MAX
        && !host.is_empty()
        && port.parse::<u16>().is_ok_and(|port| port != 0)
        && address.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'\\' | b'@' | b'?' | b'#'))
}

fn members_mac(transcript: &Transcript, tab_key: &[u8], members: &[MemberAddress]) -> super::HmacSha256 {
    // postcard cannot fail on ids and strings.
    let encoded = postcard::to_allocvec(members).unwrap_or_default();
    let mut mac = transcript.mac(tab_key, b"flotilla admitted members v1", super::BoundIncarnations::NONE);
    mac.update(&(encoded.len() as u32).to_le_bytes());
    mac.update(&encoded);
    mac
}

impl MemberHints {
    /// The leader's hints for the tab of `transcript` (whose dialler is the tab's new id):
    /// the first [`MEMBER_HINTS_MAX`] of `members` that are native and dialable, proved under
    /// `tab_key`.
    pub fn sign(
        transcript: &Transcript,
        tab_key: &[u8],
        members: impl IntoIterator<Item = MemberAddress>,
    ) -> MemberHints {
        let members: Vec<MemberAddress> = members
            .into_iter()
            .filter(|member| !is_browser_node_id(member.node_id) && is_dialable_address(&member.address))
            .take(MEMBER_HINTS_MAX)
            .collect();
        let mac = MemberHints::proof_of(transcript, tab_key, &members);
        MemberHints { members, mac }
    }

    /// The proof of exactly `members` on the connection of `transcript` under `tab_key`.
    pub fn proof_of(transcript: &Transcript, tab_key: &[u8], members: &[MemberAddress]) -> Vec<u8> {
        members_mac(transcript, tab_key, members).finalize().into_bytes().to_vec()
    }

    /// The members a tab may dial, after checking the proof (constant time) against the tab's
    /// own transcript and key: at most [`MEMBER_HINTS_MAX`], native, dialable, not the tab.
    ///
    /// # Errors
    /// When the proof does not verify (a relay altered or added them): the tab ignores them all.
    pub fn verified(
        &self,
        transcript: &Transcript,
        tab_key: &[u8],
    ) -> Result<Vec<MemberAddress>, &'static str> {
        if members_mac(transcript, tab_key, &self.members).verify_slice(&self.mac).is_err() {
            return Err("the admitting node's member addresses do not carry its proof");
        }
        Ok(self
            .members
            .iter()
            .take(MEMBER_HINTS_MAX)
            .filter(|member| {
                member.node_id != transcript.dialler
                    && !is_browser_node_id(member.node_id)
                    && is_dialable_address(&member.address)
            })
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::records::BROWSER_NODE_ID_MIN;
    use crate::wire::{
        decode_join_answer, encode_frame, Admitted, FrameKind, JoinAnswer, HANDSHAKE_FRAME_BYTES_MAX,
    };
    use alloc::format;
    use alloc::string::ToString;

    const TAB: NodeId = NodeId(BROWSER_NODE_ID_MIN + 5);

    fn transcript() -> Transcript {
        Transcript {
            acceptor_nonce: [7; 16],
            dialler_nonce: [5; 16],
            cluster_id: "c".into(),
            acceptor: NodeId(1),
            dialler: TAB,
        }
    }

    fn member(id: u64, address: &str) -> MemberAddress {
        MemberAddress { node_id: NodeId(id), address: address.to_string() }
    }

    #[test]
    fn hints_verify_only_under_the_tab_key_and_this_connection() {
        let key = [9u8; 32];
        let members = [member(1, "127.0.0.1:7001"), member(2, "127.0.0.1:7002"), member(3, "node-3:7003")];
        let hints = MemberHints::sign(&transcript(), &key, members.clone());
        assert_eq!(hints.verified(&transcript(), &key), Ok(members.to_vec()));
        // Another key, another connection (nonce) or another tab id: refused.
        assert!(hints.verified(&transcript(), &[8u8; 32]).is_err());
        assert!(hints.verified(&Transcript { acceptor_nonce: [6; 16], ..transcript() }, &key).is_err());
        assert!(hints.verified(&Transcript { dialler: NodeId(TAB.0 + 1), ..transcript() }, &key).is_err());
        // A relay that alters an address, adds a member or drops one: refused.
        let mut altered = hints.clone();
        altered.members[1].address = "evil.example:7002".into();
        assert!(altered.verified(&transcript(), &key).is_err());
        let mut added = hints.clone();
        added.members.push(member(4, "evil.example:1"));
        assert!(added.verified(&transcript(), &key).is_err());
        let mut dropped = hints.clone();
        dropped.members.pop();
        assert!(dropped.verified(&transcript(), &key).is_err());
    }

    #[test]
    fn hints_are_bounded_and_only_name_dialable_native_members() {
        let key = [9u8; 32];
        let long = format!("{}:7001", "h".repeat(MEMBER_ADDRESS_BYTES_MAX));
        let mut members = alloc::vec![
            member(TAB.0 + 1, "127.0.0.1:7009"), // a browser id
            member(7, "browser"),
            member(8, &long),
            member(9, "evil.example/x:80"),
            member(10, "a@b:80"),
            member(11, "host:0"),
            member(12, "host:99999"),
            member(13, ":80"),
            member(14, "sp ace:80"),
        ];
        members.extend((100..100 + 2 * MEMBER_HINTS_MAX as u64).map(|id| member(id, &format!("n{id}:7000"))));
        let hints = MemberHints::sign(&transcript(), &key, members);
        assert_eq!(hints.members.len(), MEMBER_HINTS_MAX);
        assert!(hints.members.iter().all(|m| m.node_id.0 >= 100), "{:?}", hints.members);
        // The tab, given more than it takes (signed by a leader that did not bound them, or its
        // own id), takes the first MEMBER_HINTS_MAX and ignores what it could not dial.
        let unbounded: Vec<MemberAddress> = [member(TAB.0, "127.0.0.1:1"), member(6, "x/y:1")]
            .into_iter()
            .chain((200..200 + 2 * MEMBER_HINTS_MAX as u64).map(|id| member(id, &format!("n{id}:7000"))))
            .collect();
        let mac = MemberHints::proof_of(&transcript(), &key, &unbounded);
        let taken = MemberHints { members: unbounded, mac }.verified(&transcript(), &key).unwrap();
        assert_eq!(taken.len(), MEMBER_HINTS_MAX - 2);
        assert!(taken.iter().all(|m| m.node_id.0 >= 200 && m.node_id.0 < 200 + MEMBER_HINTS_MAX as u64));
    }

    #[test]
    fn the_largest_admitted_frame_fits_the_handshake_budget() {
        let address = format!("{}:65535", "h".repeat(MEMBER_ADDRESS_BYTES_MAX - 6));
        assert!(is_dialable_address(&address));
        let members = (0..MEMBER_HINTS_MAX as u64).map(|i| member(u64::from(u32::MAX) - i, &address));
        let hints = MemberHints::sign(&transcript(), &[1; 32], members);
        assert_eq!(hints.members.len(), MEMBER_HINTS_MAX);
        let admitted = Admitted { node_id: NodeId(u64::MAX), mac: alloc::vec![0; 32], members: Some(hints) };
        let frame = encode_frame(FrameKind::Admitted, &admitted);
        assert!(frame.len() <= HANDSHAKE_FRAME_BYTES_MAX, "{} bytes", frame.len());
        assert_eq!(decode_join_answer(&frame), Ok(JoinAnswer::Admitted(admitted)));
    }
}
