//! The key-value state machine and its client sessions (Raft thesis §6.3), driven the way a
//! Raft driver drives it: committed entries, in order, through `StateMachine::apply`.

use proptest::prelude::*;
use raft_core::kv::{
    ClientId, Command, DecodeError, KvConfig, KvError, KvStore, Operation, Output, Response, SnapshotError,
    KEY_BYTES_MAX, LIST_KEYS_MAX, LIST_RESPONSE_BYTES_MAX, SNAPSHOT_MAGIC, VALUE_BYTES_MAX,
};
use raft_core::state_machine::{
    restore_from_chunks, SnapshotRestore, StateMachine, SNAPSHOT_CHUNK_BYTES_MAX,
};
use raft_core::{Bytes, Entry, EntryPayload, LogIndex, Membership, NodeId, Term};

/// One replica: a store and the log position it has reached.
struct Replica {
    store: KvStore,
}

impl Replica {
    fn new(config: KvConfig) -> Replica {
        Replica { store: KvStore::new(config).unwrap() }
    }

    fn with_defaults() -> Replica {
        Replica::new(KvConfig::default())
    }

    fn next_entry(&self, payload: EntryPayload) -> Entry {
        Entry { term: Term(1), index: self.store.applied_index().next(), payload }
    }

    fn apply_bytes(&mut self, bytes: Bytes) -> Response {
        let entry = self.next_entry(EntryPayload::Command(bytes));
        self.store.apply(&entry)
    }

    fn apply(&mut self, command: &Command) -> Response {
        self.apply_bytes(command.encode())
    }

    fn register(&mut self, timestamp_ms: u64) -> ClientId {
        match self.apply(&Command::register(timestamp_ms)) {
            Ok(Output::Registered { client_id }) => client_id,
            other => panic!("registration failed: {other:?}"),
        }
    }

    fn snapshot_bytes(&self) -> Vec<u8> {
        self.store.snapshot().flat_map(|chunk| chunk.to_vec()).collect()
    }
}

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn put(key: &str, value: &str) -> Operation {
    Operation::Put { key: b(key), value: b(value) }
}

fn get(key: &str) -> Operation {
    Operation::Get { key: b(key) }
}

fn list(prefix: &str, start_after: Option<&str>, limit: u32) -> Operation {
    Operation::List { prefix: b(prefix), start_after: start_after.map(b), limit }
}

fn keys(output: Response) -> (Vec<String>, bool) {
    match output {
        Ok(Output::Keys { keys, truncated }) => {
            (keys.iter().map(|key| String::from_utf8(key.to_vec()).unwrap()).collect(), truncated)
        }
        other => panic!("not a key list: {other:?}"),
    }
}

#[test]
fn every_operation_does_what_it_says() {
    let mut r = Replica::with_defaults();
    let t = 10;
    assert_eq!(r.apply(&Command::unsessioned(t, get("a"))), Ok(Output::Value(None)));
    assert_eq!(r.apply(&Command::unsessioned(t, put("a", "1"))), Ok(Output::Written));
    assert_eq!(r.apply(&Command::unsessioned(t, get("a"))), Ok(Output::Value(Some(b("1")))));

    let cas = |expected: Option<&str>, new: &str| Operation::CompareAndSwap {
        key: b("a"),
        expected: expected.map(b),
        new: b(new),
    };
    assert_eq!(r.apply(&Command::unsessioned(t, cas(Some("1"), "2"))), Ok(Output::Swapped));
    assert_eq!(
        r.apply(&Command::unsessioned(t, cas(Some("1"), "3"))),
        Ok(Output::NotSwapped { current: Some(b("2")) })
    );
    assert_eq!(
        r.apply(&Command::unsessioned(t, cas(None, "3"))),
        Ok(Output::NotSwapped { current: Some(b("2")) })
    );

    let delete = Operation::Delete { key: b("a") };
    assert_eq!(r.apply(&Command::unsessioned(t, delete.clone())), Ok(Output::Deleted { existed: true }));
    assert_eq!(r.apply(&Command::unsessioned(t, delete)), Ok(Output::Deleted { existed: false }));
    // Compare-and-swap from "absent" creates the key.
    assert_eq!(r.apply(&Command::unsessioned(t, cas(None, "4"))), Ok(Output::Swapped));
    assert_eq!(r.store.get(b"a"), Some(&b("4")));
    // An empty key is a key like any other.
    assert_eq!(r.apply(&Command::unsessioned(t, put("", "empty"))), Ok(Output::Written));
    assert_eq!(r.apply(&Command::unsessioned(t, get(""))), Ok(Output::Value(Some(b("empty")))));
}

