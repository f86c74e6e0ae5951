//! The history panel's bindings: [`HistoryChecker`] checks a cluster's client history and
//! keeps each key's result, re-checking only the keys whose operations changed, so the panel
//! can follow a run as it plays without a full re-check per frame.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;
use raft_core::linearizability::{
    check_key, CheckOptions, CheckResult, History, HistoryReport, KeyResult, Observed, TimeUnit,
};
use raft_core::Bytes;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::cluster::SimCluster;
use crate::errors::type_error;
use crate::history::Band;

/// Most operations [`generated_history`] makes: enough for the panel's scale test.
#[cfg(feature = "bench")]
pub const GENERATED_OPERATIONS_MAX: u32 = 100_000;

/// What the panel draws.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PanelData<'a> {
    report: HistoryReport,
    bands: &'a [Band],
    /// Node ids, for the node rows.
    nodes: Vec<u64>,
    /// Simulated time now: bars still in flight end here.
    now: u64,
}

#[wasm_bindgen]
impl SimCluster {
    /// Changes whenever the client history or the node bands change: poll it to know when to
    /// ask a [`HistoryChecker`] again.
    #[wasm_bindgen(getter, js_name = historyRevision)]
    pub fn history_revision(&self) -> f64 {
        let (asked, answered) = self.simulation().client_read_counts();
        (self.history_recorder().revision() + asked + answered) as f64
    }
}

/// Checks histories for the panel, remembering each key's result.
#[wasm_bindgen]
#[derive(Default)]
pub struct HistoryChecker {
    /// Per key: a fingerprint of its operations when checked, and the result.
    keys: BTreeMap<Bytes, (u64, KeyResult)>,
    checked_last: usize,
}

#[wasm_bindgen]
impl HistoryChecker {
    /// A checker that remembers nothing yet.
    #[wasm_bindgen(constructor)]
    pub fn new() -> HistoryChecker {
        HistoryChecker::default()
    }

    /// `{report, bands, nodes, now}` for `cluster`'s history up to now: `report` as
    /// `raft_core::linearizability::HistoryReport` serializes (`verdict`, `summary`,
    /// `operations` with their linearization points, `violations`), `bands` the node bands.
    ///
    /// # Errors
    /// Never in practice; a serialisation failure becomes a `TypeError`.
    pub fn check(&mut self, cluster: &SimCluster) -> Result<JsValue, JsValue> {
        let simulation = cluster.simulation();
        let history = cluster.history_recorder().history(simulation);
        let result = self.check_incrementally(&history);
        let data = PanelData {
            report: HistoryReport::new(&history, &result, TimeUnit::Ms),
            bands: cluster.history_recorder().bands(),
            nodes: simulation.nodes().iter().map(|node| node.id.0).collect(),
            now: simulation.now_ms(),
        };
        to_js(&data)
    }

    /// How many keys the last `check` searched (the others were unchanged): 0 when nothing
    /// changed.
    #[wasm_bindgen(getter, js_name = keysChecked)]
    pub fn keys_checked(&self) -> usize {
        self.checked_last
    }
}

impl HistoryChecker {
    /// Checks `history`, searching only keys whose operations changed since the last call.
    pub fn check_incrementally(&mut self, history: &History) -> CheckResult {
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

/// `{report, bands: [], nodes: [], now}` for a generated linearizable history of `operations`
/// operations by `clients` clients on `keys` keys, for the panel's scale test.
///
/// # Errors
/// `RangeError` for more than 100,000 operations or no clients or keys.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = generatedHistory)]
pub fn generated_history(operations: u32, clients: u32, keys: u32, seed: f64) -> Result<JsValue, JsValue> {
    use crate::errors::range_error;
    use raft_core::linearizability::{check, linearizable_history, GeneratorConfig};
    if operations > GENERATED_OPERATIONS_MAX || clients == 0 || keys == 0 {
        return Err(range_error(&format!(
            "want 0..={GENERATED_OPERATIONS_MAX} operations and at least one client and key"
        )));
    }
    let config = GeneratorConfig {
        operations: operations as usize,
        clients: clients as usize,
        keys: keys as usize,
        ..GeneratorConfig::default()
    };
    let history = linearizable_history(&config, seed as u64);
    let result = check(&history);
    let now = history.records().iter().filter_map(|record| record.complete_time).max().unwrap_or(0);
    let data = PanelData {
        report: HistoryReport::new(&history, &result, TimeUnit::Ms),
        bands: &[],
        nodes: Vec::new(),
        now,
    };
    to_js(&data)
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&serializer).map_err(|e| type_error(&format!("{e}")))
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
        let mut checker = HistoryChecker::new();
        assert!(checker.check_incrementally(&builder.clone().build()).is_linearizable());
        assert_eq!(checker.checked_last, 2);
        assert!(checker.check_incrementally(&builder.clone().build()).is_linearizable());
        assert_eq!(checker.checked_last, 0, "nothing changed");
        builder.complete(y, 6, Observed::Done).unwrap();
        let stale = builder.invoke(3, 10, Op::get("y"));
        builder.complete(stale, 11, Observed::Value(None)).unwrap();
        let result = checker.check_incrementally(&builder.build());
        assert_eq!(checker.checked_last, 1, "only y changed");
        assert!(!result.is_linearizable(), "and its stale read is caught: {result}");
    }
}
