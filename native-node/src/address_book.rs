//! Keeps the peer addresses the transport learns on disk (issue 11, M16).
//!
//! A node started with `--bootstrap` saves its members' addresses at start; one that joined
//! with `--join` learns them only from replicated address records, which it re-applies after a
//! restart only once it hears from a leader. Until then it could dial nobody: it could not
//! campaign, nor find a cluster whose members all restarted. So every address the transport
//! learns is saved too, and read back at start (`Storage::addresses`).
//!
//! The book polls the transport's map rather than hooking the transport, which keeps this out
//! of the transport's hot path and its file; addresses change only on membership changes.

use crate::storage::Storage;
use crate::transport::Transport;
use raft_core::NodeId;
use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::watch;

/// How often the transport's addresses are compared with the saved ones.
pub const ADDRESS_BOOK_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Saves `transport`'s addresses to `storage` whenever they differ from `saved`, until
/// `shutdown` turns true.
pub async fn keep(
    transport: Transport,
    storage: Weak<Storage>,
    mut saved: BTreeMap<NodeId, String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(ADDRESS_BOOK_POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let current = transport.addresses();
        if current == saved {
            continue;
        }
        // Weak: a stopped node's database must close even if this task outlives it a moment.
        let Some(storage) = storage.upgrade() else { return };
        let to_save = current.clone();
        match tokio::task::spawn_blocking(move || storage.save_addresses(&to_save)).await {
            Ok(Ok(())) => {
                tracing::debug!(peers = current.len(), "peer addresses saved");
                saved = current;
            }
            Ok(Err(error)) => tracing::warn!(%error, "cannot save peer addresses; will retry"),
            Err(error) => tracing::warn!(%error, "saving peer addresses panicked; will retry"),
        }
    }
}
