//! What a column can hold, learned from the source's catalog: used to refuse at propose time a
//! value the column would round, truncate or reject at apply time, and to decide how a write
//! advances the conflict guard column.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `conflict_guard.advance`: how a write moves the version column so that a second proposal
/// made against the old row can never apply on top of the first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardAdvance {
    /// Chosen from the column's type at apply time: integers `+1`, timestamps to the database's
    /// current time (strictly later than the old value, at the column's precision).
    #[default]
    Auto,
    /// Set to the database's current time, strictly later than the old value.
    Timestamp,
    /// `+1`.
    Increment,
    /// The application (a trigger, the in-process callback) advances it; the runner checks that
    /// it moved and refuses to commit when it did not.
    Application,
}

/// What a guard column's name says about how it moves, for `advance: auto` at config load
/// (the column's real type decides at apply time; a name that says neither is refused at load).
pub fn guess_advance(column: &str) -> Option<GuardAdvance> {
    let c = column.to_ascii_lowercase();
    let words: Vec<&str> = c.split(|ch: char| !ch.is_ascii_alphanumeric()).collect();
    let has = |w: &str| words.contains(&w);
    if c.contains("version") || has("rev") || c.contains("revision") || has("seq") || has("lsn") {
        return Some(GuardAdvance::Increment);
    }
    if c.ends_with("_at")
        || c.ends_with("_on")
        || c.ends_with("_ts")
        || c.ends_with("time")
        || c.ends_with("timestamp")
        || c.contains("update")
        || c.contains("modified")
        || c.contains("changed")
        || c.ends_with("date")
        || c.ends_with("dt")
        || c.contains("stamp")
    {
        return Some(GuardAdvance::Timestamp);
    }
    None
}

/// The value domain of one source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Whole numbers in `min..=max`.
    Integer {
        min: i128,
        max: i128,
    },
    /// Exact decimals; `None` where the column leaves precision or scale open.
    Decimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Float,
    Boolean,
    /// Date-times with `precision` fractional-second digits (0..=6).
    Timestamp {
        precision: u32,
    },
    Text,
    /// Anything else (dates, UUIDs, JSON, enums): the database checks it.
    Other,
}

impl ColumnKind {
    pub(crate) const I16: ColumnKind = ColumnKind::Integer {
        min: i16::MIN as i128,
        max: i16::MAX as i128,
    };
    pub(crate) const I32: ColumnKind = ColumnKind::Integer {
        min: i32::MIN as i128,
        max: i32::MAX as i128,
    };
    pub(crate) const I64: ColumnKind = ColumnKind::Integer {
        min: i64::MIN as i128,
        max: i64::MAX as i128,
    };

    /// A signed or unsigned integer of `bits`.
    pub(crate) fn int(bits: u32, unsigned: bool) -> ColumnKind {
        if unsigned {
            ColumnKind::Integer {
                min: 0,
                max: (1i128 << bits) - 1,
            }
        } else {
            ColumnKind::Integer {
                min: -(1i128 << (bits - 1)),
                max: (1i128 << (bits - 1)) - 1,
            }
        }
    }
}

/// The most significant digits a JSON number (an IEEE double once parsed) carries exactly.
const EXACT_DIGITS: usize = 15;

/// Why `value` cannot be written to a column of `kind` exactly as given, if it cannot.
pub fn value_problem(kind: ColumnKind, value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        Value::Bool(_) => {
            return match kind {
                ColumnKind::Boolean | ColumnKind::Text | ColumnKind::Other => None,
                _ => Some("must be a number, not a boolean".into()),
            };
        }
        _ => return Some("must be a single value".into()),
    };
    let from_number = value.is_number();
    match kind {
        ColumnKind::Integer { min, max } => match text.parse::<i128>() {
            Ok(n) if n >= min && n <= max => None,
            Ok(_) => Some(format!("is outside the column's range {min}..{max}")),
            Err(_) if decimal_parts(&text).is_some() => {
                Some("must be a whole number for an integer column".into())
            }
            Err(_) => Some("must be a whole number".into()),
        },
        ColumnKind::Decimal { precision, scale } => {
            let Some((int_digits, frac_digits)) = decimal_parts(&text) else {
                return Some("must be a plain decimal number".into());
            };
            let significant = text
                .trim_start_matches(['-', '+'])
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>();
            let significant = significant.trim_start_matches('0').len();
            if from_number && significant > EXACT_DIGITS {
                return Some(format!(
                    "has more than {EXACT_DIGITS} significant digits, more than a JSON number keeps exactly"
                ));
            }
            if let Some(s) = scale
                && frac_digits > s as usize
            {
                return Some(format!("has more than {s} decimal places"));
            }
            if let Some(p) = precision
                && int_digits > (p - scale.unwrap_or(0)) as usize
            {
                return Some(format!("is too large for the column (precision {p})"));
            }
            None
        }
        ColumnKind::Float => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => None,
            _ => Some("must be a finite number".into()),
        },
        ColumnKind::Boolean
        | ColumnKind::Timestamp { .. }
        | ColumnKind::Text
        | ColumnKind::Other => None,
    }
}

