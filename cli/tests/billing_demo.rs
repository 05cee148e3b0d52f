//! The billing app-owned writeback demo (scripts/run-demo.sh) against local PostgreSQL, with our
//! handler and, for compatibility, with the reference's own handler (fixtures/, copied from the seed).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run_demo(handler: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/run-demo.sh"))
        .env("SYNAPSOR_RUNNER_BIN", env!("CARGO_BIN_EXE_synapsor-runner"));
    if let Some(h) = handler {
        cmd.env("HANDLER_SCRIPT", h);
    }
    let out = cmd.output().expect("bash runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn billing_app_handler_demo_passes_with_our_handler() {
    let (ok, out) = run_demo(None);
    assert!(ok, "{out}");
    assert!(
        out.contains("App-owned billing handler demo passed."),
        "{out}"
    );
}

/// The reference's own handler (copied from the seed into fixtures/, so a clone needs nothing
/// beside it) against our runner: the job and receipt protocol stay compatible.
#[test]
fn billing_demo_is_compatible_with_the_reference_handler() {
    let handler =
        root().join("fixtures/examples/mcp-postgres-billing-app-handler/reference-app-handler.mjs");
    let text = std::fs::read_to_string(&handler).expect("the reference handler fixture");
    assert!(
        text.starts_with("#!/usr/bin/env node") && text.contains("applyAccountCredit"),
        "{} is the reference's app handler",
        handler.display()
    );
    // run-demo.sh links the example's node_modules beside a handler it did not ship, so run a
    // copy outside the checkout.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app-handler.mjs");
    std::fs::write(&path, text).unwrap();
    let (ok, out) = run_demo(Some(&path));
    assert!(ok, "{out}");
    assert!(
        out.contains("App-owned billing handler demo passed."),
        "{out}"
    );
}
