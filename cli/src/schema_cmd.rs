//! `schema inspect`: what a database holds, read from its catalog, with suggestions for a config.

use crate::SchemaCmd;
use crate::shared::{print_json, usage};
use std::time::Duration;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::schema::{self, Inspection, Table, Target};

pub async fn run(action: SchemaCmd) -> Result<u8> {
    let SchemaCmd::Inspect {
        from_env,
        sqlite,
        schema,
        table,
        timeout_ms,
        json,
    } = action;
    if timeout_ms == 0 || timeout_ms > 600_000 {
        return Err(usage("--timeout-ms must be between 1 and 600000"));
    }
    let url;
    let target = match (&from_env, &sqlite) {
        (_, Some(path)) => Target::Sqlite(path),
        (Some(var), None) => {
            url = std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::ConfigFile {
                    code: "DATABASE_URL_ENV_MISSING",
                    message: format!("{var} is not set: export the database URL in {var}, or pass --sqlite PATH for a SQLite file"),
                })?;
            Target::Url(url.trim())
        }
        (None, None) => {
            return Err(usage(
                "schema inspect needs --from-env VAR or --sqlite PATH",
            ));
        }
    };
    let mut found =
        schema::inspect(target, schema.as_deref(), Duration::from_millis(timeout_ms)).await?;
    if let Some(t) = &table {
        found.tables.retain(|x| &x.name == t);
        if found.tables.is_empty() {
            return Err(Error::ConfigFile {
                code: "TABLE_NOT_FOUND",
                message: format!(
                    "no table or view named {t} (names are matched exactly; see schema inspect without --table)"
                ),
            });
        }
    }
    if json {
        print_json(&serde_json::to_value(&found).expect("an inspection serialises"));
    } else {
        print!("{}", render(&found));
    }
    Ok(0)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn render(i: &Inspection) -> String {
    let mut out = format!(
        "{} {}{}\n",
        i.engine,
        i.server_version.lines().next().unwrap_or_default(),
        if i.current_user.is_empty() {
            String::new()
        } else {
            format!(" as {}", i.current_user)
        }
    );
    if i.tables.is_empty() {
        out.push_str("\nNo tables or views found.\n");
    }
    for t in &i.tables {
        out.push('\n');
        out.push_str(&render_table(t));
    }
    for w in &i.warnings {
        out.push_str(&format!("\nNote: {w}\n"));
    }
    out
}

fn render_table(t: &Table) -> String {
    let s = &t.suggestions;
    let mut out = format!(
        "{}.{} ({}{})\n",
        t.schema,
        t.name,
        t.kind,
        if t.writable { "" } else { ", read-only" }
    );
    let pk = if t.primary_key.is_empty() {
        format!(
            "none{}",
            s.primary_key
                .as_ref()
                .map(|c| format!(" (candidate: {c})"))
                .unwrap_or_default()
        )
    } else {
        t.primary_key.join(", ")
    };
    out.push_str(&format!("  primary key:      {pk}\n"));
    out.push_str(&format!(
        "  tenant:           {}\n",
        list(&s.tenant_columns)
    ));
    out.push_str(&format!(
        "  version (guard):  {}\n",
        if s.conflict_columns.is_empty() {
            "- (no version column: a row-hash guard needs weak_guard_ack)".into()
        } else {
            list(&s.conflict_columns)
        }
    ));
    out.push_str(&format!(
        "  sensitive:        {}\n",
        list(&s.sensitive_columns)
    ));
    out.push_str(&format!(
        "  visible default:  {}\n",
        list(&s.default_visible_columns)
    ));
    out.push_str("  columns:\n");
    for c in &t.columns {
        let g = &c.suggestions;
        let mut tags: Vec<&str> = Vec::new();
        for (on, tag) in [
            (t.primary_key.contains(&c.name), "key"),
            (g.tenant, "tenant"),
            (g.conflict, "version"),
            (g.sensitive, "sensitive"),
            (g.large_or_binary, "large"),
            (
                g.immutable && !t.primary_key.contains(&c.name) && !g.tenant,
                "immutable",
            ),
            (c.generated, "generated"),
            (!c.nullable, "not null"),
        ] {
            if on {
                tags.push(tag);
            }
        }
        out.push_str(&format!(
            "    {:<24} {:<28} {}\n",
            c.name,
            c.data_type,
            tags.join(", ")
        ));
    }
    for f in &t.foreign_keys {
        out.push_str(&format!(
            "  references:       ({}) -> {}.{} ({})\n",
            f.columns.join(", "),
            f.referenced_schema,
            f.referenced_table,
            f.referenced_columns.join(", ")
        ));
    }
    out
}
