//! Read-only views and upkeep of the local ledger: `evidence`, `query-audit` and `receipts`
//! (`list|show`, and `export` where it applies), `store stats|vacuum`.

use crate::shared::{open_existing_ledger, print_json, usage};
use crate::{
    EvidenceCmd, Global, ListArgs, ProposalFilterArgs, QueryAuditCmd, ReceiptsCmd, StoreCmd,
};
use serde_json::{Value, json};
use std::path::Path;
use synapsor_runner::error::Result;
use synapsor_runner::ledger::{ListFilter, ReceiptFilter};
use synapsor_runner::{Error, Ledger, LedgerLocation};

fn check_limit(limit: u32) -> Result<u32> {
    if (1..=200).contains(&limit) {
        Ok(limit)
    } else {
        Err(usage("--limit must be a number from 1 to 200"))
    }
}

/// The filters of a list command; `--object type:id` split, `--object-type`/`--object-id` winning.
fn list_filter(a: ListArgs) -> Result<ListFilter> {
    let (mut object_type, mut object_id) = (None, None);
    if let Some(o) = &a.object {
        match o.split_once(':') {
            Some((t, id)) if !t.is_empty() && !id.is_empty() => {
                object_type = Some(t.to_string());
                object_id = Some(id.to_string());
            }
            _ => {
                return Err(usage(
                    "--object must use type:id, for example invoice:INV-3001",
                ));
            }
        }
    }
    Ok(ListFilter {
        tenant: a.tenant,
        principal: a.principal,
        capability: a.capability,
        proposal: a.proposal,
        evidence: None,
        object_type: a.object_type.or(object_type),
        object_id: a.object_id.or(object_id),
        source: a.source,
        table: a.table,
        primary_key: None,
        state: None,
        status: None,
        receipt: None,
        query_fingerprint: a.query_fingerprint,
        from: a.from,
        to: a.to,
        limit: check_limit(a.limit)?,
    })
}

fn not_found(code: &'static str, message: String) -> Error {
    Error::Ledger { code, message }
}

async fn evidence_of(ledger: &synapsor_runner::Ledger, id: &str) -> Result<Value> {
    ledger.evidence_bundle(id).await?.ok_or_else(|| {
        not_found(
            "EVIDENCE_NOT_FOUND",
            format!("evidence bundle not found: {id}"),
        )
    })
}

async fn query_audit_of(ledger: &synapsor_runner::Ledger, id: i64) -> Result<Value> {
    ledger.query_audit(id).await?.ok_or_else(|| {
        not_found(
            "QUERY_AUDIT_NOT_FOUND",
            format!("query audit not found: {id}"),
        )
    })
}

fn write_export(path: Option<&Path>, what: &str, body: &str) -> Result<()> {
    let path = path.ok_or_else(|| usage(&format!("{what} export requires --output <path>")))?;
    std::fs::write(path, body).map_err(|e| Error::ConfigFile {
        code: "EXPORT_FAILED",
        message: format!("cannot write {}: {e}", path.display()),
    })
}

pub async fn evidence(g: &Global, action: EvidenceCmd) -> Result<u8> {
    let (ledger, _) = open_existing_ledger(g).await?;
    match action {
        EvidenceCmd::List { filter } => {
            let json_out = filter.json;
            let list = ledger.list_evidence(&list_filter(filter)?).await?;
            if json_out {
                print_json(&json!({"evidence": list}));
            } else if list.is_empty() {
                println!("No evidence bundles found.");
            } else {
                for e in &list {
                    println!(
                        "{}  evidence {}",
                        text(e, "created_at"),
                        text(e, "evidence_bundle_id")
                    );
                    println!(
                        "  capability: {}  object: {}:{}",
                        text(e, "capability"),
                        text(e, "business_object"),
                        text(e, "object_id")
                    );
                    println!(
                        "  proposal: {}  items: {}  query audit: {}",
                        text(e, "proposal_id"),
                        e["item_count"],
                        e["query_audit_count"]
                    );
                }
            }
        }
        EvidenceCmd::Show { id, details, json } => {
            let bundle = evidence_of(&ledger, &id).await?;
            if json {
                print_json(&bundle);
            } else {
                show_evidence(&bundle, details);
            }
        }
        EvidenceCmd::Export { id, output, format } => {
            if !["json", "markdown"].contains(&format.as_str()) {
                return Err(usage(&format!(
                    "unsupported export format: {format}. Supported formats: json, markdown"
                )));
            }
            let bundle = evidence_of(&ledger, &id).await?;
            let body = if format == "json" {
                serde_json::to_string_pretty(&bundle).unwrap_or_default()
            } else {
                evidence_markdown(&bundle)
            };
            write_export(output.as_deref(), "evidence", &body)?;
            println!(
                "exported {id} to {}",
                output.as_deref().unwrap_or(Path::new("-")).display()
            );
        }
    }
    Ok(0)
}

