//! Property tests of the one wire format (ARCHITECTURE §3): every message body and every entry
//! payload survives its postcard encoding, and no byte string makes the decoder panic.

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use raft_core::{
    AppendOutcome, Bytes, CampaignReason, Entry, EntryPayload, HardState, LogIndex, Membership, Message,
    MessageBody, NodeId, SnapshotMeta, Term, VoteKind,
};

fn node() -> impl Strategy<Value = NodeId> {
    prop_oneof![1u64..8, any::<u64>()].prop_map(NodeId)
}

fn index() -> impl Strategy<Value = LogIndex> {
    prop_oneof![0u64..64, any::<u64>()].prop_map(LogIndex)
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![0u64..8, any::<u64>()].prop_map(Term)
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn membership() -> impl Strategy<Value = Membership> {
    (btree_set(node(), 0..5), btree_set(node(), 0..3), btree_set(node(), 0..3), btree_set(node(), 0..3))
        .prop_map(|(voters, voters_outgoing, learners, promoting)| Membership {
            voters,
            voters_outgoing,
            learners,
            promoting,
        })
}

fn payload() -> impl Strategy<Value = EntryPayload> {
    prop_oneof![
        Just(EntryPayload::Noop),
        data().prop_map(EntryPayload::Command),
        membership().prop_map(|m| EntryPayload::Membership(Box::new(m))),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (term(), index(), payload()).prop_map(|(term, index, payload)| Entry { term, index, payload })
}

fn vote_kind() -> impl Strategy<Value = VoteKind> {
    prop_oneof![Just(VoteKind::PreVote), Just(VoteKind::Vote)]
}

fn body() -> impl Strategy<Value = MessageBody> {
    let reason = prop_oneof![Just(CampaignReason::ElectionTimeout), Just(CampaignReason::LeadershipTransfer)];
    let outcome = prop_oneof![
        index().prop_map(|match_index| AppendOutcome::Accepted { match_index }),
        (index(), index(), term()).prop_map(|(rejected_index, hint_index, hint_term)| {
            AppendOutcome::Rejected { rejected_index, hint_index, hint_term }
        }),
    ];
    let meta =
        (index(), term(), membership(), index()).prop_map(|(index, term, membership, membership_index)| {
            SnapshotMeta { index, term, membership, membership_index }
        });
    prop_oneof![
        (vote_kind(), reason, index(), term()).prop_map(|(kind, reason, last_log_index, last_log_term)| {
            MessageBody::VoteRequest { kind, reason, last_log_index, last_log_term }
        }),
        (vote_kind(), any::<bool>()).prop_map(|(kind, granted)| MessageBody::VoteResponse { kind, granted }),
        (index(), term(), vec(entry(), 0..6), index()).prop_map(
            |(prev_log_index, prev_log_term, entries, leader_commit)| MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit
            }
        ),
        outcome.prop_map(|outcome| MessageBody::AppendResponse { outcome }),
        (index(), any::<u64>()).prop_map(|(commit, context)| MessageBody::Heartbeat { commit, context }),
        any::<u64>().prop_map(|context| MessageBody::HeartbeatResponse { context }),
        Just(MessageBody::TimeoutNow),
        (meta, any::<u64>(), data(), any::<bool>()).prop_map(|(meta, offset, data, last)| {
            MessageBody::InstallSnapshot { meta: Box::new(meta), offset, data, last }
        }),
        (index(), any::<u64>(), any::<bool>()).prop_map(|(snapshot_index, next_offset, done)| {
            MessageBody::InstallSnapshotResponse { snapshot_index, next_offset, done }
        }),
        any::<u64>().prop_map(|request_id| MessageBody::ReadIndex { request_id }),
        (any::<u64>(), proptest::option::of(index()))
            .prop_map(|(request_id, index)| MessageBody::ReadIndexResponse { request_id, index }),
    ]
}

/// Any message, of every body kind.
pub fn message() -> impl Strategy<Value = Message> {
    (node(), node(), term(), body()).prop_map(|(from, to, term, body)| Message { from, to, term, body })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_survives_its_encoding(message in message()) {
        let bytes = postcard::to_allocvec(&message).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Message>(&bytes).unwrap(), message);
    }

    #[test]
    fn every_entry_survives_its_encoding(entry in entry()) {
        let bytes = postcard::to_allocvec(&entry).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Entry>(&bytes).unwrap(), entry);
    }

    #[test]
    fn hard_state_survives_its_encoding(term in term(), voted_for in proptest::option::of(node()), commit in index()) {
        let hard_state = HardState { term, voted_for, commit };
        let bytes = postcard::to_allocvec(&hard_state).unwrap();
        prop_assert_eq!(postcard::from_bytes::<HardState>(&bytes).unwrap(), hard_state);
    }

    /// A message with its tail cut off is refused, never misread as a shorter one.
    #[test]
    fn a_cut_message_is_refused(message in message(), cut in any::<prop::sample::Index>()) {
        let bytes = postcard::to_allocvec(&message).unwrap();
        let cut = cut.index(bytes.len());
        if let Ok(decoded) = postcard::from_bytes::<Message>(&bytes[..cut]) {
            prop_assert!(false, "{cut} of {} bytes decoded as {decoded:?}", bytes.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in vec(any::<u8>(), 0..256)) {
        let _ = postcard::from_bytes::<Message>(&bytes);
        let _ = postcard::from_bytes::<Entry>(&bytes);
    }
}
