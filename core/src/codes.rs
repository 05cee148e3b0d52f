//! Every code the runner reports outside config validation, in one place: what it means and
//! which part of the runner reports it. Errors carry these codes (`Error::code`), receipts
//! record them, and the review API answers with them. Config validation codes are in the config
//! schema (`config::SCHEMA_TEXT`, `x-code`). docs/error-codes.md is made from this table.

/// The part of the runner a code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Loading a config or recipe file.
    Config,
    /// Checking the model's arguments.
    Argument,
    /// Resolving tenant and principal.
    Context,
    /// Finding a capability and its row.
    Capability,
    /// Checking a proposal against its capability.
    Policy,
    /// The ledger: lookups, decisions, store commands.
    Ledger,
    /// Re-checking authority at apply (nothing is written).
    Authority,
    /// The guarded write (recorded in the receipt).
    Write,
    /// Reaching a source database.
    Source,
    /// App-owned executors (recorded in the receipt).
    Executor,
    /// Protocol objects and internal errors.
    Protocol,
    /// The safe codes a model sees.
    Model,
    /// The review API over HTTP.
    Review,
}

/// One code: its text, the area that reports it, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The code as reported.
    pub code: &'static str,
    /// Where it comes from.
    pub area: Area,
    /// What it means, for operators.
    pub meaning: &'static str,
}

const fn code(area: Area, code: &'static str, meaning: &'static str) -> Code {
    Code {
        code,
        area,
        meaning,
    }
}

use Area::*;

