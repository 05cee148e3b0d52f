//! `init` on a terminal with no source flag: the same choices as the flags, asked one by one
//! with the inspection's suggestions pre-selected, then a preview of the config, written on
//! confirmation. Every answer becomes the flag it stands for, so the config is made and checked
//! exactly as `init --from-env … --table …` makes it; the equivalent command is printed too.

use crate::InitArgs;
use dialoguer::{Confirm, Input, MultiSelect, Select};
use std::path::PathBuf;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::schema::{Inspection, Table};

fn cancelled(e: dialoguer::Error) -> Error {
    Error::ConfigFile {
        code: "INIT_CANCELLED",
        message: format!("init stopped: {e}"),
    }
}

/// Whether `init` should ask: no source given, and a person at a terminal.
pub fn wanted(a: &InitArgs) -> bool {
    use std::io::IsTerminal;
    a.from_env.is_none()
        && a.sqlite.is_none()
        && a.inspection_json.is_none()
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// A variable of this process that holds a database URL, for the first question's default.
fn url_variable() -> Option<String> {
    let mut found: Vec<String> = std::env::vars()
        .filter(|(_, v)| {
            ["postgres://", "postgresql://", "mysql://", "mariadb://"]
                .iter()
                .any(|p| v.starts_with(p))
        })
        .map(|(k, _)| k)
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Ask where the database is; fills `--from-env` or `--sqlite`.
pub fn ask_source(a: &mut InitArgs) -> Result<()> {
    eprintln!("synapsor-runner init: a reviewed starter config for one table.");
    eprintln!("The database is inspected for its structure only; no row is read.\n");
    let kind = Select::new()
        .with_prompt("Where is the database")
        .items([
            "PostgreSQL or MySQL/MariaDB (its URL is in an environment variable)",
            "A SQLite file",
        ])
        .default(0)
        .interact()
        .map_err(cancelled)?;
    if kind == 0 {
        let var: String = Input::new()
            .with_prompt("Variable holding the database URL")
            .default(url_variable().unwrap_or_else(|| "DATABASE_URL".into()))
            .interact_text()
            .map_err(cancelled)?;
        a.from_env = Some(var.trim().to_string());
    } else {
        let path: String = Input::new()
            .with_prompt("SQLite file")
            .interact_text()
            .map_err(cancelled)?;
        a.sqlite = Some(PathBuf::from(path.trim()));
    }
    Ok(())
}

/// Ask which table and how its capabilities look; fills the flags `select` reads.
pub fn ask_choices<'i>(a: &mut InitArgs, inspection: &'i Inspection) -> Result<&'i Table> {
    if inspection.tables.is_empty() {
        return Err(Error::ConfigFile {
            code: "TABLE_NOT_FOUND",
            message: "the database has no tables or views".into(),
        });
    }
    let labels: Vec<String> = inspection
        .tables
        .iter()
        .map(|t| {
            let kind = if t.writable {
                String::new()
            } else {
                format!(" ({})", t.kind)
            };
            format!("{}.{}{kind}", t.schema, t.name)
        })
        .collect();
    let i = Select::new()
        .with_prompt("Table")
        .items(&labels)
        .default(0)
        .max_length(15)
        .interact()
        .map_err(cancelled)?;
    let t = &inspection.tables[i];
    a.table = Some(t.name.clone());
    a.schema = Some(t.schema.clone());
    let s = &t.suggestions;
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    if t.primary_key.len() != 1 && s.primary_key.is_none() {
        let key = Select::new()
            .with_prompt(format!(
                "Lookup key ({} has no single-column primary key: pick a column unique within a tenant)",
                t.name
            ))
            .items(&names)
            .default(0)
            .max_length(15)
            .interact()
            .map_err(cancelled)?;
        a.primary_key = Some(names[key].to_string());
    }

    let modes = [
        "review: proposals are applied after a person approves them",
        "shadow: proposals are recorded, never applied",
        "read_only: reads only",
    ];
    let mode = if t.writable {
        Select::new()
            .with_prompt("What may the agent do")
            .items(modes)
            .default(0)
            .interact()
            .map_err(cancelled)?
    } else {
        eprintln!("{} is a {}: reads only.", t.name, t.kind);
        2
    };
    a.mode = ["review", "shadow", "read_only"][mode].into();

    let tenant = pick_column(
        "Tenant column (every read and write is limited to the caller's tenant)",
        &names,
        s.tenant_columns.first(),
        "none: one tenant, local development only",
    )?;
    if tenant == names.len() {
        a.single_tenant_dev = true;
    } else {
        a.tenant_column = Some(names[tenant].to_string());
    }

    let visible_defaults: Vec<bool> = names
        .iter()
        .map(|n| s.default_visible_columns.iter().any(|v| v == n))
        .collect();
    let visible = MultiSelect::new()
        .with_prompt("Columns a read shows (space toggles; sensitive and large ones start off)")
        .items(&names)
        .defaults(&visible_defaults)
        .max_length(15)
        .interact()
        .map_err(cancelled)?;
    a.visible_columns = visible.iter().map(|&i| names[i].to_string()).collect();

    if a.mode != "read_only" {
        let guard = pick_column(
            "Version column (a proposal applies only if the row has not changed)",
            &names,
            s.conflict_columns.first(),
            "none: guard by a hash of the row (weaker)",
        )?;
        if guard == names.len() {
            a.row_hash_guard = true;
        } else {
            a.conflict_column = Some(names[guard].to_string());
        }
        let key = a
            .primary_key
            .clone()
            .or_else(|| match t.primary_key.as_slice() {
                [one] => Some(one.clone()),
                _ => s.primary_key.clone(),
            });
        let mut fixed: Vec<String> = key.into_iter().collect();
        fixed.extend(a.tenant_column.clone());
        fixed.extend(a.conflict_column.clone());
        let patchable: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| !c.generated && !c.suggestions.immutable && !fixed.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        let chosen = if patchable.is_empty() {
            eprintln!(
                "No column of {} is left for a proposal to change (the key, tenant and version are guarded): reads only.",
                t.name
            );
            Vec::new()
        } else {
            loop {
                let chosen = MultiSelect::new()
                    .with_prompt("Columns a proposal may change (space toggles)")
                    .items(&patchable)
                    .max_length(15)
                    .interact()
                    .map_err(cancelled)?;
                if !chosen.is_empty() {
                    break chosen;
                }
                let read_only = Confirm::new()
                    .with_prompt("No column picked: offer reads only")
                    .default(false)
                    .interact()
                    .map_err(cancelled)?;
                if read_only {
                    break Vec::new();
                }
            }
        };
        if chosen.is_empty() {
            a.mode = "read_only".into();
            a.conflict_column = None;
            a.row_hash_guard = false;
        }
        for i in chosen {
            let col = patchable[i];
            let how = Select::new()
                .with_prompt(format!("{col}: set to"))
                .items(["a value the agent proposes", "a fixed value"])
                .default(0)
                .interact()
                .map_err(cancelled)?;
            if how == 0 {
                a.patch.push(format!("{col}=arg:{col}"));
            } else {
                let v: String = Input::new()
                    .with_prompt(format!("{col}: fixed value"))
                    .interact_text()
                    .map_err(cancelled)?;
                a.patch.push(format!("{col}=fixed:{v}"));
            }
        }
    }
    Ok(t)
}

