//! A streamed restore (`CommandBody::RestoreChunk`, issue 11 finding 10): a user snapshot larger
//! than one entry is staged piece by piece and swaps in only when its last piece is applied.

use bytes::Bytes;
use raft_core::kv::{
    Command, CommandBody, KvConfig, KvError, KvStore, Operation, Output, Response, RESERVED_KEY_PREFIX,
    RESTORE_IDLE_MS, RESTORE_PIECES_MAX, VALUE_BYTES_MAX,
};
use raft_core::state_machine::{restore_from_chunks, StateMachine};
use raft_core::{Entry, EntryPayload, LogIndex, Term};

fn apply(store: &mut KvStore, timestamp_ms: u64, body: CommandBody) -> Response {
    let index = LogIndex(store.applied_index().0 + 1);
    let command = Command { timestamp_ms, body }.encode();
    store.apply(&Entry { term: Term(1), index, payload: EntryPayload::Command(command) })
}

fn put(store: &mut KvStore, key: &[u8], value: &[u8]) {
    let operation = Operation::Put { key: Bytes::copy_from_slice(key), value: Bytes::copy_from_slice(value) };
    let body = CommandBody::Request { session: None, operation };
    assert_eq!(apply(store, 1, body), Ok(Output::Written));
}

fn reserved(name: &str) -> Vec<u8> {
    [RESERVED_KEY_PREFIX, name.as_bytes()].concat()
}

fn chunk(restore_id: u64, sequence: u64, data: &[u8], last: bool) -> CommandBody {
    CommandBody::RestoreChunk { restore_id, sequence, data: Bytes::copy_from_slice(data), last }
}

/// A backup of 200 user keys and one internal record of its own.
fn backup() -> Vec<u8> {
    let mut source = KvStore::new(KvConfig::default()).unwrap();
    for i in 0..200u32 {
        put(&mut source, format!("user/{i:04}").as_bytes(), &[i as u8; 100]);
    }
    put(&mut source, &reserved("address/1"), b"attacker:1");
    source.snapshot().flat_map(|chunk| chunk.to_vec()).collect()
}

fn live_store() -> KvStore {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    put(&mut store, b"old", b"before");
    put(&mut store, &reserved("address/1"), b"127.0.0.1:7801");
    store
}

#[test]
fn pieces_swap_in_only_at_the_last_and_reads_never_see_a_mix() {
    let snapshot = backup();
    let mut store = live_store();
    let pieces: Vec<&[u8]> = snapshot.chunks(997).collect();
    assert!(pieces.len() > 10);
    for (sequence, piece) in pieces.iter().enumerate() {
        let last = sequence + 1 == pieces.len();
        let response = apply(&mut store, 2, chunk(7, sequence as u64, piece, last));
        if last {
            assert_eq!(response, Ok(Output::Restored));
        } else {
            assert!(matches!(response, Ok(Output::RestoreStaged { .. })), "{response:?}");
            // The store is untouched until the last piece: old data, none of the new.
            assert!(store.restore_staged());
            assert_eq!(store.get(b"old").map(|v| &v[..]), Some(&b"before"[..]));
            assert_eq!(store.get(b"user/0000"), None);
        }
    }
    assert!(!store.restore_staged());
    assert_eq!(store.get(b"old"), None);
    assert_eq!(store.len(), 201, "200 user keys and this store's own record");
    assert_eq!(store.get(b"user/0199").map(|v| v.len()), Some(100));
    // The reserved-prefix rule: the backup's internal record is dropped, ours kept.
    assert_eq!(store.get(&reserved("address/1")).map(|v| &v[..]), Some(&b"127.0.0.1:7801"[..]));
}

#[test]
fn out_of_order_superseded_aborted_and_corrupt_pieces_change_nothing() {
    let snapshot = backup();
    let (first, rest) = snapshot.split_at(1000);
    let mut store = live_store();
    let untouched = |store: &KvStore| store.get(b"old").is_some() && store.len() == 2;

    assert!(matches!(
        apply(&mut store, 2, chunk(1, 0, first, false)),
        Ok(Output::RestoreStaged { bytes: 1000 })
    ));
    // A gap is refused.
    assert!(matches!(apply(&mut store, 2, chunk(1, 2, rest, true)), Err(KvError::RestoreRejected { .. })));
    // A newer restore supersedes the staged one, whose next piece is then refused.
    assert!(matches!(apply(&mut store, 2, chunk(2, 0, first, false)), Ok(Output::RestoreStaged { .. })));
    assert!(matches!(apply(&mut store, 2, chunk(1, 1, rest, true)), Err(KvError::RestoreRejected { .. })));
    assert!(untouched(&store));
    // An abort of another restore leaves this one; its own abort drops it.
    assert_eq!(apply(&mut store, 2, CommandBody::RestoreAbort { restore_id: 1 }), Ok(Output::RestoreAborted));
    assert!(store.restore_staged());
    assert_eq!(apply(&mut store, 2, CommandBody::RestoreAbort { restore_id: 2 }), Ok(Output::RestoreAborted));
    assert!(!store.restore_staged());
    assert!(matches!(apply(&mut store, 2, chunk(2, 1, rest, true)), Err(KvError::RestoreRejected { .. })));
    assert!(untouched(&store));
    // A corrupt piece drops the staged restore and leaves the store.
    assert!(matches!(apply(&mut store, 2, chunk(3, 0, first, false)), Ok(Output::RestoreStaged { .. })));
    let mut bad = rest.to_vec();
    bad[10] ^= 0xff;
    assert!(matches!(apply(&mut store, 2, chunk(3, 1, &bad, true)), Err(KvError::RestoreRejected { .. })));
    assert!(!store.restore_staged());
    assert!(untouched(&store));
    // A last piece that ends the snapshot early is refused too.
    assert!(matches!(apply(&mut store, 2, chunk(4, 0, first, true)), Err(KvError::RestoreRejected { .. })));
    assert!(untouched(&store));
}

