//! A test virtualenv (`target/test-venv`) with the Python packages a test needs, created and
//! filled on first use from PyPI.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn python(modules_and_packages: &[(&str, &str)]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let venv = root.join("target/test-venv");
    let py = venv.join("bin/python");
    let ok = |c: &mut Command| {
        assert!(
            c.status().map(|s| s.success()).unwrap_or(false),
            "{c:?} failed"
        )
    };
    if !py.exists() {
        ok(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    }
    let missing: Vec<&str> = modules_and_packages
        .iter()
        .filter(|(module, _)| {
            !Command::new(&py)
                .args(["-c", &format!("import {module}")])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .map(|(_, package)| *package)
        .collect();
    if !missing.is_empty() {
        ok(Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(&missing));
    }
    py
}
