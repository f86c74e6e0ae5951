//! Incarnations: a wiped data directory is a new node, and the cluster says so (issue 11, M17).
//!
//! A voter whose data directory was wiped (a corrupt disk replaced, an operator's `rm -rf`) and
//! that is started again with the same `--bootstrap` has forgotten its log and its vote. If the
//! cluster took it back as the same voter, it could vote twice in one term and help elect a
//! leader that lacks committed entries (thesis §4.2.2 and §5.2: a voter's vote and log must be
//! durable). So each data directory draws a random incarnation when it is first used
//! ([`crate::storage::Storage::incarnation`]); peers tell theirs when a `/raft` connection opens
//! (the [`INCARNATION_HEADER`] of the WebSocket upgrade request and of its answer); each node
//! records the first incarnation it meets for each peer, on disk, and refuses a connection from
//! or to that peer under any other. The cure is the recovery of `native-node/README.md`: remove
//! the member (every node then forgets its incarnation), wipe, and join again as a new member.
//!
//! Both headers are bound into the peer handshake's proofs
//! ([`raft_core::wire::BoundIncarnations`]): a relay that alters, adds or strips one breaks the
//! handshake, so a node records and checks only the incarnation its authenticated peer told.
//! Browser tabs can neither set nor read these headers; they tell none and bind none.

use crate::storage::{Storage, StorageError};
use raft_core::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

/// The HTTP header that carries an incarnation, in hex, on `/raft` upgrades and their answers.
pub const INCARNATION_HEADER: &str = "x-flotilla-incarnation";

/// This node's incarnation and those of the peers it has met.
#[derive(Debug)]
pub struct Incarnations {
    own: u64,
    known: Mutex<BTreeMap<NodeId, u64>>,
    /// Weak: the transport keeps this book as long as any of its tasks lives, and must not keep
    /// the database open after the node stopped.
    storage: Weak<Storage>,
}

/// Parses a header value.
pub fn parse(value: &str) -> Option<u64> {
    u64::from_str_radix(value.trim(), 16).ok()
}

/// Formats an incarnation for the header.
pub fn format(incarnation: u64) -> String {
    format!("{incarnation:016x}")
}

impl Incarnations {
    /// Reads (or draws) this directory's incarnation and the peers' recorded ones.
    ///
    /// # Errors
    /// [`StorageError`] when the database cannot be read or written.
    pub fn load(storage: &Arc<Storage>) -> Result<Arc<Incarnations>, StorageError> {
        let own = storage.incarnation()?;
        let known = storage.peer_incarnations()?;
        Ok(Arc::new(Incarnations { own, known: Mutex::new(known), storage: Arc::downgrade(storage) }))
    }

    fn save(&self, known: &BTreeMap<NodeId, u64>) {
        let Some(storage) = self.storage.upgrade() else { return };
        if let Err(error) = storage.save_peer_incarnations(known) {
            tracing::warn!(%error, "cannot record peers' incarnations");
        }
    }

    /// This data directory's incarnation.
    pub fn own(&self) -> u64 {
        self.own
    }

    /// Checks the incarnation `peer` presented (`None`: it told none, nothing to check).
    ///
    /// # Errors
    /// A message naming the peer and what to do, when it differs from the one recorded.
    pub fn check(&self, peer: NodeId, presented: Option<u64>) -> Result<(), String> {
        let Some(presented) = presented else { return Ok(()) };
        let mut known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match known.get(&peer) {
            Some(recorded) if *recorded == presented => Ok(()),
            Some(recorded) => Err(format!(
                "node {peer} has a new data directory (incarnation {}, this node knew {}): it has forgotten its \
                 log and vote; remove it from the cluster, wipe it, and join it again (README: Recovery)",
                format(presented),
                format(*recorded)
            )),
            None => {
                known.insert(peer, presented);
                self.save(&known);
                Ok(())
            }
        }
    }

    /// Forgets the incarnations of every node but `members` (a removed node may come back
    /// only as a new member, with a new incarnation).
    pub fn keep_only(&self, members: &[u64]) {
        let mut known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = known.len();
        known.retain(|id, _| members.contains(&id.0));
        if known.len() != before {
            self.save(&known);
        }
    }
}

/// Forgets removed members' incarnations as configurations are applied, until the node stops.
pub async fn forget_removed(raft: crate::raft::Raft, incarnations: Arc<Incarnations>) {
    let mut events = raft.subscribe();
    loop {
        match events.recv().await {
            Ok(crate::raft::Event::ConfigurationApplied { voters, learners, .. }) => {
                let members: Vec<u64> = voters.into_iter().chain(learners).collect();
                incarnations.keep_only(&members);
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let (voters, learners) = raft.configuration();
                incarnations.keep_only(&voters.into_iter().chain(learners).collect::<Vec<_>>());
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
