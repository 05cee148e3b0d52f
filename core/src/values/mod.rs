//! What the runner reads and writes: rows, what a column can hold and how a version column
//! moves, and how versions compare. No database access here.

pub mod kinds;
pub mod version;

use serde_json::{Map, Value};

/// One row as column → JSON scalar, in the order the columns were selected.
pub type Row = Map<String, Value>;

/// `^[A-Za-z_][A-Za-z0-9_]*$`: the only identifiers that ever reach SQL.
pub fn is_safe_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
