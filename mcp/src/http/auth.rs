//! Who is calling: bearer tokens (one configured token, or a tokens file of SHA-256 hashes
//! each bound to a tenant and principal), compared in constant time.

use super::{Auth, header_str};
use axum::http::{HeaderMap, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use synapsor_runner::TrustedContext;

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

/// The caller's identity and trusted context, or `None` when the credential is missing or wrong.
pub(super) fn authenticate(auth: &Auth, headers: &HeaderMap) -> Option<(String, TrustedContext)> {
    // The scheme is case-insensitive (RFC 6750 / RFC 9110): `bearer`, `BEARER` work too.
    let presented = header_str(headers, header::AUTHORIZATION)
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty());
    match auth {
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
