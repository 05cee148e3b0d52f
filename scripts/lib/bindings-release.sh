# Sourced by the binding benchmarks: local PostgreSQL, the release wheel in a virtualenv
# ($VENV) and the release Node addon, built from this checkout.
SYNAPSOR_SKIP_MARIADB=1 bash scripts/services.sh
export SYNAPSOR_TEST_PG_URL="${SYNAPSOR_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
VENV="$PWD/target/py-binding-venv"
source scripts/lib/py-venv.sh
py_venv "$VENV"
WHEELS="$PWD/target/wheels/python-release"; rm -rf "$WHEELS"
(cd bindings-python && "$VENV/bin/maturin" build --quiet --release --features bench --interpreter "$VENV/bin/python" -o "$WHEELS")
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$WHEELS"/synapsor_runner-*.whl
source scripts/lib/npm.sh
npm_install bindings-node
# The benchmark hooks are not part of the typed API: their typings go to a scratch file.
(cd bindings-node && npm run --silent build:release -- --features bench --no-js --dts ../target/bench-index.d.ts >/dev/null)
