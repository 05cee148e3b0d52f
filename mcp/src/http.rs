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

use crate::endpoint::{McpEndpoint, SUPPORTED_PROTOCOL_VERSIONS, error_response};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

/// One entry of a tokens file.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub sha256: [u8; 32],
    pub tenant_id: String,
    pub principal: String,
}

/// Bearer tokens stored as SHA-256 hashes, each bound to a tenant and principal.
///
/// File format: `{"tokens": [{"sha256": "<64 hex>", "tenant_id": "acme", "principal": "agent:claude"}]}`.
/// Plaintext tokens in the file are refused.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    entries: Vec<TokenEntry>,
}

impl TokenTable {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read tokens file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("tokens file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let list = v
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or("expected an object with a \"tokens\" array")?;
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for (i, t) in list.iter().enumerate() {
            if t.get("token").is_some() {
                problems.push(format!("$.tokens[{i}].token: plaintext tokens are not accepted; store \"sha256\" (hex of SHA-256 of the token)"));
                continue;
            }
            let field = |k: &str| {
                t.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
            };
            let hash = field("sha256")
                .and_then(|h| hex::decode(h.trim().to_ascii_lowercase()).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok());
            match (hash, field("tenant_id"), field("principal")) {
                (Some(sha256), Some(tenant), Some(principal)) => entries.push(TokenEntry {
                    sha256,
                    tenant_id: tenant.to_string(),
                    principal: principal.to_string(),
                }),
                (h, tn, p) => {
                    if h.is_none() {
                        problems.push(format!("$.tokens[{i}].sha256: expected 64 hex characters"));
                    }
                    if tn.is_none() {
                        problems.push(format!("$.tokens[{i}].tenant_id: required"));
                    }
                    if p.is_none() {
                        problems.push(format!("$.tokens[{i}].principal: required"));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        if entries.is_empty() {
            return Err("no tokens".into());
        }
        Ok(TokenTable { entries })
    }

    /// The entry for a presented token. Compares every entry in constant time per entry.
    pub fn lookup(&self, presented: &str) -> Option<&TokenEntry> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for e in &self.entries {
            if ct_eq(&e.sha256, &digest) && found.is_none() {
                found = Some(e);
            }
        }
        found
    }
}

/// SHA-256 hex of a token, as stored in a tokens file.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare credentials in constant time (the length of a SHA-256 digest is no secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

struct Session {
    /// Which credential opened the session (hash of the token, or "dev").
    identity: String,
    context: TrustedContext,
    last_seen: Instant,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Shared {
    endpoint: McpEndpoint,
    opts: HttpOptions,
    hosts: Vec<String>,
    sessions: Mutex<HashMap<String, Session>>,
    buckets: Mutex<HashMap<String, Bucket>>,
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
        sessions: Mutex::new(HashMap::new()),
        buckets: Mutex::new(HashMap::new()),
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

/// Connection limits enforced at accept, before a byte is read.
#[derive(Clone, Copy)]
struct ConnLimits {
    max: usize,
    per_address: usize,
    header_timeout: Duration,
}

/// One open connection counted against the limits until it is dropped.
struct ConnSlot {
    open: Arc<Mutex<(usize, HashMap<std::net::IpAddr, usize>)>>,
    ip: std::net::IpAddr,
}

impl ConnSlot {
    fn take(
        open: &Arc<Mutex<(usize, HashMap<std::net::IpAddr, usize>)>>,
        ip: std::net::IpAddr,
        limits: ConnLimits,
    ) -> Option<ConnSlot> {
        let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
        let here = o.1.get(&ip).copied().unwrap_or(0);
        if o.0 >= limits.max || here >= limits.per_address {
            return None;
        }
        o.0 += 1;
        *o.1.entry(ip).or_insert(0) += 1;
        Some(ConnSlot {
            open: open.clone(),
            ip,
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|p| p.into_inner());
        o.0 = o.0.saturating_sub(1);
        if let Some(n) = o.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                o.1.remove(&self.ip);
            }
        }
    }
}

/// Accept connections within the limits and serve each with hyper directly: axum's own
/// `serve` has no header-read timeout or connection caps, which a slow client (one byte a
/// minute, or a thousand half-open sockets) would otherwise exploit.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: ConnLimits,
    tls: Option<tls::Acceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new((0usize, HashMap::new())));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(slot) = ConnSlot::take(&open, peer.ip(), limits) else {
            drop(stream);
            continue;
        };
        let app = app.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, app, limits).await,
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        serve_connection(stream, app, limits).await;
                    }
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    // Finish what is in flight for a moment, then close the rest.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    Ok(())
}

async fn serve_connection<S>(stream: S, app: axum::Router, limits: ConnLimits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::Service;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut app = app.clone();
        async move { app.call(req.map(Body::new)).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

/// TLS termination (rustls with the ring provider), built with the `tls` feature.
#[cfg(feature = "tls")]
mod tls {
    use std::path::Path;
    pub type Acceptor = tokio_rustls::TlsAcceptor;

    pub fn acceptor(cert: &Path, key: &Path) -> std::io::Result<Acceptor> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad("--tls-cert", &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad("--tls-cert", &e))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--tls-key", &e))?;
        // ring, not aws-lc-rs: it builds with a C compiler alone (no cmake); it lacks the
        // post-quantum key exchange, hence the deprecation this allows.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", &e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad("--tls-cert/--tls-key", &e))?;
        Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
    }
}

/// Without the `tls` feature a TLS option is refused at start.
#[cfg(not(feature = "tls"))]
mod tls {
    use std::path::Path;
    #[derive(Clone)]
    pub enum Acceptor {}

    impl Acceptor {
        pub async fn accept(
            &self,
            _stream: tokio::net::TcpStream,
        ) -> std::io::Result<tokio::net::TcpStream> {
            match *self {}
        }
    }

    pub fn acceptor(_cert: &Path, _key: &Path) -> std::io::Result<Acceptor> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this build has no TLS support (build synapsor-runner-mcp with the `tls` feature)",
        ))
    }
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

