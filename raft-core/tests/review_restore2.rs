//! Adversarial review of commit bbfee41 ("kv restore: a restore never passes keys_max ..."):
//! `swap_in_backup` refuses a backup whose keys with the store's reserved records pass
//! `keys_max`, keeps the store's log clock, and (since the foreign-sessions finding below was
//! fixed) keeps the store's own client sessions and drops the backup's. Every replica must decide a restore from the log alone (Raft §5.3,
//! thesis §6.3 for sessions), a refused restore must leave the store as it was, and the state a
//! restore leaves must always be installable from its snapshot (thesis §5.1). Tests that pass
//! are regression tests; an ignored one names a finding, its severity and a suggested fix.

mod common;

use bytes::Bytes;
use common::kv::{apply, bytes_of, chunk, noop, put, register, replica_of, reserved};
use raft_core::kv::{
    ClientId, CommandBody, KvConfig, KvError, KvStore, Operation, Output, Response, SessionRequest,
};

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
/// it remembers, is refused by the backup reader (the store unchanged): the reader checks and
/// stages a backup's sessions like every record (so a staged backup's parse position survives a
/// snapshot), bounded by this store's limits, although a successful restore then drops them.
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
    // The store's own session stays; the backup's five are dropped.
    assert_eq!(store.session_count(), 1);
    assert!(store.is_session_live(ClientId(3)));
    replica_of(&store);
}

/// Was `fitted_sessions_expire_and_evict_by_this_logs_clock`, for the rule that kept a backup's
/// sessions fitted to this log; the rule is now that a restore keeps the store's own sessions
/// (live, expired ids, activity times and cached replies) and drops the backup's, live and
/// expired alike, whatever their ids. Then expiry and eviction decide from the store's own
/// times, identically on a replica restarted from the snapshot taken right after the restore,
/// and that snapshot always installs.
#[test]
fn a_restore_keeps_this_logs_sessions_and_their_clock() {
    let config = KvConfig {
        sessions_max: 4,
        expired_sessions_remembered_max: 4,
        session_timeout_ms: 1_000,
        ..KvConfig::default()
    };
    // The backup: ids 1..=6, the first two evicted (expired), 3..=6 live, clock 10_000.
    let mut source = KvStore::new(config).unwrap();
    for stamp in [100, 200, 9_000, 9_500, 9_800, 10_000] {
        register(&mut source, stamp);
    }
    assert_eq!(source.session_count(), 4);
    let backup = bytes_of(&source);

    // The store: id 1 registered at 100 (then expired), ids 2..=5 registered 8_700..9_500;
    // id 2 wrote once (its reply cached). Ids 1..=6 all collide with the backup's.
    let mut store = KvStore::new(config).unwrap();
    register(&mut store, 100);
    for stamp in [8_700, 9_000, 9_200, 9_500] {
        register(&mut store, stamp);
    }
    assert_eq!(session_put(&mut store, 9_500, ClientId(2), 1, b"k", b"ours"), Ok(Output::Written));
    assert_eq!(apply(&mut store, 9_600, restore(&backup)), Ok(Output::Restored));
    assert_eq!(store.clock_ms(), 9_600);
    assert_eq!(store.get(b"k"), None, "the data is the backup's");
    assert_eq!(store.session_count(), 4);
    for id in 2..=5 {
        assert!(store.is_session_live(ClientId(id)), "our id {id}");
    }
    // The backup's live id 6 is unknown here; our evicted id 1 is still remembered as expired.
    assert_eq!(
        session_put(&mut store, 9_600, ClientId(6), 1, b"x", b"y"),
        Err(KvError::UnknownSession { client_id: ClientId(6) })
    );
    assert_eq!(
        session_put(&mut store, 9_600, ClientId(1), 1, b"x", b"y"),
        Err(KvError::SessionExpired { client_id: ClientId(1) })
    );
    // Our client 2's retry is answered from its own cache and applies nothing.
    assert_eq!(session_put(&mut store, 9_600, ClientId(2), 1, b"k", b"ours"), Ok(Output::Written));
    assert_eq!(store.get(b"k"), None);
    let mut restarted = replica_of(&store);
    assert_eq!(bytes_of(&restarted), bytes_of(&store));

    for replica in [&mut store, &mut restarted] {
        // At 10_100: id 3 (9_000) is idle 1_100 > 1_000 and expires; id 4 (9_200) is idle 900.
        let response = session_put(replica, 10_100, ClientId(3), 1, b"x", b"y");
        assert_eq!(response, Err(KvError::SessionExpired { client_id: ClientId(3) }));
        assert!(replica.is_session_live(ClientId(4)) && replica.is_session_live(ClientId(5)));
        // Live: 2 (9_600), 4 (9_200), 5 (9_500). One registration fills the table, the next
        // evicts the least recently used: id 4.
        register(replica, 10_100);
        register(replica, 10_100);
        assert!(!replica.is_session_live(ClientId(4)), "id 4 was least recently used");
        assert!(replica.is_session_live(ClientId(5)) && replica.is_session_live(ClientId(2)));
    }
    assert_eq!(bytes_of(&store), bytes_of(&restarted));
    replica_of(&store);
}

