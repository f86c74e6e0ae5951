//! Anything a peer can send is handled without a panic: bad messages are dropped and counted.

mod common;

use common::TestCluster;
use proptest::prelude::*;
use raft_core::{
    AppendOutcome, Bytes, CampaignReason, Entry, EntryPayload, LogIndex, Message, MessageBody, NodeId, Term,
    VoteKind,
};

fn append(from: u64, to: u64, term: u64, prev: (u64, u64), entries: Vec<Entry>) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body: MessageBody::AppendEntries {
            prev_log_index: LogIndex(prev.0),
            prev_log_term: Term(prev.1),
            entries,
            leader_commit: LogIndex(0),
        },
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: EntryPayload::Command(Bytes::from_static(b"x")),
    }
}

#[test]
fn malformed_messages_are_refused_counted_and_change_nothing() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    let term = cluster.node(2).term().0;
    let before = cluster.node(2).entries().to_vec();
    let bad = [
        // Entries with a gap.
        append(1, 2, term, (2, term), vec![entry(3, term), entry(5, term)]),
        // An entry from a later term than the message.
        append(1, 2, term, (2, term), vec![entry(3, term + 5)]),
        // Terms going backwards.
        append(1, 2, term, (2, term), vec![entry(3, term), entry(4, 1)]),
        // Index 0 with a term.
        append(1, 2, term, (0, 1), vec![]),
        // Addressed to somebody else, or claiming to be from the receiver itself.
        append(1, 3, term, (2, term), vec![]),
        append(2, 2, term, (2, term), vec![]),
    ];
    for (k, message) in bad.into_iter().enumerate() {
        assert!(cluster.node_mut(2).step(message).is_err(), "message {k} accepted");
    }
    assert_eq!(cluster.node(2).stats().messages_dropped_invalid, 6);
    assert_eq!(cluster.node(2).entries(), &before[..]);
}

#[test]
fn committed_entries_are_never_replaced_even_by_a_lying_leader() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    cluster.tick_all(2);
    let commit = cluster.node(2).commit_index();
    assert!(commit >= LogIndex(3));
    // A broken "leader" of a later term claims index 3 holds something else.
    let term = cluster.node(2).term().0 + 1;
    let liar = append(3, 2, term, (2, 2), vec![entry(3, term)]);
    let before = cluster.node(2).term_at(LogIndex(3));
    // Entries at or below the commit index are never replaced: they are skipped.
    let _ = cluster.node_mut(2).step(liar);
    assert_eq!(cluster.node(2).term_at(LogIndex(3)), before);
    assert_eq!(cluster.node(2).commit_index(), commit);
    assert_eq!(cluster.node(2).term_at(LogIndex(3)), cluster.node(1).term_at(LogIndex(3)));
}

fn any_body() -> impl Strategy<Value = MessageBody> {
    let index = 0u64..40;
    let term = 0u64..8;
    prop_oneof![
        (any::<bool>(), index.clone(), term.clone()).prop_map(|(pre, i, t)| MessageBody::VoteRequest {
            kind: if pre { VoteKind::PreVote } else { VoteKind::Vote },
            reason: CampaignReason::ElectionTimeout,
            last_log_index: LogIndex(i),
            last_log_term: Term(t),
        }),
        (any::<bool>(), any::<bool>()).prop_map(|(pre, granted)| MessageBody::VoteResponse {
            kind: if pre { VoteKind::PreVote } else { VoteKind::Vote },
            granted,
        }),
        (index.clone(), term.clone(), proptest::collection::vec((0u64..40, 0u64..8), 0..5), index.clone())
            .prop_map(|(i, t, es, c)| MessageBody::AppendEntries {
                prev_log_index: LogIndex(i),
                prev_log_term: Term(t),
                entries: es.into_iter().map(|(ei, et)| entry(ei, et)).collect(),
                leader_commit: LogIndex(c),
            }),
        (index.clone(), index.clone(), term.clone()).prop_map(|(r, h, t)| MessageBody::AppendResponse {
            outcome: AppendOutcome::Rejected {
                rejected_index: LogIndex(r),
                hint_index: LogIndex(h),
                hint_term: Term(t)
            }
        }),
        index.clone().prop_map(|m| MessageBody::AppendResponse {
            outcome: AppendOutcome::Accepted { match_index: LogIndex(m) }
        }),
        (index.clone(), any::<u64>())
            .prop_map(|(c, x)| MessageBody::Heartbeat { commit: LogIndex(c), context: x }),
        any::<u64>().prop_map(|x| MessageBody::HeartbeatResponse { context: x }),
        Just(MessageBody::TimeoutNow),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random messages from random senders and terms, thrown at a working cluster, never make
    /// a node panic or break its own invariants. (Raft does not tolerate lying peers, so
    /// agreement is not asserted here: these messages may forge a leader.)
    #[test]
    fn random_messages_never_panic(
        garbage in proptest::collection::vec((1u64..=4, 1u64..=3, 0u64..8, any_body()), 1..40)
    ) {
        let mut cluster = TestCluster::new(3);
        cluster.campaign(1);
        cluster.propose(1, b"a");
        for (from, to, term, body) in garbage {
            let message = Message { from: NodeId(from), to: NodeId(to), term: Term(term), body };
            let _ = cluster.node_mut(to).step(message);
            cluster.flush();
            cluster.network.clear();
        }
        cluster.tick_all(40);
        for id in cluster.ids() {
            let node = cluster.node(id);
            prop_assert!(node.applied_index() <= node.commit_index());
            prop_assert!(node.commit_index() <= node.last_index());
        }
    }
}

#[test]
fn the_wire_format_round_trips_and_rejects_garbage() {
    let message = append(1, 2, 3, (2, 2), vec![entry(3, 3)]);
    let bytes = postcard_encode(&message);
    assert_eq!(postcard::from_bytes::<Message>(&bytes).unwrap(), message);
    for cut in 0..bytes.len() {
        // Every truncation is an error, never a panic.
        let _ = postcard::from_bytes::<Message>(&bytes[..cut]);
    }
}

fn postcard_encode(message: &Message) -> Vec<u8> {
    postcard::to_allocvec(message).unwrap()
}
