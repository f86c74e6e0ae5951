//! Adversarial review of the streamed-restore fixes (branch `sec3`, commit b2f78c8): a snapshot
//! carries a staged restore (thesis §5.1: a snapshot is the whole state machine at its index), a
//! staged restore's life is bounded by rules decided from the log alone, and a restore keeps the
//! store's reserved records. Every replica must reach the same state from the same log whether
//! it replayed it whole or restarted from a snapshot on the way (replicated state machine
//! determinism, Raft §5.3/§7). Tests that pass are regression tests; an ignored one names a
//! finding, its severity and a suggested fix.

mod common;

use bytes::Bytes;
use common::kv::{apply, bytes_of, chunk, noop, put, register, replica_of, reserved};
use raft_core::kv::{
    CommandBody, KvConfig, KvError, KvStore, Operation, Output, Response, SessionRequest, SnapshotError,
    RESTORE_IDLE_MS, RESTORE_PIECES_MAX, RESTORE_STAGED_MS_MAX,
};
use raft_core::state_machine::{restore_from_chunks, StateMachine};
use serde::{Deserialize, Serialize};

/// A small backup with every kind of record: keys, live sessions with cached responses, and
/// expired sessions (`sessions_max` 3 evicts the first registrations).
fn backup() -> Vec<u8> {
    let config = KvConfig { sessions_max: 3, ..KvConfig::default() };
    let mut source = KvStore::new(config).unwrap();
    for i in 0..30u32 {
        put(&mut source, format!("user/{i:03}").as_bytes(), &[i as u8; 40]);
    }
    for round in 0..5u64 {
        let client_id = register(&mut source, 10 + round);
        let operation = Operation::Put { key: Bytes::from("s"), value: Bytes::from(vec![round as u8; 9]) };
        let session = Some(SessionRequest { client_id, sequence: 1 });
        apply(&mut source, 10 + round, CommandBody::Request { session, operation }).unwrap();
    }
    bytes_of(&source)
}

fn live_store() -> KvStore {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    put(&mut store, b"old", b"before");
    put(&mut store, &reserved("address/1"), b"127.0.0.1:7801");
    store
}

/// Feeds `pieces` as restore `id` from piece `from` on, one log-clock millisecond apart.
fn feed(store: &mut KvStore, id: u64, pieces: &[&[u8]], from: usize) -> Vec<Response> {
    (from..pieces.len())
        .map(|sequence| {
            let last = sequence + 1 == pieces.len();
            apply(store, 100 + sequence as u64, chunk(id, sequence as u64, pieces[sequence], last))
        })
        .collect()
}

/// Claim (1): for every cut point (inside the backup's header, inside a frame, on a frame
/// boundary, inside the trailer), a replica restarted from a snapshot taken there and replaying
/// the rest ends byte-for-byte where the replica that never snapshotted ends, answering every
/// piece the same. The snapshot of the restarted replica is also the same bytes as the one it
/// was restored from (the staged restore round-trips exactly: checksum state, parse position,
/// pending bytes, sequence, clocks).
#[test]
fn a_replica_restarted_mid_restore_at_any_cut_converges() {
    let snapshot = backup();
    for piece_bytes in [1usize, 3, 7, 64, 1000] {
        let pieces: Vec<&[u8]> = snapshot.chunks(piece_bytes).collect();
        let mut whole = live_store();
        let expected = feed(&mut whole, 9, &pieces, 0);
        assert_eq!(expected.last(), Some(&Ok(Output::Restored)), "piece size {piece_bytes}");
        let expected_bytes = bytes_of(&whole);
        let step = if pieces.len() > 400 { 13 } else { 1 };
        let cuts = (1..pieces.len()).filter(|cut| *cut < 40 || pieces.len() - cut < 40 || cut % step == 0);
        for cut in cuts {
            let mut before = live_store();
            for (sequence, piece) in pieces[..cut].iter().enumerate() {
                let response =
                    apply(&mut before, 100 + sequence as u64, chunk(9, sequence as u64, piece, false));
                assert_eq!(response, expected[sequence], "piece size {piece_bytes}, cut {cut}");
            }
            assert!(before.restore_staged());
            let mut restarted = replica_of(&before);
            assert!(restarted.restore_staged(), "piece size {piece_bytes}, cut {cut}");
            assert_eq!(bytes_of(&restarted), bytes_of(&before), "piece size {piece_bytes}, cut {cut}");
            let rest = feed(&mut restarted, 9, &pieces, cut);
            assert_eq!(rest, expected[cut..], "piece size {piece_bytes}, cut {cut}");
            assert_eq!(bytes_of(&restarted), expected_bytes, "piece size {piece_bytes}, cut {cut}");
        }
    }
}

