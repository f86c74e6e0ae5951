//! The key-value store's snapshot format, written and read as a stream (thesis §5.1).
//!
//! ```text
//! header   "FLOTKV" magic (6 bytes), format version (u16 little-endian)
//! frames   length (u32 little-endian, > 0), then that many bytes: one postcard-encoded record
//!          records come in this order: one State, Pairs by key, Sessions by id, Expired by id;
//!          then, only while a streamed restore is staged: one Staged, StagedPairs,
//!          StagedSessions, StagedExpired (the backup decoded so far), StagedPending (its
//!          bytes not parsed yet, in records of at most 64 KiB)
//! trailer  a zero length (u32), then the CRC-32C of every byte before it (u32 little-endian)
//! ```
//!
//! The staged restore is written because a snapshot must capture the whole state at its index
//! (thesis §5.1; why in `crate::kv::staging`). Format 2 added it; format 1 snapshots (which
//! have no staged records) are still read. A user's backup ([`KvRestore`] of a backup, as a
//! `Restore` or `RestoreChunk` command feeds it) brings data only: its sessions are read and
//! checked like the rest (so a staged backup's parse position round-trips through a snapshot)
//! but the store keeps its own (`KvStore::swap_in_backup`, thesis §6.3), and a restore it was
//! staging is skipped.
//!
//! Records are written in the maps' order, so the same state always gives the same bytes, on
//! every replica. The reader checks the order too, so any state it accepts writes back
//! byte-for-byte the same. Frames keep both sides streaming: the writer never encodes the whole
//! state into one buffer, the reader holds at most one frame of unparsed bytes.

use crate::kv::checksum::Crc32c;
use crate::kv::command::ClientId;
use crate::kv::key::Key;
use crate::kv::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::kv::response::Response;
use crate::kv::session::{Session, Sessions};
use crate::kv::staging::StagedRestore;
use crate::kv::KvConfig;
use crate::state_machine::{SnapshotRestore, SNAPSHOT_CHUNK_BYTES_MAX};
use crate::types::LogIndex;
use alloc::boxed::Box;
use alloc::collections::{btree_map, btree_set, BTreeMap};
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use core::fmt;
use serde::{Deserialize, Serialize};

/// The first bytes of every key-value snapshot.
pub const SNAPSHOT_MAGIC: [u8; 6] = *b"FLOTKV";

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 2;

/// The oldest snapshot format this build reads.
const SNAPSHOT_FORMAT_VERSION_MIN: u16 = 1;

/// The longest frame a reader accepts, in bytes: the largest record (a session caching a
/// maximal response) with room to spare. Bounds the reader's buffer whatever the input says.
pub const SNAPSHOT_FRAME_BYTES_MAX: usize = 256 * 1024;

const HEADER_BYTES: usize = SNAPSHOT_MAGIC.len() + 2;
const LENGTH_BYTES: usize = 4;
const TRAILER_BYTES: usize = LENGTH_BYTES + 4;

/// The section of the first staged-restore record (see [`Record::section`]).
const STAGED_SECTION: u8 = 4;

/// The most unparsed bytes of a staged restore one `StagedPending` record carries.
const PENDING_RECORD_BYTES_MAX: usize = 64 * 1024;

