//! Refuse secret-looking keys and values before anything reaches the ledger.

use crate::error::{Error, Result};
use regex_lite::Regex;
use serde_json::Value;
use std::sync::LazyLock;

static KEY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(^|[_-])(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|cookie|credential|connection[_-]?string|database[_-]?url|read[_-]?url|write[_-]?url)($|[_-])").unwrap()
});
static VALUE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(postgres(?:ql)?://|mysql://|Bearer\s+[A-Za-z0-9._~+/=-]+|syn_wbr_[A-Za-z0-9._~+/=-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----)").unwrap()
});

/// Walk `value`; fail with `SECRET_MATERIAL_REJECTED` at the first secret-like key or value.
pub fn assert_no_secret_material(value: &Value, root: &str) -> Result<()> {
    walk(value, root)
}

fn walk(value: &Value, path: &str) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{path}.{k}");
                if KEY_RE.is_match(k) {
                    return Err(Error::SecretMaterial {
                        what: "field",
                        path: p,
                    });
                }
                walk(v, &p)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::String(s) if VALUE_RE.is_match(s) => Err(Error::SecretMaterial {
            what: "value",
            path: path.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejects_spec_cases() {
        for (v, what) in [
            (json!({"before": {"database_url": "x"}}), "key"),
            (json!({"bearer": "Bearer should_not_persist"}), "value"),
            (json!({"api_key": 1}), "key"),
            (json!({"runner_token": "syn_wbr_abc"}), "key"),
            (json!({"note": "postgresql://u:p@h/db"}), "value"),
            (json!({"k": ["-----BEGIN RSA PRIVATE KEY-----"]}), "value"),
        ] {
            let e = assert_no_secret_material(&v, "x").unwrap_err();
            assert_eq!(e.code(), "SECRET_MATERIAL_REJECTED", "{what}: {v}");
        }
    }

    #[test]
    fn accepts_lookalikes() {
        for v in [
            json!({"credentials": 1}),
            json!({"passwordHash": "x"}),
            json!({"bearer": "no token here"}),
            json!({"tokenizer": 1}),
        ] {
            assert!(assert_no_secret_material(&v, "x").is_ok(), "{v}");
        }
    }
}
