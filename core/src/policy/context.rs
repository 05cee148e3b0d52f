//! Whose tenant and principal a call runs under: the capability's binding, resolved from the
//! host's assertion, the environment or a development value; missing values fail closed, and a
//! caller assertion that disagrees with the configured provider is refused.

use crate::config::{Capability, ContextBinding, Provider, RunnerConfig};
use crate::context::{ResolvedContext, TrustedContext};
use crate::error::{Error, Result};
use serde_json::Value;

/// Which binding applies to a capability: its named context, else the global one.
pub fn binding_for<'a>(config: &'a RunnerConfig, cap: &Capability) -> Result<&'a ContextBinding> {
    cap.context
        .as_ref()
        .and_then(|name| config.contexts.get(name))
        .or(config.trusted_context.as_ref())
        .ok_or_else(|| Error::TrustedContext {
            code: "TRUSTED_CONTEXT_MISSING",
            message: format!("{} has no trusted context binding.", cap.name),
        })
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn value_str<'a>(b: &'a ContextBinding, key: &str) -> Option<&'a str> {
    b.values.get(key).and_then(Value::as_str)
}

/// Resolve tenant and principal for one call. Missing values fail closed.
pub fn resolve(binding: &ContextBinding, caller: &TrustedContext) -> Result<ResolvedContext> {
    let missing = |t: &str, p: &str| Error::TrustedContext {
        code: "TRUSTED_BINDING_MISSING",
        message: format!("{t} and {p} must be set."),
    };
    let (tenant, principal) = match binding.provider {
        Provider::Host => {
            let t = caller.tenant_id.clone().filter(|s| !s.trim().is_empty());
            let p = caller.principal.clone().filter(|s| !s.trim().is_empty());
            match (t, p) {
                (Some(t), Some(p)) => (t, p),
                _ => return Err(missing("host tenant_id", "principal")),
            }
        }
        Provider::Environment => {
            let te = value_str(binding, "tenant_id_env").unwrap_or("SYNAPSOR_TENANT_ID");
            let pe = value_str(binding, "principal_env").unwrap_or("SYNAPSOR_PRINCIPAL");
            match (env_value(te), env_value(pe)) {
                (Some(t), Some(p)) => (t, p),
                _ => return Err(missing(te, pe)),
            }
        }
        Provider::StaticDev => {
            let pick = |env_key: &str, lit_key: &str| {
                value_str(binding, env_key).and_then(env_value).or_else(|| {
                    value_str(binding, lit_key)
                        .filter(|s| !s.trim().is_empty())
                        .map(String::from)
                })
            };
            match (
                pick("tenant_id_env", "tenant_id"),
                pick("principal_env", "principal"),
            ) {
                (Some(t), Some(p)) => (t, p),
                _ => return Err(missing("static_dev tenant_id", "principal")),
            }
        }
        Provider::HttpClaims | Provider::CloudSession => {
            return Err(Error::TrustedContext {
                code: "TRUSTED_CONTEXT_UNSUPPORTED",
                message: format!(
                    "{} trusted context is not available in local mode.",
                    binding.provider.as_str()
                ),
            });
        }
    };
    if binding.provider != Provider::Host {
        for (asserted, actual, what) in [
            (&caller.tenant_id, &tenant, "tenant_id"),
            (&caller.principal, &principal, "principal"),
        ] {
            if let Some(a) = asserted
                && a != actual
            {
                return Err(Error::TrustedContext {
                    code: "TRUSTED_CONTEXT_CONFLICT",
                    message: format!(
                        "caller-supplied {what} does not match the {} provider binding.",
                        binding.provider.as_str()
                    ),
                });
            }
        }
    }
    Ok(ResolvedContext {
        tenant_id: tenant,
        principal,
        provenance: binding.provider.as_str().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding(v: Value) -> ContextBinding {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn host_provider_requires_caller_values() {
        let b = binding(json!({"provider": "host"}));
        assert_eq!(
            resolve(&b, &TrustedContext::from_config())
                .unwrap_err()
                .code(),
            "TRUSTED_BINDING_MISSING"
        );
        let r = resolve(&b, &TrustedContext::new("acme", "u1")).unwrap();
        assert_eq!(
            (
                r.tenant_id.as_str(),
                r.principal.as_str(),
                r.provenance.as_str()
            ),
            ("acme", "u1", "host")
        );
        assert_eq!(r.principal_source(), "trusted_session");
    }

    #[test]
    fn static_dev_uses_literals_and_refuses_conflicting_caller() {
        let b = binding(
            json!({"provider": "static_dev", "values": {"tenant_id": "acme", "principal": "dev"}}),
        );
        assert_eq!(
            resolve(&b, &TrustedContext::from_config())
                .unwrap()
                .tenant_id,
            "acme"
        );
        let err = resolve(&b, &TrustedContext::new("globex", "dev")).unwrap_err();
        assert_eq!(err.code(), "TRUSTED_CONTEXT_CONFLICT");
    }

    #[test]
    fn environment_provider_fails_closed_when_unset() {
        let b = binding(
            json!({"provider": "environment", "values": {"tenant_id_env": "SYN_TEST_NEVER_SET_T", "principal_env": "SYN_TEST_NEVER_SET_P"}}),
        );
        assert_eq!(
            resolve(&b, &TrustedContext::from_config())
                .unwrap_err()
                .code(),
            "TRUSTED_BINDING_MISSING"
        );
    }
}
