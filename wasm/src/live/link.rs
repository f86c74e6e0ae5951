//! One WebSocket between the tab and a native member, as a state machine over bytes: the
//! Worker owns the socket and hands every binary frame here; this module answers with the
//! frames to send and what happened. The frames, the handshake proofs and the per-frame session
//! tags are `raft_core::wire`'s, the very code native-node runs: there is no second copy.
//!
//! Two ways through the handshake (LEARNER-PROTOCOL.md):
//! - **join** (not yet admitted): Challenge → `Join { token, nonce }` → `Admitted { node_id, mac,
//!   members }` (the leader proves it holds the secret with `welcome_mac(tab_key)`, and names the
//!   native members to dial with their own proof, `wire::member_hints`), `Redirect` to the
//!   leader, or `Reject { reason }`;
//! - **hello** (admitted as `N`): Challenge → `Hello` with `hello_mac(tab_key)` → `Welcome` or
//!   `Reject`.
//!
//! After either, both ends tag every frame with the session derived from `tab_key`, and the
//! only frames are `Raft` frames (and, from a node, `RaftShared` ones, which the tab asks for
//! with a feature byte after its `Join` or `Hello`: `wire::shared`). A peer's frame that fails to open, or a Raft message that is
//! not from this link's peer to this tab, ends the link: the Worker closes the socket.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use raft_core::wire::{
    self, records, Challenge, FrameKind, Hello, InviteToken, Join, JoinAnswer, MemberAddress, Opener, Sealer,
    Side, Transcript, Welcome,
};
use raft_core::{Message, NodeId};

/// What the tab knows to authenticate itself.
#[derive(Clone, Debug)]
pub struct Credential {
    /// The invite token, as decoded from the link.
    pub token: InviteToken,
    /// The token's text, sent in `Join`.
    pub token_text: String,
    /// Once admitted: the tab's id and key.
    pub admitted: Option<(NodeId, Vec<u8>)>,
}

/// Where a link is in its life.
enum State {
    /// The socket is open; the acceptor's Challenge comes first.
    AwaitChallenge,
    /// `Join` sent: `Admitted`, `Redirect` or `Reject` comes next.
    Joining { challenge: Challenge, nonce: [u8; 16] },
    /// `Hello` sent: `Welcome` or `Reject` comes next.
    Greeting { transcript: Transcript, key: Vec<u8> },
    /// Authenticated: Raft frames both ways.
    Open { peer: NodeId, sealer: Sealer, opener: Opener },
    /// Finished; the socket should be closed.
    Closed,
}

/// What one incoming frame meant.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Answer the challenge: send this frame.
    Send(Vec<u8>),
    /// The leader admitted the tab as `node_id` with this key (derived from the join's
    /// `nonce`, the incarnation); the link is open to `leader`. `members` are the native
    /// members it named, proved under the tab key (empty from an older node; `Err` when their
    /// proof failed, and then none is believed).
    Admitted {
        node_id: NodeId,
        key: Vec<u8>,
        nonce: [u8; 16],
        leader: NodeId,
        members: Result<Vec<MemberAddress>, &'static str>,
    },
    /// The native member `peer` welcomed the tab; the link is open.
    Welcomed { peer: NodeId },
    /// A follower named the leader; dial it instead.
    Redirect { leader: NodeId, address: String },
    /// The acceptor refused, with its reason (shown to the user).
    Rejected { reason: String },
    /// A Raft message from the peer, authenticated.
    Raft(Message),
    /// The frame was bad: close the socket (and say why).
    Fail(String),
}

/// One connection's handshake and session.
pub struct Link {
    state: State,
}

impl Default for Link {
    fn default() -> Link {
        Link { state: State::AwaitChallenge }
    }
}

impl Link {
    /// The native member at the other end, once authenticated.
    pub fn peer(&self) -> Option<NodeId> {
        match &self.state {
            State::Open { peer, .. } => Some(*peer),
            _ => None,
        }
    }

