//! JavaScript error values: `RangeError` for a value out of range, `TypeError` for a value of
//! the wrong shape. Messages are lowercase, like the core's.

use wasm_bindgen::JsValue;

/// A `RangeError` with `message`.
pub fn range_error(message: &str) -> JsValue {
    js_sys::RangeError::new(message).into()
}

/// A `TypeError` with `message`.
pub fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}
