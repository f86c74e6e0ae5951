//! # raft-core
//!
//! Flotilla's Raft engine: the algorithm of the Raft paper (Ongaro and Ousterhout, 2014; cited
//! as §N) and of Ongaro's thesis (2014; cited as thesis §N), as a sans-IO, deterministic state
//! machine that runs the same on a server, in a browser and in the simulator.
//!
//! - **Sans-IO**: a [`RaftNode`] is driven by [`RaftNode::tick`], [`RaftNode::step`] and
//!   [`RaftNode::propose`], and hands back one ordered [`Ready`] batch: state to persist,
//!   messages to send (some only after that persist), committed entries to apply.
//! - **Deterministic**: time is a tick count and randomness comes from a seed in [`Config`].
//!   The crate reads no clock, spawns no thread and keeps no global state.
//! - **`no_std`**: only `alloc` is needed; `std` is a default feature.
//!
//! [`sim`] is a deterministic cluster simulator with fault injection and safety checkers.
//!
//! ## A node's life
//! ```
//! use raft_core::{bootstrap, Config, Membership, NodeId, RaftNode};
//! let membership = Membership::with_voters([NodeId(1)]);
//! let mut node = RaftNode::new(Config::new(NodeId(1), 7), bootstrap(membership)).unwrap();
//! while node.role() != raft_core::Role::Leader {
//!     node.tick();
//!     let ready = node.ready();
//!     // persist ready.hard_state + ready.entries, send messages, apply committed entries...
//!     node.advance();
//! }
//! let proposed = node.propose(bytes::Bytes::from_static(b"x=1")).unwrap();
//! let ready = node.ready();
//! node.advance();
//! assert_eq!(node.commit_index(), proposed.index);
//! assert_eq!(node.term_at(proposed.index), Some(proposed.term));
//! # let _ = ready;
//! ```
//!
#![doc = include_str!("../GUIDE.md")]
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod config;
pub mod error;
pub mod events;
pub mod kv;
pub mod linearizability;
mod log;
#[cfg(feature = "log-record")]
pub mod log_record;
pub mod message;
mod node;
pub mod progress;
pub mod quorum;
pub mod reads;
pub mod ready;
pub mod rng;
pub mod sim;
pub mod state_machine;
pub mod storage;
pub mod types;
#[cfg(feature = "wire")]
pub mod wire;

pub use bytes::Bytes;
pub use config::Config;
pub use error::{ConfigError, ProposeError, StepError, MAX_TERM_JUMP};
pub use events::{RaftEvent, Status};
pub use message::{AppendOutcome, CampaignReason, Message, MessageBody, VoteKind};
pub use node::{
    FollowerProgress, MembershipChange, MembershipError, RaftNode, SnapshotError, SnapshotStatus, Stats,
    TransferError, CATCH_UP_ROUNDS_MAX,
};
pub use progress::ProgressState;
pub use reads::{ReadError, ReadMode, ReadState};
pub use ready::{
    bootstrap, recover_cluster, Ready, Restored, SnapshotChunk, SnapshotChunkRequest, SnapshotCreated,
    SnapshotMeta, SoftState,
};
pub use types::{Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, Proposed, Role, Term};
