//! `init`: a reviewed starter config for one table, from a schema inspection and flags spelled
//! as the TypeScript runner spells them. The config is validated before it is written.

use crate::InitArgs;
use crate::shared::usage;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::time::Duration;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::schema::{self, Column, Inspection, Table, Target};

fn refuse(code: &'static str, message: String) -> Error {
    Error::ConfigFile { code, message }
}

pub async fn run(a: InitArgs) -> Result<u8> {
    if crate::init_wizard::wanted(&a) {
        return wizard(a).await;
    }
    let (sel, warnings) = prepare(&a).await?;
    emit(&sel, &warnings, &output(&a))
}

/// `init` with questions: the answers become flags, then the config is made as with flags,
/// previewed, and written on confirmation.
async fn wizard(mut a: InitArgs) -> Result<u8> {
    use crate::init_wizard as ask;
    ask::ask_source(&mut a)?;
    let (inspection, engine, read_env) = inspect(&a).await?;
    let table = ask::ask_choices(&mut a, &inspection)?;
    let object = a
        .object_name
        .clone()
        .unwrap_or_else(|| singular(&table.name));
    ask::ask_namespace(&mut a, namespace_of(&object))?;
    let mut warnings = Vec::new();
    let sel = select(&a, &engine, read_env, table, &mut warnings)?;
    eprintln!("\nThe config:");
    let preview = Output {
        path: &a.output,
        force: false,
        dry_run: true,
    };
    emit(&sel, &warnings, &preview)?;
    eprintln!(
        "The same config without questions:\n  {}\n",
        ask::equivalent_command(&a)
    );
    if !ask::confirm_write(&mut a)? {
        eprintln!("Nothing written.");
        return Ok(0);
    }
    emit(&sel, &[], &output(&a))
}

fn output(a: &InitArgs) -> Output<'_> {
    Output {
        path: &a.output,
        force: a.force,
        dry_run: a.dry_run,
    }
}

async fn prepare(a: &InitArgs) -> Result<(Selection, Vec<String>)> {
    if !matches!(a.mode.as_str(), "read_only" | "shadow" | "review") {
        return Err(usage("--mode must be read_only, shadow or review"));
    }
    let (inspection, engine, read_env) = inspect(a).await?;
    let table = pick_table(&inspection, a)?;
    let mut warnings = Vec::new();
    let sel = select(a, &engine, read_env, table, &mut warnings)?;
    Ok((sel, warnings))
}

/// `onboard db`: `init`, then the checks a first run needs: the config validates, the tools
/// pass the boundary checks, and (with `--smoke-id`) one read works through the MCP path.
/// Exit 0 only when all of them pass.
pub async fn onboard(g: &crate::Global, a: InitArgs, smoke_id: Option<String>) -> Result<u8> {
    println!("Synapsor Runner own-database onboarding");
    println!(
        "Inspects the database (metadata only), writes a reviewed config, then checks it as an MCP client would see it.\n"
    );
    let (sel, warnings) = prepare(&a).await?;
    emit(&sel, &warnings, &output(&a))?;
    if a.dry_run {
        return Ok(0);
    }
    let g = crate::Global {
        config: Some(a.output.clone()),
        store: g.store.clone(),
    };
    println!("\nValidation:");
    let valid = crate::commands::config_validate(&g, false)?;
    println!("\nTools:");
    let tools = crate::commands::tools_preview(&g, "canonical", false).await?;
    let mut smoke = 0;
    if let Some(id) = smoke_id {
        println!("\nSmoke read:");
        // As the reference does: the input goes to .synapsor/smoke-input.json beside the config.
        let input = a
            .output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(".synapsor/smoke-input.json");
        let written = input
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&input, json!({ sel.lookup.clone(): id }).to_string()));
        if let Err(e) = written {
            return Err(refuse(
                "INIT_WRITE_FAILED",
                format!("cannot write {}: {e}", input.display()),
            ));
        }
        smoke = match crate::smoke::call(&g, Some(sel.read_tool.clone()), false, Some(&input), None)
            .await
        {
            Ok(code) => code,
            Err(e) => {
                println!("Smoke read did not pass: [{}] {e}", e.code());
                crate::exit::ERROR
            }
        };
    }
    let out = a.output.display();
    println!("\nNext commands:");
    println!("  1. synapsor-runner mcp serve --config {out}");
    if sel.mode != "read_only" {
        println!(
            "  2. synapsor-runner propose {} --args '{{\"{}\": \"…\", …}}' --config {out}",
            sel.proposal_tool, sel.lookup
        );
        println!(
            "  3. synapsor-runner proposals approve latest --yes --config {out}; synapsor-runner apply latest --config {out}"
        );
    }
    Ok(if valid == 0 && tools == 0 && smoke == 0 {
        0
    } else {
        crate::exit::ERROR
    })
}