/// The clock after a restore is the store's whatever the backup's, behind or ahead; the backup's
/// session is not brought in either way, the store's own carries on by the store's clock, and
/// the snapshot installs.
#[test]
fn the_clock_is_the_stores_and_the_snapshot_installs_either_way() {
    let config = KvConfig { session_timeout_ms: 1_000, ..KvConfig::default() };
    for backup_clock in [10, 1_000_000] {
        let mut source = KvStore::new(config).unwrap();
        register(&mut source, backup_clock);
        let backup = bytes_of(&source);
        let mut store = store_with_records(config);
        let ours = register(&mut store, 499_900);
        apply(&mut store, 500_000, restore(&backup)).unwrap();
        assert_eq!(store.clock_ms(), 500_000);
        assert!(!store.is_session_live(ClientId(1)), "the backup's session was brought in");
        assert!(store.is_session_live(ours));
        replica_of(&store);
        let response = session_put(&mut store, 500_500, ClientId(1), 1, b"x", b"y");
        assert_eq!(response, Err(KvError::UnknownSession { client_id: ClientId(1) }));
        assert_eq!(session_put(&mut store, 500_500, ours, 1, b"x", b"y"), Ok(Output::Written));
        // Our session was last used at 500_500: at 501_501 it has been idle too long.
        let response = session_put(&mut store, 501_501, ours, 2, b"x", b"z");
        assert_eq!(response, Err(KvError::SessionExpired { client_id: ours }));
        assert_eq!(bytes_of(&replica_of(&store)), bytes_of(&store));
    }
}

/// Was FINDING (medium; fixed: a restore keeps the store's sessions and drops the backup's,
/// `KvStore::swap_in_backup`): the old rule kept every backup session whose id was at or below
/// the applied index, but an id is only meaningful in the log that assigned it. Restoring a
/// backup from another cluster (or from a log rebuilt since) handed this log's live client with
/// the same id the other client's session: its next request with the same sequence was answered
/// from the other client's cache (`Written`) and not applied, an acknowledged lost write
/// (at-most-once and linearizability broken, thesis §6.3). Also checked: a client of this log
/// whose last reply is cached gets its own reply on a retry after the restore, not the
/// stranger's, and a replica restarted from the snapshot after the restore answers alike.
#[test]
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

    // This cluster's client 1 has a reply cached (a delete) when the backup comes in: its retry
    // is answered with that reply, on this replica and on one restarted after the restore.
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    let ours = register(&mut store, 10);
    let delete = Operation::Delete { key: Bytes::from("gone") };
    let request = |sequence| CommandBody::Request {
        session: Some(SessionRequest { client_id: ours, sequence }),
        operation: delete.clone(),
    };
    assert_eq!(apply(&mut store, 10, request(1)), Ok(Output::Deleted { existed: false }));
    apply(&mut store, 20, restore(&backup)).unwrap();
    let mut restarted = replica_of(&store);
    for replica in [&mut store, &mut restarted] {
        assert_eq!(apply(replica, 21, request(1)), Ok(Output::Deleted { existed: false }));
        assert_eq!(replica.get(b"k").map(|v| &v[..]), Some(&b"theirs"[..]), "the data is the backup's");
    }
    assert_eq!(bytes_of(&store), bytes_of(&restarted));
}
