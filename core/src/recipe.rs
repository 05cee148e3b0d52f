//! Recipes: reviewed starter specs for common business actions (loaded and checked, not served).

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

const STRINGS: &[&str] = &[
    "id",
    "title",
    "summary",
    "expected_table_type",
    "recommended_primary_key",
    "recommended_tenant_key",
    "recommended_conflict_column",
];
const STRING_ARRAYS: &[&str] = &[
    "required_columns",
    "visible_columns",
    "allowed_write_columns",
    "semantic_tools",
    "notes",
];

/// A recipe file that passed the loader's checks.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub id: String,
    pub title: String,
    pub semantic_tools: Vec<String>,
    pub raw: Value,
}

/// Check a recipe value; every missing or mistyped field is reported.
pub fn parse_recipe(value: &Value, src: &str) -> Result<Recipe> {
    let mut problems = Vec::new();
    for k in STRINGS {
        if value
            .get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().is_empty())
            .unwrap_or(true)
        {
            problems.push(format!("recipe {src} requires string {k}"));
        }
    }
    for k in STRING_ARRAYS {
        let ok = value
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|x| x.as_str().map(|s| !s.is_empty()).unwrap_or(false))
            })
            .unwrap_or(false);
        if !ok {
            problems.push(format!("recipe {src} requires string[] {k}"));
        }
    }
    match value.get("spec").and_then(Value::as_object) {
        None => problems.push(format!("recipe {src} requires object spec")),
        Some(spec) => {
            for k in ["namespace", "table", "primary_key"] {
                if spec.get(k).and_then(Value::as_str).is_none() {
                    problems.push(format!("recipe {src} spec requires {k}"));
                }
            }
            for k in [
                "schema",
                "table",
                "primary_key",
                "tenant_key",
                "conflict_column",
            ] {
                if let Some(s) = spec.get(k).and_then(Value::as_str)
                    && !crate::sql::is_safe_identifier(s)
                {
                    problems.push(format!("recipe {src} spec {k} is not a safe identifier"));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::ConfigFile {
            code: "RECIPE_INVALID",
            message: problems.join("\n"),
        });
    }
    Ok(Recipe {
        id: value["id"].as_str().unwrap_or_default().to_string(),
        title: value["title"].as_str().unwrap_or_default().to_string(),
        semantic_tools: value["semantic_tools"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        raw: value.clone(),
    })
}

/// Load a recipe from a file.
pub fn load_recipe(path: &Path) -> Result<Recipe> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
        code: "RECIPE_NOT_FOUND",
        message: format!("cannot read recipe {}: {e}", path.display()),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::ConfigFile {
        code: "RECIPE_NOT_JSON",
        message: format!("recipe {} is not JSON: {e}", path.display()),
    })?;
    parse_recipe(&value, &path.display().to_string())
}