/// Where and how a generated config goes.
pub(crate) struct Output<'a> {
    pub path: &'a Path,
    pub force: bool,
    pub dry_run: bool,
}

/// Validate the config `sel` makes, then print it (`dry_run`) or write it and `.env.example`.
pub(crate) fn emit(sel: &Selection, warnings: &[String], out: &Output) -> Result<u8> {
    let config = sel.config();
    // A starter that does not load would be a bug here: check it as `config validate` would.
    let text = format!("{}\n", serde_json::to_string_pretty(&config).expect("json"));
    let report = synapsor_runner::config::validate_value(&config);
    if !report.ok {
        let issues: Vec<String> = report
            .errors
            .iter()
            .map(|e| format!("{} {}: {}", e.path, e.code, e.message))
            .collect();
        return Err(refuse(
            "INIT_CONFIG_INVALID",
            format!(
                "the generated config does not validate (adjust the flags):\n{}",
                issues.join("\n")
            ),
        ));
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if out.dry_run {
        print!("{text}");
        return Ok(0);
    }
    let env_path = out
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(".env.example");
    for path in [out.path, &env_path] {
        if path.exists() && !out.force {
            return Err(refuse(
                "INIT_FILE_EXISTS",
                format!("{} exists; pass --force to overwrite it", path.display()),
            ));
        }
    }
    let write = |path: &Path, body: &str| {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, body)
    };
    let cant = |p: &Path, e: std::io::Error| {
        refuse(
            "INIT_WRITE_FAILED",
            format!("cannot write {}: {e}", p.display()),
        )
    };
    write(out.path, &text).map_err(|e| cant(out.path, e))?;
    write(&env_path, &sel.env_example()).map_err(|e| cant(&env_path, e))?;
    let config = out.path.display();
    println!("Wrote {config} and {}.", env_path.display());
    println!("Next:");
    println!("  synapsor-runner config validate --config {config}");
    println!("  synapsor-runner tools preview --config {config}");
    println!("  synapsor-runner mcp configure --config {config}   # snippets for MCP clients");
    Ok(0)
}

/// The inspection, the config's engine name, and the variable the config reads through.
async fn inspect(a: &InitArgs) -> Result<(Inspection, String, Option<String>)> {
    if let Some(file) = &a.inspection_json {
        let text = std::fs::read_to_string(file).map_err(|e| {
            refuse(
                "INSPECTION_UNREADABLE",
                format!("cannot read {}: {e}", file.display()),
            )
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            refuse(
                "INSPECTION_UNREADABLE",
                format!("{} is not JSON: {e}", file.display()),
            )
        })?;
        let inspection = schema::from_json(&v).map_err(|e| {
            refuse(
                "INSPECTION_UNREADABLE",
                format!("{} is not a schema inspection: {e}", file.display()),
            )
        })?;
        if inspection.engine == "sqlite" && a.sqlite.is_none() {
            return Err(usage(
                "a SQLite inspection needs --sqlite PATH: the database file the config reads",
            ));
        }
        let engine = inspection.engine.clone();
        return Ok((inspection, engine, a.from_env.clone()));
    }
    let timeout = Duration::from_secs(3);
    match (&a.from_env, &a.sqlite) {
        (_, Some(path)) => Ok((
            schema::inspect(Target::Sqlite(path), None, timeout).await?,
            "sqlite".into(),
            None,
        )),
        (Some(var), None) => {
            let url = std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    refuse(
                        "DATABASE_URL_ENV_MISSING",
                        format!("{var} is not set: export the database URL in {var}"),
                    )
                })?;
            let inspection = schema::inspect(Target::Url(url.trim()), None, timeout).await?;
            let engine = if inspection.engine == "mysql" {
                "mysql"
            } else {
                "postgres"
            };
            Ok((inspection, engine.into(), Some(var.clone())))
        }
        (None, None) => Err(usage(
            "init needs --from-env VAR, --sqlite PATH or --inspection-json FILE",
        )),
    }
}

