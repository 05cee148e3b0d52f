//! Schema inspection: tables and views, their columns, keys, foreign keys and indexes, read from
//! the database's catalog in one read-only transaction with a statement timeout. Business rows
//! are never read. Each column gets suggestions (tenant, version, sensitive, immutable, large or
//! binary) for writing a reviewed config; they are suggestions, not a data classification.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Row};
use std::time::Duration;

/// What was inspected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    /// `postgres`, `mysql` or `sqlite`.
    pub engine: String,
    /// The server's version string.
    pub server_version: String,
    /// The role the inspection ran as (empty on SQLite).
    pub current_user: String,
    /// When, RFC 3339.
    pub inspected_at: String,
    /// Schemas (databases on MySQL) that hold user tables.
    pub schemas: Vec<String>,
    /// Tables and views, by schema and name.
    pub tables: Vec<Table>,
    /// What the reader should keep in mind.
    pub warnings: Vec<String>,
}

/// One table or view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    /// Schema (database on MySQL, `main` on SQLite).
    pub schema: String,
    /// Name, as the catalog spells it.
    pub name: String,
    /// `table` or `view`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether proposals could write to it (a base table).
    pub writable: bool,
    /// Columns in ordinal order.
    pub columns: Vec<Column>,
    /// The primary key's columns, in key order (empty without one).
    pub primary_key: Vec<String>,
    /// Unique constraints other than the primary key.
    pub unique_constraints: Vec<Constraint>,
    /// Foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
    /// Indexes.
    pub indexes: Vec<Index>,
    /// What a config for this table would likely use.
    pub suggestions: TableSuggestions,
}

/// One column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Column {
    /// Name, as the catalog spells it.
    pub name: String,
    /// Declared type, lowercased (`timestamp with time zone`, `int(11)`, `TEXT` → `text`).
    pub data_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default expression, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Computed by the database (generated or identity-always columns).
    pub generated: bool,
    /// 1-based position.
    pub ordinal_position: u32,
    /// What the column looks like it is for.
    pub suggestions: ColumnSuggestions,
}

/// What a column looks like it is for, from its name and type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ColumnSuggestions {
    /// A tenant key (`tenant_id`, `account_id`, `org_id`, …).
    pub tenant: bool,
    /// A version the conflict guard can compare (`updated_at`, `last_update`, `lock_version`, …
    /// of a date-time or integer type).
    pub conflict: bool,
    /// Credentials or personal secrets (`password_hash`, `api_key`, `ssn`, …): never visible by
    /// default.
    pub sensitive: bool,
    /// Not to be changed by a proposal (key, tenant, creation columns).
    pub immutable: bool,
    /// Binary, vector or JSON document: never visible by default.
    pub large_or_binary: bool,
}

/// A named set of columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Constraint {
    /// The constraint's name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
}

/// A foreign key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForeignKey {
    /// The constraint's name (`fk_<n>` on SQLite, which does not name them).
    pub name: String,
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced table's schema.
    pub referenced_schema: String,
    /// The referenced table.
    pub referenced_table: String,
    /// The referenced columns.
    pub referenced_columns: Vec<String>,
}

/// An index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    /// The index's name.
    pub name: String,
    /// Its columns, in order (expressions are left out).
    pub columns: Vec<String>,
    /// Whether it is unique.
    pub unique: bool,
}

/// What a config for a table would likely use.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TableSuggestions {
    /// The key to look rows up by: the single-column primary key, else a likely id column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
    /// Tenant key candidates.
    pub tenant_columns: Vec<String>,
    /// Conflict guard (version) candidates, best first.
    pub conflict_columns: Vec<String>,
    /// Columns never to show by default.
    pub sensitive_columns: Vec<String>,
    /// Columns a read capability could show by default (neither sensitive nor large).
    pub default_visible_columns: Vec<String>,
}

