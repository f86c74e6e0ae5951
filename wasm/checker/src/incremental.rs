//! [`IncrementalChecker`]: checks a history key by key, remembering each key's result, so that
//! a panel following a run as it plays re-checks only the keys whose operations changed.

use alloc::collections::BTreeMap;
use raft_core::linearizability::{check_key, CheckOptions, CheckResult, History, KeyResult, Observed};
use raft_core::Bytes;

/// Per key: a fingerprint of its operations when checked, and the result.
#[derive(Default)]
pub struct IncrementalChecker {
    keys: BTreeMap<Bytes, (u64, KeyResult)>,
    checked_last: usize,
}

impl IncrementalChecker {
    /// A checker that remembers nothing yet.
    pub fn new() -> IncrementalChecker {
        IncrementalChecker::default()
    }

    /// How many keys the last [`IncrementalChecker::check`] searched (the others were
    /// unchanged): 0 when nothing changed.
    pub fn keys_checked(&self) -> usize {
        self.checked_last
    }

    /// Checks `history`, searching only keys whose operations changed since the last call.
    pub fn check(&mut self, history: &History) -> CheckResult {
        let mut fingerprints: BTreeMap<&Bytes, u64> = BTreeMap::new();
        for (position, record) in history.records().iter().enumerate() {
            let observed = match &record.observed {
                Observed::Value(None) => 1,
                Observed::Value(Some(value)) => 2 + value.len() as u64,
                Observed::Done => 3,
                Observed::Swapped(swapped) => 4 + u64::from(*swapped),
                Observed::Failed => 6,
                Observed::Unknown => 7,
            };
            let fingerprint = fingerprints.entry(record.op.key()).or_insert(0xcbf2_9ce4_8422_2325);
            for part in
                [position as u64, record.invoke_time, record.complete_time.map_or(u64::MAX, |t| t), observed]
            {
                *fingerprint = (*fingerprint ^ part).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        self.checked_last = 0;
        let options = CheckOptions::default();
        let mut keys = BTreeMap::new();
        for (key, fingerprint) in fingerprints {
            let result = match self.keys.remove(key) {
                Some((seen, result)) if seen == fingerprint => result,
                _ => {
                    self.checked_last += 1;
                    check_key(history, key, &options)
                }
            };
            keys.insert(key.clone(), (fingerprint, result));
        }
        self.keys = keys;
        CheckResult { keys: self.keys.values().map(|(_, result)| result.clone()).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::linearizability::{HistoryBuilder, Op};

    #[test]
    fn only_changed_keys_are_searched_again() {
        let mut builder = HistoryBuilder::new();
        let x = builder.invoke(1, 0, Op::put("x", "1"));
        let y = builder.invoke(2, 0, Op::put("y", "1"));
        builder.complete(x, 5, Observed::Done).unwrap();
        let mut checker = IncrementalChecker::new();
        assert!(checker.check(&builder.clone().build()).is_linearizable());
        assert_eq!(checker.keys_checked(), 2);
        assert!(checker.check(&builder.clone().build()).is_linearizable());
        assert_eq!(checker.keys_checked(), 0, "nothing changed");
        builder.complete(y, 6, Observed::Done).unwrap();
        let stale = builder.invoke(3, 10, Op::get("y"));
        builder.complete(stale, 11, Observed::Value(None)).unwrap();
        let result = checker.check(&builder.build());
        assert_eq!(checker.keys_checked(), 1, "only y changed");
        assert!(!result.is_linearizable(), "and its stale read is caught: {result}");
    }
}
