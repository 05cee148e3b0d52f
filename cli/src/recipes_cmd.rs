//! `recipes list | show | init`: the built-in starter recipes (or a recipe file), and a config
//! made from one without a database at hand.

use crate::RecipesCmd;
use crate::init_cmd::{Output, Selection, advance_for, emit, namespace_of, patch_arg, singular};
use crate::shared::{print_json, usage};
use serde_json::{Map, Value, json};
use synapsor_runner::error::{Error, Result};
use synapsor_runner::recipe::{Recipe, load_recipe, parse_recipe};

/// The recipes this build carries, by id.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "accounts.trial_extension",
        include_str!("../../fixtures/recipes/accounts.trial_extension.json"),
    ),
    (
        "billing.late_fee_waiver",
        include_str!("../../fixtures/recipes/billing.late_fee_waiver.json"),
    ),
    (
        "credits.account_credit",
        include_str!("../../fixtures/recipes/credits.account_credit.json"),
    ),
    (
        "orders.refund_review",
        include_str!("../../fixtures/recipes/orders.refund_review.json"),
    ),
    (
        "support.ticket_resolution",
        include_str!("../../fixtures/recipes/support.ticket_resolution.json"),
    ),
];

fn built_in(id: &str, text: &str) -> Recipe {
    let v: Value = serde_json::from_str(text).expect("built-in recipes are JSON");
    parse_recipe(&v, id).expect("built-in recipes are valid")
}

/// An id of a built-in recipe, or a path to a recipe file (ends in `.json`, contains a slash,
/// or starts with `.`).
fn resolve(arg: &str) -> Result<Recipe> {
    if arg.ends_with(".json") || arg.contains('/') || arg.contains('\\') || arg.starts_with('.') {
        return load_recipe(std::path::Path::new(arg));
    }
    BUILT_IN
        .iter()
        .find(|(id, _)| *id == arg)
        .map(|(id, text)| built_in(id, text))
        .ok_or_else(|| Error::ConfigFile {
            code: "RECIPE_NOT_FOUND",
            message: format!(
                "unknown recipe {arg}. Run synapsor-runner recipes list, or pass a recipe JSON file path."
            ),
        })
}

