//! The client API's JSON: one request shape for WebSocket (`GET /client`, upgraded) and HTTP
//! (`POST /client`), so browsers, scripts and curl speak the same thing.
//!
//! Request: `{"id": 7, "op": "put", "key": "k", "value": "v", "session": {"client_id": 3,
//! "sequence": 12}}`. `id` is echoed so a WebSocket client can pipeline. Ops: `put`, `get`
//! (with `"read": "linearizable" | "lease" | "stale"`), `del`, `cas` (`expected`: a string or
//! null for "absent"), `list`, `register` (opens a session), and the admin ops `status`,
//! `snapshot`, `add_voter`, `add_nonvoter`, `demote`, `remove`, `transfer`, which need
//! `"secret"` (or an `Authorization: Bearer` header over HTTP).
//!
//! Response: `{"id": 7, "ok": true, ...}` or `{"id": 7, "ok": false, "error": "not_leader",
//! "message": "...", "leader": 2, "leader_address": "127.0.0.1:7002", "leader_url":
//! "http://127.0.0.1:7002/client"}` (`leader_url` in the node's scheme, `https` under TLS, as the
//! `Location` of a 307). `error` is a stable code;
//! `retryable` says whether the same request (same session sequence) may be sent again.

use crate::raft::{RaftError, ReadMode};
use bytes::Bytes;
use raft_core::kv::{self, ClientId, Command, KvError, Output, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A client's session and this request's place in it (thesis §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// The id `register` returned.
    pub client_id: u64,
    /// Increases with every new request; a retry reuses it.
    pub sequence: u64,
}

/// Bytes a JSON request may have at most; larger ones are refused before parsing.
pub const REQUEST_BYTES_MAX: usize = 2 * 1024 * 1024;

/// One client request.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Exactly-once bookkeeping.
        #[serde(default)]
        session: Option<SessionRef>,
    },
    /// Read a key.
    Get {
        /// The key.
        key: String,
        /// Consistency of the read.
        #[serde(default)]
        read: ReadMode,
    },
    /// Remove a key.
    Del {
        /// The key.
        key: String,
        /// Exactly-once bookkeeping.
        #[serde(default)]
        session: Option<SessionRef>,
    },
    /// Compare-and-swap.
    Cas {
        /// The key.
        key: String,
        /// The value it must have now; null for absent.
        expected: Option<String>,
        /// The new value.
        value: String,
        /// Exactly-once bookkeeping.
        #[serde(default)]
        session: Option<SessionRef>,
    },
    /// Keys with a prefix.
    List {
        /// The prefix.
        #[serde(default)]
        prefix: String,
        /// Most keys returned.
        #[serde(default = "default_limit")]
        limit: u32,
        /// Consistency of the read.
        #[serde(default)]
        read: ReadMode,
    },
    /// Open a session.
    Register,
    /// Admin: the node's status.
    Status,
    /// Admin: write a snapshot now.
    Snapshot,
    /// Admin: add a voter.
    AddVoter {
        /// Its id.
        node: u64,
        /// Its host:port.
        address: String,
    },
    /// Admin: add a non-voter.
    AddNonvoter {
        /// Its id.
        node: u64,
        /// Its host:port.
        address: String,
    },
    /// Admin: demote a voter.
    Demote {
        /// Its id.
        node: u64,
    },
    /// Admin: remove a server.
    Remove {
        /// Its id.
        node: u64,
    },
    /// Admin: hand leadership over.
    Transfer {
        /// The target, or the most up-to-date follower.
        #[serde(default)]
        node: Option<u64>,
    },
}

fn default_limit() -> u32 {
    1000
}

/// A request with its envelope.
#[derive(Clone, Debug, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    #[serde(default)]
    pub id: Option<u64>,
    /// The cluster secret, for admin ops.
    #[serde(default)]
    pub secret: Option<String>,
    /// What to do.
    #[serde(flatten)]
    pub operation: Operation,
}