/// A random (version 4) UUID from the operating system's random source.
fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Shared {
    /// The caller's identity and trusted context, or `None` when the credential is missing or wrong.
    fn authenticate(&self, headers: &HeaderMap) -> Option<(String, TrustedContext)> {
        // The scheme is case-insensitive (RFC 6750 / RFC 9110): `bearer`, `BEARER` work too.
        let presented = header_str(headers, header::AUTHORIZATION)
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty());
        match &self.opts.auth {
            Auth::DevNoAuth { context } => Some(("dev".into(), context.clone())),
            Auth::Token { token, context } => {
                let presented = presented?;
                let a: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
                let b: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                ct_eq(&a, &b).then(|| (hex::encode(a), context.clone()))
            }
            Auth::Tokens(table) => {
                let e = table.lookup(presented?)?;
                Some((
                    hex::encode(e.sha256),
                    TrustedContext::new(e.tenant_id.clone(), e.principal.clone()),
                ))
            }
        }
    }

    /// Take `n` requests from the tenant's bucket; `Err(ms)` = retry after.
    fn rate_limit(&self, key: &str, n: usize) -> Result<(), u64> {
        let n = n as f64;
        let per_min = self.opts.rate_limit_per_minute.max(1) as f64;
        let per_sec = per_min / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: per_min,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * per_sec).min(per_min);
        b.last = now;
        if b.tokens >= n {
            b.tokens -= n;
            Ok(())
        } else {
            Err((((n - b.tokens) / per_sec) * 1000.0).ceil() as u64)
        }
    }

    fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
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
    let Some((identity, context)) = s.authenticate(&parts.headers) else {
        let mut r = plain_error(StatusCode::UNAUTHORIZED, "unauthorized");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let rate_key = context.tenant_id.clone().unwrap_or_else(|| "-".into());
    if let Err(ms) = s.rate_limit(&rate_key, 1) {
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
        Some(id) => {
            let mut sessions = s.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let live = match sessions.get_mut(id) {
                Some(sess) if now.duration_since(sess.last_seen) > s.opts.session_idle => {
                    sessions.remove(id);
                    None
                }
                Some(sess) if sess.identity == identity => {
                    sess.last_seen = now;
                    Some(sess.context.clone())
                }
                _ => None,
            };
            match live {
                Some(ctx) => Some(ctx),
                None => {
                    return rpc_error(
                        StatusCode::NOT_FOUND,
                        Value::Null,
                        -32000,
                        "MCP session not found.",
                    );
                }
            }
        }
    };
    match parts.method {
        Method::POST => {}
        Method::DELETE if session_id.is_some() => {
            if let Some(id) = &session_id {
                s.sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id);
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
        && let Err(ms) = s.rate_limit(&rate_key, items.len() - 1)
    {
        return rate_limited(ms);
    }
    let is_init = |v: &&Value| v.get("method").and_then(Value::as_str) == Some("initialize");
    let (session_id, context) = match (session_id, session_ctx) {
        (Some(id), Some(ctx)) => {
            if items.iter().any(is_init) {
                let id_v = items
                    .iter()
                    .find_map(|v| v.get("id").cloned())
                    .unwrap_or(Value::Null);
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    id_v,
                    -32600,
                    "Invalid Request: Server already initialized",
                );
            }
            (id, ctx)
        }
        _ => {
            if items.is_empty() || !items.iter().all(is_init) {
                let id_v = items
                    .iter()
                    .find_map(|v| v.get("id").cloned())
                    .unwrap_or(Value::Null);
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    id_v,
                    -32000,
                    "First Streamable HTTP MCP request must be initialize.",
                );
            }
            let mut sessions = s.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if sessions.len() >= s.opts.max_sessions {
                let idle = s.opts.session_idle;
                let now = Instant::now();
                sessions.retain(|_, v| now.duration_since(v.last_seen) <= idle);
            }
            if sessions.len() >= s.opts.max_sessions {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Value::Null,
                    -32000,
                    "Too many open MCP sessions; try again later.",
                );
            }
            let (same_tenant, same_credential) = sessions.values().fold((0, 0), |(t, c), sess| {
                (
                    t + usize::from(sess.context.tenant_id == context.tenant_id),
                    c + usize::from(sess.identity == identity),
                )
            });
            if same_tenant >= s.opts.max_sessions_per_tenant
                || same_credential >= s.opts.max_sessions_per_credential
            {
                return rpc_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    Value::Null,
                    -32000,
                    "Too many open MCP sessions for this tenant or credential; close some (DELETE) or let them expire.",
                );
            }
            let id = new_session_id();
            sessions.insert(
                id.clone(),
                Session {
                    identity,
                    context: context.clone(),
                    last_seen: Instant::now(),
                },
            );
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
