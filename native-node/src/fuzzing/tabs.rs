//! The browser-peer half of the `peer_frame` harness: a tab's `Join` (or, once admitted, its
//! `Hello` under its tab key) as a native node reads it, the node's `Admitted` (with the member
//! addresses it names, believed only with their proof) / `Redirect` / `Reject` as the tab reads it, and the sealed frames that follow: a tab's `Raft` and
//! `TabStatus` frames read by the node's own reader ([`VoterTabs::open`], as
//! `Transport::deliver` reads a tab), the node's `Raft` frames read as the tab's link reads them
//! (see [`raft_core::wire::invite`] and [`raft_core::wire::tab`]). The frames' oracles are
//! `frames`'.

use super::frames::{self, Connection, Opened};
use super::{deliver_frames, CLUSTER_ID, SECRET};
use crate::browser_voters::{BrowserVoterConfig, VoterMetrics, VoterTabs};
use crate::peer_auth::invite::{
    decode_join_answer, invite_key, tab_key, Admitted, InviteFields, InviteRole, InviteToken, Join,
    JoinAnswer,
};
use crate::peer_auth::member_hints::{MemberAddress, MemberHints, MEMBER_HINTS_MAX};
use crate::peer_auth::records::{is_browser_node_id, BROWSER_NODE_ID_MIN};
use crate::peer_auth::{
    decode_frame, encode_frame, BoundIncarnations, Challenge, FrameKind, Hello, Session, Side, Transcript,
};
use raft_core::NodeId;

/// The harness's clock: invitations are checked against this time.
pub const NOW_UNIX_MS: u64 = 1_800_000_000_000;
/// The id the node gives the tab it admits.
pub const TAB_ID: NodeId = NodeId(BROWSER_NODE_ID_MIN);
/// The nonce of the honest tab's join.
pub const JOIN_NONCE: [u8; 16] = *b"tab-join-nonce!!";
/// The acceptor's nonce (as in the node's handshake).
const ACCEPTOR_NONCE: [u8; 16] = super::CHALLENGE_NONCE;

/// The invitation the honest tab joins with (signed with the invite key of [`SECRET`]).
pub fn honest_invitation() -> InviteToken {
    let fields = InviteFields {
        cluster_id: CLUSTER_ID.into(),
        role: InviteRole::Learner,
        expires_unix_ms: NOW_UNIX_MS + 3_600_000,
        nonce: *b"invitation-nonce",
        max_uses: 1,
    };
    InviteToken::sign(&invite_key(SECRET), fields)
}

/// The admitted tab's key (it joined with [`JOIN_NONCE`] under [`honest_invitation`]).
pub fn honest_tab_key() -> [u8; 32] {
    tab_key(&honest_invitation().mac, CLUSTER_ID, TAB_ID, &JOIN_NONCE)
}

/// The transcript of a tab's connection to node 1 (a join's, or an admitted tab's hello with
/// the same nonce).
pub fn tab_transcript(dialler_nonce: [u8; 16]) -> Transcript {
    Transcript {
        acceptor_nonce: ACCEPTOR_NONCE,
        dialler_nonce,
        cluster_id: CLUSTER_ID.into(),
        acceptor: NodeId(1),
        dialler: TAB_ID,
    }
}

/// The session of the honest tab's join, seen from `side` (for the corpus).
pub fn honest_tab_session(side: Side) -> Session {
    tab_transcript(JOIN_NONCE).session(&honest_tab_key(), side)
}

/// The honest tab's `Join` frame.
pub fn honest_join_frame() -> Vec<u8> {
    encode_frame(FrameKind::Join, &Join { token: honest_invitation().encode(), nonce: JOIN_NONCE })
}

/// The admitted tab's `Hello` frame on a later connection (same nonce: the harness's acceptor
/// nonce is fixed too).
pub fn honest_tab_hello_frame() -> Vec<u8> {
    let hello = Hello {
        cluster_id: CLUSTER_ID.into(),
        node_id: TAB_ID,
        address: None,
        nonce: JOIN_NONCE,
        mac: tab_transcript(JOIN_NONCE).hello_mac(&honest_tab_key()),
    };
    encode_frame(FrameKind::Hello, &hello)
}