/// Parses a request, with an error message a person can act on.
///
/// # Errors
/// A lowercase message naming what is wrong.
pub fn parse_request(text: &[u8]) -> Result<Request, String> {
    if text.len() > REQUEST_BYTES_MAX {
        return Err(format!("request has {} bytes; at most {REQUEST_BYTES_MAX} allowed", text.len()));
    }
    // One pass into a flat struct: serde's flattened, internally tagged enum would buffer the
    // whole object first, which showed in profiles of the client path.
    match serde_json::from_slice::<RawRequest>(text) {
        Ok(raw) => raw.into_request(),
        Err(error) => {
            // Explain what is wrong in terms of the request, not of the parser's internals.
            let value: Value = serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))?;
            if !value.is_object() {
                return Err("a request must be a JSON object with an \"op\" field".to_string());
            }
            if value.get("op").is_none() {
                return Err(format!("missing \"op\" (one of {OPS})"));
            }
            Err(format!("invalid request: {error}"))
        }
    }
}

const OPS: &str =
    "put, get, del, cas, list, register, status, snapshot, add_voter, add_nonvoter, demote, remove, \
                   transfer";

/// Every field any request may have; [`RawRequest::into_request`] checks which ones the op needs.
#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    secret: Option<String>,
    op: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    /// Absent (`None`) versus `null` (`Some(None)`: the key must not exist).
    #[serde(default, deserialize_with = "present")]
    expected: Option<Option<String>>,
    #[serde(default)]
    session: Option<SessionRef>,
    #[serde(default)]
    read: Option<ReadMode>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    node: Option<u64>,
    #[serde(default)]
    address: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

fn need<T>(field: Option<T>, name: &str, op: &str) -> Result<T, String> {
    field.ok_or_else(|| format!("invalid request: missing field `{name}` for op {op:?}"))
}

impl RawRequest {
    fn into_request(self) -> Result<Request, String> {
        let op = self.op.as_str();
        let operation = match op {
            "put" => Operation::Put {
                key: need(self.key, "key", op)?,
                value: need(self.value, "value", op)?,
                session: self.session,
            },
            "get" => Operation::Get { key: need(self.key, "key", op)?, read: self.read.unwrap_or_default() },
            "del" => Operation::Del { key: need(self.key, "key", op)?, session: self.session },
            "cas" => Operation::Cas {
                key: need(self.key, "key", op)?,
                expected: need(self.expected, "expected", op)?,
                value: need(self.value, "value", op)?,
                session: self.session,
            },
            "list" => Operation::List {
                prefix: self.prefix.unwrap_or_default(),
                limit: self.limit.unwrap_or_else(default_limit),
                read: self.read.unwrap_or_default(),
            },
            "register" => Operation::Register,
            "status" => Operation::Status,
            "snapshot" => Operation::Snapshot,
            "add_voter" => Operation::AddVoter {
                node: need(self.node, "node", op)?,
                // A browser tab has no address to dial (issue #14): it dials.
                address: need(
                    self.address.or_else(|| {
                        self.node
                            .filter(|id| raft_core::wire::records::is_browser_node_id(raft_core::NodeId(*id)))
                            .map(|_| raft_core::wire::records::BROWSER_ADDRESS.to_string())
                    }),
                    "address",
                    op,
                )?,
            },
            "add_nonvoter" => Operation::AddNonvoter {
                node: need(self.node, "node", op)?,
                address: need(self.address, "address", op)?,
            },
            "demote" => Operation::Demote { node: need(self.node, "node", op)? },
            "remove" => Operation::Remove { node: need(self.node, "node", op)? },
            "transfer" => Operation::Transfer { node: self.node },
            other => return Err(format!("invalid request: unknown op {other:?} (one of {OPS})")),
        };
        Ok(Request { id: self.id, secret: self.secret, operation })
    }
}

/// The request a `/v1/kv/{key}` call makes: `GET` reads with `read`, `PUT` writes the body
/// (UTF-8), `DELETE` removes. The key is the path segment as axum decoded it.
///
/// # Errors
/// The HTTP status code and the JSON error body.
pub fn kv_path_request(
    method: &[u8],
    key: String,
    read: ReadMode,
    body: &[u8],
) -> Result<Request, (u16, Value)> {
    let operation = match method {
        b"GET" => Operation::Get { key, read },
        b"PUT" => {
            let Ok(value) = String::from_utf8(body.to_vec()) else {
                return Err((400, error_response("bad_request", "the value must be UTF-8 text", false)));
            };
            Operation::Put { key, value, session: None }
        }
        b"DELETE" => Operation::Del { key, session: None },
        _ => return Err((405, error_response("bad_request", "method not allowed", false))),
    };
    Ok(Request { id: None, secret: None, operation })
}