fn pick_table<'a>(i: &'a Inspection, a: &InitArgs) -> Result<&'a Table> {
    let listed = || {
        let names: Vec<String> = i
            .tables
            .iter()
            .take(12)
            .map(|t| format!("{}.{}", t.schema, t.name))
            .collect();
        if names.is_empty() {
            "none found".into()
        } else {
            names.join(", ")
        }
    };
    let Some(name) = &a.table else {
        return Err(usage(&format!("init needs --table; tables: {}", listed())));
    };
    let matching: Vec<&Table> = i
        .tables
        .iter()
        .filter(|t| &t.name == name && a.schema.as_ref().is_none_or(|s| &t.schema == s))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(refuse(
            "TABLE_NOT_FOUND",
            format!("no table {name}; tables: {}", listed()),
        )),
        _ => Err(usage(&format!(
            "{name} exists in several schemas; pass --schema"
        ))),
    }
}

fn column<'a>(t: &'a Table, name: &str, flag: &str) -> Result<&'a Column> {
    t.columns.iter().find(|c| c.name == name).ok_or_else(|| {
        refuse(
            "COLUMN_NOT_FOUND",
            format!("{flag}: {}.{} has no column {name}", t.schema, t.name),
        )
    })
}

/// `order_items` → `order_item`, `companies` → `company`, `Invoice` → `invoice`.
pub(crate) fn singular(table: &str) -> String {
    let mut s: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('_')
        .to_string();
    if let Some(stem) = s.strip_suffix("ies") {
        s = format!("{stem}y");
    } else if s.ends_with('s') && !s.ends_with("ss") {
        s.pop();
    }
    if s.is_empty() {
        return "record".into();
    }
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s = format!("record_{s}");
    }
    s
}

/// A fixed patch value as typed: `null`, booleans and numbers become those, anything else text.
fn fixed_value(v: &str) -> Value {
    match v {
        "null" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => v
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| {
                v.parse::<f64>()
                    .ok()
                    .filter(|f| {
                        f.is_finite()
                            && v.chars()
                                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
                    })
                    .map(Value::from)
            })
            .unwrap_or_else(|| Value::String(v.to_string())),
    }
}

/// The arg type that fits a column's declared type.
fn arg_type(data_type: &str) -> &'static str {
    let t = data_type.to_ascii_lowercase();
    if t.starts_with("bool") || t == "tinyint(1)" {
        "boolean"
    } else if t.contains("int") || t.contains("serial") {
        "integer"
    } else if t.contains("numeric")
        || t.contains("decimal")
        || t.contains("real")
        || t.contains("double")
        || t.contains("float")
    {
        "number"
    } else {
        "string"
    }
}

