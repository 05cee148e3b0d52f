//! Human-readable output. Keeps the reference's key lines that scripts grep.

use serde_json::Value;
use std::path::Path;
use synapsor_runner::{ApplyOutcome, ProposalResult, StoredProposal, Tool};

pub const NOT_EXPOSED: [&str; 7] = [
    "execute_sql / raw query tools",
    "approval tools",
    "commit/apply tools",
    "database URLs",
    "write credentials",
    "model-controlled tenant authority",
    "arbitrary table or column names",
];

/// The shared tool-boundary checks: (name, ok, detail).
pub fn boundary_checks(tools: &[Tool]) -> Vec<(&'static str, bool, String)> {
    let names: Vec<String> = tools.iter().map(|t| t.name.to_lowercase()).collect();
    let any = |pats: &[&str]| names.iter().any(|n| pats.iter().any(|p| n.contains(p)));
    let serialized = serde_json::to_string(tools)
        .unwrap_or_default()
        .to_lowercase();
    vec![
        (
            "semantic tools present",
            !tools.is_empty(),
            if tools.is_empty() {
                "none".into()
            } else {
                tools
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "execute_sql absent",
            !any(&["execute_sql", "run_query", "query_database"]),
            "model does not receive raw SQL tools".into(),
        ),
        (
            "approval tools absent",
            !any(&["approve"]),
            "approval stays outside MCP".into(),
        ),
        (
            "commit tools absent",
            !any(&["commit", "apply_writeback"]),
            "commit stays outside MCP".into(),
        ),
        (
            "database_url absent",
            !(serialized.contains("postgres://")
                || serialized.contains("postgresql://")
                || serialized.contains("mysql://")),
            "MCP config uses env var names, not connection strings".into(),
        ),
        (
            "write credentials absent",
            !["password", "secret", "bearer", "private_key", "token"]
                .iter()
                .any(|w| serialized.contains(w)),
            "MCP tools do not include write credentials".into(),
        ),
    ]
}

/// Strings raw, everything else as JSON.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// ` --store FILE` for a ledger file; nothing for a PostgreSQL ledger, which the config names
/// (`postgres:$VAR/schema` is how the commands label it).
pub fn store_flag(store: &Path) -> String {
    let s = store.display().to_string();
    if s.starts_with("postgres:$") {
        String::new()
    } else {
        format!(" --store {s}")
    }
}

pub fn proposal_created(r: &ProposalResult, store: &Path) {
    println!(
        "{}",
        if r.duplicate {
            "Proposal already active (same change); returning it."
        } else {
            "Proposal created."
        }
    );
    println!("Capability:");
    println!("  {}", r.capability);
    println!("Proposal:");
    println!("  {}", r.proposal_id);
    println!("Evidence:");
    println!("  {}", r.evidence_bundle_id);
    println!("Proposed change:");
    for (col, d) in &r.diff {
        println!(
            "  {col}: {} -> {}",
            plain(&d["before"]),
            plain(&d["proposed"])
        );
    }
    println!("Source DB changed:");
    println!("  no");
    println!("Review:");
    let s = store_flag(store);
    println!("  synapsor-runner proposals show {}{s}", r.proposal_id);
    println!("  synapsor-runner proposals approve {}{s}", r.proposal_id);
    println!("  synapsor-runner apply {}{s}", r.proposal_id);
    println!("  synapsor-runner replay {}{s}", r.proposal_id);
}

pub fn proposal_line(p: &StoredProposal) {
    println!(
        "{}  {}  {}  {}",
        p.created_at, p.proposal_id, p.state, p.action
    );
    println!("  object: {}:{}", p.business_object, p.object_id);
    println!(
        "  target: {}:{}/{}.{}/{}",
        p.source_kind, p.source_id, p.source_schema, p.source_table, p.object_id
    );
    println!(
        "  tenant: {}  source changed: {}",
        p.tenant_id,
        yes_no(p.source_database_mutated)
    );
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn boundary_text(state: &str) -> &'static str {
    match state {
        "pending_review" => "required outside MCP",
        "approved" | "pending_worker" => "approved outside MCP; waiting for trusted worker",
        "applied" => "approved outside MCP; writeback applied",
        "conflict" => "approved outside MCP; writeback blocked by conflict guard",
        "failed" => "approved outside MCP; writeback failed safely",
        "rejected" => "rejected outside MCP",
        _ => "canceled",
    }
}

pub fn proposal_show(replay: &Value, details: bool, store: &Path) {
    let p = &replay["proposal"];
    let cs = &p["change_set"];
    let id = p["proposal_id"].as_str().unwrap_or_default();
    let state = p["state"].as_str().unwrap_or_default();
    println!("Proposal {id}");
    println!("Status: {}", state.replace('_', " "));
    println!("Agent requested:");
    println!("  {}", plain(&p["action"]));
    println!("Business object:");
    println!(
        "  {} {}",
        plain(&p["business_object"]),
        plain(&p["object_id"])
    );
    println!("Proposed change:");
    print_diff(cs);
    println!("Source DB changed:");
    println!(
        "  {}",
        yes_no(p["source_database_mutated"].as_bool().unwrap_or(false))
    );
    println!("Approval:");
    println!("  {}", boundary_text(state));
    let items: usize = replay["evidence"]
        .as_array()
        .map(|bs| {
            bs.iter()
                .map(|b| b["items"].as_array().map(Vec::len).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    println!("Evidence:");
    println!("  {} ({items} items)", plain(&cs["evidence"]["bundle_id"]));
    if details {
        println!("Review details:");
        println!(
            "  principal: {} ({})",
            plain(&cs["principal"]["id"]),
            plain(&cs["principal"]["source"])
        );
        println!("  tenant: {}", plain(&p["tenant_id"]));
        println!(
            "  target: {}:{}/{}.{}/{}",
            plain(&p["source_kind"]),
            plain(&p["source_id"]),
            plain(&p["source_schema"]),
            plain(&p["source_table"]),
            plain(&p["object_id"])
        );
        println!(
            "  primary key: {}={}",
            plain(&cs["source"]["primary_key"]["column"]),
            plain(&cs["source"]["primary_key"]["value"])
        );
        let role = cs["approval"]["required_role"]
            .as_str()
            .map(|r| format!(" required role {r}"))
            .unwrap_or_default();
        println!("  approval: {}{role}", plain(&cs["approval"]["status"]));
        println!("  proposal hash: {}", plain(&p["proposal_hash"]));
        println!("  proposal version: {}", plain(&p["proposal_version"]));
        let allowed: Vec<String> = cs["guards"]["allowed_columns"]
            .as_array()
            .map(|a| a.iter().map(plain).collect())
            .unwrap_or_default();
        println!("  allowed columns: {}", allowed.join(", "));
        println!(
            "  conflict guard: {}={}",
            plain(&cs["guards"]["expected_version"]["column"]),
            plain(&cs["guards"]["expected_version"]["value"])
        );
        println!(
            "  evidence: {}  query {}",
            plain(&cs["evidence"]["bundle_id"]),
            plain(&cs["evidence"]["query_fingerprint"])
        );
        println!(
            "  writeback: {} via {}",
            plain(&cs["writeback"]["status"]),
            plain(&cs["writeback"]["executor"])
        );
        println!("Events:");
        for e in replay["events"].as_array().into_iter().flatten() {
            println!(
                "  event {}: {} by {} at {}",
                plain(&e["event_id"]),
                plain(&e["kind"]),
                plain(&e["actor"]),
                plain(&e["created_at"])
            );
        }
    }
    println!("Next:");
    if state == "pending_review" {
        println!(
            "  synapsor-runner proposals approve {id} --yes{}",
            store_flag(store)
        );
    }
    if state == "approved" || state == "pending_worker" {
        println!("  synapsor-runner apply {id}{}", store_flag(store));
    }
    println!("  synapsor-runner replay show {id}{}", store_flag(store));
}

fn print_diff(cs: &Value) {
    if let Some(patch) = cs["patch"].as_object() {
        for (col, after) in patch {
            println!(
                "  {col}: {} -> {}",
                plain(cs["before"].get(col).unwrap_or(&Value::Null)),
                plain(after)
            );
        }
    }
}

/// App-owned executors: the reference's lines (`App-owned writeback applied.`, `source database
/// changed by handler: yes|no`).
fn app_owned_result(o: &ApplyOutcome, store: &Path) {
    let r = &o.receipt;
    let title = match (o.dry_run, r.status.as_str()) {
        (true, "applied") => "App-owned writeback dry run passed.",
        (true, _) => "App-owned writeback dry run did not pass.",
        (false, "applied") => "App-owned writeback applied.",
        (false, "already_applied") => "App-owned writeback already applied.",
        (false, "conflict") => "App-owned writeback returned conflict.",
        _ => "App-owned writeback failed.",
    };
    println!("{title}");
    println!();
    println!("Checks:");
    println!("* proposal approved: yes");
    println!(
        "* execution authority: app-owned {} outside MCP",
        o.executor.replace('_', " ")
    );
    println!(
        "* source database changed by handler: {}",
        yes_no(r.source_database_mutated)
    );
    println!("* affected rows: {}", r.rows_affected);
    println!("* idempotency key: {}", r.idempotency_key);
    if let Some(code) = &r.safe_error_code {
        println!("Error:");
        println!(
            "  {code}{}",
            if o.retryable {
                " (transient: the proposal stays approved; retry later)"
            } else {
                ""
            }
        );
    }
    println!("Receipt:");
    println!("  {}", r.receipt_hash);
    println!("Replay:");
    println!(
        "  synapsor-runner replay {}{}",
        r.proposal_id,
        store_flag(store)
    );
}

pub fn apply_result(o: &ApplyOutcome, store: &Path) {
    if o.executor != "sql_update" {
        return app_owned_result(o, store);
    }
    let r = &o.receipt;
    let code = r.safe_error_code.as_deref().unwrap_or("");
    let title = match (o.dry_run, r.status.as_str()) {
        (true, "applied") => "Guarded writeback dry run passed.",
        (true, "conflict") => "Guarded writeback dry run found a conflict.",
        (true, _) => "Guarded writeback dry run failed.",
        (false, "applied") => "Guarded writeback applied.",
        (false, "already_applied") => "Guarded writeback already applied.",
        (false, "conflict") => "Guarded writeback returned conflict.",
        _ => "Guarded writeback failed.",
    };
    println!("{title}");
    println!();
    println!("Checks:");
    println!("* proposal approved: yes");
    let done = matches!(r.status.as_str(), "applied" | "already_applied");
    let matched = if code == "ROW_NOT_FOUND" {
        "no"
    } else if r.status == "failed" {
        "not completed"
    } else {
        "yes"
    };
    println!("* primary key matched: {matched}");
    println!("* tenant guard matched: {matched}");
    println!("* allowed columns only: yes");
    println!(
        "* conflict guard passed: {}",
        if code == "VERSION_CONFLICT" {
            "no"
        } else if done {
            "yes"
        } else {
            "not completed"
        }
    );
    println!("* affected rows: {}", r.rows_affected);
    println!("* idempotency key: {}", r.idempotency_key);
    if o.dry_run {
        println!("* dry run: rolled back; the proposal stays approved");
    }
    if r.status == "conflict" {
        println!();
        println!(
            "{}",
            if code == "VERSION_CONFLICT" {
                "The row changed after the agent saw it."
            } else {
                "The target row was not available under the primary-key and tenant guard."
            }
        );
        println!("Result:");
        println!("  conflict");
        println!("Source DB changed by Synapsor:");
        println!("  no");
        println!("Why:");
        println!("  {code}");
    }
    if r.status == "failed" {
        println!("Error:");
        println!(
            "  {code}{}",
            if o.retryable {
                " (transient: the proposal stays approved; retry later)"
            } else {
                ""
            }
        );
    }
    println!("Receipt:");
    println!("  {}", r.receipt_hash);
    println!("Replay:");
    println!(
        "  synapsor-runner replay {}{}",
        r.proposal_id,
        store_flag(store)
    );
}

pub fn replay(record: &Value, details: bool, store: &Path) {
    let p = &record["proposal"];
    let cs = &p["change_set"];
    let id = p["proposal_id"].as_str().unwrap_or_default();
    let state = p["state"].as_str().unwrap_or_default();
    println!("Replay {}", plain(&record["replay_id"]));
    println!();
    println!("What happened:");
    println!("1. Agent called {}", plain(&p["action"]));
    println!(
        "2. Runner read {} {} under tenant {}",
        plain(&p["business_object"]),
        plain(&p["object_id"]),
        plain(&p["tenant_id"])
    );
    println!(
        "3. Runner created evidence bundle {}",
        plain(&cs["evidence"]["bundle_id"])
    );
    println!("4. Runner created a proposal");
    println!(
        "5. Source DB changed: {}",
        yes_no(p["source_database_mutated"].as_bool().unwrap_or(false))
    );
    if state == "pending_review" {
        println!("6. Approval is still pending");
    } else {
        println!("6. Proposal is {}", state.replace('_', " "));
    }
    println!("Proposed change:");
    print_diff(cs);
    let audits = record["query_audit"].as_array().map(Vec::len).unwrap_or(0);
    let items: usize = record["evidence"]
        .as_array()
        .map(|bs| {
            bs.iter()
                .map(|b| b["items"].as_array().map(Vec::len).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    println!("Evidence:");
    println!("  {audits} query audit record(s)");
    println!("  {items} evidence item(s)");
    println!("Writeback:");
    match record["receipts"].as_array().and_then(|r| r.last()) {
        Some(r) => {
            println!("  {}", plain(&r["status"]).replace('_', " "));
            println!(
                "  source DB changed after writeback: {}",
                yes_no(r["source_database_mutated"].as_bool().unwrap_or(false))
            );
        }
        None => println!("  {}", plain(&cs["writeback"]["status"]).replace('_', " ")),
    }
    if details {
        println!();
        println!("Replay details {}", plain(&record["replay_id"]));
        let list = |k: &str| record[k].as_array().cloned().unwrap_or_default();
        println!("approvals: {}", list("approvals").len());
        for a in list("approvals") {
            println!(
                "  {} by {} roles {} ({}) at {}",
                plain(&a["status"]),
                plain(&a["approver"]),
                a["roles"],
                plain(&a["role_assertion"]),
                plain(&a["created_at"])
            );
        }
        println!("events: {}", list("events").len());
        for e in list("events") {
            println!(
                "  {} by {} at {}",
                plain(&e["kind"]),
                plain(&e["actor"]),
                plain(&e["created_at"])
            );
        }
        println!("jobs: {}", list("jobs").len());
        for j in list("jobs") {
            println!(
                "  {} via {}: {}",
                plain(&j["writeback_job_id"]),
                plain(&j["executor"]),
                plain(&j["status"])
            );
        }
        println!("receipts: {}", list("receipts").len());
        for r in list("receipts") {
            println!(
                "  receipt {}: {} job {} rows {}",
                plain(&r["receipt_id"]),
                plain(&r["status"]),
                plain(&r["writeback_job_id"]),
                plain(&r["receipt"]["rows_affected"])
            );
        }
        println!("evidence bundles: {}", list("evidence").len());
        for b in list("evidence") {
            println!("  {}", plain(&b["evidence_bundle_id"]));
        }
        println!("query audit records: {}", list("query_audit").len());
        for q in list("query_audit") {
            println!(
                "  audit {}: {}/{} rows {}",
                plain(&q["audit_id"]),
                plain(&q["source_id"]),
                plain(&q["table_name"]),
                plain(&q["row_count"])
            );
        }
    }
    println!("Next:");
    if state == "pending_review" {
        println!(
            "  synapsor-runner proposals approve {id} --yes{}",
            store_flag(store)
        );
    }
    println!(
        "More detail: synapsor-runner replay show {id} --details{}",
        store_flag(store)
    );
}
