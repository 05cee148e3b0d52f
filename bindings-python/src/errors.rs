//! The one place core errors become Python exceptions.
//!
//! `SynapsorError` (with `.code`, `.retryable`) and one subclass per family. An exception raised
//! by an executor callback comes back to the `apply` caller as that same exception object.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use synapsor_runner::{Error, ErrorFamily};

create_exception!(
    _native,
    SynapsorError,
    PyException,
    "Base of every synapsor_runner error; `.code` is stable."
);
create_exception!(
    _native,
    ConfigError,
    SynapsorError,
    "The config file is missing or invalid (`.issues` lists every problem)."
);
create_exception!(
    _native,
    PolicyError,
    SynapsorError,
    "An argument, trusted-context or policy rule refused the call."
);
create_exception!(
    _native,
    NotFoundError,
    SynapsorError,
    "No such capability, row in the tenant, or proposal."
);
create_exception!(
    _native,
    ConflictError,
    SynapsorError,
    "A conflicting proposal or idempotency identity already exists."
);
create_exception!(
    _native,
    ApprovalError,
    SynapsorError,
    "Approval, state or authority checks refused the step."
);
create_exception!(
    _native,
    ExecutorError,
    SynapsorError,
    "An executor could not run or returned an invalid receipt."
);
create_exception!(
    _native,
    UnavailableError,
    SynapsorError,
    "A database or the ledger is unavailable; retrying may succeed."
);
create_exception!(
    _native,
    RuntimeForkedError,
    SynapsorError,
    "The runner's runtime was started in a parent process before fork()."
);

/// A Python exception raised inside an executor callback, carried through the core unchanged.
#[derive(Debug)]
pub struct PyCallbackError(pub PyErr);

impl std::fmt::Display for PyCallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the Python executor callback raised an exception")
    }
}

impl std::error::Error for PyCallbackError {}

fn family(e: &Error) -> fn(String) -> PyErr {
    match e.family() {
        ErrorFamily::Config => ConfigError::new_err,
        ErrorFamily::Policy => PolicyError::new_err,
        ErrorFamily::NotFound => NotFoundError::new_err,
        ErrorFamily::Conflict => ConflictError::new_err,
        ErrorFamily::Approval => ApprovalError::new_err,
        ErrorFamily::Executor => ExecutorError::new_err,
        ErrorFamily::Unavailable => UnavailableError::new_err,
        ErrorFamily::Other => SynapsorError::new_err,
    }
}

/// Map a core error to its Python exception.
pub fn to_py_err(e: Error) -> PyErr {
    if let Error::Callback(inner) = &e
        && let Some(cb) = inner.downcast_ref::<PyCallbackError>()
    {
        return Python::attach(|py| cb.0.clone_ref(py));
    }
    let err = family(&e)(e.to_string());
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("code", e.code());
        let _ = value.setattr("retryable", e.retryable());
        if let Error::Config(issues) = &e {
            let list: Vec<Bound<'_, PyDict>> = issues
                .iter()
                .map(|i| {
                    let d = PyDict::new(py);
                    let _ = d.set_item("path", &i.path);
                    let _ = d.set_item("code", &i.code);
                    let _ = d.set_item("message", &i.message);
                    d
                })
                .collect();
            let _ = value.setattr("issues", list);
        }
    });
    err
}

/// A `SynapsorError` of a family with a code, for binding-level refusals.
pub fn coded(make: fn(String) -> PyErr, code: &str, message: String) -> PyErr {
    let err = make(message);
    Python::attach(|py| {
        let _ = err.value(py).setattr("code", code);
        let _ = err.value(py).setattr("retryable", false);
    });
    err
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SynapsorError", py.get_type::<SynapsorError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("PolicyError", py.get_type::<PolicyError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("ApprovalError", py.get_type::<ApprovalError>())?;
    m.add("ExecutorError", py.get_type::<ExecutorError>())?;
    m.add("UnavailableError", py.get_type::<UnavailableError>())?;
    m.add("RuntimeForkedError", py.get_type::<RuntimeForkedError>())?;
    // Tracebacks and reprs name the public package, not the private module.
    for name in [
        "SynapsorError",
        "ConfigError",
        "PolicyError",
        "NotFoundError",
        "ConflictError",
        "ApprovalError",
        "ExecutorError",
        "UnavailableError",
        "RuntimeForkedError",
    ] {
        m.getattr(name)?.setattr("__module__", "synapsor_runner")?;
    }
    Ok(())
}
