//! Config validation: reference configs load; broken configs yield their code and path; every
//! problem is reported at once.

mod common;

use serde_json::{Value, json};
use synapsor_runner::config::{load_config, validate_value};

fn base() -> Value {
    json!({
        "version": 1,
        "mode": "review",
        "sources": {"app": {"engine": "postgres", "read_url_env": "APP_READ_URL", "write_url_env": "APP_WRITE_URL"}},
        "trusted_context": {"provider": "environment", "values": {"tenant_id_env": "SYNAPSOR_TENANT_ID", "principal_env": "SYNAPSOR_PRINCIPAL"}},
        "capabilities": [
            {
                "name": "billing.inspect_invoice", "kind": "read", "source": "app",
                "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"invoice_id": {"type": "string", "max_length": 64}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents", "updated_at"]
            },
            {
                "name": "billing.propose_late_fee_waiver", "kind": "proposal", "source": "app",
                "target": {"schema": "public", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"invoice_id": {"type": "string"}, "reason": {"type": "string", "max_length": 500}},
                "lookup": {"id_from_arg": "invoice_id"},
                "visible_columns": ["id", "late_fee_cents", "waiver_reason", "updated_at"],
                "patch": {"late_fee_cents": {"fixed": 0}, "waiver_reason": {"from_arg": "reason"}},
                "allowed_columns": ["late_fee_cents", "waiver_reason"],
                "numeric_bounds": {"late_fee_cents": {"minimum": 0, "maximum": 10000}},
                "conflict_guard": {"column": "updated_at"},
                "approval": {"mode": "human", "required_role": "billing_lead"}
            }
        ]
    })
}

fn codes(v: &Value) -> Vec<(String, String)> {
    validate_value(v)
        .errors
        .into_iter()
        .map(|e| (e.code, e.path))
        .collect()
}

#[test]
fn the_base_config_is_valid_without_warnings() {
    let r = validate_value(&base());
    assert!(r.ok, "{:?}", r.errors);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn every_reference_example_config_loads() {
    let dir = common::fixture("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("synapsor.runner.json");
        if path.exists() {
            let loaded = load_config(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!loaded.config.capabilities.is_empty());
            n += 1;
        }
    }
    assert_eq!(n, 6, "all six reference example configs");
}

#[test]
fn every_reference_recipe_loads() {
    let dir = common::fixture("recipes");
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let r = synapsor_runner::recipe::load_recipe(&entry.unwrap().path()).unwrap();
        assert_eq!(r.semantic_tools.len(), 2);
        ids.push(r.id);
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "accounts.trial_extension",
            "billing.late_fee_waiver",
            "credits.account_credit",
            "orders.refund_review",
            "support.ticket_resolution"
        ]
    );
    let broken = json!({"id": "x", "spec": {}});
    let e = synapsor_runner::recipe::parse_recipe(&broken, "inline").unwrap_err();
    assert!(
        e.to_string().contains("requires string title")
            && e.to_string().contains("spec requires namespace"),
        "{e}"
    );
}

type Mutation = fn(&mut Value);

