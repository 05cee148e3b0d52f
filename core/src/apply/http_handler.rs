//! `http_handler`: POST the documented request to the app's URL, bearer auth, optional
//! HMAC-SHA256 signature over the exact body, timeout, no automatic retries.

use crate::write::executor::{BoxFuture, Executor, ExecutorFailure, ExecutorJob, GuardedTx};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;

/// An HTTP handler resolved from config and the environment at apply time.
pub struct HttpHandler {
    /// Values the host handed over for variables (`OpenOptions::env`), looked up first.
    pub given: std::sync::Arc<std::collections::HashMap<String, String>>,
    pub url_env: String,
    pub method: String,
    pub token_env: Option<String>,
    pub signing_secret_env: Option<String>,
    pub timeout: Duration,
    /// Largest answer body read; more is `HANDLER_RESPONSE_TOO_LARGE` and the rest is never read.
    pub max_response_bytes: usize,
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A handler variable: the value the host handed over, else the process environment.
pub(crate) fn env(
    given: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<String, ExecutorFailure> {
    given
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            // The variable's name (never its value) goes to the local operator.
            eprintln!("synapsor-runner: handler environment variable {name} is not set");
            ExecutorFailure::safe("HANDLER_ENV_MISSING", true)
        })
}

impl HttpHandler {
    async fn call(&self, job: &ExecutorJob) -> Result<Value, ExecutorFailure> {
        let env = |name: &str| env(&self.given, name);
        let url = env(&self.url_env)?;
        let token = self.token_env.as_deref().map(env).transpose()?;
        let secret = self.signing_secret_env.as_deref().map(env).transpose()?;
        let body = serde_json::to_vec(job.request.as_ref())
            .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", false))?;
        let issued_at = job.request["issued_at"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| ExecutorFailure::safe("HANDLER_REQUEST_FAILED", false))?;
        let method =
            reqwest::Method::from_bytes(self.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut req = client
            .request(method, &url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("idempotency-key", &job.idempotency_key)
            .header("x-synapsor-issued-at", &issued_at)
            .header("x-synapsor-proposal-id", &job.proposal_id);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(s) = secret {
            req = req.header("x-synapsor-signature", sign(s.as_bytes(), &body));
        }
        let resp = req.body(body).send().await.map_err(|e| {
            // Neither the URL nor the token ever leaves this function: only a safe code does.
            if e.is_timeout() {
                ExecutorFailure::safe("HANDLER_TIMEOUT", true)
            } else {
                ExecutorFailure::safe("HANDLER_REQUEST_FAILED", true)
            }
        })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let transient = matches!(status, 408 | 429 | 502 | 503 | 504);
            return Err(ExecutorFailure::safe(
                format!("HANDLER_HTTP_{status}"),
                transient,
            ));
        }
        let too_large = || ExecutorFailure::safe("HANDLER_RESPONSE_TOO_LARGE", false);
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let mut resp = resp;
        let mut bytes = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    ExecutorFailure::safe("HANDLER_TIMEOUT", true)
                } else {
                    ExecutorFailure::safe("HANDLER_REQUEST_FAILED", true)
                }
            })?;
            let Some(chunk) = chunk else { break };
            if bytes.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| ExecutorFailure::safe("HANDLER_INVALID_JSON", false))
    }
}

impl Executor for HttpHandler {
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
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