pub fn run(action: RecipesCmd) -> Result<u8> {
    match action {
        RecipesCmd::List { json } => {
            let all: Vec<Value> = BUILT_IN
                .iter()
                .map(|(id, text)| {
                    let r = built_in(id, text);
                    json!({"id": r.id, "title": r.title, "summary": r.raw["summary"], "semantic_tools": r.semantic_tools})
                })
                .collect();
            if json {
                print_json(&json!({ "recipes": all }));
            } else {
                for r in &all {
                    println!(
                        "{:<28} {} — {}",
                        r["id"].as_str().unwrap_or_default(),
                        r["title"].as_str().unwrap_or_default(),
                        r["summary"].as_str().unwrap_or_default()
                    );
                }
                println!(
                    "\nShow one: synapsor-runner recipes show <id>; start a config: synapsor-runner recipes init <id>"
                );
            }
        }
        RecipesCmd::Show { recipe, json } => {
            let r = resolve(&recipe)?;
            if json {
                print_json(&r.raw);
            } else {
                let list = |k: &str| {
                    r.raw[k]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default()
                };
                let spec = &r.raw["spec"];
                println!("{} ({})", r.title, r.id);
                println!("{}", r.raw["summary"].as_str().unwrap_or_default());
                println!(
                    "table:            {}.{} ({})",
                    spec["schema"].as_str().unwrap_or("public"),
                    spec["table"].as_str().unwrap_or_default(),
                    spec["engine"].as_str().unwrap_or("postgres")
                );
                println!("tools:            {}", list("semantic_tools"));
                println!("required columns: {}", list("required_columns"));
                println!("writes:           {}", list("allowed_write_columns"));
                for n in r.raw["notes"].as_array().into_iter().flatten() {
                    println!("note: {}", n.as_str().unwrap_or_default());
                }
            }
        }
        RecipesCmd::Init {
            recipe,
            engine,
            mode,
            read_url_env,
            write_url_env,
            output,
            force,
            dry_run,
        } => {
            let r = resolve(&recipe)?;
            let sel = selection(
                &r,
                engine.as_deref(),
                mode.as_deref(),
                read_url_env,
                write_url_env,
            )?;
            let out = Output {
                path: &output,
                force,
                dry_run,
            };
            return emit(&sel, &[], &out);
        }
    }
    Ok(0)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A recipe's spec as a selection, with the engine and mode given on the command line.
fn selection(
    r: &Recipe,
    engine: Option<&str>,
    mode: Option<&str>,
    read_url_env: Option<String>,
    write_url_env: Option<String>,
) -> Result<Selection> {
    let spec = &r.raw["spec"];
    let engine = engine
        .map(String::from)
        .or_else(|| text(spec, "engine"))
        .unwrap_or_else(|| "postgres".into());
    if !matches!(engine.as_str(), "postgres" | "mysql") {
        return Err(usage("--engine must be postgres or mysql"));
    }
    let mode = mode
        .map(String::from)
        .or_else(|| text(spec, "mode"))
        .unwrap_or_else(|| "shadow".into());
    if !matches!(mode.as_str(), "read_only" | "shadow" | "review") {
        return Err(usage("--mode must be read_only, shadow or review"));
    }
    let table = text(spec, "table").unwrap_or_default();
    let object = text(spec, "object_name").unwrap_or_else(|| singular(&table));
    let namespace = text(spec, "namespace").unwrap_or_else(|| namespace_of(&object));
    let patch: Vec<(String, Value)> = if mode == "read_only" {
        Vec::new()
    } else {
        spec["patch"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let obj = |k: &str| -> Map<String, Value> {
        if mode == "read_only" {
            return Map::new();
        }
        spec[k].as_object().cloned().unwrap_or_default()
    };
    let (bounds, guards) = (obj("numeric_bounds"), obj("transition_guards"));
    let mut args = Map::new();
    for (col, binding) in &patch {
        if let Some(arg) = binding["from_arg"].as_str() {
            let declared = spec["patch_args"].get(arg);
            args.insert(
                arg.into(),
                patch_arg(None, false, bounds.get(col), guards.get(col), declared),
            );
        }
    }
    let allowed = match strings(&spec["allowed_columns"]) {
        a if a.is_empty() || mode == "read_only" => patch.iter().map(|(c, _)| c.clone()).collect(),
        a => a,
    };
    let visible = match strings(&spec["visible_columns"]) {
        v if v.is_empty() => strings(&r.raw["visible_columns"]),
        v => v,
    };
    let single = spec["single_tenant_dev"] == true;
    let context = &spec["trusted_context"];
    Ok(Selection {
        source: text(spec, "source_name").unwrap_or_else(|| format!("local_{engine}")),
        read_env: read_url_env
            .or_else(|| text(spec, "read_url_env"))
            .or_else(|| text(spec, "database_url_env"))
            .unwrap_or_else(|| "SYNAPSOR_DATABASE_READ_URL".into()),
        sqlite_path: None,
        write_env: write_url_env
            .or_else(|| text(spec, "write_url_env"))
            .unwrap_or_else(|| "SYNAPSOR_DATABASE_WRITE_URL".into()),
        schema: text(spec, "schema")
            .unwrap_or_else(|| if engine == "mysql" { "app" } else { "public" }.into()),
        primary_key: text(spec, "primary_key").unwrap_or_default(),
        tenant: if single {
            None
        } else {
            text(spec, "tenant_key")
        },
        conflict: text(spec, "conflict_column").map(|c| {
            let advance = advance_for(None, &c);
            (c, advance)
        }),
        visible,
        lookup: text(spec, "lookup_arg").unwrap_or_else(|| format!("{object}_id")),
        read_tool: text(spec, "inspect_tool_name")
            .unwrap_or_else(|| format!("{namespace}.inspect_{object}")),
        proposal_tool: text(spec, "proposal_tool_name")
            .unwrap_or_else(|| format!("{namespace}.propose_{object}_update")),
        object,
        table,
        patch,
        args,
        allowed,
        bounds,
        guards,
        approval_role: text(&spec["approval"], "required_role")
            .unwrap_or_else(|| "local_reviewer".into()),
        tenant_env: text(context, "tenant_id_env").unwrap_or_else(|| "SYNAPSOR_TENANT_ID".into()),
        principal_env: text(context, "principal_env")
            .unwrap_or_else(|| "SYNAPSOR_PRINCIPAL".into()),
        engine,
        mode,
    })
}
