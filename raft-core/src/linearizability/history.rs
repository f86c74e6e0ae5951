//! What a checker checks: operations with their invocation and completion times and what the
//! client observed.

use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use serde::{Deserialize, Serialize};

/// A single-key operation on a key-value register.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Read the key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Write the key.
    Put {
        /// The key.
        key: Bytes,
        /// The value written.
        value: Bytes,
    },
    /// Remove the key.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Write `new` if the key holds `expected` (`None`: absent).
    CompareAndSwap {
        /// The key.
        key: Bytes,
        /// The value required.
        expected: Option<Bytes>,
        /// The value written if it matches.
        new: Bytes,
    },
}

impl Op {
    /// A get of `key`.
    pub fn get(key: impl Into<Bytes>) -> Op {
        Op::Get { key: key.into() }
    }

    /// A put of `value` under `key`.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Op {
        Op::Put { key: key.into(), value: value.into() }
    }

    /// A delete of `key`.
    pub fn delete(key: impl Into<Bytes>) -> Op {
        Op::Delete { key: key.into() }
    }

    /// A compare-and-swap of `key` from `expected` to `new`.
    pub fn cas(key: impl Into<Bytes>, expected: Option<Bytes>, new: impl Into<Bytes>) -> Op {
        Op::CompareAndSwap { key: key.into(), expected, new: new.into() }
    }

    /// The key the operation touches.
    pub fn key(&self) -> &Bytes {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Delete { key } | Op::CompareAndSwap { key, .. } => {
                key
            }
        }
    }

    /// Whether `observed` is something this kind of operation can answer.
    pub fn admits(&self, observed: &Observed) -> bool {
        matches!(
            (self, observed),
            (_, Observed::Failed | Observed::Unknown)
                | (Op::Get { .. }, Observed::Value(_))
                | (Op::Put { .. } | Op::Delete { .. }, Observed::Done)
                | (Op::CompareAndSwap { .. }, Observed::Swapped(_))
        )
    }
}

/// What the client learned about an operation's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Observed {
    /// A get returned this value (`None`: the key was absent).
    Value(Option<Bytes>),
    /// A put or delete took effect.
    Done,
    /// A compare-and-swap took effect; `true` if it swapped, `false` if it found another value.
    Swapped(bool),
    /// The operation definitely did not take effect (for example the store refused it).
    Failed,
    /// Nobody knows: the operation may or may not take effect, at any time after its invocation,
    /// even after the client gave up (a timeout, a crash, a lost reply).
    Unknown,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OperationRecord {
    /// The client that issued it (for display; the checker uses real time only).
    pub client: u64,
    /// When the client invoked it.
    pub invoke_time: u64,
    /// When the client saw its outcome or gave up; `None` if it never did.
    pub complete_time: Option<u64>,
    /// The operation.
    pub op: Op,
    /// What the client observed.
    pub observed: Observed,
}

impl OperationRecord {
    /// Whether the outcome is known: a value, an acknowledgement, or a definite failure.
    pub fn is_known(&self) -> bool {
        self.complete_time.is_some() && self.observed != Observed::Unknown
    }
}

/// A whole history, validated: every record's output fits its operation and no completion
/// precedes its invocation. Serializes as the list of its records; deserializing validates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<OperationRecord>", try_from = "Vec<OperationRecord>")]
pub struct History {
    records: Vec<OperationRecord>,
}

impl TryFrom<Vec<OperationRecord>> for History {
    type Error = HistoryError;

    fn try_from(records: Vec<OperationRecord>) -> Result<History, HistoryError> {
        History::new(records)
    }
}

impl From<History> for Vec<OperationRecord> {
    fn from(history: History) -> Vec<OperationRecord> {
        history.records
    }
}

impl History {
    /// A history from records in any order.
    ///
    /// # Errors
    ///
    /// The first record that is inconsistent, with its position.
    pub fn new(records: Vec<OperationRecord>) -> Result<History, HistoryError> {
        for (index, record) in records.iter().enumerate() {
            validate(index, record)?;
        }
        Ok(History { records })
    }