/// A user's backup taken from a store while a restore is staged brings the store's data and
/// sessions, never the staging: restored by either command elsewhere, nothing is staged, and
/// the target's own staged restore (if any) is left as it was.
#[test]
fn a_backup_of_a_store_staging_a_restore_carries_no_staging() {
    let inner = backup();
    let mut staging = live_store();
    apply(&mut staging, 5, chunk(4, 0, &inner[..500], false)).unwrap();
    assert!(staging.restore_staged());
    let outer = bytes_of(&staging);

    let mut one_entry = live_store();
    assert_eq!(
        apply(&mut one_entry, 6, CommandBody::Restore { snapshot: Bytes::from(outer.clone()) }),
        Ok(Output::Restored)
    );
    assert!(!one_entry.restore_staged());
    assert_eq!(one_entry.get(b"old").map(|v| &v[..]), Some(&b"before"[..]));
    assert_eq!(one_entry.get(b"user/000"), None, "the staged backup's keys are not the user's data");

    let mut streamed = live_store();
    let pieces: Vec<&[u8]> = outer.chunks(33).collect();
    assert_eq!(feed(&mut streamed, 8, &pieces, 0).last(), Some(&Ok(Output::Restored)));
    assert!(!streamed.restore_staged());
    assert!(streamed.iter().eq(one_entry.iter()));

    // The target's own staging survives a one-entry restore of such a backup.
    let mut target = live_store();
    apply(&mut target, 7, chunk(11, 0, &inner[..300], false)).unwrap();
    apply(&mut target, 8, CommandBody::Restore { snapshot: Bytes::from(outer) }).unwrap();
    assert!(target.restore_staged());
    assert_eq!(apply(&mut target, 9, chunk(11, 1, &inner[300..], true)), Ok(Output::Restored));
    assert_eq!(target.get(b"user/029").map(|v| v.len()), Some(40));
}

/// Nested: a streamed restore of a backup that itself carries a staging, snapshotted mid-way
/// (so the skipped staged records of the inner backup sit in the outer staging's pending bytes
/// or are already skipped), converges too.
#[test]
fn a_nested_staging_is_skipped_identically_by_a_restarted_replica() {
    let inner = backup();
    let mut staging = live_store();
    put(&mut staging, b"outer", b"data");
    apply(&mut staging, 5, chunk(4, 0, &inner[..inner.len() - 20], false)).unwrap();
    let outer = bytes_of(&staging);
    let pieces: Vec<&[u8]> = outer.chunks(17).collect();
    let mut whole = live_store();
    let expected = feed(&mut whole, 2, &pieces, 0);
    assert_eq!(expected.last(), Some(&Ok(Output::Restored)));
    assert_eq!(whole.get(b"outer").map(|v| &v[..]), Some(&b"data"[..]));
    for cut in 1..pieces.len() {
        let mut before = live_store();
        for (sequence, piece) in pieces[..cut].iter().enumerate() {
            apply(&mut before, 100 + sequence as u64, chunk(2, sequence as u64, piece, false)).unwrap();
        }
        let mut restarted = replica_of(&before);
        assert_eq!(feed(&mut restarted, 2, &pieces, cut), expected[cut..], "cut {cut}");
        assert_eq!(bytes_of(&restarted), bytes_of(&whole), "cut {cut}");
    }
}

/// Format compatibility: a format-1 snapshot (no staging) restores both as a replica's snapshot
/// and as a user's backup by either command; format 3 is refused with an error.
#[test]
fn format_1_is_read_and_an_unknown_format_refused() {
    let current = backup();
    let old = with_version(&current, 1);
    let mut replica = KvStore::new(KvConfig { sessions_max: 3, ..KvConfig::default() }).unwrap();
    restore_from_chunks(&mut replica, [old.clone()]).unwrap();
    assert_eq!(replica.len(), 31);
    let mut store = live_store();
    assert_eq!(
        apply(&mut store, 3, CommandBody::Restore { snapshot: Bytes::from(old.clone()) }),
        Ok(Output::Restored)
    );
    let mut streamed = live_store();
    let pieces: Vec<&[u8]> = old.chunks(100).collect();
    assert_eq!(feed(&mut streamed, 1, &pieces, 0).last(), Some(&Ok(Output::Restored)));
    assert!(store.iter().eq(streamed.iter()));

    let future = with_version(&current, 3);
    let mut replica = KvStore::new(KvConfig::default()).unwrap();
    let refused = restore_from_chunks(&mut replica, [future.clone()]);
    assert_eq!(refused, Err(SnapshotError::UnsupportedVersion { version: 3 }));
    let mut store = live_store();
    let response = apply(&mut store, 3, CommandBody::Restore { snapshot: Bytes::from(future) });
    assert!(matches!(response, Err(KvError::RestoreRejected { .. })), "{response:?}");
    assert_eq!(store.get(b"old").map(|v| &v[..]), Some(&b"before"[..]));
}