/// One record, borrowed for writing. Must mirror [`Record`] variant for variant.
#[derive(Serialize)]
enum RecordRef<'a> {
    State { applied_index: u64, clock_ms: u64 },
    Pair { key: &'a Bytes, value: &'a Bytes },
    Session { client_id: ClientId, last_active_ms: u64, last: &'a Option<(u64, Response)> },
    Expired { client_id: ClientId },
    Staged(StagedHeader),
    StagedPair { key: &'a Bytes, value: &'a Bytes },
    StagedSession { client_id: ClientId, last_active_ms: u64, last: &'a Option<(u64, Response)> },
    StagedExpired { client_id: ClientId },
    StagedPending { bytes: &'a Bytes },
}

/// A staged restore's progress (`crate::kv::staging::StagedRestore`) and where its decoding of
/// the backup stands: everything but the backup's records decoded so far and its unparsed
/// bytes, which follow as records of their own.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct StagedHeader {
    restore_id: u64,
    next_sequence: u64,
    bytes: u64,
    first_ms: u64,
    last_ms: u64,
    /// The backup's format version, once its header was read (0 before).
    version: u16,
    /// [`Phase`] as a number.
    phase: u8,
    /// The running checksum over the backup's bytes parsed so far.
    crc: u32,
    /// The backup's State record (applied index, clock), once read.
    state: Option<(u64, u64)>,
}

/// One record, owned for reading.
#[derive(Deserialize)]
enum Record {
    State { applied_index: u64, clock_ms: u64 },
    Pair { key: Bytes, value: Bytes },
    Session { client_id: ClientId, last_active_ms: u64, last: Option<(u64, Response)> },
    Expired { client_id: ClientId },
    Staged(StagedHeader),
    StagedPair { key: Bytes, value: Bytes },
    StagedSession { client_id: ClientId, last_active_ms: u64, last: Option<(u64, Response)> },
    StagedExpired { client_id: ClientId },
    StagedPending { bytes: Bytes },
}

impl Record {
    /// The section a record belongs to; sections come in increasing order.
    fn section(&self) -> u8 {
        match self {
            Record::State { .. } => 0,
            Record::Pair { .. } => 1,
            Record::Session { .. } => 2,
            Record::Expired { .. } => 3,
            Record::Staged(_) => STAGED_SECTION,
            Record::StagedPair { .. } => 5,
            Record::StagedSession { .. } => 6,
            Record::StagedExpired { .. } => 7,
            Record::StagedPending { .. } => 8,
        }
    }

    /// Whether a section holds one record at most.
    fn single(section: u8) -> bool {
        section == 0 || section == STAGED_SECTION
    }
}

/// The whole replicated state of a [`crate::kv::KvStore`], as written to and read from a
/// snapshot.
#[derive(Clone, Debug, Default)]
pub(crate) struct KvState {
    pub(crate) applied_index: LogIndex,
    pub(crate) clock_ms: u64,
    pub(crate) data: BTreeMap<Key, Bytes>,
    pub(crate) sessions: Sessions,
    /// A streamed restore being received, if any.
    pub(crate) staged: Option<Box<StagedRestore>>,
}

/// A state's keys and sessions, in the order a snapshot writes them.
#[derive(Debug)]
struct Contents {
    pairs: btree_map::IntoIter<Key, Bytes>,
    sessions: btree_map::IntoIter<ClientId, Session>,
    expired: btree_set::IntoIter<ClientId>,
}

/// One item of [`Contents`].
enum Item {
    Pair(Key, Bytes),
    Session(ClientId, Session),
    Expired(ClientId),
}

impl Contents {
    fn new(data: BTreeMap<Key, Bytes>, sessions: Sessions) -> Contents {
        let (live, expired) = sessions.into_parts();
        Contents { pairs: data.into_iter(), sessions: live.into_iter(), expired: expired.into_iter() }
    }

    fn next(&mut self) -> Option<Item> {
        if let Some((key, value)) = self.pairs.next() {
            Some(Item::Pair(key, value))
        } else if let Some((client_id, session)) = self.sessions.next() {
            Some(Item::Session(client_id, session))
        } else {
            self.expired.next().map(Item::Expired)
        }
    }
}

/// A point-in-time snapshot of a [`crate::kv::KvStore`] as a stream of chunks of at most
/// [`SNAPSHOT_CHUNK_BYTES_MAX`] bytes. It owns a copy of the state (values are shared, not
/// copied), so the store may keep applying entries while the chunks are written out.
#[derive(Debug)]
pub struct KvSnapshot {
    /// Encoded bytes not yet handed out.
    buffer: BytesMut,
    /// Covers every byte written so far, up to the trailer's checksum field.
    crc: Crc32c,
    /// The State record, until it is written.
    state: Option<(LogIndex, u64)>,
    contents: Contents,
    /// The staged restore's header, until it is written; then its contents and unparsed bytes.
    staged_header: Option<StagedHeader>,
    staged_contents: Option<Contents>,
    staged_pending: Bytes,
    /// Whether the trailer was written: nothing more will be added to `buffer`.
    sealed: bool,
    /// A frame's encoding, reused between records.
    scratch: Vec<u8>,
}

impl KvSnapshot {
    pub(crate) fn new(state: KvState) -> KvSnapshot {
        let KvState { applied_index, clock_ms, data, sessions, staged } = state;
        let (staged_header, staged_contents, staged_pending) = match staged {
            None => (None, None, Bytes::new()),
            Some(staged) => {
                let StagedRestore { id, next_sequence, bytes, first_ms, last_ms, restore } = *staged;
                let (progress, state, pending) = restore.into_progress();
                let header =
                    StagedHeader { restore_id: id, next_sequence, bytes, first_ms, last_ms, ..progress };
                let contents = Contents::new(state.data, state.sessions);
                (Some(header), Some(contents), Bytes::from(pending))
            }
        };
        let mut snapshot = KvSnapshot {
            buffer: BytesMut::with_capacity(SNAPSHOT_CHUNK_BYTES_MAX),
            crc: Crc32c::new(),
            state: Some((applied_index, clock_ms)),
            contents: Contents::new(data, sessions),
            staged_header,
            staged_contents,
            staged_pending,
            sealed: false,
            scratch: Vec::new(),
        };
        snapshot.write(&SNAPSHOT_MAGIC);
        snapshot.write(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        snapshot
    }

    fn write(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.buffer.extend_from_slice(bytes);
    }

    fn write_record(&mut self, record: &RecordRef<'_>) {
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        // Postcard cannot fail to encode these plain derived types into a growable vector.
        let Ok(frame) = postcard::to_extend(record, scratch) else {
            unreachable!("postcard cannot fail to encode a snapshot record into a vec")
        };
        debug_assert!(!frame.is_empty() && frame.len() <= SNAPSHOT_FRAME_BYTES_MAX);
        self.write(&(frame.len() as u32).to_le_bytes());
        self.write(&frame);
        self.scratch = frame;
    }

    /// Writes one key or session, of the store or (`staged`) of the staged restore's backup.
    fn write_item(&mut self, item: Item, staged: bool) {
        let record = match &item {
            Item::Pair(key, value) if staged => RecordRef::StagedPair { key: key.bytes(), value },
            Item::Pair(key, value) => RecordRef::Pair { key: key.bytes(), value },
            Item::Session(client_id, session) => {
                let (client_id, last_active_ms, last) = (*client_id, session.last_active_ms, &session.last);
                if staged {
                    RecordRef::StagedSession { client_id, last_active_ms, last }
                } else {
                    RecordRef::Session { client_id, last_active_ms, last }
                }
            }
            Item::Expired(client_id) if staged => RecordRef::StagedExpired { client_id: *client_id },
            Item::Expired(client_id) => RecordRef::Expired { client_id: *client_id },
        };
        self.write_record(&record);
    }

    /// Appends the next record, or the trailer once the records run out.
    fn write_next(&mut self) {
        if let Some((applied_index, clock_ms)) = self.state.take() {
            self.write_record(&RecordRef::State { applied_index: applied_index.0, clock_ms });
        } else if let Some(item) = self.contents.next() {
            self.write_item(item, false);
        } else if let Some(header) = self.staged_header.take() {
            self.write_record(&RecordRef::Staged(header));
        } else if let Some(item) = self.staged_contents.as_mut().and_then(Contents::next) {
            self.write_item(item, true);
        } else if !self.staged_pending.is_empty() {
            let bytes = self.staged_pending.split_to(self.staged_pending.len().min(PENDING_RECORD_BYTES_MAX));
            self.write_record(&RecordRef::StagedPending { bytes: &bytes });
        } else {
            self.write(&0u32.to_le_bytes());
            let crc = self.crc.value();
            self.buffer.extend_from_slice(&crc.to_le_bytes());
            self.sealed = true;
        }
    }
}

impl Iterator for KvSnapshot {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        while !self.sealed && self.buffer.len() < SNAPSHOT_CHUNK_BYTES_MAX {
            self.write_next();
        }
        if self.buffer.is_empty() {
            return None;
        }
        let len = self.buffer.len().min(SNAPSHOT_CHUNK_BYTES_MAX);
        Some(self.buffer.split_to(len).freeze())
    }
}

/// Why bytes are not a valid key-value snapshot. A restore that fails leaves the store as it
/// was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The data does not start with [`SNAPSHOT_MAGIC`].
    BadMagic,
    /// Written by a format version this build does not read.
    UnsupportedVersion {
        /// The version found.
        version: u16,
    },
    /// A frame claims more than [`SNAPSHOT_FRAME_BYTES_MAX`] bytes.
    FrameTooLarge {
        /// The claimed length in bytes.
        len_bytes: u64,
    },
    /// A frame's bytes are not a record.
    Malformed,
    /// The records decode but describe an impossible or out-of-order state.
    Invalid(&'static str),
    /// The checksum does not match the data.
    ChecksumMismatch {
        /// The checksum stored in the trailer.
        stored: u32,
        /// The checksum of the data received.
        computed: u32,
    },
    /// The data ended before the trailer.
    Truncated,
    /// Bytes follow the trailer.
    TrailingBytes,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BadMagic => f.write_str("not a key-value snapshot (bad magic)"),
            SnapshotError::UnsupportedVersion { version } => {
                write!(f, "unsupported snapshot format version {version}")
            }
            SnapshotError::FrameTooLarge { len_bytes } => {
                write!(f, "snapshot frame of {len_bytes} bytes exceeds {SNAPSHOT_FRAME_BYTES_MAX} bytes")
            }
            SnapshotError::Malformed => f.write_str("malformed snapshot record"),
            SnapshotError::Invalid(why) => write!(f, "invalid snapshot: {why}"),
            SnapshotError::ChecksumMismatch { stored, computed } => {
                write!(f, "snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            SnapshotError::Truncated => f.write_str("snapshot ended before its trailer"),
            SnapshotError::TrailingBytes => f.write_str("bytes after the snapshot trailer"),
        }
    }
}

impl core::error::Error for SnapshotError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Header,
    Frames,
    Done,
}

