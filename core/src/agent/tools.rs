//! The transport-free tool catalog: one tool per exposed capability, with JSON Schemas and
//! annotations. No tool approves, applies, runs SQL, or takes tenant or identifiers.

use crate::config::{ArgType, Capability, CapabilityKind, RunnerConfig};
use crate::protocol::sha256_hex;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// How tool names are presented to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolNaming {
    /// `billing.inspect_invoice`
    Canonical,
    /// `billing__inspect_invoice` (OpenAI function names cannot contain dots)
    OpenAi,
    /// Both, canonical first.
    Both,
}

impl ToolNaming {
    /// `canonical`, `openai` or `both`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "canonical" => Some(ToolNaming::Canonical),
            "openai" => Some(ToolNaming::OpenAi),
            "both" => Some(ToolNaming::Both),
            _ => None,
        }
    }

    /// The name [`parse`](Self::parse) reads.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolNaming::Canonical => "canonical",
            ToolNaming::OpenAi => "openai",
            ToolNaming::Both => "both",
        }
    }
}

/// One model-facing tool.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// The exposed name in the chosen naming style.
    pub name: String,
    /// The capability's name in the config.
    pub canonical_name: String,
    /// Short human title.
    pub title: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments.
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
    /// JSON Schema of `structuredContent` (result envelope v2; an object for v1).
    #[serde(rename = "outputSchema")]
    pub output_schema: Value,
    /// MCP tool annotations (read-only and destructive hints).
    pub annotations: Value,
    /// Synapsor's own metadata (capability kind, business object).
    #[serde(rename = "_meta")]
    pub meta: Value,
}

/// OpenAI-safe alias of a canonical name (spec §5.1 of config-and-capabilities).
pub fn openai_alias(canonical: &str) -> String {
    let mut out = String::new();
    let mut in_bad = false;
    for c in canonical.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
            in_bad = false;
        } else if !in_bad {
            out.push_str("__");
            in_bad = true;
        }
    }
    while out.contains("___") {
        out = out.replace("___", "__");
    }
    let out = out.trim_matches('_').to_string();
    let h8 = &sha256_hex(canonical.as_bytes())[..8];
    if out.is_empty() {
        return format!("tool_{h8}");
    }
    if out.len() > 64 {
        return format!("{}_{h8}", out[..55].trim_end_matches('_'));
    }
    out
}

/// Tools exposed by a config in a naming style. Proposal tools are hidden in read_only mode.
pub fn tool_list(config: &RunnerConfig, naming: ToolNaming) -> Vec<Tool> {
    let mut tools = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for cap in config
        .capabilities
        .iter()
        .filter(|c| crate::policy::exposed(config.mode, c.kind))
    {
        if naming != ToolNaming::OpenAi {
            used.push(cap.name.clone());
            tools.push(tool_for(cap, &cap.name, naming, config));
        }
        if naming != ToolNaming::Canonical {
            let mut alias = openai_alias(&cap.name);
            if used.contains(&alias) {
                alias = format!(
                    "{}_{}",
                    alias.chars().take(55).collect::<String>(),
                    &sha256_hex(cap.name.as_bytes())[..8]
                );
            }
            used.push(alias.clone());
            tools.push(tool_for(cap, &alias, naming, config));
        }
    }
    tools
}

/// The schema of a tool's `structuredContent`. v2 envelopes share one shape for reads,
/// proposals and refusals, so clients that validate structured output accept all three.
pub fn output_schema(config: &RunnerConfig) -> Value {
    if config.result_format() == 1 {
        return json!({"type": "object"});
    }
    let obj_or_null = json!({"type": ["object", "null"]});
    json!({
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "summary": {"type": "string"},
            "action": {"type": "string"},
            "kind": {"type": "string", "enum": ["read", "proposal"]},
            "data": obj_or_null,
            "proposal": obj_or_null,
            "error": obj_or_null,
            "evidence": obj_or_null,
            "source_database_changed": {"type": "boolean"},
            "_meta": {"type": "object"}
        },
        "required": ["ok", "summary", "action", "kind", "source_database_changed"]
    })
}

/// Map an exposed name (canonical or alias) back to the canonical capability name.
pub fn canonical_name(config: &RunnerConfig, exposed: &str) -> Option<String> {
    if config.capability(exposed).is_some() {
        return Some(exposed.to_string());
    }
    tool_list(config, ToolNaming::OpenAi)
        .into_iter()
        .find(|t| t.name == exposed)
        .map(|t| t.canonical_name)
}

fn tool_for(cap: &Capability, name: &str, naming: ToolNaming, config: &RunnerConfig) -> Tool {
    let is_alias = name != cap.name;
    let mut lines = Vec::new();
    if is_alias {
        lines.push(format!("Canonical Synapsor capability: {}.", cap.name));
    }
    lines.push(cap.description.clone().unwrap_or_else(|| match cap.kind {
        CapabilityKind::Read => format!("Read {} through a reviewed Synapsor capability with trusted tenant context and evidence.", cap.qualified_table()),
        CapabilityKind::Proposal => format!("Create an evidence-backed Synapsor proposal for {}; the source database is not mutated by this tool.", cap.qualified_table()),
    }));
    if let Some(h) = &cap.returns_hint {
        lines.push(h.clone());
    }
    if cap.kind == CapabilityKind::Proposal {
        lines.push("Creates a review-required proposal only: approval and writeback happen outside this tool.".into());
    }
    lines.push("Evidence handles are audit/replay handles; the model does not need to call them during this turn.".into());
    let read = cap.kind == CapabilityKind::Read;
    Tool {
        name: name.to_string(),
        canonical_name: cap.name.clone(),
        title: cap.name.clone(),
        description: lines.join("\n"),
        input_schema: input_schema(cap),
        output_schema: output_schema(config),
        annotations: json!({"readOnlyHint": read, "destructiveHint": false, "idempotentHint": read, "openWorldHint": false}),
        meta: json!({
            "synapsor.kind": cap.kind.as_str(),
            "synapsor.source": cap.source,
            "synapsor.target": cap.qualified_table(),
            "synapsor.canonical_tool_name": cap.name,
            "synapsor.exposed_tool_name": name,
            "synapsor.tool_name_style": if is_alias { "openai" } else { naming.as_str() },
            "synapsor.raw_sql_exposed": false,
            "synapsor.approval_tool": false,
        }),
    }
}

/// JSON Schema of a capability's arguments: types, bounds, enums, no extra properties.
pub fn input_schema(cap: &Capability) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, spec) in &cap.args {
        let mut p = Map::new();
        p.insert("type".into(), Value::String(spec.kind.as_str().into()));
        p.insert(
            "description".into(),
            Value::String(
                spec.description
                    .clone()
                    .unwrap_or_else(|| format!("{name} business argument")),
            ),
        );
        if spec.kind == ArgType::String
            && let Some(m) = spec.max_length
        {
            p.insert("maxLength".into(), Value::from(m));
        }
        if let Some(m) = spec.minimum {
            p.insert("minimum".into(), json!(m));
        }
        if let Some(m) = spec.maximum {
            p.insert("maximum".into(), json!(m));
        }
        if let Some(e) = &spec.allowed {
            p.insert("enum".into(), Value::Array(e.clone()));
        }
        props.insert(name.clone(), Value::Object(p));
        if spec.required {
            required.push(Value::String(name.clone()));
        }
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_rules() {
        assert_eq!(
            openai_alias("billing.inspect_invoice"),
            "billing__inspect_invoice"
        );
        let long = format!("a.{}", "b".repeat(80));
        let alias = openai_alias(&long);
        assert!(
            alias.len() <= 64
                && alias
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }
}
