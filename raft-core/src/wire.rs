//! The peer protocol's frames, handshake and per-frame authentication, with no I/O: only
//! `core`/`alloc`, `hmac`, `sha2`, `serde` and `postcard` (all `no_std`). `native-node` and the
//! browser peer (`wasm/`) both compile this one module (feature `wire`), so there is no second
//! copy of any frame type.
//!
//! **Frames.** Every binary frame is `[protocol version: u8][kind: u8][postcard body]`, and
//! every frame after the handshake carries a 16-byte tag at its end:
//! `[version][kind][body][tag]`. One kind differs: a `RaftShared` frame carries an
//! AppendEntries as a head and separately hashed parts, so that a leader hashes entries it
//! sends to many peers once ([`shared`]); only a peer whose `Hello` or `Join` asked for them
//! (a feature byte after the body, which older builds ignore) is sent them, and every build
//! since reads both kinds ([`Opener::open_message`]).
//!
//! **Handshake** (mutual challenge-response; the secret never crosses the wire):
//! 1. the acceptor sends `Challenge { cluster_id, node_id, nonce_a }`;
//! 2. the dialler answers `Hello { cluster_id, node_id, address, nonce_d, mac }` with
//!    `mac = HMAC(secret, "hello v3 with address" ‖ transcript ‖ address)` when it gives an
//!    address, and `mac = HMAC(secret, "hello v2" ‖ transcript)` when it gives none (a browser
//!    tab; [`Transcript::hello_mac_bound`]);
//! 3. the acceptor answers `Welcome { mac = HMAC(secret, "welcome" ‖ transcript) }` or
//!    `Reject { reason }`.
//!
//! The transcript is `nonce_a ‖ nonce_d ‖ cluster ‖ acceptor id ‖ dialler id` (each part
//! length-prefixed), so both proofs are bound to this connection's two fresh nonces and to both
//! identities: a handshake recorded elsewhere proves nothing here. Between native nodes the
//! proofs also bind both data-directory incarnations told in the WebSocket upgrade
//! ([`BoundIncarnations`]; tabs tell none, and their proofs are unchanged), and the Hello's
//! proof binds the address the dialler gives, which the acceptor may dial back: a relay that
//! rewrites it breaks the proof. Every field of `Challenge`, `Hello` and `Welcome` that an end
//! acts on is thus either bound or checked equal to its own (`cluster_id`); only `Reject`'s
//! reason (logged, never acted on) is not.
//!
//! **Session.** Both ends derive `session = HMAC(secret, "session" ‖ transcript)` and one key
//! per direction, `HMAC(session, "dialler to acceptor")` and `HMAC(session, "acceptor to
//! dialler")`. Every later frame's tag is `HMAC(direction key, sequence ‖ version ‖ kind ‖
//! body)` truncated to 16 bytes, where `sequence` counts the frames sent in that direction from
//! 0 and is never sent: a relay between the two nodes can forward frames but not forge, replay,
//! reorder, drop or reflect one without the next tag failing. Only the two endpoints, which
//! know the secret, can compute the keys.
//!
//! **Browser peers** join with an invitation instead of the secret: see [`invite`] (the
//! `Join` / `Redirect` / `Admitted` frames, the invite and tab keys), [`member_hints`] (the
//! members an `Admitted` names so that a tab can dial them before it has applied anything) and
//! [`records`] (the replicated records that say which members are tabs and where members can be
//! dialled).

pub mod invite;
pub mod member_hints;
pub mod records;
pub mod shared;
pub mod tab;

pub use invite::{
    decode_join_answer, invite_key, tab_key, Admitted, InviteFields, InviteRole, InviteToken, Join,
    JoinAnswer, JoinRefusal, Redirect,
};
pub use member_hints::{MemberAddress, MemberHints};
pub use shared::{
    decode_frame_with_features, decode_message, encode_frame_with_features, part_digest, SharedPart,
    FEATURE_SHARED_FRAMES, SHARED_PARTS_MAX,
};
pub use tab::{StorageBackend, TabStatus};

use crate::NodeId;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;

/// The peer protocol version this build speaks (2: frames after the handshake carry a tag; 3:
/// `SnapshotMeta` carries `membership_index`, so an InstallSnapshot of 2 reads differently and
/// an older peer must be refused by name at the handshake, not misread).
/// `RaftShared` frames did not need a new version: they go only to a peer that asked for them
/// in its handshake, so builds of version 3 from before them keep talking to this one.
pub const PROTOCOL_VERSION: u8 = 3;

