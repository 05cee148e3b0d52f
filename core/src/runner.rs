//! The facade: open a runner, then inspect, propose, approve, reject, apply, replay. What the model
//! calls (tools, resources) goes through it from [`crate::agent`].

use crate::apply::{self, ApplyOptions, ApplyOutcome};
use crate::capability::{self, ScopedRead};
use crate::config::ExecutorConfig;
use crate::config::{CapabilityKind, LoadedConfig, Mode, RunnerConfig, load_config};
use crate::context::TrustedContext;
use crate::error::{Error, Result};
use crate::ledger::{Approver, CreateOutcome, Ledger, LedgerLocation, StoredProposal};
use crate::policy::ProposalState;
use crate::policy::context;
use crate::protocol::WritebackJob;
use crate::source::Sources;
use crate::write::executor::Executor;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where to find the config and the ledger.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The reviewed config file (`synapsor.runner.json`).
    pub config_path: PathBuf,
    /// The ledger file; `None`: the config's `storage.sqlite_path`, else `.synapsor/local.db`,
    /// beside the config file.
    pub ledger_path: Option<PathBuf>,
    /// Values for the variables the config names (connection URLs: `read_url_env`,
    /// `write_url_env`; handlers: `url_env`, `token_env`, `signing_secret_env`,
    /// `command_env`), looked up before the process environment. Lets a host hand them over
    /// from its own secret store without setting process-wide environment variables.
    pub env: HashMap<String, String>,
    /// Where the ledger is, overriding both `ledger_path` and the config's `storage`.
    pub ledger_location: Option<LedgerLocation>,
}

impl OpenOptions {
    /// Options for this config file, the ledger it names.
    pub fn config_path(path: impl Into<PathBuf>) -> Self {
        OpenOptions {
            config_path: path.into(),
            ..Default::default()
        }
    }

    /// Use this ledger file instead of the one the config names.
    pub fn ledger(mut self, path: impl Into<PathBuf>) -> Self {
        self.ledger_path = Some(path.into());
        self
    }
    /// Use the PostgreSQL ledger in `schema` of the database whose URL is in the variable
    /// `url_env` (looked up in [`OpenOptions::env`](Self#structfield.env) first), whatever the
    /// config's `storage` says.
    pub fn ledger_postgres(
        mut self,
        url_env: impl Into<String>,
        schema: impl Into<String>,
    ) -> Self {
        self.ledger_location = Some(LedgerLocation::Postgres {
            url_env: url_env.into(),
            schema: schema.into(),
        });
        self
    }
    /// The value of a variable the config names (see [`OpenOptions::env`](Self#structfield.env)).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

/// Ledger path: explicit (`--store`, `OpenOptions::ledger`), then `SYNAPSOR_LOCAL_STORE` (both
/// as given, relative to the working directory), then `storage.sqlite_path`, then
/// `.synapsor/local.db` (both relative to the config file's folder, as a SQLite source's `path`
/// is). Every command and binding resolves it this way, so they all find the same ledger.
pub fn resolve_ledger_path(explicit: Option<&Path>, config: Option<&LoadedConfig>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Ok(p) = std::env::var("SYNAPSOR_LOCAL_STORE")
        && !p.is_empty()
    {
        return PathBuf::from(p);
    }
    let configured = config
        .and_then(|c| c.config.storage.as_ref())
        .and_then(|s| s.sqlite_path.as_deref())
        .unwrap_or(DEFAULT_LEDGER);
    match config {
        Some(c) if Path::new(configured).is_relative() => c.base_dir().join(configured),
        _ => PathBuf::from(configured),
    }
}

/// Where the ledger is: the file the caller names (or `SYNAPSOR_LOCAL_STORE`), else the config's
/// `storage` (a PostgreSQL schema with `engine: "postgres"`, else its `sqlite_path`), else
/// [`DEFAULT_LEDGER`] beside the config file.
pub fn resolve_ledger(explicit: Option<&Path>, config: Option<&LoadedConfig>) -> LedgerLocation {
    let from_env = std::env::var("SYNAPSOR_LOCAL_STORE").is_ok_and(|p| !p.is_empty());
    if explicit.is_none()
        && !from_env
        && let Some(s) = config.and_then(|c| c.config.storage.as_ref())
        && s.engine.as_deref() == Some("postgres")
    {
        return LedgerLocation::Postgres {
            url_env: s.url_env.clone().unwrap_or_default(),
            schema: s.schema.clone().unwrap_or_else(|| "synapsor".into()),
        };
    }
    LedgerLocation::Sqlite(resolve_ledger_path(explicit, config))
}

/// The ledger file when neither the caller nor the config names one, relative to the config
/// file's folder.
pub const DEFAULT_LEDGER: &str = ".synapsor/local.db";

pub use crate::envelope::{ProposalResult, ReadResult};

struct Inner {
    config: LoadedConfig,
    ledger: Ledger,
    sources: Sources,
    /// `OpenOptions::env`: values for the variables the config names, before the process's.
    given_env: Arc<HashMap<String, String>>,
    executors: std::sync::RwLock<std::collections::HashMap<String, Arc<dyn Executor>>>,
}

/// What `reconcile` did with one stuck writeback job.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    /// The proposal whose job was stuck in `pending_worker`.
    pub proposal_id: String,
    /// The job.
    pub writeback_job_id: String,
    /// `recorded_applied`, `recorded_conflict`, `recorded_failed`, `released`, `in_flight` or
    /// `unresolved`.
    pub outcome: String,
    /// Why, in words.
    pub detail: String,
}

