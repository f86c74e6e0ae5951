//! The simulated servers' state machine: the list of applied commands, with a chain hash over
//! every applied entry so the checker can compare states (and snapshots) in O(1).

use crate::sim::checker::entry_hash;
use crate::sim::hash::combine;
use crate::types::{Entry, EntryPayload, LogIndex};
use alloc::vec::Vec;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Bytes per snapshot chunk in the simulator: small, so snapshots travel in many chunks.
pub const SNAPSHOT_CHUNK_BYTES: usize = 512;

/// What a simulated server has applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStateMachine {
    /// Last index applied.
    pub applied: LogIndex,
    /// Chain hash over every entry applied so far.
    pub chain: u64,
    /// The payload of every command applied, in order.
    pub commands: Vec<Bytes>,
}

impl SimStateMachine {
    /// Applies one committed entry.
    pub fn apply(&mut self, entry: &Entry) {
        self.applied = entry.index;
        self.chain = combine(self.chain, &entry_hash(entry));
        if let EntryPayload::Command(data) = &entry.payload {
            self.commands.push(data.clone());
        }
    }

    /// The whole state as snapshot bytes.
    pub fn snapshot(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).unwrap_or_default())
    }

    /// The state a snapshot holds, or `None` if the bytes are not a snapshot.
    pub fn restore(data: &[u8]) -> Option<SimStateMachine> {
        postcard::from_bytes(data).ok()
    }
}