/// Bytes of the tag at the end of every frame after the handshake.
pub const TAG_BYTES: usize = 16;

/// Largest handshake frame accepted (a `Hello` carries ids, an address and two proofs).
pub const HANDSHAKE_FRAME_BYTES_MAX: usize = 4 * 1024;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Acceptor → dialler: who I am, and a nonce to prove you know the secret.
    Challenge = 1,
    /// Dialler → acceptor: who I am, my nonce, and the proof.
    Hello = 2,
    /// Acceptor → dialler: accepted, and my proof.
    Welcome = 3,
    /// Acceptor → dialler: refused, and why.
    Reject = 4,
    /// Browser tab → acceptor, instead of `Hello`: an invitation ([`invite::Join`]).
    Join = 5,
    /// Follower → tab: ask the leader ([`invite::Redirect`]).
    Redirect = 6,
    /// Leader → tab: admitted as a learner ([`invite::Admitted`]).
    Admitted = 7,
    /// Browser tab → native node, tagged: what the tab's storage can promise ([`tab::TabStatus`]).
    TabStatus = 8,
    /// One Raft message (tagged).
    Raft = 16,
    /// One AppendEntries with its entries in separately hashed parts (tagged; [`shared`]), sent
    /// only to a peer whose handshake asked for them.
    RaftShared = 17,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::Challenge),
            2 => Some(FrameKind::Hello),
            3 => Some(FrameKind::Welcome),
            4 => Some(FrameKind::Reject),
            5 => Some(FrameKind::Join),
            6 => Some(FrameKind::Redirect),
            7 => Some(FrameKind::Admitted),
            8 => Some(FrameKind::TabStatus),
            16 => Some(FrameKind::Raft),
            17 => Some(FrameKind::RaftShared),
            _ => None,
        }
    }
}

/// Why a frame could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than its header (and tag).
    TooShort,
    /// A protocol version this build does not speak.
    UnsupportedVersion(u8),
    /// An unknown kind byte.
    UnknownKind(u8),
    /// Another kind than the one expected at this point.
    UnexpectedKind(FrameKind),
    /// The body does not decode.
    Body(String),
    /// The frame's tag is wrong: forged, replayed, reordered or corrupted on the way.
    BadTag {
        /// The sequence number the frame should have had.
        sequence: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort => f.write_str("frame shorter than its header"),
            FrameError::UnsupportedVersion(version) => {
                write!(f, "unsupported protocol version {version} (this node speaks {PROTOCOL_VERSION})")
            }
            FrameError::UnknownKind(kind) => write!(f, "unknown frame kind {kind}"),
            FrameError::UnexpectedKind(kind) => write!(f, "unexpected frame kind {kind:?}"),
            FrameError::Body(why) => write!(f, "undecodable frame body: {why}"),
            FrameError::BadTag { sequence } => write!(
                f,
                "frame {sequence} is not authenticated by the session key (forged, replayed or reordered)"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// Encodes an untagged (handshake) frame with this build's protocol version.
pub fn encode_frame<T: Serialize>(kind: FrameKind, body: &T) -> Vec<u8> {
    encode_frame_with_version(PROTOCOL_VERSION, kind, body)
}

/// Encodes an untagged frame with any version byte (tests speak wrong versions on purpose).
pub fn encode_frame_with_version<T: Serialize>(version: u8, kind: FrameKind, body: &T) -> Vec<u8> {
    let mut out = alloc::vec![version, kind as u8];
    // postcard only fails on types serde cannot describe; ours all can.
    out.extend_from_slice(&postcard::to_allocvec(body).unwrap_or_default());
    out
}

/// Checks an untagged frame's header and decodes its body as `T` of kind `expected`; a
/// `Reject` is turned into an error carrying its reason.
///
/// # Errors
/// [`FrameError`] naming what is wrong.
pub fn decode_frame<T: DeserializeOwned>(frame: &[u8], expected: FrameKind) -> Result<T, FrameError> {
    let (kind, body) = split_header(frame)?;
    if kind == FrameKind::Reject && expected != FrameKind::Reject {
        let reject: Reject = postcard::from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))?;
        return Err(FrameError::Body(alloc::format!("refused by peer: {}", reject.reason)));
    }
    if kind != expected {
        return Err(FrameError::UnexpectedKind(kind));
    }
    postcard::from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))
}

