//! Static MCP risk audit (spec cli-and-mcp.md §5): find tools in any JSON (a `tools/list`
//! response, a manifest, a client config with tool metadata), apply the rules, and report.
//! Pure functions; fetching a live server's tools list is the CLI's job. Audit never calls
//! business tools.

use regex_lite::Regex;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

pub const SCHEMA_VERSION: &str = "synapsor.mcp-audit.v1";
pub const DISCLAIMER: &str =
    "This is a static risk review, not proof that an MCP server is secure.";
const SAFER_SHAPE: [&str; 5] = [
    "- expose semantic inspect/propose tools instead of raw SQL;",
    "- bind tenant/principal from trusted context;",
    "- keep approval outside MCP;",
    "- apply approved changes through guarded writeback;",
    "- keep replay/evidence handles for later review.",
];

/// One tool found in the target.
#[derive(Debug, Clone)]
pub struct AuditTool {
    pub path: String,
    pub name: String,
    pub record: Map<String, Value>,
}

/// Walk any JSON and collect tools (depth ≤ 8, deduplicated by path and name).
pub fn discover_tools(root: &Value) -> Vec<AuditTool> {
    let mut out: Vec<AuditTool> = Vec::new();
    visit(root, "$", 0, &mut out);
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(format!("{}:{}", t.path, t.name)));
    out
}

fn tool_name(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    ["name", "tool_name", "toolName"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
}

fn push(v: &Value, path: String, out: &mut Vec<AuditTool>) {
    if let (Some(name), Some(record)) = (tool_name(v), v.as_object()) {
        out.push(AuditTool {
            path,
            name: name.to_string(),
            record: record.clone(),
        });
    }
}

fn visit(v: &Value, path: &str, depth: usize, out: &mut Vec<AuditTool>) {
    if depth > 8 {
        return;
    }
    match v {
        Value::Object(o) => {
            if tool_name(v).is_some() {
                push(v, path.to_string(), out);
            }
            if let Some(Value::Array(tools)) = o.get("tools") {
                for (i, t) in tools.iter().enumerate() {
                    push(t, format!("{path}.tools[{i}]"), out);
                }
            }
            for key in [
                "result",
                "data",
                "adapter",
                "mcpServers",
                "servers",
                "server",
                "manifest",
            ] {
                if let Some(child) = o.get(key) {
                    visit(child, &format!("{path}.{key}"), depth + 1, out);
                }
            }
        }
        Value::Array(items) => {
            if !items.is_empty() && items.iter().all(|i| tool_name(i).is_some()) {
                for (i, t) in items.iter().enumerate() {
                    push(t, format!("{path}[{i}]"), out);
                }
            } else {
                for (i, t) in items.iter().enumerate() {
                    visit(t, &format!("{path}[{i}]"), depth + 1, out);
                }
            }
        }
        _ => {}
    }
}

fn first<'a>(o: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| o.get(*k).filter(|v| !v.is_null()))
}