/// Everything a starter config is made from, whether it came from an inspected table and flags
/// (`init`) or from a recipe's spec (`recipes init`).
pub(crate) struct Selection {
    pub engine: String,
    pub mode: String,
    pub source: String,
    /// PostgreSQL/MySQL: the variable holding the reader's URL.
    pub read_env: String,
    /// SQLite: the file, as the config names it.
    pub sqlite_path: Option<String>,
    pub write_env: String,
    pub schema: String,
    pub table: String,
    pub primary_key: String,
    /// `None`: `single_tenant_dev`.
    pub tenant: Option<String>,
    /// The version column and how a write moves it.
    pub conflict: Option<(String, &'static str)>,
    pub visible: Vec<String>,
    pub object: String,
    pub lookup: String,
    pub read_tool: String,
    pub proposal_tool: String,
    /// Patch column → `{fixed}` or `{from_arg}`, in order.
    pub patch: Vec<(String, Value)>,
    /// The proposal's arguments other than the lookup.
    pub args: Map<String, Value>,
    pub allowed: Vec<String>,
    pub bounds: Map<String, Value>,
    pub guards: Map<String, Value>,
    pub approval_role: String,
    pub tenant_env: String,
    pub principal_env: String,
}

/// How a write moves a version column of this type.
pub(crate) fn advance_for(data_type: Option<&str>, column: &str) -> &'static str {
    match data_type {
        Some(t) if arg_type(t) == "integer" => "increment",
        Some(_) => "timestamp",
        None => match synapsor_runner::config::guess_advance(column) {
            Some(synapsor_runner::config::GuardAdvance::Increment) => "increment",
            _ => "timestamp",
        },
    }
}

impl Selection {
    fn label(&self) -> String {
        self.object.replace('_', " ")
    }

    /// The config, as `init` writes it.
    pub fn config(&self) -> Value {
        let label = self.label();
        let mut target =
            json!({"schema": self.schema, "table": self.table, "primary_key": self.primary_key});
        match &self.tenant {
            Some(k) => target["tenant_key"] = json!(k),
            None => target["single_tenant_dev"] = json!(true),
        }
        let id_arg = json!({"type": "string", "required": true, "max_length": 128,
            "description": format!("{} id from the user request or trusted app context.", capitalize(&label))});
        let mut visible: Vec<&String> = Vec::new();
        for c in [
            Some(&self.primary_key),
            self.tenant.as_ref(),
            self.conflict.as_ref().map(|c| &c.0),
        ]
        .into_iter()
        .flatten()
        .chain(self.visible.iter())
        {
            if !visible.contains(&c) {
                visible.push(c);
            }
        }
        let mut read = json!({
            "name": self.read_tool,
            "kind": "read",
            "description": format!("Inspect one {label} in trusted tenant scope before answering or proposing a change."),
            "returns_hint": format!("Returns reviewed {label} fields, evidence handle, query audit, and source_database_changed:false."),
            "source": self.source,
            "context": "local_operator",
            "target": target,
            "args": {self.lookup.clone(): id_arg},
            "lookup": {"id_from_arg": self.lookup},
            "visible_columns": visible,
            "evidence": "required",
            "max_rows": 1,
        });
        if self.tenant.is_none() {
            read["single_tenant_dev_ack"] = json!(true);
        }
        let mut capabilities = vec![read.clone()];
        if self.mode != "read_only" && !self.patch.is_empty() {
            let mut p = read;
            p["name"] = json!(self.proposal_tool);
            p["kind"] = json!("proposal");
            p["description"] = json!(format!(
                "Create a review-required proposal to update one {label}. The source database remains unchanged until approval and writeback."
            ));
            p["returns_hint"] = json!(
                "Returns a proposal id, exact before/after diff, evidence handle, approval status, and source_database_changed:false."
            );
            let mut args = p["args"].as_object().cloned().unwrap_or_default();
            args.extend(self.args.clone());
            p["args"] = Value::Object(args);
            p["allowed_columns"] = json!(self.allowed);
            p["patch"] = Value::Object(self.patch.iter().cloned().collect());
            if !self.bounds.is_empty() {
                p["numeric_bounds"] = Value::Object(self.bounds.clone());
            }
            if !self.guards.is_empty() {
                p["transition_guards"] = Value::Object(self.guards.clone());
            }
            p["conflict_guard"] = match &self.conflict {
                Some((column, advance)) => json!({"column": column, "advance": advance}),
                None => json!({"weak_guard_ack": true}),
            };
            p["approval"] = json!({"mode": "human", "required_role": self.approval_role});
            capabilities.push(p);
        }
        let context = json!({"provider": "environment", "values": {"tenant_id_env": self.tenant_env, "principal_env": self.principal_env}});
        let mut src = match &self.sqlite_path {
            Some(path) => json!({"engine": "sqlite", "path": path, "statement_timeout_ms": 3000}),
            None => {
                json!({"engine": self.engine, "read_url_env": self.read_env, "statement_timeout_ms": 3000})
            }
        };
        if self.mode == "review" && self.sqlite_path.is_none() {
            src["write_url_env"] = json!(self.write_env);
        }
        json!({
            "version": 1,
            "mode": self.mode,
            "result_format": 2,
            "storage": {"sqlite_path": ".synapsor/local.db"},
            "sources": {self.source.clone(): src},
            "trusted_context": context,
            "contexts": {"local_operator": context},
            "capabilities": capabilities,
        })
    }