pub(crate) fn split_header(frame: &[u8]) -> Result<(FrameKind, &[u8]), FrameError> {
    let [version, kind, body @ ..] = frame else {
        return Err(FrameError::TooShort);
    };
    if *version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(*version));
    }
    let kind = FrameKind::from_byte(*kind).ok_or(FrameError::UnknownKind(*kind))?;
    Ok((kind, body))
}

/// Decodes a frame body returned by [`Opener::open_any`].
///
/// # Errors
/// [`FrameError::Body`] when the bytes are not a `T`.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))
}

/// First frame of the acceptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Challenge {
    /// The acceptor's cluster.
    pub cluster_id: String,
    /// The acceptor's id.
    pub node_id: NodeId,
    /// The acceptor's fresh random bytes.
    pub nonce: [u8; 16],
}

/// The dialler's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// The dialler's cluster.
    pub cluster_id: String,
    /// The dialler's id.
    pub node_id: NodeId,
    /// Where the dialler can be reached, if it can be dialled at all (browser tabs cannot).
    pub address: Option<String>,
    /// The dialler's fresh random bytes.
    pub nonce: [u8; 16],
    /// HMAC proof of the secret over the transcript, see the module docs.
    pub mac: Vec<u8>,
}

/// The acceptor's proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Welcome {
    /// HMAC proof of the secret over the transcript.
    pub mac: Vec<u8>,
}

/// A refusal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reject {
    /// Why, lowercase.
    pub reason: String,
}

/// What a Hello's proof covers ([`Transcript::check_hello`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloProof {
    /// The proof binds the Hello's address, or the Hello gives none.
    Addressed,
    /// The proof is good but does not bind the address the Hello gives: a native node built
    /// before address binding (kept so that a rolling upgrade's old nodes can still dial the
    /// new ones). The address must be ignored.
    AddressNotBound,
}

/// What both ends of one connection agree on after the two first frames.
#[derive(Clone, Debug)]
pub struct Transcript {
    /// The acceptor's nonce (in the challenge).
    pub acceptor_nonce: [u8; 16],
    /// The dialler's nonce (in the hello).
    pub dialler_nonce: [u8; 16],
    /// The cluster both belong to.
    pub cluster_id: String,
    /// The acceptor.
    pub acceptor: NodeId,
    /// The dialler.
    pub dialler: NodeId,
}

pub(crate) type HmacSha256 = Hmac<Sha256>;

pub(crate) fn keyed(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts keys of any length"),
    };
    for part in parts {
        mac.update(&(part.len() as u32).to_le_bytes());
        mac.update(part);
    }
    mac
}

/// The data-directory incarnations the two native nodes told each other in the WebSocket
/// upgrade that carries the handshake (`x-flotilla-incarnation`, see `native-node`'s
/// `incarnation` module), bound into the Hello and Welcome proofs so that a relay cannot
/// alter, add or strip them without the handshake failing.
///
/// Browser tabs can neither set nor read upgrade headers: they tell none and bind
/// [`BoundIncarnations::NONE`], with which every proof is exactly the one of a transcript
/// without incarnations. The rule both ends follow: when the dialler told no incarnation, bind
/// none; otherwise bind the dialler's and the acceptor's (or `None` if the acceptor told none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundIncarnations {
    /// The acceptor's incarnation, as told in its upgrade answer.
    pub acceptor: Option<u64>,
    /// The dialler's incarnation, as told in its upgrade request.
    pub dialler: Option<u64>,
}

impl BoundIncarnations {
    /// Nothing bound: a tab's handshake, or a node that keeps no incarnations.
    pub const NONE: BoundIncarnations = BoundIncarnations { acceptor: None, dialler: None };

    /// What both ends bind, by the rule above, from what each told.
    pub fn told(acceptor: Option<u64>, dialler: Option<u64>) -> BoundIncarnations {
        match dialler {
            None => BoundIncarnations::NONE,
            Some(_) => BoundIncarnations { acceptor, dialler },
        }
    }
}

fn incarnation_part(incarnation: Option<u64>) -> [u8; 9] {
    let mut part = [0u8; 9];
    if let Some(value) = incarnation {
        part[0] = 1;
        part[1..].copy_from_slice(&value.to_le_bytes());
    }
    part
}

