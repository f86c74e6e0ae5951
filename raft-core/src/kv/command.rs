//! The commands a proposer puts into [`crate::EntryPayload::Command`], and their encoding.
//!
//! Encoding: one format-version byte, then the postcard encoding of [`Command`]. The version
//! byte lets a later build refuse (with [`DecodeError::UnsupportedVersion`]) rather than
//! misread commands from a newer one.

use crate::kv::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::kv::response::{DecodeError, KvError};
use crate::types::LogIndex;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The version byte every encoded command starts with.
pub const COMMAND_FORMAT_VERSION: u8 = 1;

/// A client session's id: the log index of the entry that registered it (thesis §6.3), so every
/// replica assigns the same id without coordination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

impl From<LogIndex> for ClientId {
    fn from(index: LogIndex) -> ClientId {
        ClientId(index.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One entry's worth of client intent.
///
/// Every command carries `timestamp_ms`, chosen by the proposer (milliseconds of real or
/// simulated time). The store's clock is the largest timestamp applied so far, so it is the
/// same on every replica and never runs backwards even if leaders' clocks disagree; sessions
/// expire by that clock (thesis §6.3). The leader should stamp commands with
/// [`crate::kv::LeaderClock`] rather than trust a client's clock or its own wall clock: one
/// timestamp far in the future moves the clock there for good and expires every session idle
/// by that measure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The proposer's time when it proposed the command, in milliseconds.
    pub timestamp_ms: u64,
    /// What to do.
    pub body: CommandBody,
}

/// What a [`Command`] asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandBody {
    /// Open a session; the response carries its [`ClientId`] (thesis §6.3 `RegisterClient`).
    RegisterClient,
    /// Close a session and drop its cached response.
    CloseSession {
        /// The session to close.
        client_id: ClientId,
    },
    /// Replace the whole store by a user-supplied snapshot (hashicorp's `Restore`), for
    /// example a backup taken with [`crate::state_machine::StateMachine::snapshot`]. It goes
    /// through the log like any command, so every replica swaps its state at the same index,
    /// exactly once; a corrupt snapshot is refused and changes nothing.
    Restore {
        /// The snapshot bytes, at most [`super::limits::RESTORE_BYTES_MAX`].
        snapshot: Bytes,
    },
    /// Carry out an operation, at most once if `session` is set.
    Request {
        /// The session and sequence number that make retries safe. Without one, a retried
        /// write may apply twice: fine for reads through the log, risky for anything else.
        session: Option<SessionRequest>,
        /// The operation.
        operation: Operation,
    },
    /// One piece of a user snapshot too large for one entry (a streamed restore). Pieces are
    /// staged beside the store, which stays untouched and is what reads see, and the whole
    /// snapshot replaces the store only when the piece marked `last` is applied: committed
    /// entries only, atomically, at the same index on every replica (Raft §7 sends a snapshot
    /// in chunks the same way, thesis §5.3). `sequence` 0 starts a restore and drops any staged
    /// one; a piece that does not follow the staged restore is refused, and so is an empty
    /// piece that is not the last. A staged restore is dropped when idle for
    /// [`super::limits::RESTORE_IDLE_MS`], [`super::limits::RESTORE_STAGED_MS_MAX`] after its
    /// first piece, or at [`super::limits::RESTORE_PIECES_MAX`] pieces; a snapshot taken while
    /// one is staged carries it.
    RestoreChunk {
        /// Chosen by the proposer, the same for every piece of one restore.
        restore_id: u64,
        /// 0, 1, 2, … within the restore.
        sequence: u64,
        /// The snapshot's next bytes, at most [`super::limits::RESTORE_CHUNK_BYTES_MAX`].
        data: Bytes,
        /// Whether this is the final piece: applying it swaps the staged snapshot in.
        last: bool,
    },
    /// Drops a staged restore (its proposer gave up); the store is unchanged.
    RestoreAbort {
        /// The restore to drop; another staged restore is left alone.
        restore_id: u64,
    },
}

/// Where a request sits in its session: which client, and the client's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRequest {
    /// The session, as returned by [`CommandBody::RegisterClient`].
    pub client_id: ClientId,
    /// Increases with every new request of this client; a retry reuses the number.
    pub sequence: u64,
}

