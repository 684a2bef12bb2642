#!/usr/bin/env bash
# The quickstart: a demo feature repository on the embedded defaults, end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

rm -rf demo
echo "== potluck init demo"
potluck init demo
cd demo
echo "== potluck plan"
potluck plan
echo "== potluck apply"
potluck apply
echo "== potluck apply (again: nothing to do)"
potluck apply
echo "== potluck feature-views list"
potluck feature-views list
echo "== potluck feature-services describe fraud_model_v1"
potluck feature-services describe fraud_model_v1
echo "== potluck registry history"
potluck registry history
