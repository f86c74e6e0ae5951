//! Adversarial review of commit bbfee41 ("kv restore: a restore never passes keys_max ..."):
//! `swap_in_backup` refuses a backup whose keys with the store's reserved records pass
//! `keys_max`, keeps the store's log clock, and fits the backup's sessions to this log
//! (`Sessions::fit_to_log`). Every replica must decide a restore from the log alone (Raft §5.3,
//! thesis §6.3 for sessions), a refused restore must leave the store as it was, and the state a
//! restore leaves must always be installable from its snapshot (thesis §5.1). Tests that pass
//! are regression tests; an ignored one names a finding, its severity and a suggested fix.

mod common;

use bytes::Bytes;
use common::kv::{apply, bytes_of, chunk, noop, put, register, replica_of, reserved};
use raft_core::kv::{
    ClientId, CommandBody, KvConfig, KvError, KvStore, Operation, Output, Response, SessionRequest,
};
use raft_core::state_machine::StateMachine;
use raft_core::LogIndex;

/// A session request putting `value` at `key`.
fn session_put(
    store: &mut KvStore,
    timestamp_ms: u64,
    client_id: ClientId,
    sequence: u64,
    key: &[u8],
    value: &[u8],
) -> Response {
    let operation = Operation::Put { key: Bytes::copy_from_slice(key), value: Bytes::copy_from_slice(value) };
    let session = Some(SessionRequest { client_id, sequence });
    apply(store, timestamp_ms, CommandBody::Request { session, operation })
}

fn restore(snapshot: &[u8]) -> CommandBody {
    CommandBody::Restore { snapshot: Bytes::copy_from_slice(snapshot) }
}

fn rejected(response: &Response) -> bool {
    matches!(response, Err(KvError::RestoreRejected { .. }))
}

/// A backup of `keys` user keys under `config`.
fn backup_of_keys(config: KvConfig, keys: u64) -> Vec<u8> {
    let mut source = KvStore::new(config).unwrap();
    for i in 0..keys {
        put(&mut source, format!("user/{i:03}").as_bytes(), b"v");
    }
    bytes_of(&source)
}

/// A store with one reserved record, one user key and one live session (id 3).
fn store_with_records(config: KvConfig) -> KvStore {
    let mut store = KvStore::new(config).unwrap();
    put(&mut store, &reserved("address/1"), b"127.0.0.1:7801");
    put(&mut store, b"old", b"before");
    register(&mut store, 50);
    store
}

/// The keys_max bound is exact: the backup's own reserved records do not count (they are
/// dropped), the store's do; `keys_max` keys in all is accepted and its snapshot installs,
/// one more is refused.
#[test]
fn the_keys_max_bound_counts_the_stores_reserved_records_exactly() {
    let config = KvConfig { keys_max: 4, ..KvConfig::default() };
    // 3 user keys + the store's 1 reserved record = keys_max: accepted.
    let mut store = store_with_records(config);
    assert_eq!(apply(&mut store, 60, restore(&backup_of_keys(config, 3))), Ok(Output::Restored));
    assert_eq!(store.len(), 4);
    assert_eq!(bytes_of(&replica_of(&store)), bytes_of(&store));
    // A backup full of keys_max keys, one of them its own reserved record: that one is dropped,
    // so 3 user keys + the store's record fit.
    let mut source = KvStore::new(config).unwrap();
    put(&mut source, &reserved("address/9"), b"attacker:9");
    for key in [&b"a"[..], b"b", b"c"] {
        put(&mut source, key, b"v");
    }
    let mut store = store_with_records(config);
    assert_eq!(apply(&mut store, 60, restore(&bytes_of(&source))), Ok(Output::Restored));
    assert_eq!(store.get(&reserved("address/9")), None);
    assert_eq!(store.len(), 4);
    replica_of(&store);
    // 4 user keys + 1 reserved: refused, and the store is byte-for-byte as before.
    let mut store = store_with_records(config);
    let before = replica_of(&store);
    let response = apply(&mut store, 60, restore(&backup_of_keys(config, 4)));
    assert!(rejected(&response), "{response:?}");
    let mut expected = before;
    // The refused entry still advances the applied index and the clock, nothing else.
    apply(&mut expected, 60, CommandBody::RestoreAbort { restore_id: 77 }).unwrap();
    assert_eq!(bytes_of(&store), bytes_of(&expected));
}

