//! Canonical JSON (sorted keys, no whitespace) and `sha256:` digests.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialize a value as canonical JSON: object keys sorted by code point, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    String::from_utf8(canonical_bytes(value)).expect("JSON text is UTF-8")
}

/// The canonical JSON's bytes, written straight into one buffer: no string per key or scalar,
/// no map lookups (keys are sorted with their values).
fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Keys are unique, so an unstable sort gives the one order. `String`'s order is
            // byte order, which for UTF-8 is code point order.
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("a string serializes");
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => serde_json::to_writer(&mut *out, other).expect("a scalar serializes"),
    }
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<64 hex>` over the canonical JSON of `value`.
pub fn digest(value: &Value) -> String {
    format!("sha256:{}", sha256_hex(&canonical_bytes(value)))
}

/// `<prefix>` + the first 20 hex characters of the canonical digest of `value`.
pub fn short_id(prefix: &str, value: &Value) -> String {
    let hex = sha256_hex(&canonical_bytes(value));
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

    /// The straight-to-bytes writer gives what serialising every key and scalar on its own and
    /// looking each value up by key gave (the first implementation, kept here as the oracle).
    #[test]
    fn canonical_json_is_what_per_item_serialisation_gave() {
        fn oracle(value: &Value, out: &mut String) {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, k) in keys.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&serde_json::to_string(k).unwrap());
                        out.push(':');
                        oracle(&map[k.as_str()], out);
                    }
                    out.push('}');
                }
                Value::Array(items) => {
                    out.push('[');
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        oracle(v, out);
                    }
                    out.push(']');
                }
                other => out.push_str(&serde_json::to_string(other).unwrap()),
            }
        }
        let values = [
            json!({}),
            json!([]),
            json!(null),
            json!("plain"),
            json!({
                "z": [1, -2, 1.5, 1e300, u64::MAX, i64::MIN, true, false, null],
                "\u{e9}t\u{e9}": {"b": "line\nbreak \"quoted\" \\ \u{1} </tag>", "a": []},
                "A": {"nested": [{"y": 2, "x": {"\u{1F600}": "emoji", "\u{ffff}": 0}}]},
                "": "empty key",
                "a\"b": "\t",
            }),
        ];
        for v in values {
            let mut expected = String::new();
            oracle(&v, &mut expected);
            assert_eq!(canonical_json(&v), expected);
            assert_eq!(
                digest(&v),
                format!("sha256:{}", sha256_hex(expected.as_bytes()))
            );
        }
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