impl Transcript {
    fn mac(&self, secret: &[u8], label: &[u8], bound: BoundIncarnations) -> HmacSha256 {
        let mut mac = keyed(
            secret,
            &[
                label,
                &self.acceptor_nonce,
                &self.dialler_nonce,
                self.cluster_id.as_bytes(),
                &self.acceptor.0.to_le_bytes(),
                &self.dialler.0.to_le_bytes(),
            ],
        );
        // Nothing appended when nothing is bound: tabs' proofs stay as they were.
        if bound != BoundIncarnations::NONE {
            for part in [incarnation_part(bound.acceptor), incarnation_part(bound.dialler)] {
                mac.update(&(part.len() as u32).to_le_bytes());
                mac.update(&part);
            }
        }
        mac
    }

    /// The dialler's proof without an address: a browser tab's (and an old native build's).
    pub fn hello_mac(&self, secret: &[u8]) -> Vec<u8> {
        self.hello_mac_bound(secret, BoundIncarnations::NONE, None)
    }

    /// The dialler's proof, binding the incarnations both told and the `address` its Hello
    /// gives. With an address the label is another one (`v3 with address`) and the address is
    /// one more length-prefixed part after everything else, so an address-less proof never
    /// passes for a Hello that gives an address, nor one address's proof for another; without
    /// one the proof is exactly that of before address binding, so tabs' proofs are unchanged.
    pub fn hello_mac_bound(&self, secret: &[u8], bound: BoundIncarnations, address: Option<&str>) -> Vec<u8> {
        self.hello(secret, bound, address).finalize().into_bytes().to_vec()
    }

    /// Whether `mac` is the dialler's proof without an address (constant time).
    pub fn verify_hello(&self, secret: &[u8], mac: &[u8]) -> bool {
        self.verify_hello_bound(secret, mac, BoundIncarnations::NONE, None)
    }

    /// Whether `mac` is the dialler's proof binding these incarnations and this `address`
    /// (constant time).
    pub fn verify_hello_bound(
        &self,
        secret: &[u8],
        mac: &[u8],
        bound: BoundIncarnations,
        address: Option<&str>,
    ) -> bool {
        self.hello(secret, bound, address).verify_slice(mac).is_ok()
    }

    /// What an acceptor makes of `hello`'s proof: [`HelloProof::Addressed`] when it binds the
    /// Hello's address (or the Hello gives none), [`HelloProof::AddressNotBound`] when it is a
    /// proof by a build from before address binding (the dialler holds the secret, but the
    /// address it gives is nobody's word and must be ignored), `None` when the dialler proved
    /// nothing.
    pub fn check_hello(&self, secret: &[u8], hello: &Hello, bound: BoundIncarnations) -> Option<HelloProof> {
        if self.verify_hello_bound(secret, &hello.mac, bound, hello.address.as_deref()) {
            Some(HelloProof::Addressed)
        } else if hello.address.is_some() && self.verify_hello_bound(secret, &hello.mac, bound, None) {
            Some(HelloProof::AddressNotBound)
        } else {
            None
        }
    }

    fn hello(&self, secret: &[u8], bound: BoundIncarnations, address: Option<&str>) -> HmacSha256 {
        match address {
            None => self.mac(secret, b"flotilla hello v2", bound),
            Some(address) => {
                let mut mac = self.mac(secret, b"flotilla hello v3 with address", bound);
                mac.update(&(address.len() as u32).to_le_bytes());
                mac.update(address.as_bytes());
                mac
            }
        }
    }

    /// The acceptor's proof.
    pub fn welcome_mac(&self, secret: &[u8]) -> Vec<u8> {
        self.welcome_mac_bound(secret, BoundIncarnations::NONE)
    }

    /// The acceptor's proof, binding the incarnations both told.
    pub fn welcome_mac_bound(&self, secret: &[u8], bound: BoundIncarnations) -> Vec<u8> {
        self.mac(secret, b"flotilla welcome v2", bound).finalize().into_bytes().to_vec()
    }

    /// Whether `mac` is the acceptor's proof (constant time).
    pub fn verify_welcome(&self, secret: &[u8], mac: &[u8]) -> bool {
        self.verify_welcome_bound(secret, mac, BoundIncarnations::NONE)
    }

    /// Whether `mac` is the acceptor's proof binding these incarnations (constant time).
    pub fn verify_welcome_bound(&self, secret: &[u8], mac: &[u8], bound: BoundIncarnations) -> bool {
        self.mac(secret, b"flotilla welcome v2", bound).verify_slice(mac).is_ok()
    }

