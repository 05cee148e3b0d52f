//! `ui`: the local review page on loopback, over the transport-free review API. A per-run
//! session token (given once in the printed URL, then an HttpOnly cookie) guards every request
//! and a CSRF token every decision; the page never applies a change.

use crate::shared::{open_runner, usage};
use crate::{Global, UiArgs};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use synapsor_runner::Approver;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::review::{ReviewApi, ReviewRequest, Reviewer};

use synapsor_runner::review::assets::{
    APP_CSS, APP_JS, INDEX_HTML as INDEX, MAX_BODY_BYTES as MAX_BODY,
};

struct Ui {
    api: ReviewApi,
    reviewer: Reviewer,
    session: String,
    csrf: String,
}

/// The reviewer: `--as`/`--role`, else the operator environment (`SYNAPSOR_OPERATOR`,
/// `SYNAPSOR_OPERATOR_ROLES`), else the OS user with no roles: unlike the terminal, a browser
/// session never asserts a role by itself.
fn reviewer(a: &UiArgs) -> Reviewer {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let id = a
        .as_id
        .clone()
        .or_else(|| env("SYNAPSOR_OPERATOR"))
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "local_reviewer".into());
    let roles: Vec<String> = if a.roles.is_empty() {
        env("SYNAPSOR_OPERATOR_ROLES")
            .map(|r| {
                r.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        a.roles.clone()
    };
    let source = if a.as_id.is_some() || !a.roles.is_empty() {
        "cli_flags"
    } else {
        "operator_env"
    };
    Reviewer {
        approver: Approver {
            id,
            roles,
            role_assertion: format!("local_ui_{source}"),
        },
        tenant: a.tenant.clone(),
    }
}

fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub async fn run(g: &Global, a: UiArgs) -> Result<u8> {
    let ip: IpAddr = a
        .host
        .parse()
        .map_err(|_| usage("--host must be an IP address"))?;
    if !ip.is_loopback() && !a.allow_remote_bind {
        return Err(usage(
            "synapsor-runner ui binds to localhost by default. Use --allow-remote-bind only for an intentional trusted local-network demo.",
        ));
    }
    let runner = open_runner(g).await?;
    let ui = Arc::new(Ui {
        api: ReviewApi::new(runner),
        reviewer: reviewer(&a),
        session: token(),
        csrf: token(),
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, a.port))
        .await
        .map_err(|e| Error::ConfigFile {
            code: "UI_BIND_FAILED",
            message: format!("cannot listen on {}:{}: {e}", a.host, a.port),
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    if !ip.is_loopback() {
        eprintln!(
            "WARNING: the review UI listens on {addr} in plain HTTP: anyone on that network who learns the URL can act as {}.",
            ui.reviewer.approver.id
        );
    }
    let url = format!("http://{addr}/?token={}", ui.session);
    println!("Synapsor Runner local UI: {url}");
    if a.open {
        println!("Opening the local review UI in your browser when a desktop opener is available.");
        for opener in ["xdg-open", "open"] {
            if std::process::Command::new(opener)
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .is_ok()
            {
                break;
            }
        }
    }
    println!(
        "Approval and rejection actions require the per-run local session plus CSRF token. Press Ctrl+C to stop."
    );
    let app = axum::Router::new().fallback(handle).with_state(ui);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Internal(format!("review UI: {e}")))?;
    Ok(0)
}

/// Security headers on every response.
fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in synapsor_runner::review::assets::SECURITY_HEADERS {
        h.insert(*k, HeaderValue::from_static(v));
    }
    r
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    secure(r)
}

fn refuse(status: u16, code: &str, error: &str) -> Response {
    json_response(status, &json!({"ok": false, "code": code, "error": error}))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secure(r)
}

fn ct_eq(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

/// The session token the request presents: header, cookie, or the URL's `token`.
fn presented(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    let header = headers
        .get("x-synapsor-ui-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|c| c.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix("synapsor_ui_token=")
                .map(String::from)
        });
    let query = query
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone());
    header.or(cookie).or(query)
}

/// `application/x-www-form-urlencoded` decoding of one query key or value.
fn decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(ui): State<Arc<Ui>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    let Some(token) = presented(&parts.headers, &query) else {
        return refuse(401, "UI_TOKEN_REQUIRED", "local UI session token required");
    };
    if !ct_eq(&token, &ui.session) {
        return refuse(401, "UI_TOKEN_REQUIRED", "local UI session token required");
    }
    match (&parts.method, path.as_str()) {
        (&Method::GET, "/") => {
            let mut r = asset("text/html; charset=utf-8", INDEX);
            let cookie = format!(
                "synapsor_ui_token={}; HttpOnly; SameSite=Strict; Path=/",
                ui.session
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return r;
        }
        (&Method::GET, "/app.js") => return asset("text/javascript; charset=utf-8", APP_JS),
        (&Method::GET, "/app.css") => return asset("text/css; charset=utf-8", APP_CSS),
        (&Method::GET, "/api/session") => {
            let r = &ui.reviewer;
            return json_response(
                200,
                &json!({"ok": true, "csrf": ui.csrf, "reviewer": r.approver.id, "roles": r.approver.roles, "tenant": r.tenant}),
            );
        }
        _ => {}
    }
    let mut body_value = Value::Null;
    if parts.method == Method::POST {
        let csrf = parts
            .headers
            .get("x-synapsor-csrf")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !ct_eq(csrf, &ui.csrf) {
            return refuse(
                403,
                "CSRF_REQUIRED",
                "CSRF token required for proposal review actions",
            );
        }
        let bytes = match to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return refuse(413, "BODY_TOO_LARGE", "request body too large"),
        };
        if !bytes.is_empty() {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) if v.is_object() => body_value = v,
                _ => {
                    return refuse(400, "INVALID_BODY", "request body must be a JSON object");
                }
            }
        }
    }
    let request = ReviewRequest {
        method: parts.method.to_string(),
        path,
        query,
        body: body_value,
    };
    let answer = ui.api.handle(&request, &ui.reviewer).await;
    let (body, _) = synapsor_runner::ledger::redact_secrets(&answer.body);
    json_response(answer.status, &body)
}
