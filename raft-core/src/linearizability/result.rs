//! What a check concludes, per key and overall, and how a counterexample prints.

use crate::linearizability::history::{Observed, Op, OperationRecord};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// The overall verdict of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Every key's history is linearizable, so the whole history is (P-compositionality:
    /// Herlihy & Wing 1990, locality of linearizability).
    Linearizable,
    /// At least one key's history is not.
    NotLinearizable,
    /// No key failed, but at least one was too complex to decide within the bounds.
    Unknown,
}

/// Why a key could not be decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inconclusive {
    /// The search took [`crate::linearizability::CheckOptions::search_steps_max`] steps.
    StepsExhausted {
        /// The steps taken.
        steps: u64,
    },
    /// The search's memo of visited configurations outgrew its bound.
    CacheFull {
        /// The bound, in bytes.
        cache_bytes_max: usize,
    },
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inconclusive::StepsExhausted { steps } => {
                write!(f, "too complex: gave up after {steps} search steps")
            }
            Inconclusive::CacheFull { cache_bytes_max } => {
                write!(f, "too complex: search memo exceeded {cache_bytes_max} bytes")
            }
        }
    }
}

/// How far shrinking a counterexample got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShrinkStatus {
    /// Removing any single operation makes it linearizable, or takes away a write that a
    /// remaining read may have seen.
    Minimal,
    /// The shrink budget ran out first; smaller failing subsets may exist.
    BudgetExhausted,
    /// Shrinking was turned off.
    Skipped,
}

/// A non-linearizable history of one key, shrunk to a small subset that still fails.
///
/// Shrinking never removes a write that a remaining read (or compare-and-swap with a known
/// outcome) may have seen, so the counterexample never blames a read for a write the shrinker
/// itself removed: a stale read stays stale, it does not turn into a read from nowhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The key.
    pub key: Bytes,
    /// The failing operations, by invocation time.
    pub operations: Vec<OperationRecord>,
    /// For each of `operations`, its position in the checked history.
    pub history_positions: Vec<usize>,
    /// How many operations the key had before shrinking.
    pub key_operations: usize,
    /// Whether the shrink reached a minimal subset.
    pub shrink: ShrinkStatus,
    /// The longest sequence of `operations` (indices into it) the search could linearize
    /// before every continuation failed: the trouble starts right after it.
    pub longest_linearizable_prefix: Vec<usize>,
}

/// One key's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyResult {
    /// The key.
    pub key: Bytes,
    /// Its operations in the history.
    pub operations: usize,
    /// Search steps the verdict took (not counting shrinking).
    pub steps: u64,
    /// The verdict.
    pub verdict: KeyVerdict,
    /// When linearizable, the order the key's operations took effect in, as positions in the
    /// checked history: the witness the search found. Operations that cannot have had an
    /// effect (definite failures, reads with no answer, unknown writes nobody could observe)
    /// are left out. Empty otherwise.
    pub linearization: Vec<usize>,
}

/// One key's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// Some order of the operations is consistent with a register and with real time.
    Linearizable,
    /// No such order exists.
    NotLinearizable(Counterexample),
    /// The search hit a bound before deciding.
    Unknown(Inconclusive),
}

/// The result of checking a history: one entry per key, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckResult {
    /// Per-key results.
    pub keys: Vec<KeyResult>,
}

impl CheckResult {
    /// The overall verdict.
    pub fn verdict(&self) -> Verdict {
        let verdicts = self.keys.iter().map(|key| &key.verdict);
        if verdicts.clone().any(|verdict| matches!(verdict, KeyVerdict::NotLinearizable(_))) {
            Verdict::NotLinearizable
        } else if verdicts.clone().any(|verdict| matches!(verdict, KeyVerdict::Unknown(_))) {
            Verdict::Unknown
        } else {
            Verdict::Linearizable
        }
    }