    /// The session of this connection, seen from `side`.
    pub fn session(&self, secret: &[u8], side: Side) -> Session {
        let session =
            self.mac(secret, b"flotilla session v2", BoundIncarnations::NONE).finalize().into_bytes();
        let dialler_to_acceptor = key_of(&session, b"dialler to acceptor");
        let acceptor_to_dialler = key_of(&session, b"acceptor to dialler");
        let (send, receive) = match side {
            Side::Dialler => (dialler_to_acceptor, acceptor_to_dialler),
            Side::Acceptor => (acceptor_to_dialler, dialler_to_acceptor),
        };
        Session {
            sealer: Sealer { key: send, sequence: 0, peer_reads_shared: false },
            opener: Opener { key: receive, sequence: 0, reads_shared: false },
        }
    }
}

fn key_of(session: &[u8], label: &[u8]) -> [u8; 32] {
    keyed(session, &[label]).finalize().into_bytes().into()
}

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The node that opened the connection.
    Dialler,
    /// The node that accepted it.
    Acceptor,
}

/// Both directions of one authenticated connection.
#[derive(Debug)]
pub struct Session {
    /// Tags what this end sends.
    pub sealer: Sealer,
    /// Checks what this end receives.
    pub opener: Opener,
}

impl Session {
    /// Splits the session for a reading and a writing half.
    pub fn split(self) -> (Sealer, Opener) {
        (self.sealer, self.opener)
    }
}

fn tag(key: &[u8; 32], sequence: u64, header_and_body: &[u8]) -> HmacSha256 {
    let mut mac = keyed(key, &[&sequence.to_le_bytes()]);
    mac.update(header_and_body);
    mac
}

/// Tags outgoing frames with the next sequence number.
pub struct Sealer {
    key: [u8; 32],
    sequence: u64,
    /// The peer's handshake asked for `RaftShared` frames ([`FEATURE_SHARED_FRAMES`]).
    peer_reads_shared: bool,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("sequence", &self.sequence).finish_non_exhaustive()
    }
}

impl Sealer {
    /// Encodes `body` as a tagged frame of `kind`.
    pub fn seal<T: Serialize>(&mut self, kind: FrameKind, body: &T) -> Vec<u8> {
        let mut frame = encode_frame(kind, body);
        let tag = tag(&self.key, self.sequence, &frame).finalize().into_bytes();
        frame.extend_from_slice(&tag[..TAG_BYTES]);
        self.sequence = self.sequence.wrapping_add(1);
        frame
    }

    /// Tags a frame of `kind` whose postcard body is already encoded, as the concatenation of
    /// `body_parts`: the same frame, tag included, as [`Sealer::seal`] of the decoded body. A
    /// sender that sends one body to many peers encodes it once and seals it per connection;
    /// the tag still binds this connection's key and sequence number.
    pub fn seal_parts(&mut self, kind: FrameKind, body_parts: &[&[u8]]) -> Vec<u8> {
        let body_len: usize = body_parts.iter().map(|part| part.len()).sum();
        let mut frame = Vec::with_capacity(2 + body_len + TAG_BYTES);
        frame.extend_from_slice(&[PROTOCOL_VERSION, kind as u8]);
        for part in body_parts {
            frame.extend_from_slice(part);
        }
        let tag = tag(&self.key, self.sequence, &frame).finalize().into_bytes();
        frame.extend_from_slice(&tag[..TAG_BYTES]);
        self.sequence = self.sequence.wrapping_add(1);
        frame
    }
}

/// Checks incoming frames' tags, in order.
pub struct Opener {
    key: [u8; 32],
    sequence: u64,
    /// This end asked for `RaftShared` frames in its handshake ([`FEATURE_SHARED_FRAMES`]);
    /// without that the kind is refused before any of its parts is hashed, so a peer cannot
    /// make a node that never reads them pay for them.
    reads_shared: bool,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener").field("sequence", &self.sequence).finish_non_exhaustive()
    }
}

