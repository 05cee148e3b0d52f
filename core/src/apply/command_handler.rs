//! `command_handler`: run the app's command (argv split, no shell), request JSON on stdin,
//! receipt JSON on stdout, killed at the timeout; stderr never reaches receipts.

use super::executor::{BoxFuture, Executor, ExecutorFailure, ExecutorJob, GuardedTx};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A command handler resolved from config and the environment at apply time.
pub struct CommandHandler {
    pub command_env: String,
    pub timeout: Duration,
}

/// Split a command line like a shell would, without running one: whitespace separates,
/// quotes group, backslash escapes the next character.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                in_token = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            (q @ ('"' | '\''), None) => {
                quote = Some(q);
                in_token = true;
            }
            (q, Some(open)) if q == open => quote = None,
            (c, None) if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            (c, _) => {
                cur.push(c);
                in_token = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote in stdio command".into());
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

impl CommandHandler {
    async fn call(&self, job: &ExecutorJob) -> Result<Value, ExecutorFailure> {
        let line = std::env::var(&self.command_env)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ExecutorFailure::safe("HANDLER_ENV_MISSING", true))?;
        let argv = split_command(&line)
            .map_err(|_| ExecutorFailure::safe("HANDLER_COMMAND_INVALID", false))?;
        let Some((program, args)) = argv.split_first() else {
            return Err(ExecutorFailure::safe("HANDLER_COMMAND_INVALID", false));
        };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", false))?;
        let mut input = serde_json::to_vec(job.request.as_ref())
            .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", false))?;
        input.push(b'\n');
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let run = async {
            // A handler that never reads stdin must not block us: write and close concurrently.
            let write = async {
                let _ = stdin.write_all(&input).await;
                drop(stdin);
            };
            let mut out = Vec::new();
            let read = stdout.read_to_end(&mut out);
            let (_, read) = tokio::join!(write, read);
            read.map(|_| out)
        };
        let out = match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(out)) => out,
            Ok(Err(_)) => return Err(ExecutorFailure::safe("HANDLER_REQUEST_FAILED", true)),
            Err(_) => {
                let _ = child.kill().await;
                return Err(ExecutorFailure::safe("HANDLER_TIMEOUT", true));
            }
        };
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(s)) => s,
            _ => {
                let _ = child.kill().await;
                return Err(ExecutorFailure::safe("HANDLER_TIMEOUT", true));
            }
        };
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