#[test]
fn list_by_prefix_is_ordered_bounded_and_resumable() {
    let mut r = Replica::with_defaults();
    for key in ["app/3", "app/1", "apple", "app/2", "b", "ap"] {
        r.apply(&Command::unsessioned(1, put(key, "x"))).unwrap();
    }
    assert_eq!(
        keys(r.apply(&Command::unsessioned(1, list("app/", None, 10)))),
        (vec!["app/1".into(), "app/2".into(), "app/3".into()], false)
    );
    assert_eq!(
        keys(r.apply(&Command::unsessioned(1, list("app/", None, 2)))),
        (vec!["app/1".into(), "app/2".into()], true)
    );
    assert_eq!(
        keys(r.apply(&Command::unsessioned(1, list("app/", Some("app/2"), 2)))),
        (vec!["app/3".into()], false)
    );
    // A start_after before the prefix starts at the prefix.
    assert_eq!(keys(r.apply(&Command::unsessioned(1, list("b", Some("a"), 5)))), (vec!["b".into()], false));
    assert_eq!(keys(r.apply(&Command::unsessioned(1, list("", None, 0)))), (vec![], true));
    assert_eq!(keys(r.apply(&Command::unsessioned(1, list("zzz", None, 5)))), (vec![], false));
    // Served locally too (ReadIndex), with the same answer.
    assert_eq!(
        keys(r.store.read(&list("app", None, 10))),
        (vec!["app/1".into(), "app/2".into(), "app/3".into(), "apple".into()], false)
    );
}

#[test]
fn iter_prefix_yields_exactly_the_keys_under_the_prefix_in_order() {
    let mut r = Replica::with_defaults();
    for key in ["app/3", "app/1", "apple", "app/2", "b", "ap", "app"] {
        r.apply(&Command::unsessioned(1, put(key, "x"))).unwrap();
    }
    let under = |prefix: &str| -> Vec<String> {
        r.store.iter_prefix(prefix.as_bytes()).map(|(k, _)| String::from_utf8(k.to_vec()).unwrap()).collect()
    };
    assert_eq!(under("app/"), ["app/1", "app/2", "app/3"]);
    assert_eq!(under("app"), ["app", "app/1", "app/2", "app/3", "apple"]);
    assert_eq!(under("c"), Vec::<String>::new());
    assert_eq!(under("").len(), 7);
}

#[test]
fn list_is_clamped_by_count_and_bytes() {
    let mut r = Replica::with_defaults();
    for i in 0..(LIST_KEYS_MAX + 5) {
        r.apply(&Command::unsessioned(1, put(&format!("k{i:05}"), ""))).unwrap();
    }
    let (found, truncated) = keys(r.store.read(&list("k", None, u32::MAX)));
    assert_eq!(found.len(), LIST_KEYS_MAX as usize);
    assert!(truncated);

    let mut r = Replica::with_defaults();
    let long_key = |i: usize| format!("{i:04}{}", "x".repeat(KEY_BYTES_MAX - 4));
    let fit = LIST_RESPONSE_BYTES_MAX / KEY_BYTES_MAX;
    for i in 0..fit + 3 {
        r.apply(&Command::unsessioned(1, put(&long_key(i), ""))).unwrap();
    }
    let (found, truncated) = keys(r.store.read(&list("", None, 1000)));
    assert_eq!(found.len(), fit);
    assert!(truncated);
}

