//! `synapsor-runner`: config, tools preview, inspect, propose, review, apply, replay, demo.

mod audit_client;
mod commands;
mod demo;
mod dispatch;
mod events;
mod handlers;
mod init_cmd;
mod init_wizard;
mod ledger_cmds;
mod mcp_cmds;
mod recipes_cmd;
mod render;
mod sample;
mod schema_cmd;
mod shared;
mod smoke;
mod ui_cmd;
mod up_cmd;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "synapsor-runner", version = synapsor_runner::VERSION, about = "synapsor-runner: reviewed database capabilities for AI agents. Scoped reads and proposals for the model; approval and guarded writeback outside it; replay for everything.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Config file (default: ./synapsor.runner.json)
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Local ledger (default: $SYNAPSOR_LOCAL_STORE, else storage.sqlite_path or .synapsor/local.db beside the config file)
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate or show the config.
    Config {
        #[command(subcommand)]
        action: ConfigCmd,
    },
    /// Preview the tools an MCP client would see, with boundary checks.
    Tools {
        #[command(subcommand)]
        action: ToolsCmd,
    },
    /// Run a read capability once (records evidence and query audit).
    Inspect(CallArgs),
    /// Run a proposal capability once. The source database is not changed.
    Propose(CallArgs),
    /// List, show, approve or reject proposals (outside any model-facing path).
    Proposals {
        #[command(subcommand)]
        action: ProposalsCmd,
    },
    /// Apply an approved proposal through its executor (or a writeback job file).
    Apply(ApplyArgs),
    /// Show everything captured for a proposal.
    Replay {
        #[command(subcommand)]
        action: Option<ReplayCmd>,
        /// Proposal id or `latest` (same as `replay show`)
        selector: Option<String>,
        /// Show the evidence, query audit and events in full
        #[arg(long)]
        details: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Serve the reviewed capabilities over MCP.
    Mcp {
        #[command(subcommand)]
        action: McpCmd,
    },
    /// Starter app-owned writeback handlers.
    Handler {
        #[command(subcommand)]
        action: HandlerCmd,
    },
    /// Check the local setup without applying anything.
    Doctor {
        /// Check app-owned executors: env vars present, handler URL reachable, command found
        #[arg(long)]
        check_handlers: bool,
        /// Check direct-SQL writers: connectivity and receipt-table permissions (rolled-back probe)
        #[arg(long, alias = "check-db")]
        check_writeback: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print the source-side receipt table DDL.
    Writeback {
        #[command(subcommand)]
        action: WritebackCmd,
    },
    /// Static MCP risk audit of a tools list, manifest, our own config, or a live server.
    Audit(AuditArgs),
    /// Deterministic fixture benchmarks (`mcp-efficiency`).
    Benchmark {
        /// mcp-efficiency
        name: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Settle proposals stuck in pending_worker (a crashed or killed apply, a ledger write that
    /// failed) from the source database's own receipts.
    Reconcile {
        /// Also release jobs whose lease has not passed yet (only when no apply is running)
        #[arg(long)]
        force: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Check a writeback job file against the protocol (nothing is applied).
    Validate {
        /// Writeback job JSON file
        #[arg(long)]
        job: Option<PathBuf>,
    },
    /// Call one tool once through the MCP server's own path, to check a setup end to end.
    Smoke {
        #[command(subcommand)]
        action: SmokeCmd,
    },
    /// Search everything the ledger recorded: proposals, reads' evidence and query audit.
    Activity {
        #[command(subcommand)]
        action: ActivityCmd,
    },
    /// The proposal events the ledger recorded: print them, follow them, or push them to a webhook.
    Events {
        #[command(subcommand)]
        action: EventsCmd,
    },
    /// Evidence bundles recorded by reads and proposals.
    Evidence {
        #[command(subcommand)]
        action: EvidenceCmd,
    },
    /// The query-audit trail of every source read (parameters are never stored).
    #[command(name = "query-audit")]
    QueryAudit {
        #[command(subcommand)]
        action: QueryAuditCmd,
    },
    /// Execution receipts recorded in the ledger.
    Receipts {
        #[command(subcommand)]
        action: ReceiptsCmd,
    },
    /// Write a reviewed starter config for one table from a live database (or a saved
    /// inspection): a read capability and, with --patch, a proposal capability. With no
    /// --from-env, --sqlite or --inspection-json on a terminal, it asks, with the database's
    /// suggestions pre-selected, shows the config and the equivalent command, then writes it.
    Init(InitArgs),
    /// The local review page: proposals, their story (evidence, exact diff, guards), approve and
    /// reject, on loopback behind a per-run token. It never applies a change.
    Ui(UiArgs),
    /// The review-mode checklist (tools, writeback paths, handler variables, how to serve);
    /// with --serve, start the Streamable HTTP MCP server after it.
    Up(UpArgs),
    /// init, then the first-run checks: the config validates, the tools pass the boundary
    /// checks, and (with --smoke-id) one read works through the MCP path.
    Onboard {
        #[command(subcommand)]
        action: OnboardCmd,
    },
    /// Starter recipes (late-fee waiver, ticket resolution, refund review, …): list, show, or
    /// write a config from one.
    Recipes {
        #[command(subcommand)]
        action: RecipesCmd,
    },
    /// Look at a database's tables and columns (metadata only, never rows) to write a config.
    Schema {
        #[command(subcommand)]
        action: SchemaCmd,
    },
    /// Look after the local ledger file.
    Store {
        #[command(subcommand)]
        action: StoreCmd,
    },
    /// Walk through the whole lifecycle on an embedded SQLite database (no server needed).
    Demo {
        #[command(subcommand)]
        action: Option<DemoCmd>,
        /// Folder for the demo source, config and ledger
        #[arg(long, default_value = ".synapsor/demo")]
        dir: PathBuf,
        /// Only seed a small fixture ledger (.synapsor/quick-demo.db) with one pending proposal
        #[arg(long)]
        quick: bool,
        /// With --quick: explain each part
        #[arg(long)]
        details: bool,
        /// With --quick: print a JSON summary
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DemoCmd {
    /// Seed the quick-demo ledger again and list the commands that look into it.
    Inspect {
        /// Print the commands as npx runs them
        #[arg(long)]
        npx: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Validate the config and list every problem with its JSON path.
    Validate {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print the config as JSON.
    Show {
        /// Mask credential-like values (connection URLs, bearer tokens, passwords); the names of
        /// environment variables stay readable
        #[arg(long)]
        redacted: bool,
    },
    /// Bring the config to the current format (version 1 is the only one, so nothing changes).
    Migrate,
    /// Print the JSON Schema every config is checked against (for editors: save it and point
    /// the config's "$schema" at the file).
    Schema,
}

#[derive(Subcommand, Debug)]
pub enum ToolsCmd {
    /// Show the tools an MCP client would see, with the boundary checks.
    #[command(alias = "list")]
    Preview {
        /// canonical | openai | both
        #[arg(long, default_value = "canonical")]
        alias_mode: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct CallArgs {
    /// Capability name, e.g. billing.inspect_invoice
    pub capability: String,
    /// JSON file with the arguments
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Inline JSON arguments (output stays human-readable)
    #[arg(long)]
    pub args: Option<String>,
    /// JSON output; with a value, the value is also the inline arguments (as in the reference)
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub json: Option<String>,
    /// Made-up arguments for a first try (an invoice id such as INV-3001, a reason, …)
    #[arg(long)]
    pub sample: bool,
}

#[derive(Subcommand, Debug)]
pub enum ProposalsCmd {
    /// List proposals, newest first.
    List {
        /// Only proposals in this state: pending_review, approved, pending_worker, applied, rejected, conflict, failed, canceled
        #[arg(long)]
        state: Option<String>,
        /// Only proposals of this tenant
        #[arg(long)]
        tenant: Option<String>,
        /// Most proposals listed (1 to 200)
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show one proposal: diff, guards, evidence, approval state.
    Show {
        /// Proposal id or `latest`
        selector: String,
        /// Show the evidence, query audit and events in full
        #[arg(long)]
        details: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print (or write) the writeback job an apply of an approved proposal would run.
    #[command(name = "writeback-job")]
    WritebackJob {
        /// Proposal id or `latest`
        selector: String,
        /// How long the job's lease lasts, in seconds
        #[arg(long, default_value_t = 300)]
        lease_seconds: i64,
        /// Write the job to this file instead of printing it
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Approve a proposal (role-checked; outside any model-facing path).
    Approve(DecideArgs),
    /// Reject a proposal with a reason.
    Reject(DecideArgs),
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    /// Proposal id or `latest`
    pub selector: String,
    /// Skip the interactive confirmation
    #[arg(long)]
    pub yes: bool,
    /// Approver identity (default: $SYNAPSOR_OPERATOR, else the OS user)
    #[arg(long = "as", alias = "actor")]
    pub as_id: Option<String>,
    /// A role the approver holds (repeatable; default: $SYNAPSOR_OPERATOR_ROLES)
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Why (recorded with the decision; required to reject)
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Proposal id or `latest`
    pub selector: Option<String>,
    /// Apply a writeback job JSON file instead of a stored proposal
    #[arg(long)]
    pub job: Option<PathBuf>,
    /// Rehearse in a rolled-back transaction; the proposal stays approved
    #[arg(long)]
    pub dry_run: bool,
    /// Runner id recorded on receipts (default: $SYNAPSOR_RUNNER_ID or local_runner)
    #[arg(long)]
    pub runner: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

// Parsed once per process; boxing the filters would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ReplayCmd {
    /// List replays (one per proposal), newest first.
    List {
        #[command(flatten)]
        filter: ListArgs,
        #[command(flatten)]
        proposals: ProposalFilterArgs,
    },
    /// Write a proposal's replay to a file.
    Export {
        /// Proposal id or `latest`
        selector: Option<String>,
        /// Proposal id (same as the positional argument)
        #[arg(long)]
        proposal: Option<String>,
        /// File to write
        #[arg(long, alias = "out")]
        output: Option<PathBuf>,
        /// json | markdown
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Show everything captured for a proposal, in order.
    Show {
        /// Proposal id, `replay_<proposal id>`, or `latest`
        selector: Option<String>,
        /// Proposal id (same as the positional argument)
        #[arg(long)]
        proposal: Option<String>,
        /// Replay id (`replay_<proposal id>`)
        #[arg(long)]
        replay: Option<String>,
        /// An evidence bundle of the proposal (`ev_…`)
        #[arg(long)]
        evidence: Option<String>,
        /// Show the evidence, query audit and events in full
        #[arg(long)]
        details: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum McpCmd {
    /// MCP over stdio (an MCP client launches this command).
    Serve {
        /// canonical | openai | both
        #[arg(long, default_value = "canonical")]
        alias_mode: String,
        /// Read environment variables (KEY=VALUE lines) from this file before starting, for
        /// clients that cannot pass or expand them (Claude Desktop)
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// MCP over Streamable HTTP (bearer auth, Host/Origin allowlists, limits, rate limit).
    ServeStreamableHttp(HttpServeArgs),
    /// Print an MCP client config snippet: claude-desktop, cursor, vscode, generic-stdio.
    #[command(alias = "config", alias = "client-config")]
    Configure(ConfigureArgs),
    /// Print the SHA-256 of a bearer token (read from an env var) for a --tokens-file entry.
    HashToken {
        /// Environment variable holding the token to hash
        #[arg(long)]
        from_env: String,
    },
    /// Same as `synapsor-runner audit`.
    Audit(AuditArgs),
}

#[derive(Args, Debug)]
pub struct ConfigureArgs {
    /// claude-desktop | cursor | vscode | generic-stdio
    pub client: String,
    /// stdio | streamable-http (Cursor, VS Code and generic; Claude Desktop adds remote servers
    /// in its own settings)
    #[arg(long, default_value = "stdio")]
    pub transport: String,
    /// Tool names: openai (default; `billing__inspect_invoice`, accepted by every client) |
    /// canonical (dotted, `billing.inspect_invoice`) | both
    #[arg(long, default_value = "openai")]
    pub alias_mode: String,
    /// Write absolute paths for the binary, --config and --store
    #[arg(long)]
    pub absolute_paths: bool,
    /// Claude Desktop: the env file the server reads its variables from (default: .env.synapsor
    /// beside the config)
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// Host the Streamable HTTP snippet points at
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port the Streamable HTTP snippet points at
    #[arg(long, default_value_t = 8766)]
    pub port: u16,
    /// Variable holding the HTTP server's bearer token (named in the snippet, never its value)
    #[arg(long, default_value = "SYNAPSOR_MCP_HTTP_TOKEN")]
    pub auth_token_env: String,
}

#[derive(Args, Debug)]
pub struct HttpServeArgs {
    /// Address to listen on (loopback by default; any other needs TLS or --plain-http-behind-proxy, and --allowed-host)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one)
    #[arg(long, default_value_t = 8766)]
    pub port: u16,
    /// URL path of the MCP endpoint
    #[arg(long, default_value = "/mcp")]
    pub path: String,
    /// Environment variable holding the bearer token clients must send
    #[arg(long)]
    pub auth_token_env: Option<String>,
    /// JSON file of hashed tokens, each bound to a tenant and principal (host provider)
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// No authentication (loopback only; development)
    #[arg(long)]
    pub dev_no_auth: bool,
    /// Extra accepted Host header values (loopback names are always accepted)
    #[arg(long)]
    pub allowed_host: Vec<String>,
    /// Accepted Origin header values (requests with any other Origin get 403)
    #[arg(long)]
    pub allowed_origin: Vec<String>,
    /// Largest request body accepted, in bytes
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Sessions idle longer than this expire
    #[arg(long, default_value_t = 1800)]
    pub session_idle_secs: u64,
    /// Requests per minute per tenant; every message of a JSON-RPC batch counts
    #[arg(long, default_value_t = 600)]
    pub rate_limit_per_minute: u32,
    /// Most messages in one JSON-RPC batch
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Most open sessions in all
    #[arg(long, default_value_t = 10_000)]
    pub max_sessions: usize,
    /// Most open sessions per tenant
    #[arg(long, default_value_t = 1_000)]
    pub max_sessions_per_tenant: usize,
    /// Most open sessions per credential (token)
    #[arg(long, default_value_t = 100)]
    pub max_sessions_per_credential: usize,
    /// Most open connections in all
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Most open connections from one client address
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers (and finish a TLS handshake)
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body
    #[arg(long, default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Serve TLS with this PEM certificate chain (with --tls-key); needed off loopback
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address, only behind a TLS-terminating proxy
    #[arg(long)]
    pub plain_http_behind_proxy: bool,
    /// Tool names: canonical | openai | both
    #[arg(long, default_value = "canonical")]
    pub alias_mode: String,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// A JSON file, `stdio:<command>`, or an http(s) URL
    pub target: Option<String>,
    /// Built-in example: dangerous-db-mcp
    #[arg(long)]
    pub example: Option<String>,
    /// An MCP client config file (mcpServers) whose servers are audited
    #[arg(long)]
    pub mcp_config: Option<PathBuf>,
    /// A command to start and audit over stdio (same as `stdio:<command>`)
    #[arg(long)]
    pub stdio: Option<String>,
    /// A Streamable HTTP URL to audit (same as giving the URL as target)
    #[arg(long)]
    pub url: Option<String>,
    /// Env var with the bearer token for URL targets (default SYNAPSOR_MCP_AUDIT_BEARER)
    #[arg(long)]
    pub bearer_env: Option<String>,
    /// text | json | markdown
    #[arg(long)]
    pub format: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    /// How long a live target may take to answer, in milliseconds
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

#[derive(Subcommand, Debug)]
pub enum HandlerCmd {
    /// Write a starter handler: node-fastify, python-fastapi, or command.
    Template {
        /// node-fastify | python-fastapi | command
        name: Option<String>,
        /// File to write the template to
        #[arg(long, alias = "out")]
        output: Option<PathBuf>,
        /// Overwrite the file if it exists
        #[arg(long)]
        force: bool,
        /// Print the template instead of writing a file
        #[arg(long)]
        stdout: bool,
        /// List the templates
        #[arg(long)]
        list: bool,
    },
}

/// Filters shared by `evidence list` and `query-audit list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this tenant
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this principal
    #[arg(long)]
    pub principal: Option<String>,
    /// Only this capability
    #[arg(long)]
    pub capability: Option<String>,
    /// Only the records of this proposal
    #[arg(long)]
    pub proposal: Option<String>,
    /// type:id, e.g. invoices:INV-3001 (the business object or table, and the object id)
    #[arg(long)]
    pub object: Option<String>,
    /// The object type alone (overrides the type of --object)
    #[arg(long)]
    pub object_type: Option<String>,
    /// The object id alone (overrides the id of --object)
    #[arg(long)]
    pub object_id: Option<String>,
    /// Only this source
    #[arg(long)]
    pub source: Option<String>,
    /// Only this table (with or without its schema)
    #[arg(long)]
    pub table: Option<String>,
    /// Only this query fingerprint
    #[arg(long)]
    pub query_fingerprint: Option<String>,
    /// Recorded at or after (ISO-8601; a date such as 2026-06-01 works)
    #[arg(long)]
    pub from: Option<String>,
    /// Recorded at or before (ISO-8601)
    #[arg(long)]
    pub to: Option<String>,
    /// At most this many (1 to 200)
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum SmokeCmd {
    /// Call a tool (the only exposed one by default) with sample or given arguments.
    Call {
        /// Tool name as MCP lists it (canonical), e.g. billing.inspect_invoice
        tool: Option<String>,
        /// Made-up arguments (the default when no input is given)
        #[arg(long)]
        sample: bool,
        /// JSON file with the arguments
        #[arg(long)]
        input: Option<PathBuf>,
        /// Inline JSON arguments; also prints the result as JSON
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        json: Option<String>,
    },
}

/// Filters on proposals and what hangs off them (`replay list`, `activity search`).
#[derive(Args, Debug)]
pub struct ProposalFilterArgs {
    /// Only the proposal this evidence bundle belongs to
    #[arg(long)]
    pub evidence: Option<String>,
    /// Only the proposal with this receipt number
    #[arg(long)]
    pub receipt: Option<String>,
    /// Only proposals in this state
    #[arg(long)]
    pub state: Option<String>,
    /// Only proposals with a receipt of this status
    #[arg(long)]
    pub status: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ActivityCmd {
    /// Proposals and the reads not tied to one, newest first.
    Search {
        #[command(flatten)]
        filter: ListArgs,
        #[command(flatten)]
        proposals: ProposalFilterArgs,
        /// Only this replay (replay_<proposal id>)
        #[arg(long)]
        replay: Option<String>,
    },
}

/// Which events, and how to follow them.
#[derive(Args, Debug)]
pub struct EventArgs {
    /// Only the events of this proposal
    #[arg(long)]
    pub proposal: Option<String>,
    /// Only events of this kind (e.g. proposal_created, writeback_applied)
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events by this actor
    #[arg(long)]
    pub actor: Option<String>,
    /// Recorded at or after (ISO-8601)
    #[arg(long)]
    pub from: Option<String>,
    /// Recorded at or before (ISO-8601)
    #[arg(long)]
    pub to: Option<String>,
    /// The newest this many (1 to 200)
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Keep watching for new events until interrupted (Ctrl-C or SIGTERM)
    #[arg(long)]
    pub follow: bool,
    /// How often --follow looks, in milliseconds (at least 250)
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
}

#[derive(Subcommand, Debug)]
pub enum EventsCmd {
    /// Print events, oldest first.
    Tail {
        #[command(flatten)]
        events: EventArgs,
        /// Print each event's payload too
        #[arg(long)]
        details: bool,
        /// Print JSON instead of text (not with --follow)
        #[arg(long)]
        json: bool,
    },
    /// POST each event to a webhook whose URL is read from an environment variable.
    #[command(alias = "push")]
    Webhook {
        #[command(flatten)]
        events: EventArgs,
        /// Environment variable holding the webhook URL
        #[arg(long)]
        url_env: Option<String>,
        /// Not accepted: a URL on the command line ends up in shell history and process lists; use --url-env
        #[arg(long)]
        url: Option<String>,
        /// Environment variable holding a bearer token for the webhook
        #[arg(long)]
        auth_token_env: Option<String>,
        /// Per-request timeout in milliseconds (at least 250)
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// Only events after this event id
        #[arg(long, default_value_t = 0)]
        since_event_id: i64,
        /// Print the payloads instead of sending them
        #[arg(long)]
        dry_run: bool,
        /// Print JSON lines instead of text
        #[arg(long)]
        json: bool,
    },
}

// Parsed once per process; boxing the filters would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum EvidenceCmd {
    /// List evidence bundles, newest first.
    List {
        #[command(flatten)]
        filter: ListArgs,
    },
    /// Show one evidence bundle: what it was used for and the rows it captured.
    Show {
        /// Evidence bundle id (ev_…)
        id: String,
        /// Show every field, item and query-audit record
        #[arg(long)]
        details: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write one evidence bundle to a file.
    Export {
        /// Evidence bundle id (ev_…)
        id: String,
        /// File to write
        #[arg(long)]
        output: Option<PathBuf>,
        /// json | markdown
        #[arg(long, default_value = "json")]
        format: String,
    },
}

// Parsed once per process; boxing the filters would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum QueryAuditCmd {
    /// List query-audit records, newest first.
    List {
        #[command(flatten)]
        filter: ListArgs,
        /// Only the records of this evidence bundle
        #[arg(long)]
        evidence: Option<String>,
        /// Only the reads of this primary key value
        #[arg(long)]
        primary_key: Option<String>,
    },
    /// Show one query-audit record.
    Show {
        /// Audit record number
        audit_id: String,
        /// Show the stored payload too
        #[arg(long)]
        details: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write one query-audit record to a file (JSON).
    Export {
        /// Audit record number
        audit_id: String,
        /// File to write
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReceiptsCmd {
    /// List execution receipts, newest first.
    List {
        /// Only the receipts of this proposal
        #[arg(long)]
        proposal: Option<String>,
        /// Only the receipts of this writeback job
        #[arg(long)]
        writeback_job: Option<String>,
        /// Only the receipts with this idempotency key
        #[arg(long)]
        idempotency_key: Option<String>,
        /// applied | already_applied | conflict | failed | canceled
        #[arg(long)]
        status: Option<String>,
        /// Recorded at or after (ISO-8601; a date such as 2026-06-01 works)
        #[arg(long)]
        from: Option<String>,
        /// Recorded at or before (ISO-8601)
        #[arg(long)]
        to: Option<String>,
        /// At most this many (1 to 200)
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show one execution receipt.
    Show {
        /// Receipt number (`1` or `rct_000001`)
        receipt: String,
        /// Show every field of the receipt
        #[arg(long)]
        details: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Environment variable holding the database URL to inspect (postgres://… or mysql://…);
    /// the config reads through it too
    #[arg(long, value_name = "VAR", conflicts_with_all = ["sqlite", "inspection_json"])]
    pub from_env: Option<String>,
    /// A SQLite database file to inspect (with --inspection-json: the file the config points at)
    #[arg(long, value_name = "PATH")]
    pub sqlite: Option<PathBuf>,
    /// A saved `schema inspect --json` output instead of a live database
    #[arg(long, value_name = "FILE")]
    pub inspection_json: Option<PathBuf>,
    /// The table (or view) the capabilities are for
    #[arg(long)]
    pub table: Option<String>,
    /// Its schema (default: the only one holding a table of that name)
    #[arg(long)]
    pub schema: Option<String>,
    /// read_only, shadow or review (proposals applied after approval)
    #[arg(long, default_value = "shadow")]
    pub mode: String,
    /// Lookup key (default: the single-column primary key, else a likely id column)
    #[arg(long)]
    pub primary_key: Option<String>,
    /// Tenant column (default: the first suggested)
    #[arg(long, visible_alias = "tenant-key")]
    pub tenant_column: Option<String>,
    /// No tenant guard: every row visible to every caller (local development only)
    #[arg(long, conflicts_with = "tenant_column")]
    pub single_tenant_dev: bool,
    /// Version column for the conflict guard (default: the first suggested)
    #[arg(long)]
    pub conflict_column: Option<String>,
    /// The table has no version column: guard proposals by a hash of the row instead
    /// (weaker: it cannot tell an edit that was undone from no edit)
    #[arg(
        long,
        visible_alias = "weak-guard-ack",
        conflicts_with = "conflict_column"
    )]
    pub row_hash_guard: bool,
    /// Columns the read shows, comma-separated (default: all but sensitive and large ones)
    #[arg(long, value_delimiter = ',')]
    pub visible_columns: Vec<String>,
    /// What a proposal changes: "col=fixed:value,col=arg:name" (repeatable)
    #[arg(long)]
    pub patch: Vec<String>,
    /// Bounds of a numeric patch column: "col=min:max" (either side may be empty; repeatable)
    #[arg(long, visible_alias = "patch-bounds")]
    pub numeric_bound: Vec<String>,
    /// Allowed transitions of a patch column: "col=from:to|to;from:to" (repeatable)
    #[arg(long, visible_alias = "status-guards")]
    pub transition_guard: Vec<String>,
    /// Tool namespace (default: the object name's first word)
    #[arg(long)]
    pub namespace: Option<String>,
    /// Object name in tool names (default: the table name, singular)
    #[arg(long)]
    pub object_name: Option<String>,
    /// Argument that carries the id (default: <object>_id)
    #[arg(long, visible_alias = "id-arg")]
    pub lookup_arg: Option<String>,
    /// Source name in the config (default: local_<engine>)
    #[arg(long)]
    pub source_name: Option<String>,
    /// Variable for the writer's URL in review mode (default: SYNAPSOR_DATABASE_WRITE_URL)
    #[arg(long, value_name = "VAR")]
    pub write_url_env: Option<String>,
    /// Variable holding the trusted tenant (default: SYNAPSOR_TENANT_ID)
    #[arg(long, value_name = "VAR", default_value = "SYNAPSOR_TENANT_ID")]
    pub tenant_env: String,
    /// Variable holding the trusted principal (default: SYNAPSOR_PRINCIPAL)
    #[arg(long, value_name = "VAR", default_value = "SYNAPSOR_PRINCIPAL")]
    pub principal_env: String,
    /// Role an approver must hold
    #[arg(long, default_value = "local_reviewer")]
    pub approval_role: String,
    /// Where to write the config (an .env.example is written beside it)
    #[arg(long, visible_alias = "out", default_value = "synapsor.runner.json")]
    pub output: PathBuf,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// Print the config instead of writing anything
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct UiArgs {
    /// Address to listen on (loopback unless --allow-remote-bind)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Allow a non-loopback --host (a trusted local-network demo only)
    #[arg(long)]
    pub allow_remote_bind: bool,
    /// Open the page with the desktop's opener
    #[arg(long)]
    pub open: bool,
    /// The reviewer's id (default: $SYNAPSOR_OPERATOR, else the OS user)
    #[arg(long = "as", value_name = "ID")]
    pub as_id: Option<String>,
    /// A role the reviewer holds (repeatable; default: $SYNAPSOR_OPERATOR_ROLES; none otherwise)
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Only this tenant's proposals
    #[arg(long)]
    pub tenant: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// stdio (launched by an MCP client) or streamable-http (default with --serve)
    #[arg(long)]
    pub transport: Option<String>,
    /// Start the Streamable HTTP server after the checklist
    #[arg(long)]
    pub serve: bool,
    /// Print the checklist only, even with --serve
    #[arg(long)]
    pub dry_run: bool,
    /// Print the checklist as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub http: HttpServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum OnboardCmd {
    /// Your own database: init's flags, then the checks.
    Db {
        #[command(flatten)]
        init: InitArgs,
        /// An id to read once through the new read capability
        #[arg(long)]
        smoke_id: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RecipesCmd {
    /// The built-in recipes.
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// One recipe: its table, tools, required columns and notes.
    Show {
        /// A built-in recipe's id, or a recipe JSON file
        recipe: String,
        /// Print the whole recipe as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a config (and .env.example) from a recipe, validated before it is written.
    Init {
        /// A built-in recipe's id, or a recipe JSON file
        recipe: String,
        /// postgres or mysql (default: the recipe's)
        #[arg(long)]
        engine: Option<String>,
        /// read_only, shadow or review (default: the recipe's)
        #[arg(long)]
        mode: Option<String>,
        /// Variable holding the reader's URL (default: SYNAPSOR_DATABASE_READ_URL)
        #[arg(long, value_name = "VAR")]
        read_url_env: Option<String>,
        /// Variable holding the writer's URL in review mode (default: SYNAPSOR_DATABASE_WRITE_URL)
        #[arg(long, value_name = "VAR")]
        write_url_env: Option<String>,
        /// Where to write the config
        #[arg(long, visible_alias = "out", default_value = "synapsor.runner.json")]
        output: PathBuf,
        /// Overwrite existing files
        #[arg(long)]
        force: bool,
        /// Print the config instead of writing anything
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SchemaCmd {
    /// Tables and views with their columns, keys, foreign keys and indexes, and what each column
    /// looks like it is for (tenant, version, sensitive, immutable, large). Reads the catalog in
    /// one read-only transaction; business rows are never read.
    Inspect {
        /// Environment variable holding the database URL (postgres://… or mysql://…)
        #[arg(
            long,
            value_name = "VAR",
            required_unless_present = "sqlite",
            conflicts_with = "sqlite"
        )]
        from_env: Option<String>,
        /// A SQLite database file, opened read-only
        #[arg(long, value_name = "PATH")]
        sqlite: Option<std::path::PathBuf>,
        /// Only this schema (the database on MySQL/MariaDB; default: every user schema, or the
        /// URL's database on MySQL/MariaDB)
        #[arg(long)]
        schema: Option<String>,
        /// Only this table or view
        #[arg(long)]
        table: Option<String>,
        /// Statement and connect timeout in milliseconds
        #[arg(long, default_value_t = 3000, value_name = "MS")]
        timeout_ms: u64,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCmd {
    /// Rows in every ledger table and the file's approximate size.
    Stats {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Recompute every proposal's and receipt's digest and check event order, evidence links
    /// and applied states; exits 1 when anything is wrong.
    Check {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the ledger file to reclaim free space.
    Vacuum {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove the evidence and query audit of old reads that no proposal references (a dry run
    /// unless --yes). Proposals and their history are never pruned.
    Prune {
        /// Age of the oldest reads kept: N followed by s, m, h or d (e.g. 30d)
        #[arg(long)]
        older_than: Option<String>,
        /// Only count what would be removed (the default)
        #[arg(long)]
        dry_run: bool,
        /// Remove the rows
        #[arg(long)]
        yes: bool,
        /// Go ahead even though an MCP server holds the ledger
        #[arg(long)]
        force: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Copy a SQLite ledger, whole, into a PostgreSQL ledger (the config's `storage`, or
    /// --to-url-env). Every digest is checked; the copy is one transaction; an empty target is
    /// required, and copying again into the same target does nothing.
    Migrate {
        /// The SQLite ledger file to copy (default: --store, else the config's sqlite_path,
        /// else .synapsor/local.db beside the config)
        #[arg(long)]
        from: Option<std::path::PathBuf>,
        /// The variable holding the target PostgreSQL URL (default: the config's
        /// storage.url_env)
        #[arg(long)]
        to_url_env: Option<String>,
        /// The target schema (default: the config's storage.schema, else synapsor)
        #[arg(long)]
        to_schema: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print least-privilege grants for a PostgreSQL ledger: an owner role that creates and
    /// migrates the schema, and the runner's role that uses it (nothing is run).
    Grants {
        /// The role the runner connects as
        #[arg(long, default_value = "synapsor_ledger")]
        role: String,
        /// The role that owns the schema and runs migrations
        #[arg(long, default_value = "synapsor_ledger_owner")]
        owner: String,
        /// The ledger's schema (default: the config's storage.schema, else synapsor)
        #[arg(long)]
        schema: Option<String>,
        /// Also let the runner's role run `store prune`
        #[arg(long)]
        prune: bool,
    },
    /// Delete the ledger file (and its -wal and -shm files), or for a PostgreSQL ledger drop
    /// its schema. Everything recorded is lost.
    Reset {
        /// Really delete it
        #[arg(long)]
        yes: bool,
        /// Go ahead even though an MCP server holds the ledger
        #[arg(long)]
        force: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum WritebackCmd {
    /// Check every source that direct-SQL proposals write to: its writer variable and, with
    /// --check-db, the writer's connection and receipt-table permissions (rolled-back probe).
    Doctor {
        /// Connect with each writer and probe the receipt table
        #[arg(long)]
        check_db: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print the receipt-table DDL.
    Migration {
        /// postgres | mysql | sqlite
        #[arg(long)]
        engine: String,
    },
    /// Print least-privilege grants for the writer role on the receipt table.
    Grants {
        /// postgres | mysql | sqlite
        #[arg(long)]
        engine: String,
        /// PostgreSQL role, or MySQL account as written in GRANT (e.g. 'synapsor_writer'@'%')
        #[arg(long, default_value = "synapsor_writer")]
        writer_role: String,
        /// PostgreSQL schema (default public) or MySQL database
        #[arg(long)]
        schema: Option<String>,
    },
}

/// Exit codes, the same for every command (see docs/cli.md).
pub mod exit {
    /// Done (for `apply`: applied, already applied, or a dry run that would apply).
    pub const OK: u8 = 0;
    /// Refused or failed for good: bad config or argument, missing approval, a failed write
    /// that retrying will not fix.
    pub const ERROR: u8 = 1;
    /// The command line itself is wrong (unknown flag, missing argument).
    pub const USAGE: u8 = 2;
    /// `apply`: the row changed since the proposal (conflict); nothing was written.
    pub const CONFLICT: u8 = 3;
    /// A database, handler or the ledger is unavailable for now; the same command may succeed later.
    pub const RETRYABLE: u8 = 4;
    /// What happened is not known for sure; run `reconcile` before anything else.
    pub const RECONCILE: u8 = 5;
}

/// A broken pipe (`| head`) or a closed stdout ends the command quietly instead of with a panic.
fn quiet_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") {
            std::process::exit(exit::ERROR.into());
        }
        default(info);
    }));
}

/// The reference's spelling of schema inspection, `inspect --from-env VAR …`, read as
/// `schema inspect --from-env VAR …` (plain `inspect` runs a read capability).
fn reference_spellings(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let from_env = args
        .iter()
        .any(|a| a == "--from-env" || a.to_string_lossy().starts_with("--from-env="));
    if from_env && args.get(1).is_some_and(|a| a == "inspect") {
        args.insert(1, "schema".into());
    }
    args
}

fn main() {
    quiet_on_closed_stdout();
    let cli = Cli::parse_from(reference_spellings(std::env::args_os().collect()));
    // The HTTP server serves concurrent clients on every core; one-shot commands stay lean.
    let multi = matches!(
        cli.command,
        Command::Mcp {
            action: McpCmd::ServeStreamableHttp(_)
        }
    );
    let mut builder = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error[INTERNAL]: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(dispatch::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            match &e {
                synapsor_runner::Error::Config(issues) => {
                    eprintln!(
                        "error[CONFIG_INVALID]: Invalid Synapsor runner config ({} problem{}):",
                        issues.len(),
                        if issues.len() == 1 { "" } else { "s" }
                    );
                    for i in issues {
                        eprintln!("  {} {}: {}", i.path, i.code, i.message);
                    }
                }
                other => eprintln!("error[{}]: {}", other.code(), other),
            }
            if e.code() == "RECONCILIATION_REQUIRED" {
                exit::RECONCILE
            } else if e.retryable() {
                exit::RETRYABLE
            } else {
                exit::ERROR
            }
        }
    };
    // Everything durable is committed by now (ledger rows, source transactions). Exiting without
    // tearing down pools and the runtime saves several milliseconds per one-shot command; idle
    // PostgreSQL connections treat the closed socket as a normal disconnect.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code.into())
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every subcommand says what it does and every flag what it takes (`--help` is never empty).
    #[test]
    fn every_subcommand_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("{p}: no description"));
                }
                for arg in sub.get_arguments() {
                    let id = arg.get_id().as_str();
                    if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                        missing.push(format!("{p} {id}: no help"));
                    }
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "synapsor-runner", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
