//! The structural pass of config validation, driven by the published JSON Schema
//! (`core/schema/synapsor.runner.schema.json`): every field's type, shape, allowed values and
//! whether it is required are said once, there, for the runner and for editors alike. The schema
//! names the error each check reports (`x-code`, `x-message`); `validate.rs` adds the rules that
//! span fields.
//!
//! This walks the keywords the schema uses and no others (a test fails if the schema gains an
//! unsupported one). A general JSON Schema crate would bring some thirty crates into the core
//! and both bindings, and still would not report one error code per field. The schema is read
//! once per process into typed nodes with their patterns compiled, and a path is spelled out
//! only for a field that fails, so checking a config costs little more than reading it.

use super::ConfigIssue;
use regex_lite::Regex;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

/// The config schema as shipped (`synapsor-runner config schema` prints it).
pub const SCHEMA_TEXT: &str = include_str!("../../schema/synapsor.runner.schema.json");

static SCHEMA: LazyLock<Node> = LazyLock::new(|| {
    let mut root: Node = serde_json::from_str(SCHEMA_TEXT).expect("the bundled schema parses");
    root.compile();
    for def in root.defs.values_mut() {
        def.compile();
    }
    root
});

/// The keywords [`check`] understands; annotations (`description`, `$id`, …) are ignored.
/// After `$ref` come the nine checks on a value itself.
#[cfg(test)]
pub(crate) const KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "const",
    "enum",
    "pattern",
    "minLength",
    "minimum",
    "maximum",
    "minItems",
    "minProperties",
    "required",
    "properties",
    "propertyNames",
    "additionalProperties",
    "items",
    "allOf",
    "if",
    "then",
    "else",
    "not",
];

/// One schema node, as the walk needs it.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Node {
    #[serde(rename = "$ref")]
    reference: Option<String>,
    #[serde(rename = "type", deserialize_with = "names")]
    types: Vec<String>,
    #[serde(rename = "const")]
    constant: Option<Value>,
    #[serde(rename = "enum")]
    allowed: Option<Vec<Value>>,
    pattern: Option<String>,
    #[serde(rename = "minLength")]
    min_length: Option<usize>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    #[serde(rename = "minItems")]
    min_items: Option<usize>,
    #[serde(rename = "minProperties")]
    min_properties: Option<usize>,
    required: Vec<String>,
    properties: BTreeMap<String, Node>,
    #[serde(rename = "propertyNames")]
    property_names: Option<Box<Node>>,
    #[serde(rename = "additionalProperties")]
    additional: Additional,
    items: Option<Box<Node>>,
    #[serde(rename = "allOf")]
    all_of: Vec<Node>,
    #[serde(rename = "if")]
    condition: Option<Box<Node>>,
    then: Option<Box<Node>>,
    #[serde(rename = "else")]
    otherwise: Option<Box<Node>>,
    not: Option<Box<Node>>,
    #[serde(rename = "$defs")]
    defs: BTreeMap<String, Node>,
    #[serde(rename = "x-code")]
    code: Option<String>,
    #[serde(rename = "x-message")]
    message: Option<String>,
    #[serde(rename = "x-required-code")]
    required_code: Option<String>,
    #[serde(rename = "x-required-message")]
    required_message: Option<String>,
    #[serde(rename = "x-enum-code")]
    enum_code: Option<String>,
    #[serde(rename = "x-enum-message")]
    enum_message: Option<String>,
    #[serde(rename = "x-whole")]
    whole: bool,
    #[serde(rename = "x-value-codes")]
    value_codes: BTreeMap<String, (String, String)>,
    #[serde(skip)]
    regex: Option<Regex>,
}

/// `additionalProperties`: allowed (absent or `true`), refused (`false`), or checked.
#[derive(Default)]
enum Additional {
    #[default]
    Allowed,
    Refused,
    Checked(Box<Node>),
}

impl<'de> Deserialize<'de> for Additional {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Additional::Allowed),
            Value::Bool(false) => Ok(Additional::Refused),
            v @ Value::Object(_) => Node::deserialize(v)
                .map(|n| Additional::Checked(Box::new(n)))
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "additionalProperties is a boolean or a schema",
            )),
        }
    }
}

/// `type`: one name or several.
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(vec![s]),
        Value::Array(a) => a
            .into_iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| D::Error::custom("type names"))
            })
            .collect(),
        _ => Err(D::Error::custom("type is a name or names")),
    }
}