#[test]
fn size_limits_are_enforced_with_typed_errors() {
    let mut r = Replica::with_defaults();
    let key_at_max = Bytes::from(vec![b'k'; KEY_BYTES_MAX]);
    let key_over = Bytes::from(vec![b'k'; KEY_BYTES_MAX + 1]);
    let value_at_max = Bytes::from(vec![b'v'; VALUE_BYTES_MAX]);
    let value_over = Bytes::from(vec![b'v'; VALUE_BYTES_MAX + 1]);

    let at_max = Operation::Put { key: key_at_max.clone(), value: value_at_max.clone() };
    assert_eq!(r.apply(&Command::unsessioned(1, at_max)), Ok(Output::Written));

    let key_error = KvError::KeyTooLarge { len_bytes: KEY_BYTES_MAX as u64 + 1 };
    let value_error = KvError::ValueTooLarge { len_bytes: VALUE_BYTES_MAX as u64 + 1 };
    let cases = [
        (Operation::Get { key: key_over.clone() }, key_error.clone()),
        (Operation::Delete { key: key_over.clone() }, key_error.clone()),
        (Operation::Put { key: key_over.clone(), value: b("v") }, key_error.clone()),
        (Operation::Put { key: b("k"), value: value_over.clone() }, value_error.clone()),
        (
            Operation::CompareAndSwap { key: b("k"), expected: Some(value_over.clone()), new: b("v") },
            value_error.clone(),
        ),
        (Operation::CompareAndSwap { key: b("k"), expected: None, new: value_over }, value_error),
        (Operation::List { prefix: key_over, start_after: None, limit: 1 }, key_error),
    ];
    for (operation, error) in cases {
        let command = Command::unsessioned(1, operation);
        assert_eq!(command.validate(), Err(error.clone()), "proposer-side check");
        assert_eq!(r.apply(&command), Err(error), "apply-side check");
    }
    assert_eq!(r.store.len(), 1, "nothing over the limits was written");
    assert_eq!(
        KvError::KeyTooLarge { len_bytes: 1025 }.to_string(),
        "key of 1025 bytes exceeds 1024 bytes",
        "messages are lowercase, without a final period"
    );
}

#[test]
fn a_full_store_refuses_new_keys_but_updates_existing_ones() {
    let config = KvConfig { keys_max: 2, ..KvConfig::default() };
    let mut r = Replica::new(config);
    r.apply(&Command::unsessioned(1, put("a", "1"))).unwrap();
    r.apply(&Command::unsessioned(1, put("b", "1"))).unwrap();
    assert_eq!(r.apply(&Command::unsessioned(1, put("c", "1"))), Err(KvError::StoreFull { keys_max: 2 }));
    let cas = Operation::CompareAndSwap { key: b("c"), expected: None, new: b("1") };
    assert_eq!(r.apply(&Command::unsessioned(1, cas)), Err(KvError::StoreFull { keys_max: 2 }));
    assert_eq!(r.apply(&Command::unsessioned(1, put("a", "2"))), Ok(Output::Written));
}

#[test]
fn register_client_id_is_the_log_index_of_its_entry() {
    let mut r = Replica::with_defaults();
    assert_eq!(r.store.apply(&r.next_entry(EntryPayload::Noop)), Ok(Output::NoCommand));
    let membership = EntryPayload::Membership(Box::new(Membership::with_voters([NodeId(1)])));
    assert_eq!(r.store.apply(&r.next_entry(membership)), Ok(Output::NoCommand));
    assert_eq!(r.store.applied_index(), LogIndex(2));
    let client_id = r.register(5);
    assert_eq!(client_id, ClientId(3));
    assert!(r.store.is_session_live(client_id));
}

#[test]
fn a_retried_command_is_applied_exactly_once_and_gets_the_same_response() {
    let mut r = Replica::with_defaults();
    let alice = r.register(1);
    let bob = r.register(1);
    // A compare-and-swap that can only succeed once: applying it twice would answer NotSwapped.
    let claim = Operation::CompareAndSwap { key: b("lock"), expected: None, new: b("alice") };
    let first = r.apply(&Command::request(2, alice, 1, claim.clone()));
    assert_eq!(first, Ok(Output::Swapped));
    // Meanwhile Bob changes the key; a second application of Alice's put would clobber him.
    let overwrite = Operation::Put { key: b("lock"), value: b("bob") };
    r.apply(&Command::request(3, bob, 1, overwrite)).unwrap();
    let retry = r.apply(&Command::request(4, alice, 1, claim));
    assert_eq!(retry, first);
    assert_eq!(r.store.get(b"lock"), Some(&b("bob")));

    // Errors are cached like any other response.
    let too_big = Operation::Put { key: Bytes::from(vec![0; KEY_BYTES_MAX + 1]), value: b("") };
    let error = r.apply(&Command::request(5, alice, 2, too_big.clone()));
    assert!(matches!(error, Err(KvError::KeyTooLarge { .. })));
    assert_eq!(r.apply(&Command::request(6, alice, 2, too_big)), error);
    // Sequence numbers may skip.
    assert_eq!(r.apply(&Command::request(7, alice, 10, get("lock"))), Ok(Output::Value(Some(b("bob")))));
}

