//! Config load and validation: any bytes give a config or a list of problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/nonexistent/synapsor.runner.json");
    match synapsor_runner::config::load_config_str(text, path) {
        Ok(loaded) => {
            // A config that validated maps to tools without panicking.
            let _ = synapsor_runner::agent::tools::tool_list(
                &loaded.config,
                synapsor_runner::ToolNaming::Both,
            );
        }
        Err(e) => {
            let _ = (e.code(), e.safe_code(), e.to_string());
        }
    }
});
