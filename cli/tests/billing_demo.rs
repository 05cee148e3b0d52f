//! The billing app-owned writeback demo (scripts/run-demo.sh) against local PostgreSQL, with our
//! handler and, for compatibility, with the reference's own handler extracted from shared/seed.

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

/// The seed file is a rendered diff: `@@ …` opens a file, then each source line appears as its
/// line number followed by `+ <text>` (or a bare `+` for an empty line).
fn extract_seed_handler(seed: &str) -> Option<String> {
    let lines: Vec<&str> = seed.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with("@@ -0,0 +1,") {
            continue;
        }
        let mut code = Vec::new();
        let mut j = i + 1;
        while j + 1 < lines.len()
            && lines[j].trim().parse::<u32>().is_ok()
            && lines[j + 1].starts_with('+')
        {
            let text = lines[j + 1];
            code.push(
                text.strip_prefix("+ ")
                    .unwrap_or(text.strip_prefix('+').unwrap_or(text)),
            );
            j += 2;
        }
        let text = code.join("\n");
        if text.starts_with("#!/usr/bin/env node") && text.contains("applyAccountCredit") {
            return Some(text + "\n");
        }
    }
    None
}

#[test]
fn billing_demo_is_compatible_with_the_reference_handler() {
    let seed_dir = root().parent().unwrap().join("shared/seed");
    let seed = std::fs::read_dir(&seed_dir)
        .unwrap_or_else(|e| {
            panic!(
                "the compatibility test needs the reference seed in {}: {e}",
                seed_dir.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .find(|text| text.contains("applyAccountCredit"))
        .expect("a seed file with the reference app handler");
    let handler = extract_seed_handler(&seed).expect("the reference app-handler.mjs in the seed");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app-handler.mjs");
    std::fs::write(&path, handler).unwrap();
    let (ok, out) = run_demo(Some(&path));
    assert!(ok, "{out}");
    assert!(
        out.contains("App-owned billing handler demo passed."),
        "{out}"
    );
}