/// Property names declared anywhere in an input schema (depth ≤ 10), in order, unique.
fn property_names(schema: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > 10 {
        return;
    }
    let Some(o) = schema.as_object() else { return };
    if let Some(Value::Object(props)) = o.get("properties") {
        for (k, v) in props {
            if !out.contains(k) {
                out.push(k.clone());
            }
            property_names(v, depth + 1, out);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(v) = o.get(key) {
            property_names(v, depth + 1, out);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(a)) = o.get(key) {
            for v in a {
                property_names(v, depth + 1, out);
            }
        }
    }
}

/// The core's name folding (compatibility forms, case, separators), shared with config
/// validation and argument checks.
fn norm(s: &str) -> String {
    synapsor_runner::config::fold_name(s)
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("static audit pattern")
}

struct Patterns {
    sql1: Regex,
    sql2: Regex,
    write: Regex,
    read: Regex,
    boundary: Regex,
    commit_name: Regex,
    commit_name_rev: Regex,
    commit_word: Regex,
    propose_word: Regex,
}

static P: LazyLock<Patterns> = LazyLock::new(|| Patterns {
    sql1: re(r"\b(execute|run|raw)\s*(sql|query)\b"),
    sql2: re(r"\b(sql|query)\s*(executor|database)\b"),
    write: re(
        r"\b(update|insert|delete|upsert|write|mutate|refund|waive|charge|cancel|commit|approve|settle|apply|merge|resolve|close|create|drop|alter)\b",
    ),
    read: re(r"\b(read|get|list|search|inspect|select|query)\b"),
    boundary: re(
        r"\b(proposal|propose|change[- ]?set|review[- ]?required|approval|approve[- ]?required|guarded writeback|trusted worker)\b",
    ),
    commit_name: re(
        r"(^|[._-])(approve|commit|apply|settle|merge)[._-]?(proposal|write|change|writeback)([._-]|$)",
    ),
    commit_name_rev: re(
        r"(^|[._-])(proposal|write|change|writeback)[._-]?(approve|commit|apply|settle|merge)([._-]|$)",
    ),
    commit_word: re(r"\b(approve|commit|apply|settle|merge)\b"),
    propose_word: re(r"\b(propose|proposal|review-required|approval-required)\b"),
});

const SQL_NAMES: [&str; 8] = [
    "executesql",
    "runsql",
    "runquery",
    "querydatabase",
    "databasequery",
    "sqlquery",
    "rawsql",
    "executequery",
];
const SQL_FIELDS: [&str; 4] = ["sql", "query", "statement", "rawsql"];
const IDENT_FIELDS: [&str; 9] = [
    "table",
    "tablename",
    "schema",
    "schemaname",
    "column",
    "columns",
    "columnname",
    "database",
    "databasename",
];
const TRUST_FIELDS: [&str; 12] = [
    "tenantid",
    "principal",
    "principalid",
    "userid",
    "projectid",
    "sourceid",
    "databaseid",
    "allowedcolumns",
    "rowversion",
    "currentversion",
    "expectedversion",
    "approvalidentity",
];
const IDEMPOTENCY_FIELDS: [&str; 4] = ["idempotencykey", "requestid", "requestkey", "dedupekey"];
const CONFLICT_FIELDS: [&str; 6] = [
    "expectedversion",
    "rowversion",
    "updatedat",
    "etag",
    "conflictguard",
    "previousversion",
];
const FIXTURE_KEYS: [&str; 5] = [
    "examples",
    "example",
    "input_examples",
    "test_fixture",
    "x_synapsor_test_fixture",
];

fn recommendation(code: &str) -> &'static str {
    match code {
        "GENERIC_SQL_TOOL" => {
            "Replace the generic SQL tool with named, reviewed capabilities that read one business object within a trusted scope."
        }
        "WRITE_TOOL_ACCEPTS_ARBITRARY_SQL" => {
            "Never accept SQL text from the model; build statements from a reviewed config with bound parameters."
        }
        "ARBITRARY_IDENTIFIER_INPUT" => {
            "Fix tables, schemas and columns in reviewed configuration; let the model pass only business identifiers."
        }
        "MODEL_CONTROLLED_TRUST_SCOPE" => {
            "Bind tenant, principal, source and row version from trusted server-side context, never from model arguments."
        }
        "MODEL_CALLABLE_COMMIT_OR_APPROVAL" => {
            "Move approval and commit out of the model-callable surface; a human or the host application approves outside MCP."
        }
        "WRITE_WITHOUT_PROPOSAL_BOUNDARY" => {
            "Turn the write into a proposal the model creates and a reviewer approves before a guarded writeback applies it."
        }
        "NO_STRUCTURED_OUTPUT_SCHEMA" => {
            "Declare an outputSchema so clients and reviewers can rely on the result shape."
        }
        "NO_IDEMPOTENCY_FIELD" => {
            "Give every write an idempotency key so retries cannot apply it twice."
        }
        "NO_CONFLICT_GUARD" => {
            "Guard writes with the row version seen at review time so stale changes conflict instead of overwriting."
        }
        "AMBIGUOUS_READ_WRITE_TOOL" => {
            "Split reads from writes: one read-only inspect tool and one proposal tool."
        }
        "MISSING_BUSINESS_DESCRIPTION" => {
            "Describe the business action the tool performs in plain language."
        }
        "MISSING_RISK_ANNOTATIONS" => {
            "Add readOnlyHint/destructiveHint annotations so clients can present the risk."
        }
        "MISSING_TEST_FIXTURE" => {
            "Add examples or a test fixture reference so the tool's behaviour can be checked."
        }
        _ => {
            "Export the server's tools/list response (or a manifest with tool metadata) and audit that."
        }
    }
}

