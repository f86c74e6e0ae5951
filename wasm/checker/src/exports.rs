//! The module's one export: [`HistoryChecker`], fed the history as data.

use alloc::format;
use raft_core::linearizability::{History, HistoryReport, TimeUnit};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::IncrementalChecker;

/// Checks histories for the widget's history panel, remembering each key's result.
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

    /// The report on `history` (the `history` field of `SimCluster.historyData()`):
    /// `raft_core::linearizability::HistoryReport` as it serializes (`verdict`, `summary`,
    /// `operations` with their linearization points, `violations`).
    ///
    /// # Errors
    /// `TypeError` if `history` is not a history.
    pub fn check(&mut self, history: JsValue) -> Result<JsValue, JsValue> {
        let history: History =
            serde_wasm_bindgen::from_value(history).map_err(|e| type_error(&format!("history: {e}")))?;
        let result = self.0.check(&history);
        let report = HistoryReport::new(&history, &result, TimeUnit::Ms);
        let serializer = serde_wasm_bindgen::Serializer::json_compatible();
        report.serialize(&serializer).map_err(|e| type_error(&format!("{e}")))
    }

    /// How many keys the last `check` searched (the others were unchanged).
    #[wasm_bindgen(getter, js_name = keysChecked)]
    pub fn keys_checked(&self) -> usize {
        self.0.keys_checked()
    }
}

/// A JavaScript `TypeError` with `message`.
fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}