/// An inspection saved with `schema inspect --json`, its suggestions worked out again.
pub fn from_json(v: &serde_json::Value) -> std::result::Result<Inspection, serde_json::Error> {
    let mut i: Inspection = serde_json::from_value(v.clone())?;
    let sqlite = i.engine == "sqlite";
    for t in &mut i.tables {
        classify(t, sqlite);
    }
    Ok(i)
}

/// What to inspect.
pub enum Target<'a> {
    /// A PostgreSQL or MySQL/MariaDB URL (the scheme decides).
    Url(&'a str),
    /// A SQLite file, opened read-only.
    Sqlite(&'a std::path::Path),
}

/// Inspect the database at `target`, limited to `schema` when given. Every statement runs in
/// one read-only transaction under `timeout`.
pub async fn inspect(
    target: Target<'_>,
    schema: Option<&str>,
    timeout: Duration,
) -> Result<Inspection> {
    let mut out = match target {
        Target::Sqlite(path) => sqlite(path)?,
        Target::Url(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            postgres(url, schema, timeout).await?
        }
        Target::Url(url) if url.starts_with("mysql://") || url.starts_with("mariadb://") => {
            mysql(url, schema, timeout).await?
        }
        Target::Url(_) => {
            return Err(Error::ConfigFile {
                code: "UNSUPPORTED_DATABASE_URL",
                message: "the URL must start with postgres://, postgresql://, mysql:// or mariadb://; for a SQLite file use --sqlite PATH".into(),
            });
        }
    };
    if let Some(s) = schema {
        out.tables.retain(|t| t.schema == s);
    }
    let sqlite = out.engine == "sqlite";
    for t in &mut out.tables {
        classify(t, sqlite);
    }
    out.inspected_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    out.warnings.push(
        "Inspection reads metadata only. Column classifications are suggestions, not a complete data-classification system.".into(),
    );
    Ok(out)
}

fn failed(engine: &str, e: impl std::fmt::Display) -> Error {
    Error::SourceUnavailable {
        code: "SCHEMA_INSPECTION_FAILED",
        message: format!(
            "schema inspection failed for {engine}: {}",
            crate::ledger::redact_secrets(&serde_json::Value::String(e.to_string()))
                .0
                .as_str()
                .unwrap_or_default()
        ),
    }
}

/// A text column of a catalog row (MySQL returns some as bytes).
fn text(row: &impl RowText, i: usize) -> String {
    row.text(i)
}

trait RowText {
    fn text(&self, i: usize) -> String;
}

impl RowText for sqlx::postgres::PgRow {
    fn text(&self, i: usize) -> String {
        self.try_get::<Option<String>, _>(i)
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl RowText for sqlx::mysql::MySqlRow {
    fn text(&self, i: usize) -> String {
        match self.try_get::<Option<String>, _>(i) {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => self
                .try_get::<Option<Vec<u8>>, _>(i)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        }
    }
}

fn table_mut<'t>(tables: &'t mut [Table], schema: &str, name: &str) -> Option<&'t mut Table> {
    tables
        .iter_mut()
        .find(|t| t.schema == schema && t.name == name)
}

fn new_table(schema: String, name: String, kind: &str) -> Table {
    let view = kind.to_ascii_uppercase().contains("VIEW");
    Table {
        schema,
        name,
        kind: if view { "view" } else { "table" }.into(),
        writable: !view,
        columns: Vec::new(),
        primary_key: Vec::new(),
        unique_constraints: Vec::new(),
        foreign_keys: Vec::new(),
        indexes: Vec::new(),
        suggestions: TableSuggestions::default(),
    }
}

/// Add `column` to the named constraint of `list`, creating it.
fn add_to(list: &mut Vec<Constraint>, name: String, column: String) {
    match list.iter_mut().find(|c| c.name == name) {
        Some(c) => c.columns.push(column),
        None => list.push(Constraint {
            name,
            columns: vec![column],
        }),
    }
}

async fn postgres(url: &str, schema: Option<&str>, timeout: Duration) -> Result<Inspection> {
    let fail = |e: sqlx::Error| failed("postgres", e);
    let opts: sqlx::postgres::PgConnectOptions = url.parse().map_err(fail)?;
    let mut conn = tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&opts))
        .await
        .map_err(|_| failed("postgres", "connecting timed out"))?
        .map_err(fail)?;
    let mut tx = conn.begin().await.map_err(fail)?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(timeout.as_millis().to_string())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    let info = sqlx::query("SELECT version(), current_user::text")
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
    let filter = schema.unwrap_or("");
    let schemas = sqlx::query(
        "SELECT schema_name::text FROM information_schema.schemata \
         WHERE schema_name NOT IN ('pg_catalog', 'information_schema') AND schema_name NOT LIKE 'pg_toast%' \
         AND schema_name NOT LIKE 'pg_temp%' ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(fail)?;
    let mut tables: Vec<Table> = sqlx::query(
        "SELECT table_schema::text, table_name::text, table_type::text FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND ($1 = '' OR table_schema = $1) ORDER BY 1, 2",
    )
    .bind(filter)
    .fetch_all(&mut *tx)
    .await
    .map_err(fail)?
    .iter()
    .map(|r| new_table(text(r, 0), text(r, 1), &text(r, 2)))
    .collect();
    for r in sqlx::query(
        "SELECT table_schema::text, table_name::text, column_name::text, \
         CASE WHEN data_type = 'USER-DEFINED' THEN udt_name::text ELSE data_type::text END, \
         is_nullable::text, column_default::text, \
         (is_generated = 'ALWAYS' OR identity_generation = 'ALWAYS')::text, ordinal_position::int4 \
         FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND ($1 = '' OR table_schema = $1) ORDER BY 1, 2, ordinal_position",
    )
    .bind(filter)
    .fetch_all(&mut *tx)
    .await
    .map_err(fail)?
    {
        if let Some(t) = table_mut(&mut tables, &text(&r, 0), &text(&r, 1)) {
            t.columns.push(Column {
                name: text(&r, 2),
                data_type: text(&r, 3).to_lowercase(),
                nullable: text(&r, 4) == "YES",
                default: Some(text(&r, 5)).filter(|d| !d.is_empty()),
                generated: text(&r, 6) == "true",
                ordinal_position: r.try_get::<i32, _>(7).unwrap_or(0) as u32,
                suggestions: ColumnSuggestions::default(),
            });
        }
    }
    for r in sqlx::query(
        "SELECT tc.table_schema::text, tc.table_name::text, tc.constraint_name::text, \
         tc.constraint_type::text, kcu.column_name::text \
         FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
           ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name \
          AND kcu.table_name = tc.table_name \
         WHERE tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND tc.table_schema NOT IN ('pg_catalog', 'information_schema') AND ($1 = '' OR tc.table_schema = $1) \
         ORDER BY 1, 2, 3, kcu.ordinal_position",
    )
    .bind(filter)
    .fetch_all(&mut *tx)
    .await
    .map_err(fail)?
    {
        if let Some(t) = table_mut(&mut tables, &text(&r, 0), &text(&r, 1)) {
            if text(&r, 3) == "PRIMARY KEY" {
                t.primary_key.push(text(&r, 4));
            } else {
                add_to(&mut t.unique_constraints, text(&r, 2), text(&r, 4));
            }
        }
    }
    for r in sqlx::query(
        "SELECT c.conrelid::regclass::text, ns.nspname::text, rel.relname::text, c.conname::text, \
         a.attname::text, fns.nspname::text, frel.relname::text, fa.attname::text \
         FROM pg_constraint c \
         JOIN pg_class rel ON rel.oid = c.conrelid JOIN pg_namespace ns ON ns.oid = rel.relnamespace \
         JOIN pg_class frel ON frel.oid = c.confrelid JOIN pg_namespace fns ON fns.oid = frel.relnamespace \
         CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, fcol, n) \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col \
         JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.fcol \
         WHERE c.contype = 'f' AND ns.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND ($1 = '' OR ns.nspname = $1) ORDER BY 2, 3, 4, k.n",
    )
    .bind(filter)
    .fetch_all(&mut *tx)
    .await
    .map_err(fail)?
    {
        if let Some(t) = table_mut(&mut tables, &text(&r, 1), &text(&r, 2)) {
            add_foreign_key(t, text(&r, 3), text(&r, 4), text(&r, 5), text(&r, 6), text(&r, 7));
        }
    }
    for r in sqlx::query(
        "SELECT ns.nspname::text, t.relname::text, i.relname::text, ix.indisunique::text, \
         coalesce(a.attname::text, '') \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(col, n) \
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.col \
         WHERE ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname NOT LIKE 'pg_toast%' \
         AND ($1 = '' OR ns.nspname = $1) ORDER BY 1, 2, 3, k.n",
    )
    .bind(filter)
    .fetch_all(&mut *tx)
    .await
    .map_err(fail)?
    {
        if let Some(t) = table_mut(&mut tables, &text(&r, 0), &text(&r, 1)) {
            add_index(t, text(&r, 2), text(&r, 4), text(&r, 3) == "true");
        }
    }
    tx.rollback().await.map_err(fail)?;
    Ok(Inspection {
        engine: "postgres".into(),
        server_version: text(&info, 0),
        current_user: text(&info, 1),
        inspected_at: String::new(),
        schemas: schemas.iter().map(|r| text(r, 0)).collect(),
        tables,
        warnings: Vec::new(),
    })
}

