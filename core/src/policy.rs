//! The runner's "may this happen" checks that hold wherever they run: at propose, on the row
//! as read, and again at apply, on the row as locked inside the write transaction.

use crate::config::{NumericBound, TransitionGuard};
use crate::error::{Error, Result};
use crate::values::Row;
use serde_json::Value;

/// The reviewed transition guards against `current` (the row as read, or as locked at apply):
/// every patched guarded column must move along an allowed edge.
pub(crate) fn check_transitions<'a>(
    guards: &[(String, TransitionGuard)],
    proposed: impl Fn(&str) -> Option<&'a Value>,
    current: &Row,
) -> Result<()> {
    for (col, guard) in guards {
        let Some(next) = proposed(col) else { continue };
        let current = current.get(guard.from_column.as_deref().unwrap_or(col));
        let (Some(Value::String(cur)), Value::String(next)) = (current, next) else {
            return Err(Error::policy(
                "PATCH_TRANSITION_TYPE_INVALID",
                format!("{col} transition needs string states."),
            ));
        };
        if !guard.allowed.get(cur).is_some_and(|to| to.contains(next)) {
            return Err(Error::policy(
                "PATCH_TRANSITION_NOT_ALLOWED",
                format!("{col} cannot transition from {cur} to {next}."),
            ));
        }
    }
    Ok(())
}

/// Numeric bounds over the patch values `proposed` gives (the proposal's patch, or the plan's).
pub(crate) fn check_bounds_of<'a>(
    bounds: &[(String, NumericBound)],
    proposed: impl Fn(&str) -> Option<&'a Value>,
) -> Result<()> {
    for (col, bound) in bounds {
        let Some(v) = proposed(col) else { continue };
        let Some(n) = v.as_f64() else {
            return Err(Error::policy(
                "PATCH_NUMERIC_BOUND_TYPE_INVALID",
                format!("{col} must be a number to be bounded."),
            ));
        };
        if let Some(min) = bound.minimum
            && n < min
        {
            return Err(Error::policy(
                "PATCH_BELOW_MINIMUM",
                format!("{col} must be at least {min}."),
            ));
        }
        if let Some(max) = bound.maximum
            && n > max
        {
            return Err(Error::policy(
                "PATCH_ABOVE_MAXIMUM",
                format!("{col} must be at most {max}."),
            ));
        }
    }
    Ok(())
}
