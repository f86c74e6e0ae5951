//! The checker's findings in a form people can look at: a point in time for each operation of a
//! linearization, and one sentence for a counterexample.
//!
//! A linearization is an order; a timeline wants points. Each operation must take effect
//! somewhere between its invocation and its response (Herlihy & Wing 1990, thesis §6.3), and
//! the running maximum of the invocation times is such a point for every operation of a valid
//! order: if operation `b` came after `a` in the order but `a` was invoked after `b` completed,
//! `b` would precede `a` in real time and the order would be invalid.

use crate::linearizability::history::{Observed, Op, OperationRecord};
use crate::linearizability::result::Counterexample;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Where one operation of a linearization takes effect, and what it did to the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizationPoint {
    /// The operation's position in the checked history.
    pub position: usize,
    /// A time between its invocation and its response (or any time after its invocation if the
    /// outcome is unknown, even after the client gave up), non-decreasing along the order.
    pub time: u64,
    /// The key's value just before (`None`: absent).
    pub before: Option<Bytes>,
    /// The key's value just after.
    pub after: Option<Bytes>,
}

/// Points in time for `order` (positions in `records`, all on one key, as
/// [`crate::linearizability::KeyResult::linearization`] gives them), with the key's value before
/// and after each.
///
/// # Panics
/// If a position is out of range.
pub fn linearization_points(records: &[OperationRecord], order: &[usize]) -> Vec<LinearizationPoint> {
    let mut value: Option<Bytes> = None;
    let mut time = 0u64;
    order
        .iter()
        .map(|&position| {
            let record = &records[position];
            time = time.max(record.invoke_time);
            // The witness only ever lists operations whose output fits the value here.
            debug_assert!(!record.is_known() || record.complete_time.is_none_or(|complete| time <= complete));
            let before = value.clone();
            value = apply(&record.op, value.take());
            LinearizationPoint { position, time, before, after: value.clone() }
        })
        .collect()
}

/// The register's next value; a compare-and-swap swaps iff the value is the expected one, which
/// is also how the search decides one with an unknown outcome.
fn apply(op: &Op, value: Option<Bytes>) -> Option<Bytes> {
    match op {
        Op::Get { .. } => value,
        Op::Put { value: new, .. } => Some(new.clone()),
        Op::Delete { .. } => None,
        Op::CompareAndSwap { expected, new, .. } if *expected == value => Some(new.clone()),
        Op::CompareAndSwap { .. } => value,
    }
}

/// Why a counterexample fails, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The operation that cannot be placed after the longest linearizable prefix: its index in
    /// [`Counterexample::operations`].
    pub blocked: usize,
    /// One sentence, e.g. `get x returned 1 after put x=2 completed`.
    pub sentence: String,
}

/// Names the operation of `counterexample` that cannot be placed, and says why.
///
/// After the longest prefix the search could linearize, the remaining operation that completed
/// first had to come next (everything invoked after its response must follow it), and its
/// output does not fit the key's value there: had it fitted, the prefix would be longer.
pub fn explain(counterexample: &Counterexample) -> Explanation {
    let operations = &counterexample.operations;
    let prefix = &counterexample.longest_linearizable_prefix;
    let mut value = None;
    let mut last_writer = None;
    for &index in prefix {
        let op = &operations[index].op;
        let after = apply(op, value.clone());
        if !matches!(op, Op::Get { .. }) {
            last_writer = Some(index);
        }
        value = after;
    }
    let blocked = (0..operations.len())
        .filter(|index| !prefix.contains(index))
        .min_by_key(|&index| {
            let record = &operations[index];
            (record.complete_time.unwrap_or(u64::MAX), record.invoke_time, index)
        })
        .unwrap_or(0);
    let record = &operations[blocked];
    let key = text(Some(&counterexample.key));
    let outcome = match &record.observed {
        Observed::Value(seen) => format!("returned {}", text(seen.as_ref())),
        Observed::Swapped(true) => String::from("swapped"),
        Observed::Swapped(false) => String::from("did not swap"),
        Observed::Done => String::from("took effect"),
        Observed::Failed | Observed::Unknown => String::from("may have taken effect"),
    };
    let written_anywhere = |seen: &Option<Bytes>| {
        operations.iter().any(|other| match &other.op {
            Op::Put { value, .. } => seen.as_ref() == Some(value),
            Op::CompareAndSwap { new, .. } => seen.as_ref() == Some(new),
            Op::Delete { .. } => seen.is_none(),
            Op::Get { .. } => false,
        }) || seen.is_none()
    };
    let sentence = match (&record.observed, last_writer) {
        (Observed::Value(seen), _) if !written_anywhere(seen) => {
            format!(
                "{} returned {}, a value no operation wrote",
                describe_op(&record.op),
                text(seen.as_ref())
            )
        }
        (_, Some(writer)) if operations[writer].complete_time.is_some_and(|t| t < record.invoke_time) => {
            format!(
                "{} {outcome} after {} completed",
                describe_op(&record.op),
                describe_op(&operations[writer].op)
            )
        }
        (_, Some(writer)) => format!(
            "{} {outcome}, but {key} held {} once {} took effect",
            describe_op(&record.op),
            text(value.as_ref()),
            describe_op(&operations[writer].op)
        ),
        (_, None) => {
            format!("{} {outcome}, but {key} was still {}", describe_op(&record.op), text(value.as_ref()))
        }
    };
    Explanation { blocked, sentence }
}

