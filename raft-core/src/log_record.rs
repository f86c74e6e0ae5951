//! The durable log's record format, independent of files: native-node's write-ahead log
//! (`native-node/src/wal.rs`) and a browser tab's storage (`wasm/src/live/`) both write and
//! replay these records, so both keep the same promises with the same code.
//!
//! Raft's safety rests on a server never forgetting its term, its vote and the entries it
//! acknowledged (§5.2, §5.4; thesis §3.8): a record is written and flushed before the message
//! that depends on it leaves, and at restart either every flushed record replays intact or the
//! node refuses to start, naming the offset. Nothing is silently dropped.
//!
//! **Record.** `[payload length: u32][crc32 of payload: u32][crc32 of those 8 bytes ^ seed: u32]
//! [payload][trailer: u32 magic][length again: u32]`, little-endian. The header has its own
//! checksum, so a damaged length is never followed anywhere. Files are zero-filled ahead of the
//! data (preallocated), and zeros where a header would be mark the end of the data.
//!
//! **Torn tail.** Only a tail that was provably never written ends the data quietly: zeros from
//! a record boundary to the end of the file; in the last file, a header cut off by the end of
//! the file, or a record whose header checks out but whose trailer and everything after it are
//! zeros (a write that died before its flush returned, so nobody was told it was durable): the
//! caller erases it. Anything else (a bad header, a damaged trailer, a payload checksum
//! mismatch, data after a zero header) is corruption, reported with its offset.
//!
//! A [`Batch`] is one persisted `Ready`: the hard state, and entries that replace the log from
//! the first one's index on (the driver's contract, raft-core/GUIDE.md).

use crate::types::{Entry, HardState};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Bytes of a record header.
pub const HEADER_BYTES: usize = 12;
/// Bytes of a record trailer.
pub const TRAILER_BYTES: usize = 8;
/// Mixed into the header checksum, so that no header of zeros (the end marker) checks out.
const HEADER_CRC_SEED: u32 = 0x5EED_F10A;
const TRAILER_MAGIC: u32 = 0xF10A_7111;

/// One persisted `Ready` batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The hard state after this batch.
    pub hard_state: HardState,
    /// A snapshot was installed: every stored entry goes before `entries` are appended.
    pub reset: bool,
    /// Entries replacing the log from the first one's index on.
    pub entries: Vec<Entry>,
}

/// What a log holds after replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogState {
    /// The last hard state written, if any.
    pub hard_state: Option<HardState>,
    /// The log, contiguous.
    pub entries: Vec<Entry>,
}

/// A record that is neither intact nor a torn tail: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupt {
    /// Byte offset of the record in its file.
    pub offset: usize,
    /// What is wrong with it.
    pub why: String,
}

impl core::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.why)
    }
}

/// Where the data of one file ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Data ends at this offset; zeros (or nothing) follow.
    Clean(usize),
    /// A torn record starts at `offset` and its remains run to `end`: the caller zeroes them
    /// (so later appends do not mix with them) and appends from `offset`.
    Torn {
        /// Where the torn record starts (where the data ends).
        offset: usize,
        /// Where its remains end.
        end: usize,
        /// Why it is taken for a torn write.
        why: &'static str,
    },
}