fn finding(
    sev: &str,
    code: &str,
    tool: Option<&AuditTool>,
    message: &str,
    detail: String,
) -> Value {
    let mut f = json!({"severity": sev, "code": code});
    if let Some(t) = tool {
        f["tool"] = json!(t.name);
    }
    f["message"] = json!(message);
    let evidence = match tool {
        Some(t) => json!([format!("path {}", t.path), detail]),
        None => json!([detail]),
    };
    f["evidence"] = evidence;
    f["recommendation"] = json!(recommendation(code));
    f
}

fn fields_line(names: &[String]) -> String {
    if names.is_empty() {
        "Input fields: none.".into()
    } else {
        format!("Input fields: {}.", names.join(", "))
    }
}

/// Findings for one tool, rules in order (§5.3).
pub fn audit_tool(t: &AuditTool) -> Vec<Value> {
    let o = &t.record;
    let description = ["description", "title", "summary"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or("");
    let empty = Value::Object(Map::new());
    let annotations = o
        .get("annotations")
        .filter(|a| a.is_object())
        .unwrap_or(&empty);
    let text = format!("{} {} {}", t.name, description, annotations).to_lowercase();
    let mut props = Vec::new();
    if let Some(schema) = first(
        o,
        &[
            "inputSchema",
            "input_schema",
            "parameters",
            "schema",
            "args_schema",
        ],
    ) {
        property_names(schema, 0, &mut props);
    }
    let normed: Vec<String> = props.iter().map(|p| norm(p)).collect();
    let has_any = |set: &[&str]| normed.iter().any(|n| set.contains(&n.as_str()));
    let matching = |set: &[&str]| -> Vec<String> {
        props
            .iter()
            .zip(&normed)
            .filter(|(_, n)| set.contains(&n.as_str()))
            .map(|(p, _)| p.clone())
            .collect()
    };
    let p = &*P;
    let name_l = t.name.to_lowercase();
    let sql_like = SQL_NAMES.contains(&norm(&t.name).as_str())
        || p.sql1.is_match(&text)
        || p.sql2.is_match(&text);
    let write_like = annotations.get("destructiveHint") == Some(&Value::Bool(true))
        || annotations.get("readOnlyHint") == Some(&Value::Bool(false))
        || p.write.is_match(&text);
    let read_like = p.read.is_match(&text);
    let boundary = p.boundary.is_match(&text);
    let commit = p.commit_name.is_match(&name_l)
        || p.commit_name_rev.is_match(&name_l)
        || (p.commit_word.is_match(&text) && !p.propose_word.is_match(&text));

    let mut f = Vec::new();
    let tool = Some(t);
    if sql_like {
        f.push(finding(
            "HIGH",
            "GENERIC_SQL_TOOL",
            tool,
            "Generic SQL/query tool exposed to the model.",
            "Tool name or description matches execute_sql/run_query/raw SQL patterns.".into(),
        ));
        if has_any(&SQL_FIELDS) {
            f.push(finding(
                "HIGH",
                "WRITE_TOOL_ACCEPTS_ARBITRARY_SQL",
                tool,
                "Tool accepts arbitrary SQL or query text as model input.",
                fields_line(&props),
            ));
        }
    }
    if has_any(&IDENT_FIELDS) {
        f.push(finding(
            "HIGH",
            "ARBITRARY_IDENTIFIER_INPUT",
            tool,
            "Tool accepts schema, table, database, or column identifiers as ordinary model input.",
            format!(
                "Identifier-like fields: {}.",
                matching(&IDENT_FIELDS).join(", ")
            ),
        ));
    }
    if has_any(&TRUST_FIELDS) {
        f.push(finding("HIGH", "MODEL_CONTROLLED_TRUST_SCOPE", tool, "Tool accepts tenant, principal, source, approval, or row-version trust fields as model input.", format!("Trust-like fields: {}.", matching(&TRUST_FIELDS).join(", "))));
    }
    if commit {
        f.push(finding("HIGH", "MODEL_CALLABLE_COMMIT_OR_APPROVAL", tool, "Tool appears to approve, commit, apply, settle, merge, or execute writeback from a model-callable surface.", "Tool name or description contains approval/commit/apply/settlement/writeback language.".into()));
    }
    if write_like && !boundary {
        f.push(finding("HIGH", "WRITE_WITHOUT_PROPOSAL_BOUNDARY", tool, "Write-capable tool has no visible proposal, approval, or guarded writeback boundary.", "Tool looks write-capable but the manifest does not describe proposal/review/approval semantics.".into()));
    }
    let has_output = first(
        o,
        &[
            "outputSchema",
            "output_schema",
            "resultSchema",
            "result_schema",
            "output",
        ],
    )
    .is_some()
        || o.contains_key("structuredContent")
        || o.contains_key("structured_content");
    if !has_output {
        f.push(finding(
            "MEDIUM",
            "NO_STRUCTURED_OUTPUT_SCHEMA",
            tool,
            "Tool does not declare a structured output schema.",
            "No outputSchema/resultSchema/structuredContent schema was found.".into(),
        ));
    }
    if write_like && !boundary {
        if !has_any(&IDEMPOTENCY_FIELDS) {
            f.push(finding(
                "MEDIUM",
                "NO_IDEMPOTENCY_FIELD",
                tool,
                "Write-like tool does not expose or document an idempotency/request key.",
                fields_line(&props),
            ));
        }
        if !has_any(&CONFLICT_FIELDS) {
            f.push(finding(
                "MEDIUM",
                "NO_CONFLICT_GUARD",
                tool,
                "Write-like tool does not expose or document row-version/conflict guard metadata.",
                fields_line(&props),
            ));
        }
        if read_like {
            f.push(finding(
                "MEDIUM",
                "AMBIGUOUS_READ_WRITE_TOOL",
                tool,
                "Tool appears to mix read and write behavior without a clear proposal boundary.",
                "Tool name or description contains both read/query and write/update language."
                    .into(),
            ));
        }
    }
    if description.trim().is_empty() {
        f.push(finding(
            "LOW",
            "MISSING_BUSINESS_DESCRIPTION",
            tool,
            "Tool is missing a human-readable business-action description.",
            "description/title is empty.".into(),
        ));
    }
    if annotations.as_object().map(Map::is_empty).unwrap_or(true) {
        f.push(finding(
            "LOW",
            "MISSING_RISK_ANNOTATIONS",
            tool,
            "Tool has no read/write/destructive annotations.",
            "annotations object is absent or empty.".into(),
        ));
    }
    if !FIXTURE_KEYS.iter().any(|k| o.contains_key(*k)) {
        f.push(finding("LOW", "MISSING_TEST_FIXTURE", tool, "Tool manifest does not include examples or a test fixture reference.", "No examples, input_examples, test_fixture, or x_synapsor_test_fixture field was found.".into()));
    }
    f
}

/// The full report for a target's JSON.
pub fn audit(target: &str, input: &Value, generated_at: &str) -> Value {
    let tools = discover_tools(input);
    let mut findings: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in &tools {
        for f in audit_tool(t) {
            let key = format!("{}|{}|{}", f["severity"], f["code"], f["tool"]);
            if seen.insert(key) {
                findings.push(f);
            }
        }
    }
    if tools.is_empty() {
        findings.push(finding("MEDIUM", "NO_TOOLS_FOUND", None, "No MCP tools were found in the provided target.", "Expected an exported tools/list response, tool manifest, or client config with tool metadata.".into()));
    }
    let count = |s: &str| findings.iter().filter(|f| f["severity"] == s).count();
    let (high, medium, low) = (count("HIGH"), count("MEDIUM"), count("LOW"));
    json!({
        "schema_version": SCHEMA_VERSION,
        "target": target,
        "disclaimer": DISCLAIMER,
        "generated_at": generated_at,
        "summary": {"tools_inspected": tools.len(), "high": high, "medium": medium, "low": low, "total_findings": findings.len(), "overall_risk": overall(high, medium, low)},
        "findings": findings,
    })
}

fn overall(high: usize, medium: usize, low: usize) -> &'static str {
    if high > 0 {
        "high"
    } else if medium > 0 {
        "medium"
    } else if low > 0 {
        "low"
    } else {
        "none"
    }
}