impl Phase {
    /// As a snapshot of a staged restore writes it.
    fn number(self) -> u8 {
        match self {
            Phase::Header => 0,
            Phase::Frames => 1,
            Phase::Done => 2,
        }
    }

    fn from_number(number: u8) -> Option<Phase> {
        [Phase::Header, Phase::Frames, Phase::Done].into_iter().find(|phase| phase.number() == number)
    }
}

/// A snapshot being read into a staging state, by [`crate::kv::KvStore`]'s
/// [`crate::state_machine::StateMachine::begin_restore`] (a replica's snapshot: all of it) or
/// by a user restore (a backup: its data; its sessions are read but not kept). The store is replaced only by
/// `finish_restore` (or the restore command), and only if the whole snapshot was valid.
#[derive(Clone, Debug)]
pub struct KvRestore {
    config: KvConfig,
    /// Whether this reads a user's backup, whose staged restore (if any) is skipped.
    of_backup: bool,
    /// The snapshot's format version, once its header was read (0 before).
    version: u16,
    /// Received bytes not parsed yet: at most one partial frame, or a partial header/trailer.
    pending: Vec<u8>,
    crc: Crc32c,
    phase: Phase,
    /// The section of the last record accepted (see [`Record::section`]); `None` before the
    /// first. Derived from `state` alone (the highest section with a record in it), which is
    /// why a snapshot of a staged restore need not carry it.
    section: Option<u8>,
    state: KvState,
    /// The first error seen; once set, the restore only ever reports it.
    error: Option<SnapshotError>,
}

