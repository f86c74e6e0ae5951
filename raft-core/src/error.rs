//! Typed errors. Each prints lowercase without a final period and is `Send + Sync`.

use crate::types::{LogIndex, NodeId};
use core::fmt;

/// A [`crate::Config`] that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `election_timeout_ticks` below 2 leaves no room for randomization.
    ElectionTimeoutTooShort,
    /// `heartbeat_interval_ticks` must be at least 1 and at most half the election timeout.
    HeartbeatInterval,
    /// A limit that must be positive is zero.
    ZeroLimit(&'static str),
    /// `clock_drift_ticks_max` must be below the election timeout.
    ClockDrift,
    /// The restored state contradicts itself.
    InconsistentRestore(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ElectionTimeoutTooShort => f.write_str("election timeout must be at least 2 ticks"),
            ConfigError::HeartbeatInterval => f.write_str(
                "heartbeat interval must be at least 1 tick and at most half the election timeout",
            ),
            ConfigError::ZeroLimit(name) => write!(f, "limit {name} must be positive"),
            ConfigError::ClockDrift => f.write_str("clock drift bound must be below the election timeout"),
            ConfigError::InconsistentRestore(what) => write!(f, "restored state is inconsistent: {what}"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Why a proposal was refused. Nothing was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader takes proposals; `leader` is who this node believes leads, if anyone.
    NotLeader {
        /// The current leader as far as this node knows.
        leader: Option<NodeId>,
    },
    /// The leader is handing over to another server and takes no proposals meanwhile.
    LeadershipTransferInProgress,
    /// Too many bytes proposed and not yet committed; retry after some commit.
    TooManyUncommitted,
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(id) } => write!(f, "not the leader; node {id} leads"),
            ProposeError::NotLeader { leader: None } => f.write_str("not the leader; no leader known"),
            ProposeError::LeadershipTransferInProgress => f.write_str("leadership transfer in progress"),
            ProposeError::TooManyUncommitted => f.write_str("too many uncommitted bytes; retry later"),
        }
    }
}

impl core::error::Error for ProposeError {}

/// Why a message was dropped by [`crate::RaftNode::step`]. The node's state is unchanged and the
/// drop is counted in [`crate::Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The message is addressed to another node.
    WrongRecipient {
        /// The intended recipient.
        to: NodeId,
    },
    /// The message claims to come from this node itself.
    FromSelf,
    /// The message breaks the protocol's rules (for example non-contiguous entries).
    Malformed(&'static str),
    /// The message would truncate entries this node knows are committed: the sender is broken.
    WouldTruncateCommitted {
        /// The first committed index it would have removed.
        index: LogIndex,
    },
    /// The message's term is `u64::MAX`: no node may enter it, because no term follows it
    /// ([`crate::Term::LAST`] is the last usable one).
    TermExhausted,
    /// The sender is not a member of this node's configuration and the message is one only a
    /// member sends: a vote response, a higher-term answer nobody asked for, or a vote request
    /// from a candidate whose log is not even as up to date as this node's.
    NotAMember {
        /// The sender.
        from: NodeId,
    },
    /// The message's term is more than [`MAX_TERM_JUMP`] terms ahead of this node's: no
    /// honest cluster gets there (every term is a campaign that went through this node's
    /// configuration), while one forged or corrupted term near [`crate::Term::LAST`] would end
    /// elections for good (a node at the last term can never campaign again).
    TermTooFarAhead {
        /// The message's term.
        term: crate::Term,
    },
}

/// How far ahead of its own term a node accepts a peer's term: 2^32 terms. An honest cluster
/// never runs that many elections while a member is away (at one election a millisecond that
/// is seven weeks of nothing but elections), so refusing more protects [`crate::Term::LAST`]
/// from a single bad message without ever refusing a real leader. The core still trusts the
/// terms of the peers the driver lets through; authenticating them is the transport's job.
pub const MAX_TERM_JUMP: u64 = 1 << 32;

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::WrongRecipient { to } => write!(f, "message addressed to node {to}"),
            StepError::FromSelf => f.write_str("message claims to come from this node"),
            StepError::Malformed(why) => write!(f, "malformed message: {why}"),
            StepError::WouldTruncateCommitted { index } => {
                write!(f, "message would truncate committed entry {index}")
            }
            StepError::TermExhausted => f.write_str("message term u64::MAX is beyond the last usable term"),
            StepError::NotAMember { from } => write!(f, "node {from} is not a member of this configuration"),
            StepError::TermTooFarAhead { term } => write!(f, "message term {term} is implausibly far ahead"),
        }
    }
}

impl core::error::Error for StepError {}