    /// A history from records known to be valid (built by this crate).
    pub(crate) fn from_valid(records: Vec<OperationRecord>) -> History {
        debug_assert!(records.iter().enumerate().all(|(index, record)| validate(index, record).is_ok()));
        History { records }
    }

    /// The records, in the order given.
    pub fn records(&self) -> &[OperationRecord] {
        &self.records
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

fn validate(index: usize, record: &OperationRecord) -> Result<(), HistoryError> {
    let id = OpId(index);
    if !record.op.admits(&record.observed) {
        return Err(HistoryError::ObservedDoesNotFit { id });
    }
    match record.complete_time {
        Some(time) if time < record.invoke_time => Err(HistoryError::CompletesBeforeInvoke { id }),
        None if !matches!(record.observed, Observed::Unknown | Observed::Failed) => {
            Err(HistoryError::ObservedWithoutCompletion { id })
        }
        _ => Ok(()),
    }
}

/// Identifies an operation in a [`HistoryBuilder`] and in the built [`History`] (its position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

/// Records a history as it happens: [`HistoryBuilder::invoke`] when a client sends an
/// operation, [`HistoryBuilder::complete`] when it learns the outcome. Operations never
/// completed end up with an unknown outcome.
#[derive(Clone, Debug, Default)]
pub struct HistoryBuilder {
    records: Vec<OperationRecord>,
    /// Whether each record was completed already.
    completed: Vec<bool>,
}

impl HistoryBuilder {
    /// An empty history.
    pub fn new() -> HistoryBuilder {
        HistoryBuilder::default()
    }

    /// Records that `client` invoked `op` at `time`.
    pub fn invoke(&mut self, client: u64, time: u64, op: Op) -> OpId {
        let id = OpId(self.records.len());
        self.records.push(OperationRecord {
            client,
            invoke_time: time,
            complete_time: None,
            op,
            observed: Observed::Unknown,
        });
        self.completed.push(false);
        id
    }

    /// Records that operation `id` completed at `time` with `observed` ([`Observed::Unknown`]
    /// if the client gave up without an answer).
    ///
    /// # Errors
    ///
    /// If `id` was not invoked here, was completed already, completes before its invocation,
    /// or `observed` does not fit the operation. The builder is unchanged.
    pub fn complete(&mut self, id: OpId, time: u64, observed: Observed) -> Result<(), HistoryError> {
        let Some(record) = self.records.get(id.0) else { return Err(HistoryError::UnknownOperation { id }) };
        if self.completed[id.0] {
            return Err(HistoryError::AlreadyCompleted { id });
        }
        let completed = OperationRecord { complete_time: Some(time), observed, ..record.clone() };
        validate(id.0, &completed)?;
        self.records[id.0] = completed;
        self.completed[id.0] = true;
        Ok(())
    }

    /// The history recorded so far.
    pub fn build(self) -> History {
        History { records: self.records }
    }
}

/// Why a history is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// The id was not handed out by this builder.
    UnknownOperation {
        /// The id.
        id: OpId,
    },
    /// The operation was completed already.
    AlreadyCompleted {
        /// The id.
        id: OpId,
    },
    /// The completion time is before the invocation time.
    CompletesBeforeInvoke {
        /// The id.
        id: OpId,
    },
    /// The observed output is not one this operation can produce (a get that "swapped").
    ObservedDoesNotFit {
        /// The id.
        id: OpId,
    },
    /// An output was observed but no completion time is given.
    ObservedWithoutCompletion {
        /// The id.
        id: OpId,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::UnknownOperation { id } => write!(f, "operation {} was never invoked", id.0),
            HistoryError::AlreadyCompleted { id } => write!(f, "operation {} was completed twice", id.0),
            HistoryError::CompletesBeforeInvoke { id } => {
                write!(f, "operation {} completes before it is invoked", id.0)
            }
            HistoryError::ObservedDoesNotFit { id } => {
                write!(f, "operation {} has an output its kind cannot produce", id.0)
            }
            HistoryError::ObservedWithoutCompletion { id } => {
                write!(f, "operation {} has an output but no completion time", id.0)
            }
        }
    }
}

impl core::error::Error for HistoryError {}