/// Digits before and after the point of a plain decimal (`-12.50` → (2, 2)); `None` for anything
/// else (exponents, words, empty).
fn decimal_parts(text: &str) -> Option<(usize, usize)> {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int_digits = int.trim_start_matches('0').len();
    let frac_digits = frac.trim_end_matches('0').len();
    Some((int_digits, frac_digits))
}

/// How a runner write moves the guard column forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// `column + 1`.
    Increment,
    /// The database's current time, strictly later than the old value, at `precision`
    /// fractional digits.
    Timestamp { precision: u32 },
    /// Left to the application; the runner checks that it moved.
    Application,
}

impl Advance {
    /// The smallest step at the column's precision, in microseconds.
    pub fn step_micros(precision: u32) -> i64 {
        10i64.pow(6 - precision.min(6))
    }
}

/// The advance rule for a guard column of `kind` under the configured `advance`, or why the
/// runner cannot advance it.
pub fn advance_rule(kind: ColumnKind, configured: GuardAdvance) -> Result<Advance, String> {
    match (configured, kind) {
        (GuardAdvance::Application, _) => Ok(Advance::Application),
        (GuardAdvance::Auto | GuardAdvance::Increment, ColumnKind::Integer { .. }) => {
            Ok(Advance::Increment)
        }
        (
            GuardAdvance::Auto | GuardAdvance::Timestamp,
            ColumnKind::Timestamp { precision },
        ) => Ok(Advance::Timestamp { precision }),
        (GuardAdvance::Increment, _) => {
            Err("advance is increment but the column is not an integer".into())
        }
        (GuardAdvance::Timestamp, _) => {
            Err("advance is timestamp but the column is not a date-time".into())
        }
        (GuardAdvance::Auto, _) => Err(
            "the column is neither an integer nor a date-time; set conflict_guard.advance to application if your database advances it"
                .into(),
        ),
    }
}