/// A refusal at the last piece of a streamed restore (the staging already taken out of the
/// state) leaves the store as it was with no staging, identically on a replica that restarted
/// from a snapshot taken mid-stream; a later piece of that restore is refused, and a new restore
/// can start.
#[test]
fn a_refused_last_piece_leaves_the_store_as_it_was_on_every_replica() {
    let config = KvConfig { keys_max: 4, ..KvConfig::default() };
    let too_big = backup_of_keys(config, 4);
    let pieces: Vec<&[u8]> = too_big.chunks(7).collect();
    let mut whole = store_with_records(config);
    let data_before: Vec<_> = whole.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let half = pieces.len() / 2;
    for (sequence, piece) in pieces[..half].iter().enumerate() {
        assert!(apply(&mut whole, 60, chunk(1, sequence as u64, piece, false)).is_ok());
    }
    let mut restarted = replica_of(&whole);
    for replica in [&mut whole, &mut restarted] {
        for (sequence, piece) in pieces.iter().enumerate().skip(half) {
            let last = sequence + 1 == pieces.len();
            let response = apply(replica, 61, chunk(1, sequence as u64, piece, last));
            assert_eq!(rejected(&response), last, "piece {sequence}: {response:?}");
        }
        assert!(!replica.restore_staged());
        let data: Vec<_> = replica.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(data, data_before);
        assert!(replica.is_session_live(ClientId(3)));
        let response = apply(replica, 62, chunk(1, pieces.len() as u64, b"x", true));
        assert!(rejected(&response), "{response:?}");
    }
    assert_eq!(bytes_of(&whole), bytes_of(&restarted));
    replica_of(&whole);
    // A fitting backup streamed next is restored.
    let fits = backup_of_keys(config, 3);
    assert_eq!(apply(&mut whole, 63, chunk(2, 0, &fits, true)), Ok(Output::Restored));
    assert_eq!(whole.len(), 4);
}

/// A one-shot restore refused for keys_max while a streamed restore is staged leaves the staging
/// untouched: the streamed restore then finishes.
#[test]
fn a_refused_one_shot_restore_keeps_the_staged_streamed_restore() {
    let config = KvConfig { keys_max: 4, ..KvConfig::default() };
    let fits = backup_of_keys(config, 3);
    let mut store = store_with_records(config);
    apply(&mut store, 60, chunk(9, 0, &fits[..fits.len() / 2], false)).unwrap();
    let staged_snapshot = bytes_of(&store);
    let response = apply(&mut store, 61, restore(&backup_of_keys(config, 4)));
    assert!(rejected(&response), "{response:?}");
    assert!(store.restore_staged());
    assert_eq!(store.get(b"old").map(|v| &v[..]), Some(&b"before"[..]));
    assert_ne!(bytes_of(&store), staged_snapshot, "only the applied index and clock moved");
    let response = apply(&mut store, 62, chunk(9, 1, &fits[fits.len() / 2..], true));
    assert_eq!(response, Ok(Output::Restored));
    assert_eq!(store.get(b"old"), None);
    assert_eq!(store.len(), 4);
}

