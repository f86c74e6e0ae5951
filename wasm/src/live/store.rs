//! A tab's durable storage, as file operations: what to write where, and when to flush. The
//! Worker (web/live/storage.js) carries them out on the origin private file system through
//! `FileSystemSyncAccessHandle`s (or IndexedDB with strict durability where sync handles are
//! missing) *before* it sends any frame the same call produced, so every vote answer and append
//! acknowledgement leaves only after what it promises is flushed (§5.2, §5.4; the driver's
//! contract in raft-core/GUIDE.md).
//!
//! Files, in `flotilla/<cluster_id>/`, every one made of raft-core's [`log_record`] records
//! (the format and torn-tail rule native-node's write-ahead log uses):
//! - `identity`: one record: cluster id, node id, join nonce (the incarnation) and the tab key
//!   derived from them. It is written only after the first log file, so an identity never
//!   exists without a log.
//! - `log-0`, `log-1`: the log, in two files used in turn. A file starts with a base record
//!   (a generation number and the snapshot, if any) followed by [`log_record::Batch`]es (hard
//!   state and entries). Taking or installing a snapshot writes the *other* file afresh (base
//!   with the next generation, then the hard state and the entries after the snapshot) and
//!   flushes it; the older file stays intact until then, so a snapshot and the log after it are
//!   replaced together without a rename (OPFS has no synchronous one).
//!
//! Files are grown in zero-filled steps ahead of the data (as native-node preallocates its
//! segments), so "zeros where a header would be" ends the data and the torn-tail rule is the
//! same: only a tail provably never written is dropped (and erased); anything else stops the
//! node with the file and the offset.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use raft_core::log_record::{self, Batch, End, LogState, HEADER_BYTES};
use raft_core::ready::SnapshotMeta;
use raft_core::{Bytes, Entry, HardState, LogIndex, NodeId, Restored};
use serde::{Deserialize, Serialize};

/// The identity file.
pub const IDENTITY_FILE: &str = "identity";
/// The two log files.
pub const LOG_FILES: [&str; 2] = ["log-0", "log-1"];
/// A log file grows by at least this much at a time (zero-filled).
pub const GROW_BYTES: usize = 1 << 20;

/// Who this storage belongs to: the id the cluster admitted it as, and its incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster the tab was admitted to.
    pub cluster_id: String,
    /// The node id the leader assigned (never reused).
    pub node_id: NodeId,
    /// The nonce of the `Join` that admitted it: the incarnation the cluster's admission record
    /// holds, from which every native node recomputes the tab key.
    pub join_nonce: [u8; 16],
    /// `wire::tab_key(token mac, cluster id, node id, join nonce)`.
    pub tab_key: Vec<u8>,
}

/// The first record of a log file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Base {
    /// Higher in the newer file.
    generation: u64,
    /// The snapshot the log after this record continues, with its bytes.
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
}

/// One operation on a file, carried out in order by the Worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum FileOp {
    /// Write `bytes` at `offset`.
    Write {
        /// The file's name.
        file: &'static str,
        /// Byte offset.
        offset: u64,
        /// What to write.
        #[serde(with = "serde_bytes_as_array")]
        bytes: Vec<u8>,
    },
    /// Set the file's size (growing fills with zeros).
    Truncate {
        /// The file's name.
        file: &'static str,
        /// The new size.
        size: u64,
    },
    /// Make everything written to the file so far durable.
    Flush {
        /// The file's name.
        file: &'static str,
    },
}

/// Bytes go to JS as a `Uint8Array` (serde-wasm-bindgen serializes byte slices that way).
mod serde_bytes_as_array {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }
}

/// What was read back from storage.
#[derive(Debug)]
pub struct Opened {
    /// The stored identity.
    pub identity: Identity,
    /// What to restart the node from (applied = the snapshot's index).
    pub restored: Restored,
    /// The snapshot's bytes, to restore the state machine from.
    pub snapshot: Option<(SnapshotMeta, Bytes)>,
    /// The log, ready for appends.
    pub log: TabLog,
}

/// The log files' write position and the operations not yet handed to the Worker.
#[derive(Debug)]
pub struct TabLog {
    /// Which of [`LOG_FILES`] is appended to.
    active: usize,
    generation: u64,
    write_offset: usize,
    /// The size of each log file (zero-filled past the data).
    sizes: [usize; 2],
    ops: Vec<FileOp>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Postcard cannot fail on these plain structs short of running out of memory.
    postcard::to_allocvec(value).unwrap_or_default()
}