impl KvRestore {
    /// A restore of a replica's snapshot (InstallSnapshot, a restart): the whole state.
    pub(crate) fn new(config: KvConfig) -> KvRestore {
        KvRestore {
            config,
            of_backup: false,
            version: 0,
            pending: Vec::new(),
            crc: Crc32c::new(),
            phase: Phase::Header,
            section: None,
            state: KvState::default(),
            error: None,
        }
    }

    /// A restore of a user's backup: its data and sessions (checked, then dropped by the store);
    /// a restore it was staging is skipped (not the user's data, and a staging inside a staging
    /// would never end).
    pub(crate) fn of_backup(config: KvConfig) -> KvRestore {
        KvRestore { of_backup: true, ..KvRestore::new(config) }
    }

    /// Where this backup restore stands, for a snapshot of the store staging it: a header with
    /// its parse position (the restore's own fields left zero for the caller), the records
    /// decoded so far, and the bytes not parsed yet. Its `error` is always `None`: a store drops
    /// a staged restore at its first error.
    fn into_progress(self) -> (StagedHeader, KvState, Vec<u8>) {
        let state_record = self.section.map(|_| (self.state.applied_index.0, self.state.clock_ms));
        let header = StagedHeader {
            restore_id: 0,
            next_sequence: 0,
            bytes: 0,
            first_ms: 0,
            last_ms: 0,
            version: self.version,
            phase: self.phase.number(),
            crc: self.crc.state(),
            state: state_record,
        };
        (header, self.state, self.pending)
    }