    /// Whether the history was shown linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.verdict() == Verdict::Linearizable
    }

    /// The counterexamples, one per failing key.
    pub fn counterexamples(&self) -> impl Iterator<Item = &Counterexample> {
        self.keys.iter().filter_map(|key| match &key.verdict {
            KeyVerdict::NotLinearizable(counterexample) => Some(counterexample),
            KeyVerdict::Linearizable | KeyVerdict::Unknown(_) => None,
        })
    }

    /// The total search steps over all keys.
    pub fn steps(&self) -> u64 {
        self.keys.iter().map(|key| key.steps).sum()
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operations: usize = self.keys.iter().map(|key| key.operations).sum();
        let verdict = match self.verdict() {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown (too complex to decide)",
        };
        let keys = self.keys.len();
        let plural = if keys == 1 { "" } else { "s" };
        writeln!(
            f,
            "{verdict}: {operations} operations on {keys} key{plural}, {} search steps",
            self.steps()
        )?;
        for key in &self.keys {
            match &key.verdict {
                KeyVerdict::Linearizable => {}
                KeyVerdict::NotLinearizable(counterexample) => write!(f, "{counterexample}")?,
                KeyVerdict::Unknown(why) => {
                    writeln!(f, "key {}: {} operations, {why}", DisplayBytes(&key.key), key.operations)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shrink = match self.shrink {
            ShrinkStatus::Minimal => "minimal",
            ShrinkStatus::BudgetExhausted => "shrink budget exhausted",
            ShrinkStatus::Skipped => "not shrunk",
        };
        writeln!(
            f,
            "key {}: not linearizable; {} of its {} operations still fail ({shrink}):",
            DisplayBytes(&self.key),
            self.operations.len(),
            self.key_operations,
        )?;
        let timeline = Timeline::new(&self.operations);
        for (index, record) in self.operations.iter().enumerate() {
            let complete = record.complete_time.map_or_else(|| "-".into(), |time| alloc::format!("{time}"));
            writeln!(
                f,
                "  #{index:<3} client {:<4} [{:>6}, {:>6}]  {}  {} -> {}",
                record.client,
                record.invoke_time,
                complete,
                timeline.bar(record),
                DisplayOp(&record.op),
                DisplayObserved(&record.observed),
            )?;
        }
        let prefix: Vec<_> =
            self.longest_linearizable_prefix.iter().map(|index| alloc::format!("#{index}")).collect();
        if prefix.is_empty() {
            writeln!(f, "  no operation can be linearized first")
        } else {
            writeln!(f, "  longest linearizable prefix: {}; nothing can follow it", prefix.join(", "))
        }
    }
}

/// Draws each operation's interval on a shared axis of the distinct times (order, not scale).
struct Timeline {
    times: Vec<u64>,
}

impl Timeline {
    /// The most columns a bar may take; beyond that the axis is compressed.
    const COLUMNS_MAX: usize = 48;

    fn new(records: &[OperationRecord]) -> Timeline {
        let times: BTreeSet<u64> = records
            .iter()
            .flat_map(|record| [Some(record.invoke_time), record.complete_time])
            .flatten()
            .collect();
        Timeline { times: times.into_iter().collect() }
    }

    fn columns(&self) -> usize {
        self.times.len().clamp(1, Self::COLUMNS_MAX)
    }

    fn column(&self, time: u64) -> usize {
        let rank = self.times.partition_point(|&t| t < time);
        rank * (self.columns() - 1) / (self.times.len().max(2) - 1)
    }

    fn bar(&self, record: &OperationRecord) -> alloc::string::String {
        let mut bar = alloc::vec![' '; self.columns()];
        let start = self.column(record.invoke_time);
        match record.complete_time {
            Some(time) => {
                let end = self.column(time);
                bar[start..=end].fill('-');
                bar[end] = '|';
            }
            // An unknown outcome may take effect until the end of time.
            None => bar[start..].fill('.'),
        }
        bar[start] = '|';
        bar.into_iter().collect()
    }
}

/// Bytes as a quoted string when printable, hex otherwise; long values are cut.
pub(crate) struct DisplayBytes<'a>(pub(crate) &'a [u8]);

impl fmt::Display for DisplayBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN_BYTES_MAX: usize = 32;
        let shown = &self.0[..self.0.len().min(SHOWN_BYTES_MAX)];
        let cut = if self.0.len() > shown.len() { "…" } else { "" };
        match core::str::from_utf8(shown) {
            Ok(text) if text.chars().all(|c| !c.is_control()) => write!(f, "{text:?}{cut}"),
            _ => {
                f.write_str("0x")?;
                for byte in shown {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str(cut)
            }
        }
    }
}

struct DisplayOptional<'a>(Option<&'a Bytes>);

impl fmt::Display for DisplayOptional<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{}", DisplayBytes(value)),
            None => f.write_str("absent"),
        }
    }
}

struct DisplayOp<'a>(&'a Op);

impl fmt::Display for DisplayOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Op::Get { .. } => f.write_str("get"),
            Op::Put { value, .. } => write!(f, "put {}", DisplayBytes(value)),
            Op::Delete { .. } => f.write_str("delete"),
            Op::CompareAndSwap { expected, new, .. } => {
                write!(f, "cas {} -> {}", DisplayOptional(expected.as_ref()), DisplayBytes(new))
            }
        }
    }
}

struct DisplayObserved<'a>(&'a Observed);

impl fmt::Display for DisplayObserved<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Observed::Value(value) => write!(f, "{}", DisplayOptional(value.as_ref())),
            Observed::Done => f.write_str("ok"),
            Observed::Swapped(true) => f.write_str("swapped"),
            Observed::Swapped(false) => f.write_str("not swapped"),
            Observed::Failed => f.write_str("failed"),
            Observed::Unknown => f.write_str("unknown"),
        }
    }
}
