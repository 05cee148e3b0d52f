//! A test virtualenv (`target/test-venv`) with the Python packages the tests need, created and
//! filled once, on first use, from PyPI.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every package any test needs, installed together: a later install could replace libraries
/// under a server another test is running from the same virtualenv.
const PACKAGES: &[(&str, &str)] = &[
    ("fastapi", "fastapi"),
    ("uvicorn", "uvicorn"),
    ("mcp", "mcp"),
];

pub fn python() -> PathBuf {
    let modules_and_packages = PACKAGES;
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
    // Tests run in parallel processes: one at a time creates or fills the virtualenv. A directory
    // is the lock (creation is atomic); a stale one is taken over after five minutes.
    std::fs::create_dir_all(root.join("target")).unwrap();
    let lock = root.join("target/test-venv.lock");
    let started = std::time::Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        if started.elapsed() > std::time::Duration::from_secs(300) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _unlock = Unlock(lock);
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
