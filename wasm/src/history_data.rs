//! The client history as data, for a checker in another module: the docs widget's package
//! leaves the linearizability checker out (a page with a widget must transfer at most 250 KB,
//! issue 16), and a widget with `panels="history"` hands [`SimCluster::history_data`] to
//! web/pkg-checker's `HistoryChecker` (the crate `flotilla-wasm-checker`).

use alloc::vec::Vec;
use raft_core::linearizability::History;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::cluster::SimCluster;
use crate::errors::type_error;
use crate::history::Band;

/// What the history panel draws, before the check.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryData<'a> {
    history: History,
    bands: &'a [Band],
    /// Node ids, for the node rows.
    nodes: Vec<u64>,
    /// Simulated time now: bars still in flight end here.
    now: u64,
}

#[wasm_bindgen]
impl SimCluster {
    /// Changes whenever the client history or the node bands change: poll it to know when to
    /// check again.
    #[wasm_bindgen(getter, js_name = historyRevision)]
    pub fn history_revision(&self) -> f64 {
        let (asked, answered) = self.simulation().client_read_counts();
        (self.history_recorder().revision() + asked + answered) as f64
    }

    /// `{history, bands, nodes, now}`: the client history up to now (as
    /// `raft_core::linearizability::History` serializes), the node bands, the node ids and
    /// the simulated time. A checker module's `check(data.history)` gives the report.
    ///
    /// # Errors
    /// Never in practice; a serialisation failure becomes a `TypeError`.
    #[wasm_bindgen(js_name = historyData)]
    pub fn history_data(&self) -> Result<JsValue, JsValue> {
        let simulation = self.simulation();
        let data = HistoryData {
            history: self.history_recorder().history(simulation),
            bands: self.history_recorder().bands(),
            nodes: simulation.nodes().iter().map(|node| node.id.0).collect(),
            now: simulation.now_ms(),
        };
        let serializer = serde_wasm_bindgen::Serializer::json_compatible();
        data.serialize(&serializer).map_err(|e| type_error(&alloc::format!("{e}")))
    }
}