    /// `.env.example`: every variable the config names, with placeholder values.
    pub fn env_example(&self) -> String {
        let mut out = String::from(
            "# Values for the variables synapsor.runner.json names. Copy to .env, fill in, never commit.\n# The reader needs SELECT on the reviewed columns; see `synapsor-runner writeback grants` for the writer.\n",
        );
        let url = if self.engine == "mysql" {
            "mysql://reader:password@127.0.0.1:3306/app"
        } else {
            "postgres://reader:password@127.0.0.1:5432/app"
        };
        if self.sqlite_path.is_none() {
            out.push_str(&format!("{}=\"{url}\"\n", self.read_env));
            if self.mode == "review" {
                out.push_str(&format!(
                    "{}=\"{}\"\n",
                    self.write_env,
                    url.replace("reader", "writer")
                ));
            }
        }
        out.push_str(&format!(
            "{}=\"acme\"\n{}=\"local_operator\"\n",
            self.tenant_env, self.principal_env
        ));
        out
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The namespace an object's tools get: its first word.
pub(crate) fn namespace_of(object: &str) -> String {
    object
        .split('_')
        .find(|w| !w.is_empty())
        .unwrap_or("app")
        .to_string()
}

/// The argument a `from_arg` patch column gets, from what is known about the column: a bounded
/// column takes a number within its bounds, a guarded one one of its targets, anything else the
/// column's type (text up to 500 characters). `declared` (a recipe's `patch_args`) fills in what
/// this leaves open.
pub(crate) fn patch_arg(
    data_type: Option<&str>,
    nullable: bool,
    bound: Option<&Value>,
    guard: Option<&Value>,
    declared: Option<&Value>,
) -> Value {
    let kind = data_type.map_or("string", arg_type);
    let mut spec = json!({"type": kind, "required": true});
    if let Some(b) = bound {
        if kind == "string" {
            spec["type"] = json!("number");
        }
        for k in ["minimum", "maximum"] {
            if let Some(v) = b.get(k) {
                spec[k] = v.clone();
            }
        }
    } else if let Some(g) = guard {
        let mut targets: Vec<Value> = Vec::new();
        for to in g["allowed"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            for x in to.as_array().into_iter().flatten() {
                if !targets.contains(x) {
                    targets.push(x.clone());
                }
            }
        }
        spec["enum"] = json!(targets);
        spec["max_length"] = json!(128);
    } else if kind == "string" {
        spec["max_length"] = json!(500);
        if nullable {
            spec["nullable"] = json!(true);
        }
    }
    if let Some(Value::Object(d)) = declared {
        for (k, v) in d {
            if k != "type" || (bound.is_none() && guard.is_none() && data_type.is_none()) {
                spec.as_object_mut()
                    .expect("object")
                    .entry(k.clone())
                    .or_insert(v.clone());
            }
        }
        if let Some(t) = d
            .get("type")
            .filter(|_| data_type.is_none() && bound.is_none() && guard.is_none())
        {
            spec["type"] = t.clone();
        }
    }
    spec
}

/// `col=fixed:value` / `col=arg:name`, comma-separated, from every `--patch`.
fn parse_patch(flags: &[String]) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for part in flags.iter().flat_map(|f| f.split(',')).map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let bad = || {
            usage(&format!(
                "--patch {part:?}: expected col=fixed:value or col=arg:name"
            ))
        };
        let (col, binding) = part.split_once('=').ok_or_else(bad)?;
        let value = if let Some(v) = binding.strip_prefix("fixed:") {
            json!({"fixed": fixed_value(v)})
        } else if let Some(arg) = binding.strip_prefix("arg:") {
            json!({"from_arg": arg})
        } else {
            return Err(bad());
        };
        out.push((col.trim().to_string(), value));
    }
    Ok(out)
}

