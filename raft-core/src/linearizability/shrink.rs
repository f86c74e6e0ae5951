//! Shrinks a failing key history to a small subset that still fails, so a human can read it.
//!
//! First the shortest failing prefix (by invocation time, found by bisection), then delta
//! debugging: remove chunks of halving size while the rest still fails, down to single
//! operations.
//!
//! Any subset of a history is a history, but not every failing subset tells the truth about the
//! original: delete the write a read saw and the read "comes from nowhere"; delete the delete a
//! read of "absent" saw and the read looks stale. So every operation that reads (a get, or a
//! compare-and-swap with a known outcome) keeps, while it stays in the subset:
//!
//! - its *sources*: every write of a value it accepts (for a failed compare-and-swap, any value
//!   but the expected one) that was invoked before it completed and that no definitely completed
//!   write separates from it in real time, i.e. every write it may have seen;
//! - if it had any, at least one write of a value it accepts invoked before it completed, so a
//!   stale read stays recognisably stale instead of becoming a read from nowhere.

use crate::linearizability::model::{KeyOp, State, Step, ABSENT};
use crate::linearizability::result::{Inconclusive, ShrinkStatus};
use crate::linearizability::search::{search, Prefix, SearchLimits, SearchOutcome};
use alloc::vec;
use alloc::vec::Vec;

/// Shrinks `ops`, a non-linearizable key history, within `steps_max` steps (search steps, plus
/// one per operation of each candidate judged). Returns the failing subset by invocation time.
pub(crate) fn shrink(ops: &[KeyOp], limits: SearchLimits, steps_max: u64) -> (Vec<KeyOp>, ShrinkStatus) {
    let mut shrinker = Shrinker {
        ops,
        limits,
        steps_left: steps_max,
        dependencies: dependencies(ops),
        member: vec![false; ops.len()],
    };
    let mut current: Vec<usize> = (0..ops.len()).collect();
    current.sort_by_key(|&index| (ops[index].invoke_time, ops[index].record));
    let done = |current: Vec<usize>, status| (current.into_iter().map(|index| ops[index]).collect(), status);

    // The shortest failing prefix. Failure is not strictly monotone in the prefix length, but
    // bisection still ends on a failing prefix whose one-shorter neighbour passes.
    let (mut passing, mut failing) = (0, current.len());
    while failing - passing > 1 {
        let middle = passing + (failing - passing) / 2;
        match shrinker.fails(&current[..middle]) {
            None => return done(current, ShrinkStatus::BudgetExhausted),
            Some(true) => failing = middle,
            Some(false) => passing = middle,
        }
    }
    current.truncate(failing);

    let mut chunk = (current.len() / 2).max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0;
        while start < current.len() {
            let end = (start + chunk).min(current.len());
            let candidate: Vec<usize> = current[..start].iter().chain(&current[end..]).copied().collect();
            match shrinker.fails(&candidate) {
                None => return done(current, ShrinkStatus::BudgetExhausted),
                Some(true) => {
                    current = candidate;
                    removed_any = true;
                }
                Some(false) => start = end,
            }
        }
        if chunk > 1 {
            chunk /= 2;
        } else if !removed_any {
            return done(current, ShrinkStatus::Minimal);
        }
    }
}

struct Shrinker<'a> {
    ops: &'a [KeyOp],
    limits: SearchLimits,
    /// What is left of the shrink's budget.
    steps_left: u64,
    /// For each operation, what it keeps while it stays.
    dependencies: Vec<Dependencies>,
    /// Scratch: which operations are in the candidate being judged.
    member: Vec<bool>,
}

