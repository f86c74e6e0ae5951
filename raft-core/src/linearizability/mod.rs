//! A linearizability checker for key-value histories (Herlihy & Wing 1990), the yardstick for
//! Raft's client guarantees (thesis §6: each operation appears to take effect atomically at
//! some point between its invocation and its response).
//!
//! - **Per key.** Linearizability is local (P-compositional): a history is linearizable iff
//!   each key's sub-history is. So each key is checked on its own, as Porcupine and Knossos do,
//!   which turns one huge search into many small ones.
//! - **Search.** Wing & Gong's backtracking search (1993) with Lowe's memoization (2017) of
//!   (linearized set, model state) configurations, as in Porcupine. Each key's search
//!   is bounded by [`CheckOptions::search_steps_max`] and [`CheckOptions::cache_bytes_max`]; a
//!   key that hits a bound is reported [`Verdict::Unknown`] instead of hanging the checker.
//! - **Unknown outcomes.** An operation whose client never learned the outcome (completion
//!   `None`, or [`Observed::Unknown`]) may take effect at any time after its invocation, or
//!   never. A definite failure ([`Observed::Failed`]) did not take effect and is ignored.
//! - **Real time.** `a` precedes `b` iff `a` completed strictly before `b` was invoked;
//!   operations that touch at one instant count as concurrent, which can hide a violation but
//!   never invent one.
//! - **Witnesses.** A linearizable key comes with the order its operations took effect in
//!   ([`KeyResult::linearization`]); [`linearization_points`] turns it into a point in time per
//!   operation, with the key's value before and after, for a timeline.
//! - **Counterexamples** are shrunk to a small failing subset and print as a table with a
//!   timeline ([`Counterexample`]).
//!
//! ```
//! use raft_core::linearizability::{check, HistoryBuilder, Observed, Op, Verdict};
//!
//! let mut history = HistoryBuilder::new();
//! let write = history.invoke(1, 0, Op::put("x", "1"));
//! history.complete(write, 10, Observed::Done).unwrap();
//! // Client 2 reads after the write completed, yet sees nothing: a stale read.
//! let read = history.invoke(2, 20, Op::get("x"));
//! history.complete(read, 30, Observed::Value(None)).unwrap();
//!
//! let result = check(&history.build());
//! assert_eq!(result.verdict(), Verdict::NotLinearizable);
//! println!("{result}");
//! ```

mod explain;
mod generate;
mod history;
mod model;
mod report;
mod result;
mod search;
mod shrink;

pub use explain::{explain, linearization_points, Explanation, LinearizationPoint};
pub use generate::{linearizable_history, GeneratorConfig};
pub use history::{History, HistoryBuilder, HistoryError, Observed, Op, OpId, OperationRecord};
pub use report::{HistoryReport, ReportOp, ReportViolation, TimeUnit};
pub use result::{CheckResult, Counterexample, Inconclusive, KeyResult, KeyVerdict, ShrinkStatus, Verdict};

use crate::kv;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::Bytes;
use search::{Prefix, SearchLimits, SearchOutcome};

/// The default bound on search steps per key. A step is one visit of an event; histories
/// from real runs need a few per operation, so this only stops pathological ones.
pub const SEARCH_STEPS_MAX_DEFAULT: u64 = 20_000_000;

/// The default bound on each key's memo of visited configurations, in bytes.
pub const CACHE_BYTES_MAX_DEFAULT: usize = 256 * 1024 * 1024;

/// The default budget for shrinking one counterexample, in search steps: well under a second.
pub const SHRINK_STEPS_MAX_DEFAULT: u64 = 50_000_000;

/// Bounds for [`check_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// The most search steps per key before the key is reported [`Verdict::Unknown`].
    pub search_steps_max: u64,
    /// The most bytes per key the search may remember before giving up.
    pub cache_bytes_max: usize,
    /// The most search steps shrinking one counterexample may take; 0 turns shrinking off.
    pub shrink_steps_max: u64,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            search_steps_max: SEARCH_STEPS_MAX_DEFAULT,
            cache_bytes_max: CACHE_BYTES_MAX_DEFAULT,
            shrink_steps_max: SHRINK_STEPS_MAX_DEFAULT,
        }
    }
}

/// Checks `history` with the default bounds.
pub fn check(history: &History) -> CheckResult {
    check_with(history, &CheckOptions::default())
}

