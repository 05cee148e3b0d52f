//! Running the `synapsor-runner` binary from tests, with the operator's environment cleared.

use std::process::{Command, Output};

/// The binary, without the variables an operator's shell may carry into the tests.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
    c.env_remove("SYNAPSOR_LOCAL_STORE")
        .env_remove("SYNAPSOR_OPERATOR")
        .env_remove("SYNAPSOR_OPERATOR_ROLES");
    c
}

/// Exit code, stdout and stderr of a finished command.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}
