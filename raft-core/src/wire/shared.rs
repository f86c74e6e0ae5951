//! `RaftShared` frames: one AppendEntries whose entries travel as separately hashed parts, so
//! that a leader sending the same entries to many peers hashes them once, not once per
//! connection (issue #13's 8-tab figure: SHA-256 over every tab's whole frame was a fifth of
//! the leader's cost per tab).
//!
//! **Layout** (all lengths `u32` little-endian):
//! `[version][kind = 17][head_len][head][n][len_1 … len_n][part_1 … part_n][tag]`, where
//! `head` is `postcard(message)` of the AppendEntries with no entries and each part is a run
//! of `postcard(entry)` back to back; the message is the head with every part's entries
//! appended, in order.
//!
//! **Tag.** `HMAC(direction key, sequence ‖ version ‖ kind ‖ head_len ‖ head ‖ n ‖ len_1 … len_n
//! ‖ SHA-256(part_1) ‖ … ‖ SHA-256(part_n))` truncated to 16 bytes: every byte of the frame but
//! the parts themselves is under the HMAC directly, and each part through its SHA-256, whose
//! length is fixed and whose position is bound by the length table before it. Forging,
//! swapping, truncating or extending a part means forging the HMAC or finding another part of
//! the same SHA-256. That is one more assumption than a `Raft` frame's tag (HMAC needs no
//! collision resistance of its hash): clients choose entry payloads, so a client that could make
//! two commands collide, submit one and relay the other to a tab could swap them. So these tags
//! rest on SHA-256's collision resistance (no collision of SHA-256 is known; certificate
//! signatures rest on it too). The sequence number and the direction key protect against
//! replay, reorder and reflection exactly as for every other tagged frame (see the module
//! above). The tag input starts like
//! a `Raft` frame's (`sequence ‖ version ‖ kind`) and differs at the kind byte, so a tag of one
//! kind never verifies a frame of the other.
//!
//! **Reading.** [`Opener`](super::Opener) reads only the length fields before the tag is
//! checked, each bounds-checked against the frame (whose size the transport limits), with
//! checked arithmetic, and allocates nothing; the lengths must account for every byte of the
//! frame. Only then does it decode the head and parts.
//!
//! **Who receives them.** Only a peer that said in its handshake that it reads them
//! ([`FEATURE_SHARED_FRAMES`]): a build from before them would refuse the unknown kind and
//! close the connection.

use super::{keyed, FrameError, FrameKind, HmacSha256, Opener, Sealer, PROTOCOL_VERSION, TAG_BYTES};
use crate::{Entry, Message, MessageBody};
use alloc::string::ToString;
use alloc::vec::Vec;
use hmac::Mac;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

/// Feature bit of a dialler's `Hello` or `Join`: "send me `RaftShared` frames". It travels as
/// one byte after the frame's postcard body, which builds from before it ignore (postcard reads
/// a body and leaves the rest); see [`encode_frame_with_features`].
///
/// The bit is not under the handshake proof, and needs not be: both frame kinds are
/// authenticated alike, so a relay that strips it only makes the leader hash more, and one
/// that adds it to an older tab only gets a connection closed, which dropping it does as well.
pub const FEATURE_SHARED_FRAMES: u8 = 1;

/// Most parts a `RaftShared` frame may have. A sender makes one per shared list it merges into
/// one AppendEntries (at most `write_batch_messages_max` of native-node, 256 by default) and
/// never an empty one. A reader hashes every part before it can check the tag, and a part
/// costs a SHA-256 run however short, so it refuses more parts, or an empty one, before
/// hashing any: 2^20 empty parts in 4 MiB cost some 40 times a forged `Raft` frame of that size.
pub const SHARED_PARTS_MAX: usize = 1024;

/// SHA-256 of one part, as the tag binds it: computed once per part by a sender that sends the
/// part on many connections.
pub fn part_digest(part: &[u8]) -> [u8; 32] {
    Sha256::digest(part).into()
}

/// Encodes an untagged handshake frame with `features` after its body (none when 0).
pub fn encode_frame_with_features<T: Serialize>(kind: FrameKind, body: &T, features: u8) -> Vec<u8> {
    let mut frame = super::encode_frame(kind, body);
    if features != 0 {
        frame.push(features);
    }
    frame
}

