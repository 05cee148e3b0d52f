//! Protocol v1 fixtures: parse, round-trip, validate against the JSON Schemas, match the
//! MANIFEST hashes; and what we produce validates too.

mod common;

use serde_json::Value;
use synapsor_runner::protocol::{
    ChangeSet, ExecutionReceipt, RunnerRegistration, WritebackJob, sha256_hex,
};

fn read(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture(rel)).unwrap()).unwrap()
}

fn validator(schema: &str) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&read(&format!("schemas/{schema}")))
        .unwrap()
}

fn assert_valid(schema: &str, v: &Value) {
    let val = validator(schema);
    let errors: Vec<String> = val
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{schema}: {errors:?}");
}

#[test]
fn manifest_hashes_match_every_artifact() {
    let manifest = read("protocol/MANIFEST.json");
    let artifacts = manifest["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 9);
    for a in artifacts {
        let dir = if a["kind"] == "fixture" {
            "protocol"
        } else {
            "schemas"
        };
        let bytes = std::fs::read(common::fixture(&format!(
            "{dir}/{}",
            a["name"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            a["sha256"].as_str().unwrap(),
            "{}",
            a["name"]
        );
    }
}

#[test]
fn fixtures_carry_no_credentials_or_sql_tools() {
    let re = regex_lite::Regex::new(
        r"(?i)postgres(ql)?://|mysql://|password|secret|execute_sql|run_query|raw_sql",
    )
    .unwrap();
    for entry in std::fs::read_dir(common::fixture("protocol")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!re.is_match(&text), "{}", path.display());
    }
}

#[test]
fn fixtures_parse_round_trip_and_validate() {
    let cs = read("protocol/change-set.late-fee-waiver.v1.json");
    assert_valid("change-set.v1.schema.json", &cs);
    assert_eq!(ChangeSet::parse(&cs).unwrap().to_value(), cs);

    let job = read("protocol/writeback-job.late-fee-waiver.v1.json");
    assert_valid("writeback-job.v1.schema.json", &job);
    let parsed = WritebackJob::parse(&job).unwrap();
    assert_eq!(parsed.to_value(), job);
    assert_eq!(parsed.writeback_job_id, "wbj_123");

    for name in [
        "execution-receipt.applied.v1.json",
        "execution-receipt.conflict.v1.json",
    ] {
        let r = read(&format!("protocol/{name}"));
        assert_valid("execution-receipt.v1.schema.json", &r);
        assert_eq!(ExecutionReceipt::parse(&r).unwrap().to_value(), r);
    }
    let conflict =
        ExecutionReceipt::parse(&read("protocol/execution-receipt.conflict.v1.json")).unwrap();
    assert_eq!(
        conflict.safe_error_code.as_deref(),
        Some("VERSION_CONFLICT")
    );
    assert_eq!(conflict.rows_affected, 0);

    let reg = read("protocol/runner-registration.v1.json");
    assert_valid("runner-registration.v1.schema.json", &reg);
    assert_eq!(
        serde_json::to_value(RunnerRegistration::parse(&reg).unwrap()).unwrap(),
        reg
    );
}

#[test]
fn protocol_parse_rejects_tampered_objects() {
    let job = read("protocol/writeback-job.late-fee-waiver.v1.json");
    let mut extra = job.clone();
    extra["patch"]["admin"] = Value::String("yes".into());
    assert!(
        WritebackJob::parse(&extra)
            .unwrap_err()
            .to_string()
            .contains("patch column not allowed")
    );
    let mut pk = job.clone();
    pk["allowed_columns"] = serde_json::json!(["id", "status"]);
    pk["patch"] = serde_json::json!({"status": "x"});
    assert!(
        WritebackJob::parse(&pk)
            .unwrap_err()
            .to_string()
            .contains("primary key")
    );
    let mut unknown = job.clone();
    unknown["sql"] = Value::String("UPDATE".into());
    assert_eq!(
        WritebackJob::parse(&unknown).unwrap_err().code(),
        "PROTOCOL_INVALID"
    );
    let cs = read("protocol/change-set.late-fee-waiver.v1.json");
    let mut tenant = cs.clone();
    tenant["guards"]["allowed_columns"] =
        serde_json::json!(["tenant_id", "late_fee_cents", "waiver_reason"]);
    assert!(
        ChangeSet::parse(&tenant)
            .unwrap_err()
            .to_string()
            .contains("tenant guard")
    );
}

#[tokio::test]
async fn objects_we_produce_validate_against_the_schemas() {
    let db = common::PgDb::billing();
    let runner = db.runner();
    let ctx = synapsor_runner::TrustedContext::new("acme", "support_agent_17");
    let p = runner
        .propose(
            "billing.propose_late_fee_waiver",
            serde_json::json!({"invoice_id": "INV-3001", "reason": "ok"}),
            &ctx,
        )
        .await
        .unwrap();
    runner
        .approve(
            &p.proposal_id,
            &synapsor_runner::Approver::new("lead").role("billing_lead"),
        )
        .await
        .unwrap();
    let stored = runner.ledger().proposal(&p.proposal_id).await.unwrap();
    assert_valid("change-set.v1.schema.json", &stored.change_set.to_value());
    let job = synapsor_runner::apply::job_from_proposal(&stored, "postgres", &Default::default());
    assert_valid("writeback-job.v1.schema.json", &job.to_value());
    let out = runner
        .apply(&p.proposal_id, &Default::default())
        .await
        .unwrap();
    assert_eq!(out.receipt.status, "applied");
    assert_valid("execution-receipt.v1.schema.json", &out.receipt.to_value());
    assert_eq!(out.receipt.compute_hash(), out.receipt.receipt_hash);
}

#[test]
fn handler_request_has_the_documented_shape_and_receipts_are_checked() {
    let cs = ChangeSet::parse(&read("protocol/change-set.late-fee-waiver.v1.json")).unwrap();
    let req = synapsor_runner::protocol::handler_request(
        &cs,
        "wbj_123",
        "wrp_123:INV-3001",
        false,
        "2026-06-20T14:34:00Z",
    );
    assert_valid("synapsor.app-handler-request.v1.json", &req);
    assert_eq!(
        req["change_set"]["scope"]["tenant_id"],
        serde_json::json!("acme")
    );
    assert_eq!(
        req["change_set"]["principal"]["id"],
        serde_json::json!("support_agent_17")
    );
    let text = req.to_string().to_lowercase();
    assert!(
        !text.contains("\"sql\"") && !text.contains("postgres://"),
        "no SQL or credentials in handler requests"
    );

    let ok = serde_json::json!({"status": "applied", "rows_affected": 2, "source_database_mutated": true, "details": {"effects": []}});
    assert_valid("synapsor.app-handler-receipt.v1.json", &ok);
    assert_eq!(
        synapsor_runner::protocol::HandlerReceipt::parse(&ok)
            .unwrap()
            .rows_affected,
        2
    );
    for bad in [
        serde_json::json!({"status": "done", "rows_affected": 1, "source_database_mutated": true}),
        serde_json::json!({"status": "applied", "rows_affected": -1, "source_database_mutated": true}),
        serde_json::json!({"status": "applied", "rows_affected": 1, "source_database_mutated": true, "sql": "UPDATE"}),
    ] {
        assert_eq!(
            synapsor_runner::protocol::HandlerReceipt::parse(&bad)
                .unwrap_err()
                .code(),
            "HANDLER_RECEIPT_INVALID",
            "{bad}"
        );
    }
}
