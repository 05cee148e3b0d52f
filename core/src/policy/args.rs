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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cap() -> Capability {
        serde_json::from_value(json!({
            "name": "billing.propose_credit", "kind": "read", "source": "app",
            "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
            "args": {
                "invoice_id": {"type": "string", "max_length": 8},
                "cents": {"type": "integer", "required": false, "minimum": 0, "maximum": 500},
                "rate": {"type": "number", "required": false, "enum": [1, 2.5]},
                "note": {"type": "string", "required": false, "nullable": true},
                "urgent": {"type": "boolean", "required": false}
            },
            "lookup": {"id_from_arg": "invoice_id"},
            "visible_columns": ["id"]
        }))
        .unwrap()
    }

    fn refused(args: Value) -> (String, Option<String>) {
        let e = validate_args(&cap(), &args).unwrap_err();
        (e.code().to_string(), e.field().map(String::from))
    }

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(refused(json!([1])).0, "ARGUMENT_TYPE_INVALID");
        assert!(
            validate_args(&cap(), &Value::Null).is_err(),
            "invoice_id is required"
        );
    }

    #[test]
    fn a_trust_name_in_any_spelling_is_a_spoofed_binding() {
        for name in [
            "tenant_id",
            "TenantID",
            "tenant-id",
            "ｔｅｎａｎｔ＿ｉｄ",
            "principal",
        ] {
            let (code, field) = refused(json!({"invoice_id": "INV-1", name: "acme"}));
            assert_eq!(
                (code.as_str(), field.as_deref()),
                ("MODEL_CANNOT_OVERRIDE_BINDING", Some(name))
            );
        }
    }

    #[test]
    fn unknown_and_missing_arguments_are_named() {
        assert_eq!(
            refused(json!({"invoice_id": "INV-1", "sql": "x"})),
            ("ARGUMENT_UNKNOWN".into(), Some("sql".into()))
        );
        assert_eq!(
            refused(json!({})),
            ("ARGUMENT_REQUIRED".into(), Some("invoice_id".into()))
        );
        assert_eq!(
            refused(json!({"invoice_id": null})),
            ("ARGUMENT_REQUIRED".into(), Some("invoice_id".into()))
        );
    }

    #[test]
    fn types_lengths_bounds_and_enums_are_checked() {
        let base = |k: &str, v: Value| json!({"invoice_id": "INV-1", k: v});
        assert_eq!(
            refused(base("cents", json!(1.5))).0,
            "ARGUMENT_TYPE_INVALID"
        );
        assert_eq!(
            refused(base("urgent", json!("yes"))).0,
            "ARGUMENT_TYPE_INVALID"
        );
        assert_eq!(refused(json!({"invoice_id": 7})).0, "ARGUMENT_TYPE_INVALID");
        assert_eq!(
            refused(json!({"invoice_id": "INV-123456"})).0,
            "ARGUMENT_TOO_LONG"
        );
        assert_eq!(
            refused(json!({"invoice_id": "a\u{0}b"})).0,
            "ARGUMENT_INVALID_CHARACTER"
        );
        assert_eq!(
            refused(base("cents", json!(-1))).0,
            "ARGUMENT_BELOW_MINIMUM"
        );
        assert_eq!(
            refused(base("cents", json!(501))).0,
            "ARGUMENT_ABOVE_MAXIMUM"
        );
        assert_eq!(refused(base("rate", json!(3))).0, "ARGUMENT_NOT_ALLOWED");
        // 1 and 1.0 are the same allowed value.
        assert!(validate_args(&cap(), &base("rate", json!(1.0))).is_ok());
        // Length counts characters, not bytes.
        assert!(validate_args(&cap(), &json!({"invoice_id": "ééééééé"})).is_ok());
    }

    #[test]
    fn null_means_omitted_unless_the_argument_is_nullable() {
        let out = validate_args(
            &cap(),
            &json!({"invoice_id": "INV-1", "cents": null, "note": null}),
        )
        .unwrap();
        assert!(
            !out.contains_key("cents"),
            "null for a non-nullable optional is left out"
        );
        assert_eq!(
            out.get("note"),
            Some(&Value::Null),
            "null is kept where nullable"
        );
    }
}