    /// The backup restore a [`StagedHeader`] describes, before its records and unparsed bytes
    /// are added back.
    fn resume(config: KvConfig, header: &StagedHeader) -> Result<KvRestore, SnapshotError> {
        let phase =
            Phase::from_number(header.phase).ok_or(SnapshotError::Invalid("unknown restore phase"))?;
        // Only a position some parse reaches: before the backup's header nothing is known (no
        // version, no State record, the checksum untouched); after it, the version is one the
        // header check accepts. So any staging a reader accepts is one a replica could be in.
        let reachable = match phase {
            Phase::Header => {
                header.version == 0 && header.state.is_none() && header.crc == Crc32c::new().state()
            }
            Phase::Frames | Phase::Done => {
                (SNAPSHOT_FORMAT_VERSION_MIN..=SNAPSHOT_FORMAT_VERSION).contains(&header.version)
            }
        };
        if !reachable {
            return Err(SnapshotError::Invalid("a staged restore's parse position no parse can reach"));
        }
        let mut restore = KvRestore {
            version: header.version,
            crc: Crc32c::resume(header.crc),
            phase,
            ..KvRestore::of_backup(config)
        };
        if let Some((applied_index, clock_ms)) = header.state {
            restore.accept(Record::State { applied_index, clock_ms })?;
        }
        Ok(restore)
    }

    /// The staged restore whose records are being read.
    fn staged_restore(&mut self) -> Result<&mut KvRestore, SnapshotError> {
        match self.state.staged.as_mut() {
            Some(staged) => Ok(&mut staged.restore),
            None => Err(SnapshotError::Invalid("staged-restore records without their header")),
        }
    }

