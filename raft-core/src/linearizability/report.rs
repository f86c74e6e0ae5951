//! A history and its check as one plain, serializable picture: what the history panel draws,
//! whether the history came from the simulator (through the wasm bindings) or from a native
//! run (`raft-node check --html`). Every field is text or a number, ready for JSON.

use crate::linearizability::explain::{describe_op, explain, linearization_points, text};
use crate::linearizability::history::{History, Observed, Op};
use crate::linearizability::result::{CheckResult, KeyVerdict, ShrinkStatus, Verdict};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The unit of a history's times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Milliseconds (the simulator's clock).
    Ms,
    /// Microseconds (a native run's wall clock).
    Us,
}

/// One operation as the panel shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportOp {
    /// Its position in the history.
    pub id: usize,
    /// The client that issued it.
    pub client: u64,
    /// `put`, `get`, `del` or `cas`.
    pub kind: String,
    /// The key, as text.
    pub key: String,
    /// The operation in a few words (`put x=2`).
    pub label: String,
    /// When it was invoked.
    pub invoke: u64,
    /// When the client learned the outcome or gave up; `None` if it never did.
    pub complete: Option<u64>,
    /// `ok`, `failed` or `unknown`.
    pub outcome: String,
    /// What it returned, in words (`1`, `absent`, `ok`, `swapped`).
    pub result: String,
    /// Where it took effect in the linearization found, if its key is linearizable and it had
    /// an effect.
    pub point: Option<u64>,
    /// The key's value just before the point, in words.
    pub before: Option<String>,
    /// The key's value just after the point, in words.
    pub after: Option<String>,
}

/// A key's minimal non-linearizable set of operations, with the one that cannot be placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportViolation {
    /// The key, as text.
    pub key: String,
    /// The failing operations' ids, by invocation.
    pub operations: Vec<usize>,
    /// The id of the operation that cannot be placed.
    pub blocked: usize,
    /// Why, in one sentence.
    pub sentence: String,
    /// How many operations the key had before shrinking.
    pub key_operations: usize,
    /// Whether the set is minimal (`minimal`, `shrink budget exhausted`, `not shrunk`).
    pub shrink: String,
}

/// A checked history, ready to draw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReport {
    /// The unit of every time in the report.
    pub time_unit: TimeUnit,
    /// `linearizable`, `not linearizable` or `unknown`.
    pub verdict: String,
    /// One sentence: "no violation in 42 operations", or how many keys fail.
    pub summary: String,
    /// Search steps the check took.
    pub steps: u64,
    /// Every operation, in history order (an op's `id` is its index here).
    pub operations: Vec<ReportOp>,
    /// One per failing key.
    pub violations: Vec<ReportViolation>,
    /// Keys the checker could not decide within its bounds, with why.
    pub undecided: Vec<String>,
}