#[test]
fn broken_configs_report_their_code_and_path() {
    let cases: Vec<(&str, Mutation, &str, &str)> = vec![
        (
            "string version",
            |c| c["version"] = json!("1"),
            "UNSUPPORTED_CONFIG_VERSION",
            "$.version",
        ),
        (
            "bad mode",
            |c| c["mode"] = json!("yolo"),
            "INVALID_MODE",
            "$.mode",
        ),
        (
            "bad result format",
            |c| c["result_format"] = json!(3),
            "INVALID_RESULT_FORMAT",
            "$.result_format",
        ),
        (
            "unknown top-level",
            |c| c["extra"] = json!(1),
            "UNKNOWN_FIELD",
            "$.extra",
        ),
        (
            "inline url",
            |c| c["sources"]["app"]["url"] = json!("postgres://u:p@h/db"),
            "INLINE_DATABASE_URL_FORBIDDEN",
            "$.sources.app.url",
        ),
        (
            "sql key",
            |c| c["capabilities"][0]["sql"] = json!("select 1"),
            "ARBITRARY_SQL_FORBIDDEN",
            "$.capabilities[0].sql",
        ),
        (
            "unsafe source name",
            |c| {
                let s = c["sources"]["app"].clone();
                c["sources"]["app-pg"] = s;
            },
            "UNSAFE_SOURCE_NAME",
            "$.sources.app-pg",
        ),
        (
            "bad engine",
            |c| c["sources"]["app"]["engine"] = json!("oracle"),
            "INVALID_SOURCE_ENGINE",
            "$.sources.app.engine",
        ),
        (
            "lowercase env",
            |c| c["sources"]["app"]["read_url_env"] = json!("app_read"),
            "READ_URL_ENV_REQUIRED",
            "$.sources.app.read_url_env",
        ),
        (
            "sqlite without path",
            |c| c["sources"]["app"] = json!({"engine": "sqlite"}),
            "SQLITE_PATH_REQUIRED",
            "$.sources.app.path",
        ),
        (
            "bad timeout",
            |c| c["sources"]["app"]["statement_timeout_ms"] = json!(0),
            "INVALID_TIMEOUT",
            "$.sources.app.statement_timeout_ms",
        ),
        (
            "bad provider",
            |c| c["trusted_context"]["provider"] = json!("model"),
            "INVALID_CONTEXT_PROVIDER",
            "$.trusted_context.provider",
        ),
        (
            "no trusted context",
            |c| {
                c.as_object_mut().unwrap().remove("trusted_context");
            },
            "TRUSTED_CONTEXT_REQUIRED",
            "$.trusted_context",
        ),
        (
            "three-part name",
            |c| c["capabilities"][0]["name"] = json!("a.b.c"),
            "INVALID_CAPABILITY_NAME",
            "$.capabilities[0].name",
        ),
        (
            "duplicate name",
            |c| c["capabilities"][1]["name"] = json!("billing.inspect_invoice"),
            "DUPLICATE_CAPABILITY_NAME",
            "$.capabilities[1].name",
        ),
        (
            "unknown source",
            |c| c["capabilities"][0]["source"] = json!("nope"),
            "UNKNOWN_SOURCE",
            "$.capabilities[0].source",
        ),
        (
            "unknown context",
            |c| c["capabilities"][0]["context"] = json!("missing_context"),
            "UNKNOWN_CONTEXT",
            "$.capabilities[0].context",
        ),
        (
            "unknown executor",
            |c| c["capabilities"][1]["executor"] = json!("missing_executor"),
            "UNKNOWN_EXECUTOR",
            "$.capabilities[1].executor",
        ),
        (
            "no tenant key",
            |c| {
                c["capabilities"][0]["target"]
                    .as_object_mut()
                    .unwrap()
                    .remove("tenant_key");
            },
            "TENANT_GUARD_REQUIRED",
            "$.capabilities[0].target.tenant_key",
        ),
        (
            "unsafe table",
            |c| c["capabilities"][0]["target"]["table"] = json!("invoices;drop"),
            "INVALID_TARGET_IDENTIFIER",
            "$.capabilities[0].target.table",
        ),
        (
            "reserved arg",
            |c| c["capabilities"][0]["args"]["tenant_id"] = json!({"type": "string"}),
            "MODEL_CONTROLLED_RESERVED_ARG",
            "$.capabilities[0].args.tenant_id",
        ),
        (
            "identifier arg",
            |c| c["capabilities"][0]["args"]["table_name"] = json!({"type": "string"}),
            "MODEL_CONTROLLED_RESERVED_ARG",
            "$.capabilities[0].args.table_name",
        ),
        (
            "arg named statement",
            |c| c["capabilities"][0]["args"]["statement"] = json!({"type": "string"}),
            "ARBITRARY_SQL_FORBIDDEN",
            "$.capabilities[0].args.statement",
        ),
        (
            "bad arg type",
            |c| c["capabilities"][0]["args"]["invoice_id"]["type"] = json!("date"),
            "INVALID_ARG_TYPE",
            "$.capabilities[0].args.invoice_id.type",
        ),
        (
            "min on string",
            |c| c["capabilities"][0]["args"]["invoice_id"]["minimum"] = json!(1),
            "NUMERIC_BOUNDS_REQUIRE_NUMBER",
            "$.capabilities[0].args.invoice_id",
        ),
        (
            "empty enum",
            |c| c["capabilities"][0]["args"]["invoice_id"]["enum"] = json!([]),
            "INVALID_ARG_ENUM",
            "$.capabilities[0].args.invoice_id.enum",
        ),
        (
            "lookup undeclared",
            |c| c["capabilities"][0]["lookup"]["id_from_arg"] = json!("order_id"),
            "LOOKUP_ARG_UNDECLARED",
            "$.capabilities[0].lookup.id_from_arg",
        ),
        (
            "no visible columns",
            |c| c["capabilities"][0]["visible_columns"] = json!([]),
            "VISIBLE_COLUMNS_REQUIRED",
            "$.capabilities[0].visible_columns",
        ),
        (
            "unsafe visible column",
            |c| c["capabilities"][0]["visible_columns"][1] = json!("a b"),
            "INVALID_VISIBLE_COLUMN",
            "$.capabilities[0].visible_columns[1]",
        ),
        (
            "no patch",
            |c| {
                c["capabilities"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("patch");
            },
            "PATCH_REQUIRED",
            "$.capabilities[1].patch",
        ),
        (
            "patch arg undeclared",
            |c| c["capabilities"][1]["patch"]["waiver_reason"] = json!({"from_arg": "why"}),
            "PATCH_ARG_UNDECLARED",
            "$.capabilities[1].patch.waiver_reason.from_arg",
        ),
        (
            "patch both bindings",
            |c| {
                c["capabilities"][1]["patch"]["late_fee_cents"] =
                    json!({"fixed": 0, "from_arg": "reason"})
            },
            "INVALID_PATCH_BINDING",
            "$.capabilities[1].patch.late_fee_cents",
        ),
        (
            "patch outside allowlist",
            |c| c["capabilities"][1]["allowed_columns"] = json!(["late_fee_cents"]),
            "PATCH_COLUMN_NOT_ALLOWED",
            "$.capabilities[1].patch.waiver_reason",
        ),
        (
            "pk in allowlist",
            |c| {
                c["capabilities"][1]["allowed_columns"] =
                    json!(["id", "late_fee_cents", "waiver_reason"])
            },
            "PRIMARY_KEY_IN_ALLOWED_COLUMNS",
            "$.capabilities[1].allowed_columns[0]",
        ),
        (
            "tenant in allowlist",
            |c| {
                c["capabilities"][1]["allowed_columns"] =
                    json!(["tenant_id", "late_fee_cents", "waiver_reason"])
            },
            "TENANT_KEY_IN_ALLOWED_COLUMNS",
            "$.capabilities[1].allowed_columns[0]",
        ),
        (
            "no allowlist",
            |c| {
                c["capabilities"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("allowed_columns");
            },
            "ALLOWED_COLUMNS_REQUIRED",
            "$.capabilities[1].allowed_columns",
        ),
        (
            "bound on non-patch column",
            |c| c["capabilities"][1]["numeric_bounds"]["admin_override"] = json!({"minimum": 1}),
            "NUMERIC_BOUND_PATCH_COLUMN_REQUIRED",
            "$.capabilities[1].numeric_bounds.admin_override",
        ),
        (
            "inverted bound",
            |c| {
                c["capabilities"][1]["numeric_bounds"]["late_fee_cents"] =
                    json!({"minimum": 10, "maximum": 1})
            },
            "INVALID_NUMERIC_RANGE",
            "$.capabilities[1].numeric_bounds.late_fee_cents",
        ),
        (
            "empty bound",
            |c| c["capabilities"][1]["numeric_bounds"]["late_fee_cents"] = json!({}),
            "NUMERIC_BOUND_EMPTY",
            "$.capabilities[1].numeric_bounds.late_fee_cents",
        ),
        (
            "no conflict guard",
            |c| {
                c["capabilities"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("conflict_guard");
            },
            "CONFLICT_GUARD_REQUIRED",
            "$.capabilities[1].conflict_guard",
        ),
        (
            "empty conflict guard",
            |c| c["capabilities"][1]["conflict_guard"] = json!({}),
            "CONFLICT_GUARD_COLUMN_REQUIRED",
            "$.capabilities[1].conflict_guard",
        ),
        (
            "transition from unread column",
            |c| {
                c["capabilities"][1]["transition_guards"] = json!({"waiver_reason": {"from_column": "internal_state", "allowed": {"a": ["b"]}}});
            },
            "TRANSITION_FROM_COLUMN_NOT_VISIBLE",
            "$.capabilities[1].transition_guards.waiver_reason.from_column",
        ),
        (
            "transition empty from",
            |c| {
                c["capabilities"][1]["transition_guards"] =
                    json!({"waiver_reason": {"allowed": {"": ["b"]}}});
            },
            "TRANSITION_FROM_REQUIRED",
            "$.capabilities[1].transition_guards.waiver_reason.allowed.",
        ),
        (
            "read-only source with direct writeback",
            |c| c["sources"]["app"]["read_only"] = json!(true),
            "READ_ONLY_SOURCE_DIRECT_WRITEBACK",
            "$.capabilities[1].executor",
        ),
        (
            "bad executor type",
            |c| c["executors"] = json!({"h": {"type": "ftp"}}),
            "INVALID_EXECUTOR_TYPE",
            "$.executors.h.type",
        ),
        (
            "handler without url env",
            |c| c["executors"] = json!({"h": {"type": "http_handler"}}),
            "HANDLER_URL_ENV_REQUIRED",
            "$.executors.h.url_env",
        ),
        (
            "handler in read_only mode",
            |c| {
                c["mode"] = json!("read_only");
                c["executors"] = json!({"h": {"type": "http_handler", "url_env": "H_URL"}});
            },
            "EXECUTOR_INVALID_IN_READ_ONLY",
            "$.executors.h",
        ),
        (
            "cloud block outside cloud",
            |c| c["cloud"] = json!({}),
            "CLOUD_CONFIG_ONLY_FOR_CLOUD_MODE",
            "$.cloud",
        ),
        (
            "optional evidence",
            |c| c["capabilities"][0]["evidence"] = json!("optional"),
            "EVIDENCE_ALWAYS_RECORDED",
            "$.capabilities[0].evidence",
        ),
        (
            "unknown evidence",
            |c| c["capabilities"][0]["evidence"] = json!("sometimes"),
            "INVALID_EVIDENCE",
            "$.capabilities[0].evidence",
        ),
        (
            "an acknowledgement with nothing to acknowledge",
            |c| c["capabilities"][0]["single_tenant_dev_ack"] = json!(true),
            "SINGLE_TENANT_DEV_ACK_UNUSED",
            "$.capabilities[0].single_tenant_dev_ack",
        ),
        (
            "a non-boolean acknowledgement",
            |c| c["capabilities"][0]["single_tenant_dev_ack"] = json!("yes"),
            "INVALID_SINGLE_TENANT_DEV_ACK",
            "$.capabilities[0].single_tenant_dev_ack",
        ),
    ];
    for (what, mutate, code, path) in cases {
        let mut cfg = base();
        mutate(&mut cfg);
        let found = codes(&cfg);
        assert!(
            found.iter().any(|(c, p)| c == code && p == path),
            "{what}: expected {code} at {path}, got {found:?}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut cfg = base();
    cfg["mode"] = json!("yolo");
    cfg["sources"]["app"]["url"] = json!("postgres://u:p@h/db");
    cfg["capabilities"][0]["args"]["tenant_id"] = json!({"type": "string"});
    cfg["capabilities"][1]["allowed_columns"] = json!(["id", "late_fee_cents", "waiver_reason"]);
    cfg["capabilities"][1]["patch"]["waiver_reason"] = json!({"from_arg": "why"});
    let found: Vec<String> = codes(&cfg).into_iter().map(|(c, _)| c).collect();
    for code in [
        "INVALID_MODE",
        "UNKNOWN_FIELD",
        "INLINE_DATABASE_URL_FORBIDDEN",
        "MODEL_CONTROLLED_RESERVED_ARG",
        "PRIMARY_KEY_IN_ALLOWED_COLUMNS",
        "PATCH_ARG_UNDECLARED",
    ] {
        assert!(
            found.contains(&code.to_string()),
            "{code} missing from {found:?}"
        );
    }
    let empty = codes(&json!({}));
    let empty_codes: Vec<&str> = empty.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        empty_codes,
        [
            "UNSUPPORTED_CONFIG_VERSION",
            "INVALID_MODE",
            "SOURCES_REQUIRED",
            "TRUSTED_CONTEXT_REQUIRED",
            "CAPABILITIES_REQUIRED"
        ]
    );
    assert_eq!(
        codes(&json!([])),
        vec![("CONFIG_NOT_OBJECT".to_string(), "$".to_string())]
    );
}

#[test]
fn evidence_required_is_accepted_and_single_tenant_dev_ack_silences_its_warning() {
    let mut cfg = base();
    cfg["capabilities"][0]["evidence"] = json!("required");
    let target = cfg["capabilities"][0]["target"].as_object_mut().unwrap();
    target.remove("tenant_key");
    target.insert("single_tenant_dev".into(), json!(true));
    let r = validate_value(&cfg);
    assert!(r.ok, "{:?}", r.errors);
    let warned = |r: &synapsor_runner::config::ValidationReport| {
        r.warnings
            .iter()
            .any(|w| w.code == "SINGLE_TENANT_DEV_EXCEPTION")
    };
    assert!(warned(&r), "{:?}", r.warnings);
    cfg["capabilities"][0]["single_tenant_dev_ack"] = json!(true);
    let r = validate_value(&cfg);
    assert!(r.ok, "{:?}", r.errors);
    assert!(!warned(&r), "acknowledged: {:?}", r.warnings);
}

#[test]
fn warnings_do_not_block() {
    let mut cfg = base();
    cfg["sources"]["app"]
        .as_object_mut()
        .unwrap()
        .remove("write_url_env");
    cfg["trusted_context"] =
        json!({"provider": "static_dev", "values": {"tenant_id": "acme", "principal": "dev"}});
    let r = validate_value(&cfg);
    assert!(r.ok, "{:?}", r.errors);
    let w: Vec<&str> = r.warnings.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(w, ["STATIC_DEV_CONTEXT", "WRITEBACK_DISABLED"]);
    let mut lax = base();
    lax["strict"] = json!(false);
    lax["extra"] = json!(1);
    lax["sources"]["app"]["database_url"] = json!("x");
    let found = codes(&lax);
    assert!(!found.iter().any(|(c, _)| c == "UNKNOWN_FIELD"));
    assert!(
        found
            .iter()
            .any(|(c, _)| c == "INLINE_DATABASE_URL_FORBIDDEN"),
        "the forbidden-key scan runs even when not strict"
    );
}

#[test]
fn loading_an_invalid_file_lists_every_problem_with_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synapsor.runner.json");
    std::fs::write(&path, r#"{"version": 2, "mode": "review"}"#).unwrap();
    let e = load_config(&path).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("Invalid Synapsor runner config:"));
    for line in [
        "$.version UNSUPPORTED_CONFIG_VERSION",
        "$.sources SOURCES_REQUIRED",
        "$.capabilities CAPABILITIES_REQUIRED",
    ] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
    std::fs::write(&path, "{not json").unwrap();
    assert_eq!(load_config(&path).unwrap_err().code(), "CONFIG_NOT_JSON");
}

/// `storage`: a SQLite file, or a PostgreSQL schema named by an env var, never both, never a URL.
#[test]
fn storage_is_a_sqlite_file_or_a_postgres_schema() {
    let with = |storage: Value| {
        let mut c = base();
        c["storage"] = storage;
        codes(&c)
    };
    assert!(with(json!({"engine": "postgres", "url_env": "SYNAPSOR_LEDGER_URL"})).is_empty());
    assert!(
        with(json!({"engine": "postgres", "url_env": "LEDGER_URL", "schema": "billing_ledger"}))
            .is_empty()
    );
    assert!(with(json!({"sqlite_path": "ledger.db"})).is_empty());
    let cases = [
        (
            json!({"engine": "mongo"}),
            "$.storage.engine",
            "INVALID_STORAGE_ENGINE",
        ),
        (
            json!({"engine": "postgres"}),
            "$.storage.url_env",
            "STORAGE_URL_ENV_REQUIRED",
        ),
        (
            json!({"engine": "postgres", "url_env": "postgres://u:p@h/db"}),
            "$.storage.url_env",
            "STORAGE_URL_ENV_REQUIRED",
        ),
        (
            json!({"engine": "postgres", "url_env": "L", "sqlite_path": "x.db"}),
            "$.storage.sqlite_path",
            "STORAGE_SQLITE_PATH_WITH_POSTGRES",
        ),
        (
            json!({"engine": "postgres", "url_env": "L", "schema": "Bad-Name"}),
            "$.storage.schema",
            "INVALID_STORAGE_SCHEMA",
        ),
        (
            json!({"url_env": "L"}),
            "$.storage.url_env",
            "STORAGE_FIELD_NEEDS_POSTGRES",
        ),
        (
            json!({"engine": "postgres", "url_env": "L", "url": "postgres://x"}),
            "$.storage.url",
            "UNKNOWN_FIELD",
        ),
    ];
    for (storage, path, code) in cases {
        let got = with(storage.clone());
        assert!(
            got.contains(&(code.to_string(), path.to_string())),
            "{storage}: {got:?}"
        );
    }
}
