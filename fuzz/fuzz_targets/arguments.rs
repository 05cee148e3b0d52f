//! Model-facing argument validation against the demo's capabilities: any JSON is accepted or
//! refused with an argument code, never a panic or an internal error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static CONFIG: LazyLock<synapsor_runner::LoadedConfig> = LazyLock::new(|| {
    synapsor_runner::config::load_config_str(
        synapsor_runner::demo::DEMO_CONFIG,
        std::path::Path::new("/nonexistent/synapsor.runner.json"),
    )
    .expect("demo config loads")
});

fuzz_target!(|data: &[u8]| {
    let Ok(args) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for cap in &CONFIG.config.capabilities {
        if let Err(e) = synapsor_runner::capability::validate_args(cap, &args) {
            assert!(
                ["INVALID_ARGUMENT", "MODEL_CANNOT_OVERRIDE_BINDING"].contains(&e.safe_code()),
                "{e:?}"
            );
        }
    }
});