/// Decodes an untagged handshake frame like [`super::decode_frame`] and returns the feature
/// byte after its body (0 when there is none: an older build's frame).
///
/// # Errors
/// As [`super::decode_frame`].
pub fn decode_frame_with_features<T: DeserializeOwned>(
    frame: &[u8],
    expected: FrameKind,
) -> Result<(T, u8), FrameError> {
    let value = super::decode_frame::<T>(frame, expected)?;
    let (_, body) = super::split_header(frame)?;
    let rest = postcard::take_from_bytes::<T>(body).map_or(&[][..], |(_, rest)| rest);
    Ok((value, rest.first().copied().unwrap_or(0)))
}

/// A part of the entries: its bytes and their [`part_digest`].
pub type SharedPart<'a> = (&'a [u8], &'a [u8; 32]);

/// The fields of a `RaftShared` frame's body (between the kind byte and the tag), bounds-checked.
struct Layout<'f> {
    /// `head_len ‖ head ‖ n ‖ lengths`: the bytes after the kind that the HMAC reads directly.
    header: &'f [u8],
    head: &'f [u8],
    lengths: &'f [u8],
    parts: &'f [u8],
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    usize::try_from(u32::from_le_bytes([field[0], field[1], field[2], field[3]])).ok()
}

impl<'f> Layout<'f> {
    /// Splits `body` by its length fields; `None` unless they are in bounds and account for
    /// every byte. Reads nothing but the lengths and allocates nothing.
    fn parse(body: &'f [u8]) -> Option<Layout<'f>> {
        let head_len = read_u32(body, 0)?;
        let head_end = 4usize.checked_add(head_len)?;
        let count = read_u32(body, head_end)?;
        if count > SHARED_PARTS_MAX {
            return None;
        }
        let lengths_start = head_end.checked_add(4)?;
        let lengths_end = lengths_start.checked_add(count.checked_mul(4)?)?;
        let lengths = body.get(lengths_start..lengths_end)?;
        let mut total = 0usize;
        for length in lengths.chunks_exact(4) {
            let length = read_u32(length, 0).filter(|length| *length > 0)?;
            total = total.checked_add(length)?;
        }
        if body.len().checked_sub(lengths_end)? != total {
            return None;
        }
        Some(Layout {
            header: &body[..lengths_end],
            head: &body[4..head_end],
            lengths,
            parts: &body[lengths_end..],
        })
    }

    /// The parts, in order (lengths already checked to add up to `parts`).
    fn parts(&self) -> impl Iterator<Item = &'f [u8]> + '_ {
        let mut rest = self.parts;
        self.lengths.chunks_exact(4).map(move |length| {
            let length = read_u32(length, 0).unwrap_or(0).min(rest.len());
            let (part, tail) = rest.split_at(length);
            rest = tail;
            part
        })
    }
}

/// The tag's HMAC over a frame's header (from the version byte to the length table) and its
/// parts' digests.
fn shared_tag(
    key: &[u8; 32],
    sequence: u64,
    header: &[u8],
    digests: impl Iterator<Item = [u8; 32]>,
) -> HmacSha256 {
    let mut mac = keyed(key, &[&sequence.to_le_bytes()]);
    mac.update(&[PROTOCOL_VERSION, FrameKind::RaftShared as u8]);
    mac.update(header);
    for digest in digests {
        mac.update(&digest);
    }
    mac
}

/// Checks a `RaftShared` frame's tag under `key` at `sequence` (constant-time compare); `body`
/// is the frame without its version, kind and tag.
pub(super) fn verify(key: &[u8; 32], sequence: u64, body: &[u8], given: &[u8]) -> Result<(), FrameError> {
    let layout = Layout::parse(body).ok_or(FrameError::BadTag { sequence })?;
    shared_tag(key, sequence, layout.header, layout.parts().map(part_digest))
        .verify_truncated_left(given)
        .map_err(|_| FrameError::BadTag { sequence })
}

/// Decodes an authenticated `RaftShared` body (as returned by
/// [`Opener::open_any`](super::Opener::open_any)) into its message.
///
/// # Errors
/// [`FrameError::Body`] when the head is not an AppendEntries without entries or a part is not
/// whole entries.
pub(super) fn decode(body: &[u8]) -> Result<Message, FrameError> {
    let bad = |why: &str| FrameError::Body(why.to_string());
    let layout = Layout::parse(body).ok_or_else(|| bad("shared frame lengths do not add up"))?;
    let (mut message, rest) =
        postcard::take_from_bytes::<Message>(layout.head).map_err(|e| FrameError::Body(e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad("bytes after a shared frame's head"));
    }
    let MessageBody::AppendEntries { entries, .. } = &mut message.body else {
        return Err(bad("a shared frame's head is not an AppendEntries"));
    };
    if !entries.is_empty() {
        return Err(bad("a shared frame's head carries entries"));
    }
    for mut part in layout.parts() {
        while !part.is_empty() {
            let (entry, rest) =
                postcard::take_from_bytes::<Entry>(part).map_err(|e| FrameError::Body(e.to_string()))?;
            entries.push(entry);
            part = rest;
        }
    }
    Ok(message)
}

/// Decodes the Raft message of a frame body returned by [`Opener::open_any`], of either kind
/// that carries one (`Raft`, `RaftShared`).
///
/// # Errors
/// [`FrameError::UnexpectedKind`] for another kind, [`FrameError::Body`] when the bytes are not
/// a message.
pub fn decode_message(kind: FrameKind, body: &[u8]) -> Result<crate::Message, FrameError> {
    match kind {
        FrameKind::Raft => super::decode_body(body),
        FrameKind::RaftShared => decode(body),
        other => Err(FrameError::UnexpectedKind(other)),
    }
}

impl Opener {
    /// Records that this end asked for `RaftShared` frames (it sent [`FEATURE_SHARED_FRAMES`]
    /// in its `Join` or `Hello`): only then are they read. An opener that never asked refuses
    /// the kind as unexpected before hashing anything.
    pub fn set_reads_shared(&mut self, reads: bool) {
        self.reads_shared = reads;
    }

