//! Durable storage of one node: the Raft log, the hard state and snapshots.
//!
//! The log and the hard state live in the write-ahead log ([`crate::wal`]): a `Ready` batch
//! (truncate, append, new hard state) is one record made durable by one `fdatasync`: that is the
//! group commit. Rarely written metadata (which node and cluster the directory belongs to, peer
//! addresses) lives in a small redb database (`raft.redb`), which also locks the directory
//! against a second process. Every stored value carries a CRC-32 checked on every read, so
//! corrupt data stops the node with a clear error instead of being used.
//!
//! Snapshots are separate files (`snapshots/`), written under a temporary name, fsynced, then
//! renamed, and checksummed as a whole: a crash mid-write leaves the previous snapshot intact.

use raft_core::{Entry, HardState, NodeId, SnapshotMeta};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::wal::{Wal, WalState};
use redb::{Database, ReadableDatabase, TableDefinition};
use std::sync::Mutex;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_IDENTITY: &str = "identity";
const META_ADDRESSES: &str = "addresses";
const META_INCARNATION: &str = "incarnation";
const META_PEER_INCARNATIONS: &str = "peer_incarnations";
/// The newest log segment ever put to use, so a deleted newest segment is noticed at start.
const META_NEWEST_SEGMENT: &str = "newest_segment";

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "raft.redb";
/// Name of the snapshot folder inside the data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// First bytes of every snapshot file, so a stray file is never taken for one.
/// Format 2: the header's `SnapshotMeta` carries the configuration's own entry index.
const SNAPSHOT_MAGIC: &[u8; 8] = b"FLOTSNP2";
/// The format before it, named in the error so an operator knows what happened.
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"FLOTSNP1";

/// Why storage failed. Every variant names the data directory or the item concerned.
#[derive(Debug)]
pub enum StorageError {
    /// A file-system operation failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database engine refused or failed.
    Database {
        /// What was being done.
        context: String,
        /// The engine's message.
        message: String,
    },
    /// Stored data failed its checksum or contradicts itself; it is not used.
    Corrupt {
        /// What is corrupt and how it was noticed.
        what: String,
    },
    /// The data directory belongs to another node or cluster.
    WrongIdentity {
        /// What the directory holds versus what was asked for.
        what: String,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { context, source } => write!(f, "{context}: {source}"),
            StorageError::Database { context, message } => write!(f, "{context}: {message}"),
            StorageError::Corrupt { what } => write!(f, "corrupt data: {what}"),
            StorageError::WrongIdentity { what } => write!(f, "data directory belongs elsewhere: {what}"),
        }
    }
}

impl std::error::Error for StorageError {}

fn db_error(context: impl Into<String>) -> impl FnOnce(redb::Error) -> StorageError {
    let context = context.into();
    move |error| StorageError::Database { context, message: error.to_string() }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |source| StorageError::Io { context, source }
}

/// `[crc32 of payload, little endian][postcard payload]`.
fn encode_checked<T: Serialize>(value: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(value).unwrap_or_default();
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn decode_checked<T: DeserializeOwned>(bytes: &[u8], what: impl Fn() -> String) -> Result<T, StorageError> {
    if bytes.len() < 4 {
        return Err(StorageError::Corrupt { what: format!("{}: {} bytes, too short", what(), bytes.len()) });
    }
    let (checksum, payload) = bytes.split_at(4);
    let expected = u32::from_le_bytes([checksum[0], checksum[1], checksum[2], checksum[3]]);
    let actual = crc32fast::hash(payload);
    if expected != actual {
        return Err(StorageError::Corrupt {
            what: format!("{}: checksum {actual:08x}, expected {expected:08x}", what()),
        });
    }
    postcard::from_bytes(payload)
        .map_err(|error| StorageError::Corrupt { what: format!("{}: undecodable: {error}", what()) })
}

/// Which cluster and node a data directory belongs to, recorded on first start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster's id.
    pub cluster_id: String,
    /// This node's id.
    pub node_id: NodeId,
}

