//! What applying a command answers: an [`Output`] or a [`KvError`]. Both are serde types because
//! a response is cached in the client's session and travels inside snapshots (thesis §6.3).

use crate::kv::command::ClientId;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The answer to one command. An error response is still a replicated, deterministic outcome:
/// every replica computes the same one, and a retry gets it again from the session cache.
pub type Response = Result<Output, KvError>;

/// A successful command's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// The entry carried no command (a no-op or membership entry); nobody waits for it.
    NoCommand,
    /// A new session; its id is the log index of the registering entry (thesis §6.3).
    Registered {
        /// The id the client must put in every request of this session.
        client_id: ClientId,
    },
    /// The session was closed at the client's request.
    SessionClosed,
    /// A user snapshot replaced the store's contents.
    Restored,
    /// The value of a get; `None` if the key is absent.
    Value(Option<Bytes>),
    /// A put took effect.
    Written,
    /// A delete took effect.
    Deleted {
        /// Whether the key was present before.
        existed: bool,
    },
    /// A compare-and-swap found the expected value and wrote the new one.
    Swapped,
    /// A compare-and-swap found something else and changed nothing.
    NotSwapped {
        /// The value it found.
        current: Option<Bytes>,
    },
    /// The keys of a list, in byte order.
    Keys {
        /// The keys found.
        keys: Vec<Bytes>,
        /// Whether more keys matched than the limits let through; continue with
        /// `start_after` set to the last key.
        truncated: bool,
    },
    /// A piece of a streamed restore was staged; the store is unchanged until the last one.
    RestoreStaged {
        /// Bytes of the snapshot staged so far.
        bytes: u64,
    },
    /// A staged restore was dropped; the store is unchanged.
    RestoreAborted,
}

/// Why a command did not take effect. Nothing in the store changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvError {
    /// The entry's bytes are not a command.
    Decode(DecodeError),
    /// The key is longer than [`crate::kv::KEY_BYTES_MAX`].
    KeyTooLarge {
        /// The key's length in bytes.
        len_bytes: u64,
    },
    /// The value is longer than [`crate::kv::VALUE_BYTES_MAX`].
    ValueTooLarge {
        /// The value's length in bytes.
        len_bytes: u64,
    },
    /// The store already holds [`crate::kv::KvConfig::keys_max`] keys.
    StoreFull {
        /// The configured limit.
        keys_max: u64,
    },
    /// No session with this id was ever seen, or it expired too long ago to remember.
    UnknownSession {
        /// The id in the request.
        client_id: ClientId,
    },
    /// The session expired (idle longer than the session timeout) or was evicted to make room;
    /// the client must register again (thesis §6.3).
    SessionExpired {
        /// The id in the request.
        client_id: ClientId,
    },
    /// The request's sequence number is older than the last one this session applied: its
    /// response is gone, so it can be neither answered from the cache nor applied again.
    StaleSequence {
        /// The session.
        client_id: ClientId,
        /// The request's sequence number.
        sequence: u64,
        /// The last sequence number the session applied.
        last_sequence: u64,
    },
    /// A write was sent where only reads are served (for example a local ReadIndex read).
    NotReadOnly,
    /// A user snapshot could not be restored; the store is unchanged.
    RestoreRejected {
        /// Why, in words.
        reason: alloc::string::String,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Decode(error) => write!(f, "invalid command: {error}"),
            KvError::KeyTooLarge { len_bytes } => {
                write!(f, "key of {len_bytes} bytes exceeds {} bytes", crate::kv::KEY_BYTES_MAX)
            }
            KvError::ValueTooLarge { len_bytes } => {
                write!(f, "value of {len_bytes} bytes exceeds {} bytes", crate::kv::VALUE_BYTES_MAX)
            }
            KvError::StoreFull { keys_max } => write!(f, "store is full ({keys_max} keys)"),
            KvError::UnknownSession { client_id } => write!(f, "unknown session {client_id}"),
            KvError::SessionExpired { client_id } => {
                write!(f, "session {client_id} expired; register again")
            }
            KvError::StaleSequence { client_id, sequence, last_sequence } => write!(
                f,
                "stale request: session {client_id} sequence {sequence} is below the last applied \
                 sequence {last_sequence}"
            ),
            KvError::NotReadOnly => f.write_str("operation is not read-only"),
            KvError::RestoreRejected { reason } => write!(f, "restore rejected: {reason}"),
        }
    }
}

impl core::error::Error for KvError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            KvError::Decode(error) => Some(error),
            _ => None,
        }
    }
}

/// Why bytes are not a [`crate::kv::Command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecodeError {
    /// No bytes at all.
    Empty,
    /// More than [`crate::kv::ENCODED_COMMAND_BYTES_MAX`] bytes.
    TooLarge {
        /// The input's length in bytes.
        len_bytes: u64,
    },
    /// The format version byte is not one this build reads.
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The bytes do not follow the command encoding.
    Malformed,
    /// A valid command followed by extra bytes.
    TrailingBytes {
        /// How many bytes were left over.
        len_bytes: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty command"),
            DecodeError::TooLarge { len_bytes } => {
                write!(
                    f,
                    "command of {len_bytes} bytes exceeds {} bytes",
                    crate::kv::ENCODED_COMMAND_BYTES_MAX
                )
            }
            DecodeError::UnsupportedVersion { version } => {
                write!(f, "unsupported command format version {version}")
            }
            DecodeError::Malformed => f.write_str("malformed command encoding"),
            DecodeError::TrailingBytes { len_bytes } => {
                write!(f, "{len_bytes} trailing bytes after the command")
            }
        }
    }
}

impl core::error::Error for DecodeError {}
