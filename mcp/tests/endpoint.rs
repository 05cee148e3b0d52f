//! `McpEndpoint::handle`: the embedding hook, JSON in and out under a caller-supplied context.

use serde_json::{Value, json};
use synapsor_runner::{OpenOptions, Runner, ToolNaming, TrustedContext};
use synapsor_runner_mcp::McpEndpoint;

async fn endpoint(dir: &std::path::Path, naming: ToolNaming) -> McpEndpoint {
    synapsor_runner::demo::create_demo(dir).unwrap();
    let config = dir.join("synapsor.runner.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["trusted_context"] = json!({"provider": "host"});
    std::fs::write(&config, c.to_string()).unwrap();
    let runner = Runner::open(OpenOptions::config_path(&config).ledger(dir.join("l.db")))
        .await
        .unwrap();
    McpEndpoint::new(runner, naming)
}

fn call(id: u64, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

#[tokio::test]
async fn handle_speaks_json_rpc_under_the_callers_context() {
    let dir = tempfile::tempdir().unwrap();
    let ep = endpoint(dir.path(), ToolNaming::OpenAi).await;
    let acme = TrustedContext::new("acme", "agent:a");
    let globex = TrustedContext::new("globex", "agent:g");

    let init = ep
        .handle(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-03-26"}}), &acme)
        .await
        .unwrap();
    assert_eq!(init["result"]["protocolVersion"], json!("2025-03-26"));
    let init = ep
        .handle(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "1999-01-01"}}), &acme)
        .await
        .unwrap();
    assert_eq!(init["result"]["protocolVersion"], json!("2025-11-25"));
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        json!("synapsor-runner")
    );

    // Notifications get no response.
    assert!(
        ep.handle(
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            &acme
        )
        .await
        .is_none()
    );

    let list = ep
        .handle(
            &json!({"jsonrpc": "2.0", "id": "t", "method": "tools/list"}),
            &acme,
        )
        .await
        .unwrap();
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "billing__inspect_invoice",
            "billing__propose_late_fee_waiver"
        ]
    );
    assert_eq!(list["id"], json!("t"));

    // Alias in, canonical out; tenant from the caller's context only.
    let r = ep
        .handle(
            &call(
                2,
                "billing__inspect_invoice",
                json!({"invoice_id": "INV-3001"}),
            ),
            &acme,
        )
        .await
        .unwrap();
    assert_eq!(r["result"]["isError"], json!(false));
    assert_eq!(
        r["result"]["structuredContent"]["action"],
        json!("billing.inspect_invoice")
    );
    assert_eq!(
        r["result"]["structuredContent"]["_meta"]["tenant_id"],
        json!("acme")
    );
    let text: Value =
        serde_json::from_str(r["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, r["result"]["structuredContent"]);
    let r = ep
        .handle(
            &call(
                3,
                "billing__inspect_invoice",
                json!({"invoice_id": "INV-3001"}),
            ),
            &globex,
        )
        .await
        .unwrap();
    assert_eq!(
        r["result"]["isError"],
        json!(true),
        "a refusal is flagged isError and still carries the v2 envelope"
    );
    assert_eq!(r["result"]["structuredContent"]["ok"], json!(false));
    assert_eq!(
        r["result"]["structuredContent"]["error"]["code"],
        json!("NOT_FOUND_IN_TENANT")
    );
    let r = ep
        .handle(
            &call(
                4,
                "billing__inspect_invoice",
                json!({"invoice_id": "INV-3001", "tenant_id": "globex"}),
            ),
            &acme,
        )
        .await
        .unwrap();
    assert_eq!(
        r["result"]["structuredContent"]["error"]["code"],
        json!("MODEL_CANNOT_OVERRIDE_BINDING")
    );
    assert_eq!(
        r["result"]["structuredContent"]["error"]["field"],
        json!("tenant_id"),
        "the refusal names the argument"
    );
    assert!(
        !r["result"]["structuredContent"]
            .to_string()
            .contains("globex"),
        "and never echoes its value"
    );

    // A proposal handle read by its tenant, then by another: every miss is RESOURCE_NOT_FOUND.
    let p = ep
        .handle(
            &call(
                5,
                "billing__propose_late_fee_waiver",
                json!({"invoice_id": "INV-3001", "reason": "r"}),
            ),
            &acme,
        )
        .await
        .unwrap();
    let pid = p["result"]["structuredContent"]["proposal"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let read = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "resources/read", "params": {"uri": format!("synapsor://proposals/{pid}")}});
    let own = ep.handle(&read(6), &acme).await.unwrap();
    assert_eq!(
        own["result"]["contents"][0]["mimeType"],
        json!("application/json")
    );
    let leaked = ep.handle(&read(7), &globex).await.unwrap();
    assert_eq!(leaked["error"]["data"]["code"], json!("RESOURCE_NOT_FOUND"));
    let other_principal = ep
        .handle(&read(8), &TrustedContext::new("acme", "agent:other"))
        .await
        .unwrap();
    assert_eq!(other_principal["error"], leaked["error"]);

    // Batches, unknown methods, bad messages.
    let batch = ep
        .handle(&json!([{"jsonrpc": "2.0", "id": 10, "method": "ping"}, {"jsonrpc": "2.0", "method": "notifications/x"}, {"jsonrpc": "2.0", "id": 11, "method": "nope"}]), &acme)
        .await
        .unwrap();
    assert_eq!(batch.as_array().unwrap().len(), 2);
    assert_eq!(batch[0]["result"], json!({}));
    assert_eq!(batch[1]["error"]["code"], json!(-32601));
    assert_eq!(
        ep.handle(&json!([]), &acme).await.unwrap()["error"]["code"],
        json!(-32600)
    );
    assert_eq!(
        ep.handle(&json!(42), &acme).await.unwrap()["error"]["code"],
        json!(-32600)
    );
    let missing = ep
        .handle(
            &json!({"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": {}}),
            &acme,
        )
        .await
        .unwrap();
    assert_eq!(missing["error"]["code"], json!(-32602));
    let parse = ep.handle_str("{not json", &acme).await.unwrap();
    assert!(parse.contains("-32700"));
    // An unknown tool is a JSON-RPC error, not a tool result.
    let unknown = ep
        .handle(&call(13, "billing.drop_everything", json!({})), &acme)
        .await
        .unwrap();
    assert_eq!(unknown["error"]["code"], json!(-32602));
    assert!(unknown.get("result").is_none());
    // resources/list: the caller's own proposals only.
    let list = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "resources/list"});
    let mine = ep.handle(&list(14), &acme).await.unwrap();
    let uris: Vec<&str> = mine["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, [format!("synapsor://proposals/{pid}")]);
    let theirs = ep.handle(&list(15), &globex).await.unwrap();
    assert_eq!(theirs["result"]["resources"], json!([]));
    // Every transport negotiates the same versions: nothing newer than 2025-11-25.
    let init = ep
        .handle(
            &json!({"jsonrpc": "2.0", "id": 16, "method": "initialize", "params": {"protocolVersion": "2026-07-28", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
            &acme,
        )
        .await
        .unwrap();
    assert_eq!(init["result"]["protocolVersion"], json!("2025-11-25"));
}
