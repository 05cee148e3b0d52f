//! Results cross to JavaScript as JSON text: serialised on the runtime thread, rebuilt on the JS
//! thread with one `JSON.parse`. Building the same object through napi costs one call per key
//! and value (an executor job is ~120 of them, tens of microseconds on the JS thread);
//! `JSON.parse` of the text is a single native call. It also never assigns through a
//! `__proto__` key: such a key stays an own data property, as in any parsed JSON. The way back
//! (an executor's receipt) is one `JSON.stringify` call, read with serde.

use crate::errors::Failure;
use napi::bindgen_prelude::{
    Env, Function, JsObjectValue, JsValue, ToNapiValue, Unknown, ValueType,
};
use napi::sys;
use serde::Serialize;

/// A JSON document on its way to JavaScript.
pub struct Json(String);

impl Json {
    pub fn value(v: &serde_json::Value) -> Json {
        Json(v.to_string())
    }

    pub fn of<T: Serialize + ?Sized>(v: &T) -> Result<Json, Failure> {
        serde_json::to_string(v)
            .map(Json)
            .map_err(|e| Failure::Core(synapsor_runner::Error::Internal(e.to_string())))
    }
}

/// What JavaScript handed back (an executor's receipt), read with one `JSON.stringify` rather
/// than a napi call per key. `undefined` (and functions, symbols) read as `null`; values
/// `JSON.stringify` refuses (a `BigInt`, a cycle) are an error, as the callback's own.
pub fn from_js(env: &Env, value: Unknown<'_>) -> napi::Result<serde_json::Value> {
    let json: napi::JSON = env.get_global()?.get_named_property_unchecked("JSON")?;
    let stringify: Function<Unknown, Unknown> = json.get_named_property_unchecked("stringify")?;
    let text = stringify.call(value)?;
    if text.get_type()? != ValueType::String {
        return Ok(serde_json::Value::Null);
    }
    let text: String = unsafe { text.cast()? };
    serde_json::from_str(&text).map_err(|e| napi::Error::from_reason(e.to_string()))
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(raw: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let env = Env::from_raw(raw);
        let json: napi::JSON = env.get_global()?.get_named_property_unchecked("JSON")?;
        let parse: Function<String, Unknown> = json.get_named_property_unchecked("parse")?;
        Ok(parse.call(val.0)?.raw())
    }
}
