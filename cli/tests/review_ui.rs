//! `synapsor-runner ui` over real HTTP on loopback: the token and CSRF rules, the review API's
//! routes and refusals, role checks on approval, tenant scoping, and the page's headers.

#[path = "support/cli.rs"]
mod cli_support;
use cli_support::{bin, run};
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::path::Path;

struct Ui {
    child: std::process::Child,
    addr: String,
    token: String,
    /// Kept open: the CLI ends quietly when its stdout is closed.
    _stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path, extra: &[&str]) -> Ui {
    let mut child = bin()
        .args(["ui", "--port", "0", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("SYNAPSOR_OPERATOR_ROLES")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("Synapsor Runner local UI: http://")
                .map(String::from)
        })
        .expect("the ui prints its URL");
    let (addr, token) = url.split_once("/?token=").unwrap();
    Ui {
        child,
        addr: addr.to_string(),
        token: token.to_string(),
        _stdout: lines,
    }
}

/// One request; (status, headers, body).
fn http(
    ui: &Ui,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut conn = std::net::TcpStream::connect(&ui.addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        ui.addr,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    // The server may answer (and close) before taking a large body.
    let _ = conn.write_all(body.as_bytes());
    // A refusal can come before the server read the whole body; its close may then reset the
    // connection after the answer arrived: keep what was read.
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if !bytes.is_empty() => {
                let _ = e;
                break;
            }
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
    let resp = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn cookie(ui: &Ui) -> String {
    format!("synapsor_ui_token={}", ui.token)
}

fn get(ui: &Ui, path: &str) -> (u16, Value) {
    let c = cookie(ui);
    let (s, _, b) = http(ui, "GET", path, &[("Cookie", &c)], "");
    (s, json(&b))
}

fn post(ui: &Ui, path: &str, csrf: Option<&str>, body: &str) -> (u16, Value) {
    let c = cookie(ui);
    let mut h = vec![("Cookie", c.as_str()), ("Content-Type", "application/json")];
    if let Some(t) = csrf {
        h.push(("x-synapsor-csrf", t));
    }
    let (s, _, b) = http(ui, "POST", path, &h, body);
    (s, json(&b))
}

const XSS: &str = "<img src=x onerror=alert(1)>";

/// The demo, plus a pending waiver whose reason is an XSS attempt: the folder, config, id.
fn demo_with_a_pending_proposal() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin().arg("demo").current_dir(dir.path()));
    assert_eq!(code, 0, "{err}");
    let config = dir.path().join(".synapsor/demo/synapsor.runner.json");
    let (code, out, err) = run(bin()
        .args([
            "propose",
            "billing.propose_late_fee_waiver",
            "--json",
            "--args",
        ])
        .arg(format!(r#"{{"invoice_id":"INV-3002","reason":"{XSS}"}}"#))
        .arg("--config")
        .arg(&config));
    assert_eq!(code, 0, "{out}{err}");
    let id = json(&out)["proposal"]["id"].as_str().unwrap().to_string();
    (dir, config, id)
}

#[test]
fn the_review_page_guards_every_request_and_every_decision() {
    let (_dir, config, id) = demo_with_a_pending_proposal();

    let ui = start(&config, &["--as", "carol"]);
    // No token, a wrong token: 401, for the page and the API alike.
    for path in ["/", "/api/proposals"] {
        let (s, _, b) = http(&ui, "GET", path, &[], "");
        assert_eq!(s, 401, "{path}: {b}");
    }
    let (s, _, _) = http(
        &ui,
        "GET",
        "/api/proposals",
        &[("x-synapsor-ui-token", "nope")],
        "",
    );
    assert_eq!(s, 401);
    // The page: the token becomes an HttpOnly cookie and never appears in the body.
    let (s, head, body) = http(&ui, "GET", &format!("/?token={}", ui.token), &[], "");
    assert_eq!(s, 200);
    assert!(
        head.contains("set-cookie: synapsor_ui_token=") && head.contains("httponly"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'")
            && head.contains("frame-ancestors 'none'"),
        "{head}"
    );
    assert!(
        head.contains("x-content-type-options: nosniff")
            && head.contains("cache-control: no-store"),
        "{head}"
    );
    assert!(
        !body.contains(&ui.token),
        "the session token is not in the page"
    );
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no other host is referenced"
    );

    let (s, session) = get(&ui, "/api/session");
    assert_eq!(s, 200);
    let csrf = session["csrf"].as_str().unwrap().to_string();
    assert_eq!(session["reviewer"], "carol");
    assert_eq!(session["roles"], serde_json::json!([]));

    let (s, list) = get(&ui, "/api/proposals?state=pending_review");
    assert_eq!(s, 200);
    assert!(
        list["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["proposal_id"] == id.as_str()),
        "{list}"
    );
    let (s, story) = get(&ui, &format!("/api/proposals/{id}"));
    assert_eq!(s, 200, "{story}");
    assert_eq!(
        story["patch"]["waiver_reason"], XSS,
        "returned as data, to be shown as text"
    );
    assert_eq!(story["after"]["late_fee_cents"], 0);
    assert!(story["before"]["late_fee_cents"].as_i64().unwrap() > 0);
    assert!(
        story["evidence"]["evidence_bundle_id"].is_string(),
        "{story}"
    );
    assert_eq!(story["approval"]["required_role"], "billing_lead");
    assert_eq!(story["approval"]["reviewer_may_approve"], false);
    assert_eq!(story["guards"]["affected_row_count_required"], 1);
    assert_eq!(
        story["guards"]["version_advance"], "timestamp",
        "updated_at moves by time"
    );
    let (s, replay) = get(&ui, &format!("/api/replay/{id}"));
    assert_eq!(s, 200, "{replay}");
    assert_eq!(replay["replay"]["proposal"]["proposal_id"], id.as_str());

    let path = format!("/api/proposals/{id}/approve");
    assert_eq!(post(&ui, &path, None, "{}").0, 403, "no CSRF token");
    assert_eq!(
        post(&ui, &path, Some("wrong"), "{}").0,
        403,
        "a wrong CSRF token"
    );
    let (s, refused) = post(&ui, &path, Some(&csrf), "{}");
    assert_eq!(
        (s, refused["code"].as_str()),
        (403, Some("APPROVER_ROLE_MISSING")),
        "{refused}"
    );
    let reject = format!("/api/proposals/{id}/reject");
    let (s, r) = post(&ui, &reject, Some(&csrf), r#"{"reason":"  "}"#);
    assert_eq!((s, r["code"].as_str()), (400, Some("REASON_REQUIRED")));
    let (s, r) = post(&ui, &reject, Some(&csrf), "[1]");
    assert_eq!((s, r["code"].as_str()), (400, Some("INVALID_BODY")));
    let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(70 * 1024));
    assert_eq!(post(&ui, &reject, Some(&csrf), &big).0, 413);
    assert_eq!(get(&ui, "/api/proposals/wrp_nope").0, 404);
    assert_eq!(get(&ui, "/api/nothing").0, 404);
    assert_eq!(get(&ui, "/api/proposals?state=bogus").0, 400);
    drop(ui);

    // Another tenant's reviewer sees nothing of acme's.
    let ui = start(&config, &["--as", "gina", "--tenant", "globex"]);
    let (_, list) = get(&ui, "/api/proposals");
    assert_eq!(list["proposals"], serde_json::json!([]));
    assert_eq!(get(&ui, &format!("/api/proposals/{id}")).0, 404);
    assert_eq!(get(&ui, &format!("/api/replay/{id}")).0, 404);
    drop(ui);

    // With the role: approved, and the ledger names the reviewer.
    let ui = start(&config, &["--as", "lena", "--role", "billing_lead"]);
    let (_, session) = get(&ui, "/api/session");
    let csrf = session["csrf"].as_str().unwrap().to_string();
    let (s, ok) = post(&ui, &path, Some(&csrf), "{}");
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["proposal"]["state"], "approved");
    let (_, story) = get(&ui, &format!("/api/proposals/{id}"));
    let approved_by: Vec<&str> = story["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "proposal_approved")
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(approved_by, ["lena"], "{story}");
    assert!(
        story["applies"]
            .as_str()
            .unwrap()
            .contains("synapsor-runner apply")
    );
}

#[path = "support/node.rs"]
mod node_support;

/// The page in a real browser (Debian's chromium, driven by playwright-core): the proposal is
/// listed, its diff and evidence shown, the XSS reason shown as characters with no dialog, a
/// reject without a reason and an approval without the role refused visibly, an approval with the
/// role done; and the page asks nothing of any other host.
#[test]
fn the_review_page_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (scripts/test installs it: apt-get install chromium)"
    );
    let modules = node_support::node_modules();
    let script = modules.parent().unwrap().join("review_browser.mjs");
    let (_dir, config, id) = demo_with_a_pending_proposal();
    for (args, expect) in [
        (vec!["--as", "carol"], "refused"),
        (vec!["--as", "lena", "--role", "billing_lead"], "approved"),
    ] {
        let ui = start(&config, &args);
        let url = format!("http://{}/?token={}", ui.addr, ui.token);
        let out = std::process::Command::new("node")
            .arg(&script)
            .args([url.as_str(), id.as_str(), XSS, expect])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{expect}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