impl Opener {
    /// Checks the version (first, so an old peer gets a clear answer) and the tag in constant
    /// time, without advancing the sequence; returns the kind and the undecoded body.
    fn verify<'f>(&self, frame: &'f [u8]) -> Result<(FrameKind, &'f [u8]), FrameError> {
        if frame.len() < 2 + TAG_BYTES {
            if let Some(version) = frame.first().filter(|v| **v != PROTOCOL_VERSION) {
                return Err(FrameError::UnsupportedVersion(*version));
            }
            return Err(FrameError::TooShort);
        }
        let (tagged, given) = frame.split_at(frame.len() - TAG_BYTES);
        if frame[0] != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion(frame[0]));
        }
        if frame[1] == FrameKind::RaftShared as u8 {
            if !self.reads_shared {
                return Err(FrameError::UnexpectedKind(FrameKind::RaftShared));
            }
            shared::verify(&self.key, self.sequence, &tagged[2..], given)?;
            return Ok((FrameKind::RaftShared, &tagged[2..]));
        }
        tag(&self.key, self.sequence, tagged)
            .verify_truncated_left(given)
            .map_err(|_| FrameError::BadTag { sequence: self.sequence })?;
        let (kind, body) = split_header(tagged)?;
        Ok((kind, body))
    }

    /// Like [`Opener::open`], for a reader that accepts more than one kind at this point (a
    /// browser peer's connection carries `Raft` and `TabStatus` frames): checks the version and
    /// the tag, advances the sequence, and returns the kind and the undecoded body. Decode the
    /// body with [`decode_body`].
    ///
    /// # Errors
    /// [`FrameError`] naming what is wrong; after any error the connection must be closed.
    pub fn open_any<'f>(&mut self, frame: &'f [u8]) -> Result<(FrameKind, &'f [u8]), FrameError> {
        let (kind, body) = self.verify(frame)?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok((kind, body))
    }

    /// Checks the frame's version and tag (in constant time) before anything else, then
    /// decodes its body as `T` of kind `expected`. After any error the connection must be
    /// closed: the sequence has not advanced, so no later frame would verify either.
    ///
    /// # Errors
    /// [`FrameError`] naming what is wrong.
    pub fn open<T: DeserializeOwned>(&mut self, frame: &[u8], expected: FrameKind) -> Result<T, FrameError> {
        let (kind, body) = self.verify(frame)?;
        if kind != expected {
            return Err(FrameError::UnexpectedKind(kind));
        }
        let value = postcard::from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, MessageBody, Term};

    /// The connection every wire test seals and opens on (also `shared`'s tests).
    pub(super) fn transcript() -> Transcript {
        Transcript {
            acceptor_nonce: [7; 16],
            dialler_nonce: [9; 16],
            cluster_id: "c".into(),
            acceptor: NodeId(1),
            dialler: NodeId(2),
        }
    }

    fn message(context: u64) -> Message {
        Message {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(3),
            body: MessageBody::HeartbeatResponse { context },
        }
    }

    #[test]
    fn handshake_frames_round_trip_and_bad_frames_get_clear_errors() {
        let reject = Reject { reason: "no".into() };
        let frame = encode_frame(FrameKind::Reject, &reject);
        assert_eq!(frame[0], PROTOCOL_VERSION);
        let error = decode_frame::<Welcome>(&frame, FrameKind::Welcome).unwrap_err();
        assert_eq!(error, FrameError::Body("refused by peer: no".into()));
        assert_eq!(decode_frame::<Welcome>(&[], FrameKind::Welcome).unwrap_err(), FrameError::TooShort);
        let wrong_version = encode_frame_with_version(9, FrameKind::Welcome, &Welcome { mac: Vec::new() });
        let error = decode_frame::<Welcome>(&wrong_version, FrameKind::Welcome).unwrap_err();
        assert_eq!(error.to_string(), "unsupported protocol version 9 (this node speaks 3)");
        assert_eq!(
            decode_frame::<Welcome>(&[PROTOCOL_VERSION, 77], FrameKind::Welcome).unwrap_err(),
            FrameError::UnknownKind(77)
        );
    }

    #[test]
    fn proofs_bind_both_nonces_both_ids_and_the_secret() {
        let good = transcript();
        let mac = good.hello_mac(b"secret");
        assert!(good.verify_hello(b"secret", &mac));
        assert!(!good.verify_hello(b"other", &mac));
        assert!(!good.verify_welcome(b"secret", &mac), "a hello proof is no welcome proof");
        for changed in [
            Transcript { acceptor_nonce: [8; 16], ..good.clone() },
            Transcript { dialler_nonce: [8; 16], ..good.clone() },
            Transcript { dialler: NodeId(3), ..good.clone() },
            Transcript { acceptor: NodeId(3), ..good.clone() },
            Transcript { cluster_id: "d".into(), ..good.clone() },
        ] {
            assert!(!changed.verify_hello(b"secret", &mac), "{changed:?}");
        }
    }

    #[test]
    fn proofs_bind_the_incarnations_told_and_nothing_bound_is_the_plain_proof() {
        let good = transcript();
        // Nothing bound (a tab's handshake): exactly the proofs of before.
        assert_eq!(good.hello_mac_bound(b"secret", BoundIncarnations::NONE, None), good.hello_mac(b"secret"));
        assert_eq!(good.welcome_mac_bound(b"secret", BoundIncarnations::NONE), good.welcome_mac(b"secret"));
        assert_eq!(BoundIncarnations::told(Some(7), None), BoundIncarnations::NONE);
        let bound = BoundIncarnations::told(Some(7), Some(9));
        let hello = good.hello_mac_bound(b"secret", bound, None);
        let welcome = good.welcome_mac_bound(b"secret", bound);
        assert!(good.verify_hello_bound(b"secret", &hello, bound, None));
        assert!(good.verify_welcome_bound(b"secret", &welcome, bound));
        // A relay that alters, strips or swaps either incarnation breaks both proofs.
        for altered in [
            BoundIncarnations::NONE,
            BoundIncarnations::told(Some(7), Some(10)),
            BoundIncarnations::told(Some(8), Some(9)),
            BoundIncarnations::told(None, Some(9)),
            BoundIncarnations::told(Some(9), Some(7)),
        ] {
            assert!(!good.verify_hello_bound(b"secret", &hello, altered, None), "{altered:?}");
            assert!(!good.verify_welcome_bound(b"secret", &welcome, altered), "{altered:?}");
        }
    }

    #[test]
    fn the_hello_proof_binds_the_address_it_gives() {
        let good = transcript();
        let address = "10.0.0.2:7002";
        let hello = |address: Option<&str>, mac: Vec<u8>| Hello {
            cluster_id: "c".into(),
            node_id: NodeId(2),
            address: address.map(Into::into),
            nonce: [2; 16],
            mac,
        };
        for bound in [BoundIncarnations::NONE, BoundIncarnations::told(Some(7), Some(9))] {
            let mac = good.hello_mac_bound(b"secret", bound, Some(address));
            assert!(good.verify_hello_bound(b"secret", &mac, bound, Some(address)));
            assert_eq!(
                good.check_hello(b"secret", &hello(Some(address), mac.clone()), bound),
                Some(HelloProof::Addressed)
            );
            // A relay that rewrites, strips or extends the address breaks the proof.
            for altered in
                [Some("10.0.0.66:7002"), Some("10.0.0.2:7003"), Some("10.0.0.2:70020"), Some(""), None]
            {
                assert!(!good.verify_hello_bound(b"secret", &mac, bound, altered), "{altered:?}");
                assert_eq!(
                    good.check_hello(b"secret", &hello(altered, mac.clone()), bound),
                    None,
                    "{altered:?}"
                );
            }
            assert!(!good.verify_hello_bound(b"other", &mac, bound, Some(address)));
            assert!(!good.verify_welcome_bound(b"secret", &mac, bound), "a hello proof is no welcome proof");
            // An address-less proof (a tab's, an old build's) never binds an address: a Hello
            // that carries one with it is authenticated, its address is not.
            let plain = good.hello_mac_bound(b"secret", bound, None);
            assert_ne!(plain, mac);
            assert!(!good.verify_hello_bound(b"secret", &plain, bound, Some(address)));
            assert_eq!(
                good.check_hello(b"secret", &hello(None, plain.clone()), bound),
                Some(HelloProof::Addressed)
            );
            assert_eq!(
                good.check_hello(b"secret", &hello(Some("10.0.0.66:1"), plain.clone()), bound),
                Some(HelloProof::AddressNotBound)
            );
            assert_eq!(good.check_hello(b"other", &hello(Some(address), plain), bound), None);
        }
        // Tabs' proofs are those of before: no address, nothing bound.
        assert_eq!(good.hello_mac_bound(b"secret", BoundIncarnations::NONE, None), good.hello_mac(b"secret"));
    }

    #[test]
    fn a_body_sealed_in_parts_is_the_frame_seal_makes_bound_to_each_session_and_sequence() {
        let body = postcard::to_allocvec(&message(5)).unwrap();
        let (head, tail) = body.split_at(3);
        let mut whole = transcript().session(b"secret", Side::Dialler).sealer;
        let mut parts = transcript().session(b"secret", Side::Dialler).sealer;
        for _ in 0..2 {
            // Same key, same sequence: byte for byte the same frame, twice in a row.
            assert_eq!(
                parts.seal_parts(FrameKind::Raft, &[head, tail]),
                whole.seal(FrameKind::Raft, &message(5))
            );
        }
        let mut receiver = transcript().session(b"secret", Side::Acceptor).opener;
        let mut sealer = transcript().session(b"secret", Side::Dialler).sealer;
        let first = sealer.seal_parts(FrameKind::Raft, &[&body]);
        assert_eq!(receiver.open::<Message>(&first, FrameKind::Raft).unwrap(), message(5));
        // The same encoded body sealed for another connection (another session key) or at the
        // next sequence number is a different frame: neither a replay nor a relay opens it.
        assert!(receiver.open::<Message>(&first, FrameKind::Raft).is_err());
        let other_connection = Transcript { dialler_nonce: [1; 16], ..transcript() };
        let elsewhere =
            other_connection.session(b"secret", Side::Dialler).sealer.seal_parts(FrameKind::Raft, &[&body]);
        assert_ne!(elsewhere, first);
        let mut fresh = transcript().session(b"secret", Side::Acceptor).opener;
        assert_eq!(
            fresh.open::<Message>(&elsewhere, FrameKind::Raft),
            Err(FrameError::BadTag { sequence: 0 })
        );
        assert_eq!(fresh.open::<Message>(&first, FrameKind::Raft).unwrap(), message(5));
    }

    #[test]
    fn a_session_refuses_forged_replayed_reordered_and_reflected_frames() {
        let (mut dialler_send, mut dialler_receive) = transcript().session(b"secret", Side::Dialler).split();
        let (mut acceptor_send, mut acceptor_receive) =
            transcript().session(b"secret", Side::Acceptor).split();
        let first = dialler_send.seal(FrameKind::Raft, &message(1));
        let second = dialler_send.seal(FrameKind::Raft, &message(2));
        // Reordered: the second frame first.
        let mut receiver = transcript().session(b"secret", Side::Acceptor).opener;
        assert_eq!(
            receiver.open::<Message>(&second, FrameKind::Raft),
            Err(FrameError::BadTag { sequence: 0 })
        );
        // In order: accepted.
        assert_eq!(acceptor_receive.open::<Message>(&first, FrameKind::Raft).unwrap(), message(1));
        // Replayed: refused.
        assert!(acceptor_receive.open::<Message>(&first, FrameKind::Raft).is_err());
        assert_eq!(acceptor_receive.open::<Message>(&second, FrameKind::Raft).unwrap(), message(2));
        // Forged: a frame sealed with another secret, or an untagged frame, or a flipped bit.
        let mut forger = transcript().session(b"guess", Side::Dialler).sealer;
        forger.sequence = 2;
        let forged = forger.seal(FrameKind::Raft, &message(3));
        assert!(matches!(
            acceptor_receive.open::<Message>(&forged, FrameKind::Raft),
            Err(FrameError::BadTag { .. })
        ));
        let mut third = dialler_send.seal(FrameKind::Raft, &message(3));
        third[4] ^= 1;
        assert!(acceptor_receive.open::<Message>(&third, FrameKind::Raft).is_err());
        assert!(acceptor_receive
            .open::<Message>(&encode_frame(FrameKind::Raft, &message(3)), FrameKind::Raft)
            .is_err());
        // Reflected: the acceptor's own frame sent back to it.
        let own = acceptor_send.seal(FrameKind::Raft, &message(4));
        let mut fresh = transcript().session(b"secret", Side::Acceptor).opener;
        assert!(fresh.open::<Message>(&own, FrameKind::Raft).is_err());
        assert_eq!(dialler_receive.open::<Message>(&own, FrameKind::Raft).unwrap(), message(4));
        // Garbage never panics.
        for garbage in
            [&[][..], &[PROTOCOL_VERSION], &[PROTOCOL_VERSION, 16], &[1, 16, 0, 0], &[PROTOCOL_VERSION; 40]]
        {
            assert!(fresh.open::<Message>(garbage, FrameKind::Raft).is_err());
        }
    }
}
