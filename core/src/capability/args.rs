//! Model-facing argument validation: reserved and unknown names, types, bounds, enums.

use crate::config::validate::RESERVED_ARG_NAMES;
use crate::config::{ArgType, Capability};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Check raw call arguments against the capability's declared args. Runs before any read.
pub fn validate_args(cap: &Capability, args: &Value) -> Result<Map<String, Value>> {
    let obj = match args {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => {
            return Err(Error::argument(
                "ARGUMENT_TYPE_INVALID",
                "arguments must be a JSON object.",
            ));
        }
    };
    // Trust names first, so a spoofed tenant is always reported as such.
    for key in obj.keys() {
        if RESERVED_ARG_NAMES.contains(&key.as_str()) {
            return Err(Error::argument(
                "MODEL_CANNOT_OVERRIDE_BINDING",
                format!("{key} is trusted context and cannot be supplied as a model argument."),
            ));
        }
    }
    for key in obj.keys() {
        if cap.arg(key).is_none() {
            return Err(Error::argument(
                "ARGUMENT_UNKNOWN",
                format!("{key} is not an argument of {}.", cap.name),
            ));
        }
    }
    for (name, spec) in &cap.args {
        let Some(v) = obj.get(name) else {
            if spec.required {
                return Err(Error::argument(
                    "ARGUMENT_REQUIRED",
                    format!("{name} is required."),
                ));
            }
            continue;
        };
        if v.is_null() && !spec.required {
            continue;
        }
        let type_ok = match spec.kind {
            ArgType::String => v.is_string(),
            ArgType::Number => v.is_number(),
            ArgType::Boolean => v.is_boolean(),
        };
        if !type_ok {
            return Err(Error::argument(
                "ARGUMENT_TYPE_INVALID",
                format!("{name} must be a {}.", spec.kind.as_str()),
            ));
        }
        if let (Some(max), Some(s)) = (spec.max_length, v.as_str())
            && s.chars().count() as u64 > max
        {
            return Err(Error::argument(
                "ARGUMENT_TOO_LONG",
                format!("{name} is longer than {max}."),
            ));
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = spec.minimum
                && n < min
            {
                return Err(Error::argument(
                    "ARGUMENT_BELOW_MINIMUM",
                    format!("{name} must be at least {min}."),
                ));
            }
            if let Some(max) = spec.maximum
                && n > max
            {
                return Err(Error::argument(
                    "ARGUMENT_ABOVE_MAXIMUM",
                    format!("{name} must be at most {max}."),
                ));
            }
        }
        if let Some(allowed) = &spec.allowed
            && !allowed.iter().any(|a| same_value(a, v))
        {
            return Err(Error::argument(
                "ARGUMENT_NOT_ALLOWED",
                format!("{name} is not an allowed value."),
            ));
        }
    }
    Ok(obj)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
