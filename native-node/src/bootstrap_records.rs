//! Address records for the members a cluster was bootstrapped with (issue #13).
//!
//! A member added later gets its address replicated with its membership change
//! ([`crate::raft::Raft::add_voter`]); the first members only had theirs on the command line, so
//! no replica that learns the cluster from its log alone (a browser learner tab) could find
//! them, and a tab connected only to a leader that dies would be stranded. So the first leader of
//! a bootstrapped node's process writes the bootstrap members' address records through the log
//! (idempotent puts under the reserved keyspace), once; a later leader writing them again changes
//! nothing.

use crate::kv::address_record;
use crate::raft::Raft;
use raft_core::NodeId;
use std::time::Duration;
use tokio::sync::watch;

/// How often a node checks whether it leads, until the records are written.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Writes the records while this node leads; returns once they are committed, or at shutdown.
pub(crate) fn spawn(
    raft: Raft,
    members: Vec<(NodeId, String)>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if raft.leader() != Some(raft.id()) {
                continue;
            }
            let mut written = true;
            for (id, address) in &members {
                if raft.apply(address_record(*id, address), Duration::from_secs(5)).await.is_err() {
                    written = false;
                    break;
                }
            }
            if written {
                return;
            }
        }
    })
}