    /// The staged state, if the snapshot was complete and valid.
    pub(crate) fn finish(self) -> Result<KvState, SnapshotError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.phase != Phase::Done {
            return Err(SnapshotError::Truncated);
        }
        Ok(self.state)
    }

    /// Parses as much of `pending` as is complete; returns how many bytes were consumed.
    fn parse(&mut self) -> Result<usize, SnapshotError> {
        let mut position = 0;
        loop {
            let rest = &self.pending[position..];
            match self.phase {
                Phase::Header => {
                    let Some(header) = rest.get(..HEADER_BYTES) else { return Ok(position) };
                    if header[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
                        return Err(SnapshotError::BadMagic);
                    }
                    let version = u16::from_le_bytes([header[6], header[7]]);
                    if !(SNAPSHOT_FORMAT_VERSION_MIN..=SNAPSHOT_FORMAT_VERSION).contains(&version) {
                        return Err(SnapshotError::UnsupportedVersion { version });
                    }
                    self.version = version;
                    self.crc.update(header);
                    position += HEADER_BYTES;
                    self.phase = Phase::Frames;
                }
                Phase::Frames => {
                    let Some(length) = rest.get(..LENGTH_BYTES) else { return Ok(position) };
                    let len_bytes = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
                    if len_bytes == 0 {
                        let Some(trailer) = rest.get(..TRAILER_BYTES) else { return Ok(position) };
                        self.crc.update(&trailer[..LENGTH_BYTES]);
                        let stored = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                        let computed = self.crc.value();
                        if stored != computed {
                            return Err(SnapshotError::ChecksumMismatch { stored, computed });
                        }
                        position += TRAILER_BYTES;
                        self.phase = Phase::Done;
                        continue;
                    }
                    if len_bytes > SNAPSHOT_FRAME_BYTES_MAX {
                        return Err(SnapshotError::FrameTooLarge { len_bytes: len_bytes as u64 });
                    }
                    let Some(frame) = rest.get(..LENGTH_BYTES + len_bytes) else { return Ok(position) };
                    self.crc.update(frame);
                    let record = match postcard::take_from_bytes::<Record>(&frame[LENGTH_BYTES..]) {
                        Ok((record, [])) => record,
                        _ => return Err(SnapshotError::Malformed),
                    };
                    position += LENGTH_BYTES + len_bytes;
                    self.accept(record)?;
                }
                Phase::Done => {
                    if rest.is_empty() {
                        return Ok(position);
                    }
                    return Err(SnapshotError::TrailingBytes);
                }
            }
        }
    }

    /// Checks one record against what came before and adds it to the staged state.
    fn accept(&mut self, record: Record) -> Result<(), SnapshotError> {
        let section = record.section();
        if section >= STAGED_SECTION {
            if self.version < 2 {
                return Err(SnapshotError::Invalid("a staged restore in a format 1 snapshot"));
            }
            if self.of_backup {
                return Ok(());
            }
        }
        match self.section {
            None if section != 0 => return Err(SnapshotError::Invalid("the state record must come first")),
            Some(previous) if section < previous || (section == previous && Record::single(section)) => {
                return Err(SnapshotError::Invalid("records out of order"));
            }
            _ => {}
        }
        self.section = Some(section);
        let state = &mut self.state;
        match record {
            Record::State { applied_index, clock_ms } => {
                state.applied_index = LogIndex(applied_index);
                state.clock_ms = clock_ms;
            }
            Record::Pair { key, value } => {
                if key.len() > KEY_BYTES_MAX || value.len() > VALUE_BYTES_MAX {
                    return Err(SnapshotError::Invalid("key or value over the size limit"));
                }
                if state.data.last_key_value().is_some_and(|(last, _)| *last.bytes() >= key) {
                    return Err(SnapshotError::Invalid("keys out of order"));
                }
                if state.data.len() as u64 >= self.config.keys_max {
                    return Err(SnapshotError::Invalid("more keys than keys_max"));
                }
                state.data.insert(Key::new(key), value);
            }
            Record::Session { client_id, last_active_ms, last } => {
                if client_id.0 == 0 || client_id.0 > state.applied_index.0 {
                    return Err(SnapshotError::Invalid("session id outside the applied log"));
                }
                if last_active_ms > state.clock_ms {
                    return Err(SnapshotError::Invalid("session active after the store clock"));
                }
                if state.sessions.live().next_back().is_some_and(|(last_id, _)| *last_id >= client_id) {
                    return Err(SnapshotError::Invalid("sessions out of order"));
                }
                if state.sessions.live().len() as u64 >= self.config.sessions_max {
                    return Err(SnapshotError::Invalid("more sessions than sessions_max"));
                }
                state.sessions.insert_live(client_id, Session { last_active_ms, last });
            }
            Record::Expired { client_id } => {
                if client_id.0 == 0 || client_id.0 > state.applied_index.0 {
                    return Err(SnapshotError::Invalid("expired session id outside the applied log"));
                }
                if state.sessions.is_live(client_id) {
                    return Err(SnapshotError::Invalid("a session both live and expired"));
                }
                if state.sessions.expired().next_back().is_some_and(|last_id| *last_id >= client_id) {
                    return Err(SnapshotError::Invalid("expired sessions out of order"));
                }
                if state.sessions.expired().len() as u64 >= self.config.expired_sessions_remembered_max {
                    return Err(SnapshotError::Invalid("more expired sessions than remembered"));
                }
                state.sessions.insert_expired(client_id);
            }
            Record::Staged(header) => {
                if header.first_ms > header.last_ms || header.last_ms > state.clock_ms {
                    return Err(SnapshotError::Invalid("staged restore active after the store clock"));
                }
                let restore = KvRestore::resume(self.config, &header)?;
                let StagedHeader { restore_id: id, next_sequence, bytes, first_ms, last_ms, .. } = header;
                let staged_restore = StagedRestore { id, next_sequence, bytes, first_ms, last_ms, restore };
                state.staged = Some(Box::new(staged_restore));
            }
            Record::StagedPair { key, value } => {
                self.staged_restore()?.accept(Record::Pair { key, value })?
            }
            Record::StagedSession { client_id, last_active_ms, last } => {
                self.staged_restore()?.accept(Record::Session { client_id, last_active_ms, last })?;
            }
            Record::StagedExpired { client_id } => {
                self.staged_restore()?.accept(Record::Expired { client_id })?;
            }
            Record::StagedPending { bytes } => {
                let restore = self.staged_restore()?;
                // Never more than one partial frame (see `pending`).
                if restore.pending.len() + bytes.len() > LENGTH_BYTES + SNAPSHOT_FRAME_BYTES_MAX {
                    return Err(SnapshotError::Invalid("a staged restore's unparsed bytes exceed a frame"));
                }
                restore.pending.extend_from_slice(&bytes);
            }
        }
        Ok(())
    }
}