fn n(report: &Value, key: &str) -> u64 {
    report["summary"][key].as_u64().unwrap_or(0)
}

/// Plain-text report.
pub fn render_text(report: &Value) -> String {
    let mut out = vec![
        "Synapsor MCP database risk review".to_string(),
        format!("Target: {}", report["target"].as_str().unwrap_or("")),
        DISCLAIMER.to_string(),
        String::new(),
        format!("Tools inspected: {}", n(report, "tools_inspected")),
        format!(
            "Findings: HIGH {} | MEDIUM {} | LOW {}",
            n(report, "high"),
            n(report, "medium"),
            n(report, "low")
        ),
        format!(
            "Overall risk: {}",
            report["summary"]["overall_risk"].as_str().unwrap_or("none")
        ),
        String::new(),
    ];
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() {
        out.push("No obvious database-commit risks were detected in the static manifest.".into());
        out.push("This does not prove the MCP server or its tools are secure.".into());
    }
    for f in &findings {
        let sev = f["severity"].as_str().unwrap_or("");
        let code = f["code"].as_str().unwrap_or("");
        let mut head = format!("{sev:<6} {code}");
        if let Some(t) = f["tool"].as_str() {
            head.push_str("  ");
            head.push_str(t);
        }
        out.push(head);
        out.push(format!("       {}", f["message"].as_str().unwrap_or("")));
        out.push(format!("       Evidence: {}", evidence(f).join("; ")));
        out.push(format!(
            "       Recommendation: {}",
            f["recommendation"].as_str().unwrap_or("")
        ));
    }
    out.push(String::new());
    out.push("Suggested safer shape:".into());
    out.extend(SAFER_SHAPE.iter().map(|s| s.to_string()));
    out.join("\n") + "\n"
}