fn add_foreign_key(
    t: &mut Table,
    name: String,
    column: String,
    referenced_schema: String,
    referenced_table: String,
    referenced_column: String,
) {
    match t
        .foreign_keys
        .iter_mut()
        .find(|f| !name.is_empty() && f.name == name)
    {
        Some(f) => {
            f.columns.push(column);
            f.referenced_columns.push(referenced_column);
        }
        None => t.foreign_keys.push(ForeignKey {
            name,
            columns: vec![column],
            referenced_schema,
            referenced_table,
            referenced_columns: vec![referenced_column],
        }),
    }
}

fn add_index(t: &mut Table, name: String, column: String, unique: bool) {
    let i = match t.indexes.iter().position(|i| i.name == name) {
        Some(i) => i,
        None => {
            t.indexes.push(Index {
                name,
                columns: Vec::new(),
                unique,
            });
            t.indexes.len() - 1
        }
    };
    if !column.is_empty() {
        t.indexes[i].columns.push(column);
    }
}

async fn mysql(url: &str, schema: Option<&str>, timeout: Duration) -> Result<Inspection> {
    let fail = |e: sqlx::Error| failed("mysql", e);
    let url = url.replacen("mariadb://", "mysql://", 1);
    let opts: sqlx::mysql::MySqlConnectOptions = url.parse().map_err(fail)?;
    // Without --schema, the URL's database (if it names one).
    let database = opts.get_database().map(str::to_string);
    let mut conn = tokio::time::timeout(timeout, sqlx::MySqlConnection::connect_with(&opts))
        .await
        .map_err(|_| failed("mysql", "connecting timed out"))?
        .map_err(fail)?;
    // MariaDB bounds a statement with max_statement_time (seconds), MySQL with
    // max_execution_time (ms); each ignores the other's.
    let _ = sqlx::query("SET SESSION max_statement_time = ?")
        .bind(timeout.as_secs_f64())
        .execute(&mut conn)
        .await;
    let _ = sqlx::query("SET SESSION max_execution_time = ?")
        .bind(timeout.as_millis() as u64)
        .execute(&mut conn)
        .await;
    sqlx::query("START TRANSACTION READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(fail)?;
    let info = sqlx::query("SELECT CAST(VERSION() AS CHAR), CAST(CURRENT_USER() AS CHAR)")
        .fetch_one(&mut conn)
        .await
        .map_err(fail)?;
    let filter = schema.map(str::to_string).or(database).unwrap_or_default();
    let schemas = sqlx::query(
        "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata \
         WHERE schema_name NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(fail)?;
    let mut tables: Vec<Table> = sqlx::query(
        "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CAST(table_type AS CHAR) \
         FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') AND (? = '' OR table_schema = ?) ORDER BY 1, 2",
    )
    .bind(&filter)
    .bind(&filter)
    .fetch_all(&mut conn)
    .await
    .map_err(fail)?
    .iter()
    .map(|r| new_table(text(r, 0), text(r, 1), &text(r, 2)))
    .collect();
    for r in sqlx::query(
        "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CAST(column_name AS CHAR), \
         CAST(column_type AS CHAR), CAST(is_nullable AS CHAR), CAST(column_default AS CHAR), \
         CAST(extra AS CHAR), CAST(ordinal_position AS SIGNED) \
         FROM information_schema.columns WHERE table_schema NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') AND (? = '' OR table_schema = ?) ORDER BY 1, 2, ordinal_position",
    )
    .bind(&filter)
    .bind(&filter)
    .fetch_all(&mut conn)
    .await
    .map_err(fail)?
    {
        if let Some(t) = table_mut(&mut tables, &text(&r, 0), &text(&r, 1)) {
            let extra = text(&r, 6).to_ascii_lowercase();
            t.columns.push(Column {
                name: text(&r, 2),
                data_type: text(&r, 3).to_lowercase(),
                nullable: text(&r, 4) == "YES",
                default: Some(text(&r, 5)).filter(|d| !d.is_empty() && d != "NULL"),
                generated: extra.contains("generated") && extra != "default_generated"
                    || extra.contains("virtual")
                    || extra.contains("stored"),
                ordinal_position: r.try_get::<i64, _>(7).unwrap_or(0) as u32,
                suggestions: ColumnSuggestions::default(),
            });
        }
    }
    for r in sqlx::query(
        "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CAST(constraint_name AS CHAR), \
         CAST(column_name AS CHAR), CAST(referenced_table_schema AS CHAR), \
         CAST(referenced_table_name AS CHAR), CAST(referenced_column_name AS CHAR) \
         FROM information_schema.key_column_usage WHERE table_schema NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') AND (? = '' OR table_schema = ?) \
         ORDER BY 1, 2, 3, ordinal_position",
    )
    .bind(&filter)
    .bind(&filter)
    .fetch_all(&mut conn)
    .await
    .map_err(fail)?
    {
        let Some(t) = table_mut(&mut tables, &text(&r, 0), &text(&r, 1)) else {
            continue;
        };
        let (name, column) = (text(&r, 2), text(&r, 3));
        if !text(&r, 5).is_empty() {
            add_foreign_key(t, name, column, text(&r, 4), text(&r, 5), text(&r, 6));
        } else if name == "PRIMARY" {
            t.primary_key.push(column);
        } else {
            add_to(&mut t.unique_constraints, name, column);
        }
    }
    for r in sqlx::query(
        "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CAST(index_name AS CHAR), \
         CAST(non_unique AS SIGNED), CAST(column_name AS CHAR) \
         FROM information_schema.statistics WHERE table_schema NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') AND (? = '' OR table_schema = ?) ORDER BY 1, 2, 3, seq_in_index",
    )
    .bind(&filter)
    .bind(&filter)
    .fetch_all(&mut conn)
    .await
    .map_err(fail)?
    {
        if let Some(t) = table_mut(&mut tables, &text(&r, 0), &text(&r, 1)) {
            let unique = r.try_get::<i64, _>(3).unwrap_or(1) == 0;
            add_index(t, text(&r, 2), text(&r, 4), unique);
        }
    }
    sqlx::query("ROLLBACK")
        .execute(&mut conn)
        .await
        .map_err(fail)?;
    Ok(Inspection {
        engine: "mysql".into(),
        server_version: text(&info, 0),
        current_user: text(&info, 1),
        inspected_at: String::new(),
        schemas: schemas.iter().map(|r| text(r, 0)).collect(),
        tables,
        warnings: Vec::new(),
    })
}

fn sqlite(path: &std::path::Path) -> Result<Inspection> {
    use rusqlite::OpenFlags;
    let fail = |e: rusqlite::Error| failed("sqlite", e);
    if !path.exists() {
        return Err(failed(
            "sqlite",
            format!("{} does not exist", path.display()),
        ));
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    let version: String = conn
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .map_err(fail)?;
    let mut stmt = conn
        .prepare("SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(fail)?;
    let objects: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(fail)?
        .collect::<rusqlite::Result<_>>()
        .map_err(fail)?;
    let mut tables = Vec::new();
    for (name, kind) in objects {
        let mut t = new_table("main".into(), name.clone(), &kind);
        let mut pk: Vec<(i64, String)> = Vec::new();
        let mut cols = conn
            .prepare("SELECT cid, name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1)")
            .map_err(fail)?;
        let rows = cols
            .query_map([&name], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(fail)?;
        for row in rows {
            let (cid, col, ty, notnull, default, key, hidden) = row.map_err(fail)?;
            if key > 0 {
                pk.push((key, col.clone()));
            }
            t.columns.push(Column {
                name: col,
                data_type: ty.to_lowercase(),
                nullable: notnull == 0 && key == 0,
                default,
                generated: hidden == 2 || hidden == 3,
                ordinal_position: cid as u32 + 1,
                suggestions: ColumnSuggestions::default(),
            });
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let mut fks = conn
            .prepare("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
            .map_err(fail)?;
        let fk_rows: Vec<(i64, String, String, Option<String>)> = fks
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(fail)?
            .collect::<rusqlite::Result<_>>()
            .map_err(fail)?;
        for (id, table, from, to) in fk_rows {
            add_foreign_key(
                &mut t,
                format!("fk_{id}"),
                from,
                "main".into(),
                table,
                to.unwrap_or_default(),
            );
        }
        let mut idx = conn
            .prepare("SELECT l.name, l.\"unique\", l.origin, coalesce(i.name, '') FROM pragma_index_list(?1) l, pragma_index_info(l.name) i ORDER BY l.name, i.seqno")
            .map_err(fail)?;
        let idx_rows: Vec<(String, i64, String, String)> = idx
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(fail)?
            .collect::<rusqlite::Result<_>>()
            .map_err(fail)?;
        for (index, unique, origin, column) in idx_rows {
            if origin == "u" {
                add_to(&mut t.unique_constraints, index.clone(), column.clone());
            }
            add_index(&mut t, index, column, unique == 1);
        }
        tables.push(t);
    }
    Ok(Inspection {
        engine: "sqlite".into(),
        server_version: version,
        current_user: String::new(),
        inspected_at: String::new(),
        schemas: vec!["main".into()],
        tables,
        warnings: Vec::new(),
    })
}

/// Column names (lowercased, quotes and case folded away) that say what a column is for.
const TENANT_NAMES: &[&str] = &[
    "tenant_id",
    "tenant",
    "tenantid",
    "account_id",
    "accountid",
    "organization_id",
    "organisation_id",
    "org_id",
    "orgid",
    "workspace_id",
    "workspaceid",
    "customer_id",
    "company_id",
    "team_id",
];
/// Version columns, best first.
const VERSION_NAMES: &[&str] = &[
    "row_version",
    "lock_version",
    "version",
    "updated_at",
    "last_update",
    "last_updated",
    "last_updated_at",
    "modified_at",
    "last_modified",
    "updated_on",
    "modified",
    "updated",
    "etag",
];
const CREATION_NAMES: &[&str] = &[
    "id",
    "uuid",
    "created_at",
    "created_by",
    "created_on",
    "inserted_at",
];

/// `CamelCase`, `camelCase` and `snake_case` all as `snake_case`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(if c == '-' || c == ' ' { '_' } else { c });
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// The words of a snake-case name.
fn words(name: &str) -> Vec<&str> {
    name.split('_').filter(|w| !w.is_empty()).collect()
}

fn sensitive(name: &str) -> bool {
    let w = words(name);
    let has = |x: &str| w.contains(&x);
    let pair = |a: &str, b: &str| w.windows(2).any(|p| p[0] == a && p[1] == b);
    [
        "password", "passwd", "secret", "token", "apikey", "ssn", "cvv", "pin", "otp", "salt",
        "cookie", "session", "oauth", "iban",
    ]
    .iter()
    .any(|x| has(x))
        || pair("api", "key")
        || pair("access", "key")
        || pair("private", "key")
        || pair("secret", "key")
        || pair("social", "security")
        || pair("credit", "card")
        || pair("card", "number")
        || pair("tax", "id")
}

fn large_or_binary(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    [
        "bytea",
        "blob",
        "binary",
        "vector",
        "json",
        "xml",
        "tsvector",
        "geometry",
        "geography",
    ]
    .iter()
    .any(|x| t.contains(x))
}

/// A type a conflict guard can compare and advance: a date-time or an integer.
fn versionable(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    t.contains("timestamp")
        || t.contains("datetime")
        || t.contains("int")
        || t == "date"
        || t.contains("serial")
}

/// `sqlite`: column types are affinities there, and date-times are usually stored as text.
fn classify(t: &mut Table, sqlite: bool) {
    let pk = t.primary_key.clone();
    for c in &mut t.columns {
        let n = snake(&c.name);
        let tenant = TENANT_NAMES.contains(&n.as_str());
        c.suggestions = ColumnSuggestions {
            tenant,
            conflict: VERSION_NAMES.contains(&n.as_str())
                && (versionable(&c.data_type)
                    || sqlite && matches!(c.data_type.as_str(), "text" | ""))
                || n == "etag",
            sensitive: sensitive(&n),
            immutable: pk.contains(&c.name) || tenant || CREATION_NAMES.contains(&n.as_str()),
            large_or_binary: large_or_binary(&c.data_type),
        };
    }
    let named = |pred: fn(&ColumnSuggestions) -> bool| -> Vec<String> {
        t.columns
            .iter()
            .filter(|c| pred(&c.suggestions))
            .map(|c| c.name.clone())
            .collect()
    };
    let mut conflict = named(|s| s.conflict);
    conflict.sort_by_key(|c| {
        VERSION_NAMES
            .iter()
            .position(|v| *v == snake(c))
            .unwrap_or(usize::MAX)
    });
    let object = snake(t.name.trim_end_matches('s'));
    let table = snake(&t.name);
    let primary_key = match pk.as_slice() {
        [one] => Some(one.clone()),
        _ => [
            "id".to_string(),
            format!("{object}_id"),
            format!("{table}_id"),
        ]
        .iter()
        .find_map(|want| t.columns.iter().find(|c| snake(&c.name) == *want))
        .map(|c| c.name.clone()),
    };
    t.suggestions = TableSuggestions {
        primary_key,
        tenant_columns: named(|s| s.tenant),
        conflict_columns: conflict,
        sensitive_columns: named(|s| s.sensitive),
        default_visible_columns: named(|s| !s.sensitive && !s.large_or_binary),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_by_their_words() {
        for s in [
            "password_hash",
            "api_key",
            "apiKey",
            "user_ssn",
            "stripe_secret",
            "refresh_token",
            "CreditCardNumber",
        ] {
            assert!(sensitive(&snake(s)), "{s}");
        }
        for s in ["description", "pinned", "keyboard", "spinach"] {
            assert!(!sensitive(&snake(s)), "{s}");
        }
        assert_eq!(snake("LastUpdate"), "last_update");
        assert_eq!(snake("tenantID"), "tenant_id");
        assert!(
            large_or_binary("jsonb") && large_or_binary("longblob") && !large_or_binary("text")
        );
        assert!(
            versionable("timestamp with time zone")
                && versionable("int(11)")
                && !versionable("text")
        );
    }
}
