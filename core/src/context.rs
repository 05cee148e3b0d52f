//! Trusted context: tenant and principal come from the host or the environment, never the model.
//! The types live here; the rules that resolve them are in [`crate::policy::context`].

use serde::Serialize;

/// What the caller (host application, CLI, server) asserts about who is calling.
///
/// With the `host` provider these values are the binding. With `environment` or `static_dev`
/// the config decides; a caller value that disagrees is refused rather than silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedContext {
    /// The tenant the host application vouches for (provider `host`).
    pub tenant_id: Option<String>,
    /// The acting principal (user, service or agent identity) the host vouches for.
    pub principal: Option<String>,
}

impl TrustedContext {
    /// Tenant and principal supplied by the host application for this call.
    pub fn new(tenant_id: impl Into<String>, principal: impl Into<String>) -> Self {
        Self {
            tenant_id: Some(tenant_id.into()),
            principal: Some(principal.into()),
        }
    }
    /// No caller assertion: the config's provider decides.
    pub fn from_config() -> Self {
        Self::default()
    }
}

/// The binding a call runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedContext {
    /// The tenant every read and write of the call is scoped to.
    pub tenant_id: String,
    /// Who the call acts for.
    pub principal: String,
    /// Where the binding came from: `host` (the embedding app vouched), `environment`,
    /// `static_dev` or `asserted_local_cli`.
    pub provenance: String,
}

impl ResolvedContext {
    /// The change-set `principal.source` for this provenance.
    pub fn principal_source(&self) -> &'static str {
        match self.provenance.as_str() {
            "environment" => "environment",
            "static_dev" => "static_dev",
            "cloud_session" => "cloud_session",
            _ => "trusted_session",
        }
    }
}
