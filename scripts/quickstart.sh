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

echo "== potluck get-historical-features (training data for the labelled events)"
potluck get-historical-features --entity-df data/labels.parquet --feature-service fraud_model_v1 --output data/training.parquet
python - <<'PY'
import pandas as pd

from potluck import FeatureStore

store = FeatureStore(repo_path=".")
training = store.get_historical_features(
    entity_df=pd.read_parquet("data/labels.parquet"),
    features=store.get_feature_service("fraud_model_v1"),
).to_df()
print(training.head())
print("shape:", training.shape)
PY

echo "== potluck materialize-incremental now"
potluck materialize-incremental now --no-progress
echo "== potluck feature-views list"
potluck feature-views list
echo "== potluck get-online-features"
potluck get-online-features --feature-service fraud_model_v1 -e user_id=1 -e merchant_id=3 -e user_id=2 -e merchant_id=4
python - <<'PY'
from potluck import FeatureStore

store = FeatureStore(repo_path=".")
response = store.get_online_features(
    features=["user_stats:txn_count_7d", "user_stats:avg_amount_30d", "merchant_stats:risk_score"],
    entity_rows=[{"user_id": 1, "merchant_id": 3}, {"user_id": 999999, "merchant_id": 4}],
)
print(response.to_dict())
PY
echo "== potluck freshness --max-staleness 24h"
potluck freshness --max-staleness 24h
