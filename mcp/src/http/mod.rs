//! Streamable HTTP MCP server, hardened (decision 14, security checklist §4.6).
//!
//! Order of checks for every request: health probe → path → header size → Host allowlist →
//! Origin allowlist → bearer token → per-tenant rate limit → method → session → content type,
//! accept, body size, JSON → MCP. Responses to requests are SSE (`event: message`), as the
//! MCP SDK clients expect; notification-only posts get 202.
//!
//! Trusted context never comes from the request body: it is the server's configured context
//! (single token) or the tenant and principal bound to the presented token in a server-side
//! token file whose entries are SHA-256 hashes. A session is bound to the credential that opened
//! it; another credential presenting its id gets "session not found".
//!
//! Layers, each in its own file: `auth` (who is calling), `limits` (request rate, connection
//! caps, header timeout, TLS), `sessions` (who holds which session); this file checks each
//! request in the order above and hands the message to the endpoint.

mod auth;
mod limits;
mod sessions;

pub use auth::{TokenEntry, TokenTable, hash_token};

use crate::endpoint::{McpEndpoint, SUPPORTED_PROTOCOL_VERSIONS, error_response};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use limits::{ConnLimits, RateLimiter, accept_loop, tls};
use serde_json::{Value, json};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use synapsor_runner::TrustedContext;

/// How callers authenticate.
pub enum Auth {
    /// One bearer token; every session runs under `context`.
    Token {
        token: String,
        context: TrustedContext,
    },
    /// Hashed tokens, each bound to a tenant and principal (`--tokens-file`).
    Tokens(TokenTable),
    /// No authentication (loopback only, explicit `--dev-no-auth`).
    DevNoAuth { context: TrustedContext },
}

