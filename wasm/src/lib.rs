//! WebAssembly bindings of raft-core for the Flotilla playground.
use wasm_bindgen::prelude::*;

/// The version of the Flotilla core compiled into this module.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