/// `--numeric-bound col=min:max` (either side may be empty).
fn parse_bounds(flags: &[String]) -> Result<Map<String, Value>> {
    let mut bounds = Map::new();
    for b in flags {
        let (col, range) = b
            .split_once('=')
            .and_then(|(c, r)| Some((c, r.split_once(':')?)))
            .ok_or_else(|| usage(&format!("--numeric-bound {b:?}: expected col=min:max")))?;
        let num = |s: &str| -> Result<Option<f64>> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| usage(&format!("--numeric-bound {b:?}: {s} is not a number")))
        };
        let mut bound = Map::new();
        if let Some(min) = num(range.0)? {
            bound.insert("minimum".into(), json!(min));
        }
        if let Some(max) = num(range.1)? {
            bound.insert("maximum".into(), json!(max));
        }
        bounds.insert(col.trim().into(), Value::Object(bound));
    }
    Ok(bounds)
}

/// `--transition-guard col=from:to|to;from:to`.
fn parse_guards(flags: &[String]) -> Result<Map<String, Value>> {
    let mut guards = Map::new();
    for g in flags {
        let bad = || {
            usage(&format!(
                "--transition-guard {g:?}: expected col=from:to|to;from:to"
            ))
        };
        let (col, rules) = g.split_once('=').ok_or_else(bad)?;
        let mut allowed = Map::new();
        for rule in rules.split(';').filter(|r| !r.trim().is_empty()) {
            let (from, to) = rule.split_once(':').ok_or_else(bad)?;
            let targets: Vec<&str> = to
                .split('|')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect();
            allowed.insert(from.trim().into(), json!(targets));
        }
        guards.insert(col.trim().into(), json!({"allowed": allowed}));
    }
    Ok(guards)
}

/// The SQLite file as the config names it: relative to the config's folder when it is inside it.
fn sqlite_path(a: &InitArgs) -> String {
    let file = a.sqlite.clone().unwrap_or_default();
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    let dir = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| std::fs::canonicalize(p).unwrap_or(p.to_path_buf()))
        .or_else(|| std::env::current_dir().ok());
    dir.and_then(|d| file.strip_prefix(&d).ok().map(Path::to_path_buf))
        .unwrap_or(file)
        .display()
        .to_string()
}

