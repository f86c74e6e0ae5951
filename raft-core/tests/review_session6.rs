//! Adversarial review, session 6: findings F1 and F2 of the campaigns review (commit 29118a2)
//! and streamed restores (`CommandBody::RestoreChunk`). An attack that holds stays as a
//! regression test; one that breaks the code is `#[ignore = "finding: ..."]`, with its severity
//! and a suggested fix in the doc comment.
//!
//! References: Raft paper §5.2 (election safety), §7 (snapshots); thesis §3.4, §4.2.1
//! (catch-up), §4.2.3 (disruptive servers), §4.3 (joint consensus), §6.2 (leader hints,
//! check-quorum), §6.4.1 (leases).

mod common;

use bytes::Bytes;
use common::quiet::{campaigners_majority, quiet_cluster, tell, Lcg};
use common::TestCluster;
use raft_core::kv::{
    Command, CommandBody, KvConfig, KvError, KvStore, Operation, Output, Response, RESERVED_KEY_PREFIX,
    RESTORE_STAGED_MS_MAX,
};
use raft_core::state_machine::{restore_from_chunks, StateMachine};
use raft_core::{
    Entry, EntryPayload, LogIndex, MembershipChange, MembershipError, NodeId, ReadError, ReadMode, ReadState,
    Role, Term,
};

// ----- helpers -------------------------------------------------------------------------------

/// A cluster of `size` voters where the ids in `quiet` do not campaign, every node told so.
fn cluster_with_quiet(size: u64, quiet: &[u64]) -> TestCluster {
    let mut cluster = quiet_cluster(size, quiet);
    tell(&mut cluster, quiet, false);
    cluster
}

fn elected(size: u64, quiet: &[u64]) -> TestCluster {
    let mut cluster = cluster_with_quiet(size, quiet);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    cluster
}

// ----- F1: CampaigningMinority (thesis §4.2.1) ---------------------------------------------------

/// Seeded random sequences of AddVoter / AddLearner / DemoteVoter / RemoveServer /
/// ReplaceVoters, with catch-ups stalled and released (promotions completing or withdrawn) and
/// leaders crashing mid-catch-up, never leave the campaigning voters a minority of either half
/// of any configuration any node holds. Every node is told the truth (as native-node does
/// before every change).
#[test]
fn f1_random_change_sequences_never_leave_campaigning_voters_a_minority() {
    let quiet = [4u64, 5, 7];
    let mut accepted = 0;
    let mut refused_minority = 0;
    for seed in 0..12u64 {
        let mut rng = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) + 1);
        let mut cluster = elected(5, &[4, 5]);
        let six = cluster.add_empty_node();
        let seven = cluster.add_empty_node();
        assert_eq!((six, seven), (6, 7));
        // Node 7 really does not campaign (its own config), as every node is told.
        cluster.configs[6].campaigns = false;
        cluster.crash(seven);
        cluster.restart(seven);
        tell(&mut cluster, &quiet, false);
        for step in 0..120 {
            match rng.below(10) {
                0 => {
                    // Stall or release a catch-up.
                    let who = 6 + rng.below(2);
                    if rng.below(2) == 0 {
                        cluster.isolate(who);
                    } else {
                        cluster.heal();
                    }
                }
                1 => {
                    // The leader crashes mid-whatever and comes back (told again on restart).
                    if let Some(&leader) = cluster.leaders().first() {
                        cluster.crash(leader);
                        cluster.tick_all(25);
                        cluster.restart(leader);
                        tell(&mut cluster, &quiet, false);
                    }
                }
                _ => {
                    if let Some(&leader) = cluster.leaders().first() {
                        let members: Vec<NodeId> =
                            cluster.node(leader).membership().members().into_iter().collect();
                        let target = NodeId(1 + rng.below(7));
                        let request = match rng.below(5) {
                            0 => MembershipChange::AddVoter(target),
                            1 => MembershipChange::AddLearner(target),
                            2 => MembershipChange::DemoteVoter(target),
                            3 => MembershipChange::RemoveServer(target),
                            _ => MembershipChange::ReplaceVoters(
                                members.iter().copied().filter(|_| rng.below(3) != 0).collect(),
                            ),
                        };
                        match cluster.change_membership(leader, request) {
                            Ok(_) => accepted += 1,
                            Err(MembershipError::CampaigningMinority) => refused_minority += 1,
                            Err(_) => {}
                        }
                    }
                }
            }
            cluster.tick_all(1 + rng.below(12));
            for id in cluster.ids() {
                let Some(node) = cluster.nodes[(id - 1) as usize].as_ref() else { continue };
                let m = node.membership();
                assert!(
                    campaigners_majority(&m.voters, &quiet)
                        && campaigners_majority(&m.voters_outgoing, &quiet),
                    "seed {seed} step {step}: node {id} holds voters {:?} (outgoing {:?}, promoting {:?}); \
                     quiet {quiet:?}",
                    m.voters,
                    m.voters_outgoing,
                    m.promoting
                );
            }
        }
    }
    // The attack did something: changes went through and the rule refused some.
    assert!(accepted > 50, "only {accepted} changes accepted");
    assert!(refused_minority > 5, "only {refused_minority} refusals");
}