/// An open runner. Clone it freely; clones share pools and the ledger.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

impl Runner {
    /// Load and validate the config, open the ledger (migrating once), prepare lazy pools.
    pub async fn open(opts: OpenOptions) -> Result<Runner> {
        let config = load_config(&opts.config_path)?;
        let location = match opts.ledger_location.clone() {
            Some(l) => l,
            None => resolve_ledger(opts.ledger_path.as_deref(), Some(&config)),
        };
        let ledger = location.open(&opts.env).await?;
        Self::with_parts_and_env(config, ledger, &opts.env)
    }

    /// Build from an already loaded config and ledger.
    pub fn with_parts(config: LoadedConfig, ledger: Ledger) -> Result<Runner> {
        Self::with_parts_and_env(config, ledger, &HashMap::new())
    }

    /// [`Runner::with_parts`] with values for the variables the config names
    /// ([`OpenOptions::env`](OpenOptions#structfield.env)).
    pub fn with_parts_and_env(
        config: LoadedConfig,
        ledger: Ledger,
        env: &HashMap<String, String>,
    ) -> Result<Runner> {
        let sources = Sources::open(&config, env)?;
        Ok(Runner {
            inner: Arc::new(Inner {
                config,
                ledger,
                sources,
                given_env: Arc::new(env.clone()),
                executors: Default::default(),
            }),
        })
    }

    /// The validated config.
    pub fn config(&self) -> &RunnerConfig {
        &self.inner.config.config
    }

    /// The config with where it was loaded from and its warnings.
    pub fn loaded_config(&self) -> &LoadedConfig {
        &self.inner.config
    }

