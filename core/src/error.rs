//! The one error type of the core. Every variant carries a stable machine code.

/// One config validation finding: where, which stable code, and a readable message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigIssue {
    /// JSON path of the offending value (`$.capabilities[0].target.table`).
    pub path: String,
    /// Stable machine code (`INVALID_TARGET_IDENTIFIER`).
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Result alias used across the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The underlying error a runner error keeps as its `source()`.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// `e` kept as the cause of a runner error.
pub(crate) fn cause(e: impl std::error::Error + Send + Sync + 'static) -> Option<Cause> {
    Some(std::sync::Arc::new(e))
}

/// Every failure the core reports. `code()` is stable and safe to show; `Display` is for
/// operators (local logs, CLI) and never contains credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config failed validation; every problem is listed with its JSON path.
    #[error("Invalid Synapsor runner config:\n{}", render_issues(.0))]
    Config(Vec<ConfigIssue>),
    /// Reading or parsing a file failed before validation could run.
    #[error("{message}")]
    ConfigFile {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// A model-facing argument was rejected (type, bounds, enum, reserved or unknown name).
    #[error("{message}")]
    Argument {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
        /// The argument refused (its name, never its value), when one is to blame.
        field: Option<String>,
    },
    /// Trusted context could not be resolved; calls fail closed.
    #[error("{message}")]
    TrustedContext {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// No capability (or tool alias) with that name is exposed.
    #[error("Unknown Synapsor capability: {0}")]
    CapabilityNotFound(String),
    /// The capability is of the wrong kind for this call, or disabled by mode.
    #[error("{message}")]
    CapabilityKind {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// No row (or more than one) matched primary key and tenant. Missing and foreign rows look alike.
    #[error("The scoped capability read did not find exactly one authorized row.")]
    NotFoundInTenant,
    /// The proposed patch is outside the reviewed policy (bounds, transitions, guards).
    #[error("{message}")]
    Policy {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// Another proposal is active for the same object with a different change.
    #[error(
        "proposal {active_id} is already {state} for this object; resolve it before proposing a different change"
    )]
    ProposalAlreadyExists {
        /// The proposal that is active for the object.
        active_id: String,
        /// Its state.
        state: String,
    },
    /// Ledger state does not allow the operation (not found, wrong state, hash mismatch, ...).
    #[error("{message}")]
    Ledger {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// The approver lacks the role the capability requires.
    #[error("approver {approver} lacks required role {role}")]
    ApproverRoleMissing {
        /// Who tried to approve.
        approver: String,
        /// The role the capability requires.
        role: String,
    },
    /// Apply-time authority re-verification failed; nothing was written.
    #[error("{message}")]
    Authority {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// A protocol object failed to parse or violated a cross-field rule.
    #[error("{message}")]
    Protocol {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// Secret-looking material was about to be persisted.
    #[error(
        "refusing to persist secret-like {what} at {path}; remove it from reviewed visible/evidence/query-audit data"
    )]
    SecretMaterial {
        /// What was being stored (`evidence`, `query_audit`, ...).
        what: &'static str,
        /// Where in it the secret-looking value sits.
        path: String,
    },
    /// An identifier failed the safe-identifier check at SQL build time.
    #[error("Unsafe identifier: {0}")]
    UnsafeIdentifier(String),
    /// A source or its credentials are unavailable (transient).
    #[error("{message}")]
    SourceUnavailable {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// A source database statement failed (driver text kept for local logs only; the driver's
    /// error, when there is one, is the `source()`).
    #[error("source database error: {0}")]
    Database(String, #[source] Option<Cause>),
    /// The ledger could not be read or written (the driver's error, when there is one, is the
    /// `source()`).
    #[error("local ledger error: {0}")]
    LedgerStorage(String, #[source] Option<Cause>),
    /// An executor is referenced but cannot run here.
    #[error("{message}")]
    Executor {
        /// Stable machine code.
        code: &'static str,
        /// Operator text (never credentials).
        message: String,
    },
    /// The host application's executor callback failed with its own error (returned unchanged;
    /// the receipt records `HANDLER_EXCEPTION`).
    #[error("executor callback failed: {0}")]
    Callback(std::sync::Arc<dyn std::error::Error + Send + Sync>),
    /// A bug or an unexpected state; details stay local.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The coarse family of an error, for bindings that expose one exception class (or error
/// name) per family. Stable: a binding maps each family to one public type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFamily {
    /// The config file is missing or invalid.
    Config,
    /// An argument, trusted-context or policy rule refused the call.
    Policy,
    /// No such capability, row in the tenant, or proposal.
    NotFound,
    /// A conflicting proposal or idempotency identity already exists.
    Conflict,
    /// Approval, state or authority checks refused the step.
    Approval,
    /// An executor could not run, failed, or returned an invalid receipt.
    Executor,
    /// A database or the ledger is unavailable; retrying may succeed.
    Unavailable,
    /// Anything else (protocol violations, internal errors).
    Other,
}

/// Ledger codes for a record that does not exist (the rest of the ledger's refusals are state
/// and approval errors).
pub const LEDGER_NOT_FOUND_CODES: &[&str] = &[
    "PROPOSAL_NOT_FOUND",
    "RESOURCE_NOT_FOUND",
    "EVIDENCE_NOT_FOUND",
    "QUERY_AUDIT_NOT_FOUND",
    "RECEIPT_NOT_FOUND",
];

fn render_issues(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("{} {}: {}", i.path, i.code, i.message))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// The stable machine code of this error.
    pub fn code(&self) -> &str {
        match self {
            Error::Config(_) => "CONFIG_INVALID",
            Error::ConfigFile { code, .. }
            | Error::Argument { code, .. }
            | Error::TrustedContext { code, .. }
            | Error::CapabilityKind { code, .. }
            | Error::Policy { code, .. }
            | Error::Ledger { code, .. }
            | Error::Authority { code, .. }
            | Error::Protocol { code, .. }
            | Error::SourceUnavailable { code, .. }
            | Error::Executor { code, .. } => code,
            Error::CapabilityNotFound(_) => "CAPABILITY_NOT_FOUND",
            Error::NotFoundInTenant => "NOT_FOUND_IN_TENANT",
            Error::ProposalAlreadyExists { .. } => "PROPOSAL_ALREADY_EXISTS",
            Error::ApproverRoleMissing { .. } => "APPROVER_ROLE_MISSING",
            Error::SecretMaterial { .. } => "SECRET_MATERIAL_REJECTED",
            Error::UnsafeIdentifier(_) => "UNSAFE_IDENTIFIER",
            Error::Database(..) => "DATABASE_ERROR",
            Error::LedgerStorage(..) => "LOCAL_STORE_UNAVAILABLE",
            Error::Callback(_) => "HANDLER_EXCEPTION",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The safe code a model sees (result envelope v2), per the spec's mapping table.
    pub fn safe_code(&self) -> &'static str {
        match self {
            Error::NotFoundInTenant => "NOT_FOUND_IN_TENANT",
            Error::CapabilityNotFound(_) => "CAPABILITY_NOT_FOUND",
            Error::CapabilityKind { code, .. } if *code == "PROPOSALS_DISABLED" => {
                "APPROVAL_REQUIRED"
            }
            Error::CapabilityKind { .. } => "CAPABILITY_NOT_FOUND",
            // Decision 3: a spoofed trust binding is named as such to the client.
            Error::Argument { code, .. } if *code == "MODEL_CANNOT_OVERRIDE_BINDING" => {
                "MODEL_CANNOT_OVERRIDE_BINDING"
            }
            Error::Argument { .. } | Error::TrustedContext { .. } => "INVALID_ARGUMENT",
            Error::Policy { .. } => "POLICY_VIOLATION",
            Error::ProposalAlreadyExists { .. } => "PROPOSAL_ALREADY_EXISTS",
            Error::LedgerStorage(..) | Error::SourceUnavailable { .. } => "TEMPORARILY_UNAVAILABLE",
            _ => "INTERNAL",
        }
    }

    /// The safe, fixed message that goes with `safe_code()`.
    pub fn safe_message(&self) -> &'static str {
        match self.safe_code() {
            "NOT_FOUND_IN_TENANT" => "No authorized row was found in the trusted tenant scope.",
            "CAPABILITY_NOT_FOUND" => "The requested Synapsor capability is not available.",
            "APPROVAL_REQUIRED" => "Proposal tools are disabled for this runner mode.",
            "INVALID_ARGUMENT" => "The tool input or trusted context binding is invalid.",
            "MODEL_CANNOT_OVERRIDE_BINDING" => {
                "Tenant, principal and other trusted bindings come from the runner's trusted context, never from tool arguments."
            }
            "POLICY_VIOLATION" => "The requested change is outside the reviewed capability policy.",
            "PROPOSAL_ALREADY_EXISTS" => {
                "A different proposal for this object is already awaiting review or writeback."
            }
            "TEMPORARILY_UNAVAILABLE" => match self {
                Error::LedgerStorage(..) => {
                    "The local runner store is temporarily unavailable. Restart the runner or recreate the store before retrying."
                }
                _ => "The database is temporarily unavailable. Retry later.",
            },
            _ => "The capability failed safely. Check the local runner logs for details.",
        }
    }

    /// The family this error belongs to.
    pub fn family(&self) -> ErrorFamily {
        match self {
            Error::Config(_) | Error::ConfigFile { .. } => ErrorFamily::Config,
            Error::CapabilityNotFound(_) | Error::NotFoundInTenant => ErrorFamily::NotFound,
            Error::ProposalAlreadyExists { .. } => ErrorFamily::Conflict,
            Error::ApproverRoleMissing { .. } | Error::Authority { .. } => ErrorFamily::Approval,
            Error::Argument { .. }
            | Error::TrustedContext { .. }
            | Error::CapabilityKind { .. }
            | Error::Policy { .. }
            | Error::SecretMaterial { .. }
            | Error::UnsafeIdentifier(_) => ErrorFamily::Policy,
            Error::SourceUnavailable { .. } | Error::LedgerStorage(..) | Error::Database(..) => {
                ErrorFamily::Unavailable
            }
            Error::Executor { .. } | Error::Callback(_) => ErrorFamily::Executor,
            Error::Ledger { code, .. } if LEDGER_NOT_FOUND_CODES.contains(code) => {
                ErrorFamily::NotFound
            }
            Error::Ledger { .. } => ErrorFamily::Approval,
            Error::Protocol { .. } | Error::Internal(_) => ErrorFamily::Other,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn retryable(&self) -> bool {
        self.safe_code() == "TEMPORARILY_UNAVAILABLE"
    }

    pub(crate) fn ledger(code: &'static str, message: impl Into<String>) -> Self {
        Error::Ledger {
            code,
            message: message.into(),
        }
    }
    pub(crate) fn authority(code: &'static str, message: impl Into<String>) -> Self {
        Error::Authority {
            code,
            message: message.into(),
        }
    }
    pub(crate) fn protocol(code: &'static str, message: impl Into<String>) -> Self {
        Error::Protocol {
            code,
            message: message.into(),
        }
    }
    pub(crate) fn argument(code: &'static str, message: impl Into<String>) -> Self {
        Error::Argument {
            code,
            message: message.into(),
            field: None,
        }
    }
    /// An argument error naming the argument to blame.
    pub(crate) fn argument_field(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Argument {
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The argument a refusal names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Argument { field, .. } => field.as_deref(),
            _ => None,
        }
    }
    pub(crate) fn policy(code: &'static str, message: impl Into<String>) -> Self {
        Error::Policy {
            code,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::LedgerStorage(e.to_string(), Some(std::sync::Arc::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ledger_record_is_not_found_and_a_refused_step_is_an_approval_error() {
        for code in LEDGER_NOT_FOUND_CODES {
            assert_eq!(
                Error::ledger(code, "x").family(),
                ErrorFamily::NotFound,
                "{code}"
            );
        }
        for code in ["PROPOSAL_NOT_APPROVED", "PROPOSAL_HASH_MISMATCH"] {
            assert_eq!(
                Error::ledger(code, "x").family(),
                ErrorFamily::Approval,
                "{code}"
            );
        }
        let protocol = Error::Protocol {
            code: "IDEMPOTENCY_IDENTITY_CONFLICT",
            message: String::new(),
        };
        assert_eq!(protocol.family(), ErrorFamily::Other);
    }

    /// Every `*_NOT_FOUND` code the ledger reports is listed, so none falls into the approval
    /// family by accident.
    #[test]
    fn every_not_found_code_the_ledger_reports_is_listed() {
        let src = concat!(
            include_str!("ledger/sqlite.rs"),
            include_str!("ledger/mod.rs"),
            include_str!("ledger/postgres.rs"),
            include_str!("agent/resources.rs"),
            include_str!("apply/authority.rs"),
        );
        let re = regex_lite::Regex::new(r#""([A-Z_]+_NOT_FOUND)""#).unwrap();
        for cap in re.captures_iter(src) {
            let code = &cap[1];
            assert!(
                LEDGER_NOT_FOUND_CODES.contains(&code),
                "{code} is not in LEDGER_NOT_FOUND_CODES"
            );
        }
    }

    #[test]
    fn storage_and_database_errors_keep_the_driver_error_as_their_source() {
        use std::error::Error as _;
        let e: Error = rusqlite::Error::QueryReturnedNoRows.into();
        assert_eq!(e.code(), "LOCAL_STORE_UNAVAILABLE");
        let source = e.source().expect("the driver error is kept");
        assert_eq!(
            source.to_string(),
            rusqlite::Error::QueryReturnedNoRows.to_string()
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let driver = conn.execute("SELECT * FROM missing", []).unwrap_err();
        let e = Error::Database(driver.to_string(), cause(driver));
        assert!(e.source().unwrap().to_string().contains("missing"));
        assert!(Error::Database("x".into(), None).source().is_none());
    }
}
