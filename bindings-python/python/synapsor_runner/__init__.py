"""synapsor_runner: reviewed database capabilities for AI agents, in-process.

The agent gets scoped reads (``inspect``) and proposals (``propose``); tenant and principal
come from your application's session (``context=``), never from the model. Approval and
``apply`` happen outside the model. Every call is awaitable and runs on the Rust runtime.

    runner = await Runner.open("synapsor.runner.json", ledger=".synapsor/local.db")
    read = await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"},
                                context={"tenant_id": "acme", "principal": "user_17"})
"""

from __future__ import annotations

import inspect as _inspect
import os
from typing import Any, Awaitable, Callable, Literal, Mapping, Protocol, TypedDict, TypeVar, Union

from . import _native
from ._native import (
    ApprovalError,
    ConfigError,
    ConflictError,
    ExecutorError,
    NotFoundError,
    PolicyError,
    RuntimeForkedError,
    SynapsorError,
    SyncTransaction,
    Transaction,
    UnavailableError,
)

__version__: str = _native.__version__

__all__ = [
    "Runner",
    "Context",
    "Transaction",
    "SyncTransaction",
    "SynapsorError",
    "ConfigError",
    "PolicyError",
    "NotFoundError",
    "ConflictError",
    "ApprovalError",
    "ExecutorError",
    "UnavailableError",
    "RuntimeForkedError",
    "ExecutorJob",
    "ExecutorReceipt",
    "HandlerRequest",
    "HandlerChangeSet",
    "ColumnValue",
    "SyncExecutor",
    "AsyncExecutor",
    "Executor",
    "__version__",
]

#: Trusted context for one call: ``{"tenant_id": ..., "principal": ...}`` from your app's auth.
Context = Mapping[str, str]
AliasMode = Literal["canonical", "openai", "both"]
JsonDict = dict[str, Any]
PathLike = Union[str, "os.PathLike[str]"]

#: A scalar a column holds or a patch writes.
Scalar = Union[str, int, float, bool, None]


class ColumnValue(TypedDict):
    """A column and its value (tenant guard, expected version, primary key)."""

    column: str
    value: Scalar


class ChangeSetScope(TypedDict):
    tenant_id: str
    object_id: str


class ChangeSetPrincipal(TypedDict):
    id: str
    source: str


class ChangeSetTarget(TypedDict):
    schema: str
    table: str
    primary_key: ColumnValue


class ChangeSetGuards(TypedDict):
    tenant: ColumnValue
    allowed_columns: list[str]
    expected_version: ColumnValue


class ChangeSetEvidence(TypedDict):
    bundle_id: str
    query_fingerprint: str


class HandlerChangeSet(TypedDict):
    """``change_set`` of the handler request: what the reviewer approved, exactly."""

    action: str
    scope: ChangeSetScope
    principal: ChangeSetPrincipal
    target: ChangeSetTarget
    before: dict[str, Any]
    patch: dict[str, Scalar]
    after: dict[str, Any]
    guards: ChangeSetGuards
    evidence: ChangeSetEvidence


class HandlerRequest(TypedDict):
    """The ``synapsor.handler-writeback.v1`` request every app-owned executor receives."""

    protocol_version: str
    schema_version: str
    proposal_id: str
    proposal_version: int
    proposal_hash: str
    writeback_job_id: str
    idempotency_key: str
    issued_at: str
    dry_run: bool
    executor: str
    change_set: HandlerChangeSet


class ExecutorJob(TypedDict):
    """What an in-process executor receives; ``change_set`` is ``request["change_set"]``."""

    executor: str
    proposal_id: str
    writeback_job_id: str
    idempotency_key: str
    dry_run: bool
    request: HandlerRequest
    change_set: HandlerChangeSet


class _ReceiptStatus(TypedDict):
    status: str


class ExecutorReceipt(_ReceiptStatus, total=False):
    """What an executor returns: ``status`` (applied, already_applied, conflict, failed) and,
    for ``applied``, what it changed."""

    rows_affected: int
    source_database_mutated: bool
    new_version: Any
    safe_error_code: str
    details: dict[str, Any]


class SyncExecutor(Protocol):
    """``def f(job, tx) -> receipt``: runs on a thread of its own, inside the guarded transaction."""

    def __call__(self, job: ExecutorJob, tx: SyncTransaction, /) -> ExecutorReceipt: ...


class AsyncExecutor(Protocol):
    """``async def f(job, tx) -> receipt``: runs on the caller's event loop."""

    def __call__(self, job: ExecutorJob, tx: Transaction, /) -> Awaitable[ExecutorReceipt]: ...


#: An executor: ``def f(job, tx) -> receipt`` or ``async def f(job, tx) -> receipt``.
Executor = Union[SyncExecutor, AsyncExecutor]
E = TypeVar("E", bound=Callable[..., Any])


