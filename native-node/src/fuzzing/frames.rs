//! The sealed frames of an authenticated connection, read by the code the node runs, and
//! checked by oracles that do not trust that code:
//! - **tag and sequence**: a frame the reader opens must be, byte for byte, the frame the
//!   authenticated peer's own sealer makes for the same body at the next sequence number
//!   ([`Mirror`]). So a frame sealed under another key (another secret, another connection's
//!   transcript), replayed, reordered, truncated or reflected back at its sender cannot be
//!   opened without this failing, whatever the reader's bug;
//! - **sender and recipient**: the transport's check ([`crate::transport::check_addressed`])
//!   must let through exactly the messages that name the authenticated peer as sender and this
//!   node as recipient: never a forged `from` (a peer, or a tab, speaking for another), and no
//!   honest message refused.
//!
//! The unit tests below feed known-bad readers (one that forgets the sequence, one holding the
//! wrong key, one that accepts its own frames, an address check that believes anything) and
//! show that each oracle fails on them.

use crate::peer_auth::{FrameKind, Opener, Sealer, Side, TabStatus, Transcript};
use raft_core::{Message, NodeId};
use serde::Serialize;
use std::fmt::Debug;

/// Frames a connection carries after the handshake, at most.
pub(super) const FRAMES_MAX: usize = 64;

/// What a reader made of one sealed frame.
#[derive(Debug)]
pub(super) enum Opened {
    /// A Raft message.
    Raft(Message),
    /// A tab's storage status (only on a tab's connection).
    Status(TabStatus),
}

/// The check of a message's sender and recipient on `peer`'s connection to `me`.
pub(super) type AddressCheck = fn(&Message, NodeId, NodeId) -> Result<(), String>;

/// The sealers of both ends of an honest connection, kept in step with the reader: what the
/// reader opens must be what the peer sealed at that sequence, and never what this end sealed.
pub(super) struct Mirror {
    peer: Sealer,
    own: Sealer,
}

impl Mirror {
    /// The honest sealers of the connection of `transcript` under `key`, for the end on `side`.
    pub(super) fn new(transcript: &Transcript, key: &[u8], side: Side) -> Mirror {
        let peer_side = match side {
            Side::Acceptor => Side::Dialler,
            Side::Dialler => Side::Acceptor,
        };
        Mirror { peer: transcript.session(key, peer_side).sealer, own: transcript.session(key, side).sealer }
    }

    /// Oracle: `frame`, opened as `body` of `kind`, is the peer's seal of it at the next
    /// sequence number, and not this end's own (a reflected frame).
    fn check<T: Serialize + Debug>(&mut self, frame: &[u8], kind: FrameKind, body: &T) {
        let sealed_by_peer = self.peer.seal(kind, body);
        let sealed_by_us = self.own.seal(kind, body);
        assert_ne!(sealed_by_peer, sealed_by_us, "both directions of a connection share a key");
        assert!(
            frame == sealed_by_peer,
            "opened a {kind:?} frame the peer did not seal at this sequence (forged, replayed, reordered or \
             reflected): {body:?}"
        );
    }
}

