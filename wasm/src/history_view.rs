//! The history panel's bindings: [`HistoryChecker`] checks a cluster's client history and
//! keeps each key's result, re-checking only the keys whose operations changed, so the panel
//! can follow a run as it plays without a full re-check per frame.

use alloc::format;
use alloc::vec::Vec;
use flotilla_wasm_checker::IncrementalChecker;
use raft_core::linearizability::{HistoryReport, TimeUnit};
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

/// Checks histories for the panel, remembering each key's result.
#[wasm_bindgen]
#[derive(Default)]
pub struct HistoryChecker(IncrementalChecker);

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
        let result = self.0.check(&history);
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
        self.0.keys_checked()
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
