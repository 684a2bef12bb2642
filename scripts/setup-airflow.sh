#!/usr/bin/env bash
# Create .venv-airflow: Airflow 3.x and this checkout of Potluck (editable, with the monitoring extra),
# in a virtual environment of their own, since Airflow pins many packages. Used by the Airflow tests.
# Idempotent: an environment that has Airflow 3 and imports potluck from this checkout is left alone.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AIRFLOW_VENV:-${HERE}/.venv-airflow}"  # AIRFLOW_VENV: another folder for it
PYTHON="${PYTHON:-python3}"
SPEC="${AIRFLOW_SPEC:-apache-airflow>=3,<4}"

has_airflow() {
  "${VENV}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(not m.version('apache-airflow').startswith('3.'))" 2>/dev/null
}
has_potluck() {  # potluck imported from this checkout's src/
  "${VENV}/bin/python" -c "import potluck, sys; sys.exit(not potluck.__file__.startswith('${HERE}/src/'))" 2>/dev/null
}
quiet() { grep -v 'is ignored: it is neither a file nor a directory' || true; }

if [[ -x "${VENV}/bin/airflow" ]] && has_airflow && has_potluck; then
  echo "airflow $("${VENV}/bin/airflow" version 2>/dev/null | tail -1) already installed in ${VENV}"
  exit 0
fi
start=$(date +%s)
[[ -x "${VENV}/bin/python" ]] || "${PYTHON}" -m venv "${VENV}"
if ! has_airflow; then
  "${VENV}/bin/python" -m pip install --quiet --upgrade pip 2>&1 | quiet
  "${VENV}/bin/python" -m pip install --quiet "${SPEC}" 2>&1 | quiet
fi
# Potluck's own requirements are resolved together with Airflow's (no constraints file is needed).
"${VENV}/bin/python" -m pip install --quiet -e "${HERE}[monitoring]" 2>&1 | quiet
has_airflow && has_potluck || { echo "setup-airflow: the install in ${VENV} is incomplete" >&2; exit 1; }
echo "installed airflow $("${VENV}/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))') into ${VENV} in $(( $(date +%s) - start ))s"