impl Mirror {
    /// Oracle for a Raft message: of a `Raft` frame as [`Mirror::check`]; of a `RaftShared`
    /// frame, `frame` must be the peer's seal, at the next sequence number, of the head and
    /// parts it carries (split here by this oracle's own reading of the lengths), and
    /// `message` must be that head with those parts' entries: the head re-encodes `message`
    /// without entries and the parts concatenated re-encode its entries.
    fn check_raft(&mut self, frame: &[u8], message: &Message) {
        if frame.get(1) != Some(&(FrameKind::RaftShared as u8)) {
            return self.check(frame, FrameKind::Raft, message);
        }
        let u32_at = |at: usize| u32::from_le_bytes(frame[at..at + 4].try_into().expect("4 bytes")) as usize;
        let head_len = u32_at(2);
        let head = &frame[6..6 + head_len];
        let count = u32_at(6 + head_len);
        let mut at = 6 + head_len + 4 + 4 * count;
        let mut parts = Vec::new();
        for i in 0..count {
            let length = u32_at(6 + head_len + 4 + 4 * i);
            parts.push(&frame[at..at + length]);
            at += length;
        }
        let digests: Vec<[u8; 32]> = parts.iter().map(|part| crate::peer_auth::part_digest(part)).collect();
        let shared: Vec<crate::peer_auth::SharedPart<'_>> = parts.iter().copied().zip(&digests).collect();
        let sealed_by_peer = self.peer.seal_shared(head, &shared);
        let sealed_by_us = self.own.seal_shared(head, &shared);
        assert_ne!(sealed_by_peer, sealed_by_us, "both directions of a connection share a key");
        assert!(
            frame == sealed_by_peer,
            "opened a RaftShared frame the peer did not seal at this sequence (forged, replayed, reordered, \
             reflected or resized): {message:?}"
        );
        let mut without = message.clone();
        let raft_core::MessageBody::AppendEntries { entries, .. } = &mut without.body else {
            panic!("a RaftShared frame opened as another message than an AppendEntries: {message:?}");
        };
        let mut encoded = Vec::new();
        for entry in entries.drain(..) {
            encoded = postcard::to_extend(&entry, encoded).expect("entries encode");
        }
        assert_eq!(postcard::to_allocvec(&without).expect("encodes"), head, "the head is not the message's");
        assert_eq!(encoded, parts.concat(), "the parts are not the message's entries");
    }
}

/// One authenticated connection's reading end.
pub(super) struct Connection {
    /// The authenticated peer.
    pub peer: NodeId,
    /// This end.
    pub me: NodeId,
    /// The honest sealers, in step with the reader.
    pub mirror: Mirror,
    /// The transport's check of sender and recipient.
    pub address_check: AddressCheck,
}

impl Connection {
    /// An authenticated connection of `transcript` under `key`, read by the end on `side`, with
    /// the transport's own address check.
    pub(super) fn new(transcript: &Transcript, key: &[u8], side: Side) -> Connection {
        let (peer, me) = match side {
            Side::Acceptor => (transcript.dialler, transcript.acceptor),
            Side::Dialler => (transcript.acceptor, transcript.dialler),
        };
        Connection {
            peer,
            me,
            mirror: Mirror::new(transcript, key, side),
            address_check: crate::transport::check_addressed,
        }
    }

    /// Reads `frames` with `open` (the reader under test; `None` closes the connection, as any
    /// refused frame does) and returns the Raft messages it delivers, checking every oracle.
    pub(super) fn read<'a>(
        mut self,
        mut open: impl FnMut(&[u8]) -> Option<Opened>,
        frames: impl Iterator<Item = &'a [u8]>,
    ) -> Vec<Message> {
        let mut messages = Vec::new();
        for frame in frames.take(FRAMES_MAX) {
            let Some(opened) = open(frame) else { break };
            match opened {
                Opened::Status(status) => {
                    self.mirror.check(frame, FrameKind::TabStatus, &status);
                    if status.voter_refusal().is_none() {
                        assert!(status.backend.is_durable() && status.persistent, "{status:?} may vote");
                    }
                }
                Opened::Raft(message) => {
                    self.mirror.check_raft(frame, &message);
                    let passed = (self.address_check)(&message, self.peer, self.me).is_ok();
                    let honest = message.from == self.peer && message.to == self.me;
                    assert_eq!(
                        passed, honest,
                        "the address check on node {}'s connection to node {} decided {passed} for {message:?}",
                        self.peer, self.me
                    );
                    if !passed {
                        break;
                    }
                    messages.push(message);
                }
            }
        }
        messages
    }
}