impl End {
    /// The offset where the intact data ends (the next record goes there).
    pub fn data_end(&self) -> usize {
        match self {
            End::Clean(offset) | End::Torn { offset, .. } => *offset,
        }
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Wraps `payload` in a record (header with its own checksum, payload, trailer).
///
/// # Panics
/// Never for payloads under 4 GiB; longer ones are refused by [`encode_batch`] callers'
/// budgets long before (a length that does not fit a `u32` is cut, and replay refuses it).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut record = Vec::with_capacity(payload.len() + HEADER_BYTES + TRAILER_BYTES);
    record.extend_from_slice(&length.to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_checksum = crc32fast::hash(&record[..8]) ^ HEADER_CRC_SEED;
    record.extend_from_slice(&header_checksum.to_le_bytes());
    record.extend_from_slice(payload);
    record.extend_from_slice(&TRAILER_MAGIC.to_le_bytes());
    record.extend_from_slice(&length.to_le_bytes());
    record
}

/// One [`Batch`] as a record.
///
/// # Errors
/// The batch cannot be encoded (postcard's message).
pub fn encode_batch(hard_state: &HardState, reset: bool, entries: &[Entry]) -> Result<Vec<u8>, String> {
    let batch = Batch { hard_state: *hard_state, reset, entries: entries.to_vec() };
    let payload = postcard::to_allocvec(&batch).map_err(|e| format!("cannot encode a log batch: {e}"))?;
    Ok(frame(&payload))
}

/// Walks the records of one file's `bytes`, handing each payload (with its offset) to
/// `on_record`, and returns where the data ends. `is_last`: whether this is the file being
/// appended to (only there can a write have been torn). An error from `on_record` is reported
/// as corruption at that record's offset.
///
/// # Errors
/// [`Corrupt`] for anything but intact records followed by a clean or torn tail.
pub fn scan(
    bytes: &[u8],
    is_last: bool,
    mut on_record: impl FnMut(usize, &[u8]) -> Result<(), String>,
) -> Result<End, Corrupt> {
    let corrupt = |offset: usize, why: &str| Corrupt { offset, why: String::from(why) };
    let mut offset = 0usize;
    loop {
        let rest = &bytes[offset..];
        if rest.len() < HEADER_BYTES {
            if all_zero(rest) {
                return Ok(End::Clean(offset));
            }
            if is_last {
                // A header cut off by the end of the file: it never finished being written.
                return Ok(End::Torn {
                    offset,
                    end: bytes.len(),
                    why: "header cut off by the end of the file",
                });
            }
            return Err(corrupt(
                offset,
                "a partial record header at the end of a segment that is not the last",
            ));
        }
        let header = &rest[..HEADER_BYTES];
        if all_zero(header) {
            if !all_zero(rest) {
                return Err(corrupt(offset, "zero header followed by data"));
            }
            return Ok(End::Clean(offset));
        }
        if crc32fast::hash(&header[..8]) ^ HEADER_CRC_SEED != read_u32(header, 8) {
            // The length cannot be trusted, so nothing after this point can be read: never
            // mistaken for a torn write.
            return Err(corrupt(offset, "record header checksum mismatch"));
        }
        let length = read_u32(header, 0) as usize;
        let checksum = read_u32(header, 4);
        let payload_start = offset + HEADER_BYTES;
        let record_end = payload_start.saturating_add(length).saturating_add(TRAILER_BYTES);
        if record_end > bytes.len() {
            return Err(corrupt(offset, "record runs past the end of the segment"));
        }
        let payload = &bytes[payload_start..payload_start + length];
        let trailer = &bytes[payload_start + length..record_end];
        if all_zero(trailer) && all_zero(&bytes[record_end..]) && is_last {
            // Header written, the rest of the record not (or only partly): a torn write.
            return Ok(End::Torn { offset, end: record_end, why: "record trailer missing" });
        }
        if read_u32(trailer, 0) != TRAILER_MAGIC || read_u32(trailer, 4) as usize != length {
            return Err(corrupt(offset, "record trailer damaged"));
        }
        if crc32fast::hash(payload) != checksum {
            return Err(corrupt(offset, "checksum mismatch"));
        }
        on_record(offset, payload).map_err(|why| corrupt(offset, &why))?;
        offset = record_end;
    }
}

/// Replays one file of [`Batch`] records into `state` (see [`scan`]); `max_index` is raised to
/// the highest entry index the file holds.
///
/// # Errors
/// [`Corrupt`] as [`scan`] says, or a batch that does not decode or does not continue the log.
pub fn replay(
    bytes: &[u8],
    is_last: bool,
    state: &mut LogState,
    max_index: &mut u64,
) -> Result<End, Corrupt> {
    scan(bytes, is_last, |_, payload| {
        let batch = postcard::from_bytes::<Batch>(payload).map_err(|e| format!("undecodable record: {e}"))?;
        if let Some(last) = batch.entries.last() {
            *max_index = (*max_index).max(last.index.0);
        }
        state.apply(batch)
    })
}

impl LogState {
    /// Applies one replayed batch: a reset drops the log, entries replace it from the first
    /// one's index on (only uncommitted entries are ever replaced, §5.3), the hard state is the
    /// batch's.
    ///
    /// # Errors
    /// The batch leaves a gap after the log, reaches before its start, or is not contiguous.
    pub fn apply(&mut self, batch: Batch) -> Result<(), String> {
        if batch.reset {
            self.entries.clear();
        }
        if let Some(first) = batch.entries.first() {
            let next = self.entries.last().map_or(first.index, |last| last.index.next());
            let start = self.entries.first().map_or(first.index, |e| e.index);
            if first.index > next || (first.index < start && !self.entries.is_empty()) {
                return Err(format!("batch starts at entry {} but the log ends before {next}", first.index));
            }
            let keep = (first.index.0 - start.0) as usize;
            self.entries.truncate(keep.min(self.entries.len()));
            for (k, entry) in batch.entries.iter().enumerate() {
                if entry.index != first.index.plus(k as u64) {
                    return Err(format!("batch entries are not contiguous at {}", entry.index));
                }
            }
            self.entries.extend(batch.entries);
        }
        self.hard_state = Some(batch.hard_state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EntryPayload, LogIndex, NodeId, Term};
    use alloc::string::ToString;

    fn entry(index: u64) -> Entry {
        Entry { term: Term(1), index: LogIndex(index), payload: EntryPayload::Noop }
    }

    fn hs() -> HardState {
        HardState { term: Term(1), voted_for: Some(NodeId(1)), commit: LogIndex(0) }
    }

    fn file(records: &[Vec<u8>], zeros: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = records.concat();
        bytes.resize(bytes.len() + zeros, 0);
        bytes
    }

    #[test]
    fn intact_records_replay_and_a_torn_tail_is_told_apart_from_corruption() {
        let one = encode_batch(&hs(), false, &[entry(1)]).unwrap();
        let two = encode_batch(&hs(), false, &[entry(2)]).unwrap();
        let bytes = file(&[one.clone(), two.clone()], 64);
        let mut state = LogState::default();
        let mut max = 0;
        assert_eq!(replay(&bytes, true, &mut state, &mut max).unwrap(), End::Clean(one.len() + two.len()));
        assert_eq!((state.entries.len(), max), (2, 2));

        // The second record's trailer never reached the disk: torn, in the last file only.
        let mut torn = bytes.clone();
        let trailer = one.len() + two.len() - TRAILER_BYTES;
        torn[trailer..trailer + TRAILER_BYTES].fill(0);
        let mut state = LogState::default();
        let end = replay(&torn, true, &mut state, &mut 0).unwrap();
        assert_eq!(end.data_end(), one.len());
        assert!(matches!(end, End::Torn { .. }));
        assert_eq!(state.entries.len(), 1);
        assert!(replay(&torn, false, &mut LogState::default(), &mut 0).is_err());

        // A flipped payload bit in the first record: corruption at offset 0, whatever follows.
        let mut flipped = bytes.clone();
        flipped[HEADER_BYTES + 1] ^= 1;
        let error = replay(&flipped, true, &mut LogState::default(), &mut 0).unwrap_err();
        assert_eq!((error.offset, error.why.as_str()), (0, "checksum mismatch"));
        // A flipped length: the header checksum refuses it, never read as a torn write.
        let mut flipped = bytes;
        flipped[one.len()] ^= 4;
        let error = replay(&flipped, true, &mut LogState::default(), &mut 0).unwrap_err();
        assert_eq!(
            error.to_string(),
            alloc::format!("offset {}: record header checksum mismatch", one.len())
        );
    }
}