fn show_evidence(b: &Value, details: bool) {
    let items = b["items"].as_array().map(Vec::len).unwrap_or_default();
    let audits = b["query_audit"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    println!("Evidence {}", text(b, "evidence_bundle_id"));
    println!(
        "Used for: {}",
        match b["proposal_id"].as_str() {
            Some(p) => format!("proposal {p}"),
            None => "a read".into(),
        }
    );
    println!("  capability: {}", text(b, "capability"));
    println!(
        "  object: {}:{}",
        text(b, "business_object"),
        text(b, "object_id")
    );
    println!("Captured: {}", text(b, "created_at"));
    println!("  {items} evidence item(s)");
    println!("  {audits} query audit record(s)");
    println!(
        "Source: {} {}",
        text(b, "source_id"),
        text(b, "source_table")
    );
    println!("Rows:");
    for item in b["items"].as_array().into_iter().flatten() {
        println!("  {}", serde_json::to_string(item).unwrap_or_default());
    }
    if details {
        println!("Evidence bundle: {}", text(b, "evidence_bundle_id"));
        println!("Tenant: {}", text(b, "tenant_id"));
        println!("Proposal: {}", text(b, "proposal_id"));
        println!("Principal: {}", text(b, "principal"));
        println!("Capability: {}", text(b, "capability"));
        println!("Source: {}", text(b, "source_id"));
        println!("Table: {}", text(b, "source_table"));
        println!("Query fingerprint: {}", text(b, "query_fingerprint"));
        println!("Rows captured: {items}");
        println!("Created at: {}", text(b, "created_at"));
        println!("Only the capability's visible columns are captured.");
        println!("Related:");
        for a in b["query_audit"].as_array().into_iter().flatten() {
            println!("  query audit {}", a["audit_id"]);
        }
    }
    println!("Next:");
    match b["proposal_id"].as_str() {
        Some(p) => println!("  synapsor-runner proposals show {p}"),
        None => println!(
            "  synapsor-runner query-audit list --evidence {}",
            text(b, "evidence_bundle_id")
        ),
    }
    if !details {
        println!("More detail:");
        println!(
            "  synapsor-runner evidence show {} --details",
            text(b, "evidence_bundle_id")
        );
    }
}

fn evidence_markdown(b: &Value) -> String {
    let mut md = format!("# Evidence {}\n\n", text(b, "evidence_bundle_id"));
    for (label, key) in [
        ("Tenant", "tenant_id"),
        ("Proposal", "proposal_id"),
        ("Principal", "principal"),
        ("Capability", "capability"),
        ("Source", "source_id"),
        ("Table", "source_table"),
        ("Object", "object_id"),
        ("Query fingerprint", "query_fingerprint"),
        ("Created at", "created_at"),
    ] {
        md.push_str(&format!("- {label}: {}\n", text(b, key)));
    }
    md.push_str("\n## Items\n\n```json\n");
    md.push_str(&serde_json::to_string_pretty(&b["items"]).unwrap_or_default());
    md.push_str("\n```\n");
    md
}

fn parse_audit_id(s: &str, what: &str) -> Result<i64> {
    s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        usage(&format!(
            "query-audit {what} requires <audit_id>: a positive number"
        ))
    })
}

pub async fn query_audit(g: &Global, action: QueryAuditCmd) -> Result<u8> {
    let (ledger, _) = open_existing_ledger(g).await?;
    match action {
        QueryAuditCmd::List {
            filter,
            evidence,
            primary_key,
        } => {
            let json_out = filter.json;
            let mut f = list_filter(filter)?;
            f.evidence = evidence;
            f.primary_key = primary_key;
            let list = ledger.list_query_audit(&f).await?;
            if json_out {
                print_json(&json!({"query_audit": list}));
            } else if list.is_empty() {
                println!("No query audit records found.");
            } else {
                for a in &list {
                    println!("{}  audit {}", text(a, "created_at"), a["audit_id"]);
                    println!(
                        "  source: {}/{}  rows: {}",
                        text(a, "source_id"),
                        text(a, "table_name"),
                        a["row_count"]
                    );
                    println!(
                        "  proposal: {}  evidence: {}",
                        text(a, "proposal_id"),
                        text(a, "evidence_bundle_id")
                    );
                    println!(
                        "  detail: synapsor-runner query-audit show {}",
                        a["audit_id"]
                    );
                }
            }
        }
        QueryAuditCmd::Show {
            audit_id,
            details,
            json,
        } => {
            let id = parse_audit_id(&audit_id, "show")?;
            let a = query_audit_of(&ledger, id).await?;
            if json {
                print_json(&a);
            } else {
                println!("Query audit {id}");
                println!(
                    "Read: {} {} (fingerprint {})",
                    text(&a, "source_id"),
                    text(&a, "table_name"),
                    text(&a, "query_fingerprint")
                );
                println!("Rows returned: {}", a["row_count"]);
                println!("Linked records:");
                println!("  proposal: {}", text(&a, "proposal_id"));
                println!("  evidence: {}", text(&a, "evidence_bundle_id"));
                println!("Recorded at: {}", text(&a, "created_at"));
                if details {
                    let redacted = a["payload"]["parameters_redacted"] == json!(true);
                    println!(
                        "Parameters redacted: {}",
                        if redacted { "yes" } else { "unknown" }
                    );
                    println!(
                        "Payload: {}",
                        serde_json::to_string_pretty(&a["payload"]).unwrap_or_default()
                    );
                } else {
                    println!("More detail:");
                    println!("  synapsor-runner query-audit show {id} --details");
                }
            }
        }
        QueryAuditCmd::Export { audit_id, output } => {
            let id = parse_audit_id(&audit_id, "export")?;
            let a = query_audit_of(&ledger, id).await?;
            let body = serde_json::to_string_pretty(&a).unwrap_or_default();
            write_export(output.as_deref(), "query-audit", &body)?;
            println!(
                "exported query audit {id} to {}",
                output.as_deref().unwrap_or(Path::new("-")).display()
            );
        }
    }
    Ok(0)
}

