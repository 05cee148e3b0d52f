//! Model-facing argument validation: reserved and unknown names, types, bounds, enums.

use crate::config::is_reserved_arg_name;
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
    // Trust names first, so a spoofed tenant is always reported as such, however it is spelled.
    for key in obj.keys() {
        if is_reserved_arg_name(key) {
            return Err(Error::argument_field(
                "MODEL_CANNOT_OVERRIDE_BINDING",
                key.as_str(),
                format!("{key} is trusted context and cannot be supplied as a model argument."),
            ));
        }
    }
    for key in obj.keys() {
        if cap.arg(key).is_none() {
            return Err(Error::argument_field(
                "ARGUMENT_UNKNOWN",
                key.as_str(),
                format!("{key} is not an argument of {}.", cap.name),
            ));
        }
    }
    let mut omitted = Vec::new();
    for (name, spec) in &cap.args {
        let Some(v) = obj.get(name) else {
            if spec.required {
                return Err(Error::argument_field(
                    "ARGUMENT_REQUIRED",
                    name.as_str(),
                    format!("{name} is required."),
                ));
            }
            continue;
        };
        if v.is_null() {
            if spec.required {
                return Err(Error::argument_field(
                    "ARGUMENT_REQUIRED",
                    name.as_str(),
                    format!("{name} is required and cannot be null."),
                ));
            }
            // An explicit null sets NULL only where the arg allows it (`nullable`); elsewhere it
            // means what leaving the arg out means (clients in strict-schema mode send null for
            // every optional field they do not use).
            if !spec.nullable {
                omitted.push(name.clone());
            }
            continue;
        }
        let type_ok = match spec.kind {
            ArgType::String => v.is_string(),
            ArgType::Number => v.is_number(),
            ArgType::Integer => v.is_i64() || v.is_u64(),
            ArgType::Boolean => v.is_boolean(),
        };
        if !type_ok {
            return Err(Error::argument_field(
                "ARGUMENT_TYPE_INVALID",
                name.as_str(),
                match spec.kind {
                    ArgType::Integer => format!("{name} must be a whole number."),
                    kind => format!("{name} must be a {}.", kind.as_str()),
                },
            ));
        }
        if v.as_str().is_some_and(|s| s.contains('\0')) {
            return Err(Error::argument_field(
                "ARGUMENT_INVALID_CHARACTER",
                name.as_str(),
                format!("{name} contains a NUL character."),
            ));
        }
        if let (Some(max), Some(s)) = (spec.max_length, v.as_str())
            && s.chars().count() as u64 > max
        {
            return Err(Error::argument_field(
                "ARGUMENT_TOO_LONG",
                name.as_str(),
                format!("{name} is longer than {max}."),
            ));
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = spec.minimum
                && n < min
            {
                return Err(Error::argument_field(
                    "ARGUMENT_BELOW_MINIMUM",
                    name.as_str(),
                    format!("{name} must be at least {min}."),
                ));
            }
            if let Some(max) = spec.maximum
                && n > max
            {
                return Err(Error::argument_field(
                    "ARGUMENT_ABOVE_MAXIMUM",
                    name.as_str(),
                    format!("{name} must be at most {max}."),
                ));
            }
        }
        if let Some(allowed) = &spec.allowed
            && !allowed.iter().any(|a| same_value(a, v))
        {
            return Err(Error::argument_field(
                "ARGUMENT_NOT_ALLOWED",
                name.as_str(),
                format!("{name} is not an allowed value."),
            ));
        }
    }
    let mut obj = obj;
    for name in omitted {
        obj.remove(&name);
    }
    Ok(obj)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