def _ctx(context: Context | None) -> dict[str, str] | None:
    return None if context is None else dict(context)


class Runner:
    """One config, one ledger, the source pools. Open once per process (after any fork)."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeRunner) -> None:
        self._native = native

    @classmethod
    async def open(
        cls,
        config_path: PathLike,
        *,
        ledger: PathLike | None = None,
        env: Mapping[str, str] | None = None,
        ledger_url_env: str | None = None,
        ledger_schema: str | None = None,
    ) -> "Runner":
        """Load and validate the config (every problem listed in ``ConfigError.issues``) and open the ledger.

        ``env``: values for the variables the config names (connection URLs: ``read_url_env``,
        ``write_url_env``; handlers: ``url_env``, ``token_env``, ``signing_secret_env``,
        ``command_env``), used before ``os.environ``: hand them over from your own secret store
        without setting environment variables.

        ``ledger``: a SQLite ledger file instead of the config's ``storage``.
        ``ledger_url_env`` (and ``ledger_schema``, default ``synapsor``): a PostgreSQL ledger
        shared by every instance of the app, its URL in that variable (looked up in ``env``
        first), instead of the config's ``storage``.
        """
        native = await _native.NativeRunner.open(
            os.fspath(config_path),
            None if ledger is None else os.fspath(ledger),
            None if env is None else dict(env),
            ledger_url_env,
            ledger_schema,
        )
        return cls(native)

    async def inspect(self, capability: str, args: Mapping[str, Any], *, context: Context | None = None) -> JsonDict:
        """Run a read capability: one row in the trusted tenant, evidence recorded."""
        return await self._native.inspect(capability, dict(args), _ctx(context))

    async def propose(self, capability: str, args: Mapping[str, Any], *, context: Context | None = None) -> JsonDict:
        """Create a proposal with an exact before/after diff. The source database does not change."""
        return await self._native.propose(capability, dict(args), _ctx(context))

    async def approve(self, proposal_id: str, *, approver: str, roles: list[str] | tuple[str, ...] = ()) -> JsonDict:
        """Approve outside the model. ``roles`` are the roles your app verified for ``approver``."""
        return await self._native.approve(proposal_id, approver, list(roles))

    async def reject(
        self, proposal_id: str, *, approver: str, reason: str, roles: list[str] | tuple[str, ...] = ()
    ) -> JsonDict:
        """Reject a proposal (terminal). A reason is required."""
        return await self._native.reject(proposal_id, approver, reason, list(roles))

    async def apply(self, proposal_id: str, *, dry_run: bool = False) -> JsonDict:
        """Apply an approved proposal through its executor; returns ``{"receipt": {...}, ...}``.

        An exception raised by an in-process executor rolls everything back and is re-raised here.
        """
        return await self._native.apply(proposal_id, dry_run)

    async def replay(self, proposal_id: str) -> JsonDict:
        """Everything captured for a proposal, in order."""
        return await self._native.replay(proposal_id)

    async def proposals(
        self, *, state: str | None = None, tenant_id: str | None = None, limit: int = 50
    ) -> list[JsonDict]:
        """Newest proposals first, optionally filtered by state and tenant."""
        return await self._native.proposals(state, tenant_id, limit)

    def tools(self, *, alias_mode: AliasMode = "canonical") -> list[JsonDict]:
        """The tools an MCP client would list (name, inputSchema, outputSchema, annotations)."""
        return self._native.tools(alias_mode)

    async def call_tool(self, name: str, args: Mapping[str, Any], *, context: Context | None = None) -> JsonDict:
        """Call a tool by exposed name; returns the result envelope (errors are envelopes too)."""
        return await self._native.call_tool(name, dict(args), _ctx(context))

    async def mcp_handle(
        self, message: Any, *, context: Context | None = None, alias_mode: AliasMode = "canonical"
    ) -> Any:
        """Answer one MCP JSON-RPC message (or batch) under ``context``; ``None`` for notifications.

        Serve it from your own route: your auth decides ``context``, the message body never can.
        """
        return await self._native.mcp_handle(message, _ctx(context), alias_mode)

    def executor(self, name: str) -> Callable[[E], E]:
        """Register an ``in_process`` executor named in the config.

        ``def`` executors get a :class:`SyncTransaction` and run on a worker thread; ``async def``
        executors get a :class:`Transaction` and run on the event loop that called ``apply``.
        Statements run inside the guarded transaction (row locked, version checked, receipt
        claimed); the receipt commits with them.
        """

        def register(func: E) -> E:
            self._native.register_executor(name, func, _inspect.iscoroutinefunction(func))
            return func

        return register

    @property
    def closed(self) -> bool:
        return self._native.closed

    async def close(self) -> None:
        """Release the runner; later calls raise ``SynapsorError`` with code ``RUNNER_CLOSED``."""
        self._native.close()

    async def __aenter__(self) -> "Runner":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