/// `rct_000001` for receipt 1.
fn receipt_name(id: i64) -> String {
    format!("rct_{id:06}")
}

/// `7`, `rct_000007` → 7.
fn parse_receipt_id(s: &str) -> Result<i64> {
    s.strip_prefix("rct_")
        .unwrap_or(s)
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            usage("receipts show requires <receipt_id>: a positive number or rct_000001")
        })
}

pub async fn receipts(g: &Global, action: ReceiptsCmd) -> Result<u8> {
    let (ledger, store) = open_existing_ledger(g).await?;
    match action {
        ReceiptsCmd::List {
            proposal,
            writeback_job,
            idempotency_key,
            status,
            from,
            to,
            limit,
            json,
        } => {
            let limit = check_limit(limit)?;
            let filter = ReceiptFilter {
                proposal,
                writeback_job,
                idempotency_key,
                status,
                from,
                to,
                limit,
            };
            let list = ledger.list_receipts(&filter).await?;
            if json {
                print_json(&json!({"receipts": list}));
            } else if list.is_empty() {
                println!("No receipts found in {}.", store.display());
            } else {
                for r in &list {
                    println!(
                        "{}  receipt {}  {}",
                        text(r, "created_at"),
                        r["receipt_id"],
                        text(r, "status")
                    );
                    println!(
                        "  proposal: {}  job: {}",
                        text(r, "proposal_id"),
                        text(r, "writeback_job_id")
                    );
                }
            }
        }
        ReceiptsCmd::Show {
            receipt,
            details,
            json,
        } => {
            let id = parse_receipt_id(&receipt)?;
            let r = ledger
                .receipt(id)
                .await?
                .ok_or_else(|| synapsor_runner::Error::Ledger {
                    code: "RECEIPT_NOT_FOUND",
                    message: format!("receipt not found: {receipt}"),
                })?;
            if json {
                print_json(&r);
            } else {
                show_receipt(&r, details);
            }
        }
    }
    Ok(0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

fn show_receipt(r: &Value, details: bool) {
    let id = r["receipt_id"].as_i64().unwrap_or_default();
    let receipt = &r["receipt"];
    let job = text(r, "writeback_job_id");
    println!("Receipt {}", receipt_name(id));
    println!("Status: {}", text(r, "status"));
    println!("Proposal: {}", text(r, "proposal_id"));
    println!(
        "Writeback: {}",
        if job.starts_with("wbj_") {
            "guarded single-row update"
        } else {
            "app-owned executor"
        }
    );
    println!("Checks:");
    println!(
        "  affected rows: {}",
        receipt["rows_affected"].as_u64().unwrap_or_default()
    );
    println!(
        "Source DB changed: {}",
        if r["source_database_mutated"] == json!(true) {
            "yes"
        } else {
            "no"
        }
    );
    if details {
        println!("Receipt: {id}");
        println!("Writeback job: {job}");
        println!("Runner: {}", text(r, "runner_id"));
        println!("Idempotency key: {}", text(r, "idempotency_key"));
        println!(
            "Safe error: {}",
            receipt["safe_error_code"].as_str().unwrap_or("none")
        );
        println!("Receipt hash: {}", text(receipt, "receipt_hash"));
        println!("Recorded at: {}", text(r, "created_at"));
    }
    println!("Next:");
    println!("  synapsor-runner replay show {}", text(r, "proposal_id"));
    if !details {
        println!("More detail:");
        println!("  synapsor-runner receipts show {id} --details");
    }
}

/// `30d`, `12h`, `15m`, `45s`.
fn parse_age(s: &str) -> Result<chrono::Duration> {
    let bad = || usage("--older-than must be N followed by s, m, h or d (e.g. 30d)");
    let (at, unit) = s.char_indices().last().ok_or_else(bad)?;
    let n: i64 = s[..at].parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    match unit.to_ascii_lowercase() {
        's' => chrono::Duration::try_seconds(n),
        'm' => chrono::Duration::try_minutes(n),
        'h' => chrono::Duration::try_hours(n),
        'd' => chrono::Duration::try_days(n),
        _ => None,
    }
    .ok_or_else(bad)
}

/// `store reset --yes`: delete the ledger file and its WAL companions.
async fn store_reset(g: &Global, yes: bool, force: bool, json: bool) -> Result<u8> {
    if let location @ LedgerLocation::Postgres { .. } = crate::shared::ledger_location(g) {
        if !yes {
            return Err(usage(
                "store reset drops the PostgreSQL ledger's schema with everything in it. Stop every instance that uses it, back up anything you need, and rerun with --yes.",
            ));
        }
        let ledger = location.open(&Default::default()).await?;
        ledger.drop_postgres_schema().await?;
        if json {
            print_json(
                &json!({"ok": true, "store": location.to_string(), "removed": [location.to_string()], "source_database_changed": false}),
            );
        } else {
            println!("Ledger reset complete");
            println!("Store: {location}");
            println!("Source database changed: no");
        }
        return Ok(0);
    }
    let store = crate::shared::ledger_path(g);
    if store.as_os_str() == ":memory:" {
        return Err(usage("store reset needs a ledger file, not :memory:"));
    }
    if !yes {
        return Err(usage(
            "store reset is destructive for the local ledger. Rerun with --yes after backing up anything you need.",
        ));
    }
    crate::shared::check_not_in_use(&store, "store reset", force)?;
    let mut removed = Vec::new();
    for suffix in ["", "-wal", "-shm", ".lease.json"] {
        let mut p = store.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::ConfigFile {
                code: "LOCAL_STORE_RESET_FAILED",
                message: format!("cannot remove {}: {e}", p.display()),
            })?;
            removed.push(p.display().to_string());
        }
    }
    if json {
        print_json(
            &json!({"ok": true, "store": store.display().to_string(), "removed": removed, "source_database_changed": false}),
        );
    } else {
        println!("Local store reset complete");
        println!("Store: {}", store.display());
        println!("Source database changed: no");
        println!("Removed:");
        for r in &removed {
            println!("  {r}");
        }
    }
    Ok(0)
}