    /// Handles one frame from the socket. `nonce` is 16 fresh random bytes from the Worker's
    /// `crypto.getRandomValues`, used only when the frame is a Challenge.
    pub fn on_frame(&mut self, frame: &[u8], credential: &Credential, nonce: [u8; 16]) -> Outcome {
        let state = core::mem::replace(&mut self.state, State::Closed);
        let (next, outcome) = match state {
            State::AwaitChallenge => Self::on_challenge(frame, credential, nonce),
            State::Joining { challenge, nonce } => Self::on_join_answer(frame, credential, challenge, nonce),
            State::Greeting { transcript, key } => Self::on_hello_answer(frame, transcript, &key),
            State::Open { peer, sealer, mut opener } => match opener.open_message(frame) {
                Ok(message) => {
                    let own = credential.admitted.as_ref().map(|(id, _)| *id);
                    if message.from != peer || Some(message.to) != own {
                        let why = alloc::format!(
                            "a message from {} to {} on the link to {peer}",
                            message.from,
                            message.to
                        );
                        (State::Closed, Outcome::Fail(why))
                    } else {
                        (State::Open { peer, sealer, opener }, Outcome::Raft(message))
                    }
                }
                Err(error) => (State::Closed, Outcome::Fail(error.to_string())),
            },
            State::Closed => (State::Closed, Outcome::Fail("frame after the link closed".into())),
        };
        self.state = next;
        outcome
    }

    /// Seals a Raft message for the peer, if the link is open.
    pub fn seal(&mut self, message: &Message) -> Option<Vec<u8>> {
        match &mut self.state {
            State::Open { sealer, .. } => Some(sealer.seal(FrameKind::Raft, message)),
            _ => None,
        }
    }

    /// Seals the tab's storage status for the peer (VOTER-PROTOCOL.md), if the link is open.
    pub fn seal_status(&mut self, status: &wire::TabStatus) -> Option<Vec<u8>> {
        match &mut self.state {
            State::Open { sealer, .. } => Some(sealer.seal(FrameKind::TabStatus, status)),
            _ => None,
        }
    }

    fn on_challenge(frame: &[u8], credential: &Credential, nonce: [u8; 16]) -> (State, Outcome) {
        let challenge: Challenge = match wire::decode_frame(frame, FrameKind::Challenge) {
            Ok(challenge) => challenge,
            Err(error) => return (State::Closed, Outcome::Fail(error.to_string())),
        };
        if challenge.cluster_id != credential.token.fields.cluster_id {
            let why =
                alloc::format!("this member belongs to cluster {:?}, not the invite's", challenge.cluster_id);
            return (State::Closed, Outcome::Fail(why));
        }
        match &credential.admitted {
            None => {
                let join = Join { token: credential.token_text.clone(), nonce };
                // The feature byte asks for `RaftShared` frames (entries hashed once by the
                // leader for every tab, `wire::shared`); a node built before them ignores it.
                let frame =
                    wire::encode_frame_with_features(FrameKind::Join, &join, wire::FEATURE_SHARED_FRAMES);
                (State::Joining { challenge, nonce }, Outcome::Send(frame))
            }
            Some((id, key)) => {
                let transcript = Transcript {
                    acceptor_nonce: challenge.nonce,
                    dialler_nonce: nonce,
                    cluster_id: challenge.cluster_id.clone(),
                    acceptor: challenge.node_id,
                    dialler: *id,
                };
                let hello = Hello {
                    cluster_id: challenge.cluster_id,
                    node_id: *id,
                    address: None,
                    nonce,
                    mac: transcript.hello_mac(key),
                };
                let frame =
                    wire::encode_frame_with_features(FrameKind::Hello, &hello, wire::FEATURE_SHARED_FRAMES);
                (State::Greeting { transcript, key: key.clone() }, Outcome::Send(frame))
            }
        }
    }