impl Node {
    /// Compile this node's pattern and its children's.
    fn compile(&mut self) {
        if let Some(p) = &self.pattern {
            self.regex = Some(Regex::new(p).expect("schema pattern"));
        }
        let boxed = [
            &mut self.property_names,
            &mut self.items,
            &mut self.condition,
            &mut self.then,
            &mut self.otherwise,
            &mut self.not,
        ];
        for child in boxed.into_iter().flatten() {
            child.compile();
        }
        if let Additional::Checked(child) = &mut self.additional {
            child.compile();
        }
        for child in self.properties.values_mut().chain(self.all_of.iter_mut()) {
            child.compile();
        }
    }
}

/// Where a value sits, spelled out only when it is reported.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Check `config` against the schema; the problems found, each with its code and path.
pub(crate) fn check(config: &Value, strict: bool) -> Vec<ConfigIssue> {
    let mut walk = Walk {
        strict,
        quiet: false,
        failed: false,
        errors: Vec::new(),
    };
    walk.node(&SCHEMA, config, &Path::Root, None, None);
    walk.errors
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

fn resolve(reference: &str) -> &'static Node {
    let name = reference
        .strip_prefix("#/$defs/")
        .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
    &SCHEMA.defs[name]
}

struct Walk {
    strict: bool,
    /// Only find out whether the value passes (for `if`, `not` and `x-whole`).
    quiet: bool,
    failed: bool,
    errors: Vec<ConfigIssue>,
}

impl Walk {
    fn report(&mut self, path: &Path, code: Option<&str>, message: Option<&str>, value: &Value) {
        self.failed = true;
        if self.quiet {
            return;
        }
        self.errors.push(ConfigIssue {
            path: path.to_string(),
            code: code.unwrap_or("INVALID_CONFIG_VALUE").into(),
            message: message
                .unwrap_or("This value is not allowed here.")
                .replace("{value}", &value.to_string()),
        });
    }

    /// `value` fails the check of node `note` (the node whose code applies).
    fn fail(&mut self, path: &Path, note: Option<&Node>, value: &Value, enum_failed: bool) {
        let Some(n) = note else {
            return self.report(path, None, None, value);
        };
        if let Some((code, message)) = value.as_str().and_then(|s| n.value_codes.get(s)) {
            self.report(path, Some(code), Some(message), value)
        } else if enum_failed && n.enum_code.is_some() {
            self.report(
                path,
                n.enum_code.as_deref(),
                n.enum_message.as_deref(),
                value,
            )
        } else {
            self.report(path, n.code.as_deref(), n.message.as_deref(), value)
        }
    }

    /// Whether `value` satisfies `schema`, reporting nothing.
    fn passes(&mut self, schema: &Node, value: &Value) -> bool {
        let mut quiet = Walk {
            strict: true,
            quiet: true,
            failed: false,
            errors: Vec::new(),
        };
        quiet.node(schema, value, &Path::Root, None, None);
        !quiet.failed
    }