/// `store grants`: the ledger's role layout as SQL, for the configured schema.
fn store_grants(
    g: &Global,
    role: &str,
    owner: &str,
    schema: Option<String>,
    prune: bool,
) -> Result<u8> {
    let schema = schema
        .or_else(|| match crate::shared::ledger_location(g) {
            LedgerLocation::Postgres { schema, .. } => Some(schema),
            LedgerLocation::Sqlite(_) => None,
        })
        .unwrap_or_else(|| "synapsor".into());
    let ident = regex_lite::Regex::new(r"^[a-z_][a-z0-9_]{0,62}$").expect("regex");
    for (what, name) in [
        ("--schema", schema.as_str()),
        ("--role", role),
        ("--owner", owner),
    ] {
        if !ident.is_match(name) {
            return Err(usage(&format!(
                "{what} must be lower-case letters, digits and _ (got {name:?})"
            )));
        }
    }
    println!(
        "-- 1. Before the first start: the owner creates and migrates the ledger (connect as it"
    );
    println!("--    for the first start and for upgrades).");
    println!("CREATE ROLE {owner} LOGIN;");
    println!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner};");
    println!("-- 2. After the first start created the tables: the runner's role.");
    println!("CREATE ROLE {role} LOGIN;");
    println!("GRANT USAGE ON SCHEMA {schema} TO {role};");
    println!("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO {role};");
    println!(
        "GRANT UPDATE ON {schema}.proposals, {schema}.writeback_jobs, {schema}.writeback_receipts, {schema}.evidence_bundles, {schema}.replay_records, {schema}.runner_state TO {role};"
    );
    println!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role};");
    if prune {
        println!("-- store prune (old reads no proposal references):");
        println!(
            "GRANT DELETE ON {schema}.evidence_bundles, {schema}.evidence_items, {schema}.query_audit TO {role};"
        );
    }
    println!(
        "-- No UPDATE or DELETE on proposal_events, approvals, evidence_items or query_audit: the ledger"
    );
    println!(
        "-- only appends to them. Set the roles' passwords (ALTER ROLE ... PASSWORD) as your site does."
    );
    Ok(0)
}

