//! JSON values across the boundary: `serde_json::Value` <-> plain Python objects.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// A Python object (dict, list, str, int, float, bool, None) for a JSON value.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    match KEYS.try_lock() {
        Ok(mut keys) => to_py_with(py, v, Some(&mut keys)),
        // Held by a conversion this one interrupted: the collector ran a finaliser (which may
        // also let another thread run) while that conversion was allocating. No cache this time.
        Err(_) => to_py_with(py, v, None),
    }
}

fn to_py_with<'py>(
    py: Python<'py>,
    v: &Value,
    mut keys: Option<&mut Keys>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py_with(py, item, keys.as_deref_mut())?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                let key = match keys.as_deref_mut() {
                    Some(keys) => keys.get(py, k),
                    None => PyString::new(py, k),
                };
                dict.set_item(key, to_py_with(py, v, keys.as_deref_mut())?)?;
            }
            dict.into_any()
        }
    })
}

/// Dict keys met before, kept as Python strings. Results and jobs repeat the same few keys
/// (protocol fields, column names), and a kept key needs neither a new string nor to be hashed
/// again by the dict. Bounded: past [`Keys::MAX`] keys (or for long keys) a new string is made.
struct Keys(HashMap<Box<str>, Py<PyString>, foldhash::fast::RandomState>);

// foldhash: seeded, and short keys hash in a few instructions, where SipHash would cost much of
// what the cache saves.
static KEYS: LazyLock<Mutex<Keys>> = LazyLock::new(|| Mutex::new(Keys(HashMap::default())));

impl Keys {
    const MAX: usize = 4096;
    const MAX_LEN: usize = 64;

    fn get<'py>(&mut self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        if let Some(k) = self.0.get(key) {
            return k.bind(py).clone();
        }
        let k = PyString::new(py, key);
        if key.len() <= Self::MAX_LEN && self.0.len() < Self::MAX {
            self.0.insert(key.into(), k.clone().unbind());
        }
        k
    }
}

/// A JSON value from a plain Python object; anything else is a `TypeError` naming the type.
pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_py_depth(obj, 0)
}

fn from_py_depth(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > 64 {
        return Err(PyValueError::new_err("value is nested too deeply"));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int subclass.
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract::<bool>()?));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyValueError::new_err("integer does not fit in 64 bits"));
    }
    if obj.is_instance_of::<PyFloat>() {
        let f = obj.extract::<f64>()?;
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err("NaN and infinity are not JSON numbers"));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::String(obj.extract::<String>()?));
    }
    if obj.is_instance_of::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in obj.extract::<Bound<'_, PyDict>>()?.iter() {
            let key = k
                .extract::<String>()
                .map_err(|_| PyTypeError::new_err("dict keys must be str"))?;
            map.insert(key, from_py_depth(&v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in obj.try_iter()? {
            out.push(from_py_depth(&item?, depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    Err(PyTypeError::new_err(format!(
        "{} is not JSON-compatible (use dict, list, str, int, float, bool or None)",
        obj.get_type().name()?
    )))
}