impl Shrinker<'_> {
    /// Whether the candidate (indices into `ops`) keeps every dependency and still fails;
    /// `None` once the budget is spent.
    fn fails(&mut self, candidate: &[usize]) -> Option<bool> {
        // Judging the dependencies costs about one step per operation.
        self.steps_left = self.steps_left.checked_sub(candidate.len() as u64)?;
        self.member.fill(false);
        for &index in candidate {
            self.member[index] = true;
        }
        let member = &self.member;
        let keeps_dependencies = candidate.iter().all(|&index| {
            let dependencies = &self.dependencies[index];
            dependencies.sources.iter().all(|&source| member[source])
                && (dependencies.grounds.is_empty()
                    || dependencies.grounds.iter().any(|&ground| member[ground]))
        });
        if !keeps_dependencies {
            return Some(false);
        }
        let ops: Vec<KeyOp> = candidate.iter().map(|&index| self.ops[index]).collect();
        let budget_binds = self.steps_left < self.limits.steps_max;
        let limits = SearchLimits { steps_max: self.limits.steps_max.min(self.steps_left), ..self.limits };
        let report = search(&ops, limits, Prefix::Ignore);
        self.steps_left = self.steps_left.saturating_sub(report.steps);
        match report.outcome {
            SearchOutcome::NotLinearizable { .. } => Some(true),
            SearchOutcome::Linearizable { .. } => Some(false),
            SearchOutcome::Inconclusive(Inconclusive::StepsExhausted { .. }) if budget_binds => None,
            // A subset too complex to decide is not known to fail: keep its operations.
            SearchOutcome::Inconclusive(_) => Some(false),
        }
    }
}

/// What an operation's output says about the state it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Requirement {
    /// A read, or a successful compare-and-swap, saw this value.
    Equals(State),
    /// A failed compare-and-swap saw anything but this value.
    Differs(State),
}

impl Requirement {
    fn of(op: &KeyOp) -> Option<Requirement> {
        match op.step {
            Step::Get { observed } => Some(Requirement::Equals(observed)),
            Step::Cas { expected, swapped: Some(true), .. } => Some(Requirement::Equals(expected)),
            Step::Cas { expected, swapped: Some(false), .. } => Some(Requirement::Differs(expected)),
            Step::Write { .. } | Step::Cas { swapped: None, .. } => None,
        }
    }

    fn accepts(self, value: State) -> bool {
        match self {
            Requirement::Equals(required) => value == required,
            Requirement::Differs(excluded) => value != excluded,
        }
    }
}

/// What one operation keeps while it stays in a shrunk subset (indices into the full key
/// history); empty for operations that do not read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Dependencies {
    /// Every write it may have seen: all must stay.
    sources: Vec<usize>,
    /// Every earlier-invoked write of a value it accepts: one must stay. Empty when the initial
    /// state grounds it, or when nothing did in the full history either.
    grounds: Vec<usize>,
}