/// `store migrate`: copy a SQLite ledger into a PostgreSQL one.
async fn store_migrate(
    g: &Global,
    from: Option<std::path::PathBuf>,
    to_url_env: Option<String>,
    to_schema: Option<String>,
    json: bool,
) -> Result<u8> {
    let loaded = synapsor_runner::config::load_config(crate::shared::config_path(g)).ok();
    let configured = loaded
        .as_ref()
        .and_then(|c| c.config.storage.as_ref())
        .filter(|s| s.engine.as_deref() == Some("postgres"));
    let url_env = to_url_env
        .or_else(|| configured.and_then(|s| s.url_env.clone()))
        .ok_or_else(|| {
            usage("store migrate needs a PostgreSQL target: storage.engine \"postgres\" with url_env in the config, or --to-url-env VAR")
        })?;
    let schema = to_schema
        .or_else(|| configured.and_then(|s| s.schema.clone()))
        .unwrap_or_else(|| "synapsor".into());
    let from = from.unwrap_or_else(|| {
        synapsor_runner::runner::resolve_ledger_path(g.store.as_deref(), loaded.as_ref())
    });
    if !from.exists() {
        return Err(Error::ConfigFile {
            code: "LOCAL_STORE_NOT_FOUND",
            message: format!(
                "No SQLite ledger to copy at {}; pass --from PATH",
                from.display()
            ),
        });
    }
    let source = Ledger::open_read_only(&from)?;
    let target_location = LedgerLocation::Postgres { url_env, schema };
    let target = target_location.open(&Default::default()).await?;
    let out = source.copy_to(&target).await?;
    if json {
        let mut out = out;
        out["from"] = json!(from.display().to_string());
        out["to"] = json!(target_location.to_string());
        print_json(&out);
    } else if out["already_migrated"] == json!(true) {
        println!(
            "Nothing to copy: {target_location} already holds the {} proposals of {}.",
            out["proposals"],
            from.display()
        );
    } else {
        println!("Copied {} into {target_location}", from.display());
        for (t, n) in out["copied"].as_object().into_iter().flatten() {
            println!("  {t}: {n}");
        }
        println!(
            "Digests checked: {} proposals, no problems",
            out["proposals"]
        );
        println!(
            "Next: point the runner at it (storage.engine \"postgres\") and run `synapsor-runner store check`."
        );
    }
    Ok(0)
}

pub async fn store(g: &Global, action: StoreCmd) -> Result<u8> {
    match action {
        StoreCmd::Reset { yes, force, json } => return store_reset(g, yes, force, json).await,
        StoreCmd::Migrate {
            from,
            to_url_env,
            to_schema,
            json,
        } => return store_migrate(g, from, to_url_env, to_schema, json).await,
        StoreCmd::Grants {
            role,
            owner,
            schema,
            prune,
        } => return store_grants(g, &role, &owner, schema, prune),
        _ => {}
    }
    let (ledger, store) = open_existing_ledger(g).await?;
    match action {
        StoreCmd::Check { json } => {
            let mut report = ledger.check().await?;
            report["path"] = json!(store.display().to_string());
            let problems = report["problems"].as_array().map_or(0, Vec::len);
            if json {
                print_json(&report);
            } else {
                println!(
                    "Local store {}: {} proposals checked, {} problem{}",
                    store.display(),
                    report["checked"]["proposals"],
                    problems,
                    if problems == 1 { "" } else { "s" }
                );
                for p in report["problems"].as_array().into_iter().flatten() {
                    println!(
                        "  {} {}: {}",
                        p["code"].as_str().unwrap_or_default(),
                        p["proposal_id"].as_str().unwrap_or_default(),
                        p["detail"].as_str().unwrap_or_default()
                    );
                }
            }
            if problems > 0 {
                return Ok(crate::exit::ERROR);
            }
        }
        StoreCmd::Stats { json } => {
            let mut stats = ledger.stats().await?;
            stats["path"] = json!(store.display().to_string());
            if json {
                print_json(&stats);
            } else {
                println!("Local store {}", store.display());
                if let Some(tables) = stats["tables"].as_object() {
                    for (t, n) in tables {
                        println!("  {t}: {n}");
                    }
                }
                println!("approx bytes: {}", stats["approx_bytes"]);
            }
        }
        StoreCmd::Prune {
            older_than,
            dry_run,
            yes,
            force,
            json,
        } => {
            if yes && dry_run {
                return Err(usage("store prune takes --yes or --dry-run, not both"));
            }
            let age = older_than
                .as_deref()
                .ok_or_else(|| {
                    usage("store prune requires --older-than N followed by s, m, h or d (e.g. 30d)")
                })
                .and_then(parse_age)?;
            // A PostgreSQL ledger is shared by running instances by design; pruning old
            // unreferenced reads is safe alongside them.
            if yes && ledger.backend() == "sqlite" {
                crate::shared::check_not_in_use(&store, "store prune", force)?;
            }
            let cutoff =
                (chrono::Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let out = ledger.prune_reads(&cutoff, !yes).await?;
            if json {
                print_json(&out);
            } else {
                println!(
                    "{}",
                    if yes {
                        "Local store prune complete"
                    } else {
                        "Local store prune dry run"
                    }
                );
                println!("Store: {}", store.display());
                println!("Cutoff: {cutoff}");
                println!("Only reads' evidence and query audit no proposal references are pruned.");
                for (t, n) in out["deleted"].as_object().into_iter().flatten() {
                    println!("  {t}: {n}");
                }
                if !yes {
                    println!("No rows were deleted. Rerun with --yes to apply this prune.");
                }
            }
        }
        StoreCmd::Reset { .. } | StoreCmd::Migrate { .. } | StoreCmd::Grants { .. } => {
            unreachable!("handled before the ledger is opened")
        }
        StoreCmd::Vacuum { json } => {
            let (before, after) = ledger.vacuum().await?;
            if json {
                print_json(
                    &json!({"path": store.display().to_string(), "approx_bytes_before": before, "approx_bytes_after": after}),
                );
            } else {
                println!("vacuumed local store {}", store.display());
                println!("approx bytes: {before} -> {after}");
            }
        }
    }
    Ok(0)
}

/// `config show [--redacted]`: the config file as JSON.
pub fn config_show(g: &Global, redacted: bool) -> Result<u8> {
    let path = crate::shared::config_path(g);
    let loaded = synapsor_runner::config::load_config(&path)?;
    let text = std::fs::read_to_string(&loaded.path).map_err(|e| Error::ConfigFile {
        code: "CONFIG_NOT_FOUND",
        message: format!("cannot read {}: {e}", loaded.path.display()),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::ConfigFile {
        code: "CONFIG_INVALID_JSON",
        message: format!("{} is not JSON: {e}", loaded.path.display()),
    })?;
    print_json(&if redacted {
        redact_config(&value)
    } else {
        value
    });
    Ok(0)
}

/// Mask credential-like values by the ledger's rules, except under `*_env` keys: those hold the
/// names of environment variables, not their values.
fn redact_config(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let kept = if k.ends_with("_env") {
                        v.clone()
                    } else if v.is_object() || v.is_array() {
                        redact_config(v)
                    } else {
                        let (masked, changed) =
                            synapsor_runner::ledger::redact_secrets(&json!({ k.as_str(): v }));
                        if changed {
                            masked[k].clone()
                        } else {
                            v.clone()
                        }
                    };
                    (k.clone(), kept)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_config).collect()),
        other => synapsor_runner::ledger::redact_secrets(other).0,
    }
}

