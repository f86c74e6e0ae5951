//! Property tests of what the node reads from outside: peer frames of every kind survive their
//! encoding; a log written batch by batch replays to the same log, and a cut anywhere (the
//! process died mid-write) replays to the records written whole before the cut.

use native_node::transport::{
    decode_frame, encode_frame, Challenge, FrameError, FrameKind, Hello, Reject, Welcome,
};
use native_node::wal::{encode_record, replay_bytes, WalState};
use proptest::collection::vec;
use proptest::prelude::*;
use raft_core::{
    Bytes, Entry, EntryPayload, HardState, LogIndex, Membership, Message, MessageBody, NodeId, Term,
};

fn entry_at(index: u64, term: u64, data: Vec<u8>, membership: bool) -> Entry {
    let payload = if membership {
        EntryPayload::Membership(Box::new(Membership::with_voters(
            data.iter().map(|&b| NodeId(u64::from(b))),
        )))
    } else if data.is_empty() {
        EntryPayload::Noop
    } else {
        EntryPayload::Command(Bytes::from(data))
    };
    Entry { term: Term(term), index: LogIndex(index), payload }
}

fn message() -> impl Strategy<Value = Message> {
    let entries = vec((any::<u64>(), vec(any::<u8>(), 0..32), any::<bool>()), 0..5);
    (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>(), entries).prop_map(
        |(from, to, term, prev, commit, entries)| Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(term),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(prev),
                prev_log_term: Term(term),
                entries: entries
                    .into_iter()
                    .enumerate()
                    .map(|(k, (t, d, m))| entry_at(prev.wrapping_add(k as u64 + 1), t, d, m))
                    .collect(),
                leader_commit: LogIndex(commit),
            },
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_frame_kind_survives_its_encoding(
        cluster in ".{0,24}",
        id in any::<u64>(),
        nonce in any::<[u8; 16]>(),
        mac in vec(any::<u8>(), 0..40),
        address in proptest::option::of(".{0,24}"),
        message in message(),
    ) {
        let challenge = Challenge { cluster_id: cluster.clone(), node_id: NodeId(id), nonce };
        let frame = encode_frame(FrameKind::Challenge, &challenge);
        let decoded: Challenge = decode_frame(&frame, FrameKind::Challenge).unwrap();
        prop_assert_eq!((decoded.cluster_id, decoded.node_id, decoded.nonce), (cluster.clone(), NodeId(id), nonce));

        let hello = Hello { cluster_id: cluster.clone(), node_id: NodeId(id), address: address.clone(), nonce, mac: mac.clone() };
        let frame = encode_frame(FrameKind::Hello, &hello);
        let decoded: Hello = decode_frame(&frame, FrameKind::Hello).unwrap();
        prop_assert_eq!((decoded.cluster_id, decoded.address, decoded.mac), (cluster.clone(), address, mac.clone()));

        let frame = encode_frame(FrameKind::Welcome, &Welcome { mac: mac.clone() });
        prop_assert_eq!(decode_frame::<Welcome>(&frame, FrameKind::Welcome).unwrap().mac, mac);

        let frame = encode_frame(FrameKind::Reject, &Reject { reason: cluster.clone() });
        prop_assert_eq!(decode_frame::<Reject>(&frame, FrameKind::Reject).unwrap().reason, cluster.clone());
        // A refusal read where another kind was expected says so, with the reason.
        let error = decode_frame::<Welcome>(&frame, FrameKind::Welcome).unwrap_err();
        prop_assert_eq!(error, FrameError::Body(format!("refused by peer: {cluster}")));

        let frame = encode_frame(FrameKind::Raft, &message);
        prop_assert_eq!(decode_frame::<Message>(&frame, FrameKind::Raft).unwrap(), message);
        // And a frame is never read as another kind.
        prop_assert!(decode_frame::<Message>(&frame, FrameKind::Hello).is_err());
    }

    #[test]
    fn arbitrary_frames_never_panic(bytes in vec(any::<u8>(), 0..128)) {
        let _ = decode_frame::<Message>(&bytes, FrameKind::Raft);
        let _ = decode_frame::<Hello>(&bytes, FrameKind::Hello);
        let _ = decode_frame::<Challenge>(&bytes, FrameKind::Challenge);
        let _ = decode_frame::<Welcome>(&bytes, FrameKind::Welcome);
    }
}

/// A batch as the driver persists it: the hard state, a reset (snapshot installed) flag, and
/// entries that replace the log from the first one's index on.
#[derive(Clone, Debug)]
struct Batch {
    hard_state: HardState,
    reset: bool,
    entries: Vec<Entry>,
}

/// Batches a node could write: each starts within or right after the log (a leader's
/// overwrite of an uncommitted suffix, or an append), or anywhere after a reset.
fn batches() -> impl Strategy<Value = Vec<Batch>> {
    vec(
        (
            any::<u8>(),
            0usize..4,
            any::<bool>(),
            proptest::sample::select(vec![false, false, false, true]),
            any::<u16>(),
        ),
        1..12,
    )
    .prop_map(|choices| {
        let mut last = 0u64;
        let mut first_kept = 1u64;
        let mut out = Vec::new();
        for (k, (pick, count, membership, reset, jump)) in choices.into_iter().enumerate() {
            let term = k as u64 + 1;
            let first = if reset {
                let first = last + 1 + u64::from(jump % 50);
                first_kept = first;
                first
            } else {
                first_kept + u64::from(pick) % (last + 2 - first_kept)
            };
            let entries: Vec<Entry> = (0..count as u64)
                .map(|i| entry_at(first + i, term, vec![k as u8, i as u8], membership && i == 0))
                .collect();
            if let Some(entry) = entries.last() {
                last = entry.index.0;
            } else if reset {
                last = first - 1;
            }
            let hard_state = HardState { term: Term(term), voted_for: Some(NodeId(1)), commit: LogIndex(0) };
            out.push(Batch { hard_state, reset, entries });
        }
        out
    })
}

