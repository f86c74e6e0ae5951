//! Client reads ([`raft_core::sim::ClientRead`]) as plain objects for JavaScript, with one
//! sentence each for the event log.

use alloc::format;
use alloc::string::String;
use raft_core::sim::ClientRead;
use serde::Serialize;

use crate::input::ReadModeName;

/// One client read as `readResults()` hands it out.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReadView {
    /// Its id, in the order reads were asked (0 first).
    pub id: u64,
    /// The server asked.
    pub node: u64,
    /// The key, as text.
    pub key: String,
    /// `linearizable`, `lease` or `stale`.
    pub mode: &'static str,
    /// When it was asked.
    pub asked_ms: u64,
    /// When it was answered; `None` while it waits.
    pub answered_ms: Option<u64>,
    /// The read index the server's node gave, if it gave one.
    pub read_index: Option<u64>,
    /// `pending`, `ok` (a value or an absent key) or `failed`.
    pub status: &'static str,
    /// The value if the key was present.
    pub value: Option<String>,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// One sentence for people.
    pub text: String,
}

/// The object form of `read`.
pub fn read_view(read: &ClientRead) -> ReadView {
    let key = String::from_utf8_lossy(&read.key).into_owned();
    let mode = ReadModeName::of(read.mode).name();
    let node = read.node.0;
    let at_index = read.read_index.map_or_else(String::new, |index| format!(" at index {}", index.0));
    let (status, value, error, text) = match &read.answer {
        None => ("pending", None, None, format!("node {node} is serving get {key} ({mode} read{at_index})")),
        Some(Ok(Some(value))) => {
            let value = String::from_utf8_lossy(value).into_owned();
            let text = format!("node {node} answered get {key} = {value} ({mode} read{at_index})");
            ("ok", Some(value), None, text)
        }
        Some(Ok(None)) => {
            ("ok", None, None, format!("node {node} answered get {key}: no such key ({mode} read{at_index})"))
        }
        Some(Err(failure)) => {
            let why = format!("{failure}");
            let text = format!("node {node} refused get {key} ({mode} read): {why}");
            ("failed", None, Some(why), text)
        }
    };
    ReadView {
        id: read.id,
        node,
        key,
        mode,
        asked_ms: read.asked_ms,
        answered_ms: read.answered_ms,
        read_index: read.read_index.map(|index| index.0),
        status,
        value,
        error,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::sim::ReadFailure;
    use raft_core::{Bytes, LogIndex, NodeId, ReadError, ReadMode};

    fn read(answer: Option<Result<Option<Bytes>, ReadFailure>>, read_index: Option<LogIndex>) -> ClientRead {
        ClientRead {
            id: 4,
            node: NodeId(3),
            key: Bytes::from_static(b"x"),
            mode: ReadMode::Lease,
            asked_ms: 10,
            read_index,
            answered_ms: answer.as_ref().map(|_| 12),
            answer,
            beyond_drift_bound: false,
        }
    }

    #[test]
    fn reads_read_as_sentences() {
        let ok = read_view(&read(Some(Ok(Some(Bytes::from_static(b"5")))), Some(LogIndex(42))));
        assert_eq!(ok.text, "node 3 answered get x = 5 (lease read at index 42)");
        assert_eq!((ok.status, ok.value.as_deref(), ok.read_index), ("ok", Some("5"), Some(42)));
        let refused = read_view(&read(Some(Err(ReadFailure::Refused(ReadError::NoLeader))), None));
        assert_eq!(refused.text, "node 3 refused get x (lease read): no leader known");
        assert_eq!(refused.status, "failed");
        assert_eq!(read_view(&read(None, None)).status, "pending");
        assert!(read_view(&read(Some(Ok(None)), Some(LogIndex(1)))).text.contains("no such key"));
    }
}
