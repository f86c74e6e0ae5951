//! The key-value store's snapshot format, written and read as a stream (thesis §5.1).
//!
//! ```text
//! header   "FLOTKV" magic (6 bytes), format version (u16 little-endian)
//! frames   length (u32 little-endian, > 0), then that many bytes: one postcard-encoded record
//!          records come in this order: one State, Pairs by key, Sessions by id, Expired by id
//! trailer  a zero length (u32), then the CRC-32C of every byte before it (u32 little-endian)
//! ```
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
use crate::kv::KvConfig;
use crate::state_machine::{SnapshotRestore, SNAPSHOT_CHUNK_BYTES_MAX};
use crate::types::LogIndex;
use alloc::collections::{btree_map, btree_set, BTreeMap};
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use core::fmt;
use serde::{Deserialize, Serialize};

/// The first bytes of every key-value snapshot.
pub const SNAPSHOT_MAGIC: [u8; 6] = *b"FLOTKV";

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 1;

/// The longest frame a reader accepts, in bytes: the largest record (a session caching a
/// maximal response) with room to spare. Bounds the reader's buffer whatever the input says.
pub const SNAPSHOT_FRAME_BYTES_MAX: usize = 256 * 1024;

const HEADER_BYTES: usize = SNAPSHOT_MAGIC.len() + 2;
const LENGTH_BYTES: usize = 4;
const TRAILER_BYTES: usize = LENGTH_BYTES + 4;

/// One record, borrowed for writing. Must mirror [`Record`] variant for variant.
#[derive(Serialize)]
enum RecordRef<'a> {
    State { applied_index: u64, clock_ms: u64 },
    Pair { key: &'a Bytes, value: &'a Bytes },
    Session { client_id: ClientId, last_active_ms: u64, last: &'a Option<(u64, Response)> },
    Expired { client_id: ClientId },
}

/// One record, owned for reading.
#[derive(Deserialize)]
enum Record {
    State { applied_index: u64, clock_ms: u64 },
    Pair { key: Bytes, value: Bytes },
    Session { client_id: ClientId, last_active_ms: u64, last: Option<(u64, Response)> },
    Expired { client_id: ClientId },
}

