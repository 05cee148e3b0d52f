//! Refuse secret-looking keys and values before anything reaches the ledger.

use crate::error::{Error, Result};
use regex_lite::Regex;
use serde_json::Value;
use std::sync::LazyLock;

static KEY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(^|[_-])(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|cookie|credential|connection[_-]?string|database[_-]?url|read[_-]?url|write[_-]?url)($|[_-])").unwrap()
});
static VALUE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(postgres(?:ql)?://|mysql://|mariadb://|Bearer\s+[A-Za-z0-9._~+/=-]+|syn_wbr_[A-Za-z0-9._~+/=-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----|(^|[\s;])(password|pwd)\s*=\s*[^\s;]+)").unwrap()
});

/// Substrings (ASCII lowercase) that every match of `KEY_RE` contains. The `*key` names are
/// found by their first word, not by `key`, which the protocol's own `primary_key` and
/// `idempotency_key` contain.
const KEY_HINTS: Hints = Hints::new(&[
    "passw",
    "secret",
    "token",
    "api",
    "access",
    "private",
    "cookie",
    "credential",
    "connection",
    "url",
]);
/// Substrings (ASCII lowercase) that every match of `VALUE_RE` contains.
const VALUE_HINTS: Hints = Hints::new(&["://", "bearer", "syn_wbr_", "-----begin", "passw", "pwd"]);

/// What a masked value reads as.
pub const REDACTED: &str = "<redacted>";

/// `value` with every credential-like string and every value under a secret-like or
/// `authorization` key replaced by [`REDACTED`], and whether anything was. Used where text from
/// outside (a source row a customer typed into, a handler's receipt details) must be shown or
/// stored without refusing the whole record.
pub fn redact_secrets(value: &Value) -> (Value, bool) {
    let mut changed = false;
    let out = redact(value, &mut changed);
    (out, changed)
}

fn redact(value: &Value, changed: &mut bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let secret_key =
                        is_secret_key(k) || k.to_ascii_lowercase().contains("authorization");
                    if secret_key && !v.is_null() {
                        *changed = true;
                        (k.clone(), Value::String(REDACTED.into()))
                    } else {
                        (k.clone(), redact(v, changed))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, changed)).collect()),
        Value::String(s) if is_secret_value(s) => {
            *changed = true;
            Value::String(REDACTED.into())
        }
        other => other.clone(),
    }
}

/// Walk `value`; fail with `SECRET_MATERIAL_REJECTED` at the first secret-like key or value.
///
/// Every key and string in a ledger record passes through here, so the regexes (the definition
/// of "secret-like") only run on text that contains one of their literal parts: both are
/// ASCII-case-insensitive, so text without any of those parts, compared in ASCII lowercase,
/// cannot match. Paths are only spelled out for the error.
pub fn assert_no_secret_material(value: &Value, root: &str) -> Result<()> {
    check(root, |path| walk(value, path))
}

/// [`assert_no_secret_material`] for a list of values, checked (and spelled) as one array.
pub fn assert_no_secret_material_in_list(items: &[Value], root: &str) -> Result<()> {
    check(root, |path| walk_items(items, path))
}

fn check<'a>(
    root: &str,
    walk: impl FnOnce(&mut Vec<Seg<'a>>) -> Option<&'static str>,
) -> Result<()> {
    let mut path = Vec::new();
    match walk(&mut path) {
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

/// Up to 16 non-empty ASCII-lowercase substrings, found in one pass over a text compared in
/// ASCII lowercase. Each hint is looked for at its rarest byte (its anchor, by English letter
/// frequency): `anchored[b]` has bit `i` set when hint `i`'s anchor is byte `b` (either case),
/// so most bytes of a text cost one table lookup and few lead to a comparison.
struct Hints {
    hints: &'static [&'static str],
    /// Where each hint's anchor is in it.
    anchor_at: [usize; 16],
    anchored: [u16; 256],
}

/// Separators, then letters from the most to the least frequent in English text; other bytes
/// (`:`, `/`, digits) count as rarer than any of these.
const COMMON_FIRST: &[u8] = b"_-etaoinshrdlcumwfgypbvkjxqz";

const fn rarity(b: u8) -> usize {
    let mut i = 0;
    while i < COMMON_FIRST.len() {
        if COMMON_FIRST[i] == b {
            return i;
        }
        i += 1;
    }
    COMMON_FIRST.len()
}

impl Hints {
    const fn new(hints: &'static [&'static str]) -> Hints {
        assert!(hints.len() <= 16);
        let mut anchored = [0u16; 256];
        let mut anchor_at = [0usize; 16];
        let mut i = 0;
        while i < hints.len() {
            let h = hints[i].as_bytes();
            assert!(!h.is_empty());
            let mut j = 0;
            while j < h.len() {
                assert!(h[j].is_ascii() && !h[j].is_ascii_uppercase());
                if rarity(h[j]) > rarity(h[anchor_at[i]]) {
                    anchor_at[i] = j;
                }
                j += 1;
            }
            let b = h[anchor_at[i]];
            anchored[b as usize] |= 1 << i;
            anchored[b.to_ascii_uppercase() as usize] |= 1 << i;
            i += 1;
        }
        Hints {
            hints,
            anchor_at,
            anchored,
        }
    }

    /// `text`, in ASCII lowercase, contains one of the hints. Bytes of a multi-byte UTF-8
    /// character are never ASCII, so they match no hint byte, as they would not after
    /// lowercasing the text's ASCII characters.
    fn found_in(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        for (at, &b) in bytes.iter().enumerate() {
            let mut hits = self.anchored[b as usize];
            while hits != 0 {
                let i = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                let hint = self.hints[i].as_bytes();
                let found = at
                    .checked_sub(self.anchor_at[i])
                    .and_then(|start| bytes.get(start..start + hint.len()))
                    .is_some_and(|t| t.eq_ignore_ascii_case(hint));
                if found {
                    return true;
                }
            }
        }
        false
    }
}

