//! `command_handler`: run the app's command (argv split, no shell), request JSON on stdin,
//! receipt JSON on stdout (at most `max_response_bytes`), stderr never reaches receipts. The
//! command runs in a process group of its own; the apply waits for the command to exit (not for
//! its stdout to close), then the whole group is killed, so nothing it started outlives the
//! apply and a grandchild holding stdout cannot hold the apply up. At the timeout the group is
//! killed too.

use crate::write::executor::{BoxFuture, Executor, ExecutorFailure, ExecutorJob, GuardedTx};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A command handler resolved from config and the environment at apply time.
pub struct CommandHandler {
    /// Values the host handed over for variables (`OpenOptions::env`), looked up first.
    pub given: std::sync::Arc<std::collections::HashMap<String, String>>,
    pub command_env: String,
    pub timeout: Duration,
    /// Largest stdout read; more is `HANDLER_RESPONSE_TOO_LARGE`.
    pub max_response_bytes: usize,
}

/// How long stdout may keep the apply waiting once the command itself has exited (what it wrote
/// before exiting is already in the pipe; only a descendant that left the group can hold it).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// Kill the command's whole process group (the command and everything it started); `group` is
/// the command's pid, taken at spawn (a reaped child no longer reports it).
fn kill_group(group: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = group {
        // SAFETY: kill(2) with a negative pid signals the process group we created for the
        // command (`process_group(0)`); it touches no memory.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = group;
}

/// Split a command line as a POSIX shell would, without running one: whitespace separates,
/// quotes group, backslash escapes. Nothing is expanded (`;`, `$`, globs stay literal).
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    shell_words::split(line).map_err(|_| "unterminated quote in command".to_string())
}

impl CommandHandler {
    async fn call(&self, job: &ExecutorJob) -> Result<Value, ExecutorFailure> {
        let line = super::http_handler::env(&self.given, &self.command_env)?;
        let argv = split_command(&line)
            .map_err(|_| ExecutorFailure::safe("HANDLER_COMMAND_INVALID", false))?;
        let Some((program, args)) = argv.split_first() else {
            return Err(ExecutorFailure::safe("HANDLER_COMMAND_INVALID", false));
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .spawn()
            .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", false))?;
        let group = child.id();
        let mut input = serde_json::to_vec(job.request.as_ref())
            .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", false))?;
        input.push(b'\n');
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let cap = self.max_response_bytes;
        // A handler that never reads stdin must not block us: write and close concurrently.
        let write = async move {
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        // Read at most `cap + 1` bytes: one more than allowed is enough to know it is too much.
        let read = async move {
            let mut out = Vec::new();
            let mut limited = stdout.take(cap as u64 + 1);
            limited.read_to_end(&mut out).await.map(|_| out)
        };
        let mut read = Box::pin(read);
        let mut waiting = Box::pin(async move {
            let (_, status) = tokio::join!(write, child.wait());
            status
        });
        // Read while waiting (a full pipe would stall the command); stop at the cap.
        let run = async {
            let early = tokio::select! {
                status = &mut waiting => Ok(status),
                out = &mut read => Err(out),
            };
            match early {
                Ok(status) => (Some(status), None),
                // Over the cap: no need to wait for the rest.
                Err(Ok(out)) if out.len() > cap => (None, Some(Ok(out))),
                Err(out) => (Some(waiting.await), Some(out)),
            }
        };
        let (status, early_out) = match tokio::time::timeout(self.timeout, run).await {
            Ok(done) => done,
            Err(_) => {
                kill_group(group);
                return Err(ExecutorFailure::safe("HANDLER_TIMEOUT", true));
            }
        };
        // The command has exited: end whatever it left running, then take what it wrote.
        kill_group(group);
        if early_out
            .as_ref()
            .is_some_and(|o| o.as_ref().is_ok_and(|o| o.len() > cap))
        {
            return Err(ExecutorFailure::safe("HANDLER_RESPONSE_TOO_LARGE", false));
        }
        let status = status
            .expect("waited unless over the cap")
            .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", true))?;
        let out = match early_out {
            Some(out) => out,
            None => match tokio::time::timeout(DRAIN_AFTER_EXIT, &mut read).await {
                Ok(out) => out,
                Err(_) => return Err(ExecutorFailure::safe("HANDLER_INVALID_JSON", false)),
            },
        }
        .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", true))?;
        if out.len() > cap {
            return Err(ExecutorFailure::safe("HANDLER_RESPONSE_TOO_LARGE", false));
        }
        if !status.success() {
            let code = status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "UNKNOWN".into());
            return Err(ExecutorFailure::safe(format!("HANDLER_EXIT_{code}"), false));
        }
        if out.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(&out)
            .map_err(|_| ExecutorFailure::safe("HANDLER_INVALID_JSON", false))
    }
}

impl Executor for CommandHandler {
    fn execute<'a>(
        &'a self,
        job: &'a ExecutorJob,
        _tx: Option<GuardedTx>,
    ) -> BoxFuture<'a, Result<Value, ExecutorFailure>> {
        Box::pin(self.call(job))
    }
}

#[cfg(test)]
mod tests {
    use super::split_command;

    #[test]
    fn splits_like_a_shell_without_one() {
        assert_eq!(
            split_command(r#"node ./h.mjs --flag "a b" 'c d' e\ f"#).unwrap(),
            ["node", "./h.mjs", "--flag", "a b", "c d", "e f"]
        );
        assert_eq!(split_command("  a   b ").unwrap(), ["a", "b"]);
        assert_eq!(split_command(r#"a "" b"#).unwrap(), ["a", "", "b"]);
        assert!(split_command(r#"a "b"#).is_err());
        assert_eq!(
            split_command("x; rm -rf /").unwrap(),
            ["x;", "rm", "-rf", "/"],
            "no shell: metacharacters are plain text"
        );
    }
}