/// A key-value operation. Keys and values are bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Read a key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// List keys that start with `prefix`, in byte order.
    List {
        /// The prefix every returned key starts with; empty for all keys.
        prefix: Bytes,
        /// Only keys strictly after this one, to continue a truncated list.
        start_after: Option<Bytes>,
        /// The most keys to return; clamped to [`crate::kv::LIST_KEYS_MAX`].
        limit: u32,
    },
    /// Set a key.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Set `key` to `new` only if its current value is `expected` (`None`: absent).
    CompareAndSwap {
        /// The key.
        key: Bytes,
        /// The value the key must hold now, or `None` if it must be absent.
        expected: Option<Bytes>,
        /// The value to write if it does.
        new: Bytes,
    },
}

impl Operation {
    /// Whether the operation only reads, so it may be served without the log (ReadIndex).
    pub fn is_read_only(&self) -> bool {
        matches!(self, Operation::Get { .. } | Operation::List { .. })
    }

    /// The single key the operation touches; `None` for a list.
    pub fn key(&self) -> Option<&Bytes> {
        match self {
            Operation::Get { key }
            | Operation::Put { key, .. }
            | Operation::Delete { key }
            | Operation::CompareAndSwap { key, .. } => Some(key),
            Operation::List { .. } => None,
        }
    }

    /// Checks the size limits; the store refuses an operation that breaks them.
    ///
    /// # Errors
    ///
    /// [`KvError::KeyTooLarge`] or [`KvError::ValueTooLarge`]. A list prefix or `start_after`
    /// longer than a key is refused as a key.
    pub fn validate(&self) -> Result<(), KvError> {
        match self {
            Operation::Get { key } | Operation::Delete { key } => check_key(key),
            Operation::List { prefix, start_after, limit: _ } => {
                check_key(prefix)?;
                start_after.as_ref().map_or(Ok(()), check_key)
            }
            Operation::Put { key, value } => {
                check_key(key)?;
                check_value(value)
            }
            Operation::CompareAndSwap { key, expected, new } => {
                check_key(key)?;
                expected.as_ref().map_or(Ok(()), check_value)?;
                check_value(new)
            }
        }
    }
}

fn check_key(key: &Bytes) -> Result<(), KvError> {
    if key.len() > KEY_BYTES_MAX {
        return Err(KvError::KeyTooLarge { len_bytes: key.len() as u64 });
    }
    Ok(())
}

fn check_value(value: &Bytes) -> Result<(), KvError> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(KvError::ValueTooLarge { len_bytes: value.len() as u64 });
    }
    Ok(())
}

impl Command {
    /// A `RegisterClient` command.
    pub fn register(timestamp_ms: u64) -> Command {
        Command { timestamp_ms, body: CommandBody::RegisterClient }
    }

    /// A request in a session: applied at most once per `(client_id, sequence)`.
    pub fn request(timestamp_ms: u64, client_id: ClientId, sequence: u64, operation: Operation) -> Command {
        let session = Some(SessionRequest { client_id, sequence });
        Command { timestamp_ms, body: CommandBody::Request { session, operation } }
    }

    /// A request outside any session (reads through the log, or writes that tolerate
    /// applying twice).
    pub fn unsessioned(timestamp_ms: u64, operation: Operation) -> Command {
        Command { timestamp_ms, body: CommandBody::Request { session: None, operation } }
    }

    /// A `CloseSession` command.
    pub fn close_session(timestamp_ms: u64, client_id: ClientId) -> Command {
        Command { timestamp_ms, body: CommandBody::CloseSession { client_id } }
    }

