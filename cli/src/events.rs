//! `events tail [--follow]` and `events webhook`: the ledger's proposal events, printed or
//! pushed to a webhook, optionally followed until Ctrl-C or SIGTERM.

use crate::shared::{open_existing_ledger, print_json, usage};
use crate::{EventArgs, EventsCmd, Global};
use serde_json::{Value, json};
use std::time::Duration;
use synapsor_runner::Error;
use synapsor_runner::error::Result;
use synapsor_runner::ledger::{EventFilter, Ledger};

fn filter(a: &EventArgs, after_id: i64) -> Result<EventFilter> {
    if !(1..=200).contains(&a.limit) {
        return Err(usage("--limit must be a number from 1 to 200"));
    }
    if a.interval_ms < 250 {
        return Err(usage("--interval-ms must be at least 250"));
    }
    Ok(EventFilter {
        after_id,
        proposal: a.proposal.clone(),
        kind: a.kind.clone(),
        actor: a.actor.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        limit: a.limit,
    })
}

/// Resolves when the process is asked to stop (Ctrl-C, or SIGTERM on unix).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Hand every matching event to `each`, then (with `--follow`) the new ones as they come.
async fn for_each_event(
    ledger: &Ledger,
    a: &EventArgs,
    since: i64,
    mut each: impl AsyncFnMut(&Value) -> Result<()>,
) -> Result<usize> {
    let mut f = filter(a, since)?;
    let mut seen = 0;
    let first = ledger.list_events(&f).await?;
    for e in &first {
        each(e).await?;
        f.after_id = f.after_id.max(e["event_id"].as_i64().unwrap_or_default());
    }
    seen += first.len();
    if !a.follow {
        return Ok(seen);
    }
    let stop = stop_requested();
    tokio::pin!(stop);
    f.limit = 200;
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(seen),
            _ = tokio::time::sleep(Duration::from_millis(a.interval_ms)) => {}
        }
        for e in ledger.list_events(&f).await? {
            each(&e).await?;
            f.after_id = f.after_id.max(e["event_id"].as_i64().unwrap_or_default());
            seen += 1;
        }
    }
}

fn print_event(e: &Value, details: bool) {
    println!(
        "{}  {}",
        e["created_at"].as_str().unwrap_or("-"),
        e["kind"].as_str().unwrap_or("-")
    );
    println!("  proposal: {}", e["proposal_id"].as_str().unwrap_or("-"));
    println!("  actor: {}", e["actor"].as_str().unwrap_or("-"));
    if details {
        println!("  payload: {}", e["payload"]);
    }
}

/// The webhook URL as it may be shown: no user, password or query.
fn shown_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

pub async fn run(g: &Global, action: EventsCmd) -> Result<u8> {
    let (ledger, store) = open_existing_ledger(g).await?;
    match action {
        EventsCmd::Tail {
            events,
            details,
            json,
        } => {
            if json && events.follow {
                return Err(usage("events tail --follow prints text; drop --json"));
            }
            if json {
                let list = ledger.list_events(&filter(&events, 0)?).await?;
                print_json(&json!({"events": list}));
                return Ok(0);
            }
            let n = for_each_event(&ledger, &events, 0, async |e| {
                print_event(e, details);
                Ok(())
            })
            .await?;
            if n == 0 && !events.follow {
                println!("No local events found.");
            }
            Ok(0)
        }
        EventsCmd::Webhook {
            events,
            url_env,
            url,
            auth_token_env,
            timeout_ms,
            since_event_id,
            dry_run,
            json,
        } => {
            if url.is_some() {
                return Err(usage(
                    "events webhook reads the URL from an environment variable: pass --url-env NAME (a URL on the command line ends up in shell history and process lists)",
                ));
            }
            if timeout_ms < 250 {
                return Err(usage("--timeout-ms must be at least 250"));
            }
            let var = url_env.ok_or_else(|| usage("events webhook requires --url-env NAME"))?;
            let target = std::env::var(&var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| usage(&format!("{var} is not set: it holds the webhook URL")))?;
            let target = reqwest::Url::parse(&target)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| usage(&format!("{var} is not an http(s) URL")))?;
            let token = match &auth_token_env {
                None => None,
                Some(v) => Some(std::env::var(v).ok().filter(|t| !t.is_empty()).ok_or_else(
                    || {
                        usage(&format!(
                            "{v} is not set: it holds the webhook's bearer token"
                        ))
                    },
                )?),
            };
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(timeout_ms))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("synapsor-runner-events-webhook")
                .build()
                .map_err(|e| Error::Internal(format!("webhook client: {e}")))?;
            let shown = shown_url(&target);
            let store_path = store.display().to_string();
            for_each_event(&ledger, &events, since_event_id, async |e| {
                let body = json!({
                    "schema_version": "synapsor.local-event-webhook.v1",
                    "delivered_at": chrono::Utc::now().to_rfc3339(),
                    "source": {"kind": "local_store", "store_path": store_path},
                    "event": e,
                });
                if dry_run {
                    println!("{}", serde_json::to_string(&body).unwrap_or_default());
                    return Ok(());
                }
                let mut req = client
                    .post(target.clone())
                    .header("content-type", "application/json")
                    .body(body.to_string());
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.map_err(|e| Error::SourceUnavailable {
                    code: "WEBHOOK_UNAVAILABLE",
                    message: format!("webhook {shown} did not answer: {}", e.without_url()),
                })?;
                let status = resp.status();
                if !status.is_success() {
                    let text = resp.text().await.unwrap_or_default();
                    let text: String = text.chars().take(200).collect();
                    return Err(Error::Executor {
                        code: "WEBHOOK_REFUSED",
                        message: if text.is_empty() {
                            format!("webhook returned HTTP {}", status.as_u16())
                        } else {
                            format!("webhook returned HTTP {}: {text}", status.as_u16())
                        },
                    });
                }
                if json {
                    println!("{}", json!({"pushed": e["event_id"], "kind": e["kind"], "proposal_id": e["proposal_id"], "to": shown}));
                } else {
                    println!(
                        "pushed event {} {} for {} to {shown}",
                        e["event_id"],
                        e["kind"].as_str().unwrap_or("-"),
                        e["proposal_id"].as_str().unwrap_or("-")
                    );
                }
                Ok(())
            })
            .await?;
            Ok(0)
        }
    }
}