    fn on_join_answer(
        frame: &[u8],
        credential: &Credential,
        challenge: Challenge,
        nonce: [u8; 16],
    ) -> (State, Outcome) {
        let admitted = match wire::decode_join_answer(frame) {
            Ok(JoinAnswer::Admitted(admitted)) => admitted,
            Ok(JoinAnswer::Redirect(redirect)) => {
                return (
                    State::Closed,
                    Outcome::Redirect { leader: redirect.leader_id, address: redirect.address },
                )
            }
            Ok(JoinAnswer::Refused(reason)) => {
                let reason = reason.map_or_else(|other| other, |word| word.as_str().to_string());
                return (State::Closed, Outcome::Rejected { reason });
            }
            Err(error) => return (State::Closed, Outcome::Fail(error.to_string())),
        };
        if !records::is_browser_node_id(admitted.node_id) {
            let why = alloc::format!("admitted as {}, which is no browser peer's id", admitted.node_id);
            return (State::Closed, Outcome::Fail(why));
        }
        let fields = &credential.token.fields;
        let key = wire::tab_key(&credential.token.mac, &fields.cluster_id, admitted.node_id, &nonce);
        let transcript = Transcript {
            acceptor_nonce: challenge.nonce,
            dialler_nonce: nonce,
            cluster_id: challenge.cluster_id,
            acceptor: challenge.node_id,
            dialler: admitted.node_id,
        };
        if !transcript.verify_welcome(&key, &admitted.mac) {
            let why = "the admitting node could not prove it holds the cluster secret";
            return (State::Closed, Outcome::Fail(why.into()));
        }
        let members =
            admitted.members.as_ref().map_or(Ok(Vec::new()), |hints| hints.verified(&transcript, &key));
        let (sealer, mut opener) = transcript.session(&key, Side::Dialler).split();
        // This tab's Join asked for `RaftShared` frames (`wire::FEATURE_SHARED_FRAMES`).
        opener.set_reads_shared(true);
        let leader = challenge.node_id;
        (
            State::Open { peer: leader, sealer, opener },
            Outcome::Admitted { node_id: admitted.node_id, key: key.to_vec(), nonce, leader, members },
        )
    }

    fn on_hello_answer(frame: &[u8], transcript: Transcript, key: &[u8]) -> (State, Outcome) {
        if frame.get(1) == Some(&(FrameKind::Reject as u8)) {
            return (State::Closed, rejected(frame));
        }
        match wire::decode_frame::<Welcome>(frame, FrameKind::Welcome) {
            Ok(welcome) if transcript.verify_welcome(key, &welcome.mac) => {
                let (sealer, mut opener) = transcript.session(key, Side::Dialler).split();
                // This tab's Hello asked for `RaftShared` frames.
                opener.set_reads_shared(true);
                let peer = transcript.acceptor;
                (State::Open { peer, sealer, opener }, Outcome::Welcomed { peer })
            }
            Ok(_) => (
                State::Closed,
                Outcome::Fail("the member could not prove it holds the cluster secret".into()),
            ),
            Err(error) => (State::Closed, Outcome::Fail(error.to_string())),
        }
    }
}