/// Server settings. [`HttpOptions::new`] gives the hardened defaults.
pub struct HttpOptions {
    pub bind: SocketAddr,
    pub path: String,
    pub auth: Auth,
    /// Extra accepted `Host` values (loopback names for the bound port are always accepted).
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` values; a request with any other `Origin` is refused.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub session_idle: Duration,
    pub max_sessions: usize,
    /// Open sessions one tenant may hold (so one tenant's token cannot take every session).
    pub max_sessions_per_tenant: usize,
    /// Open sessions one credential may hold.
    pub max_sessions_per_credential: usize,
    /// Requests per minute per tenant (burst of the same size); every message of a JSON-RPC
    /// batch counts as one request.
    pub rate_limit_per_minute: u32,
    /// Most messages in one JSON-RPC batch.
    pub max_batch: usize,
    /// Open connections in all; more are closed at accept.
    pub max_connections: usize,
    /// Open connections from one client address.
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's headers (and, with TLS, to finish the handshake).
    pub header_timeout: Duration,
    /// Time a client has to send a request's body.
    pub body_timeout: Duration,
    /// Serve TLS with this certificate chain and private key (PEM files). Needed on a
    /// non-loopback address unless [`plain_http_behind_proxy`](Self::plain_http_behind_proxy).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Allow plain HTTP on a non-loopback address: only behind a TLS-terminating proxy.
    pub plain_http_behind_proxy: bool,
}

impl HttpOptions {
    pub fn new(bind: SocketAddr, auth: Auth) -> Self {
        HttpOptions {
            bind,
            path: "/mcp".into(),
            auth,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            session_idle: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
            max_sessions_per_tenant: 1_000,
            max_sessions_per_credential: 100,
            rate_limit_per_minute: 600,
            max_batch: 32,
            max_connections: 1024,
            max_connections_per_address: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            tls: None,
            plain_http_behind_proxy: false,
        }
    }
}

struct Shared {
    endpoint: McpEndpoint,
    opts: HttpOptions,
    hosts: Vec<String>,
    sessions: sessions::Sessions,
    rates: RateLimiter,
}

/// A running server: its address and a handle to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stop accepting, finish in-flight requests, and drop every session.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Wait until the server stops (Ctrl-C or SIGTERM when started with [`serve`]).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Whether an address is loopback (where `--dev-no-auth` is allowed).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Why `opts` may not be served, if they may not: no-auth off loopback; a non-loopback address
/// without TLS (or the explicit plain-HTTP-behind-a-proxy opt-in) or without a Host allowlist.
pub fn refuse(opts: &HttpOptions) -> Option<String> {
    let loopback = is_loopback(&opts.bind);
    if matches!(opts.auth, Auth::DevNoAuth { .. }) && !loopback {
        return Some("--dev-no-auth is only allowed on a loopback address".into());
    }
    if loopback {
        return None;
    }
    if opts.tls.is_none() && !opts.plain_http_behind_proxy {
        return Some(format!(
            "{} is not a loopback address: serve TLS (--tls-cert and --tls-key) or, behind a TLS-terminating proxy only, pass --plain-http-behind-proxy",
            opts.bind.ip()
        ));
    }
    if opts.allowed_hosts.is_empty() {
        return Some(
            "a non-loopback bind needs the Host names clients use: --allowed-host <name> (loopback names are not accepted there)"
                .into(),
        );
    }
    None
}

/// Bind and start serving. See [`refuse`] for what is refused.
pub async fn start(endpoint: McpEndpoint, opts: HttpOptions) -> std::io::Result<RunningServer> {
    let rate_limit_per_minute = opts.rate_limit_per_minute;
    if let Some(why) = refuse(&opts) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            why,
        ));
    }
    let tls = match &opts.tls {
        None => None,
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
    };
    let listener = tokio::net::TcpListener::bind(opts.bind).await?;
    let addr = listener.local_addr()?;
    let mut hosts = Vec::new();
    if is_loopback(&opts.bind) {
        for name in ["127.0.0.1", "localhost", "[::1]"] {
            hosts.push(name.to_string());
            hosts.push(format!("{name}:{}", addr.port()));
        }
        let ip = match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        hosts.push(format!("{ip}:{}", addr.port()));
        hosts.push(ip);
    }
    for h in &opts.allowed_hosts {
        let h = h.to_ascii_lowercase();
        hosts.push(format!("{h}:{}", addr.port()));
        hosts.push(h);
    }
    let limits = ConnLimits {
        max: opts.max_connections.max(1),
        per_address: opts.max_connections_per_address.max(1),
        header_timeout: opts.header_timeout,
    };
    let shared = Arc::new(Shared {
        endpoint,
        opts,
        hosts,
        sessions: sessions::Sessions::default(),
        rates: RateLimiter::new(rate_limit_per_minute),
    });
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(accept_loop(listener, app, limits, tls, rx));
    Ok(RunningServer {
        addr,
        shutdown: Some(tx),
        task,
    })
}

/// Start and run until Ctrl-C or SIGTERM. `on_listening` gets the bound address.
pub async fn serve(
    endpoint: McpEndpoint,
    opts: HttpOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let server = start(endpoint, opts).await?;
    on_listening(server.addr);
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    server.shutdown().await
}

fn rate_limited(ms: u64) -> Response {
    let mut r = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"ok": false, "error": "rate_limited", "code": "RATE_LIMITED", "retry_after_ms": ms}),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    r
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn plain_error(status: StatusCode, error: &str) -> Response {
    json_response(status, json!({"ok": false, "error": error}))
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    json_response(status, error_response(id, code, message))
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Shared {
    fn session_count(&self) -> usize {
        self.sessions.count()
    }
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if parts.method == Method::GET && path == "/healthz" {
        return json_response(
            StatusCode::OK,
            json!({"ok": true, "transport": "streamable-http", "sessions": s.session_count(), "tools": synapsor_runner::agent::tools::tool_list(s.endpoint.runner().config(), s.endpoint.naming()).len()}),
        );
    }
    if path != s.opts.path {
        return plain_error(StatusCode::NOT_FOUND, "not_found");
    }
    let header_bytes: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > s.opts.max_header_bytes {
        return plain_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
        );
    }
    // DNS-rebinding protection: the Host must be one we serve under.
    let host_ok = header_str(&parts.headers, header::HOST)
        .map(|h| s.hosts.iter().any(|a| a.eq_ignore_ascii_case(h)))
        .unwrap_or(false);
    if !host_ok {
        return plain_error(StatusCode::FORBIDDEN, "forbidden_host");
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .map(|o| s.opts.allowed_origins.iter().any(|a| a == o))
            .unwrap_or(false);
        if !ok {
            return plain_error(StatusCode::FORBIDDEN, "forbidden_origin");
        }
    }
    let Some((identity, context)) = auth::authenticate(&s.opts.auth, &parts.headers) else {
        let mut r = plain_error(StatusCode::UNAUTHORIZED, "unauthorized");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let rate_key = context.tenant_id.clone().unwrap_or_else(|| "-".into());
    if let Err(ms) = s.rates.take(&rate_key, 1) {
        return rate_limited(ms);
    }
    if let Some(v) = header_str(&parts.headers, "mcp-protocol-version")
        && !SUPPORTED_PROTOCOL_VERSIONS.contains(&v)
    {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32000,
            &format!(
                "Bad Request: Unsupported protocol version: {} (supported versions: {})",
                v.chars().take(40).collect::<String>(),
                SUPPORTED_PROTOCOL_VERSIONS.join(", ")
            ),
        );
    }
    let session_id = header_str(&parts.headers, "mcp-session-id").map(str::to_string);
    // Look the session up, bound to this credential; expired and foreign sessions are unknown.
    let session_ctx = match &session_id {
        None => None,
        Some(id) => match s.sessions.resume(id, &identity, s.opts.session_idle) {
            Some(ctx) => Some(ctx),
            None => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    Value::Null,
                    -32000,
                    "MCP session not found.",
                );
            }
        },
    };
    match parts.method {
        Method::POST => {}
        Method::DELETE if session_id.is_some() => {
            if let Some(id) = &session_id {
                s.sessions.close(id);
            }
            return json_response(StatusCode::OK, json!({"ok": true}));
        }
        Method::GET | Method::DELETE if session_id.is_none() => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32000,
                "MCP initialize request is required before using this Streamable HTTP session.",
            );
        }
        _ => {
            // No standalone server-to-client stream: this server never sends requests.
            let mut r = rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                Value::Null,
                -32000,
                "Method not allowed.",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
            return r;
        }
    }
    // Exactly `application/json`, parameters allowed (`; charset=utf-8`); not a prefix match.
    let content_type_ok = header_str(&parts.headers, header::CONTENT_TYPE)
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if !content_type_ok {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Value::Null,
            -32000,
            "Unsupported Media Type: Content-Type must be application/json",
        );
    }
    let accept = header_str(&parts.headers, header::ACCEPT).unwrap_or("");
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            Value::Null,
            -32000,
            "Not Acceptable: Client must accept both application/json and text/event-stream",
        );
    }
    let limit = s.opts.max_body_bytes;
    let too_large = || {
        rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Value::Null,
            -32000,
            &format!("Request body exceeds {limit} bytes."),
        )
    };
    let declared = header_str(&parts.headers, header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if declared > limit {
        return too_large();
    }
    let bytes = match tokio::time::timeout(s.opts.body_timeout, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return too_large(),
        Err(_) => {
            return rpc_error(
                StatusCode::REQUEST_TIMEOUT,
                Value::Null,
                -32000,
                "Request body not received in time.",
            );
        }
    };
    let Ok(message) = serde_json::from_slice::<Value>(&bytes) else {
        return rpc_error(StatusCode::BAD_REQUEST, Value::Null, -32700, "Parse error");
    };
    let items: Vec<&Value> = match &message {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    if items.len() > s.opts.max_batch {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            &format!(
                "Invalid Request: a batch may hold at most {} messages",
                s.opts.max_batch
            ),
        );
    }
    // Every message of a batch is a request against the tenant's rate (one was taken above).
    if items.len() > 1
        && let Err(ms) = s.rates.take(&rate_key, items.len() - 1)
    {
        return rate_limited(ms);
    }
    let is_init = |v: &&Value| v.get("method").and_then(Value::as_str) == Some("initialize");
    // The id to answer a refused batch with: its first request's.
    let first_id = || {
        items
            .iter()
            .find_map(|v| v.get("id").cloned())
            .unwrap_or(Value::Null)
    };
    let (session_id, context) = match (session_id, session_ctx) {
        (Some(id), Some(ctx)) => {
            if items.iter().any(is_init) {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    first_id(),
                    -32600,
                    "Invalid Request: Server already initialized",
                );
            }
            (id, ctx)
        }
        _ => {
            if items.is_empty() || !items.iter().all(is_init) {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    first_id(),
                    -32000,
                    "First Streamable HTTP MCP request must be initialize.",
                );
            }
            let limits = sessions::Caps {
                total: s.opts.max_sessions,
                per_tenant: s.opts.max_sessions_per_tenant,
                per_credential: s.opts.max_sessions_per_credential,
                idle: s.opts.session_idle,
            };
            let id = match s.sessions.open(identity, &context, limits) {
                Ok(id) => id,
                Err(sessions::Refused::Full) => {
                    return rpc_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        Value::Null,
                        -32000,
                        "Too many open MCP sessions; try again later.",
                    );
                }
                Err(sessions::Refused::TenantOrCredential) => {
                    return rpc_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        Value::Null,
                        -32000,
                        "Too many open MCP sessions for this tenant or credential; close some (DELETE) or let them expire.",
                    );
                }
            };
            (id, context)
        }
    };
    let response = s.endpoint.handle(&message, &context).await;
    let mut r = match response {
        None => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        }
        Some(v) => {
            let events: Vec<Value> = match v {
                Value::Array(a) => a,
                v => vec![v],
            };
            let mut body = String::new();
            for e in events {
                body.push_str("event: message\ndata: ");
                body.push_str(&e.to_string());
                body.push_str("\n\n");
            }
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
    };
    if let Ok(v) = HeaderValue::from_str(&session_id) {
        r.headers_mut().insert("mcp-session-id", v);
    }
    r
}
