# Sourced: py_venv VENV makes the binding's virtualenv at VENV if missing and installs what
# building and testing the wheel needs (maturin, pytest, httpx, the FastAPI example's fastapi,
# uvicorn and uvloop, the official MCP Python SDK that drives its /mcp route, and mypy for the
# typing checks), only when one of them is missing. Idempotent.
py_venv() {
  local venv="$1"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import maturin, pytest, httpx, fastapi, uvicorn, uvloop, mcp.client.streamable_http, mypy' 2>/dev/null \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check \
      'maturin>=1.5,<2' pytest httpx fastapi uvicorn uvloop mcp mypy
}
