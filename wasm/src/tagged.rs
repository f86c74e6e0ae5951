//! Inputs cross to and from JavaScript as `{type: 'crash', node: 3}` (the `type` field names
//! the kind), but [`InputObject`] is an externally tagged enum (`{crash: {node: 3}}`) in Rust.
//!
//! Why: serde reads an internally tagged enum (`#[serde(tag = "type")]`) by first buffering the
//! whole object into its generic `Content` tree, because the tag may come after the fields.
//! That buffering is instantiated once per variant and was the largest single item in the wasm
//! module (about 90 KB of code before wasm-opt, 7%). JavaScript objects let us read `type`
//! first, so the move between the two shapes is a property copy here instead.

use alloc::format;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::errors::type_error;
use crate::input::InputObject;

/// The name of the field that says which kind an input is.
const TAG: &str = "type";

/// Reads `{type: kind, ...fields}` as an [`InputObject`].
///
/// # Errors
/// `TypeError` naming what is wrong: not an object, no `type`, an unknown kind or field, a
/// value of the wrong type.
pub fn input_from_js(value: &JsValue) -> Result<InputObject, JsValue> {
    let fail = |message: &str| type_error(&format!("input: {message}"));
    if !value.is_object() || Array::is_array(value) {
        return Err(fail("expected an object such as {type: 'crash', node: 3}"));
    }
    let kind = Reflect::get(value, &JsValue::from_str(TAG))
        .ok()
        .and_then(|kind| kind.as_string())
        .ok_or_else(|| fail("missing field `type`"))?;
    // A shallow copy without `type`: the variant's own fields, which deny unknown fields.
    let fields = Object::assign(&Object::new(), value.unchecked_ref());
    Reflect::delete_property(&fields, &JsValue::from_str(TAG)).map_err(|_| fail("unreadable object"))?;
    let wrapper = Object::new();
    Reflect::set(&wrapper, &JsValue::from_str(&kind), &fields).map_err(|_| fail("unreadable object"))?;
    let input: InputObject =
        serde_wasm_bindgen::from_value(wrapper.into()).map_err(|e| fail(&format!("{e}")))?;
    // serde's `deny_unknown_fields` does not reach the fields of an externally tagged enum's
    // variants: every field given must be one the kind writes back.
    let known = input_to_js(&input)?;
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        if !Reflect::has(&known, &key).unwrap_or(false) {
            let name = key.as_string().unwrap_or_default();
            return Err(fail(&format!("unknown field `{name}` for `{kind}`")));
        }
    }
    Ok(input)
}

/// Writes `input` as `{type: kind, ...fields}`.
///
/// # Errors
/// A serialisation failure (never in practice) becomes a `TypeError`.
pub fn input_to_js(input: &InputObject) -> Result<JsValue, JsValue> {
    let wrapped = serde_wasm_bindgen::to_value(input).map_err(|e| type_error(&format!("{e}")))?;
    let Some(kind) = Object::keys(wrapped.unchecked_ref::<Object>()).get(0).as_string() else {
        return Err(type_error("an input serialised without its kind"));
    };
    let fields = Reflect::get(&wrapped, &JsValue::from_str(&kind)).unwrap_or(JsValue::UNDEFINED);
    let object = Object::new();
    Reflect::set(&object, &JsValue::from_str(TAG), &JsValue::from_str(&kind))
        .map_err(|_| type_error("cannot build an input object"))?;
    if fields.is_object() {
        Object::assign(&object, fields.unchecked_ref());
    }
    Ok(object.into())
}
