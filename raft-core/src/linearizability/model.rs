//! The sequential specification of one key: a register that is absent or holds a value, and one
//! key's operations compiled against it.
//!
//! Values are interned into small integers, so a model state is a `u32` and the search can
//! remember (linearized set, state) pairs cheaply.

use crate::linearizability::history::{Observed, Op, OperationRecord};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use bytes::Bytes;

/// A register state: [`ABSENT`], or an interned value.
pub(crate) type State = u32;

/// The key holds no value.
pub(crate) const ABSENT: State = 0;

/// One operation's effect and what its observed output requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A get that returned `observed`.
    Get { observed: State },
    /// A put, or a delete (`value` is [`ABSENT`]), whose output says nothing about the state.
    Write { value: State },
    /// A compare-and-swap; `swapped` is `None` when its outcome is unknown.
    Cas { expected: State, new: State, swapped: Option<bool> },
}

/// One operation of a single key's history, ready for the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyOp {
    /// Its position in the whole history.
    pub(crate) record: usize,
    pub(crate) invoke_time: u64,
    /// `None` when the outcome is unknown: it may take effect any time after invocation.
    pub(crate) complete_time: Option<u64>,
    pub(crate) step: Step,
}

impl KeyOp {
    /// The state after this operation from `state`, or `None` if its observed output rules
    /// out `state`.
    pub(crate) fn apply(&self, state: State) -> Option<State> {
        match self.step {
            Step::Get { observed } => (observed == state).then_some(state),
            Step::Write { value } => Some(value),
            Step::Cas { expected, new, swapped } => {
                let matches = expected == state;
                match swapped {
                    Some(claimed) if claimed != matches => None,
                    _ if matches => Some(new),
                    _ => Some(state),
                }
            }
        }
    }

    /// The value this operation may write, if any.
    pub(crate) fn written(&self) -> Option<State> {
        match self.step {
            Step::Get { .. } | Step::Cas { swapped: Some(false), .. } => None,
            Step::Write { value } => Some(value),
            Step::Cas { new, .. } => Some(new),
        }
    }

    /// The value that must have been present for this operation's output, if any.
    pub(crate) fn requires(&self) -> Option<State> {
        match self.step {
            Step::Get { observed } => Some(observed),
            Step::Cas { expected, swapped: Some(true), .. } => Some(expected),
            Step::Write { .. } | Step::Cas { .. } => None,
        }
    }

    fn is_unknown(&self) -> bool {
        self.complete_time.is_none()
    }
}

/// Interns one key's values.
#[derive(Default)]
struct Values<'a> {
    ids: BTreeMap<&'a Bytes, State>,
}

impl<'a> Values<'a> {
    fn id(&mut self, value: &'a Bytes) -> State {
        let next = self.ids.len() as State + 1;
        *self.ids.entry(value).or_insert(next)
    }

    fn optional(&mut self, value: Option<&'a Bytes>) -> State {
        value.map_or(ABSENT, |value| self.id(value))
    }
}

/// Compiles the operations `indices` of `records` (all on one key) for the search, in order of
/// invocation.
///
/// Operations that cannot matter are left out: definite failures (they did not take effect)
/// and reads with unknown output (they change nothing and constrain nothing). So are
/// unknown-outcome writes that nothing could have observed (see [`drop_unobservable`]).
pub(crate) fn compile(records: &[OperationRecord], indices: &[usize]) -> Vec<KeyOp> {
    let mut values = Values::default();
    let mut ops = Vec::with_capacity(indices.len());
    for &record_index in indices {
        let record = &records[record_index];
        let known = record.is_known();
        let complete_time = if known { record.complete_time } else { None };
        let step = match (&record.op, &record.observed) {
            (_, Observed::Failed) | (Op::Get { .. }, Observed::Unknown) => continue,
            (Op::Get { .. }, Observed::Value(value)) => {
                Step::Get { observed: values.optional(value.as_ref()) }
            }
            (Op::Put { value, .. }, _) => Step::Write { value: values.id(value) },
            (Op::Delete { .. }, _) => Step::Write { value: ABSENT },
            (Op::CompareAndSwap { expected, new, .. }, observed) => Step::Cas {
                expected: values.optional(expected.as_ref()),
                new: values.id(new),
                swapped: match observed {
                    Observed::Swapped(swapped) if known => Some(*swapped),
                    _ => None,
                },
            },
            // History::new rejects outputs that do not fit the operation.
            (Op::Get { .. }, _) => continue,
        };
        ops.push(KeyOp { record: record_index, invoke_time: record.invoke_time, complete_time, step });
    }
    // Number operations by invocation: the search's memo relies on it (see `search::Cache`).
    ops.sort_by_key(|op| (op.invoke_time, op.record));
    drop_unobservable(ops)
}

