//! What a browser tab tells the native nodes about itself after the handshake, in a tagged
//! `TabStatus` frame: whether its storage can keep a voter's promises (thesis §3.8: a voter
//! must never forget its term, its vote or the entries it acknowledged). A native node takes
//! this only from the tab itself, over the tab's authenticated session, and uses it only to
//! refuse a promotion the tab could not honour; the tab's identity (node id, join nonce, key)
//! is bound to its storage by the key derivation of [`super::tab_key`], so a tab whose storage
//! was lost cannot speak as its old id at all.

use serde::{Deserialize, Serialize};

/// Where the tab keeps its term, vote, log and snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageBackend {
    /// Memory only: a reload forgets everything (a learner's default).
    Memory,
    /// The origin private file system through `FileSystemSyncAccessHandle` in a Worker, with
    /// `flush()` before every answer that the driver's contract says must follow persistence.
    Opfs,
    /// IndexedDB with `durability: "strict"` transactions (where OPFS sync handles are missing).
    IndexedDb,
}

impl StorageBackend {
    /// Whether the backend survives a reload and flushes before the tab speaks.
    pub fn is_durable(self) -> bool {
        !matches!(self, StorageBackend::Memory)
    }
}

/// Tab → native node, sealed, after the handshake and whenever it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabStatus {
    /// The storage the tab's node runs on.
    pub backend: StorageBackend,
    /// `navigator.storage.persist()` was granted: the browser will not evict the origin's
    /// storage under pressure without asking the user.
    pub persistent: bool,
    /// The tab's `Config::campaigns`: a voter tab votes and acknowledges but never starts an
    /// election and is never a leadership-transfer target.
    pub campaigns: bool,
}

impl TabStatus {
    /// Why this tab may not become a voter, in words for an operator; `None` when it may.
    pub fn voter_refusal(&self) -> Option<&'static str> {
        if !self.backend.is_durable() {
            Some("the tab's storage is memory only: a reload would forget its term, vote and log")
        } else if !self.persistent {
            Some("the browser has not granted persistent storage (navigator.storage.persist()): it may evict the tab's log")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_body, FrameKind, Side, Transcript};
    use crate::NodeId;
    use alloc::string::ToString;

    #[test]
    fn a_tab_status_round_trips_through_a_sealed_frame_read_by_open_any() {
        let transcript = Transcript {
            acceptor_nonce: [1; 16],
            dialler_nonce: [2; 16],
            cluster_id: "c".to_string(),
            acceptor: NodeId(1),
            dialler: NodeId(1 << 32),
        };
        let mut sealer = transcript.session(b"tab key", Side::Dialler).sealer;
        let mut opener = transcript.session(b"tab key", Side::Acceptor).opener;
        let status = TabStatus { backend: StorageBackend::Opfs, persistent: true, campaigns: false };
        let frame = sealer.seal(FrameKind::TabStatus, &status);
        let (kind, body) = opener.open_any(&frame).unwrap();
        assert_eq!(kind, FrameKind::TabStatus);
        assert_eq!(decode_body::<TabStatus>(body).unwrap(), status);
        // The sequence advanced: the same frame again is refused (a replay).
        assert!(opener.open_any(&frame).is_err());
    }

    #[test]
    fn only_a_durable_persistent_tab_may_vote() {
        let ok = TabStatus { backend: StorageBackend::IndexedDb, persistent: true, campaigns: false };
        assert_eq!(ok.voter_refusal(), None);
        assert!(TabStatus { persistent: false, ..ok }.voter_refusal().unwrap().contains("persist"));
        assert!(TabStatus { backend: StorageBackend::Memory, ..ok }
            .voter_refusal()
            .unwrap()
            .contains("memory"));
    }
}