/// An operation in a few words: `put x=2`, `get x`, `del x`, `cas x 1→3`.
pub fn describe_op(op: &Op) -> String {
    match op {
        Op::Get { key } => format!("get {}", text(Some(key))),
        Op::Put { key, value } => format!("put {}={}", text(Some(key)), text(Some(value))),
        Op::Delete { key } => format!("del {}", text(Some(key))),
        Op::CompareAndSwap { key, expected, new } => {
            format!("cas {} {}→{}", text(Some(key)), text(expected.as_ref()), text(Some(new)))
        }
    }
}

/// A key or value as people read it: plain text if it is short printable text without spaces,
/// otherwise quoted or in hex; `absent` for no value.
pub fn text(value: Option<&Bytes>) -> String {
    const PLAIN_BYTES_MAX: usize = 24;
    let Some(value) = value else { return String::from("absent") };
    match core::str::from_utf8(value) {
        Ok(plain)
            if !plain.is_empty()
                && plain.len() <= PLAIN_BYTES_MAX
                && plain.chars().all(|c| c.is_alphanumeric() || "_-.:/".contains(c)) =>
        {
            String::from(plain)
        }
        _ => format!("{}", crate::linearizability::result::DisplayBytes(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::{check, HistoryBuilder, KeyVerdict};

    #[test]
    fn points_lie_inside_their_operations_and_carry_the_values() {
        let mut history = HistoryBuilder::new();
        let write = history.invoke(1, 0, Op::put("x", "1"));
        // A read overlapping the write that saw the old value: it takes effect first.
        let read = history.invoke(2, 5, Op::get("x"));
        history.complete(read, 6, Observed::Value(None)).unwrap();
        history.complete(write, 10, Observed::Done).unwrap();
        let history = history.build();
        let result = check(&history);
        let key = &result.keys[0];
        assert_eq!(key.linearization, [1, 0]);
        let points = linearization_points(history.records(), &key.linearization);
        assert_eq!(points[0], LinearizationPoint { position: 1, time: 5, before: None, after: None });
        assert_eq!(
            points[1],
            LinearizationPoint { position: 0, time: 5, before: None, after: Some(Bytes::from("1")) }
        );
    }

    #[test]
    fn a_stale_read_is_named_and_explained() {
        let mut history = HistoryBuilder::new();
        let one = history.invoke(1, 0, Op::put("x", "1"));
        history.complete(one, 10, Observed::Done).unwrap();
        let two = history.invoke(1, 20, Op::put("x", "2"));
        history.complete(two, 30, Observed::Done).unwrap();
        let stale = history.invoke(2, 40, Op::get("x"));
        history.complete(stale, 50, Observed::Value(Some(Bytes::from("1")))).unwrap();
        let result = check(&history.build());
        let KeyVerdict::NotLinearizable(counterexample) = &result.keys[0].verdict else {
            panic!("a stale read must be caught: {result}")
        };
        assert!(result.keys[0].linearization.is_empty());
        let explanation = explain(counterexample);
        assert_eq!(counterexample.history_positions[explanation.blocked], 2);
        assert_eq!(explanation.sentence, "get x returned 1 after put x=2 completed");
    }

    #[test]
    fn a_read_from_nowhere_says_so() {
        let mut history = HistoryBuilder::new();
        let read = history.invoke(1, 0, Op::get("k"));
        history.complete(read, 1, Observed::Value(Some(Bytes::from("7")))).unwrap();
        let result = check(&history.build());
        let counterexample = result.counterexamples().next().expect("caught");
        assert_eq!(explain(counterexample).sentence, "get k returned 7, a value no operation wrote");
    }
}
