//! One WebSocket between the tab and a native member, as a state machine over bytes: the
//! Worker owns the socket and hands every binary frame here; this module answers with the
//! frames to send and what happened. The frames, the handshake proofs and the per-frame session
//! tags are `raft_core::wire`'s, the very code native-node runs: there is no second copy.
//!
//! Two ways through the handshake (LEARNER-PROTOCOL.md):
//! - **join** (not yet admitted): Challenge → `Join { token, nonce }` → `Admitted { node_id, mac }`
//!   (the leader proves it holds the secret with `welcome_mac(tab_key)`), `Redirect` to the
//!   leader, or `Reject { reason }`;
//! - **hello** (admitted as `N`): Challenge → `Hello` with `hello_mac(tab_key)` → `Welcome` or
//!   `Reject`.
//!
//! After either, both ends tag every frame with the session derived from `tab_key`, and the
//! only frames are `Raft` frames. A peer's frame that fails to open, or a Raft message that is
//! not from this link's peer to this tab, ends the link: the Worker closes the socket.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use raft_core::wire::{
    self, records, Challenge, FrameKind, Hello, InviteToken, Join, JoinAnswer, Opener, Sealer, Side, Transcript,
    Welcome,
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
    /// The leader admitted the tab as `node_id` with this key; the link is open to `leader`.
    Admitted { node_id: NodeId, key: Vec<u8>, leader: NodeId },
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
            State::Open { peer, sealer, mut opener } => match opener.open::<Message>(frame, FrameKind::Raft) {
                Ok(message) => {
                    let own = credential.admitted.as_ref().map(|(id, _)| *id);
                    if message.from != peer || Some(message.to) != own {
                        let why = alloc::format!(
                            "a message from {} to {} on the link to {peer}",
                            message.from, message.to
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

    fn on_challenge(frame: &[u8], credential: &Credential, nonce: [u8; 16]) -> (State, Outcome) {
        let challenge: Challenge = match wire::decode_frame(frame, FrameKind::Challenge) {
            Ok(challenge) => challenge,
            Err(error) => return (State::Closed, Outcome::Fail(error.to_string())),
        };
        if challenge.cluster_id != credential.token.fields.cluster_id {
            let why = alloc::format!("this member belongs to cluster {:?}, not the invite's", challenge.cluster_id);
            return (State::Closed, Outcome::Fail(why));
        }
        match &credential.admitted {
            None => {
                let join = Join { token: credential.token_text.clone(), nonce };
                let frame = wire::encode_frame(FrameKind::Join, &join);
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
                let frame = wire::encode_frame(FrameKind::Hello, &hello);
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
                return (State::Closed, Outcome::Redirect { leader: redirect.leader_id, address: redirect.address })
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
        let (sealer, opener) = transcript.session(&key, Side::Dialler).split();
        let leader = challenge.node_id;
        (
            State::Open { peer: leader, sealer, opener },
            Outcome::Admitted { node_id: admitted.node_id, key: key.to_vec(), leader },
        )
    }

    fn on_hello_answer(frame: &[u8], transcript: Transcript, key: &[u8]) -> (State, Outcome) {
        if frame.get(1) == Some(&(FrameKind::Reject as u8)) {
            return (State::Closed, rejected(frame));
        }
        match wire::decode_frame::<Welcome>(frame, FrameKind::Welcome) {
            Ok(welcome) if transcript.verify_welcome(key, &welcome.mac) => {
                let (sealer, opener) = transcript.session(key, Side::Dialler).split();
                let peer = transcript.acceptor;
                (State::Open { peer, sealer, opener }, Outcome::Welcomed { peer })
            }
            Ok(_) => (State::Closed, Outcome::Fail("the member could not prove it holds the cluster secret".into())),
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