/// Removes unknown-outcome writes whose effect no operation could have observed.
///
/// An unknown write X of value `w` can always be linearized last, where it constrains nothing,
/// so the history without X is linearizable if the history with it is, *provided* nothing
/// depends on X having taken effect earlier: no read of `w`, no successful compare-and-swap
/// expecting `w`, no failed compare-and-swap expecting something else (X could explain the
/// failure), and no other unknown compare-and-swap (X could decide whether it swaps). Each such
/// write otherwise stays pending until the end of the history and multiplies the search space.
fn drop_unobservable(ops: Vec<KeyOp>) -> Vec<KeyOp> {
    let mut reads = BTreeSet::new();
    let mut failed_cas_expected = BTreeSet::new();
    let mut unknown_cas = 0usize;
    for op in &ops {
        if let Some(required) = op.requires() {
            reads.insert(required);
        }
        match op.step {
            Step::Cas { expected, swapped: Some(false), .. } => {
                failed_cas_expected.insert(expected);
            }
            Step::Cas { swapped: None, .. } => unknown_cas += 1,
            Step::Get { .. } | Step::Write { .. } | Step::Cas { .. } => {}
        }
    }
    let droppable = |op: &KeyOp| -> bool {
        let Some(value) = op.written() else { return false };
        let own_unknown_cas = usize::from(matches!(op.step, Step::Cas { swapped: None, .. }));
        op.is_unknown()
            && !reads.contains(&value)
            && failed_cas_expected.iter().all(|expected| *expected == value)
            && unknown_cas == own_unknown_cas
    };
    ops.into_iter().filter(|op| !droppable(op)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(step: Step, complete_time: Option<u64>) -> KeyOp {
        KeyOp { record: 0, invoke_time: 0, complete_time, step }
    }

    #[test]
    fn cas_follows_its_observed_output() {
        let known = |swapped| op(Step::Cas { expected: 1, new: 2, swapped: Some(swapped) }, Some(1));
        assert_eq!(known(true).apply(1), Some(2));
        assert_eq!(known(true).apply(3), None);
        assert_eq!(known(false).apply(1), None);
        assert_eq!(known(false).apply(3), Some(3));
        let unknown = op(Step::Cas { expected: 1, new: 2, swapped: None }, None);
        assert_eq!(unknown.apply(1), Some(2));
        assert_eq!(unknown.apply(3), Some(3));
    }

    #[test]
    fn only_unobservable_unknown_writes_are_dropped() {
        let unread = op(Step::Write { value: 5 }, None);
        let read = op(Step::Write { value: 6 }, None);
        let reader = op(Step::Get { observed: 6 }, Some(1));
        let kept = drop_unobservable(alloc::vec![unread, read, reader]);
        assert_eq!(kept, [read, reader]);
        // A failed compare-and-swap could be explained by any write: keep them all.
        let failed = op(Step::Cas { expected: 9, new: 1, swapped: Some(false) }, Some(1));
        assert_eq!(drop_unobservable(alloc::vec![unread, failed]).len(), 2);
    }
}