/// The node's reader of a native peer's connection (as `Transport::deliver` for a node):
/// Raft frames only.
pub(super) fn open_raft(opener: &mut Opener) -> impl FnMut(&[u8]) -> Option<Opened> + '_ {
    move |frame: &[u8]| opener.open_message(frame).ok().map(Opened::Raft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::{honest_transcript, SECRET};
    use raft_core::{MessageBody, Term};

    fn message(from: u64, to: u64, context: u64) -> Message {
        Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(1),
            body: MessageBody::Heartbeat { commit: raft_core::LogIndex(0), context },
        }
    }

    /// Node 2 (the dialler) seals these for node 1.
    fn sealed(key: &[u8], side: Side, messages: &[Message]) -> Vec<Vec<u8>> {
        let mut sealer = honest_transcript().session(key, side).sealer;
        messages.iter().map(|m| sealer.seal(FrameKind::Raft, m)).collect()
    }

    /// Node 1 reads `frames` with `open`, made from its honest opener; `Err` if an oracle failed.
    fn node_1_reads(
        frames: &[Vec<u8>],
        address_check: AddressCheck,
        mut open: impl FnMut(&[u8]) -> Option<Opened>,
    ) -> std::thread::Result<Vec<Message>> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut connection = Connection::new(&honest_transcript(), SECRET, Side::Acceptor);
            connection.address_check = address_check;
            connection.read(&mut open, frames.iter().map(|f| &f[..]))
        }))
    }

    fn honest_opener() -> Opener {
        honest_transcript().session(SECRET, Side::Acceptor).opener
    }

    #[test]
    fn honest_frames_are_delivered_and_bad_ones_close_the_connection() {
        let honest = [message(2, 1, 1), message(2, 1, 2)];
        let frames = sealed(SECRET, Side::Dialler, &honest);
        let mut opener = honest_opener();
        let read = node_1_reads(&frames, crate::transport::check_addressed, open_raft(&mut opener));
        assert_eq!(read.expect("no oracle fails on honest frames"), honest);
        // Replayed, reordered, a forged sender: the real reader delivers what came before.
        for (bad, delivered) in [
            (vec![frames[0].clone(), frames[0].clone()], 1),
            (vec![frames[1].clone(), frames[0].clone()], 0),
            (sealed(SECRET, Side::Dialler, &[message(2, 1, 1), message(3, 1, 2)]), 1),
        ] {
            let mut opener = honest_opener();
            let read = node_1_reads(&bad, crate::transport::check_addressed, open_raft(&mut opener));
            assert_eq!(read.expect("no oracle fails on a refusal").len(), delivered);
        }
    }

    #[test]
    fn a_reader_that_forgets_the_sequence_is_caught() {
        let frames = sealed(SECRET, Side::Dialler, &[message(2, 1, 1)]);
        let replayed = vec![frames[0].clone(), frames[0].clone()];
        // A fresh opener per frame: every frame is checked as the first one.
        let read = node_1_reads(&replayed, crate::transport::check_addressed, |frame| {
            honest_opener().open::<Message>(frame, FrameKind::Raft).ok().map(Opened::Raft)
        });
        assert!(read.is_err(), "a replayed frame was opened and no oracle failed");
    }

    #[test]
    fn a_reader_with_another_key_is_caught() {
        let forged = sealed(b"not the secret", Side::Dialler, &[message(2, 1, 1)]);
        let mut opener = honest_transcript().session(b"not the secret", Side::Acceptor).opener;
        let read = node_1_reads(&forged, crate::transport::check_addressed, open_raft(&mut opener));
        assert!(read.is_err(), "a frame sealed without the secret was opened and no oracle failed");
    }

    #[test]
    fn a_reader_that_opens_its_own_frames_is_caught() {
        // Node 1's own frame, reflected back at it, read with node 1's sending key.
        let reflected = sealed(SECRET, Side::Acceptor, &[message(2, 1, 1)]);
        let mut opener = honest_transcript().session(SECRET, Side::Dialler).opener;
        let read = node_1_reads(&reflected, crate::transport::check_addressed, open_raft(&mut opener));
        assert!(read.is_err(), "a reflected frame was opened and no oracle failed");
    }

    #[test]
    fn an_address_check_that_believes_a_forged_sender_is_caught() {
        let frames = sealed(SECRET, Side::Dialler, &[message(3, 1, 1)]);
        let mut opener = honest_opener();
        let read = node_1_reads(&frames, |_, _, _| Ok(()), open_raft(&mut opener));
        assert!(read.is_err(), "a message from node 3 on node 2's connection was delivered");
        let mut opener = honest_opener();
        let honest = sealed(SECRET, Side::Dialler, &[message(2, 1, 1)]);
        let read = node_1_reads(&honest, |_, _, _| Err("no".into()), open_raft(&mut opener));
        assert!(read.is_err(), "an honest message refused and no oracle failed");
    }

    /// Node 2 seals AppendEntries of `count` entries each as `RaftShared` frames, entries in
    /// two parts.
    fn sealed_shared(key: &[u8], side: Side, count: usize) -> (Vec<Vec<u8>>, Vec<Message>) {
        use raft_core::{Entry, EntryPayload, LogIndex, MessageBody};
        let mut sealer = honest_transcript().session(key, side).sealer;
        let mut frames = Vec::new();
        let mut messages = Vec::new();
        for n in 0..count as u64 {
            let entries: Vec<Entry> = (0..4)
                .map(|i| Entry {
                    term: Term(1),
                    index: LogIndex(n * 4 + i + 1),
                    payload: EntryPayload::Command(vec![i as u8; 8].into()),
                })
                .collect();
            let head = Message {
                from: NodeId(2),
                to: NodeId(1),
                term: Term(1),
                body: MessageBody::AppendEntries {
                    prev_log_index: LogIndex(n * 4),
                    prev_log_term: Term(1),
                    entries: Vec::new(),
                    leader_commit: LogIndex(0),
                },
            };
            let encode = |run: &[Entry]| {
                run.iter().fold(Vec::new(), |out, entry| postcard::to_extend(entry, out).unwrap())
            };
            let parts = [encode(&entries[..1]), encode(&entries[1..])];
            let digests = parts.each_ref().map(|part| crate::peer_auth::part_digest(part));
            let head_bytes = postcard::to_allocvec(&head).unwrap();
            frames
                .push(sealer.seal_shared(&head_bytes, &[(&parts[0], &digests[0]), (&parts[1], &digests[1])]));
            let mut message = head;
            if let MessageBody::AppendEntries { entries: into, .. } = &mut message.body {
                *into = entries;
            }
            messages.push(message);
        }
        (frames, messages)
    }

    /// An opener of this connection that asked for `RaftShared` frames (as a tab's does).
    fn shared_reader(key: &[u8], side: Side) -> Opener {
        let mut opener = honest_transcript().session(key, side).opener;
        opener.set_reads_shared(true);
        opener
    }

    #[test]
    fn shared_frames_are_delivered_and_a_bad_reader_of_them_is_caught() {
        let (frames, messages) = sealed_shared(SECRET, Side::Dialler, 2);
        // A native node never asks for them, so it delivers none (review finding 2).
        let mut opener = honest_opener();
        let read = node_1_reads(&frames, crate::transport::check_addressed, open_raft(&mut opener));
        assert_eq!(read.expect("no oracle fails on a refusal"), Vec::new());
        // A reader that asked for them delivers them.
        let mut opener = shared_reader(SECRET, Side::Acceptor);
        let read = node_1_reads(&frames, crate::transport::check_addressed, open_raft(&mut opener));
        assert_eq!(read.expect("no oracle fails on honest shared frames"), messages);
        // A reader that forgets the sequence opens a replayed shared frame: caught.
        let replayed = vec![frames[0].clone(), frames[0].clone()];
        let read = node_1_reads(&replayed, crate::transport::check_addressed, |frame| {
            shared_reader(SECRET, Side::Acceptor).open_message(frame).ok().map(Opened::Raft)
        });
        assert!(read.is_err(), "a replayed shared frame was opened and no oracle failed");
        // A reader holding the wrong key, and one reading its own (reflected) frames: caught.
        let (forged, _) = sealed_shared(b"not the secret", Side::Dialler, 1);
        let mut opener = shared_reader(b"not the secret", Side::Acceptor);
        let read = node_1_reads(&forged, crate::transport::check_addressed, open_raft(&mut opener));
        assert!(read.is_err(), "a shared frame sealed without the secret was opened");
        let (reflected, _) = sealed_shared(SECRET, Side::Acceptor, 1);
        let mut opener = shared_reader(SECRET, Side::Dialler);
        let read = node_1_reads(&reflected, crate::transport::check_addressed, open_raft(&mut opener));
        assert!(read.is_err(), "a reflected shared frame was opened and no oracle failed");
    }
}
