//! Canonical JSON (sorted keys, no whitespace) and `sha256:` digests.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialize a value as canonical JSON: object keys sorted by code point, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string serializes"));
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).expect("scalar serializes")),
    }
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<64 hex>` over the canonical JSON of `value`.
pub fn digest(value: &Value) -> String {
    format!("sha256:{}", sha256_hex(canonical_json(value).as_bytes()))
}

/// `<prefix>` + the first 20 hex characters of the canonical digest of `value`.
pub fn short_id(prefix: &str, value: &Value) -> String {
    let hex = sha256_hex(canonical_json(value).as_bytes());
    format!("{prefix}{}", &hex[..20])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn digest_is_independent_of_key_order() {
        let a = json!({"x": 1, "y": "two"});
        let b = json!({"y": "two", "x": 1});
        assert_eq!(digest(&a), digest(&b));
        assert!(digest(&a).starts_with("sha256:"));
        assert_eq!(digest(&a).len(), 7 + 64);
    }

    #[test]
    fn short_id_has_prefix_and_twenty_hex() {
        let id = short_id("wrp_", &json!({"a": 1}));
        assert!(id.starts_with("wrp_"));
        assert_eq!(id.len(), 24);
    }
}
