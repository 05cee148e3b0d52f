//! Benchmark helper: copy one stored proposal N times (fresh ids and object ids, valid digests)
//! into a ledger, so ledger-size effects can be measured.
//!
//! Usage: cargo run --release -p synapsor-runner --example seed_ledger -- LEDGER TEMPLATE_ID COUNT

use serde_json::{Value, json};
use synapsor_runner::Ledger;
use synapsor_runner::ledger::{EvidenceBundle, QueryAudit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, template, count] = args.as_slice() else {
        eprintln!("usage: seed_ledger LEDGER TEMPLATE_PROPOSAL_ID COUNT");
        std::process::exit(2);
    };
    let ledger = Ledger::open(std::path::Path::new(path))?;
    let template = ledger
        .proposal(&ledger.resolve_selector(template).await?)
        .await?;
    let count: usize = count.parse()?;
    let started = std::time::Instant::now();
    for i in 0..count {
        let mut cs = template.change_set.clone();
        let object = format!("BENCH-{i:07}");
        cs.proposal_id = format!("wrp_bench{i:015}");
        cs.scope.object_id = object.clone();
        cs.source.primary_key.value = Value::String(object.clone());
        cs.created_at = format!("2020-01-01T00:00:00.{:06}Z", i % 1_000_000);
        cs.evidence.bundle_id = format!("ev_bench{i:015}");
        cs.integrity.proposal_hash = cs.compute_hash();
        let bundle = EvidenceBundle {
            evidence_bundle_id: cs.evidence.bundle_id.clone(),
            tenant_id: cs.scope.tenant_id.clone(),
            principal: cs.principal.id.clone(),
            capability: cs.action.clone(),
            source_id: cs.source.source_id.clone(),
            source_table: format!("{}.{}", cs.source.schema, cs.source.table),
            business_object: cs.source.table.clone(),
            object_id: object.clone(),
            query_fingerprint: cs.evidence.query_fingerprint.clone(),
            payload: json!({"capability": cs.action}),
            items: vec![json!({"kind": "external_row", "visible_row": cs.before})],
        };
        let audit = QueryAudit {
            source_id: cs.source.source_id.clone(),
            query_fingerprint: cs.evidence.query_fingerprint.clone(),
            table_name: bundle.source_table.clone(),
            row_count: 1,
            payload: json!({"parameters_redacted": true}),
            primary_key_value: object,
        };
        ledger.create_proposal(cs, bundle, audit).await?;
    }
    eprintln!(
        "seeded {count} proposals in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