/// The dependencies of every operation of `ops`, in the full key history.
fn dependencies(ops: &[KeyOp]) -> Vec<Dependencies> {
    // Writes that definitely happened, by invocation, with the earliest completion among each
    // suffix: "is there such a write invoked after t1 and completed before t2" is then one
    // binary search.
    let mut definite: Vec<(u64, u64)> = ops
        .iter()
        .filter(|op| matches!(op.step, Step::Write { .. } | Step::Cas { swapped: Some(true), .. }))
        .filter_map(|op| Some((op.invoke_time, op.complete_time?)))
        .collect();
    definite.sort_unstable();
    let mut suffix_min_complete = vec![u64::MAX; definite.len() + 1];
    for index in (0..definite.len()).rev() {
        suffix_min_complete[index] = suffix_min_complete[index + 1].min(definite[index].1);
    }
    // Whether a definite write was invoked after `after` and completed before `before`.
    let separated = |after: u64, before: u64| {
        let first = definite.partition_point(|&(invoke_time, _)| invoke_time <= after);
        suffix_min_complete[first] < before
    };

    let writers: Vec<(usize, State)> =
        ops.iter().enumerate().filter_map(|(index, op)| Some((index, op.written()?))).collect();
    ops.iter()
        .enumerate()
        .map(|(index, read)| {
            let Some(requirement) = Requirement::of(read) else { return Dependencies::default() };
            let read_complete_time = read.complete_time.unwrap_or(u64::MAX);
            let mut dependencies = Dependencies::default();
            for &(writer_index, value) in &writers {
                let writer = &ops[writer_index];
                if writer_index == index
                    || !requirement.accepts(value)
                    || writer.invoke_time > read_complete_time
                {
                    continue;
                }
                dependencies.grounds.push(writer_index);
                // An unknown outcome may land any time, so nothing separates it from the read.
                let seen = match writer.complete_time {
                    None => true,
                    Some(complete_time) => !separated(complete_time, read.invoke_time),
                };
                if seen {
                    dependencies.sources.push(writer_index);
                }
            }
            if requirement.accepts(ABSENT) {
                dependencies.grounds.clear();
            }
            dependencies
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::model::Step;

    const LIMITS: SearchLimits = SearchLimits { steps_max: 1_000_000, cache_bytes_max: 1 << 24 };

    fn op(record: usize, invoke_time: u64, complete_time: u64, step: Step) -> KeyOp {
        KeyOp { record, invoke_time, complete_time: Some(complete_time), step }
    }

    #[test]
    fn keeps_the_write_a_stale_read_contradicts_and_the_one_it_saw() {
        let mut ops = Vec::new();
        // Noise: many harmless writes and reads of value 1 and 2 before the failure.
        for i in 0..40 {
            ops.push(op(ops.len(), 10 * i, 10 * i + 1, Step::Write { value: 1 }));
            ops.push(op(ops.len(), 10 * i + 2, 10 * i + 3, Step::Get { observed: 1 }));
        }
        let write_new = op(ops.len(), 1_000, 1_001, Step::Write { value: 2 });
        let stale = op(ops.len() + 1, 1_002, 1_003, Step::Get { observed: 1 });
        ops.extend([write_new, stale]);
        let (shrunk, status) = shrink(&ops, LIMITS, 1_000_000);
        assert_eq!(status, ShrinkStatus::Minimal);
        assert_eq!(shrunk.len(), 3, "a write of 1, the write of 2, the stale read of 1: {shrunk:?}");
        assert!(shrunk.contains(&write_new) && shrunk.contains(&stale));
    }

    #[test]
    fn dependencies_are_the_writes_a_read_may_have_seen() {
        let write = op(0, 0, 1, Step::Write { value: 1 });
        let read = op(1, 2, 3, Step::Get { observed: 1 });
        let late_write = op(2, 4, 5, Step::Write { value: 1 });
        let depends = |sources: &[usize], grounds: &[usize]| Dependencies {
            sources: sources.to_vec(),
            grounds: grounds.to_vec(),
        };
        assert_eq!(dependencies(&[write, read])[1], depends(&[0], &[0]));
        assert_eq!(dependencies(&[read, late_write])[0], depends(&[], &[]));
        let overwrite = op(3, 2, 2, Step::Write { value: 2 });
        let stale = op(4, 3, 4, Step::Get { observed: 1 });
        assert_eq!(dependencies(&[write, overwrite, stale])[2], depends(&[], &[0]));
        let delete = op(5, 0, 1, Step::Write { value: ABSENT });
        let absent = op(6, 3, 4, Step::Get { observed: ABSENT });
        assert_eq!(dependencies(&[delete, absent])[1], depends(&[0], &[]));
        let failed_cas = op(7, 3, 4, Step::Cas { expected: 2, new: 3, swapped: Some(false) });
        // The initial state grounds it; the write of 1 is separated from it by the overwrite.
        assert_eq!(dependencies(&[write, overwrite, failed_cas])[2], depends(&[], &[]));
    }

    #[test]
    fn a_delete_that_a_read_of_absent_saw_is_kept() {
        let write = op(0, 0, 1, Step::Write { value: 1 });
        let delete = op(1, 2, 3, Step::Write { value: ABSENT });
        let absent = op(2, 4, 5, Step::Get { observed: ABSENT });
        let overwrite = op(3, 6, 7, Step::Write { value: 2 });
        let stale = op(4, 8, 9, Step::Get { observed: ABSENT });
        let (shrunk, _) = shrink(&[write, delete, absent, overwrite, stale], LIMITS, 1_000_000);
        // Not the misleading "put 1, get absent": the delete stays with the read that saw it...
        // or the read goes too. Either way the overwrite and the stale read remain.
        assert!(shrunk.contains(&overwrite) && shrunk.contains(&stale), "{shrunk:?}");
        assert!(!shrunk.contains(&absent) || shrunk.contains(&delete), "{shrunk:?}");
    }

    #[test]
    fn a_read_from_nowhere_shrinks_to_itself() {
        let mut ops: Vec<KeyOp> =
            (0..30).map(|i| op(i, 10 * i as u64, 10 * i as u64 + 1, Step::Write { value: 1 })).collect();
        let nowhere = op(30, 5, 400, Step::Get { observed: 7 });
        ops.push(nowhere);
        assert_eq!(shrink(&ops, LIMITS, 1_000_000), (alloc::vec![nowhere], ShrinkStatus::Minimal));
    }
}
