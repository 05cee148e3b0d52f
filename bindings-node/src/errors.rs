//! The one place failures become JavaScript errors.
//!
//! Every rejection is an `Error` whose `name` is the family (`PolicyError`, `NotFoundError`, ...),
//! with a stable `.code`, `.retryable`, and for config errors `.issues` (every problem with its
//! path). An error thrown (or a promise rejected) by an executor callback comes back to the
//! `apply` caller as that same value.

use napi::bindgen_prelude::{Env, JsObjectValue, JsValue, Status};
use serde_json::Value;
use synapsor_runner::{Error, ErrorFamily};

/// A JavaScript error or rejection reason thrown inside an executor callback, carried through
/// the core unchanged (the receipt records only `HANDLER_EXCEPTION`).
#[derive(Debug)]
pub struct JsCallbackError(pub napi::Error);

impl std::fmt::Display for JsCallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the JavaScript executor callback threw or rejected")
    }
}

impl std::error::Error for JsCallbackError {}

/// Why a call failed, before it is turned into a JavaScript value on the JS thread.
#[derive(Debug)]
pub enum Failure {
    Core(Error),
    /// A refusal of the binding itself (closed runner, bad option).
    Binding {
        family: ErrorFamily,
        code: &'static str,
        message: String,
    },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    pub fn closed() -> Self {
        Failure::Binding {
            family: ErrorFamily::Other,
            code: "RUNNER_CLOSED",
            message: "this Runner is closed".into(),
        }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Failure::Binding {
            family: ErrorFamily::Policy,
            code,
            message: message.into(),
        }
    }

    /// The JavaScript value to reject with. Runs on the JS thread.
    pub fn into_js(self, env: &Env) -> napi::Error {
        match self {
            Failure::Core(Error::Callback(inner)) => {
                match inner.downcast_ref::<JsCallbackError>() {
                    Some(cb) => cb.0.try_clone().unwrap_or_else(|e| e),
                    None => {
                        let e = Error::Callback(inner);
                        coded(env, e.family(), e.code(), &e.to_string(), false, None)
                    }
                }
            }
            Failure::Core(e) => {
                let issues = match &e {
                    Error::Config(issues) => serde_json::to_value(issues).ok(),
                    _ => None,
                };
                coded(
                    env,
                    e.family(),
                    e.code(),
                    &e.to_string(),
                    e.retryable(),
                    issues,
                )
            }
            Failure::Binding {
                family,
                code,
                message,
            } => coded(env, family, code, &message, false, None),
        }
    }
}

/// The error's `name`: one per family, the same names as the Python exception classes.
fn class_name(family: ErrorFamily) -> &'static str {
    match family {
        ErrorFamily::Config => "ConfigError",
        ErrorFamily::Policy => "PolicyError",
        ErrorFamily::NotFound => "NotFoundError",
        ErrorFamily::Conflict => "ConflictError",
        ErrorFamily::Approval => "ApprovalError",
        ErrorFamily::Executor => "ExecutorError",
        ErrorFamily::Unavailable => "UnavailableError",
        ErrorFamily::Other => "SynapsorError",
    }
}

/// An `Error` object with `name`, `code`, `retryable` (and `issues`), returned as a napi error
/// that rejects with exactly this object.
fn coded(
    env: &Env,
    family: ErrorFamily,
    code: &str,
    message: &str,
    retryable: bool,
    issues: Option<Value>,
) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, message))?;
        obj.set_named_property("name", class_name(family))?;
        obj.set_named_property("code", code)?;
        obj.set_named_property("retryable", retryable)?;
        if let Some(issues) = issues {
            obj.set_named_property("issues", issues)?;
        }
        Ok(napi::Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|e| e)
}