/// Reads one file made of a single record (the identity): `None` if it was never written
/// whole (empty, zeros, or torn).
fn single_record<T: for<'de> Deserialize<'de>>(name: &str, bytes: &[u8]) -> Result<Option<T>, String> {
    let mut found = None;
    log_record::scan(bytes, true, |_, payload| {
        if found.is_some() {
            return Err("a second record where one is expected".into());
        }
        found = Some(postcard::from_bytes::<T>(payload).map_err(|e| format!("undecodable record: {e}"))?);
        Ok(())
    })
    .map_err(|corrupt| format!("{name} {corrupt}"))?;
    Ok(found)
}

/// What a log file's first record says.
enum BaseState {
    /// No record was ever written whole: the file is unused, or a rewrite died before its flush.
    Unused,
    /// A base of this generation.
    Generation(u64),
}

fn read_base(name: &str, bytes: &[u8]) -> Result<BaseState, String> {
    let mut generation = None;
    // Every record is checked (corruption anywhere stops the node); only the first is decoded.
    log_record::scan(bytes, true, |_, payload| {
        if generation.is_none() {
            let base = postcard::from_bytes::<Base>(payload)
                .map_err(|e| format!("undecodable log base record: {e}"))?;
            generation = Some(base.generation);
        }
        Ok(())
    })
    .map_err(|corrupt| format!("{name} {corrupt}"))?;
    Ok(generation.map_or(BaseState::Unused, BaseState::Generation))
}

impl TabLog {
    /// Fresh storage for a tab just admitted: the first log file (generation 1, no snapshot,
    /// nothing logged), flushed, then the identity, flushed.
    pub fn create(identity: &Identity) -> TabLog {
        let mut log = TabLog { active: 1, generation: 0, write_offset: 0, sizes: [0, 0], ops: Vec::new() };
        log.rewrite(None, &HardState::default(), &[]);
        let record = log_record::frame(&encode(identity));
        log.ops.push(FileOp::Truncate { file: IDENTITY_FILE, size: 0 });
        log.ops.push(FileOp::Write { file: IDENTITY_FILE, offset: 0, bytes: record });
        log.ops.push(FileOp::Flush { file: IDENTITY_FILE });
        log
    }

    /// Reads storage back: `Ok(None)` when there is no identity (nothing was ever admitted, or
    /// the admission never finished being stored: the tab joins afresh).
    ///
    /// # Errors
    /// Corruption, naming the file and offset (`prefix` is the folder, for the message); the
    /// node must not start.
    pub fn open(prefix: &str, identity: &[u8], logs: [&[u8]; 2]) -> Result<Option<Opened>, String> {
        let Some(identity) = single_record::<Identity>(&format!("{prefix}{IDENTITY_FILE}"), identity)? else {
            return Ok(None);
        };
        let mut newest: Option<(usize, u64)> = None;
        for (slot, bytes) in logs.iter().enumerate() {
            let name = format!("{prefix}{}", LOG_FILES[slot]);
            if let BaseState::Generation(generation) = read_base(&name, bytes)? {
                match newest {
                    Some((_, other)) if other == generation => {
                        return Err(format!("{name}: both log files hold generation {generation}"))
                    }
                    Some((_, other)) if other > generation => {}
                    _ => newest = Some((slot, generation)),
                }
            }
        }
        let Some((slot, generation)) = newest else {
            return Err(format!(
                "{prefix}: the identity of node {} is stored but no log file holds a whole first record",
                identity.node_id
            ));
        };
        let bytes = logs[slot];
        let name = format!("{prefix}{}", LOG_FILES[slot]);
        let mut base: Option<Base> = None;
        let mut state = LogState::default();
        let end = log_record::scan(bytes, true, |_, payload| {
            if base.is_none() {
                base = Some(
                    postcard::from_bytes(payload).map_err(|e| format!("undecodable log base record: {e}"))?,
                );
                return Ok(());
            }
            let batch =
                postcard::from_bytes::<Batch>(payload).map_err(|e| format!("undecodable record: {e}"))?;
            state.apply(batch)
        })
        .map_err(|corrupt| format!("{name} {corrupt}"))?;
        let base = base.ok_or_else(|| format!("{name}: the base record vanished"))?;
        let mut log = TabLog {
            active: slot,
            generation,
            write_offset: end.data_end(),
            sizes: [logs[0].len(), logs[1].len()],
            ops: Vec::new(),
        };
        if let End::Torn { offset, end, .. } = end {
            // A write that died before its flush: erase its remains so later appends do not
            // mix with them (native-node's WAL does the same).
            log.ops.push(FileOp::Write {
                file: LOG_FILES[slot],
                offset: offset as u64,
                bytes: vec![0; end - offset],
            });
            log.ops.push(FileOp::Flush { file: LOG_FILES[slot] });
        }
        let snapshot = base.snapshot.map(|(meta, data)| (meta, Bytes::from(data)));
        let applied = snapshot.as_ref().map_or(LogIndex(0), |(meta, _)| meta.index);
        let restored = Restored {
            hard_state: state.hard_state.unwrap_or_default(),
            snapshot: snapshot.as_ref().map(|(meta, _)| meta.clone()),
            entries: state.entries,
            applied,
        };
        Ok(Some(Opened { identity, restored, snapshot, log }))
    }