/// Liveness: a promotion of a non-campaigning server that never catches up does not hold the
/// operator hostage. It can be withdrawn at once with RemoveServer (which lowers the deficit),
/// and once withdrawn by the leader (or removed), a legal change is accepted again.
#[test]
fn f1_a_stalled_promotion_can_be_removed_and_changes_resume() {
    let mut cluster = elected(5, &[5]);
    let six = cluster.add_empty_node();
    let seven = cluster.add_empty_node();
    tell(&mut cluster, &[5, seven], false);
    cluster.isolate(seven);
    cluster
        .change_membership(1, MembershipChange::AddVoter(NodeId(seven)))
        .expect("3 of 5 (+1 quiet) still campaign");
    cluster.tick_all(3);
    assert_eq!(
        cluster.change_membership(1, MembershipChange::AddVoter(NodeId(six))),
        Err(MembershipError::ChangeInProgress),
        "one promotion at a time"
    );
    cluster
        .change_membership(1, MembershipChange::RemoveServer(NodeId(seven)))
        .expect("withdrawing it is always allowed");
    cluster.tick_all(3);
    assert!(cluster.node(1).membership().promoting.is_empty());
    cluster
        .change_membership(1, MembershipChange::AddVoter(NodeId(six)))
        .expect("a campaigning voter may join now");
    for _ in 0..60 {
        cluster.tick_all(1);
    }
    assert!(cluster.node(1).membership().voters.contains(&NodeId(six)));
}

/// Liveness across a leader change: the leader that accepted AddVoter(6) dies while 6 is
/// isolated; the next leader inherits the promotion, withdraws it within one election timeout,
/// and then accepts a demotion that the withdrawn promotion had made illegal in the Worst view
/// only while it was pending. Nothing is refused forever.
#[test]
fn f1_an_inherited_stalled_promotion_is_withdrawn_and_does_not_refuse_forever() {
    let mut cluster = elected(5, &[5]);
    let six = cluster.add_empty_node();
    cluster.isolate(six);
    cluster.change_membership(1, MembershipChange::AddVoter(NodeId(six))).expect("joins");
    cluster.tick_all(3);
    cluster.crash(1);
    cluster.tick_all(60);
    let leader = *cluster.leaders().first().expect("a new leader");
    for _ in 0..40 {
        if cluster.node(leader).membership().promoting.is_empty() {
            break;
        }
        cluster.tick_all(1);
    }
    assert!(cluster.node(leader).membership().promoting.is_empty(), "withdrawn by the new leader");
    // {1,2,3,4} campaign, 5 quiet: demoting 2 leaves 3 of 4 campaigning.
    let demote = if leader == 2 { 3 } else { 2 };
    cluster.change_membership(leader, MembershipChange::DemoteVoter(NodeId(demote))).expect("legal again");
}

/// Was FINDING (low). The Worst view assumes a server being promoted keeps the campaigning status
/// the leader believed when AddVoter was accepted. `set_peer_campaigns` is a driver input that
/// may change at any time (a driver that learns a peer's role when it connects, or corrects
/// itself); the promotion then completes without any check, and the campaigning voters are 3
/// of 6. Fix: re-judge a `Promote` outcome in `catch_up_step` with the current beliefs and
/// withdraw it (`CatchUpAbandoned`) when it would leave the campaigning voters a minority.
/// Native-node declares tabs by id range before every change, so it was not exposed. Fixed:
/// `catch_up_step` re-judges the promotion (`promotion_leaves_campaigning_minority`).
#[test]
fn f1_a_server_declared_quiet_during_its_catch_up_is_withdrawn() {
    let mut cluster = elected(5, &[4, 5]);
    let six = cluster.add_empty_node();
    cluster.isolate(six);
    cluster
        .change_membership(1, MembershipChange::AddVoter(NodeId(six)))
        .expect("6 campaigns, as far as 1 knows");
    tell(&mut cluster, &[4, 5, six], false);
    cluster.heal();
    for _ in 0..60 {
        cluster.tick_all(1);
    }
    let voters = &cluster.node(1).membership().voters;
    assert!(campaigners_majority(voters, &[4, 5, six]), "voters {voters:?}: only 1,2,3 campaign");
}

