//! Version values compared at microsecond precision, whatever text form a driver produced.

use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use regex_lite::Regex;
use serde_json::Value;
use std::sync::LazyLock;

static TS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}(?::?\d{2})?)?$",
    )
    .unwrap()
});

/// Normalize a version value: timestamps become `YYYY-MM-DD HH:MM:SS.ffffff` in UTC; other
/// values their trimmed text (`null` is empty).
pub fn normalize_version(v: &Value) -> String {
    let text = match v {
        Value::Null => return String::new(),
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let Some(c) = TS.captures(&text) else {
        return text;
    };
    let frac = c.get(3).map(|m| &m.as_str()[1..]).unwrap_or("");
    let micros: String = format!("{frac:0<6}").chars().take(6).collect();
    let naive = match NaiveDateTime::parse_from_str(
        &format!("{} {}.{micros}", &c[1], &c[2]),
        "%Y-%m-%d %H:%M:%S%.6f",
    ) {
        Ok(n) => n,
        Err(_) => return text,
    };
    let offset_secs = match c.get(4).map(|m| m.as_str()) {
        None => 0,
        Some(z) if z.eq_ignore_ascii_case("z") => 0,
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let digits: String = o[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            let h: i32 = digits[..2].parse().unwrap_or(0);
            let m: i32 = if digits.len() >= 4 {
                digits[2..4].parse().unwrap_or(0)
            } else {
                0
            };
            sign * (h * 3600 + m * 60)
        }
    };
    let Some(tz) = FixedOffset::east_opt(offset_secs) else {
        return text;
    };
    match tz.from_local_datetime(&naive).single() {
        Some(dt) => dt.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None => text,
    }
}

/// Whether two version values are the same at microsecond precision.
pub fn versions_match(a: &Value, b: &Value) -> bool {
    normalize_version(a) == normalize_version(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_vectors() {
        assert_eq!(
            normalize_version(&json!("2026-05-16T00:00:00Z")),
            "2026-05-16 00:00:00.000000"
        );
        assert!(versions_match(
            &json!("2026-05-16 00:00:00.123456"),
            &json!("2026-05-16T00:00:00.123456Z")
        ));
        assert!(!versions_match(
            &json!("2026-05-16 00:00:00.123456"),
            &json!("2026-05-16T00:00:00.123Z")
        ));
        assert!(versions_match(
            &json!("2026-06-20 14:31:08+00"),
            &json!("2026-06-20T14:31:08Z")
        ));
        assert!(versions_match(
            &json!("2026-06-20 07:31:08-07"),
            &json!("2026-06-20T14:31:08Z")
        ));
        assert!(versions_match(&json!(5), &json!("5")));
        assert_eq!(normalize_version(&Value::Null), "");
    }

    #[test]
    fn sub_millisecond_differences_are_conflicts() {
        assert!(!versions_match(
            &json!("2026-06-20T14:31:08.123456Z"),
            &json!("2026-06-20T14:31:08.123457Z")
        ));
        assert!(versions_match(
            &json!("2026-06-20T14:31:08.1234567Z"),
            &json!("2026-06-20T14:31:08.123456Z")
        ));
    }
}