/// `config migrate`: version 1 is the only config format.
pub fn config_migrate(g: &Global) -> Result<u8> {
    let loaded = synapsor_runner::config::load_config(crate::shared::config_path(g))?;
    println!("config already current ({})", loaded.path.display());
    Ok(0)
}

/// `validate --job <path>`: parse a writeback job file against the protocol.
pub fn validate_job(job: Option<&Path>) -> Result<u8> {
    let path = job.ok_or_else(|| usage("--job <path> is required"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(&format!("cannot read --job {}: {e}", path.display())))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| usage(&format!("--job is not valid JSON: {e}")))?;
    synapsor_runner::protocol::WritebackJob::parse(&value)?;
    println!("job valid");
    Ok(0)
}

/// `proposals writeback-job`: the job an apply of this approved proposal would run.
pub async fn writeback_job(
    g: &Global,
    selector: &str,
    lease_seconds: i64,
    output: Option<&Path>,
) -> Result<u8> {
    if !(1..=86_400).contains(&lease_seconds) {
        return Err(usage("--lease-seconds must be from 1 to 86400"));
    }
    let runner = crate::shared::open_runner(g).await?;
    let id = runner.ledger().resolve_selector(selector).await?;
    let p = runner.ledger().proposal(&id).await?;
    if p.change_set.mode == "shadow" {
        return Err(Error::Ledger {
            code: "SHADOW_WRITEBACK_DISABLED",
            message: format!("shadow proposal {id} cannot be converted into a writeback job"),
        });
    }
    if !p.state.may_apply() {
        return Err(Error::Ledger {
            code: "PROPOSAL_NOT_APPROVED",
            message: format!("proposal {id} is {}, not approved for writeback", p.state),
        });
    }
    let config = runner.config();
    let cap = synapsor_runner::apply::matching_capability(config, &p)?;
    let (executor, _) = synapsor_runner::apply::authority::executor_type(config, cap)?;
    let engine = config
        .sources
        .get(&p.source_id)
        .map(|s| s.engine.as_str())
        .unwrap_or_default();
    let opts = synapsor_runner::ApplyOptions {
        lease_seconds,
        ..Default::default()
    };
    let job = synapsor_runner::apply::job_for_executor(&p, engine, executor, &opts);
    let value = job.to_value();
    match output {
        None => print_json(&value),
        Some(path) => {
            std::fs::write(
                path,
                serde_json::to_string_pretty(&value).unwrap_or_default(),
            )
            .map_err(|e| Error::ConfigFile {
                code: "EXPORT_FAILED",
                message: format!("cannot write {}: {e}", path.display()),
            })?;
            println!(
                "created writeback job {} for {id} at {}",
                job.writeback_job_id,
                path.display()
            );
        }
    }
    Ok(0)
}

/// `replay list`: one entry per proposal.
pub async fn replay_list(
    g: &Global,
    filter: ListArgs,
    proposals: ProposalFilterArgs,
) -> Result<u8> {
    let (ledger, _) = open_existing_ledger(g).await?;
    let json_out = filter.json;
    let f = proposal_filter(filter, proposals)?;
    let list = ledger.list_replays(&f).await?;
    if json_out {
        print_json(&json!({"replays": list}));
    } else if list.is_empty() {
        println!("No replays found.");
    } else {
        for r in &list {
            println!("{}  {}", text(r, "created_at"), text(r, "replay_id"));
            println!(
                "  {}  {}:{}  {}",
                text(r, "capability"),
                text(r, "business_object"),
                text(r, "object_id"),
                text(r, "state")
            );
        }
    }
    Ok(0)
}

