"""A demo repository for the UI tests: the `potluck init` demo plus an on-demand view, a changed
view (history with field changes), a materialization, a baseline with two monitoring runs and a
description that tries to inject markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from potluck.repo.template import scaffold
from potluck.store import FeatureStore

HOSTILE = "<script>alert('x')</script>"

ODFV_PY = """\
from potluck import Field, RequestSource, on_demand_feature_view
from potluck.types import Float64

from features import user_stats

amount_request = RequestSource(name="amount_request", schema=[Field(name="amount", dtype=Float64)])


@on_demand_feature_view(
    sources=[user_stats, amount_request],
    schema=[Field(name="amount_ratio", dtype=Float64)],
    mode="python",
)
def amount_vs_average(inputs):
    return {"amount_ratio": [a / (m or 1.0) for a, m in zip(inputs["amount"], inputs["avg_amount_30d"])]}
"""

# Known lineage of this repository: ids and edges exactly.
LINEAGE_NODES = {
    "entity:merchant",
    "entity:user",
    "data_source:amount_request",
    "data_source:merchant_stats_source",
    "data_source:user_stats_source",
    "feature_view:merchant_stats",
    "feature_view:user_stats",
    "on_demand_feature_view:amount_vs_average",
    "feature_service:fraud_model_v1",
}
LINEAGE_EDGES = {
    ("data_source:user_stats_source", "feature_view:user_stats"),
    ("entity:user", "feature_view:user_stats"),
    ("data_source:merchant_stats_source", "feature_view:merchant_stats"),
    ("entity:merchant", "feature_view:merchant_stats"),
    ("feature_view:user_stats", "on_demand_feature_view:amount_vs_average"),
    ("data_source:amount_request", "on_demand_feature_view:amount_vs_average"),
    ("feature_view:user_stats", "feature_service:fraud_model_v1"),
    ("feature_view:merchant_stats", "feature_service:fraud_model_v1"),
}


def build_demo(path: Path, registry: str | None = None) -> FeatureStore:
    """The demo repository with history, materialized rows and monitoring runs; `registry` replaces its URL."""
    repo = scaffold(path, project="uidemo")
    if registry is not None:
        yaml = (repo / "feature_store.yaml").read_text(encoding="utf-8")
        assert "  path: data/registry.db\n" in yaml
        (repo / "feature_store.yaml").write_text(yaml.replace("  path: data/registry.db\n", f"  path: {registry}\n"))
    (repo / "odfv.py").write_text(ODFV_PY, encoding="utf-8")
    store = FeatureStore(repo_path=repo)
    store.apply()
    features = (repo / "features.py").read_text(encoding="utf-8")
    features = features.replace("ttl=timedelta(days=7),", "ttl=timedelta(days=3),")
    features = features.replace(
        'tags={"team": "risk"},\n)\n\nfraud', f'tags={{"team": "risk"}},\n    description="{HOSTILE}",\n)\n\nfraud'
    )
    (repo / "features.py").write_text(features, encoding="utf-8")
    store.apply()
    now = datetime.now(UTC)
    store.materialize(now - timedelta(days=30), now, ["user_stats"])
    start, end = now - timedelta(days=14), now - timedelta(days=7)
    store.set_baseline("users", store.compute_statistics("user_stats", start, end))
    store.run_monitoring(["users"], start=now - timedelta(days=7), end=now)
    store.run_monitoring(["users"], start=now - timedelta(days=3), end=now)
    store.refresh_registry()
    return store