    /// The ledger: proposals, evidence, approvals, receipts and events.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    async fn read(
        &self,
        name: &str,
        args: &Value,
        caller: &TrustedContext,
        kind: CapabilityKind,
    ) -> Result<(ScopedRead, Map<String, Value>)> {
        let config = self.config();
        let cap = config
            .capability(name)
            .ok_or_else(|| Error::CapabilityNotFound(name.to_string()))?;
        let args = capability::validate_args(cap, args)?;
        if cap.kind != kind {
            return Err(Error::CapabilityKind {
                code: "CAPABILITY_KIND_MISMATCH",
                message: format!("{name} is a {} capability.", cap.kind.as_str()),
            });
        }
        crate::policy::may_run(config.mode, kind)?;
        let source = self.inner.sources.get(&cap.source)?;
        let ctx = context::resolve(context::binding_for(config, cap)?, caller)?;
        let read = capability::scoped_read(cap, &source, &args, &ctx).await?;
        Ok((read, args))
    }

    /// Register the callback behind an `in_process` executor of this name. Replaces any earlier one.
    pub fn register_executor(&self, name: &str, executor: impl Executor + 'static) {
        self.register_executor_arc(name, Arc::new(executor));
    }

    /// Register a shared executor (bindings keep one per registered callable).
    pub fn register_executor_arc(&self, name: &str, executor: Arc<dyn Executor>) {
        self.inner
            .executors
            .write()
            .expect("executor registry")
            .insert(name.to_string(), executor);
    }

    /// Benchmarks only: switch the executor registered under `name` between itself and an
    /// answer given at once without touching the database (the first call wraps it in a
    /// [`BenchSwitch`](crate::write::executor::BenchSwitch); registering again removes the
    /// switch). `false` if nothing is registered under `name`. Not for applications.
    #[cfg(feature = "bench")]
    #[doc(hidden)]
    pub fn bench_baseline(&self, name: &str, baseline: bool) -> bool {
        let mut executors = self.inner.executors.write().expect("executor registry");
        let Some(current) = executors.get(name).cloned() else {
            return false;
        };
        match current.bench_switch() {
            Some(switch) => switch.set(baseline),
            None => {
                let switch = crate::write::executor::BenchSwitch::new(current, baseline);
                executors.insert(name.to_string(), Arc::new(switch));
            }
        }
        true
    }

    /// Benchmarks only: run [`inspect`](Self::inspect) as a Rust service would, in a task of its
    /// own on a runtime worker, `times` times one after another, and answer how long that took
    /// there in microseconds. The bindings' timed benchmarks alternate one such call with the
    /// same call made from Python or JavaScript on the same runner, so the difference is the
    /// binding's overhead alone; their instruction counts run many in one crossing. Not for
    /// applications.
    #[cfg(feature = "bench")]
    #[doc(hidden)]
    pub async fn bench_inspect_on_worker(
        &self,
        name: String,
        args: Value,
        ctx: TrustedContext,
        times: u32,
    ) -> Result<f64> {
        let runner = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            for _ in 0..times {
                runner.inspect(&name, args.clone(), &ctx).await?;
            }
            Ok(started.elapsed().as_secs_f64() * 1e6)
        })
        .await
        .map_err(|e| Error::Internal(format!("benchmark task failed: {e}")))?
    }

    /// Run a read capability: one scoped row, evidence and query audit recorded.
    pub async fn inspect(
        &self,
        name: &str,
        args: Value,
        ctx: &TrustedContext,
    ) -> Result<ReadResult> {
        let (read, _) = self.read(name, &args, ctx, CapabilityKind::Read).await?;
        let evidence_bundle_id = read.evidence.evidence_bundle_id.clone();
        self.ledger().record_read(read.evidence, read.audit).await?;
        let cap = self.config().capability(name).expect("checked");
        Ok(ReadResult {
            capability: name.to_string(),
            business_object: cap.target.table.clone(),
            object_id: read.object_id,
            data: read.row,
            evidence_bundle_id,
            context: read.context,
        })
    }

    /// Run a proposal capability. The source database is not changed.
    pub async fn propose(
        &self,
        name: &str,
        args: Value,
        ctx: &TrustedContext,
    ) -> Result<ProposalResult> {
        let (read, args) = self
            .read(name, &args, ctx, CapabilityKind::Proposal)
            .await?;
        let config = self.config();
        let cap = config.capability(name).expect("checked");
        let patch = capability::build_patch(cap, &args, &read.row)?;
        let columns: Vec<String> = patch.keys().cloned().collect();
        let kinds = self
            .inner
            .sources
            .get(&cap.source)?
            .column_kinds(&cap.target.schema, &cap.target.table, &columns)
            .await?;
        capability::check_patch_types(cap, &patch, &kinds)?;
        let cs = capability::build_change_set(config, cap, &read, patch)?;
        let mut bundle = read.evidence.clone();
        bundle.payload["proposal_id"] = Value::String(cs.proposal_id.clone());
        bundle.payload["approval_status"] = Value::String("pending".into());
        bundle.items.push(serde_json::json!({"kind": "proposal_evidence", "before": cs.before, "patch": cs.patch, "after": cs.after}));
        let mut audit = read.audit.clone();
        audit.payload["proposal_id"] = Value::String(cs.proposal_id.clone());
        let evidence_bundle_id = bundle.evidence_bundle_id.clone();
        let (stored_cs, duplicate, state) =
            match self.ledger().create_proposal(cs, bundle, audit).await? {
                CreateOutcome::Created(cs) => (*cs, false, ProposalState::PendingReview),
                CreateOutcome::Duplicate(existing) => (existing.change_set, true, existing.state),
            };
        Ok(ProposalResult {
            capability: name.to_string(),
            proposal_id: stored_cs.proposal_id.clone(),
            proposal_version: stored_cs.proposal_version,
            proposal_hash: stored_cs.integrity.proposal_hash.clone(),
            state,
            business_object: stored_cs.scope.business_object.clone(),
            object_id: stored_cs.scope.object_id.clone(),
            tenant_id: stored_cs.scope.tenant_id.clone(),
            diff: capability::diff(&stored_cs),
            evidence_bundle_id: if duplicate {
                stored_cs.evidence.bundle_id.clone()
            } else {
                evidence_bundle_id
            },
            executor: cap.executor_name().to_string(),
            duplicate,
            shadow: stored_cs.mode == "shadow",
        })
    }

    /// Approve a proposal outside any model-facing path. Enforces `approval.required_role`.
    pub async fn approve(&self, proposal_id: &str, approver: &Approver) -> Result<StoredProposal> {
        self.ledger().approve(proposal_id, approver, None).await
    }

    /// Reject a proposal (reason required). Terminal.
    pub async fn reject(
        &self,
        proposal_id: &str,
        approver: &Approver,
        reason: &str,
    ) -> Result<StoredProposal> {
        if reason.trim().is_empty() {
            return Err(Error::ledger(
                "REJECT_REASON_REQUIRED",
                "a rejection needs a reason",
            ));
        }
        self.ledger().reject(proposal_id, approver, reason).await
    }

    /// Apply an approved proposal through its capability's executor.
    pub async fn apply(&self, proposal_id: &str, opts: &ApplyOptions) -> Result<ApplyOutcome> {
        let config = self.config();
        if config.mode != Mode::Review {
            return Err(Error::authority(
                "REVIEW_MODE_REQUIRED",
                format!(
                    "local proposal apply requires review mode, got {}",
                    config.mode.as_str()
                ),
            ));
        }
        let p = self.ledger().proposal(proposal_id).await?;
        let cap = apply::matching_capability(config, &p)?;
        if !p.state.may_apply() {
            return Err(Error::ledger(
                "PROPOSAL_NOT_APPROVED",
                format!(
                    "proposal {} is {}, not approved for writeback",
                    p.proposal_id, p.state
                ),
            ));
        }
        let engine = config
            .sources
            .get(&cap.source)
            .map(|s| s.engine.as_str())
            .unwrap_or("postgres");
        let (executor, _) = apply::authority::executor_type(config, cap)?;
        let job = apply::job_for_executor(&p, engine, executor, opts);
        self.apply_job(&job, opts).await
    }

    /// Apply a writeback job (for example one handed over as a file). Everything is verified
    /// against the stored proposal and the current config before the source is contacted.
    pub async fn apply_job(&self, job: &WritebackJob, opts: &ApplyOptions) -> Result<ApplyOutcome> {
        let config = self.config();
        let (p, cap) = apply::verify_authority(config, self.ledger(), job).await?;
        let (executor, ex_config) = apply::authority::executor_type(config, cap)?;
        if executor != "sql_update" {
            return self
                .apply_app_owned(job, &p, cap, executor, ex_config, opts)
                .await;
        }
        if !config
            .sources
            .get(&cap.source)
            .map(|s| s.has_writer())
            .unwrap_or(false)
        {
            return Err(Error::authority(
                "WRITEBACK_DISABLED",
                format!("source {} has no write connection configured", cap.source),
            ));
        }
        let source = self.inner.sources.get(&cap.source)?;
        source.check_writer()?;
        let before_columns: Vec<String> = p.change_set.before.keys().cloned().collect();
        let plan = apply::sql_update::plan_for(job, cap, &before_columns)?;
        if !opts.dry_run {
            self.ledger()
                .prepare_job(job, executor, &opts.runner_id)
                .await?;
        }
        let (receipt, retryable) = apply::sql_update::execute(&source, job, &plan, opts).await?;
        self.finish_apply(&p, job, receipt, executor, retryable, opts)
            .await
    }

    /// Settle every proposal stuck in `pending_worker` (an apply that crashed, was killed, or
    /// could not write its receipt to the ledger) from the source's own receipts:
    ///
    /// - the source receipt says `applied` (or `conflict`, `failed`): that outcome is recorded,
    ///   as the original attempt would have recorded it;
    /// - there is no source receipt: nothing was written; once the job's lease has passed (or
    ///   with `force`) the proposal goes back to `approved`, to be applied again or rejected;
    /// - the source receipt is still `in_progress`: a transaction ended outside the core's
    ///   control; left for a person to inspect (`unresolved`).
    ///
    /// App-owned HTTP and command handlers keep their own records: their jobs are released once
    /// the lease has passed, and a new apply sends the same `Idempotency-Key`.
    pub async fn reconcile(&self, force: bool, opts: &ApplyOptions) -> Result<Vec<Reconciled>> {
        let mut out = Vec::new();
        for (job, executor) in self.ledger().pending_jobs().await? {
            let lease_over = chrono::DateTime::parse_from_rfc3339(&job.lease.expires_at)
                .map(|t| t < chrono::Utc::now())
                .unwrap_or(true);
            let entry = |outcome: &str, detail: String| Reconciled {
                proposal_id: job.proposal_id.clone(),
                writeback_job_id: job.writeback_job_id.clone(),
                outcome: outcome.to_string(),
                detail,
            };
            let source_receipt = match executor.as_str() {
                "sql_update" | "in_process" => {
                    let source = self.inner.sources.get(&job.runner_scope.source_id)?;
                    Some(source.receipt(&job.idempotency_key).await?)
                }
                _ => None,
            };
            let release = async |why: &str| -> Result<Reconciled> {
                if !(lease_over || force) {
                    return Ok(entry(
                        "in_flight",
                        format!(
                            "{why}; its lease ({}) has not passed, so an apply may still be running (use --force to release it now)",
                            job.lease.expires_at
                        ),
                    ));
                }
                self.ledger()
                    .release_job(&job, &opts.runner_id, why)
                    .await?;
                Ok(entry(
                    "released",
                    format!("{why}; the proposal is approved again: apply it again or reject it"),
                ))
            };
            let reconciled = match source_receipt {
                None => release("app-owned handler: the application holds the record, and a new apply sends the same Idempotency-Key").await?,
                Some(None) => release("the source has no receipt for this job: nothing was written").await?,
                Some(Some(r)) if r.status == "in_progress" => entry(
                    "unresolved",
                    "the source receipt is still in_progress: a transaction ended outside the runner's control; inspect the row and the receipt by hand".into(),
                ),
                Some(Some(r)) => {
                    let (status, rows, mutated, code) = match r.status.as_str() {
                        "applied" | "already_applied" => ("applied", 1, true, None),
                        "conflict" => ("conflict", 0, false, Some("IDEMPOTENT_CONFLICT".to_string())),
                        _ => ("failed", 0, false, Some("IDEMPOTENT_FAILED".to_string())),
                    };
                    let mut extra = serde_json::Map::new();
                    extra.insert("recovered_from_source_receipt".into(), Value::Bool(true));
                    if let Some(at) = &r.completed_at {
                        extra.insert("source_completed_at".into(), Value::String(at.clone()));
                    }
                    let receipt = apply::make_receipt(&job, &opts.runner_id, status, rows, None, mutated, code, extra);
                    self.ledger().record_receipt(&receipt, false).await?;
                    entry(
                        &format!("recorded_{status}"),
                        format!("the source receipt says {}; recorded in the ledger", r.status),
                    )
                }
            };
            out.push(reconciled);
        }
        Ok(out)
    }

    /// Record the outcome (an event for dry runs, a receipt otherwise) and shape the result.
    async fn finish_apply(
        &self,
        p: &StoredProposal,
        job: &WritebackJob,
        receipt: crate::protocol::ExecutionReceipt,
        executor: &str,
        retryable: bool,
        opts: &ApplyOptions,
    ) -> Result<ApplyOutcome> {
        let recorded = if opts.dry_run {
            self.ledger().record_event(
                &p.proposal_id,
                "writeback_dry_run",
                &opts.runner_id,
                serde_json::json!({"writeback_job_id": job.writeback_job_id, "outcome": receipt.status, "safe_error_code": receipt.safe_error_code, "rows_matched": receipt.rows_affected}),
            ).await?;
            false
        } else {
            match self.ledger().record_receipt(&receipt, retryable).await {
                Ok(recorded) => recorded,
                // The source has the change and its receipt; only the ledger missed it. Never a
                // plain storage error: a retry or `reconcile` recovers it from the source receipt.
                Err(e) if receipt.source_database_mutated => {
                    return Err(Error::ledger(
                        "RECONCILIATION_REQUIRED",
                        format!(
                            "the source committed proposal {}'s change but the ledger could not record it ({e}); run `synapsor-runner reconcile` or apply again once the ledger is writable",
                            p.proposal_id
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        };
        let mut receipt = receipt;
        if !recorded && !opts.dry_run && receipt.status == "applied" {
            // Another attempt already recorded the application; this one changed nothing.
            receipt.status = "already_applied".into();
            receipt.rows_affected = 0;
            receipt.source_database_mutated = false;
            receipt.receipt_hash = receipt.compute_hash();
        }
        Ok(ApplyOutcome {
            receipt,
            executor: executor.to_string(),
            dry_run: opts.dry_run,
            recorded,
            retryable,
        })
    }

    /// Apply through an app-owned executor (HTTP handler, command, or in-process callback).
    async fn apply_app_owned(
        &self,
        job: &WritebackJob,
        p: &StoredProposal,
        cap: &crate::config::Capability,
        executor_type: &str,
        ex_config: Option<&ExecutorConfig>,
        opts: &ApplyOptions,
    ) -> Result<ApplyOutcome> {
        use crate::apply::{app_owned, command_handler::CommandHandler, http_handler::HttpHandler};
        let name = cap.executor_name();
        let ms = |t: &Option<u64>| std::time::Duration::from_millis(t.unwrap_or(5000).max(1));
        let body_cap =
            |b: &Option<u64>| b.unwrap_or(crate::config::DEFAULT_MAX_RESPONSE_BYTES) as usize;
        let (runner, timeout, guarded): (Arc<dyn Executor>, std::time::Duration, bool) =
            match ex_config {
                Some(ExecutorConfig::HttpHandler {
                    url_env,
                    method,
                    auth,
                    signing_secret_env,
                    timeout_ms,
                    max_response_bytes,
                }) => {
                    let t = ms(timeout_ms);
                    let h = HttpHandler {
                        given: self.inner.given_env.clone(),
                        url_env: url_env.clone(),
                        method: method.clone().unwrap_or_else(|| "POST".into()),
                        token_env: auth.as_ref().map(|a| a.token_env.clone()),
                        signing_secret_env: signing_secret_env.clone(),
                        timeout: t,
                        max_response_bytes: body_cap(max_response_bytes),
                    };
                    (Arc::new(h), t, false)
                }
                Some(ExecutorConfig::CommandHandler {
                    command_env,
                    timeout_ms,
                    max_response_bytes,
                }) => {
                    let t = ms(timeout_ms);
                    (
                        Arc::new(CommandHandler {
                            given: self.inner.given_env.clone(),
                            command_env: command_env.clone(),
                            timeout: t,
                            max_response_bytes: body_cap(max_response_bytes),
                        }),
                        t,
                        false,
                    )
                }
                Some(ExecutorConfig::InProcess { timeout_ms }) => {
                    let registered = self
                        .inner
                        .executors
                        .read()
                        .expect("executor registry")
                        .get(name)
                        .cloned();
                    let Some(callback) = registered else {
                        return Err(Error::Executor {
                            code: "EXECUTOR_NOT_REGISTERED",
                            message: format!("no in-process executor is registered under {name}"),
                        });
                    };
                    let writer = self
                        .config()
                        .sources
                        .get(&cap.source)
                        .map(|s| s.has_writer())
                        .unwrap_or(false);
                    (callback, ms(timeout_ms), writer)
                }
                _ => {
                    return Err(Error::Executor {
                        code: "EXECUTOR_UNSUPPORTED",
                        message: format!("executor type {executor_type} cannot run here"),
                    });
                }
            };
        let plan = if guarded {
            self.inner.sources.get(&cap.source)?.check_writer()?;
            let before_columns: Vec<String> = p.change_set.before.keys().cloned().collect();
            Some(apply::sql_update::plan_for(job, cap, &before_columns)?)
        } else {
            None
        };
        if !opts.dry_run {
            self.ledger()
                .prepare_job(job, executor_type, &opts.runner_id)
                .await?;
        }
        let ej = app_owned::executor_job(&p.change_set, job, name, opts.dry_run);
        let out = if let Some(plan) = &plan {
            let source = self.inner.sources.get(&cap.source)?;
            app_owned::run_guarded(&source, runner.as_ref(), &ej, job, plan, timeout, opts).await?
        } else {
            app_owned::run_detached(runner.as_ref(), &ej, job, timeout, opts).await
        };
        let outcome = self
            .finish_apply(p, job, out.receipt, executor_type, out.retryable, opts)
            .await?;
        match out.callback_error {
            Some(e) => Err(Error::Callback(e)),
            None => Ok(outcome),
        }
    }

    /// `doctor --check-writeback`: probe the writer of one source (nothing is committed).
    pub async fn probe_writeback(&self, source: &str) -> Result<String> {
        self.inner.sources.get(source)?.probe_writeback().await
    }

    /// Everything captured for a proposal, in order.
    pub async fn replay(&self, proposal_id: &str) -> Result<Value> {
        self.ledger().replay(proposal_id).await
    }
}