impl Operation {
    /// The op's name, as in requests (`put`, `get`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Put { .. } => "put",
            Operation::Get { .. } => "get",
            Operation::Del { .. } => "del",
            Operation::Cas { .. } => "cas",
            Operation::List { .. } => "list",
            Operation::Register => "register",
            Operation::Status => "status",
            Operation::Snapshot => "snapshot",
            Operation::AddVoter { .. } => "add_voter",
            Operation::AddNonvoter { .. } => "add_nonvoter",
            Operation::Demote { .. } => "demote",
            Operation::Remove { .. } => "remove",
            Operation::Transfer { .. } => "transfer",
        }
    }

    /// Whether the op needs the cluster secret.
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Operation::Status
                | Operation::Snapshot
                | Operation::AddVoter { .. }
                | Operation::AddNonvoter { .. }
                | Operation::Demote { .. }
                | Operation::Remove { .. }
                | Operation::Transfer { .. }
        )
    }

    /// Whether the op names a key of the cluster's internal records
    /// ([`crate::kv::RESERVED_KEY_PREFIX`]), which no client may read or change.
    pub fn touches_reserved_key(&self) -> bool {
        match self {
            Operation::Put { key, .. }
            | Operation::Get { key, .. }
            | Operation::Del { key, .. }
            | Operation::Cas { key, .. } => crate::kv::is_reserved_key(key.as_bytes()),
            _ => false,
        }
    }

    /// The state-machine command of a write, if this is one. `timestamp_ms` is the proposer's
    /// clock, from which the store derives its log time (session expiry).
    pub fn command(&self, timestamp_ms: u64) -> Option<Command> {
        let (session, operation) = match self {
            Operation::Put { key, value, session } => (
                session,
                kv::Operation::Put { key: Bytes::from(key.clone()), value: Bytes::from(value.clone()) },
            ),
            Operation::Del { key, session } => {
                (session, kv::Operation::Delete { key: Bytes::from(key.clone()) })
            }
            Operation::Cas { key, expected, value, session } => (
                session,
                kv::Operation::CompareAndSwap {
                    key: Bytes::from(key.clone()),
                    expected: expected.clone().map(Bytes::from),
                    new: Bytes::from(value.clone()),
                },
            ),
            Operation::Register => return Some(Command::register(timestamp_ms)),
            _ => return None,
        };
        Some(match session {
            Some(SessionRef { client_id, sequence }) => {
                Command::request(timestamp_ms, ClientId(*client_id), *sequence, operation)
            }
            None => Command::unsessioned(timestamp_ms, operation),
        })
    }

    /// The state-machine query of a read, if this is one.
    pub fn query(&self) -> Option<(kv::Operation, ReadMode)> {
        match self {
            Operation::Get { key, read } => {
                Some((kv::Operation::Get { key: Bytes::from(key.clone()) }, *read))
            }
            Operation::List { prefix, limit, read } => Some((
                kv::Operation::List { prefix: Bytes::from(prefix.clone()), start_after: None, limit: *limit },
                *read,
            )),
            _ => None,
        }
    }
}

fn text(bytes: &Bytes) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => json!({ "hex": hex::encode(bytes) }),
    }
}

/// The stable code of a [`KvError`].
pub fn kv_error_code(error: &KvError) -> &'static str {
    match error {
        KvError::Decode(_) => "invalid_command",
        KvError::KeyTooLarge { .. } => "key_too_large",
        KvError::ValueTooLarge { .. } => "value_too_large",
        KvError::StoreFull { .. } => "store_full",
        KvError::UnknownSession { .. } => "unknown_session",
        KvError::SessionExpired { .. } => "session_expired",
        KvError::StaleSequence { .. } => "stale_sequence",
        KvError::NotReadOnly => "not_read_only",
        KvError::RestoreRejected { .. } => "restore_rejected",
    }
}