/// A backup with more live sessions than this store's `sessions_max`, or more expired ids than
/// it remembers, is refused by the backup reader (the store unchanged), so `fit_to_log` never
/// has to bound them.
#[test]
fn a_backup_over_this_stores_session_bounds_is_refused() {
    let wide = KvConfig { sessions_max: 5, expired_sessions_remembered_max: 5, ..KvConfig::default() };
    let mut source = KvStore::new(wide).unwrap();
    for _ in 0..8 {
        register(&mut source, 10); // ids 1..=8: 5 live, 3 expired (evicted)
    }
    let backup = bytes_of(&source);
    let narrow_live = KvConfig { sessions_max: 4, ..wide };
    let narrow_expired = KvConfig { expired_sessions_remembered_max: 2, ..wide };
    for config in [narrow_live, narrow_expired] {
        let mut store = store_with_records(config);
        for _ in 0..10 {
            noop(&mut store);
        }
        let response = apply(&mut store, 60, restore(&backup));
        assert!(rejected(&response), "{config:?}: {response:?}");
        assert_eq!(store.session_count(), 1);
        assert!(store.is_session_live(ClientId(3)));
        assert_eq!(store.get(b"old").map(|v| &v[..]), Some(&b"before"[..]));
    }
    let mut store = store_with_records(wide);
    for _ in 0..10 {
        noop(&mut store);
    }
    assert_eq!(apply(&mut store, 60, restore(&backup)), Ok(Output::Restored));
    assert_eq!(store.session_count(), 5);
    replica_of(&store);
}

/// Fitted sessions keep the table's invariants: ids above the applied index are forgotten (live
/// and expired), activity is clamped to this log's clock and the recency order rebuilt. Then
/// expiry and eviction decide from the clamped times, identically on a replica restarted from
/// the snapshot taken right after the restore, and that snapshot always installs.
#[test]
fn fitted_sessions_expire_and_evict_by_this_logs_clock() {
    let config = KvConfig {
        sessions_max: 4,
        expired_sessions_remembered_max: 4,
        session_timeout_ms: 1_000,
        ..KvConfig::default()
    };
    let mut source = KvStore::new(config).unwrap();
    // Backup clock runs to 10_000; sessions: ids 1..=6, the first two evicted (expired).
    let stamps = [100, 200, 9_000, 9_500, 9_800, 10_000];
    for stamp in stamps {
        register(&mut source, stamp);
    }
    assert_eq!(source.session_count(), 4); // ids 3, 4, 5, 6
    let backup = bytes_of(&source);

    // The store's log is at index 5 (the restore entry) with clock 9_600: id 6 is above it and
    // is forgotten; ids 4 (9_500) keeps its time, id 5 (9_800) is clamped to 9_600.
    let mut store = KvStore::new(config).unwrap();
    for _ in 0..3 {
        noop(&mut store);
    }
    put(&mut store, b"k", b"v");
    assert_eq!(store.applied_index(), LogIndex(4));
    let response = apply(&mut store, 9_600, restore(&backup));
    assert_eq!(response, Ok(Output::Restored));
    assert_eq!(store.clock_ms(), 9_600);
    assert!(store.is_session_live(ClientId(3)) && store.is_session_live(ClientId(4)));
    assert!(store.is_session_live(ClientId(5)));
    assert!(!store.is_session_live(ClientId(6)));
    assert_eq!(store.session_count(), 3);
    // Expired ids 1 and 2 are remembered (both under the applied index).
    for id in [1, 2] {
        let response = session_put(&mut store, 9_600, ClientId(id), 1, b"x", b"y");
        assert_eq!(response, Err(KvError::SessionExpired { client_id: ClientId(id) }));
    }
    let mut restarted = replica_of(&store);
    assert_eq!(bytes_of(&restarted), bytes_of(&store));

    for replica in [&mut store, &mut restarted] {
        // At 10_500: id 3 (9_000) is idle 1_500 > 1_000 and expires; 4 (9_500) is at exactly the
        // timeout and stays; 5 (clamped to 9_600) stays.
        let response = session_put(replica, 10_500, ClientId(3), 1, b"x", b"y");
        assert_eq!(response, Err(KvError::SessionExpired { client_id: ClientId(3) }));
        assert!(replica.is_session_live(ClientId(4)) && replica.is_session_live(ClientId(5)));
        // A registration fills the table (4, 5, new); another evicts the least recently used:
        // id 4 (9_500) before id 5 (9_600), so the recency order was rebuilt from clamped times.
        let first = register(replica, 10_500);
        assert!(first.0 > 6 && replica.session_count() == 3);
        register(replica, 10_500);
        register(replica, 10_500);
        assert!(!replica.is_session_live(ClientId(4)), "id 4 was least recently used");
        assert!(replica.is_session_live(ClientId(5)));
        // At 10_601 id 5, clamped to 9_600, has been idle 1_001 ms: it expires.
        noop(replica);
        let response = session_put(replica, 10_601, ClientId(5), 1, b"x", b"y");
        assert_eq!(response, Err(KvError::SessionExpired { client_id: ClientId(5) }));
    }
    assert_eq!(bytes_of(&store), bytes_of(&restarted));
    replica_of(&store);
}

