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

/// Substrings (ASCII lowercase) that every match of `KEY_RE` contains.
const KEY_HINTS: &[&str] = &[
    "passw",
    "secret",
    "token",
    "key",
    "cookie",
    "credential",
    "connection",
    "url",
];
/// Substrings (ASCII lowercase) that every match of `VALUE_RE` contains.
const VALUE_HINTS: &[&str] = &["://", "bearer", "syn_wbr_", "-----begin"];

/// Walk `value`; fail with `SECRET_MATERIAL_REJECTED` at the first secret-like key or value.
///
/// Every key and string in a ledger record passes through here, so the regexes (the definition
/// of "secret-like") only run on text that contains one of their literal parts: both are
/// ASCII-case-insensitive, so text without any of those parts, compared in ASCII lowercase,
/// cannot match. Paths are only spelled out for the error.
pub fn assert_no_secret_material(value: &Value, root: &str) -> Result<()> {
    let mut path = Vec::new();
    let mut lower = String::new();
    match walk(value, &mut path, &mut lower) {
        None => Ok(()),
        Some(what) => Err(Error::SecretMaterial {
            what,
            path: spell(root, &path),
        }),
    }
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn spell(root: &str, path: &[Seg<'_>]) -> String {
    let mut out = root.to_string();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// `text` may match a regex whose literal parts are `hints` (`lower` is scratch space).
fn might_match(text: &str, hints: &[&str], lower: &mut String) -> bool {
    lower.clear();
    lower.extend(text.chars().map(|c| c.to_ascii_lowercase()));
    hints.iter().any(|h| lower.contains(h))
}

fn is_secret_key(k: &str, lower: &mut String) -> bool {
    might_match(k, KEY_HINTS, lower) && KEY_RE.is_match(k)
}

fn is_secret_value(s: &str, lower: &mut String) -> bool {
    might_match(s, VALUE_HINTS, lower) && VALUE_RE.is_match(s)
}

/// The first secret-like field or value (`path` is left pointing at it).
fn walk<'a>(value: &'a Value, path: &mut Vec<Seg<'a>>, lower: &mut String) -> Option<&'static str> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Seg::Key(k));
                if is_secret_key(k, lower) {
                    return Some("field");
                }
                if let Some(what) = walk(v, path, lower) {
                    return Some(what);
                }
                path.pop();
            }
            None
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                if let Some(what) = walk(v, path, lower) {
                    return Some(what);
                }
                path.pop();
            }
            None
        }
        Value::String(s) if is_secret_value(s, lower) => Some("value"),
        _ => None,
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
    fn errors_name_the_path_of_the_first_secret() {
        let v = json!({"a": [{"ok": 1}, {"note": "see mysql://db"}], "z": {"api_key": 1}});
        match assert_no_secret_material(&v, "root").unwrap_err() {
            Error::SecretMaterial { what, path } => {
                assert_eq!((what, path.as_str()), ("value", "root.a[1].note"))
            }
            e => panic!("{e:?}"),
        }
        match assert_no_secret_material(&json!({"x": {"Write-URL": 1}}), "r").unwrap_err() {
            Error::SecretMaterial { what, path } => {
                assert_eq!((what, path.as_str()), ("field", "r.x.Write-URL"))
            }
            e => panic!("{e:?}"),
        }
    }

    /// The literal hints are a necessary condition: on every sample the shortcut decides as
    /// the regex alone does.
    #[test]
    fn hints_never_hide_a_regex_match() {
        let keys = [
            "password",
            "PASSWD",
            "x_Secret",
            "client-secret-v2",
            "Token",
            "tokenizer",
            "api_key",
            "APIKEY",
            "api-Key",
            "access_key",
            "private-key",
            "privatekey",
            "cookie",
            "CREDENTIAL",
            "credentials",
            "connection_string",
            "ConnectionString",
            "database_url",
            "read-url",
            "write_URL",
            "url",
            "hurl",
            "monkey",
            "key",
            "a_key_b",
            "passwordHash",
            "pass_word",
            "ТОКЕН",
            "tok\u{212A}en",
            "sec ret",
            "",
            "id",
        ];
        let values = [
            "postgres://u@h/d",
            "POSTGRESQL://x",
            "mysql://h",
            "MySQL://h",
            "http://x",
            "Bearer abc.def",
            "bearer\tX",
            "BEARER",
            "Bearer ",
            "syn_wbr_x",
            "SYN_WBR_abc",
            "syn_wbr_",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----begin private key-----",
            "-----BEGIN PUBLIC KEY-----",
            "plain text",
            "",
            "postgres:/x",
            "ключ://",
        ];
        let mut lower = String::new();
        for k in keys {
            assert_eq!(
                is_secret_key(k, &mut lower),
                KEY_RE.is_match(k),
                "key {k:?}"
            );
        }
        for v in values {
            assert_eq!(
                is_secret_value(v, &mut lower),
                VALUE_RE.is_match(v),
                "value {v:?}"
            );
        }
        // And the samples do exercise both answers.
        assert!(
            keys.iter().any(|k| KEY_RE.is_match(k)) && keys.iter().any(|k| !KEY_RE.is_match(k))
        );
        assert!(
            values.iter().any(|v| VALUE_RE.is_match(v))
                && values.iter().any(|v| !VALUE_RE.is_match(v))
        );
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