impl HistoryReport {
    /// The report of `history` checked as `result` (which must be its check, keys in any
    /// order).
    pub fn new(history: &History, result: &CheckResult, time_unit: TimeUnit) -> HistoryReport {
        let records = history.records();
        let mut operations: Vec<ReportOp> = records
            .iter()
            .enumerate()
            .map(|(id, record)| {
                let (kind, outcome) = (kind(&record.op), outcome(&record.observed));
                ReportOp {
                    id,
                    client: record.client,
                    kind: String::from(kind),
                    key: text(Some(record.op.key())),
                    label: describe_op(&record.op),
                    invoke: record.invoke_time,
                    complete: record.complete_time,
                    outcome: String::from(outcome),
                    result: observed_text(&record.observed),
                    point: None,
                    before: None,
                    after: None,
                }
            })
            .collect();
        let mut violations = Vec::new();
        let mut undecided = Vec::new();
        for key in &result.keys {
            match &key.verdict {
                KeyVerdict::Linearizable => {
                    for point in linearization_points(records, &key.linearization) {
                        let op = &mut operations[point.position];
                        op.point = Some(point.time);
                        op.before = Some(text(point.before.as_ref()));
                        op.after = Some(text(point.after.as_ref()));
                    }
                }
                KeyVerdict::NotLinearizable(counterexample) => {
                    let explanation = explain(counterexample);
                    violations.push(ReportViolation {
                        key: text(Some(&counterexample.key)),
                        operations: counterexample.history_positions.clone(),
                        blocked: counterexample.history_positions[explanation.blocked],
                        sentence: explanation.sentence,
                        key_operations: counterexample.key_operations,
                        shrink: String::from(match counterexample.shrink {
                            ShrinkStatus::Minimal => "minimal",
                            ShrinkStatus::BudgetExhausted => "shrink budget exhausted",
                            ShrinkStatus::Skipped => "not shrunk",
                        }),
                    });
                }
                KeyVerdict::Unknown(why) => undecided.push(format!("{}: {why}", text(Some(&key.key)))),
            }
        }
        let count = records.len();
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 {
                format!("{n} {one}")
            } else {
                format!("{n} {many}")
            }
        };
        let (verdict, summary) = match result.verdict() {
            Verdict::Linearizable => {
                ("linearizable", format!("no violation in {}", plural(count, "operation", "operations")))
            }
            Verdict::NotLinearizable => (
                "not linearizable",
                format!(
                    "not linearizable: {} of {} fail",
                    plural(violations.len(), "key", "keys"),
                    plural(result.keys.len(), "key", "keys")
                ),
            ),
            Verdict::Unknown => (
                "unknown",
                format!(
                    "no violation found in {count} operations, but {} too complex to decide",
                    plural(undecided.len(), "key was", "keys were")
                ),
            ),
        };
        HistoryReport {
            time_unit,
            verdict: String::from(verdict),
            summary,
            steps: result.steps(),
            operations,
            violations,
            undecided,
        }
    }
}

fn kind(op: &Op) -> &'static str {
    match op {
        Op::Get { .. } => "get",
        Op::Put { .. } => "put",
        Op::Delete { .. } => "del",
        Op::CompareAndSwap { .. } => "cas",
    }
}

fn outcome(observed: &Observed) -> &'static str {
    match observed {
        Observed::Failed => "failed",
        Observed::Unknown => "unknown",
        Observed::Value(_) | Observed::Done | Observed::Swapped(_) => "ok",
    }
}

fn observed_text(observed: &Observed) -> String {
    match observed {
        Observed::Value(value) => text(value.as_ref()),
        Observed::Done => String::from("ok"),
        Observed::Swapped(true) => String::from("swapped"),
        Observed::Swapped(false) => String::from("not swapped"),
        Observed::Failed => String::from("failed"),
        Observed::Unknown => String::from("unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::{check, HistoryBuilder};
    use bytes::Bytes;

    #[test]
    fn a_clean_history_reports_points_and_a_count() {
        let mut history = HistoryBuilder::new();
        let write = history.invoke(1, 0, Op::put("x", "1"));
        history.complete(write, 10, Observed::Done).unwrap();
        let read = history.invoke(2, 20, Op::get("x"));
        history.complete(read, 30, Observed::Value(Some(Bytes::from("1")))).unwrap();
        let history = history.build();
        let report = HistoryReport::new(&history, &check(&history), TimeUnit::Ms);
        assert_eq!(report.summary, "no violation in 2 operations");
        assert_eq!(report.operations[1].point, Some(20));
        assert_eq!(report.operations[1].before.as_deref(), Some("1"));
        assert_eq!(
            (report.operations[0].before.as_deref(), report.operations[0].after.as_deref()),
            (Some("absent"), Some("1"))
        );
    }

    #[test]
    fn a_stale_read_names_the_operation() {
        let mut history = HistoryBuilder::new();
        let write = history.invoke(1, 0, Op::put("x", "1"));
        history.complete(write, 10, Observed::Done).unwrap();
        let read = history.invoke(2, 20, Op::get("x"));
        history.complete(read, 30, Observed::Value(None)).unwrap();
        let history = history.build();
        let report = HistoryReport::new(&history, &check(&history), TimeUnit::Ms);
        assert_eq!(report.verdict, "not linearizable");
        assert_eq!(report.violations[0].blocked, 1);
        assert_eq!(report.violations[0].sentence, "get x returned absent after put x=1 completed");
        assert_eq!(report.operations[1].point, None);
    }
}