// ----- F2: forgetting a silent leader (thesis §3.4, §6.2) ----------------------------------------

/// Lease safety (§6.4.1) and the quiet period (§4.2.3): while the cut-off leader still believes
/// its lease, the non-campaigning voter still names it (so still withholds its votes; both are
/// measured from `leader_contact_tick`), and no other leader exists.
#[test]
fn f2_the_hint_outlives_the_leaders_lease() {
    let mut cluster = elected(3, &[3]);
    cluster.propose(1, b"x");
    cluster.tick_all(3);
    assert!(cluster.node(1).lease_is_valid());
    cluster.isolate(1);
    let mut forgot_at = None;
    for tick in 0..60 {
        cluster.tick_all(1);
        let lease = cluster.node(1).role() == Role::Leader && cluster.node(1).lease_is_valid();
        if lease {
            assert_eq!(cluster.node(3).leader(), Some(NodeId(1)), "tick {tick}: hint gone under a lease");
            assert_eq!(cluster.leaders(), vec![1], "tick {tick}: a second leader under a lease");
        }
        if cluster.node(3).leader() != Some(NodeId(1)) {
            forgot_at.get_or_insert(tick);
        }
    }
    assert!(forgot_at.is_some(), "node 3 moved on (forgot node 1, then followed node 2)");
    assert_eq!(cluster.leaders(), vec![2]);
}

/// A follower that forgot its leader takes the same leader's next messages (same term, no
/// error, no new election), re-learns the hint, catches up and acknowledges.
#[test]
fn f2_the_same_leaders_next_message_is_taken_after_the_hint_lapsed() {
    let mut cluster = elected(3, &[3]);
    let term = cluster.node(1).term();
    cluster.cut.insert((1, 3));
    for _ in 0..25 {
        cluster.tick(3);
    }
    assert_eq!(cluster.node(3).leader(), None, "hint forgotten");
    cluster.cut.clear();
    let proposed = cluster.propose(1, b"after the silence");
    cluster.tick_all(3);
    let three = cluster.node(3);
    assert_eq!(three.leader(), Some(NodeId(1)));
    assert_eq!(three.term(), term);
    assert!(three.commit_index() >= proposed.index);
    assert_eq!(three.stats().messages_dropped_invalid, 0);
    assert_eq!(cluster.node(1).term(), term);
    assert_eq!(cluster.leaders(), vec![1]);
}

/// A learner's (tab's) read path: with the leader dead, once the hint lapses a read is refused
/// at once with `NoLeader` (not forwarded to a dead server to time out); once a new leader is
/// heard from, reads are forwarded to it and answered.
#[test]
fn f2_a_learner_reads_again_once_a_new_leader_is_heard() {
    let mut cluster = elected(3, &[]);
    let four = cluster.add_empty_node();
    cluster.change_membership(1, MembershipChange::AddLearner(NodeId(four))).expect("learner");
    cluster.tick_all(5);
    assert_eq!(cluster.node(four).leader(), Some(NodeId(1)));
    cluster.crash(1);
    // Only the learner ticks: the voters keep quiet so nobody is elected yet.
    for _ in 0..12 {
        cluster.tick(four);
    }
    assert_eq!(cluster.node(four).leader(), None);
    cluster.node_mut(four).read(41, ReadMode::Linearizable);
    let states = cluster.settle_reads(four);
    assert_eq!(states, vec![ReadState { request_id: 41, result: Err(ReadError::NoLeader) }]);
    cluster.tick_all(40);
    let leader = *cluster.leaders().first().expect("new leader");
    assert_eq!(cluster.node(four).leader(), Some(NodeId(leader)));
    cluster.node_mut(four).read(42, ReadMode::Linearizable);
    let states = cluster.settle_reads(four);
    assert!(matches!(states.as_slice(), [ReadState { request_id: 42, result: Ok(_) }]), "{states:?}");
}