/// The clock after a restore is the store's whatever the backup's: behind (the backup's
/// sessions then expire at the next command past the timeout, as they did before the change,
/// since the larger clock was the store's) or ahead (clamped). Either way a snapshot installs.
#[test]
fn the_clock_is_the_stores_and_the_snapshot_installs_either_way() {
    let config = KvConfig { session_timeout_ms: 1_000, ..KvConfig::default() };
    for backup_clock in [10, 1_000_000] {
        let mut source = KvStore::new(config).unwrap();
        register(&mut source, backup_clock);
        let backup = bytes_of(&source);
        let mut store = store_with_records(config);
        apply(&mut store, 500_000, restore(&backup)).unwrap();
        assert_eq!(store.clock_ms(), 500_000);
        assert!(store.is_session_live(ClientId(1)));
        replica_of(&store);
        let response = session_put(&mut store, 500_500, ClientId(1), 1, b"x", b"y");
        if backup_clock < 500_000 {
            assert_eq!(response, Err(KvError::SessionExpired { client_id: ClientId(1) }));
        } else {
            assert_eq!(response, Ok(Output::Written));
        }
        assert_eq!(bytes_of(&replica_of(&store)), bytes_of(&store));
    }
}

/// FINDING (medium): `fit_to_log` keeps every backup session whose id is at or below the applied
/// index, but an id is only meaningful in the log that assigned it. Restoring a backup from
/// another cluster (or from a log rebuilt since) hands this log's live client with the same id
/// the other client's session: its next request with the same sequence is answered from the
/// other client's cache (`Written`) and not applied, an acknowledged lost write (at-most-once
/// and linearizability broken, thesis §6.3). Same-cluster backups are fine (their ids name the
/// same entries). Suggested fix: have a snapshot carry the cluster's identity (or the term of
/// its applied entry) and keep the backup's sessions only when it comes from this log, else
/// drop them all (clients register again); or always drop the backup's sessions on restore.
/// The commit message also points to "native-node/README.md on restores" for re-registering,
/// which has no such text.
#[test]
#[ignore = "finding (medium): a foreign backup's session with an id at or below the applied index is handed to this log's live client of that id, which gets the other client's cached reply and its write is lost; fix: keep backup sessions only when the backup comes from this log (cluster id / term of applied entry in the snapshot), else drop them"]
fn a_foreign_backups_session_is_not_handed_to_a_live_client() {
    // The other cluster: client 1 wrote "theirs" with sequence 1.
    let mut other = KvStore::new(KvConfig::default()).unwrap();
    let theirs = register(&mut other, 10);
    assert_eq!(session_put(&mut other, 10, theirs, 1, b"k", b"theirs"), Ok(Output::Written));
    let backup = bytes_of(&other);
    // This cluster: client 1 registered too, and has not sent anything yet.
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    let ours = register(&mut store, 10);
    assert_eq!(ours, theirs);
    noop(&mut store);
    apply(&mut store, 20, restore(&backup)).unwrap();
    // Our client's first request, sequence 1: either applied, or refused as unknown.
    let response = session_put(&mut store, 21, ours, 1, b"k", b"ours");
    let applied = store.get(b"k").map(|v| &v[..]) == Some(&b"ours"[..]);
    assert!(
        applied || response == Err(KvError::UnknownSession { client_id: ours }),
        "answered {response:?} but k = {:?}",
        store.get(b"k")
    );
}