/// Claim (2) at the life bound, with the idle rule out of the way (a piece every
/// RESTORE_IDLE_MS): a restore whose last piece is applied exactly RESTORE_STAGED_MS_MAX of log
/// clock after its first completes; one a millisecond later is refused as too long. A replica
/// restarted from a snapshot taken mid-restore (after the first piece, so `first_ms` must
/// survive the snapshot) decides the same, at the same entry.
#[test]
fn the_life_bound_is_inclusive_and_survives_a_snapshot() {
    let snapshot = backup();
    let periods = RESTORE_STAGED_MS_MAX / RESTORE_IDLE_MS;
    let pieces: Vec<&[u8]> = snapshot.chunks(snapshot.len() / periods as usize).collect();
    let n = pieces.len() as u64;
    assert!(n > periods + 1, "{n} pieces");
    let start = 1_000;
    for (overshoot, should_finish) in [(0, true), (1, false)] {
        // Pieces 0..n-1 spread so that the last is at start + RESTORE_STAGED_MS_MAX + overshoot,
        // none more than RESTORE_IDLE_MS after the one before.
        let at = |sequence: u64| {
            if sequence + 1 == n {
                start + RESTORE_STAGED_MS_MAX + overshoot
            } else {
                start + (sequence * RESTORE_STAGED_MS_MAX / (n - 1))
            }
        };
        let mut whole = live_store();
        let mut restarted = None;
        for sequence in 0..n {
            if sequence == n / 2 {
                restarted = Some(replica_of(&whole));
            }
            let last = sequence + 1 == n;
            let response =
                apply(&mut whole, at(sequence), chunk(1, sequence, pieces[sequence as usize], last));
            if !last {
                assert!(response.is_ok(), "piece {sequence}: {response:?}");
            } else if should_finish {
                assert_eq!(response, Ok(Output::Restored));
            } else {
                assert!(
                    matches!(&response, Err(KvError::RestoreRejected { reason }) if reason.contains("RESTORE_STAGED_MS_MAX")),
                    "{response:?}"
                );
            }
        }
        let mut restarted = restarted.unwrap();
        let mut last_response = None;
        for sequence in n / 2..n {
            let last = sequence + 1 == n;
            last_response = Some(apply(
                &mut restarted,
                at(sequence),
                chunk(1, sequence, pieces[sequence as usize], last),
            ));
        }
        assert_eq!(last_response.unwrap().is_ok(), should_finish, "overshoot {overshoot}");
        assert_eq!(bytes_of(&whole), bytes_of(&restarted), "overshoot {overshoot}");
    }
}

/// Expiry by life is decided at the same entry, whatever command it is, on a replica that
/// replayed everything and on one restarted from a snapshot taken mid-restore.
#[test]
fn expiry_by_life_is_decided_at_the_same_entry_after_a_restart() {
    let snapshot = backup();
    let mut store = live_store();
    // First piece at log clock 1 (the store's clock already), the rest one idle period apart,
    // the last of them exactly RESTORE_STAGED_MS_MAX after the first.
    apply(&mut store, 1, chunk(2, 0, &snapshot[..10], false)).unwrap();
    let mut t = 1;
    let mut sequence = 1;
    let mut restarted = None;
    while t + RESTORE_IDLE_MS <= 1 + RESTORE_STAGED_MS_MAX {
        t += RESTORE_IDLE_MS;
        apply(
            &mut store,
            t,
            chunk(2, sequence, &snapshot[9 + sequence as usize..10 + sequence as usize], false),
        )
        .unwrap();
        sequence += 1;
        if sequence == 30 {
            restarted = Some(replica_of(&store));
        }
    }
    assert_eq!(t, 1 + RESTORE_STAGED_MS_MAX);
    let mut restarted = restarted.unwrap();
    let mut t2 = 1 + RESTORE_IDLE_MS * 29;
    for s in 30..sequence {
        t2 += RESTORE_IDLE_MS;
        apply(&mut restarted, t2, chunk(2, s, &snapshot[9 + s as usize..10 + s as usize], false)).unwrap();
    }
    assert_eq!(bytes_of(&store), bytes_of(&restarted));
    for replica in [&mut store, &mut restarted] {
        assert!(replica.restore_staged());
        // An unrelated command one millisecond past the bound (not idle: 1 ms since the last
        // piece) drops it.
        put(replica, b"x", b"y");
        assert!(replica.restore_staged());
        apply(replica, 2 + RESTORE_STAGED_MS_MAX, CommandBody::RestoreAbort { restore_id: 77 }).unwrap();
        assert!(!replica.restore_staged());
    }
    assert_eq!(bytes_of(&store), bytes_of(&restarted));
}