#[test]
fn a_staged_restore_idle_by_the_log_clock_is_dropped() {
    let snapshot = backup();
    let (first, rest) = snapshot.split_at(1000);
    let mut store = live_store();
    apply(&mut store, 10, chunk(5, 0, first, false)).unwrap();
    put(&mut store, b"other", b"write");
    assert!(store.restore_staged(), "an unrelated write with no clock movement keeps it");
    let later = 10 + RESTORE_IDLE_MS + 1;
    let response = apply(&mut store, later, chunk(5, 1, rest, true));
    assert!(matches!(response, Err(KvError::RestoreRejected { .. })), "{response:?}");
    assert!(!store.restore_staged());
    assert!(store.get(b"old").is_some());
}

#[test]
fn an_oversized_piece_is_refused_before_it_costs_an_entry() {
    let data = vec![0u8; raft_core::kv::RESTORE_CHUNK_BYTES_MAX + 1];
    let command = Command { timestamp_ms: 0, body: chunk(1, 0, &data, true) };
    assert!(matches!(command.validate(), Err(KvError::RestoreRejected { .. })));
    // So is an empty piece that is not the last (it would carry nothing but time).
    let empty = Command { timestamp_ms: 0, body: chunk(1, 3, &[], false) };
    assert!(matches!(empty.validate(), Err(KvError::RestoreRejected { .. })));
    assert_eq!(Command { timestamp_ms: 0, body: chunk(1, 3, &[], true) }.validate(), Ok(()));
}

/// A restore's life is bounded from its first piece even while the log clock stands still
/// (native-node stamps pieces with the store's own clock): one fed one-byte pieces is dropped
/// once it reaches `RESTORE_PIECES_MAX` pieces without the last one.
#[test]
fn a_restore_fed_tiny_pieces_while_the_clock_stands_still_ends_at_the_piece_limit() {
    let mut source = KvStore::new(KvConfig::default()).unwrap();
    let pieces_max = usize::try_from(RESTORE_PIECES_MAX).unwrap();
    for i in 0..=pieces_max / VALUE_BYTES_MAX {
        put(&mut source, format!("big/{i:02}").as_bytes(), &vec![i as u8; VALUE_BYTES_MAX]);
    }
    let snapshot: Vec<u8> = source.snapshot().flat_map(|chunk| chunk.to_vec()).collect();
    assert!(snapshot.len() > pieces_max);
    let mut store = live_store();
    for (sequence, byte) in snapshot.chunks(1).take(pieces_max).enumerate() {
        let response = apply(&mut store, 2, chunk(6, sequence as u64, byte, false));
        assert!(matches!(response, Ok(Output::RestoreStaged { .. })), "piece {sequence}: {response:?}");
    }
    let response = apply(&mut store, 2, chunk(6, RESTORE_PIECES_MAX, &snapshot[pieces_max..], true));
    assert!(
        matches!(&response, Err(KvError::RestoreRejected { reason }) if reason.contains("RESTORE_PIECES_MAX")),
        "{response:?}"
    );
    assert!(!store.restore_staged());
    assert!(store.get(b"old").is_some());
}

/// A backup taken while a restore is staged (a snapshot carries the staging) restores its data
/// and sessions, by either restore command, and never its staging: that is not the user's data.
#[test]
fn a_backup_taken_mid_restore_brings_its_data_and_not_its_staging() {
    let snapshot = backup();
    let mut source = live_store();
    put(&mut source, b"kept", b"by the backup");
    apply(&mut source, 2, chunk(7, 0, &snapshot[..1000], false)).unwrap();
    assert!(source.restore_staged());
    let mid_restore: Vec<u8> = source.snapshot().flat_map(|chunk| chunk.to_vec()).collect();
    // As a replica's snapshot it is the whole state, staging included.
    let mut replica = KvStore::new(KvConfig::default()).unwrap();
    restore_from_chunks(&mut replica, [&mid_restore]).unwrap();
    assert!(replica.restore_staged());
    // As a user's backup, its data only.
    for streamed in [false, true] {
        let mut target = KvStore::new(KvConfig::default()).unwrap();
        put(&mut target, &reserved("address/1"), b"127.0.0.1:7901");
        let response = if streamed {
            apply(&mut target, 3, chunk(8, 0, &mid_restore, true))
        } else {
            apply(&mut target, 3, CommandBody::Restore { snapshot: Bytes::from(mid_restore.clone()) })
        };
        assert_eq!(response, Ok(Output::Restored), "streamed: {streamed}");
        assert!(!target.restore_staged(), "streamed: {streamed}");
        assert_eq!(target.get(b"kept").map(|v| &v[..]), Some(&b"by the backup"[..]));
        assert_eq!(target.get(b"old").map(|v| &v[..]), Some(&b"before"[..]));
        assert_eq!(target.get(&reserved("address/1")).map(|v| &v[..]), Some(&b"127.0.0.1:7901"[..]));
        assert_eq!(target.len(), 3);
    }
}
