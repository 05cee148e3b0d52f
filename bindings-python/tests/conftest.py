"""Fixtures: a throwaway PostgreSQL database per test, loaded with the billing example."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import subprocess
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mcp-postgres-billing-app-handler"
ADMIN = os.environ.get("SYNAPSOR_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BASE = ADMIN.rsplit("/", 1)[0]
HOSTPORT = ADMIN.split("@", 1)[1].split("/", 1)[0]


def psql(url: str, sql: str | None = None, file: str | None = None) -> str:
    cmd = ["psql", url, "-q", "-At", "-v", "ON_ERROR_STOP=1"]
    cmd += ["-c", sql] if sql is not None else ["-f", file]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def run(coro):
    return asyncio.run(coro)


def on_loop(loop, main):
    """Run `main()` to completion on `loop` (a custom event loop), then close it."""
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


class BillingDb:
    def __init__(self, tmp: pathlib.Path):
        self.name = f"synpy_{uuid.uuid4().hex[:12]}"
        self.url = f"{BASE}/{self.name}"
        psql(ADMIN, f"CREATE DATABASE {self.name}")
        for role in ("synapsor_reader", "synapsor_writer"):
            psql(self.url, f"DO $$ BEGIN CREATE ROLE {role} LOGIN PASSWORD '{role}_password'; "
                           "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
        schema = (EXAMPLE / "schema.sql").read_text()
        schema = re.sub(r"(?ms)^DO \$\$.*?^\$\$;", "", schema).replace("synapsor_billing_app_handler", self.name)
        (tmp / "schema.sql").write_text(schema)
        psql(self.url, file=str(tmp / "schema.sql"))
        psql(self.url, file=str(EXAMPLE / "seed.sql"))
        suffix = self.name.upper()
        self.read_env, self.write_env = f"SYNPY_READ_{suffix}", f"SYNPY_WRITE_{suffix}"
        os.environ[self.read_env] = f"postgres://synapsor_reader:x@{HOSTPORT}/{self.name}"
        os.environ[self.write_env] = f"postgres://synapsor_writer:x@{HOSTPORT}/{self.name}"
        self.config = tmp / "synapsor.runner.json"
        self.ledger = tmp / "ledger.db"
        cfg = json.loads((EXAMPLE / "synapsor.runner.json").read_text())
        cfg.pop("storage", None)
        src = cfg["sources"]["billing_postgres"]
        src["read_url_env"], src["write_url_env"] = self.read_env, self.write_env
        # The host application supplies tenant and principal per call.
        cfg["trusted_context"] = {"provider": "host"}
        cfg["contexts"] = {"local_operator": {"provider": "host"}}
        cfg["executors"] = {"billing_inproc": {"type": "in_process", "timeout_ms": 5000}}
        for cap in cfg["capabilities"]:
            if cap["name"] == "billing.propose_account_credit":
                cap["executor"] = "billing_inproc"
        self.config.write_text(json.dumps(cfg, indent=2))

    def sql(self, q: str) -> str:
        return psql(self.url, q)

    def drop(self) -> None:
        os.environ.pop(self.read_env, None)
        os.environ.pop(self.write_env, None)
        psql(ADMIN, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


@pytest.fixture
def billing_db(tmp_path):
    db = BillingDb(tmp_path)
    try:
        yield db
    finally:
        db.drop()


ACME = {"tenant_id": "acme", "principal": "agent:acme"}
GLOBEX = {"tenant_id": "globex", "principal": "agent:globex"}