#[test]
fn a_stale_sequence_number_is_refused() {
    let mut r = Replica::with_defaults();
    let client = r.register(1);
    r.apply(&Command::request(2, client, 5, put("k", "5"))).unwrap();
    let stale = r.apply(&Command::request(3, client, 4, put("k", "4")));
    assert_eq!(stale, Err(KvError::StaleSequence { client_id: client, sequence: 4, last_sequence: 5 }));
    assert_eq!(r.store.get(b"k"), Some(&b("5")));
    assert_eq!(
        stale.unwrap_err().to_string(),
        "stale request: session 1 sequence 4 is below the last applied sequence 5"
    );
}

#[test]
fn unknown_and_closed_sessions_are_refused() {
    let mut r = Replica::with_defaults();
    let ghost = ClientId(42);
    assert_eq!(
        r.apply(&Command::request(1, ghost, 1, get("k"))),
        Err(KvError::UnknownSession { client_id: ghost })
    );
    let client = r.register(1);
    assert_eq!(r.apply(&Command::close_session(2, client)), Ok(Output::SessionClosed));
    assert_eq!(
        r.apply(&Command::request(3, client, 1, get("k"))),
        Err(KvError::UnknownSession { client_id: client })
    );
    assert_eq!(
        r.apply(&Command::close_session(4, client)),
        Err(KvError::UnknownSession { client_id: client })
    );
}

#[test]
fn sessions_expire_by_log_time() {
    let config = KvConfig { session_timeout_ms: 1_000, ..KvConfig::default() };
    let mut r = Replica::new(config);
    let idle = r.register(0);
    let busy = r.register(0);
    // The store clock is the largest timestamp: a late, older timestamp does not move it back.
    r.apply(&Command::request(900, busy, 1, get("k"))).unwrap();
    r.apply(&Command::request(100, busy, 2, get("k"))).unwrap();
    assert_eq!(r.store.clock_ms(), 900);
    // Exactly the timeout is still alive.
    r.apply(&Command::request(1_000, busy, 3, get("k"))).unwrap();
    assert!(r.store.is_session_live(idle));
    // One millisecond more and the idle session is gone, with no request from it needed.
    r.apply(&Command::request(1_001, busy, 4, get("k"))).unwrap();
    assert!(!r.store.is_session_live(idle));
    assert!(r.store.is_session_live(busy));
    assert_eq!(
        r.apply(&Command::request(1_002, idle, 1, get("k"))),
        Err(KvError::SessionExpired { client_id: idle })
    );
    // A session's own late request expires it first: it was idle too long.
    assert_eq!(
        r.apply(&Command::request(5_000, busy, 5, get("k"))),
        Err(KvError::SessionExpired { client_id: busy })
    );
    assert_eq!(r.store.session_count(), 0);
}

#[test]
fn the_least_recently_used_session_is_evicted_when_full() {
    let config = KvConfig { sessions_max: 3, ..KvConfig::default() };
    let mut r = Replica::new(config);
    let a = r.register(1);
    let b_ = r.register(2);
    let c = r.register(3);
    r.apply(&Command::request(4, a, 1, get("k"))).unwrap();
    let d = r.register(5);
    assert_eq!(r.store.session_count(), 3);
    assert!(!r.store.is_session_live(b_), "b was used least recently");
    for live in [a, c, d] {
        assert!(r.store.is_session_live(live));
    }
    assert_eq!(
        r.apply(&Command::request(6, b_, 1, get("k"))),
        Err(KvError::SessionExpired { client_id: b_ })
    );
}