/// Every code, grouped by area.
pub const CODES: &[Code] = &[
    // Config files (the fields' own codes are in the config schema and docs/config-reference.md)
    code(
        Config,
        "CONFIG_INVALID",
        "The config failed validation; every problem is listed with its JSON path.",
    ),
    code(
        Config,
        "CONFIG_NOT_FOUND",
        "The config file cannot be read.",
    ),
    code(
        Config,
        "CONFIG_NOT_JSON",
        "The config file is not valid JSON.",
    ),
    code(
        Config,
        "LEDGER_URL_MISSING",
        "The variable storage.url_env names is not set.",
    ),
    code(
        Config,
        "RECIPE_NOT_FOUND",
        "No recipe with that id or file.",
    ),
    code(
        Config,
        "RECIPE_NOT_JSON",
        "The recipe file is not valid JSON.",
    ),
    code(
        Config,
        "RECIPE_INVALID",
        "The recipe lacks a field it needs.",
    ),
    // The model's arguments
    code(
        Argument,
        "ARGUMENT_TYPE_INVALID",
        "An argument (or the arguments object) has the wrong type.",
    ),
    code(
        Argument,
        "ARGUMENT_UNKNOWN",
        "The capability declares no such argument.",
    ),
    code(
        Argument,
        "ARGUMENT_REQUIRED",
        "A required argument is missing or null.",
    ),
    code(
        Argument,
        "ARGUMENT_TOO_LONG",
        "A string argument is longer than its max_length.",
    ),
    code(
        Argument,
        "ARGUMENT_INVALID_CHARACTER",
        "A string argument holds a NUL character.",
    ),
    code(
        Argument,
        "ARGUMENT_BELOW_MINIMUM",
        "A number argument is below its minimum.",
    ),
    code(
        Argument,
        "ARGUMENT_ABOVE_MAXIMUM",
        "A number argument is above its maximum.",
    ),
    code(
        Argument,
        "ARGUMENT_NOT_ALLOWED",
        "An argument is not one of its enum values.",
    ),
    code(
        Argument,
        "MODEL_CANNOT_OVERRIDE_BINDING",
        "The model passed a trust name (tenant, principal, table, …) as an argument.",
    ),
    code(
        Argument,
        "LOOKUP_ARG_MISSING",
        "The argument lookup.id_from_arg names has no value.",
    ),
    // Trusted context
    code(
        Context,
        "TRUSTED_CONTEXT_MISSING",
        "The capability has no trusted context binding.",
    ),
    code(
        Context,
        "TRUSTED_BINDING_MISSING",
        "Tenant or principal is not set where the provider reads it.",
    ),
    code(
        Context,
        "TRUSTED_CONTEXT_CONFLICT",
        "The caller asserted a tenant or principal other than the provider's.",
    ),
    code(
        Context,
        "TRUSTED_CONTEXT_UNSUPPORTED",
        "The provider is not available in this mode (http_claims outside the HTTP server, cloud_session).",
    ),
    // Capabilities and reads
    code(
        Capability,
        "CAPABILITY_NOT_FOUND",
        "No capability (or tool alias) of that name is exposed.",
    ),
    code(
        Capability,
        "CAPABILITY_KIND_MISMATCH",
        "A read was called as a proposal, or the other way round.",
    ),
    code(
        Capability,
        "PROPOSALS_DISABLED",
        "The mode (read_only) offers no proposals.",
    ),
    code(
        Capability,
        "NOT_FOUND_IN_TENANT",
        "No row with that key in the caller's tenant (a foreign row looks the same).",
    ),
    code(
        Capability,
        "RESOURCE_NOT_FOUND",
        "No MCP resource at that URI for this tenant.",
    ),
    // Proposal policy
    code(Policy, "PATCH_EMPTY", "The proposal would change nothing."),
    code(
        Policy,
        "PATCH_COLUMN_NOT_ALLOWED",
        "A patch column is not in allowed_columns.",
    ),
    code(
        Policy,
        "PRIMARY_KEY_ALLOWLISTED",
        "The primary key is in allowed_columns.",
    ),
    code(
        Policy,
        "TENANT_GUARD_ALLOWLISTED",
        "The tenant key is in allowed_columns.",
    ),
    code(
        Policy,
        "PATCH_VALUE_TYPE_INVALID",
        "A patch value does not fit its column's type.",
    ),
    code(
        Policy,
        "PATCH_BELOW_MINIMUM",
        "A patch value is below its numeric bound.",
    ),
    code(
        Policy,
        "PATCH_ABOVE_MAXIMUM",
        "A patch value is above its numeric bound.",
    ),
    code(
        Policy,
        "PATCH_NUMERIC_BOUND_TYPE_INVALID",
        "A bounded column's new value is not a number.",
    ),
    code(
        Policy,
        "PATCH_TRANSITION_NOT_ALLOWED",
        "The transition guard does not allow this move from the row's current state.",
    ),
    code(
        Policy,
        "PATCH_TRANSITION_TYPE_INVALID",
        "A transition-guarded value is not a string.",
    ),
    code(
        Policy,
        "CONFLICT_GUARD_MISSING",
        "The row read has no value in the conflict guard column.",
    ),
    code(
        Policy,
        "SECRET_MATERIAL_REJECTED",
        "Secret-looking material was about to be stored in the ledger.",
    ),
    code(
        Policy,
        "UNSAFE_IDENTIFIER",
        "An identifier failed the safe-identifier check when SQL was built.",
    ),
    code(
        Policy,
        "PROPOSAL_ALREADY_EXISTS",
        "Another proposal is active for the same object with a different change.",
    ),
    // The ledger
    code(
        Ledger,
        "PROPOSAL_NOT_FOUND",
        "No proposal with that id (in this tenant).",
    ),
    code(Ledger, "EVIDENCE_NOT_FOUND", "No evidence with that id."),
    code(
        Ledger,
        "QUERY_AUDIT_NOT_FOUND",
        "No query audit entry with that id.",
    ),
    code(Ledger, "RECEIPT_NOT_FOUND", "No receipt with that id."),
    code(
        Ledger,
        "PROPOSAL_NOT_PENDING",
        "The proposal is no longer awaiting a decision.",
    ),
    code(
        Ledger,
        "PROPOSAL_NOT_PENDING_REVIEW",
        "Only a proposal pending review can be decided.",
    ),
    code(
        Ledger,
        "PROPOSAL_NOT_REJECTABLE",
        "The proposal is past the point where it can be rejected.",
    ),
    code(
        Ledger,
        "PROPOSAL_NOT_APPROVED",
        "The proposal is not approved, so it cannot be applied.",
    ),
    code(
        Ledger,
        "PROPOSAL_STATE_UNKNOWN",
        "The ledger holds a state this runner does not know.",
    ),
    code(
        Ledger,
        "REJECT_REASON_REQUIRED",
        "A rejection needs a reason.",
    ),
    code(
        Ledger,
        "RECEIPT_STATE_INVALID",
        "A receipt does not fit the proposal's state.",
    ),
    code(
        Ledger,
        "WRITEBACK_JOB_UNKNOWN",
        "The receipt names a writeback job the ledger did not issue.",
    ),
    code(
        Ledger,
        "RECONCILIATION_REQUIRED",
        "An earlier apply did not finish; run reconcile first.",
    ),
    code(
        Ledger,
        "IDEMPOTENCY_IDENTITY_CONFLICT",
        "The idempotency key is already used for a different change.",
    ),
    code(
        Ledger,
        "LEDGER_SCHEMA_OUTDATED",
        "The ledger file is older than this runner and opened read-only.",
    ),
    code(
        Ledger,
        "LEDGER_SCHEMA_TOO_NEW",
        "The ledger was written by a newer runner.",
    ),
    code(
        Ledger,
        "LEDGER_NOT_EMPTY",
        "store migrate found a target ledger that holds other data.",
    ),
    code(
        Ledger,
        "LOCAL_STORE_READ_ONLY",
        "The ledger is open read-only.",
    ),
    code(
        Ledger,
        "LOCAL_STORE_UNAVAILABLE",
        "The ledger cannot be read or written (retryable).",
    ),
    code(
        Ledger,
        "INVALID_STORAGE_SCHEMA",
        "The PostgreSQL ledger schema name is not a plain lower-case name.",
    ),
    code(Ledger, "STORE_CHECK_FAILED", "store check found problems."),
    code(
        Ledger,
        "STORE_MIGRATE_MISMATCH",
        "The copied ledger does not match its source.",
    ),
    code(
        Ledger,
        "STORE_MIGRATE_UNSUPPORTED",
        "store migrate goes from a SQLite file to PostgreSQL only.",
    ),
    // store check findings
    code(
        Ledger,
        "CHANGE_SET_UNREADABLE",
        "store check: a proposal's change set cannot be read.",
    ),
    code(
        Ledger,
        "EVIDENCE_MISSING",
        "store check: a proposal names evidence the ledger lacks.",
    ),
    code(
        Ledger,
        "APPROVED_HASH_MISMATCH",
        "store check: an approval names a different change than the proposal's.",
    ),
    code(
        Ledger,
        "EVENTS_OUT_OF_ORDER",
        "store check: a proposal's events are out of order.",
    ),
    code(
        Ledger,
        "RECEIPT_HASH_MISMATCH",
        "store check: a receipt's digest does not match its content.",
    ),
    code(
        Ledger,
        "RECEIPT_UNREADABLE",
        "store check: a receipt cannot be read.",
    ),
    code(
        Ledger,
        "STATE_WITHOUT_RECEIPT",
        "store check: an applied proposal has no applied receipt.",
    ),
    code(
        Ledger,
        "FILE_INTEGRITY",
        "store check: SQLite's integrity check failed.",
    ),
    // Apply-time authority (nothing is written)
    code(
        Authority,
        "REVIEW_MODE_REQUIRED",
        "Applying needs review mode.",
    ),
    code(
        Authority,
        "SHADOW_WRITEBACK_DISABLED",
        "A shadow proposal can never be applied.",
    ),
    code(
        Authority,
        "READ_ONLY_WRITEBACK_DISABLED",
        "The source is read_only.",
    ),
    code(
        Authority,
        "WRITEBACK_DISABLED",
        "No writer: the source has no write_url_env (or its variable is unset).",
    ),
    code(
        Authority,
        "CLOUD_MODE_UNSUPPORTED",
        "Cloud mode is not available in this runner.",
    ),
    code(
        Authority,
        "APPROVAL_MISSING",
        "The proposal has no approval.",
    ),
    code(
        Authority,
        "APPROVER_ROLE_MISSING",
        "The approver lacks the role the capability requires.",
    ),
    code(
        Authority,
        "APPROVAL_DIGEST_MISMATCH",
        "The approval names a different change.",
    ),
    code(
        Authority,
        "PROPOSAL_HASH_MISMATCH",
        "The stored proposal no longer matches its digest.",
    ),
    code(
        Authority,
        "LEDGER_INTEGRITY_FAILED",
        "The ledger's records of the proposal disagree.",
    ),
    code(
        Authority,
        "CAPABILITY_MISMATCH",
        "The job names another capability than the proposal.",
    ),
    code(
        Authority,
        "POLICY_CHANGED",
        "The capability's policy changed since the proposal; propose again.",
    ),
    code(
        Authority,
        "ALLOWLIST_WIDENED",
        "The job would write columns the reviewed capability does not allow.",
    ),
    code(
        Authority,
        "PATCH_COLUMN_NOT_REVIEWED",
        "The job's patch has a column the proposal did not.",
    ),
    code(
        Authority,
        "SOURCE_NOT_REVIEWED",
        "The job names a source the proposal did not.",
    ),
    code(
        Authority,
        "ENGINE_MISMATCH",
        "The job names another engine than the source.",
    ),
    code(
        Authority,
        "CONFLICT_GUARD_MISMATCH",
        "The job's conflict guard differs from the capability's.",
    ),
    code(
        Authority,
        "CONFLICT_GUARD_REQUIRED",
        "A guarded write needs a conflict guard.",
    ),
    code(
        Authority,
        "JOB_IDENTITY_MISMATCH",
        "The job does not belong to this proposal.",
    ),
    code(
        Authority,
        "JOB_PATCH_MISMATCH",
        "The job's patch differs from the approved one.",
    ),
    code(
        Authority,
        "JOB_TARGET_MISMATCH",
        "The job's target row differs from the proposal's.",
    ),
    code(
        Authority,
        "JOB_TENANT_MISMATCH",
        "The job's tenant differs from the proposal's.",
    ),
    code(
        Authority,
        "JOB_VERSION_MISMATCH",
        "The job's expected version differs from the proposal's.",
    ),
    code(
        Authority,
        "PROPOSAL_VERSION_MISMATCH",
        "The proposal's protocol version is not supported.",
    ),
    code(
        Authority,
        "UNKNOWN_EXECUTOR",
        "The executor the capability names is not configured.",
    ),
    code(
        Authority,
        "WRITEBACK_LEASE_EXPIRED",
        "The job's lease ran out before it was applied.",
    ),
    // The guarded write (recorded in the receipt)
    code(
        Write,
        "VERSION_CONFLICT",
        "The row changed since the proposal (its version moved); nothing was written.",
    ),
    code(
        Write,
        "ROW_NOT_FOUND",
        "The row is gone (or left the tenant); nothing was written.",
    ),
    code(
        Write,
        "MULTI_ROW_WRITE_BLOCKED",
        "The key matched more than one row; nothing was written.",
    ),
    code(
        Write,
        "TRANSITION_NO_LONGER_ALLOWED",
        "The row's state moved; the transition is no longer allowed.",
    ),
    code(
        Write,
        "POLICY_BOUND_VIOLATED",
        "The locked row's value falls outside the bound.",
    ),
    code(
        Write,
        "CONFLICT_GUARD_NOT_ADVANCED",
        "The write did not move the conflict guard column forward.",
    ),
    code(
        Write,
        "CONFLICT_GUARD_NOT_ADVANCEABLE",
        "The runner cannot advance this guard column's type.",
    ),
    code(
        Write,
        "IDEMPOTENT_CONFLICT",
        "A retry found an earlier receipt for a different outcome.",
    ),
    code(
        Write,
        "IDEMPOTENT_FAILED",
        "A retry found that the earlier attempt failed.",
    ),
    code(
        Write,
        "IDEMPOTENCY_RECEIPT_IN_PROGRESS",
        "Another attempt of the same job is under way (retryable).",
    ),
    code(
        Write,
        "IDEMPOTENCY_RECEIPT_UNAVAILABLE",
        "The receipt table cannot be read (retryable).",
    ),
    code(
        Write,
        "WRITEBACK_SAFETY_FAILURE",
        "A safety check of the guarded write failed.",
    ),
    code(
        Write,
        "DATABASE_UNAVAILABLE",
        "The source database was unreachable during the write (retryable); nothing was written.",
    ),
    code(
        Write,
        "TRANSACTION_FAILED",
        "The guarded transaction could not commit.",
    ),
    // Sources
    code(
        Source,
        "SOURCE_NOT_AVAILABLE",
        "The source cannot be opened here.",
    ),
    code(
        Source,
        "SOURCE_CREDENTIAL_MISSING",
        "The variable with the source's URL is not set.",
    ),
    code(
        Source,
        "SOURCE_UNAVAILABLE",
        "The source database cannot be reached (retryable).",
    ),
    code(
        Source,
        "DATABASE_AUTH_FAILED",
        "The database refused the credentials.",
    ),
    code(
        Source,
        "DATABASE_NOT_FOUND",
        "The database the URL names does not exist.",
    ),
    code(
        Source,
        "DATABASE_ERROR",
        "A source statement failed (details in local logs only).",
    ),
    code(
        Source,
        "APP_STATEMENT_FAILED",
        "A statement of an in-process executor failed.",
    ),
    code(
        Source,
        "ENGINE_NOT_SUPPORTED",
        "The engine is not supported here.",
    ),
    code(
        Source,
        "UNSUPPORTED_DATABASE_URL",
        "schema inspect: the URL is not postgres://, mysql:// or mariadb://.",
    ),
    code(
        Source,
        "SCHEMA_INSPECTION_FAILED",
        "schema inspect could not read the catalog.",
    ),
    // App-owned executors (recorded in the receipt)
    code(
        Executor,
        "EXECUTOR_NOT_REGISTERED",
        "No in-process executor of that name is registered.",
    ),
    code(
        Executor,
        "EXECUTOR_UNSUPPORTED",
        "The executor type cannot run here.",
    ),
    code(
        Executor,
        "HANDLER_ENV_MISSING",
        "A variable the handler needs (URL, token, command) is not set.",
    ),
    code(
        Executor,
        "HANDLER_COMMAND_INVALID",
        "The handler command line cannot be parsed.",
    ),
    code(
        Executor,
        "HANDLER_REQUEST_FAILED",
        "The handler could not be reached (retryable).",
    ),
    code(
        Executor,
        "HANDLER_TIMEOUT",
        "The handler did not answer in time (retryable).",
    ),
    code(
        Executor,
        "HANDLER_RESPONSE_TOO_LARGE",
        "The handler's answer exceeded max_response_bytes.",
    ),
    code(
        Executor,
        "HANDLER_INVALID_JSON",
        "The handler's answer is not JSON.",
    ),
    code(
        Executor,
        "HANDLER_RECEIPT_INVALID",
        "The handler's receipt fails the receipt protocol.",
    ),
    code(
        Executor,
        "HANDLER_RECEIPT_NO_MUTATION",
        "The handler reported success without a change.",
    ),
    code(Executor, "HANDLER_FAILED", "The handler reported failure."),
    code(
        Executor,
        "HANDLER_EXCEPTION",
        "The in-process callback raised an error.",
    ),
    code(
        Executor,
        "NO_GUARDED_TRANSACTION",
        "The callback used the transaction after it closed, or had none.",
    ),
    code(
        Executor,
        "TRANSACTION_CLOSED",
        "The guarded transaction is already closed.",
    ),
    code(
        Executor,
        "TRANSACTION_CONTROL_REFUSED",
        "The callback tried to commit, roll back or open a transaction itself.",
    ),
    // Protocol and internal
    code(
        Protocol,
        "PROTOCOL_INVALID",
        "A protocol object (change set, job, receipt) is malformed.",
    ),
    code(
        Protocol,
        "INTERNAL",
        "A bug or unexpected state; details stay in local logs.",
    ),
    // What the model sees (result envelope v2, with a fixed message)
    code(
        Model,
        "INVALID_ARGUMENT",
        "The tool input or trusted context binding is invalid.",
    ),
    code(
        Model,
        "POLICY_VIOLATION",
        "The requested change is outside the reviewed capability policy.",
    ),
    code(
        Model,
        "APPROVAL_REQUIRED",
        "Proposal tools are disabled for this runner mode.",
    ),
    code(
        Model,
        "TEMPORARILY_UNAVAILABLE",
        "A database or the ledger is unavailable; retrying may succeed.",
    ),
    // The review API (HTTP)
    code(
        Review,
        "NOT_FOUND",
        "No such route or proposal in the reviewer's tenant (404).",
    ),
    code(
        Review,
        "METHOD_NOT_ALLOWED",
        "The route does not take this method (405).",
    ),
    code(
        Review,
        "INVALID_BODY",
        "The request body is not a JSON object (400).",
    ),
    code(Review, "INVALID_STATE", "Unknown state filter (400)."),
    code(
        Review,
        "REASON_REQUIRED",
        "A rejection needs a reason (400).",
    ),
];

