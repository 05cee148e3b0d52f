//! The MCP JSON-RPC endpoint over the embedded SQLite demo: any message (or batch) gets a
//! well-formed answer or none (notifications), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use synapsor_runner::{OpenOptions, Runner, ToolNaming, TrustedContext};
use synapsor_runner_mcp::McpEndpoint as Endpoint;

struct Fixture {
    rt: tokio::runtime::Runtime,
    endpoint: Endpoint,
    _dir: std::path::PathBuf,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("synapsor-fuzz-{}", std::process::id()));
    synapsor_runner::demo::create_demo(&dir).expect("demo files");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runner = rt
        .block_on(Runner::open(
            OpenOptions::config_path(dir.join("synapsor.runner.json")).ledger(":memory:"),
        ))
        .expect("runner opens");
    Fixture {
        rt,
        endpoint: Endpoint::new(runner, ToolNaming::Both),
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let f = &*FIXTURE;
    let ctx = TrustedContext::from_config();
    if let Some(answer) = f.rt.block_on(f.endpoint.handle(&message, &ctx)) {
        assert!(answer.is_object() || answer.is_array(), "{answer}");
    }
});