/// `replay export`: a proposal's replay record as JSON or markdown.
pub async fn replay_export(
    g: &Global,
    selector: Option<String>,
    output: Option<&Path>,
    format: &str,
) -> Result<u8> {
    if !["json", "markdown"].contains(&format) {
        return Err(usage(&format!(
            "unsupported export format: {format}. Supported formats: json, markdown"
        )));
    }
    let sel = selector.ok_or_else(|| usage("replay export requires <proposal_id> or latest"))?;
    let (ledger, _) = open_existing_ledger(g).await?;
    let id = ledger.resolve_selector(&sel).await?;
    let record = ledger.replay(&id).await?;
    let body = if format == "json" {
        serde_json::to_string_pretty(&record).unwrap_or_default()
    } else {
        replay_markdown(&record)
    };
    write_export(output, "replay", &body)?;
    println!(
        "exported {} to {}",
        text(&record, "replay_id"),
        output.unwrap_or(Path::new("-")).display()
    );
    Ok(0)
}

fn replay_markdown(r: &Value) -> String {
    let p = &r["proposal"];
    let cs = &p["change_set"];
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let block = |v: &Value| format!("```json\n{}\n```\n", pretty(v));
    let mut md = String::from("# Synapsor Replay\n\n");
    md.push_str(&format!(
        "- Replay: {}\n- Proposal: {}\n- State: {}\n\n",
        text(r, "replay_id"),
        text(p, "proposal_id"),
        text(p, "state")
    ));
    md.push_str("## What The Agent Requested\n\n");
    md.push_str(&format!(
        "{} on {}:{}\n\n",
        text(p, "action"),
        text(p, "business_object"),
        text(p, "object_id")
    ));
    md.push_str("## Trusted Context\n\n");
    md.push_str(&format!(
        "- Tenant: {}\n- Principal: {}\n\n",
        text(p, "tenant_id"),
        text(p, "principal")
    ));
    md.push_str("## Evidence\n\n");
    md.push_str(&block(&r["evidence"]));
    md.push_str("\n## Proposed Diff\n\n");
    md.push_str(&block(
        &json!({"before": cs["before"], "patch": cs["patch"], "after": cs["after"]}),
    ));
    md.push_str("\n## Approval\n\n");
    md.push_str(&block(&r["approvals"]));
    md.push_str("\n## Guarded Writeback\n\n");
    md.push_str(&block(
        &json!({"jobs": r["jobs"], "receipts": r["receipts"]}),
    ));
    md.push_str("\n## Query Audit\n\n");
    md.push_str(&block(&r["query_audit"]));
    md.push_str("\n## Replay Note\n\n");
    md.push_str("This is local captured interaction replay, not external database time travel. It shows what the runner recorded: the evidence the agent saw, the change it proposed, who approved it and what the guarded writeback did.\n");
    md
}

/// The list filters plus the proposal filters (`--evidence`, `--receipt`, `--state`, `--status`).
fn proposal_filter(filter: ListArgs, p: ProposalFilterArgs) -> Result<ListFilter> {
    let mut f = list_filter(filter)?;
    f.evidence = p.evidence;
    f.receipt = receipt_filter(p.receipt.as_deref())?;
    f.state = p.state;
    f.status = p.status;
    Ok(f)
}

/// `--receipt 7` or `--receipt rct_000007`.
fn receipt_filter(receipt: Option<&str>) -> Result<Option<i64>> {
    receipt
        .map(|r| {
            r.strip_prefix("rct_")
                .unwrap_or(r)
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| usage("--receipt must be a positive receipt number"))
        })
        .transpose()
}