/// Everything read back at start.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The last durable hard state, if any was ever written.
    pub hard_state: Option<HardState>,
    /// The durable log, contiguous.
    pub entries: Vec<Entry>,
    /// Peer addresses learned so far.
    pub addresses: BTreeMap<NodeId, String>,
    /// The latest valid snapshot, with the state machine's bytes.
    pub snapshot: Option<(SnapshotMeta, Vec<u8>)>,
}

/// How long one persist took; the fsync histogram is fed from it.
#[derive(Clone, Copy, Debug)]
pub struct PersistReport {
    /// Time spent in the commit (the fsync dominates it).
    pub commit_duration: Duration,
    /// Entries written.
    pub entries_written: usize,
}

/// One node's durable state. `Sync`: the core task hands persist jobs to a blocking thread.
pub struct Storage {
    database: Database,
    data_dir: PathBuf,
    /// Only the storage thread appends, one batch at a time; the lock is never contended.
    wal: Mutex<Wal>,
    /// What the log held at open, handed out once by [`Storage::recover`].
    replayed: Mutex<Option<WalState>>,
    /// Whether the log held any record at open (a new database beside it means a deleted one).
    log_had_data: bool,
    /// The newest segment recorded in the database (see [`META_NEWEST_SEGMENT`]).
    newest_segment_recorded: std::sync::atomic::AtomicU64,
    /// Test hook: every batch write first sleeps this long (a slow disk), in milliseconds.
    write_delay_ms_for_tests: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").field("data_dir", &self.data_dir).finish()
    }
}

#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    meta: SnapshotMeta,
    data_bytes: u64,
    data_crc32: u32,
}

impl Storage {
    /// Opens (or creates) the storage in `data_dir`.
    ///
    /// # Errors
    /// [`StorageError`] when the directory cannot be created, the database is locked by another
    /// process, or the file is not a database.
    pub fn open(data_dir: &Path) -> Result<Storage, StorageError> {
        Storage::open_with_segment_bytes(data_dir, crate::wal::SEGMENT_BYTES_DEFAULT)
    }