/// The tool namespace, `default` proposed.
pub fn ask_namespace(a: &mut InitArgs, default: String) -> Result<()> {
    let namespace: String = Input::new()
        .with_prompt("Tool namespace (tools are named namespace.inspect_…)")
        .default(default)
        .interact_text()
        .map_err(cancelled)?;
    a.namespace = Some(namespace.trim().to_string());
    Ok(())
}

/// One of `names`, the suggestion pre-selected, or `none` (returned as `names.len()`).
fn pick_column(
    prompt: &str,
    names: &[&str],
    suggested: Option<&String>,
    none: &str,
) -> Result<usize> {
    let mut items: Vec<&str> = names.to_vec();
    items.push(none);
    let default = suggested
        .and_then(|c| names.iter().position(|n| n == c))
        .unwrap_or(names.len());
    Select::new()
        .with_prompt(prompt)
        .items(&items)
        .default(default)
        .max_length(15)
        .interact()
        .map_err(cancelled)
}

/// After the preview: write it? A file that exists is overwritten only on an explicit yes.
pub fn confirm_write(a: &mut InitArgs) -> Result<bool> {
    let env = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .join(".env.example");
    let exists = a.output.exists() || env.exists();
    let prompt = if exists {
        format!(
            "{} or {} exists: overwrite them",
            a.output.display(),
            env.display()
        )
    } else {
        format!("Write {} and {}", a.output.display(), env.display())
    };
    let yes = Confirm::new()
        .with_prompt(prompt)
        .default(!exists)
        .interact()
        .map_err(cancelled)?;
    if yes && exists {
        a.force = true;
    }
    Ok(yes)
}

/// The command that makes the same config without questions.
pub fn equivalent_command(a: &InitArgs) -> String {
    let q = |s: &str| shell_words::quote(s).into_owned();
    let mut cmd = String::from("synapsor-runner init");
    if let Some(v) = &a.from_env {
        cmd += &format!(" --from-env {}", q(v));
    }
    if let Some(p) = &a.sqlite {
        cmd += &format!(" --sqlite {}", q(&p.display().to_string()));
    }
    for (flag, v) in [("--schema", &a.schema), ("--table", &a.table)] {
        if let Some(v) = v {
            cmd += &format!(" {flag} {}", q(v));
        }
    }
    cmd += &format!(" --mode {}", a.mode);
    if let Some(k) = &a.primary_key {
        cmd += &format!(" --primary-key {}", q(k));
    }
    match &a.tenant_column {
        Some(t) => cmd += &format!(" --tenant-column {}", q(t)),
        None => cmd += " --single-tenant-dev",
    }
    if let Some(c) = &a.conflict_column {
        cmd += &format!(" --conflict-column {}", q(c));
    }
    if a.row_hash_guard {
        cmd += " --row-hash-guard";
    }
    if !a.visible_columns.is_empty() {
        cmd += &format!(" --visible-columns {}", q(&a.visible_columns.join(",")));
    }
    if !a.patch.is_empty() {
        cmd += &format!(" --patch {}", q(&a.patch.join(",")));
    }
    if let Some(n) = &a.namespace {
        cmd += &format!(" --namespace {}", q(n));
    }
    cmd
}