/// What replaying the first `count` batches must give.
fn model(batches: &[Batch]) -> WalState {
    let mut state = WalState::default();
    for batch in batches {
        if batch.reset {
            state.entries.clear();
        }
        if let Some(first) = batch.entries.first() {
            state.entries.retain(|e| e.index < first.index);
            state.entries.extend(batch.entries.iter().cloned());
        }
        state.hard_state = Some(batch.hard_state);
    }
    state
}

fn records(batches: &[Batch]) -> Vec<Vec<u8>> {
    batches.iter().map(|b| encode_record(&b.hard_state, b.reset, &b.entries).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_log_replays_to_what_was_written(batches in batches(), slack in 0usize..64) {
        let mut segment: Vec<u8> = records(&batches).concat();
        segment.extend(std::iter::repeat_n(0, slack));
        let (state, torn) = replay_bytes(&[&segment]).unwrap();
        let expected = model(&batches);
        prop_assert_eq!((state.hard_state, state.entries, torn), (expected.hard_state, expected.entries, None));
    }

    /// The process dies with the file written up to `cut` (later bytes still the preallocated
    /// zeros): the log replays to the records written whole before the cut, and a record
    /// begun but not finished is reported torn (the node erases it). Under the strict torn-tail
    /// rule, a cut inside the record's header (its checksum fails, so its length cannot be
    /// trusted) or inside its trailer is refused instead: never a silent drop.
    #[test]
    fn a_cut_anywhere_replays_to_the_whole_records_before_it(
        batches in batches(),
        cut in any::<prop::sample::Index>(),
        split in any::<prop::sample::Index>(),
    ) {
        let records = records(&batches);
        let ends: Vec<usize> = records.iter().scan(0, |end, r| { *end += r.len(); Some(*end) }).collect();
        let total = *ends.last().unwrap();
        let cut = cut.index(total + 1);
        let written: Vec<u8> = records.concat();
        let mut bytes = written.clone();
        bytes[cut..].iter_mut().for_each(|b| *b = 0);
        bytes.extend([0u8; 16]);
        // Whole: every byte reached the disk (a cut among a record's final zero bytes loses
        // nothing of it).
        let whole = ends.iter().take_while(|&&end| end <= cut || written[cut..end].iter().all(|&b| b == 0)).count();
        // The same, with the records before some boundary in an earlier segment.
        let boundary = split.index(whole + 1);
        let at = if boundary == 0 { 0 } else { ends[boundary - 1] };
        let start = if whole == 0 { 0 } else { ends[whole - 1] };
        for segments in [vec![&bytes[..]], vec![&bytes[..at], &bytes[at..]]] {
            let (state, torn) = match replay_bytes(&segments) {
                Ok(replayed) => replayed,
                Err(error) => {
                    // Only a cut inside the next record's header or trailer may refuse.
                    prop_assert!(whole < records.len(), "{error}");
                    let within = cut - start;
                    prop_assert!(within < 12 || within > records[whole].len() - 8, "{error} (cut {within} into the record)");
                    continue;
                }
            };
            let expected = model(&batches[..whole]);
            prop_assert_eq!(&state.hard_state, &expected.hard_state);
            prop_assert_eq!(&state.entries, &expected.entries);
            if let Some(offset) = torn {
                prop_assert_eq!(offset + if segments.len() == 2 { at } else { 0 }, start);
            }
        }
    }

    /// A flipped bit in the payload of a record that later records follow is corruption: the
    /// node refuses to start rather than drop it.
    #[test]
    fn a_flipped_payload_bit_before_other_records_is_refused(
        batches in batches(),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let records = records(&batches);
        prop_assume!(records.len() >= 2);
        let record = which.index(records.len() - 1);
        let start: usize = records[..record].iter().map(Vec::len).sum();
        // 12 header bytes, the payload, 8 trailer bytes.
        let payload = records[record].len() - 20;
        let offset = start + 12 + at.index(payload);
        let mut bytes = records.concat();
        bytes[offset] ^= 1 << bit;
        bytes.extend([0u8; 16]);
        prop_assert!(replay_bytes(&[&bytes]).is_err());
    }
}

/// A flipped bit in a record's length field is refused (the header checksum), never read as a
/// torn record and erased with everything after it.
#[test]
fn a_flipped_length_bit_is_refused_not_erased() {
    let hard_state = HardState { term: Term(1), voted_for: None, commit: LogIndex(0) };
    let first = encode_record(&hard_state, false, &[entry_at(1, 1, vec![1], false)]).unwrap();
    let second = encode_record(&hard_state, false, &[entry_at(2, 1, vec![2], false)]).unwrap();
    let mut bytes = [first, second].concat();
    bytes[3] ^= 0x80;
    bytes.extend([0u8; 16]);
    assert!(
        replay_bytes(&[&bytes]).is_err(),
        "{:?}",
        replay_bytes(&[&bytes]).map(|(s, t)| (s.entries.len(), t))
    );
}
