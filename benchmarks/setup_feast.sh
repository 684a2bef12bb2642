#!/usr/bin/env bash
# Create benchmarks/.venv-feast with the pinned Feast release used for side-by-side runs.
# Idempotent: an existing venv that already has the pinned version is left alone.
set -euo pipefail

FEAST_VERSION="${FEAST_VERSION:-0.67.0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${FEAST_VENV:-${HERE}/.venv-feast}"  # FEAST_VENV: another folder for it
PYTHON="${PYTHON:-python3}"
# FEAST_EXTRAS=spark: also Feast's spark extra (pyspark), for benchmarks/offline_spark.py and spark_materialize.py
EXTRAS="redis,duckdb,aws,postgres${FEAST_EXTRAS:+,${FEAST_EXTRAS}}"
CHECK="import duckdb, redis, ibis, boto3, psycopg, psycopg_pool"
[[ ",${FEAST_EXTRAS:-}," == *",spark,"* ]] && CHECK="${CHECK}, pyspark"

if [[ -x "${VENV}/bin/python" ]] \
   && "${VENV}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('feast') != '${FEAST_VERSION}')" 2>/dev/null \
   && "${VENV}/bin/python" -c "${CHECK}" 2>/dev/null; then
    echo "feast ${FEAST_VERSION} already installed in ${VENV}"
    exit 0
fi

if ! "${PYTHON}" -m pip index versions feast 2>/dev/null | grep -i available | grep -Eq "(^|[ ,])${FEAST_VERSION//./\\.}(,|$)"; then
    echo "feast==${FEAST_VERSION} is not available from the configured package index." >&2
    echo "Versions offered:" >&2
    "${PYTHON}" -m pip index versions feast 2>/dev/null | grep -i 'available' >&2 || true
    exit 1
fi

start=$(date +%s)
[[ -x "${VENV}/bin/python" ]] || "${PYTHON}" -m venv "${VENV}"
quiet() { grep -v 'is ignored: it is neither a file nor a directory' || true; }
"${VENV}/bin/python" -m pip install --quiet --upgrade pip 2>&1 | quiet
# redis: the Redis online store; duckdb: the ibis-based DuckDB offline store; aws: the DynamoDB online store;
# postgres: its PostgreSQL stores.
"${VENV}/bin/python" -m pip install --quiet "feast[${EXTRAS}]==${FEAST_VERSION}" 2>&1 | quiet
echo "installed feast $("${VENV}/bin/python" -c 'import importlib.metadata as m; print(m.version("feast"))') into ${VENV} in $(( $(date +%s) - start ))s"