    /// As [`Storage::open`], with log segments of `segment_bytes` (tests use small ones).
    ///
    /// # Errors
    /// As [`Storage::open`], and [`StorageError::Corrupt`] when the log fails its checks.
    pub fn open_with_segment_bytes(data_dir: &Path, segment_bytes: u64) -> Result<Storage, StorageError> {
        fs::create_dir_all(data_dir.join(SNAPSHOT_DIR))
            .map_err(io_error(format!("creating data directory {}", data_dir.display())))?;
        let path = data_dir.join(DATABASE_FILE);
        let database = Database::create(&path).map_err(|error| StorageError::Database {
            context: format!("opening {}", path.display()),
            message: match error {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    "the database is in use by another process (is another node running on this data directory?)"
                        .to_string()
                }
                // Permissions, a read-only file system, a full disk: say so, not "corrupt".
                redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                    format!("cannot open or write the file: {io}")
                }
                other => format!("{other} (the file may be corrupt; it was not modified)"),
            },
        })?;
        let (wal, replayed) = Wal::open(data_dir, segment_bytes)?;
        let log_had_data = replayed.hard_state.is_some() || !replayed.entries.is_empty();
        let newest_on_disk = wal.newest_segment();
        let log_created = wal.created();
        let storage = Storage {
            database,
            data_dir: data_dir.to_path_buf(),
            wal: Mutex::new(wal),
            replayed: Mutex::new(Some(replayed)),
            log_had_data,
            newest_segment_recorded: std::sync::atomic::AtomicU64::new(0),
            write_delay_ms_for_tests: std::sync::atomic::AtomicU64::new(0),
        };
        storage.create_tables()?;
        let recorded: Option<u64> = storage.read_meta(META_NEWEST_SEGMENT)?;
        if let Some(recorded) = recorded {
            if recorded > newest_on_disk || log_created {
                return Err(StorageError::Corrupt {
                    what: format!(
                        "log segment {recorded} of {} is missing (the newest one {} recorded; the log on disk ends \
                         with segment {newest_on_disk}): acknowledged writes would be lost",
                        data_dir.join(crate::wal::WAL_DIR).display(),
                        path.display(),
                    ),
                });
            }
        }
        storage.record_newest_segment(newest_on_disk)?;
        Ok(storage)
    }

    fn record_newest_segment(&self, segment: u64) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        if self.newest_segment_recorded.load(Ordering::Relaxed) < segment {
            self.write_meta(META_NEWEST_SEGMENT, &segment)?;
            self.newest_segment_recorded.store(segment, Ordering::Relaxed);
        }
        Ok(())
    }

    fn create_tables(&self) -> Result<(), StorageError> {
        let txn = self.database.begin_write().map_err(|e| db_error("begin write")(e.into()))?;
        {
            txn.open_table(META).map_err(|e| db_error("open meta")(e.into()))?;
        }
        txn.commit().map_err(|e| db_error("create tables")(e.into()))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Checks that the directory belongs to `identity`, recording it on first use.
    ///
    /// # Errors
    /// [`StorageError::WrongIdentity`] when it belongs to another node or cluster.
    pub fn claim_identity(&self, identity: &Identity) -> Result<(), StorageError> {
        let stored: Option<Identity> = self.read_meta(META_IDENTITY)?;
        match stored {
            Some(stored) if stored == *identity => Ok(()),
            Some(stored) => Err(StorageError::WrongIdentity {
                what: format!(
                    "{} holds node {} of cluster {:?}, not node {} of cluster {:?}",
                    self.data_dir.display(),
                    stored.node_id,
                    stored.cluster_id,
                    identity.node_id,
                    identity.cluster_id
                ),
            }),
            None if self.log_had_data || !self.snapshot_files()?.is_empty() => Err(StorageError::Corrupt {
                what: format!(
                    "{} names no node, but the log or a snapshot in {} holds data: the database was deleted \
                     or replaced; refusing to start with a new identity",
                    self.data_dir.join(DATABASE_FILE).display(),
                    self.data_dir.display()
                ),
            }),
            None => self.write_meta(META_IDENTITY, identity),
        }
    }

    /// This data directory's incarnation: a random number drawn when the directory is first
    /// used, the same for as long as its contents live (see `crate::incarnation`).
    ///
    /// # Errors
    /// [`StorageError`] when the database cannot be read or written.
    pub fn incarnation(&self) -> Result<u64, StorageError> {
        if let Some(incarnation) = self.read_meta::<u64>(META_INCARNATION)? {
            return Ok(incarnation);
        }
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| StorageError::Corrupt { what: format!("no randomness for an incarnation: {e}") })?;
        let incarnation = u64::from_le_bytes(bytes).max(1);
        self.write_meta(META_INCARNATION, &incarnation)?;
        Ok(incarnation)
    }

    /// The incarnations of peers this node has met (see `crate::incarnation`).
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when the record fails its checksum.
    pub fn peer_incarnations(&self) -> Result<BTreeMap<NodeId, u64>, StorageError> {
        Ok(self.read_meta(META_PEER_INCARNATIONS)?.unwrap_or_default())
    }

    /// Records the incarnations of peers this node has met.
    ///
    /// # Errors
    /// [`StorageError`] when the database cannot be written.
    pub fn save_peer_incarnations(&self, incarnations: &BTreeMap<NodeId, u64>) -> Result<(), StorageError> {
        self.write_meta(META_PEER_INCARNATIONS, incarnations)
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let txn = self.database.begin_read().map_err(|e| db_error("begin read")(e.into()))?;
        let table = txn.open_table(META).map_err(|e| db_error("open meta")(e.into()))?;
        let value = table.get(key).map_err(|e| db_error(format!("read {key}"))(e.into()))?;
        match value {
            Some(guard) => Ok(Some(decode_checked(guard.value(), || format!("meta {key}"))?)),
            None => Ok(None),
        }
    }

    fn write_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        let txn = self.database.begin_write().map_err(|e| db_error("begin write")(e.into()))?;
        {
            let mut table = txn.open_table(META).map_err(|e| db_error("open meta")(e.into()))?;
            table
                .insert(key, encode_checked(value).as_slice())
                .map_err(|e| db_error(format!("write {key}"))(e.into()))?;
        }
        txn.commit().map_err(|e| db_error(format!("commit {key}"))(e.into()))
    }

    /// Records the peer address book.
    ///
    /// # Errors
    /// [`StorageError`] when the write fails.
    pub fn save_addresses(&self, addresses: &BTreeMap<NodeId, String>) -> Result<(), StorageError> {
        self.write_meta(META_ADDRESSES, addresses)
    }

    /// The recorded peer addresses.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when the record fails its checksum.
    pub fn addresses(&self) -> Result<BTreeMap<NodeId, String>, StorageError> {
        Ok(self.read_meta(META_ADDRESSES)?.unwrap_or_default())
    }

    /// Everything read back at open: the log (already checked record by record and for
    /// contiguity), the hard state, the addresses and the latest snapshot. The log is handed
    /// out once; a second call returns an empty one.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the first bad item.
    pub fn recover(&self) -> Result<Recovered, StorageError> {
        let replayed = self.replayed.lock().ok().and_then(|mut slot| slot.take()).unwrap_or_default();
        let WalState { hard_state, entries } = replayed;
        let addresses = self.addresses()?;
        let snapshot = self.load_latest_snapshot()?;
        if let Some(first) = entries.first() {
            let covered = snapshot.as_ref().map_or(0, |(meta, _)| meta.index.0);
            if first.index.0 > covered + 1 {
                return Err(StorageError::Corrupt {
                    what: format!(
                        "the log in {} starts at entry {} but entries {}..{} are in no segment and no snapshot: \
                         a log segment was deleted",
                        self.data_dir.join(crate::wal::WAL_DIR).display(),
                        first.index,
                        covered + 1,
                        first.index.0 - 1
                    ),
                });
            }
        }
        if let (Some(hard_state), Some(last)) = (hard_state, entries.last()) {
            if last.term > hard_state.term {
                return Err(StorageError::Corrupt {
                    what: format!(
                        "last log entry has term {} but the hard state says term {}",
                        last.term, hard_state.term
                    ),
                });
            }
        }
        Ok(Recovered { hard_state, entries, addresses, snapshot })
    }

    /// Makes one `Ready` batch durable with one `fdatasync`: entries from the first new one's
    /// index on are replaced, the new ones appended and `hard_state` recorded, in one log record.
    ///
    /// # Errors
    /// [`StorageError`] when the write or the sync fails; the caller must stop the node,
    /// because what it promised may not be durable.
    pub fn persist(&self, hard_state: &HardState, entries: &[Entry]) -> Result<PersistReport, StorageError> {
        self.persist_batch(hard_state, false, entries)
    }

    /// As [`Storage::persist`]; with `reset`, every stored entry is dropped first (a snapshot
    /// was installed and the log starts over after it).
    ///
    /// # Errors
    /// As [`Storage::persist`].
    pub fn persist_batch(
        &self,
        hard_state: &HardState,
        reset: bool,
        entries: &[Entry],
    ) -> Result<PersistReport, StorageError> {
        let started = Instant::now();
        let delay_ms = self.write_delay_ms_for_tests.load(std::sync::atomic::Ordering::Relaxed);
        if delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        }
        let mut wal =
            self.wal.lock().map_err(|_| StorageError::Corrupt { what: "log writer poisoned".into() })?;
        wal.append(hard_state, reset, entries)?;
        // A rollover is recorded (rarely: once per segment) so that a deleted newest segment
        // is noticed at start.
        self.record_newest_segment(wal.newest_segment())?;
        Ok(PersistReport { commit_duration: started.elapsed(), entries_written: entries.len() })
    }

    /// Test hook: makes every later batch write take at least `delay` longer, as a slow or
    /// saturated disk would.
    #[doc(hidden)]
    pub fn delay_writes_for_tests(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.write_delay_ms_for_tests.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Deletes log segments a snapshot through `index` makes unnecessary.
    ///
    /// # Errors
    /// I/O errors while deleting.
    pub fn compact_log(&self, index: raft_core::LogIndex) -> Result<usize, StorageError> {
        let mut wal =
            self.wal.lock().map_err(|_| StorageError::Corrupt { what: "log writer poisoned".into() })?;
        wal.compact_through(index.0)
    }

    fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join(SNAPSHOT_DIR)
    }

    /// Writes a snapshot file: temporary name, fsync, rename, fsync of the folder. Snapshot
    /// files of lower indexes are removed afterwards (names sort by index).
    ///
    /// # Errors
    /// [`StorageError::Io`] when any step fails; the previous snapshot is still intact then.
    pub fn save_snapshot(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<PathBuf, StorageError> {
        let dir = self.snapshot_dir();
        let name = format!("snapshot-{:020}-{:020}.bin", meta.index.0, meta.term.0);
        let final_path = dir.join(&name);
        let temporary_path = dir.join(format!("{name}.tmp"));
        let bytes = Storage::encode_snapshot(meta, data);
        {
            let mut file = fs::File::create(&temporary_path)
                .map_err(io_error(format!("creating {}", temporary_path.display())))?;
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(io_error(format!("writing {}", temporary_path.display())))?;
        }
        fs::rename(&temporary_path, &final_path)
            .map_err(io_error(format!("renaming {}", temporary_path.display())))?;
        fs::File::open(&dir)
            .and_then(|folder| folder.sync_all())
            .map_err(io_error(format!("syncing {}", dir.display())))?;
        // Only older snapshots go: a snapshot installed from the leader may be written while
        // this node's own (older) one is, and the newer must survive whichever finishes last.
        for old in self.snapshot_files()? {
            if old < final_path {
                let _ = fs::remove_file(old);
            }
        }
        Ok(final_path)
    }

    fn snapshot_files(&self) -> Result<Vec<PathBuf>, StorageError> {
        let dir = self.snapshot_dir();
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(io_error(format!("listing {}", dir.display())))?
            .filter_map(|item| item.ok().map(|item| item.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Reads and verifies one snapshot file.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when the magic, the header or the data checksum is wrong.
    pub fn read_snapshot(path: &Path) -> Result<(SnapshotMeta, Vec<u8>), StorageError> {
        let bytes = fs::read(path).map_err(io_error(format!("reading {}", path.display())))?;
        Storage::decode_snapshot(&bytes, &path.display().to_string())
    }

    /// A snapshot file's bytes as [`Storage::save_snapshot`] writes them. For the fuzzer and
    /// the property tests.
    #[doc(hidden)]
    pub fn encode_snapshot(meta: &SnapshotMeta, data: &[u8]) -> Vec<u8> {
        let header = SnapshotHeader {
            meta: meta.clone(),
            data_bytes: data.len() as u64,
            data_crc32: crc32fast::hash(data),
        };
        let header_bytes = encode_checked(&header);
        let mut bytes = Vec::with_capacity(12 + header_bytes.len() + data.len());
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&(header_bytes.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&header_bytes);
        bytes.extend_from_slice(data);
        bytes
    }

    /// Verifies and decodes a snapshot file's bytes; `name` names it in errors. What
    /// [`Storage::read_snapshot`] does after reading the file; public for the fuzzer.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when the magic, the header or the data checksum is wrong.
    #[doc(hidden)]
    pub fn decode_snapshot(bytes: &[u8], name: &str) -> Result<(SnapshotMeta, Vec<u8>), StorageError> {
        let corrupt = |why: &str| StorageError::Corrupt { what: format!("snapshot {name}: {why}") };
        if bytes.len() >= 8 && &bytes[..8] == SNAPSHOT_MAGIC_V1 {
            return Err(corrupt(
                "snapshot format 1, written by an older build; this build reads format 2 (take a backup with the older build and restore it here, or rejoin this node with an empty data directory)",
            ));
        }
        if bytes.len() < 12 || &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(corrupt("not a snapshot file (bad magic)"));
        }
        let header_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let header_end = 12usize.checked_add(header_len).filter(|&end| end <= bytes.len());
        let Some(header_end) = header_end else {
            return Err(corrupt("truncated header"));
        };
        let header: SnapshotHeader =
            decode_checked(&bytes[12..header_end], || format!("snapshot {name} header"))?;
        let data = &bytes[header_end..];
        if data.len() as u64 != header.data_bytes {
            return Err(corrupt(&format!("{} data bytes, header says {}", data.len(), header.data_bytes)));
        }
        if crc32fast::hash(data) != header.data_crc32 {
            return Err(corrupt("data checksum mismatch"));
        }
        Ok((header.meta, data.to_vec()))
    }

    fn load_latest_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        match self.snapshot_files()?.last() {
            Some(path) => Ok(Some(Storage::read_snapshot(path)?)),
            None => Ok(None),
        }
    }

    /// Test helper: damages the first log record of a closed data directory, as a disk fault
    /// would.
    #[doc(hidden)]
    pub fn corrupt_log_for_test(data_dir: &Path) -> std::io::Result<()> {
        Wal::corrupt_first_record_for_test(data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{EntryPayload, LogIndex, Membership, Term};

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Command(bytes::Bytes::from(format!("e{index}"))),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flotilla-storage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn persist_truncates_a_conflicting_suffix_and_survives_reopen() {
        let dir = temp_dir("truncate");
        {
            let storage = Storage::open(&dir).unwrap();
            let hs = HardState { term: Term(2), voted_for: Some(NodeId(1)), commit: LogIndex(0) };
            storage.persist(&hs, &[entry(1, 1), entry(2, 1), entry(3, 2)]).unwrap();
            storage.persist(&hs, &[entry(2, 2)]).unwrap();
        }
        let storage = Storage::open(&dir).unwrap();
        let recovered = storage.recover().unwrap();
        let indexes: Vec<(u64, u64)> = recovered.entries.iter().map(|e| (e.index.0, e.term.0)).collect();
        assert_eq!(indexes, vec![(1, 1), (2, 2)]);
        assert_eq!(recovered.hard_state.unwrap().voted_for, Some(NodeId(1)));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_entry_is_reported_not_used() {
        let dir = temp_dir("corrupt");
        {
            let storage = Storage::open(&dir).unwrap();
            let hs = HardState { term: Term(1), voted_for: None, commit: LogIndex(0) };
            storage.persist(&hs, &[entry(1, 1)]).unwrap();
            storage.persist(&hs, &[entry(2, 1)]).unwrap();
        }
        Storage::corrupt_log_for_test(&dir).unwrap();
        let error = Storage::open(&dir).unwrap_err().to_string();
        assert!(error.contains("corrupt data") && error.contains("checksum"), "{error}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn identity_is_claimed_once() {
        let dir = temp_dir("identity");
        let storage = Storage::open(&dir).unwrap();
        let me = Identity { cluster_id: "c".into(), node_id: NodeId(1) };
        storage.claim_identity(&me).unwrap();
        storage.claim_identity(&me).unwrap();
        let other = Identity { cluster_id: "c".into(), node_id: NodeId(2) };
        assert!(matches!(storage.claim_identity(&other), Err(StorageError::WrongIdentity { .. })));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_snapshot_of_the_older_format_is_refused_by_name() {
        let error = Storage::decode_snapshot(b"FLOTSNP1\x04\x00\x00\x00abcd", "old.snap").unwrap_err();
        assert!(error.to_string().contains("snapshot format 1"), "{error}");
    }

    #[test]
    fn snapshots_are_checksummed_and_replaced_atomically() {
        let dir = temp_dir("snapshot");
        let storage = Storage::open(&dir).unwrap();
        let meta = SnapshotMeta {
            index: LogIndex(7),
            term: Term(2),
            membership: Membership::with_voters([NodeId(1)]),
            membership_index: LogIndex(1),
        };
        let path = storage.save_snapshot(&meta, b"state").unwrap();
        let (read_meta, data) = Storage::read_snapshot(&path).unwrap();
        assert_eq!((read_meta, data.as_slice()), (meta.clone(), &b"state"[..]));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        let error = storage.recover().unwrap_err().to_string();
        assert!(error.contains("checksum"), "{error}");
        let _ = fs::remove_dir_all(&dir);
    }
}
