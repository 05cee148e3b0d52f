//! Results cross to JavaScript as JSON text: serialised on the runtime thread, rebuilt on the JS
//! thread with one `JSON.parse`. Building the same object through napi costs one call per key
//! and value (an executor job is ~120 of them, tens of microseconds on the JS thread);
//! `JSON.parse` of the text is a single native call. It also never assigns through a
//! `__proto__` key: such a key stays an own data property, as in any parsed JSON.

use crate::errors::Failure;
use napi::bindgen_prelude::{Env, Function, JsObjectValue, JsValue, ToNapiValue, Unknown};
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

impl ToNapiValue for Json {
    unsafe fn to_napi_value(raw: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let env = Env::from_raw(raw);
        let json: napi::JSON = env.get_global()?.get_named_property_unchecked("JSON")?;
        let parse: Function<String, Unknown> = json.get_named_property_unchecked("parse")?;
        Ok(parse.call(val.0)?.raw())
    }
}