/// A mixed workload with sessions registering, expiring and being evicted; deterministic.
fn workload(seed: u64, count: usize) -> Vec<Bytes> {
    let mut rng = raft_core::rng::Rng::new(seed);
    let mut entries = Vec::new();
    let mut time_ms = 0;
    for i in 0..count {
        time_ms += rng.range(0, 300);
        // Proposers' clocks disagree a little: timestamps are not monotonic in the log.
        let timestamp_ms = time_ms.saturating_sub(rng.range(0, 200));
        let key = Bytes::from(format!("k{}", rng.range(0, 8)));
        let value = Bytes::from(format!("v{i}"));
        let operation = match rng.range(0, 5) {
            0 => Operation::Get { key },
            1 => Operation::Put { key, value },
            2 => Operation::Delete { key },
            3 => Operation::CompareAndSwap {
                key,
                expected: Some(Bytes::from(format!("v{}", i / 2))),
                new: value,
            },
            _ => Operation::List { prefix: Bytes::from_static(b"k"), start_after: None, limit: 3 },
        };
        let command = match rng.range(0, 10) {
            0 => Command::register(timestamp_ms),
            1 => Command::unsessioned(timestamp_ms, operation),
            2 => Command::close_session(timestamp_ms, ClientId(rng.range(1, i as u64 + 2))),
            _ => Command::request(
                timestamp_ms,
                ClientId(rng.range(1, i as u64 + 2)),
                rng.range(0, 4),
                operation,
            ),
        };
        entries.push(command.encode());
    }
    entries
}

fn small_config() -> KvConfig {
    KvConfig { session_timeout_ms: 2_000, sessions_max: 5, expired_sessions_remembered_max: 4, keys_max: 100 }
}

#[test]
fn replicas_fed_the_same_entries_agree_on_every_response_and_expiry() {
    let entries = workload(7, 2_000);
    let mut one = Replica::new(small_config());
    let mut two = Replica::new(small_config());
    let mut expired = 0;
    for bytes in &entries {
        let (a, b_) = (one.apply_bytes(bytes.clone()), two.apply_bytes(bytes.clone()));
        assert_eq!(a, b_);
        expired += usize::from(matches!(a, Err(KvError::SessionExpired { .. })));
    }
    assert!(expired > 0, "the workload exercises expiry");
    assert_eq!(one.snapshot_bytes(), two.snapshot_bytes());
}

#[test]
fn snapshot_then_restore_gives_identical_state_and_bytes() {
    let entries = workload(11, 3_000);
    let mut source = Replica::new(small_config());
    for bytes in &entries[..2_000] {
        let _ = source.apply_bytes(bytes.clone());
    }
    let snapshot = source.snapshot_bytes();
    assert_eq!(&snapshot[..SNAPSHOT_MAGIC.len()], &SNAPSHOT_MAGIC);

    // Any chunking will do on the receiving side.
    let mut target = Replica::new(small_config());
    restore_from_chunks(&mut target.store, snapshot.chunks(7)).unwrap();
    assert_eq!(target.store.applied_index(), source.store.applied_index());
    assert_eq!(target.store.clock_ms(), source.store.clock_ms());
    assert_eq!(target.store.iter().collect::<Vec<_>>(), source.store.iter().collect::<Vec<_>>());
    assert_eq!(target.snapshot_bytes(), snapshot);

    // And both continue identically, sessions and all.
    for bytes in &entries[2_000..] {
        assert_eq!(source.apply_bytes(bytes.clone()), target.apply_bytes(bytes.clone()));
    }
    assert_eq!(source.snapshot_bytes(), target.snapshot_bytes());
}

#[test]
fn a_large_snapshot_streams_in_bounded_chunks() {
    let mut r = Replica::new(KvConfig::default());
    let value = Bytes::from(vec![7; VALUE_BYTES_MAX]);
    for i in 0..40 {
        r.apply(&Command::unsessioned(
            1,
            Operation::Put { key: Bytes::from(format!("{i}")), value: value.clone() },
        ))
        .unwrap();
    }
    let chunks: Vec<Bytes> = r.store.snapshot().collect();
    assert!(chunks.len() > 30);
    assert!(chunks.iter().all(|chunk| !chunk.is_empty() && chunk.len() <= SNAPSHOT_CHUNK_BYTES_MAX));
    let mut copy = Replica::new(KvConfig::default());
    restore_from_chunks(&mut copy.store, &chunks).unwrap();
    assert_eq!(copy.store.len(), 40);
}