/// Check-quorum (§6.2) does not depend on the follower's hint: a leader whose only
/// non-campaigning follower forgot it (one-way cut leader→3 for a while) keeps leading as long
/// as a majority answers, and the quiet voter's replies resume once the link heals.
#[test]
fn f2_check_quorum_is_unaffected_by_a_forgotten_hint() {
    let mut cluster = elected(3, &[3]);
    cluster.cut.insert((1, 3));
    cluster.tick_all(30);
    assert_eq!(cluster.leaders(), vec![1], "node 2 alone keeps node 1's quorum");
    assert_eq!(cluster.node(3).leader(), None);
    cluster.cut.clear();
    cluster.tick_all(3);
    assert_eq!(cluster.node(3).leader(), Some(NodeId(1)));
    assert_eq!(cluster.node(1).stats().check_quorum_step_downs, 0);
}

// ----- streamed restores (Raft §7: a snapshot is the state of the log up to its index) -------------

fn command_entry(index: u64, timestamp_ms: u64, body: CommandBody) -> Entry {
    Entry {
        term: Term(1),
        index: LogIndex(index),
        payload: EntryPayload::Command(Command { timestamp_ms, body }.encode()),
    }
}

fn put_body(key: &[u8], value: &[u8]) -> CommandBody {
    CommandBody::Request {
        session: None,
        operation: Operation::Put { key: Bytes::copy_from_slice(key), value: Bytes::copy_from_slice(value) },
    }
}

fn chunk(restore_id: u64, sequence: u64, data: &[u8], last: bool) -> CommandBody {
    CommandBody::RestoreChunk { restore_id, sequence, data: Bytes::copy_from_slice(data), last }
}

fn reserved(name: &str) -> Vec<u8> {
    [RESERVED_KEY_PREFIX, name.as_bytes()].concat()
}

/// A backup of 100 user keys and an internal record of its own (which a restore must drop).
fn backup() -> Vec<u8> {
    let mut source = KvStore::new(KvConfig::default()).unwrap();
    for i in 0..100u64 {
        let written = source.apply(&command_entry(
            i + 1,
            1,
            put_body(format!("user/{i:03}").as_bytes(), &[i as u8; 50]),
        ));
        assert_eq!(written, Ok(Output::Written));
    }
    let written = source.apply(&command_entry(101, 1, put_body(&reserved("address/1"), b"attacker:1")));
    assert_eq!(written, Ok(Output::Written));
    source.snapshot().flat_map(|c| c.to_vec()).collect()
}

/// A committed log with a streamed restore in it and the faults a proposer or the network can
/// cause: a write between pieces, a session-retried (duplicate) piece, a restarted restore
/// (piece 0 again), a piece of another restore, and the last piece. Index 1 and 2 precede it.
fn restore_log() -> Vec<Entry> {
    let snapshot = backup();
    let pieces: Vec<&[u8]> = snapshot.chunks(700).collect();
    assert!(pieces.len() >= 6);
    let mut bodies = vec![put_body(b"old", b"before"), put_body(&reserved("address/1"), b"127.0.0.1:7801")];
    bodies.push(chunk(9, 0, pieces[0], false));
    bodies.push(chunk(9, 1, pieces[1], false));
    bodies.push(chunk(9, 1, pieces[1], false)); // retried: rejected, staging unchanged
    bodies.push(put_body(b"during", b"x")); // a write while staged
    bodies.push(chunk(9, 0, pieces[0], false)); // the proposer restarts: staging starts over
    bodies.push(chunk(8, 1, pieces[1], false)); // another restore's piece: rejected
    for (sequence, piece) in pieces.iter().enumerate().skip(1) {
        bodies.push(chunk(9, sequence as u64, piece, sequence + 1 == pieces.len()));
    }
    bodies.push(put_body(b"after", b"y"));
    bodies.into_iter().enumerate().map(|(k, body)| command_entry(k as u64 + 1, 2 + k as u64, body)).collect()
}

/// Everything a replica's reads and future behaviour depend on: an FNV-1a hash of its encoded
/// snapshot (so a failure prints a number, not the snapshot), whether a restore is staged, and
/// its key count.
fn fingerprint(store: &KvStore) -> (u64, bool, usize) {
    let hash = store
        .snapshot()
        .flat_map(|c| c.to_vec())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash, store.restore_staged(), store.len())
}