    /// Checks the operation's size limits, so a proposer can refuse a command before it costs
    /// a log entry. The store checks again when it applies.
    ///
    /// # Errors
    ///
    /// As [`Operation::validate`].
    pub fn validate(&self) -> Result<(), KvError> {
        match &self.body {
            CommandBody::Request { operation, .. } => operation.validate(),
            CommandBody::RegisterClient | CommandBody::CloseSession { .. } => Ok(()),
            CommandBody::Restore { snapshot } if snapshot.len() > super::limits::RESTORE_BYTES_MAX => {
                Err(KvError::RestoreRejected {
                    reason: alloc::format!("snapshot of {} bytes is too large", snapshot.len()),
                })
            }
            CommandBody::Restore { .. } => Ok(()),
            CommandBody::RestoreChunk { data, .. } if data.len() > super::limits::RESTORE_CHUNK_BYTES_MAX => {
                Err(KvError::RestoreRejected {
                    reason: alloc::format!("restore chunk of {} bytes is too large", data.len()),
                })
            }
            CommandBody::RestoreChunk { data, last: false, .. } if data.is_empty() => {
                Err(KvError::RestoreRejected { reason: "an empty restore piece must be the last".into() })
            }
            CommandBody::RestoreChunk { .. } | CommandBody::RestoreAbort { .. } => Ok(()),
        }
    }

    /// The bytes to put in [`crate::EntryPayload::Command`].
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(64);
        out.push(COMMAND_FORMAT_VERSION);
        // Postcard only fails to serialize into a growable vector for serde features these
        // plain derived types never use (unknown-length sequences, custom errors).
        match postcard::to_extend(self, out) {
            Ok(out) => Bytes::from(out),
            Err(_) => unreachable!("postcard cannot fail to encode a command into a vec"),
        }
    }

    /// Reads a command back from entry bytes. Never panics, whatever the input.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] saying what is wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        if bytes.len() > super::limits::ENCODED_COMMAND_BYTES_MAX {
            return Err(DecodeError::TooLarge { len_bytes: bytes.len() as u64 });
        }
        let (version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if *version != COMMAND_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { version: *version });
        }
        let (command, rest) = postcard::take_from_bytes(body).map_err(|_| DecodeError::Malformed)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { len_bytes: rest.len() as u64 });
        }
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command::request(
            17,
            ClientId(3),
            9,
            Operation::CompareAndSwap {
                key: Bytes::from_static(b"k"),
                expected: None,
                new: Bytes::from_static(b"v"),
            },
        )
    }

    #[test]
    fn encode_decode_round_trip() {
        let command = sample();
        let bytes = command.encode();
        assert_eq!(bytes[0], COMMAND_FORMAT_VERSION);
        assert_eq!(Command::decode(&bytes), Ok(command));
    }

    #[test]
    fn decode_errors_are_typed() {
        assert_eq!(Command::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Command::decode(&[9, 0]), Err(DecodeError::UnsupportedVersion { version: 9 }));
        assert_eq!(Command::decode(&[COMMAND_FORMAT_VERSION, 200]), Err(DecodeError::Malformed));
        let mut long = sample().encode().to_vec();
        long.push(0);
        assert_eq!(Command::decode(&long), Err(DecodeError::TrailingBytes { len_bytes: 1 }));
        let huge = alloc::vec![COMMAND_FORMAT_VERSION; crate::kv::limits::ENCODED_COMMAND_BYTES_MAX + 1];
        assert!(matches!(Command::decode(&huge), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn validate_checks_every_field() {
        let big_key = Bytes::from(alloc::vec![0u8; KEY_BYTES_MAX + 1]);
        let big_value = Bytes::from(alloc::vec![0u8; VALUE_BYTES_MAX + 1]);
        let ok = Bytes::from_static(b"x");
        let too_large_key = KvError::KeyTooLarge { len_bytes: KEY_BYTES_MAX as u64 + 1 };
        let too_large_value = KvError::ValueTooLarge { len_bytes: VALUE_BYTES_MAX as u64 + 1 };
        let list = Operation::List { prefix: ok.clone(), start_after: Some(big_key.clone()), limit: 1 };
        assert_eq!(list.validate(), Err(too_large_key.clone()));
        let cas = Operation::CompareAndSwap { key: ok.clone(), expected: Some(big_value), new: ok.clone() };
        assert_eq!(cas.validate(), Err(too_large_value));
        assert_eq!(Operation::Delete { key: big_key }.validate(), Err(too_large_key));
        assert_eq!(Operation::Put { key: ok.clone(), value: ok }.validate(), Ok(()));
    }
}