    /// Checks the frame's version and tag (in constant time) before anything else, then
    /// decodes its Raft message, from a `Raft` or a `RaftShared` frame. After any error the
    /// connection must be closed.
    ///
    /// # Errors
    /// [`FrameError`] naming what is wrong.
    pub fn open_message(&mut self, frame: &[u8]) -> Result<crate::Message, FrameError> {
        let (kind, body) = self.verify(frame)?;
        let message = decode_message(kind, body)?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(message)
    }
}

impl Sealer {
    /// Whether the peer said it reads `RaftShared` frames ([`FEATURE_SHARED_FRAMES`]).
    pub fn peer_reads_shared(&self) -> bool {
        self.peer_reads_shared
    }

    /// Records what the peer's handshake said it reads.
    pub fn set_peer_reads_shared(&mut self, reads: bool) {
        self.peer_reads_shared = reads;
    }

    /// Seals an AppendEntries as a `RaftShared` frame: `head` is `postcard(message)` with no
    /// entries, `parts` the encoded entries with their digests. The frame is built in one buffer
    /// of its exact size, and only the header and the digests go through this connection's
    /// HMAC. Callers check [`Sealer::peer_reads_shared`] first.
    pub fn seal_shared(&mut self, head: &[u8], parts: &[SharedPart<'_>]) -> Vec<u8> {
        let parts_len: usize = parts.iter().map(|(part, _)| part.len()).sum();
        let header_len = 2 + 4 + head.len() + 4 + 4 * parts.len();
        let mut frame = Vec::with_capacity(header_len + parts_len + TAG_BYTES);
        frame.extend_from_slice(&[PROTOCOL_VERSION, FrameKind::RaftShared as u8]);
        // Lengths beyond u32 cannot occur: frames are limited far below 4 GiB.
        frame.extend_from_slice(&(head.len() as u32).to_le_bytes());
        frame.extend_from_slice(head);
        frame.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for (part, _) in parts {
            frame.extend_from_slice(&(part.len() as u32).to_le_bytes());
        }
        let tag = shared_tag(&self.key, self.sequence, &frame[2..], parts.iter().map(|(_, digest)| **digest))
            .finalize()
            .into_bytes();
        for (part, _) in parts {
            frame.extend_from_slice(part);
        }
        frame.extend_from_slice(&tag[..TAG_BYTES]);
        self.sequence = self.sequence.wrapping_add(1);
        frame
    }
}

#[cfg(test)]
mod review;

#[cfg(test)]
mod tests {
    use super::super::tests::transcript;
    use super::super::Side;
    use super::*;
    use crate::{EntryPayload, LogIndex, NodeId, Term};
    use alloc::vec;

    fn entries(first: u64, count: u64) -> Vec<Entry> {
        (first..first + count)
            .map(|index| Entry {
                term: Term(3),
                index: LogIndex(index),
                payload: EntryPayload::Command(vec![index as u8; 40].into()),
            })
            .collect()
    }

    fn append(entries: Vec<Entry>) -> Message {
        Message {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(3),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(9),
                prev_log_term: Term(2),
                entries,
                leader_commit: LogIndex(12),
            },
        }
    }