/// `activity search`: proposals, and the evidence and query audit of reads not tied to a
/// proposal, merged newest first.
pub async fn activity_search(
    g: &Global,
    filter: ListArgs,
    proposals: ProposalFilterArgs,
    replay: Option<String>,
) -> Result<u8> {
    let (ledger, _) = open_existing_ledger(g).await?;
    let json_out = filter.json;
    let mut f = proposal_filter(filter, proposals)?;
    if let Some(r) = replay {
        let id = r.strip_prefix("replay_").unwrap_or(&r).to_string();
        if f.proposal.as_ref().is_some_and(|p| *p != id) {
            return Err(usage("--replay and --proposal name different proposals"));
        }
        f.proposal = Some(id);
    }
    let only_proposals = f.state.is_some() || f.status.is_some() || f.receipt.is_some();
    let mut items: Vec<Value> = ledger
        .list_replays(&f)
        .await?
        .into_iter()
        .map(|p| {
            json!({"kind": "proposal", "created_at": p["created_at"], "capability": p["capability"], "tenant_id": p["tenant_id"],
                   "object": format!("{}:{}", text(&p, "business_object"), text(&p, "object_id")), "proposal_id": p["proposal_id"],
                   "state": p["state"], "replay_id": p["replay_id"]})
        })
        .collect();
    if !only_proposals && f.proposal.is_none() {
        for e in ledger.list_evidence(&f).await? {
            if e["proposal_id"].is_null() {
                items.push(json!({"kind": "evidence", "created_at": e["created_at"], "capability": e["capability"], "tenant_id": e["tenant_id"],
                                  "object": format!("{}:{}", text(&e, "business_object"), text(&e, "object_id")), "evidence_bundle_id": e["evidence_bundle_id"]}));
            }
        }
        for a in ledger.list_query_audit(&f).await? {
            if a["proposal_id"].is_null() && a["evidence_bundle_id"].is_null() {
                items.push(json!({"kind": "query-audit", "created_at": a["created_at"], "capability": a["capability"], "tenant_id": a["tenant_id"],
                                  "object": format!("{}:{}", text(&a, "business_object"), text(&a, "object_id")), "audit_id": a["audit_id"]}));
            }
        }
    }
    items.sort_by(|a, b| text(b, "created_at").cmp(text(a, "created_at")));
    items.truncate(f.limit as usize);
    if json_out {
        print_json(&json!({"interactions": items}));
        return Ok(0);
    }
    if items.is_empty() {
        println!("No local interactions found.");
        return Ok(0);
    }
    println!("Found {} local interaction(s)", items.len());
    for (n, i) in items.iter().enumerate() {
        println!("{}. {}", n + 1, text(i, "created_at"));
        println!("   kind: {}", text(i, "kind"));
        println!("   capability: {}", text(i, "capability"));
        println!("   tenant: {}", text(i, "tenant_id"));
        println!("   object: {}", text(i, "object"));
        for (label, key) in [
            ("proposal", "proposal_id"),
            ("evidence", "evidence_bundle_id"),
            ("query audit", "audit_id"),
            ("state", "state"),
            ("replay", "replay_id"),
        ] {
            match &i[key] {
                Value::String(v) => println!("   {label}: {v}"),
                Value::Number(v) => println!("   {label}: {v}"),
                _ => {}
            }
        }
    }
    println!("Next:");
    match items.iter().find(|i| i["kind"] == "proposal") {
        Some(p) => println!("  synapsor-runner replay show {}", text(p, "proposal_id")),
        None => println!(
            "  synapsor-runner evidence show {}",
            text(&items[0], "evidence_bundle_id")
        ),
    }
    Ok(0)
}

/// `writeback doctor`: every source direct-SQL proposals write to, its writer variable, and
/// with `check_db` a rolled-back probe of the writer. Exit 1 when a variable is missing or a
/// probe failed.
pub async fn writeback_doctor(g: &Global, check_db: bool, json_out: bool) -> Result<u8> {
    let runner = crate::shared::open_runner(g).await?;
    let config = runner.config();
    let mut names: Vec<&String> = config
        .capabilities
        .iter()
        .filter(|c| {
            c.kind == synapsor_runner::config::CapabilityKind::Proposal
                && c.executor_name() == "sql_update"
        })
        .map(|c| &c.source)
        .collect();
    names.sort();
    names.dedup();
    let mut ok = true;
    let mut sources = Vec::new();
    for name in names {
        let Some(src) = config.sources.get(name) else {
            continue;
        };
        let engine = src.engine.as_str();
        let env = src.write_url_env.clone();
        let set = match (&env, engine) {
            (_, "sqlite") => true,
            (Some(v), _) => std::env::var(v).is_ok_and(|x| !x.is_empty()),
            (None, _) => false,
        };
        ok &= set;
        let db = if check_db && set {
            let probe = runner.probe_writeback(name).await;
            ok &= probe.is_ok();
            Some(match probe {
                Ok(note) => json!({"ok": true, "detail": note}),
                Err(e) => json!({"ok": false, "code": e.code(), "detail": e.safe_message()}),
            })
        } else {
            None
        };
        sources.push(json!({"source": name, "engine": engine, "writer_env": env, "env_set": set, "db_check": db}));
    }
    if json_out {
        print_json(&json!({"ok": ok, "sources": sources}));
    } else {
        println!("Synapsor writeback doctor");
        println!("Config: {}", runner.loaded_config().path.display());
        if sources.is_empty() {
            println!("No direct SQL writeback sources found.");
        }
        for s in &sources {
            println!("Source: {}", text(s, "source"));
            println!("  engine: {}", text(s, "engine"));
            println!(
                "  writer env: {}",
                s["writer_env"].as_str().unwrap_or("(none: sqlite file)")
            );
            println!(
                "  env status: {}",
                if s["env_set"] == json!(true) {
                    "set"
                } else {
                    "missing"
                }
            );
            println!("  receipt table: synapsor_writeback_receipts");
            if let Some(db) = s["db_check"].as_object() {
                let passed = db.get("ok") == Some(&json!(true));
                println!("  db check: {}", if passed { "ok" } else { "failed" });
                println!(
                    "    {}",
                    db.get("detail").and_then(Value::as_str).unwrap_or_default()
                );
            }
        }
        println!("Next:");
        println!("  synapsor-runner writeback migration --engine <engine>");
        println!("  synapsor-runner writeback grants --engine <engine> --writer-role <role>");
    }
    Ok(if ok { 0 } else { 1 })
}