fn apply_all(store: &mut KvStore, entries: &[Entry]) -> Vec<Response> {
    entries.iter().map(|e| store.apply(e)).collect()
}

/// Every replica applies the same faulty log to the same state at every index, and restarting
/// from a snapshot taken at any index (before, during or after the restore: a snapshot carries
/// a staged restore) and replaying the rest gives the same state as never stopping. Reads
/// never see a mix.
#[test]
fn restore_is_a_pure_function_of_the_log_across_faults_and_restarts() {
    let log = restore_log();
    let mut reference = KvStore::new(KvConfig::default()).unwrap();
    let responses = apply_all(&mut reference, &log);
    assert_eq!(responses.last(), Some(&Ok(Output::Written)));
    assert!(responses.iter().any(|r| r == &Ok(Output::Restored)));
    assert_eq!(reference.get(b"old"), None, "swapped in");
    assert_eq!(reference.get(b"during"), None, "a write while staged is replaced by the restore");
    assert_eq!(reference.get(b"after").map(|v| &v[..]), Some(&b"y"[..]));
    assert_eq!(reference.get(&reserved("address/1")).map(|v| &v[..]), Some(&b"127.0.0.1:7801"[..]));
    assert_eq!(reference.len(), 100 + 2);
    let mut staged_cuts = 0;
    for cut in 0..log.len() {
        let mut prefix = KvStore::new(KvConfig::default()).unwrap();
        apply_all(&mut prefix, &log[..cut]);
        if prefix.restore_staged() {
            staged_cuts += 1;
            // Half a restore is never visible.
            assert!(prefix.get(b"user/000").is_none(), "cut {cut}: half-restored data visible");
        }
        // Restart from a snapshot here and replay.
        let data: Vec<u8> = prefix.snapshot().flat_map(|c| c.to_vec()).collect();
        let mut restarted = KvStore::new(KvConfig::default()).unwrap();
        restore_from_chunks(&mut restarted, data.chunks(333)).unwrap();
        assert_eq!(fingerprint(&restarted), fingerprint(&prefix), "cut {cut}: the snapshot is not the state");
        let replayed = apply_all(&mut restarted, &log[cut..]);
        assert_eq!(replayed, responses[cut..], "cut {cut}: responses differ");
        assert_eq!(fingerprint(&restarted), fingerprint(&reference), "cut {cut}: diverged");
    }
    assert!(staged_cuts >= 8, "the log stages a restore at {staged_cuts} cuts only");
}

/// A follower with a restore staged installs the leader's snapshot (taken after the last
/// piece): the staged pieces go, the result equals the log.
#[test]
fn restore_install_snapshot_over_a_staged_restore() {
    let log = restore_log();
    let mut leader = KvStore::new(KvConfig::default()).unwrap();
    apply_all(&mut leader, &log);
    let data: Vec<u8> = leader.snapshot().flat_map(|c| c.to_vec()).collect();
    let mut follower = KvStore::new(KvConfig::default()).unwrap();
    apply_all(&mut follower, &log[..4]);
    assert!(follower.restore_staged());
    restore_from_chunks(&mut follower, [data]).unwrap();
    assert_eq!(fingerprint(&follower), fingerprint(&leader));
}

/// Was a finding (medium): staging was not in `KvSnapshot`, so a snapshot taken while a
/// restore was staged lost the staged pieces, and native-node deferred its snapshots meanwhile
/// but the browser tab's driver (`wasm/src/live/driver.rs`, `maybe_compact`) did not: a tab
/// that compacted mid-restore and was reloaded from its own log replayed only the pieces after
/// its snapshot, refused the last one and kept the old store while every server swapped the
/// new one in. Fixed in raft-core (`kv::staging`): the snapshot carries the staged restore, so
/// any snapshot is the whole state at its index (thesis §5.1) and no driver has to know.
#[test]
fn restore_a_snapshot_taken_mid_restore_converges_on_replay() {
    let log = restore_log();
    let mut reference = KvStore::new(KvConfig::default()).unwrap();
    apply_all(&mut reference, &log);
    let cut = 10;
    let mut tab = KvStore::new(KvConfig::default()).unwrap();
    apply_all(&mut tab, &log[..cut]);
    assert!(tab.restore_staged(), "the tab compacts here, as maybe_compact would");
    let data: Vec<u8> = tab.snapshot().flat_map(|c| c.to_vec()).collect();
    let mut reloaded = KvStore::new(KvConfig::default()).unwrap();
    restore_from_chunks(&mut reloaded, [data]).unwrap();
    apply_all(&mut reloaded, &log[cut..]);
    assert_eq!(reloaded.get(b"old"), reference.get(b"old"), "the reloaded tab kept the old store");
    assert_eq!(fingerprint(&reloaded), fingerprint(&reference));
}

