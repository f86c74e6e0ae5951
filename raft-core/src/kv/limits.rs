//! The named bounds of the key-value store. They are constants, not configuration, because every
//! replica must judge a command the same way: a limit that differed between servers would make
//! the same committed entry succeed on one and fail on another.

/// The longest key, in bytes.
pub const KEY_BYTES_MAX: usize = 1024;

/// The longest value, in bytes.
pub const VALUE_BYTES_MAX: usize = 64 * 1024;

/// The most keys one list operation returns; a larger `limit` is clamped to this.
pub const LIST_KEYS_MAX: u32 = 1000;

/// The most key bytes one list operation returns. Bounds every response, and so the session
/// cache (thesis §6.3) that keeps one response per client.
pub const LIST_RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// The longest encoded command, in bytes: a compare-and-swap with a maximal key, expected value
/// and new value, plus room for the envelope. Longer input is rejected before decoding.
pub const COMMAND_BYTES_MAX: usize = KEY_BYTES_MAX + 2 * VALUE_BYTES_MAX + 256;

/// Largest user snapshot a [`crate::kv::CommandBody::Restore`] may carry. It travels as one log
/// entry, so it is bounded well below the peers' frame limits.
pub const RESTORE_BYTES_MAX: usize = 4 << 20;

/// Largest piece of a streamed restore that one [`crate::kv::CommandBody::RestoreChunk`] carries.
/// A restore of any size travels as many such entries, each well below the peers' frame limits,
/// so no single entry, frame or buffer grows with the snapshot.
pub const RESTORE_CHUNK_BYTES_MAX: usize = 1 << 20;

/// A staged restore that receives no chunk for longer than this, by the store's log clock, is
/// dropped (its proposer gave up or lost leadership). The log clock, not a wall clock, so every
/// replica drops it at the same entry.
pub const RESTORE_IDLE_MS: u64 = 60_000;

/// A staged restore whose last piece is not applied within this much log clock of its first
/// is dropped, however often pieces arrive: its life is bounded from its first piece, so a
/// proposer that sends a tiny piece every minute cannot keep it staged for ever. An hour moves
/// a gigabyte at 300 kB/s. (Log clock moves only with timestamps proposers put in entries;
/// [`RESTORE_PIECES_MAX`] bounds a restore while it stands still.)
pub const RESTORE_STAGED_MS_MAX: u64 = 60 * 60 * 1000;

/// The most pieces one streamed restore may have: one that reaches this many without its last
/// piece is dropped. At [`RESTORE_CHUNK_BYTES_MAX`] bytes a piece that is a terabyte; it bounds
/// the life of a restore fed tiny pieces while the log clock stands still. (Empty pieces other
/// than the last are refused outright.)
pub const RESTORE_PIECES_MAX: u64 = 1 << 20;

/// Every internal record's key starts with this (the cluster's own records, e.g. member
/// addresses, see `crate::wire::records`). A user's restore keeps the store's reserved keys and
/// none of its own.
pub const RESERVED_KEY_PREFIX: &[u8] = b"\x00flotilla/";

/// Largest encoded command of any kind [`crate::kv::Command::decode`] accepts.
pub const ENCODED_COMMAND_BYTES_MAX: usize = RESTORE_BYTES_MAX + 256;