fn is_secret_key(k: &str) -> bool {
    KEY_HINTS.found_in(k) && KEY_RE.is_match(k)
}

fn is_secret_value(s: &str) -> bool {
    VALUE_HINTS.found_in(s) && VALUE_RE.is_match(s)
}

/// The first secret-like field or value (`path` is left pointing at it).
fn walk<'a>(value: &'a Value, path: &mut Vec<Seg<'a>>) -> Option<&'static str> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Seg::Key(k));
                if is_secret_key(k) {
                    return Some("field");
                }
                if let Some(what) = walk(v, path) {
                    return Some(what);
                }
                path.pop();
            }
            None
        }
        Value::Array(items) => walk_items(items, path),
        Value::String(s) if is_secret_value(s) => Some("value"),
        _ => None,
    }
}

fn walk_items<'a>(items: &'a [Value], path: &mut Vec<Seg<'a>>) -> Option<&'static str> {
    for (i, v) in items.iter().enumerate() {
        path.push(Seg::Index(i));
        if let Some(what) = walk(v, path) {
            return Some(what);
        }
        path.pop();
    }
    None
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
            "primary_key",
            "idempotency_key",
            "x-Access-Key",
            "rapid_key",
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
        for k in keys {
            assert_eq!(is_secret_key(k), KEY_RE.is_match(k), "key {k:?}");
        }
        for v in values {
            assert_eq!(is_secret_value(v), VALUE_RE.is_match(v), "value {v:?}");
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

    /// The one-pass search finds a hint exactly when the text, in ASCII lowercase, contains it:
    /// every text of up to three pieces (hints, their halves, other case, non-ASCII letters).
    #[test]
    fn hints_are_found_as_a_lowercase_substring_search_finds_them() {
        let pieces = [
            "",
            "x",
            "_",
            "PASS",
            "w",
            "Url",
            "ur",
            ":/",
            "/",
            "BEAR",
            "er",
            "-----",
            "Begin",
            "syn_",
            "WBR_",
            "k\u{e4}",
            "\u{41a}ey",
            "token",
            "\u{212A}",
            "aPi",
            "acc",
            "Ess",
            "PRIV",
            "ate",
        ];
        let naive = |text: &str, hints: &Hints| {
            let lower = text.to_ascii_lowercase();
            hints.hints.iter().any(|h| lower.contains(h))
        };
        let (mut texts, mut found) = (0, 0);
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let text = format!("{a}{b}{c}");
                    for hints in [&KEY_HINTS, &VALUE_HINTS] {
                        let expected = naive(&text, hints);
                        assert_eq!(hints.found_in(&text), expected, "{text:?}");
                        texts += 1;
                        found += usize::from(expected);
                    }
                }
            }
        }
        // Both answers are exercised, for both lists.
        assert!(found > 100 && texts - found > 100, "{found} of {texts}");
    }

    #[test]
    fn a_list_is_checked_and_spelled_as_one_array() {
        let items = [json!({"ok": 1}), json!(["fine", "Bearer abc"])];
        match assert_no_secret_material_in_list(&items, "evidence_bundle.items").unwrap_err() {
            Error::SecretMaterial { what, path } => assert_eq!(
                (what, path.as_str()),
                ("value", "evidence_bundle.items[1][1]")
            ),
            e => panic!("{e:?}"),
        }
        assert!(assert_no_secret_material_in_list(&items[..1], "x").is_ok());
        assert!(assert_no_secret_material_in_list(&[], "x").is_ok());
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