/// Was a finding (low; medium without an admin credential check): `RESTORE_IDLE_MS` was
/// measured from the last piece only, so a proposer that sent an empty (or tiny) non-last
/// piece every 59 s of log clock kept a restore staged for ever (and, while drivers deferred
/// snapshots on it, the log growing). Now an empty non-last piece is refused, and a restore's
/// life is bounded from its first piece: `RESTORE_STAGED_MS_MAX` of log clock (and
/// `RESTORE_PIECES_MAX` pieces, see `kv_streamed_restore.rs`), decided from the log alone.
#[test]
fn restore_kept_alive_by_small_pieces_is_eventually_dropped() {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    let snapshot = backup();
    let mut index = 0;
    let mut apply = |store: &mut KvStore, timestamp_ms: u64, body: CommandBody| {
        index += 1;
        store.apply(&command_entry(index, timestamp_ms, body))
    };
    let staged = apply(&mut store, 0, chunk(5, 0, &snapshot[..100], false));
    assert!(matches!(staged, Ok(Output::RestoreStaged { .. })), "{staged:?}");
    let minute = 59_000;
    let empty = apply(&mut store, 0, chunk(5, 1, &[], false));
    assert!(
        matches!(&empty, Err(KvError::RestoreRejected { reason }) if reason.contains("empty")),
        "{empty:?}"
    );
    assert!(store.restore_staged(), "a refused piece changes nothing");
    // One byte of the backup a minute: never idle for RESTORE_IDLE_MS, dropped all the same.
    let mut dropped_at = None;
    for sequence in 1..=2_000u64 {
        // Up to about 33 hours of log clock.
        let at = sequence * minute;
        let byte = &snapshot[99 + sequence as usize..][..1];
        match apply(&mut store, at, chunk(5, sequence, byte, false)) {
            Ok(Output::RestoreStaged { .. }) => assert!(at <= RESTORE_STAGED_MS_MAX, "staged at {at} ms"),
            Err(KvError::RestoreRejected { reason }) => {
                assert!(reason.contains("RESTORE_STAGED_MS_MAX"), "{reason}");
                dropped_at = Some(at);
                break;
            }
            other => panic!("piece {sequence}: {other:?}"),
        }
    }
    let dropped_at = dropped_at.expect("still staged after 33 hours of log clock");
    assert!(dropped_at > RESTORE_STAGED_MS_MAX && dropped_at <= RESTORE_STAGED_MS_MAX + minute);
    assert!(!store.restore_staged());
}

/// Was a finding (medium): the two restore paths of `KvStore` disagreed on internal records:
/// a streamed restore kept this store's reserved keys and dropped the backup's, the one-entry
/// `CommandBody::Restore` swapped in the backup's and dropped ours. native-node papered over it
/// by rewriting the entry at apply time, but a browser tab applies the raw entry: after a
/// one-entry restore the tab held the backup's `\0flotilla/` records and the servers did not.
/// Now both paths share `KvStore`'s `swap_in_backup`, and native's rewrite is gone.
#[test]
fn restore_one_entry_restore_keeps_this_stores_reserved_records() {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    let written = store.apply(&command_entry(1, 1, put_body(&reserved("address/1"), b"127.0.0.1:7801")));
    assert_eq!(written, Ok(Output::Written));
    let response =
        store.apply(&command_entry(2, 2, CommandBody::Restore { snapshot: Bytes::from(backup()) }));
    assert_eq!(response, Ok(Output::Restored));
    assert_eq!(store.get(b"user/000").map(|v| v.len()), Some(50));
    assert_eq!(
        store.get(&reserved("address/1")).map(|v| &v[..]),
        Some(&b"127.0.0.1:7801"[..]),
        "the backup's internal record replaced this store's"
    );
}
