//! Adversarial review of `RaftShared` frames (commit bdf05c4): whatever the leader queues and
//! merges, a peer that reads shared frames opens exactly the messages a peer sent `Raft` frames
//! opens, which are the merged messages themselves.

use super::tests::transcript;
use super::*;
use crate::peer_auth::{Opener, Side};
use proptest::prelude::*;
use raft_core::NodeId;

fn ends(peer: u64, reads_shared: bool) -> (Sealer, Opener) {
    let mut sealer = transcript(peer).session(b"secret", Side::Dialler).sealer;
    sealer.set_peer_reads_shared(reads_shared);
    let mut opener = transcript(peer).session(b"secret", Side::Acceptor).opener;
    opener.set_reads_shared(reads_shared);
    (sealer, opener)
}

/// One queued message of the leader's: a run of `len` entries, or a heartbeat (which stops a
/// merge).
#[derive(Clone, Debug)]
enum Step {
    Run { len: u64, commit: u64, payload: usize },
    Heartbeat,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..6, 0u64..1_000, 0usize..300).prop_map(|(len, commit, payload)| Step::Run { len, commit, payload }),
        1 => Just(Step::Heartbeat),
    ]
}

proptest! {
    #[test]
    fn a_shared_reader_opens_exactly_the_merged_messages_a_raft_reader_does(
        steps in proptest::collection::vec(step(), 1..14),
        bytes_max in prop_oneof![Just(1u64 << 20), 50u64..2_000],
        count_max in 1usize..20,
    ) {
        let cache = EntriesCache::default();
        let (shared_queue, raft_queue) = (PeerQueue::<Outbound>::new(64), PeerQueue::<Outbound>::new(64));
        let mut next = 1u64;
        let mut firsts = Vec::new();
        for step in &steps {
            let message = |to: u64, entries: Vec<Entry>, commit: u64| Message {
                from: NodeId(1),
                to: NodeId(to),
                term: Term(3),
                body: MessageBody::AppendEntries {
                    prev_log_index: LogIndex(next - 1),
                    prev_log_term: Term(if next == 1 { 0 } else { 3 }),
                    entries,
                    leader_commit: LogIndex(commit),
                },
            };
            let (a, b) = match step {
                Step::Run { len, commit, payload } => {
                    let entries: Vec<Entry> = (next..next + len)
                        .map(|index| Entry {
                            term: Term(3),
                            index: LogIndex(index),
                            payload: match index % 4 {
                                0 => EntryPayload::Noop,
                                _ => EntryPayload::Command(Bytes::from(vec![index as u8; *payload])),
                            },
                        })
                        .collect();
                    let pair = (message(9, entries.clone(), *commit), message(8, entries, *commit));
                    next += len;
                    pair
                }
                Step::Heartbeat => {
                    let beat = |to: u64| Message {
                        from: NodeId(1),
                        to: NodeId(to),
                        term: Term(3),
                        body: MessageBody::Heartbeat { commit: LogIndex(1), context: 1 },
                    };
                    (beat(9), beat(8))
                }
            };
            let (a, b) = (cache.outbound(a), cache.outbound(b));
            // The two peers' entries are one shared list (same buffers).
            for (x, y) in a.shared.iter().zip(&b.shared) {
                prop_assert!(Arc::ptr_eq(x, y));
            }
            if firsts.is_empty() {
                firsts.push((a, b));
            } else {
                shared_queue.push(a);
                raft_queue.push(b);
            }
        }
        let (mut first_shared, mut first_raft) = firsts.pop().unwrap();
        let forever = Duration::from_secs(60);
        let (mut shared_sealer, mut shared_opener) = ends(9, true);
        let (mut raft_sealer, mut raft_opener) = ends(8, false);
        // Every write of each peer's queue, merged as the transport drains it.
        loop {
            let (shared_batch, _) = drain(first_shared, &shared_queue, forever, count_max, Some(bytes_max));
            let (raft_batch, _) = drain(first_raft, &raft_queue, forever, count_max, Some(bytes_max));
            prop_assert_eq!(shared_batch.len(), raft_batch.len());
            for (a, b) in shared_batch.iter().zip(&raft_batch) {
                let (frame_a, frame_b) = (a.seal(&mut shared_sealer), b.seal(&mut raft_sealer));
                let expected_kind = if a.carries_entries() { FrameKind::RaftShared } else { FrameKind::Raft };
                prop_assert_eq!(frame_a[1], expected_kind as u8);
                prop_assert_eq!(frame_b[1], FrameKind::Raft as u8);
                let opened_a = shared_opener.open_message(&frame_a).unwrap();
                let opened_b = raft_opener.open_message(&frame_b).unwrap();
                prop_assert_eq!(&opened_a, &a.whole());
                let mut b_as_a = opened_b.clone();
                b_as_a.to = NodeId(9);
                prop_assert_eq!(opened_a, b_as_a);
            }
            match (shared_queue.try_pop(forever).0, raft_queue.try_pop(forever).0) {
                (Some(a), Some(b)) => (first_shared, first_raft) = (a, b),
                (None, None) => break,
                _ => return Err(TestCaseError::fail("the queues drained unevenly")),
            }
        }
    }
}