/// Claim (2): empty pieces other than the last are refused and leave a staged restore as it
/// was (its last-piece clock not refreshed), also at sequence 0 (no supersede by nothing).
#[test]
fn empty_non_last_pieces_refresh_nothing() {
    let snapshot = backup();
    let mut store = live_store();
    apply(&mut store, 10, chunk(1, 0, &snapshot[..100], false)).unwrap();
    let before = bytes_of(&store);
    for (id, sequence) in [(1, 1), (1, 0), (2, 0), (1, 5)] {
        let response = apply(&mut store, 10 + RESTORE_IDLE_MS, chunk(id, sequence, &[], false));
        assert!(matches!(response, Err(KvError::RestoreRejected { .. })), "{response:?}");
    }
    // Same staging (only the clock and applied index moved).
    let mut expected = live_store();
    apply(&mut expected, 10, chunk(1, 0, &snapshot[..100], false)).unwrap();
    for _ in 0..4 {
        apply(&mut expected, 10 + RESTORE_IDLE_MS, CommandBody::RestoreAbort { restore_id: 0 }).unwrap();
    }
    assert_eq!(bytes_of(&store), bytes_of(&expected));
    assert_ne!(bytes_of(&store), before);
    // Its idle clock was not refreshed by the empty pieces: one more millisecond drops it.
    let response = apply(&mut store, 11 + RESTORE_IDLE_MS, chunk(1, 1, &snapshot[100..], true));
    assert!(
        matches!(&response, Err(KvError::RestoreRejected { reason }) if reason.contains("idle")),
        "{response:?}"
    );
}

// ---- Crafted snapshots -------------------------------------------------------------------------