fn evidence(f: &Value) -> Vec<String> {
    f["evidence"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Markdown report.
pub fn render_markdown(report: &Value) -> String {
    let mut out = vec![
        "# Synapsor MCP Database Risk Review".to_string(),
        String::new(),
        format!("- Target: {}", report["target"].as_str().unwrap_or("")),
        format!(
            "- Generated at: {}",
            report["generated_at"].as_str().unwrap_or("")
        ),
        format!("- Tools inspected: {}", n(report, "tools_inspected")),
        format!(
            "- Findings: HIGH {} | MEDIUM {} | LOW {}",
            n(report, "high"),
            n(report, "medium"),
            n(report, "low")
        ),
        format!("- Total findings: {}", n(report, "total_findings")),
        String::new(),
        format!("> {DISCLAIMER}"),
        String::new(),
        "## Findings".into(),
        String::new(),
    ];
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() {
        out.push("No obvious database-commit risks were detected in the static manifest.".into());
        out.push("This does not prove the MCP server or its tools are secure.".into());
        out.push(String::new());
    }
    for f in &findings {
        let mut head = format!(
            "### {}: {}",
            f["severity"].as_str().unwrap_or(""),
            f["code"].as_str().unwrap_or("")
        );
        if let Some(t) = f["tool"].as_str() {
            head.push_str(&format!(" ({t})"));
        }
        out.push(head);
        out.push(String::new());
        out.push(f["message"].as_str().unwrap_or("").to_string());
        out.push(String::new());
        out.push("Evidence:".into());
        out.extend(evidence(f).into_iter().map(|e| format!("- {e}")));
        out.push(String::new());
        out.push(format!(
            "Recommendation: {}",
            f["recommendation"].as_str().unwrap_or("")
        ));
        out.push(String::new());
    }
    out.push("## Safer Shape".into());
    out.push(String::new());
    out.extend(SAFER_SHAPE.iter().map(|s| s.to_string()));
    out.join("\n") + "\n"
}

/// The built-in `dangerous-db-mcp` example: six tools a generic database MCP server might expose.
pub fn dangerous_example() -> Value {
    let s = || json!({"type": "string"});
    let obj = |props: Value, required: Value| json!({"type": "object", "properties": props, "required": required});
    json!({"tools": [
        {"name": "execute_sql", "description": "Execute arbitrary SQL against the application database.", "inputSchema": obj(json!({"sql": s()}), json!(["sql"]))},
        {"name": "run_query", "description": "Run any query and return database rows.", "inputSchema": obj(json!({"query": s(), "table": s(), "columns": {"type": "array", "items": s()}}), json!(["query"]))},
        {"name": "approve_refund", "description": "Approve and issue a customer refund immediately.", "inputSchema": obj(json!({"refund_id": s(), "tenant_id": s(), "amount_cents": {"type": "number"}}), json!(["refund_id", "tenant_id", "amount_cents"]))},
        {"name": "update_customer", "description": "Update a customer record directly.", "inputSchema": obj(json!({"customer_id": s(), "tenant_id": s(), "column": s(), "value": s()}), json!(["customer_id", "tenant_id", "column", "value"]))},
        {"name": "delete_order", "description": "Delete an order from the database.", "inputSchema": obj(json!({"order_id": s(), "tenant_id": s()}), json!(["order_id", "tenant_id"]))},
        {"name": "query_database", "description": "Query arbitrary tables and columns from the database.", "inputSchema": obj(json!({"database": s(), "schema": s(), "table": s(), "columns": {"type": "array", "items": s()}, "where": s()}), json!(["table"]))},
    ]})
}