    /// Appends one `Ready`'s hard state and entries (entries replace the log from the first
    /// one's index on), then flushes.
    pub fn append(&mut self, hard_state: &HardState, entries: &[Entry]) {
        let Ok(record) = log_record::encode_batch(hard_state, false, entries) else { return };
        let file = LOG_FILES[self.active];
        // Keep room for an end marker (a zero header) after the record.
        let needed = self.write_offset + record.len() + HEADER_BYTES;
        if needed > self.sizes[self.active] {
            let size = needed.max(self.sizes[self.active] + GROW_BYTES);
            self.ops.push(FileOp::Truncate { file, size: size as u64 });
            // The zeros are durable before a record relies on them ending the data.
            self.ops.push(FileOp::Flush { file });
            self.sizes[self.active] = size;
        }
        let length = record.len();
        self.ops.push(FileOp::Write { file, offset: self.write_offset as u64, bytes: record });
        self.ops.push(FileOp::Flush { file });
        self.write_offset += length;
    }

    /// Starts the other log file afresh: a base with the next generation and `snapshot`, then
    /// `hard_state` and `entries` (the log after the snapshot), flushed. The file in use stays
    /// intact until this one is durable.
    pub fn rewrite(
        &mut self,
        snapshot: Option<(&SnapshotMeta, &[u8])>,
        hard_state: &HardState,
        entries: &[Entry],
    ) {
        let slot = 1 - self.active;
        let file = LOG_FILES[slot];
        let base = Base {
            generation: self.generation + 1,
            snapshot: snapshot.map(|(m, d)| (m.clone(), d.to_vec())),
        };
        let mut bytes = log_record::frame(&encode(&base));
        if let Ok(batch) = log_record::encode_batch(hard_state, false, entries) {
            bytes.extend_from_slice(&batch);
        }
        let size = (bytes.len() + HEADER_BYTES).max(GROW_BYTES);
        self.ops.push(FileOp::Truncate { file, size: 0 });
        self.ops.push(FileOp::Truncate { file, size: size as u64 });
        self.ops.push(FileOp::Flush { file });
        let length = bytes.len();
        self.ops.push(FileOp::Write { file, offset: 0, bytes });
        self.ops.push(FileOp::Flush { file });
        self.active = slot;
        self.generation += 1;
        self.sizes[slot] = size;
        self.write_offset = length;
    }

    /// The operations to carry out, in order, before any frame produced since the last call.
    pub fn take_ops(&mut self) -> Vec<FileOp> {
        core::mem::take(&mut self.ops)
    }