/// The native members node 1 names in its `Admitted` (nodes 1 to 3).
fn member_addresses() -> Vec<MemberAddress> {
    (1..=3).map(|id| MemberAddress { node_id: NodeId(id), address: format!("127.0.0.1:700{id}") }).collect()
}

/// Node 1's `Admitted` answer to the honest join, naming the members.
pub fn honest_admitted_frame() -> Vec<u8> {
    let (transcript, key) = (tab_transcript(JOIN_NONCE), honest_tab_key());
    let members = Some(MemberHints::sign(&transcript, &key, member_addresses()));
    encode_frame(
        FrameKind::Admitted,
        &Admitted { node_id: TAB_ID, mac: transcript.welcome_mac(&key), members },
    )
}

/// The same answer in the two-field form of nodes built before member hints.
pub fn honest_admitted_frame_without_members() -> Vec<u8> {
    let mac = tab_transcript(JOIN_NONCE).welcome_mac(&honest_tab_key());
    encode_frame(FrameKind::Admitted, &(TAB_ID, mac))
}

/// Node 1 reading a tab: `Join` (as `BrowserPeers::join` on the leader) or an admitted tab's
/// `Hello` (as `Transport::accept_handshake` with `BrowserPeers::hello_key`), then sealed
/// frames. Oracles: a token is believed only with the mac only the invite key makes; a hello
/// only with the admitted tab's key; our `Admitted` reads back as sent; the frames' (see
/// `frames`: only the tab's own seals open, and only its own messages are delivered).
pub(super) fn tab_acceptor<'a>(mut parts: impl Iterator<Item = &'a [u8]>) {
    let Some(first) = parts.next() else { return };
    let key = invite_key(SECRET);
    let (tab_key, transcript) = if first.get(1) == Some(&(FrameKind::Join as u8)) {
        let Ok(join) = decode_frame::<Join>(first, FrameKind::Join) else { return };
        let Ok(token) = InviteToken::decode(&join.token) else { return };
        if token.verify(&key, CLUSTER_ID, NOW_UNIX_MS).is_err() {
            return;
        }
        assert_eq!(token.mac, InviteToken::mac_of(&key, &token.fields), "a token believed without its mac");
        assert_eq!(token.fields.cluster_id, CLUSTER_ID, "a token of another cluster believed");
        assert!(token.fields.expires_unix_ms > NOW_UNIX_MS, "an expired token believed");
        // Admitted as the next browser id; the tab's key binds the token, the id and its nonce.
        let tab_key = tab_key(&token.mac, CLUSTER_ID, TAB_ID, &join.nonce);
        let transcript = tab_transcript(join.nonce);
        let members = Some(MemberHints::sign(&transcript, &tab_key, member_addresses()));
        let admitted = Admitted { node_id: TAB_ID, mac: transcript.welcome_mac(&tab_key), members };
        let frame = encode_frame(FrameKind::Admitted, &admitted);
        match decode_join_answer(&frame) {
            Ok(JoinAnswer::Admitted(read)) => assert_eq!(read, admitted, "our Admitted reads back otherwise"),
            other => panic!("our Admitted reads back as {other:?}"),
        }
        (tab_key, transcript)
    } else {
        let Ok(hello) = decode_frame::<Hello>(first, FrameKind::Hello) else { return };
        if hello.cluster_id != CLUSTER_ID || !is_browser_node_id(hello.node_id) {
            return;
        }
        // Only TAB_ID is admitted here (as `hello_key` finds no record for any other).
        if hello.node_id != TAB_ID {
            return;
        }
        let tab_key = honest_tab_key();
        let transcript = tab_transcript(hello.nonce);
        // As the transport checks every Hello (a tab's address, bound or not, is ignored).
        if transcript.check_hello(&tab_key, &hello, BoundIncarnations::NONE).is_none() {
            return;
        }
        assert_eq!(hello.mac, transcript.hello_mac(&tab_key), "a tab's hello believed without its key");
        (tab_key, transcript)
    };
    let mut opener = transcript.session(&tab_key, Side::Acceptor).opener;
    let tabs = VoterTabs::new(BrowserVoterConfig::default());
    let metrics = VoterMetrics::default();
    let open = |frame: &[u8]| match tabs.open(TAB_ID, frame, &mut opener, &metrics) {
        Ok(Some(message)) => Some(Opened::Raft(message)),
        // Recorded by the reader: what it recorded is what the oracle checks.
        Ok(None) => Some(Opened::Status(tabs.status_of(TAB_ID).expect("a status read is recorded"))),
        Err(_) => None,
    };
    let messages = Connection::new(&transcript, &tab_key, Side::Acceptor).read(open, parts);
    deliver_frames(NodeId(1), messages);
}