/// Mirrors the snapshot's record enum far enough to write a `Staged` header and `StagedPending`
/// bytes (postcard writes the variant's index, so the other variants only hold their place).
#[derive(Serialize, Deserialize)]
enum Record {
    State { applied_index: u64, clock_ms: u64 },
    Pair,
    Session,
    Expired,
    Staged(Header),
    StagedPair { key: Bytes, value: Bytes },
    StagedSession,
    StagedExpired,
    StagedPending { bytes: Bytes },
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Header {
    restore_id: u64,
    next_sequence: u64,
    bytes: u64,
    first_ms: u64,
    last_ms: u64,
    version: u16,
    phase: u8,
    crc: u32,
    state: Option<(u64, u64)>,
}

fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// The frames of a snapshot.
fn frames(snapshot: &[u8]) -> Vec<Vec<u8>> {
    let mut at = 8;
    let mut frames = Vec::new();
    loop {
        let len = u32::from_le_bytes(snapshot[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            return frames;
        }
        frames.push(snapshot[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
}

/// A snapshot of `version` made of `frames`, with a correct checksum.
fn seal(version: u16, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"FLOTKV".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    for frame in frames {
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn with_version(snapshot: &[u8], version: u16) -> Vec<u8> {
    seal(version, &frames(snapshot))
}

/// `snapshot` (which carries a staging) with its Staged header changed by `edit`.
fn with_header(snapshot: &[u8], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut frames = frames(snapshot);
    let frame = frames.iter_mut().find(|frame| frame[0] == 4).expect("a staged header");
    let Record::Staged(mut header) = postcard::from_bytes(frame).unwrap() else { unreachable!() };
    edit(&mut header);
    *frame = postcard::to_allocvec(&Record::Staged(header)).unwrap();
    seal(2, &frames)
}

/// A store of `live_store` staging the first `cut` bytes of `backup()` as restore 1, at clock 50.
fn staging_at(cut: usize) -> (KvStore, Vec<u8>) {
    let inner = backup();
    let mut store = live_store();
    apply(&mut store, 50, chunk(1, 0, &inner[..cut], false)).unwrap();
    (store, inner)
}

fn install(snapshot: Vec<u8>) -> Result<KvStore, SnapshotError> {
    let mut store = KvStore::new(KvConfig::default()).unwrap();
    restore_from_chunks(&mut store, snapshot.chunks(41).map(|c| c.to_vec()))?;
    Ok(store)
}

/// Crafted staged headers a reader must refuse with an error (never a panic): an unknown phase,
/// clocks after the store's clock or in the wrong order, staged records without a header, a
/// second header, unparsed bytes beyond one frame (in one record or many).
#[test]
fn crafted_staged_headers_are_refused() {
    let (store, _) = staging_at(700);
    let good = bytes_of(&store);
    assert!(install(good.clone()).is_ok());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("phase 9", with_header(&good, |h| h.phase = 9)),
        ("last after clock", with_header(&good, |h| h.last_ms = store.clock_ms() + 1)),
        ("first after last", with_header(&good, |h| h.first_ms = h.last_ms + 1)),
        ("staged pair without header", {
            let mut frames = frames(&good);
            frames.retain(|frame| frame[0] != 4);
            seal(2, &frames)
        }),
        ("two headers", {
            let mut frames = frames(&good);
            let header = frames.iter().position(|frame| frame[0] == 4).unwrap();
            frames.insert(header, frames[header].clone());
            seal(2, &frames)
        }),
        ("huge pending", {
            let mut frames = frames(&good);
            let big = Bytes::from(vec![0u8; 300 * 1024]);
            // Split into records that each fit a frame: the total is what must be bounded.
            for part in big.chunks(60 * 1024) {
                let record = Record::StagedPending { bytes: Bytes::copy_from_slice(part) };
                frames.push(postcard::to_allocvec(&record).unwrap());
            }
            seal(2, &frames)
        }),
        ("staged in format 1", with_version(&good, 1)),
        ("staged pair out of order", {
            let mut frames = frames(&good);
            let pair = Record::StagedPair { key: Bytes::from("a"), value: Bytes::from("v") };
            frames.push(postcard::to_allocvec(&pair).unwrap());
            seal(2, &frames)
        }),
    ];
    for (name, crafted) in cases {
        let result = install(crafted);
        assert!(result.is_err(), "{name}: accepted");
    }
}

/// A crafted but well-formed staging whose checksum state is wrong is accepted by the reader (it
/// cannot tell), but its last piece is refused with a checksum mismatch and the store is left
/// as it was, on every replica alike.
#[test]
fn a_wrong_checksum_state_fails_the_last_piece_cleanly() {
    let (store, inner) = staging_at(700);
    let mut crafted = install(with_header(&bytes_of(&store), |h| h.crc ^= 1)).unwrap();
    let response = apply(&mut crafted, 60, chunk(1, 1, &inner[700..], true));
    assert!(
        matches!(&response, Err(KvError::RestoreRejected { reason }) if reason.contains("checksum")),
        "{response:?}"
    );
    assert!(!crafted.restore_staged());
    assert_eq!(crafted.get(b"old").map(|v| &v[..]), Some(&b"before"[..]));
}

/// A crafted staging at the piece bound: its piece RESTORE_PIECES_MAX - 1 may still be the
/// last one; one that is not the last is the final piece accepted, and the next is refused.
#[test]
fn the_piece_bound_is_exact_after_a_restart() {
    let (store, inner) = staging_at(700);
    let at_bound = with_header(&bytes_of(&store), |h| h.next_sequence = RESTORE_PIECES_MAX - 1);
    let mut finishing = install(at_bound.clone()).unwrap();
    assert_eq!(
        apply(&mut finishing, 60, chunk(1, RESTORE_PIECES_MAX - 1, &inner[700..], true)),
        Ok(Output::Restored)
    );
    let mut continuing = install(at_bound).unwrap();
    let piece = chunk(1, RESTORE_PIECES_MAX - 1, &inner[700..800], false);
    assert!(matches!(apply(&mut continuing, 60, piece), Ok(Output::RestoreStaged { .. })));
    let response = apply(&mut continuing, 60, chunk(1, RESTORE_PIECES_MAX, &inner[800..], true));
    assert!(
        matches!(&response, Err(KvError::RestoreRejected { reason }) if reason.contains("RESTORE_PIECES_MAX")),
        "{response:?}"
    );
    // A crafted count past the bound is dropped at the next command of any kind.
    let past = with_header(&bytes_of(&store), |h| h.next_sequence = u64::MAX);
    let mut past = install(past).unwrap();
    assert!(past.restore_staged());
    noop(&mut past);
    assert!(past.restore_staged(), "no-op entries do not decide expiry");
    put(&mut past, b"k", b"v");
    assert!(!past.restore_staged());
}

/// Was FINDING (low; fixed: saturating_add in `restore_chunk`): the Staged header's `bytes` counter is not validated and is advanced with a
/// plain `+=` (`staging.bytes += data.len()` in `KvStore::restore_chunk`). A crafted snapshot
/// with `bytes` near `u64::MAX` makes the next piece overflow: a panic in a debug build
/// (`attempt to add with overflow`), a silent wrap (a nonsense `RestoreStaged { bytes }` answer)
/// in release. Suggested fix: `saturating_add`, or refuse a header whose `bytes` is not below
/// `next_sequence * RESTORE_CHUNK_BYTES_MAX` (what `bytes` can really be).
#[test]
fn a_crafted_byte_count_does_not_overflow() {
    let (store, inner) = staging_at(700);
    let crafted = with_header(&bytes_of(&store), |h| h.bytes = u64::MAX);
    match install(crafted) {
        Err(_) => {}
        Ok(mut crafted) => {
            let response = apply(&mut crafted, 60, chunk(1, 1, &inner[700..800], false));
            assert_eq!(response, Ok(Output::RestoreStaged { bytes: u64::MAX }), "wrapped");
        }
    }
}

/// Was FINDING (low; fixed: `KvRestore::resume` checks the parse position): a staging in phase
/// Frames claiming backup format 7 (or 0), or in phase Header with a State record, a version or
/// a moved checksum, was accepted although no reader could have reached it (format 7 is refused
/// outright when read). No replica diverged (all read the same bytes), but "any state it accepts
/// is reachable and writes back byte-for-byte the same" did not hold for staged records. Now each
/// is refused with a clear error, and the positions a parse does reach (before the backup's
/// header, and after its trailer without the last flag) still install.
#[test]
fn an_unreachable_parse_position_is_refused() {
    let (store, _) = staging_at(700);
    let good = bytes_of(&store);
    let unreachable = |crafted: Vec<u8>, name: &str| match install(crafted) {
        Err(SnapshotError::Invalid(why)) => assert!(why.contains("parse position"), "{name}: {why}"),
        other => panic!("{name}: {other:?}"),
    };
    unreachable(with_header(&good, |h| h.version = 7), "format 7 in phase Frames");
    unreachable(with_header(&good, |h| h.version = 0), "format 0 in phase Frames");
    unreachable(with_header(&good, |h| h.phase = 0), "phase Header with a state");
    // Phase Header reached for real: a first piece shorter than the backup's header.
    let inner = backup();
    let mut early = live_store();
    apply(&mut early, 50, chunk(1, 0, &inner[..5], false)).unwrap();
    let early = bytes_of(&early);
    assert!(install(early.clone()).is_ok(), "a real phase Header staging refused");
    unreachable(with_header(&early, |h| h.version = 2), "phase Header with a version");
    unreachable(with_header(&early, |h| h.crc ^= 1), "phase Header with a moved checksum");
    // Phase Done reached for real: the whole backup staged, the last flag not yet seen.
    let mut done = live_store();
    apply(&mut done, 50, chunk(1, 0, &inner, false)).unwrap();
    let mut done = install(bytes_of(&done)).unwrap();
    assert_eq!(apply(&mut done, 51, chunk(1, 1, b"", true)), Ok(Output::Restored));
}

// ---- Claim (3): reserved records ---------------------------------------------------------------

/// Both restore commands keep the store's reserved records and drop the backup's, including
/// reserved records the backup had staged (nested), and keys that merely look similar
/// (`\0flotilla` without the slash) are ordinary user keys.
#[test]
fn reserved_records_come_from_the_store_by_either_command() {
    let mut source = KvStore::new(KvConfig::default()).unwrap();
    put(&mut source, &reserved("address/1"), b"attacker:1");
    put(&mut source, &reserved("address/9"), b"attacker:9");
    put(&mut source, b"\x00flotilla", b"user");
    put(&mut source, b"\x00flotillaX/", b"user");
    put(&mut source, b"user", b"data");
    let snapshot = bytes_of(&source);
    let check = |store: &KvStore| {
        assert_eq!(store.get(&reserved("address/1")).map(|v| &v[..]), Some(&b"127.0.0.1:7801"[..]));
        assert_eq!(store.get(&reserved("address/9")), None);
        assert_eq!(store.get(b"\x00flotilla").map(|v| &v[..]), Some(&b"user"[..]));
        assert_eq!(store.get(b"\x00flotillaX/").map(|v| &v[..]), Some(&b"user"[..]));
        assert_eq!(store.get(b"old"), None);
        assert_eq!(store.len(), 4);
    };
    let mut one = live_store();
    apply(&mut one, 2, CommandBody::Restore { snapshot: Bytes::from(snapshot.clone()) }).unwrap();
    check(&one);
    let pieces: Vec<&[u8]> = snapshot.chunks(5).collect();
    // Snapshot mid-way and finish on the restarted replica: the same reserved records.
    let mut streamed = live_store();
    for (sequence, piece) in pieces[..pieces.len() / 2].iter().enumerate() {
        apply(&mut streamed, 2, chunk(1, sequence as u64, piece, false)).unwrap();
    }
    // The store's own reserved record changes while the restore is staged: the value at the
    // last piece is what stays.
    put(&mut streamed, &reserved("address/1"), b"127.0.0.1:7801");
    let mut restarted = replica_of(&streamed);
    assert_eq!(feed(&mut restarted, 1, &pieces, pieces.len() / 2).last(), Some(&Ok(Output::Restored)));
    check(&restarted);
    assert!(restarted.iter().eq(one.iter()));
}

/// Was FINDING (medium; fixed: `swap_in_backup` refuses past keys_max): a restore keeps the store's reserved records on top of the backup's user
/// keys without checking `keys_max`. A backup holding `keys_max` user keys (any full store of a
/// cluster whose own records differ, or a backup from a cluster with fewer members) restored
/// into a store with reserved records leaves more than `keys_max` keys, a state the snapshot
/// reader refuses ("more keys than keys_max"): the leader's next snapshot cannot be installed
/// by a lagging follower, and a node cannot restart from its own snapshot. Suggested fix: in
/// `swap_in_backup`, refuse the restore (RestoreRejected, store unchanged) when the backup's
/// non-reserved keys plus the store's reserved keys exceed `keys_max`; or have the snapshot
/// reader not count reserved keys against the limit the same way the store does.
#[test]
fn a_restore_never_leaves_a_state_its_snapshot_cannot_restore() {
    let config = KvConfig { keys_max: 3, ..KvConfig::default() };
    let mut source = KvStore::new(config).unwrap();
    for key in [&b"a"[..], b"b", b"c"] {
        put(&mut source, key, b"v");
    }
    let backup = bytes_of(&source);
    let mut store = KvStore::new(config).unwrap();
    put(&mut store, &reserved("address/1"), b"127.0.0.1:7801");
    let response = apply(&mut store, 2, CommandBody::Restore { snapshot: Bytes::from(backup) });
    let mut follower = KvStore::new(config).unwrap();
    let installed = restore_from_chunks(&mut follower, store.snapshot());
    assert!(
        response.is_err() || installed.is_ok(),
        "restore answered {response:?} with {} keys (keys_max 3); its snapshot is refused: {installed:?}",
        store.len()
    );
}

/// Was FINDING (medium; fixed: a restore now drops every backup session and keeps the store's
/// own, `KvStore::swap_in_backup`; an old client still using such an id must register again,
/// see native-node/README.md on restores): a backup's
/// sessions keep their client ids, which are log indexes of the backup's own log. Restored into
/// a store whose log is shorter, (a) the state has sessions "outside the applied log", which the
/// snapshot reader refuses, so the next snapshot cannot be installed or restarted from; and
/// (b) a later RegisterClient at that index gets the id of a restored session (ids are meant
/// never to be reused): the new client is handed the old client's session and cached reply,
/// or, if that id was in the backup's expired set, a session both live and expired. Suggested
/// fix: a restore keeps no session whose id is above the store's applied index (or drops the
/// backup's sessions and expired ids altogether: they belong to another log), and refuse none.
#[test]
fn restored_sessions_do_not_outlive_their_log() {
    let mut source = KvStore::new(KvConfig::default()).unwrap();
    for i in 0..20u32 {
        put(&mut source, format!("k{i}").as_bytes(), b"v");
    }
    let old_client = register(&mut source, 5); // id 21
    let operation = Operation::Put { key: Bytes::from("k0"), value: Bytes::from("old client") };
    apply(
        &mut source,
        5,
        CommandBody::Request {
            session: Some(SessionRequest { client_id: old_client, sequence: 1 }),
            operation,
        },
    )
    .unwrap();
    let backup = bytes_of(&source);

    let mut store = live_store(); // applied index 2
    apply(&mut store, 6, CommandBody::Restore { snapshot: Bytes::from(backup) }).unwrap();
    let mut follower = KvStore::new(KvConfig::default()).unwrap();
    let installed = restore_from_chunks(&mut follower, store.snapshot());
    while store.applied_index().0 + 1 < old_client.0 {
        noop(&mut store);
    }
    assert!(installed.is_ok(), "snapshot after restore: {installed:?}");
    // Ids are log indexes, so the next registration here may take the old client's id 21; it
    // must then get a fresh session, not the old client's (its sequence 1 is applied, not
    // answered from the old client's cache).
    let new_client = register(&mut store, 7);
    let operation = Operation::Put { key: Bytes::from("k0"), value: Bytes::from("new client") };
    let answer = apply(
        &mut store,
        8,
        CommandBody::Request {
            session: Some(SessionRequest { client_id: new_client, sequence: 1 }),
            operation,
        },
    );
    assert_eq!(
        answer,
        Ok(Output::Written),
        "new client {new_client} (old {old_client}) was given a cached reply"
    );
}

/// Was FINDING (low; fixed: `swap_in_backup` keeps the store's clock and sessions): both restore commands set the log clock to the larger of the store's and the
/// backup's (`swap_in_backup`), so a backup whose clock is far ahead (a crafted one, or one from
/// a cluster whose leader's clock was years off) moves this cluster's log clock there for good:
/// proposers stamp real time, which never catches up, so every rule on the log clock stalls (a
/// streamed restore abandoned afterwards is never dropped as idle or too long, only by the piece
/// count; sessions never expire by idleness, only by eviction). Suggested fix: keep the store's
/// clock across a restore and clamp the backup's sessions' `last_active_ms` to it (the log, not
/// the backup, says what time it is), or refuse a backup whose clock is ahead of the log clock
/// by more than a bound.
#[test]
fn a_backup_from_the_future_does_not_stop_the_log_clock_rules() {
    let mut source = KvStore::new(KvConfig::default()).unwrap();
    put(&mut source, b"k", b"v");
    let mut frames = frames(&bytes_of(&source));
    let Record::State { applied_index, .. } = postcard::from_bytes(&frames[0]).unwrap() else {
        unreachable!()
    };
    let future = 1_000_000_000_000_000; // some 31 000 years ahead, in milliseconds
    frames[0] = postcard::to_allocvec(&Record::State { applied_index, clock_ms: future }).unwrap();
    let backup = seal(2, &frames);

    let mut store = live_store();
    let now = 1_700_000_000_000;
    apply(&mut store, now, CommandBody::Restore { snapshot: Bytes::from(backup.clone()) }).unwrap();
    // A restore is started and abandoned; its proposers' clocks then move on by over an hour.
    apply(&mut store, now, chunk(5, 0, &backup[..20], false)).unwrap();
    apply(&mut store, now + 2 * RESTORE_STAGED_MS_MAX, CommandBody::RestoreAbort { restore_id: 0 }).unwrap();
    assert!(
        !store.restore_staged(),
        "log clock {} after a backup from the future: an abandoned restore stays staged",
        store.clock_ms()
    );
}

/// A staging whose backup was complete before its last piece (the trailer read, phase Done)
/// survives a snapshot: the empty last piece then swaps it in on the restarted replica as on
/// the one that never snapshotted; a non-empty one is refused (bytes after the trailer).
#[test]
fn a_complete_staging_awaiting_its_empty_last_piece_survives_a_snapshot() {
    let inner = backup();
    let mut whole = live_store();
    apply(&mut whole, 5, chunk(3, 0, &inner, false)).unwrap();
    let mut restarted = replica_of(&whole);
    let mut trailing = replica_of(&whole);
    assert_eq!(bytes_of(&restarted), bytes_of(&whole));
    for replica in [&mut whole, &mut restarted] {
        assert_eq!(apply(replica, 6, chunk(3, 1, &[], true)), Ok(Output::Restored));
        assert_eq!(replica.get(b"user/029").map(|v| v.len()), Some(40));
    }
    assert_eq!(bytes_of(&whole), bytes_of(&restarted));
    let response = apply(&mut trailing, 6, chunk(3, 1, b"x", true));
    assert!(
        matches!(&response, Err(KvError::RestoreRejected { reason }) if reason.contains("after")),
        "{response:?}"
    );
    assert!(!trailing.restore_staged());
}