/// Checks `history`: each key on its own, in key order.
pub fn check_with(history: &History, options: &CheckOptions) -> CheckResult {
    let records = history.records();
    let mut by_key: BTreeMap<&Bytes, Vec<usize>> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        by_key.entry(record.op.key()).or_default().push(index);
    }
    let keys =
        by_key.into_iter().map(|(key, indices)| check_key_indices(records, key, &indices, options)).collect();
    CheckResult { keys }
}

/// Checks only the operations of `history` on `key`: for a caller that keeps each key's result
/// and re-checks a key only when its operations change (linearizability is local, so the
/// results combine into a [`CheckResult`] in key order).
pub fn check_key(history: &History, key: &[u8], options: &CheckOptions) -> KeyResult {
    let records = history.records();
    let indices: Vec<usize> = (0..records.len()).filter(|&index| records[index].op.key() == key).collect();
    check_key_indices(records, &Bytes::copy_from_slice(key), &indices, options)
}

fn check_key_indices(
    records: &[OperationRecord],
    key: &Bytes,
    indices: &[usize],
    options: &CheckOptions,
) -> KeyResult {
    let limits =
        SearchLimits { steps_max: options.search_steps_max, cache_bytes_max: options.cache_bytes_max };
    let ops = model::compile(records, indices);
    let report = search::search(&ops, limits, Prefix::Ignore);
    let mut linearization = Vec::new();
    let verdict = match report.outcome {
        SearchOutcome::Linearizable { order } => {
            linearization = order.into_iter().map(|op| ops[op].record).collect();
            KeyVerdict::Linearizable
        }
        SearchOutcome::Inconclusive(why) => KeyVerdict::Unknown(why),
        SearchOutcome::NotLinearizable { .. } => {
            KeyVerdict::NotLinearizable(counterexample(records, key, &ops, indices.len(), limits, options))
        }
    };
    KeyResult { key: key.clone(), operations: indices.len(), steps: report.steps, verdict, linearization }
}

fn counterexample(
    records: &[OperationRecord],
    key: &Bytes,
    ops: &[model::KeyOp],
    key_operations: usize,
    limits: SearchLimits,
    options: &CheckOptions,
) -> Counterexample {
    let (failing, shrink) = if options.shrink_steps_max == 0 {
        let mut failing = ops.to_vec();
        failing.sort_by_key(|op| (op.invoke_time, op.record));
        (failing, ShrinkStatus::Skipped)
    } else {
        shrink::shrink(ops, limits, options.shrink_steps_max)
    };
    let longest_linearizable_prefix = match search::search(&failing, limits, Prefix::Track).outcome {
        SearchOutcome::NotLinearizable { longest_prefix } => longest_prefix,
        SearchOutcome::Linearizable { .. } | SearchOutcome::Inconclusive(_) => Vec::new(),
    };
    Counterexample {
        key: key.clone(),
        operations: failing.iter().map(|op| records[op.record].clone()).collect(),
        history_positions: failing.iter().map(|op| op.record).collect(),
        key_operations,
        shrink,
        longest_linearizable_prefix,
    }
}

impl Op {
    /// The checker's view of a key-value store operation; `None` for a list, which spans keys
    /// and is not checked.
    pub fn from_kv(operation: &kv::Operation) -> Option<Op> {
        Some(match operation.clone() {
            kv::Operation::Get { key } => Op::Get { key },
            kv::Operation::Put { key, value } => Op::Put { key, value },
            kv::Operation::Delete { key } => Op::Delete { key },
            kv::Operation::CompareAndSwap { key, expected, new } => Op::CompareAndSwap { key, expected, new },
            kv::Operation::List { .. } => return None,
        })
    }
}

impl Observed {
    /// What a client observed from a key-value store response that reached it. An error
    /// response means the store refused the command, so it did not take effect.
    pub fn from_kv(response: &kv::Response) -> Observed {
        match response {
            Ok(kv::Output::Value(value)) => Observed::Value(value.clone()),
            Ok(kv::Output::Written | kv::Output::Deleted { .. }) => Observed::Done,
            Ok(kv::Output::Swapped) => Observed::Swapped(true),
            Ok(kv::Output::NotSwapped { .. }) => Observed::Swapped(false),
            Err(_) => Observed::Failed,
            // Not an answer to a single-key operation: claim nothing.
            Ok(
                kv::Output::NoCommand
                | kv::Output::Registered { .. }
                | kv::Output::SessionClosed
                | kv::Output::Restored
                | kv::Output::RestoreStaged { .. }
                | kv::Output::RestoreAborted
                | kv::Output::Keys { .. },
            ) => Observed::Unknown,
        }
    }
}