/// A state-machine response as a JSON body (without `id`).
pub fn kv_response(response: Response, index: Option<u64>) -> Value {
    let mut body = match response {
        Ok(Output::Value(value)) => json!({ "ok": true, "value": value.as_ref().map(text) }),
        Ok(Output::Registered { client_id }) => json!({ "ok": true, "client_id": client_id.0 }),
        Ok(
            Output::Written
            | Output::Swapped
            | Output::SessionClosed
            | Output::NoCommand
            | Output::Restored
            | Output::RestoreAborted,
        ) => {
            json!({ "ok": true })
        }
        Ok(Output::RestoreStaged { bytes }) => json!({ "ok": true, "staged_bytes": bytes }),
        Ok(Output::Deleted { existed }) => json!({ "ok": true, "existed": existed }),
        Ok(Output::NotSwapped { current }) => json!({
            "ok": false, "error": "cas_failed", "retryable": false,
            "message": "compare-and-swap failed: the current value differs",
            "current": current.as_ref().map(text),
        }),
        Ok(Output::Keys { keys, truncated }) => {
            json!({ "ok": true, "keys": keys.iter().map(text).collect::<Vec<_>>(), "truncated": truncated })
        }
        Err(error) => error_response(kv_error_code(&error), error.to_string(), false),
    };
    if let (Some(index), Some(object)) = (index, body.as_object_mut()) {
        object.insert("index".into(), json!(index));
    }
    body
}

/// The `result` label of a request's latency: `ok`, or the body's error code when it is one of
/// the stable codes (anything else is `other`, so the label's values stay few).
pub fn result_label(body: &Value) -> &'static str {
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        return "ok";
    }
    const CODES: [&str; 20] = [
        "not_leader",
        "leadership_lost",
        "busy",
        "timeout",
        "shutting_down",
        "unsupported",
        "storage",
        "refused",
        "cas_failed",
        "bad_request",
        "unauthorized",
        "invalid_command",
        "key_too_large",
        "value_too_large",
        "store_full",
        "unknown_session",
        "session_expired",
        "stale_sequence",
        "not_read_only",
        "restore_rejected",
    ];
    let code = body.get("error").and_then(Value::as_str).unwrap_or("");
    CODES.iter().find(|known| **known == code).copied().unwrap_or("other")
}

/// An error response body.
pub fn error_response(code: &str, message: impl Into<String>, retryable: bool) -> Value {
    json!({ "ok": false, "error": code, "message": message.into(), "retryable": retryable })
}

/// The stable code of a [`RaftError`].
pub fn raft_error_code(error: &RaftError) -> &'static str {
    match error {
        RaftError::NotLeader { .. } => "not_leader",
        RaftError::LeadershipLost { .. } => "leadership_lost",
        RaftError::Busy(_) => "busy",
        RaftError::Timeout => "timeout",
        RaftError::ShuttingDown => "shutting_down",
        RaftError::Unsupported(_) => "unsupported",
        RaftError::Storage(_) => "storage",
        RaftError::Refused(why) if why.starts_with(crate::quota::NO_SPACE) => "no_space",
        RaftError::Refused(_) => "refused",
    }
}

/// Adds `id` to a response body.
pub fn with_id(mut body: Value, id: Option<u64>) -> Value {
    if let (Some(id), Some(object)) = (id, body.as_object_mut()) {
        object.insert("id".into(), json!(id));
    }
    body
}

/// Builds an object from pairs; a small helper for status bodies.
pub fn object(pairs: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (key, value) in pairs {
        map.insert(key.to_string(), value);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_garbage_gets_a_clear_error() {
        let request = parse_request(br#"{"id":3,"op":"put","key":"k","value":"v"}"#).unwrap();
        assert_eq!(request.id, Some(3));
        assert!(matches!(request.operation, Operation::Put { .. }));
        let request = parse_request(br#"{"op":"get","key":"k","read":"stale"}"#).unwrap();
        assert!(matches!(request.operation, Operation::Get { read: ReadMode::Stale, .. }));
        assert!(parse_request(b"{nope").unwrap_err().starts_with("invalid JSON"));
        assert!(parse_request(b"[1,2]").unwrap_err().contains("JSON object"));
        assert!(parse_request(br#"{"key":"k"}"#).unwrap_err().contains("missing \"op\""));
        assert!(parse_request(br#"{"op":"explode"}"#).unwrap_err().contains("unknown op \"explode\""));
        assert!(parse_request(br#"{"op":"put","key":5,"value":"v"}"#).unwrap_err().contains("invalid type"));
        let cas = parse_request(br#"{"op":"cas","key":"k","expected":null,"value":"v"}"#).unwrap();
        assert!(matches!(cas.operation, Operation::Cas { expected: None, .. }));
        assert!(parse_request(br#"{"op":"cas","key":"k","value":"v"}"#).unwrap_err().contains("expected"));
        assert!(parse_request(br#"{"op":"put","key":"k"}"#).unwrap_err().contains("value"));
    }
}