    /// The checks on the value itself; false when it fails one (its contents are then not
    /// looked into).
    fn value_checks(&mut self, s: &Node, v: &Value, path: &Path, note: Option<&Node>) -> bool {
        let ok_type = s.types.is_empty() || s.types.iter().any(|t| type_matches(t, v));
        let shape_ok = ok_type
            && s.constant.as_ref().is_none_or(|c| c == v)
            && match v {
                Value::String(text) => {
                    s.regex.as_ref().is_none_or(|r| r.is_match(text))
                        && s.min_length.is_none_or(|n| text.chars().count() >= n)
                }
                Value::Number(n) => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    s.minimum.is_none_or(|m| x >= m) && s.maximum.is_none_or(|m| x <= m)
                }
                Value::Array(items) => s.min_items.is_none_or(|n| items.len() >= n),
                Value::Object(map) => s.min_properties.is_none_or(|n| map.len() >= n),
                _ => true,
            };
        if !shape_ok {
            self.fail(path, note, v, false);
            return false;
        }
        if let Some(allowed) = &s.allowed
            && !allowed.contains(v)
        {
            self.fail(path, note, v, true);
            return false;
        }
        if s.whole
            && let (Some(items), Value::Array(values)) = (&s.items, v)
            && !values.iter().all(|x| self.passes(items, x))
        {
            self.fail(path, note, v, false);
            return false;
        }
        true
    }

    /// A missing property: its own `x-required-code`, else its `x-code`.
    fn missing(&mut self, scopes: &[&BTreeMap<String, Node>], key: &str, path: &Path) {
        let node = scopes.iter().find_map(|p| p.get(key));
        let (code, message) = match node {
            Some(n) if n.required_code.is_some() => {
                (n.required_code.as_deref(), n.required_message.as_deref())
            }
            Some(n) => (n.code.as_deref(), n.message.as_deref()),
            None => (None, None),
        };
        self.failed = true;
        if self.quiet {
            return;
        }
        self.errors.push(ConfigIssue {
            path: Path::Key(path, key).to_string(),
            code: code.unwrap_or("REQUIRED_FIELD_MISSING").into(),
            message: message
                .map(String::from)
                .unwrap_or_else(|| format!("{key} is required.")),
        });
    }

    /// Check `v` against `s`. `note` is the node whose code a failure reports, inherited
    /// through `$ref` (the referring node wins); `outer` is the enclosing object schema's
    /// `properties` (for `required` inside `allOf`, `then` and `else`).
    fn node<'s>(
        &mut self,
        s: &'s Node,
        v: &Value,
        path: &Path,
        note: Option<&'s Node>,
        outer: Option<&'s BTreeMap<String, Node>>,
    ) {
        if self.quiet && self.failed {
            return;
        }
        let note = note.or(s.code.is_some().then_some(s));
        if let Some(r) = &s.reference {
            self.node(resolve(r), v, path, note, outer);
        }
        if !self.value_checks(s, v, path, note) {
            return;
        }
        if let Some(not) = &s.not
            && self.passes(not, v)
        {
            return self.fail(path, note, v, false);
        }
        let own = (!s.properties.is_empty()).then_some(&s.properties);
        if let Value::Object(map) = v {
            self.object(s, map, path, own, outer);
        }
        if let (Some(items), Value::Array(values)) = (&s.items, v)
            && !s.whole
        {
            for (i, item) in values.iter().enumerate() {
                self.node(items, item, &Path::Index(path, i), None, None);
            }
        }
        let scope = own.or(outer);
        for sub in &s.all_of {
            self.node(sub, v, path, None, scope);
        }
        if let Some(cond) = &s.condition {
            let branch = if self.passes(cond, v) {
                &s.then
            } else {
                &s.otherwise
            };
            if let Some(sub) = branch {
                self.node(sub, v, path, None, scope);
            }
        }
    }

    fn object<'s>(
        &mut self,
        s: &'s Node,
        map: &Map<String, Value>,
        path: &Path,
        own: Option<&'s BTreeMap<String, Node>>,
        outer: Option<&'s BTreeMap<String, Node>>,
    ) {
        if !s.required.is_empty() {
            let scopes: Vec<&BTreeMap<String, Node>> = own.into_iter().chain(outer).collect();
            for key in &s.required {
                if !map.contains_key(key) {
                    self.missing(&scopes, key, path);
                }
            }
        }
        if let Some(names) = &s.property_names {
            for key in map.keys() {
                self.node(
                    names,
                    &Value::String(key.clone()),
                    &Path::Key(path, key),
                    None,
                    None,
                );
            }
        }
        for (key, child) in map {
            let child_path = Path::Key(path, key);
            match own.and_then(|p| p.get(key)) {
                Some(sub) => self.node(sub, child, &child_path, None, None),
                None => match &s.additional {
                    Additional::Refused if self.strict => {
                        let message = format!("Unknown field {key}.");
                        self.report(&child_path, Some("UNKNOWN_FIELD"), Some(&message), child)
                    }
                    Additional::Checked(sub) => self.node(sub, child, &child_path, None, None),
                    _ => {}
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema as plain JSON, for the tests that look at its keywords.
    static RAW: LazyLock<Value> = LazyLock::new(|| serde_json::from_str(SCHEMA_TEXT).unwrap());

    fn visit(node: &Value, at: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{at}/{k}");
                    let is_map_of_schemas = matches!(k.as_str(), "properties" | "$defs");
                    if !is_map_of_schemas
                        && !k.starts_with("x-")
                        && !KEYWORDS.contains(&k.as_str())
                        && !matches!(k.as_str(), "$schema" | "$id" | "title" | "description")
                    {
                        out.push(here.clone());
                    }
                    if is_map_of_schemas {
                        for (name, sub) in child.as_object().unwrap() {
                            visit(sub, &format!("{here}/{name}"), out);
                        }
                    } else if matches!(k.as_str(), "allOf") {
                        for (i, sub) in child.as_array().unwrap().iter().enumerate() {
                            visit(sub, &format!("{here}/{i}"), out);
                        }
                    } else if matches!(
                        k.as_str(),
                        "items"
                            | "additionalProperties"
                            | "propertyNames"
                            | "if"
                            | "then"
                            | "else"
                            | "not"
                    ) {
                        visit(child, &here, out);
                    }
                }
            }
            Value::Bool(_) => {}
            other => panic!("{at}: schema node {other}"),
        }
    }

    #[test]
    fn the_storage_schema_pattern_is_the_ledger_s_rule() {
        let node = &SCHEMA.properties["storage"].properties["schema"];
        let long = "a".repeat(63);
        let longer = "a".repeat(64);
        for name in [
            "synapsor",
            "a1",
            "_x",
            "1a",
            "A",
            "",
            "a-b",
            long.as_str(),
            longer.as_str(),
        ] {
            let errors = {
                let mut w = Walk {
                    strict: true,
                    quiet: false,
                    failed: false,
                    errors: vec![],
                };
                w.node(node, &Value::from(name), &Path::Root, None, None);
                w.errors
            };
            assert_eq!(
                errors.is_empty(),
                crate::ledger::valid_schema_name(name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_schema_uses_only_keywords_the_walk_understands() {
        let mut unknown = Vec::new();
        visit(&RAW, "#", &mut unknown);
        assert!(unknown.is_empty(), "unsupported keywords: {unknown:?}");
    }

    #[test]
    fn every_field_that_can_fail_names_its_code() {
        // A node that checks something and has no x-code of its own must be reached through a
        // $ref from one that has (or sit where the code comes from elsewhere: if, not, items of
        // an x-whole array).
        fn walk(node: &Value, coded: bool, at: &str, out: &mut Vec<String>) {
            let Value::Object(map) = node else { return };
            let coded = coded || map.contains_key("x-code");
            // KEYWORDS[1..10]: the checks on a value itself.
            let checks = KEYWORDS[1..10].iter().any(|k| map.contains_key(*k));
            if checks && !coded && !map.contains_key("$ref") {
                out.push(at.to_string());
            }
            for (k, child) in map {
                match k.as_str() {
                    "properties" => {
                        for (name, sub) in child.as_object().unwrap() {
                            walk(sub, false, &format!("{at}/properties/{name}"), out);
                        }
                    }
                    "additionalProperties" | "propertyNames" => {
                        walk(child, false, &format!("{at}/{k}"), out)
                    }
                    "items" if map.get("x-whole") != Some(&Value::Bool(true)) => {
                        walk(child, false, &format!("{at}/items"), out)
                    }
                    "allOf" => {
                        for (i, sub) in child.as_array().unwrap().iter().enumerate() {
                            walk(sub, coded, &format!("{at}/allOf/{i}"), out);
                        }
                    }
                    "then" | "else" => walk(child, coded, &format!("{at}/{k}"), out),
                    _ => {}
                }
            }
        }
        let mut uncoded = Vec::new();
        for (name, def) in RAW["$defs"].as_object().unwrap() {
            // Shared leaf shapes get their code from the field that refers to them.
            if ["env_name", "identifier", "safe_name", "text"].contains(&name.as_str()) {
                continue;
            }
            walk(def, false, &format!("#/$defs/{name}"), &mut uncoded);
        }
        walk(&RAW, false, "#", &mut uncoded);
        assert!(
            uncoded.is_empty(),
            "checks without an error code: {uncoded:?}"
        );
    }

    /// Our walk and a general JSON Schema validator agree on which configs the schema accepts:
    /// the reference examples, the demo's config, and each of them broken in one of many ways.
    #[test]
    fn the_walk_agrees_with_a_general_json_schema_validator() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let general = jsonschema::options()
            .build(&RAW)
            .expect("a valid JSON Schema");
        let mut corpus: Vec<Value> = Vec::new();
        for entry in std::fs::read_dir(root.join("fixtures/examples")).unwrap() {
            let path = entry.unwrap().path().join("synapsor.runner.json");
            if let Ok(text) = std::fs::read_to_string(&path) {
                corpus.push(serde_json::from_str(&text).unwrap());
            }
        }
        corpus.push(serde_json::from_str(crate::demo::DEMO_CONFIG).unwrap());
        let breakages: Vec<(&str, Value)> = vec![
            ("/version", Value::from(2)),
            ("/mode", Value::from("yolo")),
            ("/extra", Value::from(1)),
            ("/storage", serde_json::json!({"engine": "postgres"})),
            (
                "/storage",
                serde_json::json!({"engine": "postgres", "url_env": "L", "schema": "Bad"}),
            ),
            ("/sources", serde_json::json!({})),
            (
                "/sources/bad name",
                serde_json::json!({"engine": "sqlite", "path": "x.db"}),
            ),
            ("/sources/s2", serde_json::json!({"engine": "postgres"})),
            (
                "/sources/s2",
                serde_json::json!({"engine": "mysql", "read_url_env": "R", "path": "p"}),
            ),
            ("/sources/s2", serde_json::json!({"engine": "sqlite"})),
            (
                "/sources/s2",
                serde_json::json!({"engine": "sqlite", "path": "x", "statement_timeout_ms": 0}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "http_handler"}}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "http_handler", "url_env": "U", "auth": {"type": "basic", "token_env": "T"}}}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "in_process", "url_env": "U"}}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "command_handler", "command_env": "C", "timeout_ms": 86400001}}),
            ),
            ("/executors", serde_json::json!({"h": {"type": "teleport"}})),
            ("/capabilities", serde_json::json!([])),
            ("/capabilities/0/name", Value::from("no_namespace")),
            ("/capabilities/0/kind", Value::from("write")),
            (
                "/capabilities/0/visible_columns",
                serde_json::json!(["ok", "not ok"]),
            ),
            ("/capabilities/0/evidence", Value::from("optional")),
            ("/capabilities/0/max_rows", Value::from(10001)),
            (
                "/capabilities/0/args/x",
                serde_json::json!({"type": "date"}),
            ),
            (
                "/capabilities/0/args/x",
                serde_json::json!({"type": "string", "enum": []}),
            ),
            (
                "/capabilities/0/args/x",
                serde_json::json!({"type": "string", "enum": [{"a": 1}]}),
            ),
            (
                "/capabilities/0/target/tenant_key",
                Value::from("tenant id"),
            ),
            (
                "/capabilities/0/approval",
                serde_json::json!({"mode": "model"}),
            ),
            ("/capabilities/0/approval", serde_json::json!({"mode": ""})),
            (
                "/capabilities/0/transition_guards",
                serde_json::json!({"status": {"allowed": {"open": []}}}),
            ),
            (
                "/capabilities/0/transition_guards",
                serde_json::json!({"status": {"allowed": {"open": ["closed"]}}}),
            ),
            (
                "/capabilities/0/patch",
                serde_json::json!({"c": {"fixed": [1]}}),
            ),
            (
                "/capabilities/0/conflict_guard",
                serde_json::json!({"column": "v", "advance": "sometimes"}),
            ),
            (
                "/contexts",
                serde_json::json!({"c": {"provider": "telepathy"}}),
            ),
            (
                "/cloud",
                serde_json::json!({"base_url_env": "B", "runner_token_env": "T", "adapter_id": "a", "engines": ["oracle"]}),
            ),
        ];
        let base_count = corpus.len();
        for config in &corpus {
            assert_eq!(check(config, true), vec![], "{config}");
        }
        for i in 0..base_count {
            for (pointer, value) in &breakages {
                let mut broken = corpus[i].clone();
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                let Some(target) = broken.pointer_mut(if parent.is_empty() { "" } else { parent })
                else {
                    continue;
                };
                match target {
                    Value::Object(map) => {
                        map.insert(key.to_string(), value.clone());
                    }
                    Value::Array(items) => match key.parse::<usize>() {
                        Ok(n) if n < items.len() => items[n] = value.clone(),
                        _ => continue,
                    },
                    _ => continue,
                }
                corpus.push(broken);
            }
        }
        assert!(corpus.len() > 100);
        let refused = corpus.iter().filter(|c| !check(c, true).is_empty()).count();
        assert!(
            refused + base_count >= corpus.len() * 9 / 10,
            "{refused} of {}",
            corpus.len()
        );
        for config in &corpus {
            let ours = check(config, true);
            assert_eq!(
                ours.is_empty(),
                general.is_valid(config),
                "disagreement on {config}: ours {ours:?}"
            );
        }
    }
}
