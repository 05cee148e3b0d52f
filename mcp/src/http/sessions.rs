//! MCP sessions: each bound to the credential that opened it (another credential presenting its
//! id gets "session not found"), capped in total, per tenant and per credential, and dropped
//! after being idle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use synapsor_runner::TrustedContext;

struct Session {
    /// Which credential opened the session (hash of the token, or "dev").
    identity: String,
    context: TrustedContext,
    last_seen: Instant,
}

/// The open sessions by id.
#[derive(Default)]
pub(super) struct Sessions(Mutex<HashMap<String, Session>>);

/// How many sessions may be open, and for how long one may sit idle.
pub(super) struct Caps {
    pub(super) total: usize,
    pub(super) per_tenant: usize,
    pub(super) per_credential: usize,
    pub(super) idle: Duration,
}

/// Why a session was not opened.
pub(super) enum Refused {
    /// The server holds as many sessions as it may, even after dropping idle ones.
    Full,
    /// The caller's tenant or credential holds as many as it may.
    TenantOrCredential,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn count(&self) -> usize {
        self.lock().len()
    }

    /// The context of session `id` if `identity` opened it and it has not been idle longer
    /// than `idle` (an expired session is dropped).
    pub(super) fn resume(
        &self,
        id: &str,
        identity: &str,
        idle: Duration,
    ) -> Option<TrustedContext> {
        let mut sessions = self.lock();
        let now = Instant::now();
        match sessions.get_mut(id) {
            Some(sess) if now.duration_since(sess.last_seen) > idle => {
                sessions.remove(id);
                None
            }
            Some(sess) if sess.identity == identity => {
                sess.last_seen = now;
                Some(sess.context.clone())
            }
            _ => None,
        }
    }

    pub(super) fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Open a session for `identity` under `context`, within `caps`; its new id.
    pub(super) fn open(
        &self,
        identity: String,
        context: &TrustedContext,
        caps: Caps,
    ) -> Result<String, Refused> {
        let mut sessions = self.lock();
        if sessions.len() >= caps.total {
            let now = Instant::now();
            sessions.retain(|_, v| now.duration_since(v.last_seen) <= caps.idle);
        }
        if sessions.len() >= caps.total {
            return Err(Refused::Full);
        }
        let (same_tenant, same_credential) = sessions.values().fold((0, 0), |(t, c), sess| {
            (
                t + usize::from(sess.context.tenant_id == context.tenant_id),
                c + usize::from(sess.identity == identity),
            )
        });
        if same_tenant >= caps.per_tenant || same_credential >= caps.per_credential {
            return Err(Refused::TenantOrCredential);
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
        Ok(id)
    }
}

/// A random (version 4) UUID from the operating system's random source.
fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