    /// The generation of the file in use (for tests and the page).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Applies `ops` to in-memory files, as the Worker does to real ones (for tests).
pub fn apply_ops(files: &mut alloc::collections::BTreeMap<String, Vec<u8>>, ops: &[FileOp]) {
    for op in ops {
        match op {
            FileOp::Write { file, offset, bytes } => {
                let data = files.entry(file.to_string()).or_default();
                let end = *offset as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[*offset as usize..end].copy_from_slice(bytes);
            }
            FileOp::Truncate { file, size } => {
                files.entry(file.to_string()).or_default().resize(*size as usize, 0)
            }
            FileOp::Flush { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use raft_core::{EntryPayload, Membership, Term};

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: LogIndex(index), payload: EntryPayload::Noop }
    }

    fn hs(term: u64, commit: u64) -> HardState {
        HardState { term: Term(term), voted_for: Some(NodeId(2)), commit: LogIndex(commit) }
    }

    fn identity() -> Identity {
        Identity {
            cluster_id: "c".into(),
            node_id: NodeId(1 << 32),
            join_nonce: [3; 16],
            tab_key: vec![9; 32],
        }
    }

    fn reopen(files: &BTreeMap<String, Vec<u8>>) -> Result<Option<Opened>, String> {
        let get = |name: &str| files.get(name).cloned().unwrap_or_default();
        let (identity, log0, log1) = (get(IDENTITY_FILE), get(LOG_FILES[0]), get(LOG_FILES[1]));
        TabLog::open("flotilla/c/", &identity, [&log0, &log1])
    }

    #[test]
    fn term_vote_log_and_snapshot_survive_a_reopen_across_rewrites() {
        let mut files = BTreeMap::new();
        assert!(reopen(&files).unwrap().is_none(), "no identity: a fresh join");
        let mut log = TabLog::create(&identity());
        for i in 1..=5 {
            log.append(&hs(2, i - 1), &[entry(i, 2)]);
        }
        log.append(&hs(3, 4), &[entry(5, 3)]);
        apply_ops(&mut files, &log.take_ops());
        let opened = reopen(&files).unwrap().unwrap();
        assert_eq!(opened.identity, identity());
        assert_eq!(opened.restored.hard_state, hs(3, 4));
        let terms: Vec<u64> = opened.restored.entries.iter().map(|e| e.term.0).collect();
        assert_eq!(terms, [2, 2, 2, 2, 3]);

        // A snapshot through 4: the other file starts with it; the older one is left behind.
        let mut log = opened.log;
        let meta = SnapshotMeta {
            index: LogIndex(4),
            term: Term(2),
            membership: Membership::default(),
            membership_index: LogIndex(0),
        };
        log.rewrite(Some((&meta, b"state")), &hs(3, 4), &[entry(5, 3)]);
        log.append(&hs(3, 6), &[entry(6, 3)]);
        apply_ops(&mut files, &log.take_ops());
        let opened = reopen(&files).unwrap().unwrap();
        assert_eq!(opened.log.generation(), 2);
        assert_eq!(opened.snapshot, Some((meta.clone(), Bytes::from_static(b"state"))));
        assert_eq!(opened.restored.applied, LogIndex(4));
        assert_eq!(opened.restored.hard_state, hs(3, 6));
        assert_eq!(opened.restored.entries, vec![entry(5, 3), entry(6, 3)]);

        // Another rewrite goes back to the first file; it dies with only its base record's
        // header on disk (a torn write): the newer complete file is used.
        let mut log = opened.log;
        log.rewrite(Some((&meta, b"state")), &hs(3, 6), &[]);
        let ops = log.take_ops();
        let mut torn = files.clone();
        apply_ops(&mut torn, &ops);
        torn.get_mut(LOG_FILES[0]).unwrap()[HEADER_BYTES..].fill(0);
        let opened = reopen(&torn).unwrap().unwrap();
        assert_eq!(opened.log.generation(), 2, "the unfinished rewrite is ignored");
        assert_eq!(opened.restored.entries.len(), 2);
    }

    #[test]
    fn a_torn_append_is_dropped_and_erased_but_a_flipped_bit_stops_the_node_naming_file_and_offset() {
        let mut files = BTreeMap::new();
        let mut log = TabLog::create(&identity());
        log.append(&hs(2, 0), &[entry(1, 2)]);
        apply_ops(&mut files, &log.take_ops());
        let intact = files.clone();
        let mut log = reopen(&files).unwrap().unwrap().log;
        let data_end = log.write_offset;
        log.append(&hs(2, 1), &[entry(2, 2)]);
        apply_ops(&mut files, &log.take_ops());
        // The second append's trailer never reached the disk.
        let end = log.write_offset;
        files.get_mut(LOG_FILES[0]).unwrap()[end - 8..end].fill(0);
        let mut opened = reopen(&files).unwrap().unwrap();
        assert_eq!(opened.restored.entries, vec![entry(1, 2)]);
        let erase = opened.log.take_ops();
        assert!(
            matches!(&erase[0], FileOp::Write { offset, .. } if *offset as usize == data_end),
            "{erase:?}"
        );
        apply_ops(&mut files, &erase);
        opened.log.append(&hs(2, 1), &[entry(2, 2)]);
        apply_ops(&mut files, &opened.log.take_ops());
        assert_eq!(reopen(&files).unwrap().unwrap().restored.entries.len(), 2);

        // A flipped bit inside a record that was flushed whole: the node does not start.
        let mut flipped = intact;
        // (the base record's payload is two bytes: generation 1, no snapshot)
        flipped.get_mut(LOG_FILES[0]).unwrap()[HEADER_BYTES + 1] ^= 0x10;
        let error = reopen(&flipped).unwrap_err();
        assert_eq!(error, "flotilla/c/log-0 offset 0: checksum mismatch");
        // The identity, too.
        let mut flipped = files.clone();
        flipped.get_mut(IDENTITY_FILE).unwrap()[HEADER_BYTES] ^= 1;
        assert!(reopen(&flipped).unwrap_err().starts_with("flotilla/c/identity offset 0"));
        // An identity whose log files were lost: never started empty under the old id.
        let mut lost = files;
        lost.remove(LOG_FILES[0]);
        assert!(reopen(&lost).unwrap_err().contains("no log file"));
    }
}
