//! Resource handles (proposal, evidence, replay) are re-authorised by tenant and principal on
//! every read; every miss looks the same.

use serde_json::json;
use synapsor_runner::demo::create_demo;
use synapsor_runner::{OpenOptions, Runner, TrustedContext};

async fn host_runner(dir: &std::path::Path) -> Runner {
    create_demo(dir).unwrap();
    let path = dir.join("synapsor.runner.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["trusted_context"] = json!({"provider": "host"});
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    // A second acme invoice row for the other tenant is already seeded (INV-9001 is globex's).
    Runner::open(OpenOptions::config_path(&path).ledger(dir.join("local.db")))
        .await
        .unwrap()
}

#[tokio::test]
async fn only_the_owning_tenant_and_principal_can_read_a_handle() {
    let dir = tempfile::tempdir().unwrap();
    let runner = host_runner(dir.path()).await;
    let owner = TrustedContext::new("acme", "agent_a");
    let p = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3001", "reason": "r"}),
            &owner,
        )
        .await
        .unwrap();

    let proposal = synapsor_runner::agent::resources::read(
        &runner,
        &format!("synapsor://proposals/{}", p.proposal_id),
        &owner,
    )
    .await
    .unwrap();
    assert_eq!(proposal["proposal"]["proposal_id"], json!(p.proposal_id));
    assert!(proposal["events"].as_array().unwrap().len() >= 2);
    let replay = synapsor_runner::agent::resources::read(
        &runner,
        &format!("synapsor://replay/replay_{}", p.proposal_id),
        &owner,
    )
    .await
    .unwrap();
    assert_eq!(
        replay["replay_id"],
        json!(format!("replay_{}", p.proposal_id))
    );
    let evidence = synapsor_runner::agent::resources::read(
        &runner,
        &format!("synapsor://evidence/{}", p.evidence_bundle_id),
        &owner,
    )
    .await
    .unwrap();
    assert_eq!(evidence["evidence_bundle_id"], json!(p.evidence_bundle_id));
    assert_eq!(evidence["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        runner
            .ledger()
            .raw(
                |c| c.query_row("SELECT count(*) FROM replay_records", [], |r| r
                    .get::<_, i64>(0))
            )
            .await
            .unwrap(),
        0,
        "reading a resource writes nothing"
    );

    let misses = [
        (
            format!("synapsor://proposals/{}", p.proposal_id),
            TrustedContext::new("globex", "agent_a"),
        ),
        (
            format!("synapsor://proposals/{}", p.proposal_id),
            TrustedContext::new("acme", "agent_b"),
        ),
        (
            format!("synapsor://evidence/{}", p.evidence_bundle_id),
            TrustedContext::new("acme", "agent_b"),
        ),
        (
            format!("synapsor://replay/{}", p.proposal_id),
            TrustedContext::new("globex", "agent_a"),
        ),
        (
            "synapsor://proposals/wrp_00000000000000000000".to_string(),
            owner.clone(),
        ),
        ("synapsor://evidence/ev_missing".to_string(), owner.clone()),
        ("synapsor://secrets/x".to_string(), owner.clone()),
        ("synapsor://proposals/".to_string(), owner.clone()),
        ("https://example.invalid/x".to_string(), owner.clone()),
        (
            format!("synapsor://proposals/{}", p.proposal_id),
            TrustedContext::default(),
        ),
    ];
    let mut seen = Vec::new();
    for (uri, who) in misses {
        let e = synapsor_runner::agent::resources::read(&runner, &uri, &who)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "RESOURCE_NOT_FOUND", "{uri}");
        seen.push(e.to_string());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "every miss reads the same: {seen:?}");
}

#[tokio::test]
async fn openai_alias_names_round_trip_to_canonical_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    let runner = host_runner(dir.path()).await;
    let tools = synapsor_runner::agent::tools::tool_list(
        runner.config(),
        synapsor_runner::ToolNaming::OpenAi,
    );
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "billing__inspect_invoice",
            "billing__propose_late_fee_waiver"
        ]
    );
    assert!(tools.iter().all(|t| {
        t.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && t.name.len() <= 64
    }));
    assert_eq!(
        tools[0].meta["synapsor.canonical_tool_name"],
        json!("billing.inspect_invoice")
    );
    assert_eq!(tools[0].meta["synapsor.tool_name_style"], json!("openai"));
    let env = synapsor_runner::agent::call_tool(
        &runner,
        "billing__inspect_invoice",
        json!({"invoice_id": "INV-3001"}),
        &TrustedContext::new("acme", "agent_a"),
    )
    .await;
    assert_eq!(env["ok"], json!(true));
    assert_eq!(
        env["action"],
        json!("billing.inspect_invoice"),
        "results and the ledger use the canonical name"
    );
    let both: Vec<String> = synapsor_runner::agent::tools::tool_list(
        runner.config(),
        synapsor_runner::ToolNaming::Both,
    )
    .into_iter()
    .map(|t| t.name)
    .collect();
    assert_eq!(
        both,
        [
            "billing.inspect_invoice",
            "billing__inspect_invoice",
            "billing.propose_late_fee_waiver",
            "billing__propose_late_fee_waiver"
        ]
    );
    let unknown = synapsor_runner::agent::call_tool(
        &runner,
        "execute_sql",
        json!({"sql": "select 1"}),
        &TrustedContext::new("acme", "agent_a"),
    )
    .await;
    assert_eq!(unknown["error"]["code"], json!("CAPABILITY_NOT_FOUND"));
}