fn rejected(frame: &[u8]) -> Outcome {
    match wire::decode_frame::<wire::Reject>(frame, FrameKind::Reject) {
        Ok(reject) => Outcome::Rejected { reason: reject.reason },
        Err(error) => Outcome::Fail(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::wire::{
        encode_frame, invite_key, Admitted, InviteFields, InviteRole, JoinRefusal, MemberHints, Redirect,
    };
    use raft_core::{MessageBody, Term};

    const TAB: NodeId = NodeId(1 << 32);
    const SECRET: &[u8] = b"peer secret";

    fn credential() -> Credential {
        let fields = InviteFields {
            cluster_id: "c".into(),
            role: InviteRole::Learner,
            expires_unix_ms: u64::MAX,
            nonce: [1; 16],
            max_uses: 2,
        };
        let token = InviteToken::sign(&invite_key(SECRET), fields);
        Credential { token_text: token.encode(), token, admitted: None }
    }

    fn challenge(node: u64) -> Challenge {
        Challenge { cluster_id: "c".into(), node_id: NodeId(node), nonce: [7; 16] }
    }

    /// The leader's side of a join, as LEARNER-PROTOCOL.md says: it checks the token and
    /// proves the tab key with a welcome proof over the transcript whose dialler is `id`.
    fn admit(join_frame: &[u8], id: NodeId, key_secret: &[u8]) -> (Vec<u8>, Transcript, Vec<u8>) {
        let join: Join = wire::decode_frame(join_frame, FrameKind::Join).unwrap();
        let token = InviteToken::decode(&join.token).unwrap();
        token.verify(&invite_key(SECRET), "c", 0).unwrap();
        // What a native node recomputes: the token's mac from the invite key (the secret).
        let mac = InviteToken::mac_of(&invite_key(key_secret), &token.fields);
        let key = wire::tab_key(&mac, "c", id, &join.nonce);
        let transcript = Transcript {
            acceptor_nonce: [7; 16],
            dialler_nonce: join.nonce,
            cluster_id: "c".into(),
            acceptor: NodeId(1),
            dialler: id,
        };
        let hints = MemberHints::sign(&transcript, &key, members());
        let admitted = Admitted { node_id: id, mac: transcript.welcome_mac(&key), members: Some(hints) };
        (encode_frame(FrameKind::Admitted, &admitted), transcript, key.to_vec())
    }

    /// The native members the leader names.
    fn members() -> Vec<MemberAddress> {
        (1..=3)
            .map(|id| MemberAddress { node_id: NodeId(id), address: alloc::format!("127.0.0.1:700{id}") })
            .collect()
    }

    fn message(from: NodeId, to: NodeId) -> Message {
        Message { from, to, term: Term(2), body: MessageBody::HeartbeatResponse { context: 3 } }
    }

    #[test]
    fn a_tab_joins_opens_a_sealed_session_and_refuses_frames_not_from_its_peer_to_itself() {
        let mut credential = credential();
        let mut link = Link::default();
        let Outcome::Send(join) =
            link.on_frame(&encode_frame(FrameKind::Challenge, &challenge(1)), &credential, [9; 16])
        else {
            panic!("a challenge is answered with a join")
        };
        let (admitted, transcript, key) = admit(&join, TAB, SECRET);
        let outcome = link.on_frame(&admitted, &credential, [0; 16]);
        assert_eq!(
            outcome,
            Outcome::Admitted {
                node_id: TAB,
                key: key.clone(),
                nonce: [9; 16],
                leader: NodeId(1),
                members: Ok(members())
            }
        );
        credential.admitted = Some((TAB, key.clone()));
        assert_eq!(link.peer(), Some(NodeId(1)));
        // Both directions sealed with the tab key's session.
        let (mut leader_send, mut leader_receive) = transcript.session(&key, Side::Acceptor).split();
        let from_tab = link.seal(&message(TAB, NodeId(1))).unwrap();
        assert_eq!(
            leader_receive.open::<Message>(&from_tab, FrameKind::Raft).unwrap(),
            message(TAB, NodeId(1))
        );
        let heartbeat = leader_send.seal(FrameKind::Raft, &message(NodeId(1), TAB));
        assert_eq!(link.on_frame(&heartbeat, &credential, [0; 16]), Outcome::Raft(message(NodeId(1), TAB)));
        // The join asked for `RaftShared` frames, and the link reads them.
        let (_, features) = wire::decode_frame_with_features::<Join>(&join, FrameKind::Join).unwrap();
        assert_eq!(features, wire::FEATURE_SHARED_FRAMES);
        let append = Message {
            from: NodeId(1),
            to: TAB,
            term: Term(2),
            body: MessageBody::AppendEntries {
                prev_log_index: raft_core::LogIndex(0),
                prev_log_term: Term(0),
                entries: alloc::vec::Vec::new(),
                leader_commit: raft_core::LogIndex(0),
            },
        };
        let entry = raft_core::Entry {
            term: Term(2),
            index: raft_core::LogIndex(1),
            payload: raft_core::EntryPayload::Command(alloc::vec![7u8; 9].into()),
        };
        let part = postcard::to_allocvec(&entry).unwrap();
        let digest = wire::part_digest(&part);
        let shared = leader_send.seal_shared(&postcard::to_allocvec(&append).unwrap(), &[(&part, &digest)]);
        let mut whole = append.clone();
        if let MessageBody::AppendEntries { entries, .. } = &mut whole.body {
            entries.push(entry);
        }
        assert_eq!(link.on_frame(&shared, &credential, [0; 16]), Outcome::Raft(whole));
        // A replayed frame fails its tag; the link is closed from then on.
        assert!(matches!(link.on_frame(&heartbeat, &credential, [0; 16]), Outcome::Fail(_)));
        assert!(link.seal(&message(TAB, NodeId(1))).is_none());
    }

    #[test]
    fn a_forged_from_on_an_open_link_closes_it() {
        let mut credential = credential();
        let mut link = Link::default();
        let Outcome::Send(join) =
            link.on_frame(&encode_frame(FrameKind::Challenge, &challenge(1)), &credential, [9; 16])
        else {
            panic!()
        };
        let (admitted, transcript, key) = admit(&join, TAB, SECRET);
        link.on_frame(&admitted, &credential, [0; 16]);
        credential.admitted = Some((TAB, key.clone()));
        let mut leader_send = transcript.session(&key, Side::Acceptor).sealer;
        let forged = leader_send.seal(FrameKind::Raft, &message(NodeId(2), TAB));
        assert!(matches!(link.on_frame(&forged, &credential, [0; 16]), Outcome::Fail(_)));
        assert_eq!(link.peer(), None);
    }

    #[test]
    fn an_admission_without_the_secret_a_redirect_and_a_refusal_end_the_link_with_their_reason() {
        let credential = credential();
        let challenge_frame = encode_frame(FrameKind::Challenge, &challenge(1));
        // An impostor that saw the token but does not hold the secret cannot prove the tab key.
        let mut link = Link::default();
        let Outcome::Send(join) = link.on_frame(&challenge_frame, &credential, [9; 16]) else { panic!() };
        let (admitted, _, _) = admit(&join, TAB, b"a guess");
        assert!(
            matches!(link.on_frame(&admitted, &credential, [0; 16]), Outcome::Fail(why) if why.contains("secret"))
        );
        // A native id is no browser peer's.
        let mut link = Link::default();
        let Outcome::Send(join) = link.on_frame(&challenge_frame, &credential, [9; 16]) else { panic!() };
        let (admitted, _, _) = admit(&join, NodeId(5), SECRET);
        assert!(matches!(link.on_frame(&admitted, &credential, [0; 16]), Outcome::Fail(_)));
        // A follower redirects.
        let mut link = Link::default();
        link.on_frame(&challenge_frame, &credential, [9; 16]);
        let redirect =
            encode_frame(FrameKind::Redirect, &Redirect { leader_id: NodeId(2), address: "h:2".into() });
        assert_eq!(
            link.on_frame(&redirect, &credential, [0; 16]),
            Outcome::Redirect { leader: NodeId(2), address: "h:2".into() }
        );
        // Refusals carry the cluster's reason word.
        for refusal in JoinRefusal::ALL {
            let mut link = Link::default();
            link.on_frame(&challenge_frame, &credential, [9; 16]);
            let reject = encode_frame(FrameKind::Reject, &refusal.reject());
            assert_eq!(
                link.on_frame(&reject, &credential, [0; 16]),
                Outcome::Rejected { reason: refusal.as_str().into() }
            );
        }
        // Another cluster's challenge is not answered.
        let mut link = Link::default();
        let other = Challenge { cluster_id: "d".into(), ..challenge(1) };
        assert!(matches!(
            link.on_frame(&encode_frame(FrameKind::Challenge, &other), &credential, [9; 16]),
            Outcome::Fail(_)
        ));
    }

    #[test]
    fn an_admitted_tab_greets_other_members_with_hello_and_checks_their_welcome() {
        let mut credential = credential();
        credential.admitted = Some((TAB, alloc::vec![4; 32]));
        let mut link = Link::default();
        let Outcome::Send(hello) =
            link.on_frame(&encode_frame(FrameKind::Challenge, &challenge(2)), &credential, [9; 16])
        else {
            panic!()
        };
        let hello: Hello = wire::decode_frame(&hello, FrameKind::Hello).unwrap();
        assert_eq!((hello.node_id, hello.address.clone()), (TAB, None));
        let transcript = Transcript {
            acceptor_nonce: [7; 16],
            dialler_nonce: hello.nonce,
            cluster_id: "c".into(),
            acceptor: NodeId(2),
            dialler: TAB,
        };
        assert!(transcript.verify_hello(&[4; 32], &hello.mac));
        // A welcome under another key is refused; the right one opens the link.
        let mut impostor = Link::default();
        impostor.on_frame(&encode_frame(FrameKind::Challenge, &challenge(2)), &credential, [9; 16]);
        let wrong = encode_frame(FrameKind::Welcome, &Welcome { mac: transcript.welcome_mac(&[5; 32]) });
        assert!(matches!(impostor.on_frame(&wrong, &credential, [0; 16]), Outcome::Fail(_)));
        let right = encode_frame(FrameKind::Welcome, &Welcome { mac: transcript.welcome_mac(&[4; 32]) });
        assert_eq!(link.on_frame(&right, &credential, [0; 16]), Outcome::Welcomed { peer: NodeId(2) });
    }

    #[test]
    fn the_members_an_admission_names_are_believed_only_with_their_proof() {
        let credential = credential();
        let challenge_frame = encode_frame(FrameKind::Challenge, &challenge(1));
        let mut link = Link::default();
        let Outcome::Send(join) = link.on_frame(&challenge_frame, &credential, [9; 16]) else { panic!() };
        let (frame, _, _) = admit(&join, TAB, SECRET);
        // A relay that changes one address: the admission stands (its own proof is intact), the
        // members are refused, and the tab falls back on its applied address records.
        let Ok(JoinAnswer::Admitted(mut admitted)) = wire::decode_join_answer(&frame) else { panic!() };
        admitted.members.as_mut().unwrap().members[2].address = "evil.example:7003".into();
        let tampered = encode_frame(FrameKind::Admitted, &admitted);
        let Outcome::Admitted { members, .. } = link.on_frame(&tampered, &credential, [0; 16]) else {
            panic!()
        };
        assert!(members.is_err(), "{members:?}");
        // An older node's Admitted has no members: none, and no error.
        let mut link = Link::default();
        let Outcome::Send(join) = link.on_frame(&challenge_frame, &credential, [9; 16]) else { panic!() };
        let (frame, _, _) = admit(&join, TAB, SECRET);
        let Ok(JoinAnswer::Admitted(admitted)) = wire::decode_join_answer(&frame) else { panic!() };
        let legacy = encode_frame(FrameKind::Admitted, &(admitted.node_id, admitted.mac));
        let Outcome::Admitted { members, .. } = link.on_frame(&legacy, &credential, [0; 16]) else {
            panic!()
        };
        assert_eq!(members, Ok(Vec::new()));
    }
}