impl SnapshotRestore for KvRestore {
    type Error = SnapshotError;

    fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SnapshotError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.pending.extend_from_slice(chunk);
        match self.parse() {
            Ok(consumed) => {
                // One drain per chunk, not per frame: parsing stays linear in the input.
                self.pending.drain(..consumed);
                Ok(())
            }
            Err(error) => {
                self.error = Some(error);
                self.pending = Vec::new();
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Command, CommandBody, KvStore, Operation};
    use crate::state_machine::{restore_from_chunks, StateMachine};
    use crate::types::{Entry, EntryPayload, Term};

    fn apply(store: &mut KvStore, body: CommandBody) {
        let index = store.applied_index().next();
        let payload = EntryPayload::Command(Command { timestamp_ms: 1, body }.encode());
        assert!(store.apply(&Entry { term: Term(1), index, payload }).is_ok());
    }

    fn bytes_of(store: &KvStore) -> Vec<u8> {
        store.snapshot().flat_map(|chunk| chunk.to_vec()).collect()
    }

    /// Rewrites a snapshot as format 1 (the version field, then the trailer's checksum).
    fn as_format_1(mut data: Vec<u8>) -> Vec<u8> {
        data[6..8].copy_from_slice(&1u16.to_le_bytes());
        let sealed = data.len() - 4;
        let mut crc = Crc32c::new();
        crc.update(&data[..sealed]);
        data[sealed..].copy_from_slice(&crc.value().to_le_bytes());
        data
    }

    /// Snapshots written before staged restores were (format 1, e.g. on a node's disk) still
    /// restore; a staged restore in one is refused, as format 1 had none.
    #[test]
    fn a_format_1_snapshot_still_restores_but_may_not_carry_a_staged_restore() {
        let mut store = KvStore::new(KvConfig::default()).unwrap();
        let put = Operation::Put { key: Bytes::from("k"), value: Bytes::from("v") };
        apply(&mut store, CommandBody::Request { session: None, operation: put });
        let mut copy = KvStore::new(KvConfig::default()).unwrap();
        restore_from_chunks(&mut copy, [as_format_1(bytes_of(&store))]).unwrap();
        assert_eq!(copy.get(b"k").map(|v| &v[..]), Some(&b"v"[..]));

        let piece = Bytes::from(bytes_of(&store)[..20].to_vec());
        apply(&mut store, CommandBody::RestoreChunk { restore_id: 1, sequence: 0, data: piece, last: false });
        assert!(store.restore_staged());
        let mut copy = KvStore::new(KvConfig::default()).unwrap();
        restore_from_chunks(&mut copy, [bytes_of(&store)]).unwrap();
        assert!(copy.restore_staged());
        let refused = restore_from_chunks(&mut copy, [as_format_1(bytes_of(&store))]);
        assert!(
            matches!(refused, Err(SnapshotError::Invalid(why)) if why.contains("format 1")),
            "{refused:?}"
        );
    }
}
