//! `audit` against a live server: rmcp's client does the MCP handshake and `tools/list` over a
//! child's stdio or Streamable HTTP. Only two things are ours: every message read is bounded
//! (a hostile server answering gigabytes is refused with a clear error instead of filling memory
//! or being skipped in silence), and failures are reported as an operator can act on them.
//! Audit never calls a business tool.

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use synapsor_runner::error::{Error, Result};
use tokio::io::{AsyncRead, ReadBuf};

/// The largest message `audit` reads from a live server (one stdio line, one HTTP body or SSE
/// event).
pub const AUDIT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

fn audit_error(message: String) -> Error {
    Error::ConfigFile {
        code: "AUDIT_TARGET_FAILED",
        message,
    }
}

/// The `tools/list` result as the audit reads it: a JSON-RPC response, so findings name
/// `$.result.tools[i]` whichever transport it came over.
fn as_response(tools: Vec<rmcp::model::Tool>) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": tools}})
}

/// A child's stdout that fails once a line grows past the cap. rmcp's own line limit drops an
/// oversized line and keeps waiting, which the auditor would only see as a timeout; failing the
/// read ends the session at once, and the flag says why.
struct CappedLines<R> {
    inner: R,
    line: usize,
    cap: usize,
    exceeded: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for CappedLines<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            for byte in &buf.filled()[before..] {
                this.line = if *byte == b'\n' { 0 } else { this.line + 1 };
                if this.line > this.cap {
                    this.exceeded.store(true, Ordering::Relaxed);
                    return Poll::Ready(Err(std::io::Error::other("message over the size cap")));
                }
            }
        }
        poll
    }
}

/// initialize → initialized → tools/list over a child's stdio.
pub async fn fetch_stdio_tools(command: &str, timeout: Duration) -> Result<Value> {
    use tokio::io::AsyncReadExt;
    let parts = synapsor_runner::apply::command_handler::split_command(command)
        .map_err(|e| audit_error(format!("mcp audit stdio target: {e}")))?;
    let (prog, rest) = parts
        .split_first()
        .ok_or_else(|| audit_error("mcp audit stdio target requires a command".into()))?;
    let mut child = tokio::process::Command::new(prog)
        .args(rest)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| audit_error(format!("mcp audit cannot start {prog}: {e}")))?;
    let exceeded = Arc::new(AtomicBool::new(false));
    let stdout = CappedLines {
        inner: child.stdout.take().expect("piped"),
        line: 0,
        cap: AUDIT_MAX_MESSAGE_BYTES,
        exceeded: exceeded.clone(),
    };
    let transport = AsyncRwTransport::new_client(stdout, child.stdin.take().expect("piped"))
        .with_max_line_length(AUDIT_MAX_MESSAGE_BYTES + 1);
    let mut stderr = child.stderr.take().expect("piped");
    let exchange = async {
        let client = ().serve(transport).await.map_err(|e| e.to_string())?;
        let tools = client.list_all_tools().await.map_err(|e| e.to_string());
        let _ = client.cancel().await;
        tools
    };
    let result = tokio::time::timeout(timeout, exchange).await;
    let _ = child.start_kill();
    if exceeded.load(Ordering::Relaxed) {
        return Err(audit_error(format!(
            "mcp audit stdio: the server sent a message larger than {AUDIT_MAX_MESSAGE_BYTES} bytes; refused"
        )));
    }
    match result {
        Err(_) => Err(audit_error(format!(
            "mcp audit stdio tools/list timed out after {}ms",
            timeout.as_millis()
        ))),
        Ok(Ok(tools)) => Ok(as_response(tools)),
        Ok(Err(why)) => {
            let mut err = String::new();
            let _ =
                tokio::time::timeout(Duration::from_millis(500), stderr.read_to_string(&mut err))
                    .await;
            let err: String = err.trim().chars().take(240).collect();
            Err(audit_error(format!(
                "mcp audit stdio tools/list failed ({why}){}",
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {err}")
                }
            )))
        }
    }
}

/// What went wrong over HTTP, in the words an operator needs: the status for a refused
/// credential, the cap for an oversized answer, rmcp's own text otherwise.
fn http_failure(step: &str, error: &(dyn std::error::Error + 'static)) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(http) = e.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            let message = match http {
                StreamableHttpError::AuthRequired(_) => {
                    "failed with HTTP 401: the server wants a credential (--bearer-env)".into()
                }
                StreamableHttpError::InsufficientScope(_) => {
                    "failed with HTTP 403: the credential is refused".into()
                }
                StreamableHttpError::ResponseBodyTooLarge { .. } => format!(
                    "the server sent more than {AUDIT_MAX_MESSAGE_BYTES} bytes; refused (larger than the cap)"
                ),
                StreamableHttpError::Client(c) => match c.status() {
                    Some(status) => format!("failed with HTTP {}", status.as_u16()),
                    None => format!("failed: {c}"),
                },
                other => format!("failed: {other}"),
            };
            return audit_error(format!("mcp audit remote {step} {message}"));
        }
        cause =
            if let Some(rmcp::service::ClientInitializeError::TransportError { error, .. }) =
                e.downcast_ref()
            {
                Some(error)
            } else if let Some(dynamic) = e.downcast_ref::<rmcp::transport::DynamicTransportError>()
            {
                Some(dynamic.error.as_ref())
            } else {
                e.source()
            };
    }
    audit_error(format!("mcp audit remote {step} failed: {error}"))
}

/// initialize → initialized → tools/list over Streamable HTTP; the session ends with the client.
pub async fn fetch_http_tools(url: &str, bearer: Option<&str>, timeout: Duration) -> Result<Value> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    config.max_json_response_size = AUDIT_MAX_MESSAGE_BYTES;
    config.max_sse_event_size = AUDIT_MAX_MESSAGE_BYTES;
    if let Some(b) = bearer {
        config = config.auth_header(b.to_string());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    let exchange = async {
        let client = ().serve(transport).await.map_err(|e| http_failure("initialize", &e))?;
        let tools = client
            .list_all_tools()
            .await
            .map_err(|e| http_failure("tools/list", &e));
        let _ = client.cancel().await;
        tools
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(audit_error(format!(
            "mcp audit remote tools/list timed out after {}ms",
            timeout.as_millis()
        ))),
        Ok(result) => result.map(as_response),
    }
}
