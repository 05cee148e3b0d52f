#!/usr/bin/env bash
# The billing app-owned writeback demo against a local PostgreSQL (no Docker): propose an
# account credit, verify the source is unchanged, approve, apply through the app's HTTP
# handler, verify exactly one credit row, retry (already applied), replay.
#
# HANDLER_SCRIPT=path.mjs runs another handler with the same contract (the compatibility test
# uses the reference's own). SYNAPSOR_RUNNER_BIN overrides the binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLE="$ROOT/examples/mcp-postgres-billing-app-handler"
CONFIG="$EXAMPLE/synapsor.runner.json"
WORK="$(mktemp -d)"
STORE="$WORK/local.db"
HANDLER="${HANDLER_SCRIPT:-$EXAMPLE/app-handler.mjs}"
ADMIN="${SYNAPSOR_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BASE="${ADMIN%/*}"
HOSTPORT="${ADMIN#*@}"; HOSTPORT="${HOSTPORT%%/*}"
DB="synapsor_billing_demo_$$"

if [[ -z "${SYNAPSOR_RUNNER_BIN:-}" ]]; then
  (cd "$ROOT" && cargo build -q -p synapsor-runner-cli)
  BIN="$ROOT/target/debug/synapsor-runner"
else
  BIN="$SYNAPSOR_RUNNER_BIN"
fi

cleanup() {
  if [[ -n "${HANDLER_PID:-}" ]]; then kill "$HANDLER_PID" 2>/dev/null || true; wait "$HANDLER_PID" 2>/dev/null || true; fi
  psql "$ADMIN" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

SYNAPSOR_SKIP_MARIADB=1 bash "$ROOT/scripts/services.sh"
# One install at a time: concurrent demo runs (the test suite runs two) would otherwise both
# install into the same node_modules, and a handler could start against a half-written one.
(
  flock 9
  [[ -d "$EXAMPLE/node_modules/pg" ]] || (cd "$EXAMPLE" && npm install --no-audit --no-fund --silent)
) 9>"${TMPDIR:-/tmp}/synapsor-billing-demo-npm.lock"

source "$ROOT/scripts/lib/billing-db.sh"
billing_db_create "$DB" "$EXAMPLE"
count() { psql "$BASE/$DB" -Atc "$1"; }

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export BILLING_APP_READ_URL="postgres://synapsor_reader:synapsor_reader_password@$HOSTPORT/$DB"
export BILLING_APP_WRITE_URL="postgres://synapsor_writer:synapsor_writer_password@$HOSTPORT/$DB"
export BILLING_APP_HANDLER_URL="http://127.0.0.1:$PORT/synapsor/writeback"
export BILLING_APP_HANDLER_PORT="$PORT"
export BILLING_APP_HANDLER_TOKEN="dev-handler-token"
export BILLING_APP_HANDLER_SIGNING_SECRET="dev-handler-signing-secret"
export SYNAPSOR_TENANT_ID="acme"
export SYNAPSOR_PRINCIPAL="local_billing_operator"

# The handler resolves its pg dependency from the example's node_modules.
if [[ "$HANDLER" != "$EXAMPLE/"* ]]; then ln -sfn "$EXAMPLE/node_modules" "$(dirname "$HANDLER")/node_modules"; fi
node "$HANDLER" >"$WORK/handler.log" 2>&1 &
HANDLER_PID=$!
for _ in $(seq 1 50); do
  node -e "fetch('http://127.0.0.1:$PORT/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))" 2>/dev/null && break
  sleep 0.2
done
node -e "fetch('http://127.0.0.1:$PORT/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))" \
  || { echo "the app handler did not come up on port $PORT:" >&2; cat "$WORK/handler.log" >&2; exit 1; }

"$BIN" config validate --config "$CONFIG" >/dev/null
"$BIN" tools preview --config "$CONFIG" --store "$STORE" > "$WORK/tools.txt"
grep -F "billing.propose_account_credit" "$WORK/tools.txt" >/dev/null
grep -F "execute_sql absent" "$WORK/tools.txt" >/dev/null

printf '{"invoice_id":"INV-3001","amount_cents":2500,"reason":"support-approved credit"}\n' > "$WORK/credit-input.json"
"$BIN" propose billing.propose_account_credit --input "$WORK/credit-input.json" --config "$CONFIG" --store "$STORE" > "$WORK/propose.txt"
grep -F "Source DB changed:" "$WORK/propose.txt" >/dev/null
grep -F "no" "$WORK/propose.txt" >/dev/null
before="$(count "SELECT count(*) FROM public.account_credits")"
[[ "$before" == "0" ]] || { echo "expected no account credits before approval, got $before" >&2; exit 1; }

"$BIN" proposals approve latest --yes --store "$STORE" >/dev/null
"$BIN" apply latest --config "$CONFIG" --store "$STORE" > "$WORK/apply.txt" || { cat "$WORK/apply.txt" "$WORK/handler.log" >&2; exit 1; }
grep -F "App-owned writeback applied." "$WORK/apply.txt" >/dev/null
grep -F "source database changed by handler: yes" "$WORK/apply.txt" >/dev/null
after="$(count "SELECT count(*) FROM public.account_credits WHERE invoice_id = 'INV-3001' AND amount_cents = 2500")"
[[ "$after" == "1" ]] || { echo "expected one inserted account credit, got $after" >&2; exit 1; }

"$BIN" apply latest --config "$CONFIG" --store "$STORE" > "$WORK/apply-retry.txt"
grep -F "App-owned writeback already applied." "$WORK/apply-retry.txt" >/dev/null
[[ "$(count "SELECT count(*) FROM public.account_credits")" == "1" ]] || { echo "retry inserted a second credit" >&2; exit 1; }

"$BIN" replay show latest --store "$STORE" > "$WORK/replay.txt"
grep -F "billing.propose_account_credit" "$WORK/replay.txt" >/dev/null

# The operator and reviewer commands on the same ledger, as the reference's users script them.
ops() { "$BIN" "$@" --config "$CONFIG" --store "$STORE"; }
ops evidence list | grep -F "capability: billing.propose_account_credit" >/dev/null
ops query-audit list | grep -F "source: " >/dev/null
ops receipts list | grep -F " applied" >/dev/null
ops replay list | grep -F "billing.propose_account_credit" >/dev/null
ops activity search --object invoices:INV-3001 | grep -F "local interaction(s)" >/dev/null
ops events tail | grep -F "proposal_approved" >/dev/null
ops store stats | grep -F "proposals: 1" >/dev/null
ops store check | grep -F "1 proposals checked, 0 problems" >/dev/null
ops up | grep -F "app-owned http_handler" >/dev/null
"$BIN" config show --redacted --config "$CONFIG" | grep -F "read_url_env" >/dev/null

echo "App-owned billing handler demo passed."
echo "Verified: proposal first, source unchanged before approval, account credit inserted by app handler, idempotent retry, replay, and the operator commands on its ledger."