/// A tab reading node 1: its `Challenge`, then the answer to its join (`Admitted`,
/// `Redirect` or `Reject`, as `decode_join_answer` in the wasm link), then sealed frames.
/// Oracle: an `Admitted` is believed only with the proof of the tab key for the id it names.
pub(super) fn tab_dialler<'a>(mut parts: impl Iterator<Item = &'a [u8]>) {
    let Some(frame) = parts.next() else { return };
    let Ok(challenge) = decode_frame::<Challenge>(frame, FrameKind::Challenge) else { return };
    if challenge.cluster_id != CLUSTER_ID {
        return;
    }
    let Some(frame) = parts.next() else { return };
    let admitted = match decode_join_answer(frame) {
        Ok(JoinAnswer::Admitted(admitted)) => admitted,
        Ok(JoinAnswer::Redirect(redirect)) => {
            // The tab dials the address next; it must at least be text it can dial.
            let _ = redirect.address.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
            return;
        }
        Ok(JoinAnswer::Refused(_)) | Err(_) => return,
    };
    if !is_browser_node_id(admitted.node_id) {
        return;
    }
    let token = honest_invitation();
    let tab_key = tab_key(&token.mac, CLUSTER_ID, admitted.node_id, &JOIN_NONCE);
    let transcript = Transcript {
        acceptor_nonce: challenge.nonce,
        dialler_nonce: JOIN_NONCE,
        cluster_id: CLUSTER_ID.into(),
        acceptor: challenge.node_id,
        dialler: admitted.node_id,
    };
    if !transcript.verify_welcome(&tab_key, &admitted.mac) {
        return;
    }
    assert_eq!(
        admitted.mac,
        transcript.welcome_mac(&tab_key),
        "an Admitted believed without the tab key's proof"
    );
    // Its member addresses are believed only with their own proof, and only as many as the
    // tab takes, native, dialable and not the tab itself.
    if let Some(hints) = &admitted.members {
        if let Ok(members) = hints.verified(&transcript, &tab_key) {
            assert_eq!(
                hints.mac,
                MemberHints::proof_of(&transcript, &tab_key, &hints.members),
                "member addresses believed without the tab key's proof"
            );
            assert!(members.len() <= MEMBER_HINTS_MAX, "{} members taken", members.len());
            for member in &members {
                assert!(
                    !is_browser_node_id(member.node_id) && member.node_id != admitted.node_id,
                    "{member:?}"
                );
                assert!(crate::peer_auth::member_hints::is_dialable_address(&member.address), "{member:?}");
            }
        }
    }
    // The tab's link reads only Raft frames (`flotilla_wasm::live::link`, which this harness
    // does not drive: its reader is the same `Opener::open`, its address check its own).
    let mut opener = transcript.session(&tab_key, Side::Dialler).opener;
    let connection = Connection::new(&transcript, &tab_key, Side::Dialler);
    let me = connection.me;
    let messages = connection.read(frames::open_raft(&mut opener), parts);
    deliver_frames(me, messages);
}