/// What a code means, if the runner reports it.
pub fn describe(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// docs/error-codes.md, as made from [`CODES`].
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Error codes\n\nEvery code the runner reports outside config validation (those are in \
         [config-reference.md](config-reference.md) and in the config schema, \
         `synapsor-runner config schema`). `synapsor_runner::codes::describe(code)` gives the \
         same text in Rust.\n",
    );
    let mut area = None;
    for c in CODES {
        if area != Some(c.area) {
            area = Some(c.area);
            out.push_str(&format!(
                "\n## {:?}\n\n| code | meaning |\n|---|---|\n",
                c.area
            ));
        }
        out.push_str(&format!("| `{}` | {} |\n", c.code, c.meaning));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Code-like literals (`"UPPER_CASE_WORDS"`) in the core's sources, tests and comments left
    /// out; config validation codes live in the schema instead.
    fn literals_in_sources() -> BTreeSet<String> {
        fn visit(dir: &Path, out: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, out);
                    continue;
                }
                let skip = ["codes.rs", "validate.rs", "structure.rs"];
                if path.extension().is_none_or(|e| e != "rs")
                    || skip.iter().any(|f| path.ends_with(f))
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
                for line in text.lines() {
                    let code = line.split("//").next().unwrap();
                    for piece in code.split('"').skip(1).step_by(2) {
                        let word = piece.len() > 3
                            && (piece.contains('_') || piece == "INTERNAL")
                            && piece.starts_with(|c: char| c.is_ascii_uppercase())
                            && piece
                                .chars()
                                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                        if word {
                            out.insert(piece.to_string());
                        }
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        visit(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out
    }

    /// Literals of that shape that are not codes: variable names and SQL settings.
    fn not_a_code(s: &str) -> bool {
        s.starts_with("SYNAPSOR_") || ["CARGO_PKG_VERSION", "COMPLETION_TYPE"].contains(&s)
    }

    #[test]
    fn every_code_in_the_sources_is_listed_and_every_listed_code_is_used() {
        let used = literals_in_sources();
        let listed: BTreeSet<String> = CODES.iter().map(|c| c.code.to_string()).collect();
        let unlisted: Vec<_> = used
            .iter()
            .filter(|c| !not_a_code(c) && !listed.contains(*c))
            .collect();
        assert!(
            unlisted.is_empty(),
            "codes reported but not in codes::CODES: {unlisted:?}"
        );
        let unused: Vec<_> = listed.difference(&used).collect();
        assert!(
            unused.is_empty(),
            "codes listed but reported nowhere: {unused:?}"
        );
        assert_eq!(listed.len(), CODES.len(), "a code listed twice");
    }

    #[test]
    fn docs_error_codes_md_is_made_from_the_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/error-codes.md");
        if std::env::var_os("SYNAPSOR_WRITE_DOCS").is_some() {
            std::fs::write(&path, render_markdown()).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            render_markdown(),
            "docs/error-codes.md is stale: SYNAPSOR_WRITE_DOCS=1 cargo test -p synapsor-runner --lib codes"
        );
    }
}