#[test]
fn a_snapshot_is_point_in_time() {
    let mut r = Replica::with_defaults();
    r.apply(&Command::unsessioned(1, put("a", "1"))).unwrap();
    let stream = r.store.snapshot();
    r.apply(&Command::unsessioned(1, put("a", "2"))).unwrap();
    let bytes: Vec<u8> = stream.flat_map(|chunk| chunk.to_vec()).collect();
    let mut copy = Replica::with_defaults();
    restore_from_chunks(&mut copy.store, [bytes]).unwrap();
    assert_eq!(copy.store.get(b"a"), Some(&b("1")));
    assert_eq!(copy.store.applied_index(), LogIndex(1));
}

#[test]
fn a_corrupt_snapshot_is_rejected_and_the_old_state_survives() {
    let mut source = Replica::new(small_config());
    for bytes in workload(3, 300) {
        let _ = source.apply_bytes(bytes);
    }
    let good = source.snapshot_bytes();

    let mut target = Replica::new(small_config());
    target.apply(&Command::unsessioned(1, put("mine", "untouched"))).unwrap();
    let before = target.snapshot_bytes();
    let mut reject = |bytes: &[u8]| -> SnapshotError {
        let error = restore_from_chunks(&mut target.store, bytes.chunks(64)).unwrap_err();
        assert_eq!(target.snapshot_bytes(), before, "old state intact after: {error}");
        error
    };

    // Every single flipped bit anywhere is caught, by structure or by the checksum.
    for position in 0..good.len() {
        let mut bad = good.clone();
        bad[position] ^= 0x10;
        reject(&bad);
    }
    assert_eq!(reject(&good[..good.len() - 1]), SnapshotError::Truncated);
    assert_eq!(reject(&good[..good.len() / 2]), SnapshotError::Truncated);
    assert_eq!(reject(&[]), SnapshotError::Truncated);
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(reject(&longer), SnapshotError::TrailingBytes);
    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(reject(&magic), SnapshotError::BadMagic);
    let mut version = good.clone();
    version[6] = 9;
    assert_eq!(reject(&version), SnapshotError::UnsupportedVersion { version: 9 });
    let mut huge_frame = good[..8].to_vec();
    huge_frame.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(reject(&huge_frame), SnapshotError::FrameTooLarge { .. }));

    // A snapshot from a store configured with more room than this one is refused, not trimmed.
    let mut roomy = Replica::with_defaults();
    for i in 0..(small_config().keys_max + 1) {
        roomy.apply(&Command::unsessioned(1, put(&format!("{i}"), ""))).unwrap();
    }
    assert_eq!(reject(&roomy.snapshot_bytes()), SnapshotError::Invalid("more keys than keys_max"));

    // A poisoned restore keeps answering its first error.
    let mut restore = target.store.begin_restore();
    assert_eq!(restore.write_chunk(b"nonsense"), Err(SnapshotError::BadMagic));
    assert_eq!(restore.write_chunk(&good), Err(SnapshotError::BadMagic));
    assert_eq!(target.store.finish_restore(restore), Err(SnapshotError::BadMagic));
}

#[test]
fn garbage_command_bytes_give_an_error_response() {
    let mut r = Replica::with_defaults();
    assert_eq!(r.apply_bytes(Bytes::new()), Err(KvError::Decode(DecodeError::Empty)));
    assert_eq!(
        r.apply_bytes(Bytes::from_static(b"\x07junk")),
        Err(KvError::Decode(DecodeError::UnsupportedVersion { version: 7 }))
    );
    assert_eq!(r.store.applied_index(), LogIndex(2), "a bad command still occupies its index");
}

#[test]
fn writes_are_refused_on_the_local_read_path() {
    let r = Replica::with_defaults();
    assert_eq!(r.store.read(&put("k", "v")), Err(KvError::NotReadOnly));
    assert_eq!(r.store.read(&get("k")), Ok(Output::Value(None)));
}

#[test]
fn errors_and_snapshots_travel_between_threads() {
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    error::<KvError>();
    error::<DecodeError>();
    error::<SnapshotError>();
    sendable::<raft_core::kv::KvSnapshot>();
    sendable::<raft_core::kv::KvRestore>();
    sendable::<KvStore>();
}