    fn encoded(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in entries {
            out = postcard::to_extend(entry, out).unwrap();
        }
        out
    }

    /// The frames the dialler seals for `parts` (each a run of entries), in order, and the
    /// message each stands for.
    fn sealed(runs: &[&[Vec<Entry>]]) -> (Vec<Vec<u8>>, Vec<Message>) {
        let mut sealer = transcript().session(b"secret", Side::Dialler).sealer;
        let head = postcard::to_allocvec(&append(Vec::new())).unwrap();
        let mut frames = Vec::new();
        let mut messages = Vec::new();
        for parts in runs {
            let bytes: Vec<Vec<u8>> = parts.iter().map(|entries| encoded(entries)).collect();
            let digests: Vec<[u8; 32]> = bytes.iter().map(|b| part_digest(b)).collect();
            let shared: Vec<SharedPart<'_>> = bytes.iter().map(|b| &b[..]).zip(&digests).collect();
            frames.push(sealer.seal_shared(&head, &shared));
            messages.push(append(parts.iter().flatten().cloned().collect()));
        }
        (frames, messages)
    }

    /// A reader that asked for `RaftShared` frames (a tab's).
    fn opener() -> Opener {
        let mut opener = transcript().session(b"secret", Side::Acceptor).opener;
        opener.set_reads_shared(true);
        opener
    }

    /// Rewrites the frame's length field at byte `at` and re-tags nothing.
    fn with_u32(frame: &[u8], at: usize, value: u32) -> Vec<u8> {
        let mut frame = frame.to_vec();
        frame[at..at + 4].copy_from_slice(&value.to_le_bytes());
        frame
    }

    #[test]
    fn shared_frames_open_into_the_whole_message_in_order_and_only_once() {
        let (a, b, c) = (entries(10, 3), entries(13, 1), entries(14, 2));
        let (frames, messages) =
            sealed(&[&[a.clone(), b.clone(), c.clone()], &[], core::slice::from_ref(&c)]);
        let mut reader = opener();
        for (frame, message) in frames.iter().zip(&messages) {
            assert_eq!(frame.len(), frame.capacity(), "built in one buffer of its exact size");
            assert_eq!(reader.open_message(frame).as_ref(), Ok(message));
        }
        // Replayed or reordered: the sequence number is under the tag.
        assert_eq!(reader.open_message(&frames[2]), Err(FrameError::BadTag { sequence: 3 }));
        let mut fresh = opener();
        assert_eq!(fresh.open_message(&frames[1]), Err(FrameError::BadTag { sequence: 0 }));
        // Reflected: the sender's own opener (the other direction's key) refuses it.
        let mut own = transcript().session(b"secret", Side::Dialler).opener;
        own.set_reads_shared(true);
        assert_eq!(own.open_message(&frames[0]), Err(FrameError::BadTag { sequence: 0 }));
        // Another secret.
        let mut other = transcript().session(b"guess", Side::Acceptor).opener;
        other.set_reads_shared(true);
        assert_eq!(other.open_message(&frames[0]), Err(FrameError::BadTag { sequence: 0 }));
    }

    #[test]
    fn a_forged_swapped_or_resized_part_fails_the_tag() {
        let (a, b) = (entries(10, 2), entries(12, 2));
        let (frames, _) = sealed(&[&[a.clone(), b.clone()]]);
        let frame = &frames[0];
        let (swapped, _) = sealed(&[&[b.clone(), a.clone()]]);
        let head_len = u32::from_le_bytes(frame[2..6].try_into().unwrap()) as usize;
        let count_at = 6 + head_len;
        let lengths_at = count_at + 4;
        let part_len = encoded(&a).len();
        let parts_at = lengths_at + 8;
        let mut forged_part = frame.clone();
        forged_part[parts_at + 5] ^= 1;
        let mut forged_head = frame.clone();
        forged_head[7] ^= 1;
        let mut forged_tag = frame.clone();
        *forged_tag.last_mut().unwrap() ^= 1;
        // The parts' bytes swapped, under the original lengths and tag.
        let mut swapped_bytes = frame.clone();
        swapped_bytes[parts_at..parts_at + 2 * part_len]
            .copy_from_slice(&swapped[0][parts_at..parts_at + 2 * part_len]);
        assert_ne!(&swapped_bytes, frame);
        // The boundary between the parts moved by one byte: same bytes, other lengths.
        let moved =
            with_u32(&with_u32(frame, lengths_at, part_len as u32 + 1), lengths_at + 4, part_len as u32 - 1);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a flipped part byte", forged_part),
            ("a flipped head byte", forged_head),
            ("a flipped tag byte", forged_tag),
            ("the parts swapped", swapped_bytes),
            ("a moved boundary", moved),
        ];
        for (case, bad) in cases {
            assert_eq!(opener().open_message(&bad), Err(FrameError::BadTag { sequence: 0 }), "{case}");
        }
        assert!(opener().open_message(frame).is_ok());
    }