/// The next value of a date-time kept as text (SQLite): `now`, or one step at the text's own
/// precision past `old` when `now` is not later, written in `old`'s layout (`T` or space,
/// fractional digits, `Z` / `+hh:mm` / no zone). `None` when `old` is not such a date-time.
pub fn next_timestamp_text(old: &str, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    use chrono::{Duration, FixedOffset, NaiveDateTime, TimeZone};
    let old = old.trim();
    let sep = old.chars().nth(10)?;
    if !matches!(sep, 'T' | ' ') || old.len() < 19 {
        return None;
    }
    let (body, zone) = match old.rfind(['Z', '+']).or_else(|| {
        // A '-' after the time part starts an offset; the ones in the date do not.
        old[19..].find('-').map(|i| i + 19)
    }) {
        Some(i) if i >= 19 => (&old[..i], &old[i..]),
        _ => (old, ""),
    };
    let digits = body.get(20..).unwrap_or("");
    if !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 9 {
        return None;
    }
    let naive =
        NaiveDateTime::parse_from_str(&body.replacen(sep, "T", 1), "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let offset = match zone {
        "" | "Z" => FixedOffset::east_opt(0)?,
        z => {
            let (sign, hm) = z.split_at(1);
            let (h, m) = hm.split_once(':')?;
            let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
            FixedOffset::east_opt(if sign == "-" { -secs } else { secs })?
        }
    };
    let old_at = offset.from_local_datetime(&naive).single()?;
    let step_ns = 10i64.pow(9 - digits.len() as u32);
    let now = now.with_timezone(&offset);
    let truncate = |t: chrono::DateTime<FixedOffset>| {
        let ns = t.timestamp_subsec_nanos() as i64;
        t - Duration::nanoseconds(ns % step_ns)
    };
    let next = truncate(now).max(old_at + Duration::nanoseconds(step_ns));
    let mut text = next
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
        .replacen('T', &sep.to_string(), 1);
    if !digits.is_empty() {
        let frac = format!("{:09}", next.timestamp_subsec_nanos());
        text.push('.');
        text.push_str(&frac[..digits.len()]);
    }
    text.push_str(zone);
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_timestamps_advance_in_their_own_layout() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T10:00:00.123456Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            next_timestamp_text("2025-01-01T09:00:00.000Z", now).as_deref(),
            Some("2026-01-01T10:00:00.123Z")
        );
        assert_eq!(
            next_timestamp_text("2025-01-01 09:00:00", now).as_deref(),
            Some("2026-01-01 10:00:00")
        );
        // A version already in the future (clock skew) still moves forward by one step.
        assert_eq!(
            next_timestamp_text("2027-05-05T09:00:00.999Z", now).as_deref(),
            Some("2027-05-05T09:00:01.000Z")
        );
        assert_eq!(
            next_timestamp_text("2026-01-01T12:00:00+02:00", now).as_deref(),
            Some("2026-01-01T12:00:01+02:00")
        );
        assert_eq!(
            next_timestamp_text("2026-01-01T05:00:00-05:00", now).as_deref(),
            Some("2026-01-01T05:00:01-05:00")
        );
        assert!(next_timestamp_text("not a time", now).is_none());
        assert!(next_timestamp_text("42", now).is_none());
    }

    #[test]
    fn integers_refuse_fractions_and_out_of_range() {
        let k = ColumnKind::I32;
        assert!(value_problem(k, &json!(2)).is_none());
        assert!(value_problem(k, &json!(2.5)).unwrap().contains("whole"));
        assert!(value_problem(k, &json!(2.0)).unwrap().contains("whole"));
        assert!(value_problem(k, &json!(3_000_000_000i64)).is_some());
        assert!(value_problem(ColumnKind::int(8, true), &json!(-1)).is_some());
        assert!(value_problem(ColumnKind::int(8, true), &json!(255)).is_none());
        assert!(value_problem(k, &json!("12")).is_none());
        assert!(value_problem(k, &json!("twelve")).is_some());
    }

    #[test]
    fn decimals_keep_scale_precision_and_exactness() {
        let k = ColumnKind::Decimal {
            precision: Some(12),
            scale: Some(2),
        };
        assert!(value_problem(k, &json!(2500.25)).is_none());
        assert!(value_problem(k, &json!(2500.5)).is_none());
        assert!(
            value_problem(k, &json!(2500.255))
                .unwrap()
                .contains("decimal places")
        );
        assert!(
            value_problem(k, &json!(12345678901.0))
                .unwrap()
                .contains("too large")
        );
        assert!(value_problem(k, &json!("9999999999.99")).is_none());
        let open = ColumnKind::Decimal {
            precision: None,
            scale: None,
        };
        assert!(
            value_problem(open, &json!(0.1234567890123456))
                .unwrap()
                .contains("significant")
        );
        assert!(value_problem(open, &json!("0.12345678901234567890")).is_none());
        assert!(value_problem(open, &json!(1e300)).is_some());
    }

    #[test]
    fn advance_follows_the_column_type() {
        assert_eq!(
            advance_rule(ColumnKind::I64, GuardAdvance::Auto),
            Ok(Advance::Increment)
        );
        assert_eq!(
            advance_rule(ColumnKind::Timestamp { precision: 3 }, GuardAdvance::Auto),
            Ok(Advance::Timestamp { precision: 3 })
        );
        assert!(advance_rule(ColumnKind::Text, GuardAdvance::Auto).is_err());
        assert!(advance_rule(ColumnKind::I32, GuardAdvance::Timestamp).is_err());
        assert_eq!(
            advance_rule(ColumnKind::Text, GuardAdvance::Application),
            Ok(Advance::Application)
        );
        assert_eq!(Advance::step_micros(6), 1);
        assert_eq!(Advance::step_micros(0), 1_000_000);
    }
}