#[test]
#[should_panic(expected = "in log order")]
fn skipping_an_entry_is_a_driver_bug() {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    let _ = store.apply(&Entry { term: Term(1), index: LogIndex(2), payload: EntryPayload::Noop });
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_answer_an_error_or_a_command(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut r = Replica::with_defaults();
        let response = r.apply_bytes(Bytes::from(bytes.clone()));
        match Command::decode(&bytes) {
            Err(error) => prop_assert_eq!(response, Err(KvError::Decode(error))),
            Ok(command) => prop_assert_eq!(Command::decode(&command.encode()), Ok(command)),
        }
    }

    #[test]
    fn valid_prefix_then_garbage_never_panics(seed in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut r = Replica::new(small_config());
        for bytes in workload(seed, 20) {
            let mut mangled = bytes.to_vec();
            let cut = tail.len().min(mangled.len());
            mangled.truncate(mangled.len() - cut / 2);
            mangled.extend_from_slice(&tail);
            let _ = r.apply_bytes(Bytes::from(mangled));
        }
        prop_assert_eq!(r.store.applied_index(), LogIndex(20));
    }

    #[test]
    fn random_snapshot_bytes_are_rejected_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut r = Replica::with_defaults();
        r.apply(&Command::unsessioned(1, put("k", "v"))).unwrap();
        let mut with_magic = SNAPSHOT_MAGIC.to_vec();
        with_magic.extend_from_slice(&1u16.to_le_bytes());
        with_magic.extend_from_slice(&bytes);
        prop_assert!(restore_from_chunks(&mut r.store, [&bytes]).is_err());
        prop_assert!(restore_from_chunks(&mut r.store, [&with_magic]).is_err());
        prop_assert_eq!(r.store.get(b"k"), Some(&b("v")));
    }

    #[test]
    fn any_workload_snapshots_and_restores_byte_for_byte(seed in any::<u64>(), count in 0usize..400) {
        let mut source = Replica::new(small_config());
        for bytes in workload(seed, count) {
            let _ = source.apply_bytes(bytes);
        }
        let snapshot = source.snapshot_bytes();
        let mut target = Replica::new(small_config());
        restore_from_chunks(&mut target.store, snapshot.chunks(13)).unwrap();
        prop_assert_eq!(target.snapshot_bytes(), snapshot);
    }
}

/// hashicorp's `Restore`: a user snapshot goes through the log, so every replica swaps its
/// state at the same index; a corrupt one is refused and changes nothing.
#[test]
fn a_user_snapshot_restores_through_the_log_and_a_corrupt_one_changes_nothing() {
    let mut backup = Replica::with_defaults();
    backup.apply(&Command::unsessioned(1, put("a", "from backup"))).unwrap();
    let snapshot = Bytes::from(backup.snapshot_bytes());
    let mut replicas = [Replica::with_defaults(), Replica::with_defaults()];
    for replica in &mut replicas {
        replica.apply(&Command::unsessioned(5, put("b", "live"))).unwrap();
        let restore = Command {
            timestamp_ms: 9,
            body: raft_core::kv::CommandBody::Restore { snapshot: snapshot.clone() },
        };
        assert_eq!(replica.apply(&restore), Ok(Output::Restored));
        assert_eq!(replica.store.get(&b("a")), Some(&b("from backup")));
        assert_eq!(replica.store.get(&b("b")), None);
        assert_eq!(replica.store.applied_index(), LogIndex(2), "the log decides the applied index");
    }
    assert_eq!(replicas[0].snapshot_bytes(), replicas[1].snapshot_bytes());
    let mut corrupt = snapshot.to_vec();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xFF;
    let before = replicas[0].snapshot_bytes();
    let bad = Command {
        timestamp_ms: 10,
        body: raft_core::kv::CommandBody::Restore { snapshot: Bytes::from(corrupt) },
    };
    assert!(matches!(replicas[0].apply(&bad), Err(KvError::RestoreRejected { .. })));
    let after = replicas[0].snapshot_bytes();
    assert_ne!(before, after, "only the applied index moved");
    assert_eq!(replicas[0].store.get(&b("a")), Some(&b("from backup")));
}
