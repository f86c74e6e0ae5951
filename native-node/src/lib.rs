//! Flotilla's native node: raft-core on tokio, peering over WebSockets.