/// The selection for an inspected table and `init`'s flags.
fn select(
    a: &InitArgs,
    engine: &str,
    read_env: Option<String>,
    t: &Table,
    warnings: &mut Vec<String>,
) -> Result<Selection> {
    let s = &t.suggestions;
    let pk = a
        .primary_key
        .clone()
        .or_else(|| match t.primary_key.as_slice() {
            [one] => Some(one.clone()),
            _ => s.primary_key.clone(),
        })
        .ok_or_else(|| {
            refuse(
                "PRIMARY_KEY_REQUIRED",
                format!(
                    "{}.{} has no single-column key: pass --primary-key COLUMN",
                    t.schema, t.name
                ),
            )
        })?;
    column(t, &pk, "--primary-key")?;
    if t.primary_key != [pk.clone()] {
        warnings.push(format!(
            "{pk} is not {}.{}'s primary key: make sure it is unique within a tenant",
            t.schema, t.name
        ));
    }
    let tenant = if a.single_tenant_dev {
        None
    } else {
        let tenant = a
            .tenant_column
            .clone()
            .or_else(|| s.tenant_columns.first().cloned())
            .ok_or_else(|| {
                refuse(
                    "TENANT_COLUMN_REQUIRED",
                    format!(
                        "no tenant column found in {}.{}: pass --tenant-column COLUMN, or --single-tenant-dev for local development",
                        t.schema, t.name
                    ),
                )
            })?;
        column(t, &tenant, "--tenant-column")?;
        Some(tenant)
    };
    let conflict = match &a.conflict_column {
        Some(c) => Some(column(t, c, "--conflict-column")?),
        None => s
            .conflict_columns
            .first()
            .and_then(|c| t.columns.iter().find(|x| &x.name == c)),
    }
    .map(|c| (c.name.clone(), advance_for(Some(&c.data_type), &c.name)));
    let visible = if a.visible_columns.is_empty() {
        s.default_visible_columns.clone()
    } else {
        a.visible_columns.clone()
    };
    for c in &visible {
        column(t, c, "--visible-columns")?;
    }
    let patch = parse_patch(&a.patch)?;
    if a.mode != "read_only" && patch.is_empty() {
        return Err(usage(
            "--patch is required unless --mode read_only: say what a proposal changes, e.g. --patch \"status=arg:new_status\"",
        ));
    }
    let bounds = parse_bounds(&a.numeric_bound)?;
    let guards = parse_guards(&a.transition_guard)?;
    let mut args = Map::new();
    for (col, binding) in &patch {
        let c = column(t, col, "--patch")?;
        if let Some(arg) = binding["from_arg"].as_str() {
            args.insert(
                arg.into(),
                patch_arg(
                    Some(&c.data_type),
                    c.nullable,
                    bounds.get(col),
                    guards.get(col),
                    None,
                ),
            );
        }
    }
    if a.mode != "read_only" && !t.writable {
        return Err(refuse(
            "TABLE_NOT_WRITABLE",
            format!(
                "{}.{} is a {}: proposals cannot be written back to it. Pass --mode read_only for a read capability only, or point --table at the base table",
                t.schema, t.name, t.kind
            ),
        ));
    }
    let conflict = if a.row_hash_guard { None } else { conflict };
    if conflict.is_none() && a.mode != "read_only" {
        if !a.row_hash_guard {
            return Err(refuse(
                "CONFLICT_COLUMN_REQUIRED",
                format!(
                    "{}.{} has no version column (updated_at, last_update, lock_version, …): pass --conflict-column COLUMN, or --row-hash-guard to guard proposals by a hash of the row (weaker)",
                    t.schema, t.name
                ),
            ));
        }
        warnings.push(format!(
            "{}.{}: proposals are guarded by a hash of the row (--row-hash-guard); add a version column for a stronger guard",
            t.schema, t.name
        ));
    }
    let object = a.object_name.clone().unwrap_or_else(|| singular(&t.name));
    let namespace = a.namespace.clone().unwrap_or_else(|| namespace_of(&object));
    Ok(Selection {
        engine: engine.into(),
        mode: a.mode.clone(),
        source: a
            .source_name
            .clone()
            .unwrap_or_else(|| format!("local_{engine}")),
        read_env: read_env.unwrap_or_else(|| "SYNAPSOR_DATABASE_READ_URL".into()),
        sqlite_path: (engine == "sqlite").then(|| sqlite_path(a)),
        write_env: a
            .write_url_env
            .clone()
            .unwrap_or_else(|| "SYNAPSOR_DATABASE_WRITE_URL".into()),
        schema: t.schema.clone(),
        table: t.name.clone(),
        primary_key: pk,
        tenant,
        conflict,
        visible,
        lookup: a.lookup_arg.clone().unwrap_or(format!("{object}_id")),
        read_tool: format!("{namespace}.inspect_{object}"),
        proposal_tool: format!("{namespace}.propose_{object}_update"),
        object,
        allowed: patch.iter().map(|(c, _)| c.clone()).collect(),
        patch,
        args,
        bounds,
        guards,
        approval_role: a.approval_role.clone(),
        tenant_env: a.tenant_env.clone(),
        principal_env: a.principal_env.clone(),
    })
}