impl Record {
    /// The section a record belongs to; sections come in increasing order.
    fn section(&self) -> u8 {
        match self {
            Record::State { .. } => 0,
            Record::Pair { .. } => 1,
            Record::Session { .. } => 2,
            Record::Expired { .. } => 3,
        }
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
    pairs: btree_map::IntoIter<Key, Bytes>,
    sessions: btree_map::IntoIter<ClientId, Session>,
    expired: btree_set::IntoIter<ClientId>,
    /// Whether the trailer was written: nothing more will be added to `buffer`.
    sealed: bool,
    /// A frame's encoding, reused between records.
    scratch: Vec<u8>,
}

impl KvSnapshot {
    pub(crate) fn new(state: KvState) -> KvSnapshot {
        let (live, expired) = state.sessions.into_parts();
        let mut snapshot = KvSnapshot {
            buffer: BytesMut::with_capacity(SNAPSHOT_CHUNK_BYTES_MAX),
            crc: Crc32c::new(),
            state: Some((state.applied_index, state.clock_ms)),
            pairs: state.data.into_iter(),
            sessions: live.into_iter(),
            expired: expired.into_iter(),
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

    /// Appends the next record, or the trailer once the records run out.
    fn write_next(&mut self) {
        if let Some((applied_index, clock_ms)) = self.state.take() {
            self.write_record(&RecordRef::State { applied_index: applied_index.0, clock_ms });
        } else if let Some((key, value)) = self.pairs.next() {
            self.write_record(&RecordRef::Pair { key: key.bytes(), value: &value });
        } else if let Some((client_id, session)) = self.sessions.next() {
            let last_active_ms = session.last_active_ms;
            self.write_record(&RecordRef::Session { client_id, last_active_ms, last: &session.last });
        } else if let Some(client_id) = self.expired.next() {
            self.write_record(&RecordRef::Expired { client_id });
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

/// A snapshot being read into a staging state, by [`crate::kv::KvStore`]'s
/// [`crate::state_machine::StateMachine::begin_restore`]. The store is replaced only by
/// `finish_restore`, and only if the whole snapshot was valid.
#[derive(Clone, Debug)]
pub struct KvRestore {
    config: KvConfig,
    /// Received bytes not parsed yet: at most one partial frame, or a partial header/trailer.
    pending: Vec<u8>,
    crc: Crc32c,
    phase: Phase,
    /// The section of the last record (see [`Record::section`]); `None` before the first.
    section: Option<u8>,
    staged: KvState,
    /// The first error seen; once set, the restore only ever reports it.
    error: Option<SnapshotError>,
}

impl KvRestore {
    pub(crate) fn new(config: KvConfig) -> KvRestore {
        KvRestore {
            config,
            pending: Vec::new(),
            crc: Crc32c::new(),
            phase: Phase::Header,
            section: None,
            staged: KvState::default(),
            error: None,
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
        Ok(self.staged)
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
                    if version != SNAPSHOT_FORMAT_VERSION {
                        return Err(SnapshotError::UnsupportedVersion { version });
                    }
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
        match self.section {
            None if section != 0 => return Err(SnapshotError::Invalid("the state record must come first")),
            Some(previous) if section < previous || (section == 0 && previous == 0) => {
                return Err(SnapshotError::Invalid("records out of order"));
            }
            _ => {}
        }
        self.section = Some(section);
        let staged = &mut self.staged;
        match record {
            Record::State { applied_index, clock_ms } => {
                staged.applied_index = LogIndex(applied_index);
                staged.clock_ms = clock_ms;
            }
            Record::Pair { key, value } => {
                if key.len() > KEY_BYTES_MAX || value.len() > VALUE_BYTES_MAX {
                    return Err(SnapshotError::Invalid("key or value over the size limit"));
                }
                if staged.data.last_key_value().is_some_and(|(last, _)| *last.bytes() >= key) {
                    return Err(SnapshotError::Invalid("keys out of order"));
                }
                if staged.data.len() as u64 >= self.config.keys_max {
                    return Err(SnapshotError::Invalid("more keys than keys_max"));
                }
                staged.data.insert(Key::new(key), value);
            }
            Record::Session { client_id, last_active_ms, last } => {
                if client_id.0 == 0 || client_id.0 > staged.applied_index.0 {
                    return Err(SnapshotError::Invalid("session id outside the applied log"));
                }
                if last_active_ms > staged.clock_ms {
                    return Err(SnapshotError::Invalid("session active after the store clock"));
                }
                if staged.sessions.live().next_back().is_some_and(|(last_id, _)| *last_id >= client_id) {
                    return Err(SnapshotError::Invalid("sessions out of order"));
                }
                if staged.sessions.live().len() as u64 >= self.config.sessions_max {
                    return Err(SnapshotError::Invalid("more sessions than sessions_max"));
                }
                staged.sessions.insert_live(client_id, Session { last_active_ms, last });
            }
            Record::Expired { client_id } => {
                if client_id.0 == 0 || client_id.0 > staged.applied_index.0 {
                    return Err(SnapshotError::Invalid("expired session id outside the applied log"));
                }
                if staged.sessions.is_live(client_id) {
                    return Err(SnapshotError::Invalid("a session both live and expired"));
                }
                if staged.sessions.expired().next_back().is_some_and(|last_id| *last_id >= client_id) {
                    return Err(SnapshotError::Invalid("expired sessions out of order"));
                }
                if staged.sessions.expired().len() as u64 >= self.config.expired_sessions_remembered_max {
                    return Err(SnapshotError::Invalid("more expired sessions than remembered"));
                }
                staged.sessions.insert_expired(client_id);
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