    #[test]
    fn lengths_that_do_not_add_up_fail_before_any_decoding() {
        let (frames, _) = sealed(&[&[entries(10, 2), entries(12, 1)]]);
        let frame = &frames[0];
        let head_len = u32::from_le_bytes(frame[2..6].try_into().unwrap()) as usize;
        let count_at = 6 + head_len;
        let mut truncated = frame.clone();
        truncated.remove(frame.len() - TAG_BYTES - 1);
        let mut extended = frame.clone();
        extended.insert(frame.len() - TAG_BYTES, 0);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a part truncated", truncated),
            ("a byte added", extended),
            ("head length past the end", with_u32(frame, 2, u32::MAX)),
            ("head length short", with_u32(frame, 2, head_len as u32 - 1)),
            ("a count past the end", with_u32(frame, count_at, u32::MAX)),
            ("a count one more", with_u32(frame, count_at, 3)),
            ("a count one less", with_u32(frame, count_at, 1)),
            (
                "lengths that overflow",
                with_u32(&with_u32(frame, count_at + 4, u32::MAX), count_at + 8, u32::MAX),
            ),
            ("only a header", frame[..count_at].to_vec()),
            ("no body", vec![PROTOCOL_VERSION, FrameKind::RaftShared as u8]),
            ("a tag only", [&[PROTOCOL_VERSION, FrameKind::RaftShared as u8][..], &[0; TAG_BYTES]].concat()),
        ];
        for (case, bad) in cases {
            let error = opener().open_message(&bad).unwrap_err();
            assert!(
                matches!(error, FrameError::BadTag { sequence: 0 } | FrameError::TooShort),
                "{case}: {error:?}"
            );
        }
    }

    #[test]
    fn an_authenticated_shared_frame_that_is_not_entries_is_refused() {
        let mut sealer = transcript().session(b"secret", Side::Dialler).sealer;
        let heartbeat = Message {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(3),
            body: MessageBody::HeartbeatResponse { context: 1 },
        };
        let not_append = postcard::to_allocvec(&heartbeat).unwrap();
        let with_entries = postcard::to_allocvec(&append(entries(10, 1))).unwrap();
        let head = postcard::to_allocvec(&append(Vec::new())).unwrap();
        let half = encoded(&entries(10, 1));
        let half = &half[..half.len() - 1];
        let digest = part_digest(half);
        let frames = [
            sealer.seal_shared(&not_append, &[]),
            sealer.seal_shared(&with_entries, &[]),
            sealer.seal_shared(&[&head[..], &[0]].concat(), &[]),
            sealer.seal_shared(&head, &[(half, &digest)]),
        ];
        for (sequence, frame) in frames.iter().enumerate() {
            let mut opener = opener();
            for _ in 0..sequence {
                opener.sequence += 1;
            }
            assert!(matches!(opener.open_message(frame), Err(FrameError::Body(_))), "{sequence}");
        }
    }

    #[test]
    fn the_feature_byte_rides_after_the_body_and_older_readers_ignore_it() {
        use super::super::{decode_frame, Hello};
        let hello = Hello {
            cluster_id: "c".into(),
            node_id: NodeId(5),
            address: None,
            nonce: [1; 16],
            mac: vec![2; 32],
        };
        let with = encode_frame_with_features(FrameKind::Hello, &hello, FEATURE_SHARED_FRAMES);
        let without = encode_frame_with_features(FrameKind::Hello, &hello, 0);
        assert_eq!(without, super::super::encode_frame(FrameKind::Hello, &hello));
        assert_eq!(with.len(), without.len() + 1);
        // An older build reads the frame as it always did.
        assert_eq!(decode_frame::<Hello>(&with, FrameKind::Hello).unwrap().mac, hello.mac);
        let (_, features) = decode_frame_with_features::<Hello>(&with, FrameKind::Hello).unwrap();
        assert_eq!(features, FEATURE_SHARED_FRAMES);
        let (_, features) = decode_frame_with_features::<Hello>(&without, FrameKind::Hello).unwrap();
        assert_eq!(features, 0);
    }
}
