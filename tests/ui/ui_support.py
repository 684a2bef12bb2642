"""The web UI's demo repository: `potluck init`'s demo, one object of every kind, and monitoring data.

Built with the project's own commands: `potluck init` and `apply`, `materialize-incremental`, a
baseline of the first week, two `monitor run`s (the second over a drifted last week, so a drift
timeline has two points and the histograms differ), a saved dataset, the logged service read through
the real feature server, and `potluck skew`. Also used by `scripts/ui-screenshots.py` and
`benchmarks/ui_bench.py`.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Added to `potluck init`'s features.py: an on-demand view with a request source, a stream view, a
# label view and a second, logged service that uses the on-demand view.
EXTRA_FEATURES_PY = """

from potluck import KafkaSource, LabelView, PushSource, RequestSource, StreamFeatureView, on_demand_feature_view
from potluck.data_format import JsonFormat
from potluck.feature_logging import LoggingConfig
from potluck.infra.offline_stores.file_source import FileLoggingDestination

txn_request = RequestSource(name="txn_request", schema=[Field(name="amount", dtype=Float64)])


@on_demand_feature_view(
    sources=[user_stats[["avg_amount_30d"]], txn_request],
    schema=[Field(name="amount_ratio", dtype=Float64)],
    mode="pandas",
    description="The amount against the user's 30-day mean",
)
def amount_ratio(df):
    import pandas as pd

    return pd.DataFrame({"amount_ratio": df["amount"] / df["avg_amount_30d"]})


payments = KafkaSource(
    name="payments",
    kafka_bootstrap_servers="127.0.0.1:9092",
    topic="payments",
    timestamp_field="event_timestamp",
    message_format=JsonFormat(schema_json="user_id integer, event_timestamp timestamp, amount double"),
    batch_source=FileSource(name="payments_archive", path="data/payments", timestamp_field="event_timestamp"),
)
user_payments = StreamFeatureView(
    name="user_payments",
    entities=[user],
    source=payments,
    schema=[Field(name="amount", dtype=Float64)],
    timestamp_field="event_timestamp",
    description="The last payment of a user, from the payments stream",
)

fraud_labels = LabelView(
    name="fraud_labels",
    entities=[user],
    schema=[Field(name="is_fraud", dtype=Bool)],
    source=PushSource(
        name="fraud_labels_push",
        batch_source=FileSource(name="fraud_labels_batch", path="data/labels.parquet", timestamp_field="event_timestamp"),
    ),
    tags={"team": "risk"},
)

fraud_model_v2 = FeatureService(
    name="fraud_model_v2",
    features=[user_stats[["txn_count_7d", "avg_amount_30d"]], merchant_stats[["risk_score"]], amount_ratio],
    description="The fraud model with the amount ratio",
    logging_config=LoggingConfig(destination=FileLoggingDestination(path="data/logs"), sample_rate=1.0),
)
"""

FEATURE_VIEWS = ("user_stats", "merchant_stats", "amount_ratio", "user_payments", "fraud_labels")
FEATURE_SERVICES = ("fraud_model_v1", "fraud_model_v2")
ENTITIES = ("user", "merchant")
SAVED_DATASET = "fraud_training"
DRIFTED_VIEW = "user_stats"
DRIFTED_FEATURE = "avg_amount_30d"  # numeric, shifted in the last week: a histogram with both series

# The lineage of the repository, written out by hand (the reference the graph is checked against).
LINEAGE_NODES = {
    "entity:user",
    "entity:merchant",
    "data_source:user_stats_source",
    "data_source:merchant_stats_source",
    "data_source:txn_request",
    "data_source:payments",
    "data_source:payments_archive",
    "data_source:fraud_labels_push",
    "data_source:fraud_labels_batch",
    "feature_view:user_stats",
    "feature_view:merchant_stats",
    "on_demand_feature_view:amount_ratio",
    "stream_feature_view:user_payments",
    "label_view:fraud_labels",
    "feature_service:fraud_model_v1",
    "feature_service:fraud_model_v2",
}
LINEAGE_EDGES = {
    ("data_source:user_stats_source", "feature_view:user_stats"),
    ("entity:user", "feature_view:user_stats"),
    ("data_source:merchant_stats_source", "feature_view:merchant_stats"),
    ("entity:merchant", "feature_view:merchant_stats"),
    ("feature_view:user_stats", "on_demand_feature_view:amount_ratio"),
    ("data_source:txn_request", "on_demand_feature_view:amount_ratio"),
    ("data_source:payments", "stream_feature_view:user_payments"),
    ("data_source:payments_archive", "stream_feature_view:user_payments"),
    ("entity:user", "stream_feature_view:user_payments"),
    ("data_source:fraud_labels_push", "label_view:fraud_labels"),
    ("data_source:fraud_labels_batch", "label_view:fraud_labels"),
    ("entity:user", "label_view:fraud_labels"),
    ("feature_view:user_stats", "feature_service:fraud_model_v1"),
    ("feature_view:merchant_stats", "feature_service:fraud_model_v1"),
    ("feature_view:user_stats", "feature_service:fraud_model_v2"),
    ("feature_view:merchant_stats", "feature_service:fraud_model_v2"),
    ("on_demand_feature_view:amount_ratio", "feature_service:fraud_model_v2"),
}


def potluck(root: Path, *args: str, found: bool = False) -> str:
    """Run `potluck -c ROOT ARGS...` in this process; returns its standard output, raises on an error exit.

    `found`: exit code 1 is a finding (drift, skew), not an error."""
    from potluck.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["-c", str(root), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    if code > (1 if found else 0):
        raise RuntimeError(f"potluck {' '.join(args)} exited with {code}: {err.getvalue() or out.getvalue()}")
    return out.getvalue()


def _drift_last_week(root: Path, now: datetime) -> None:
    """Users spend more and move to other countries in the last week of the demo's data."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = root / "data" / "user_stats.parquet"
    table = pq.read_table(path)
    recent = pc.greater_equal(
        table["event_timestamp"], pa.scalar(now - timedelta(days=7), pa.timestamp("us", tz="UTC"))
    )
    amount = pc.if_else(recent, pc.multiply(table["avg_amount_30d"], 1.8), table["avg_amount_30d"])
    rng = np.random.default_rng(3)
    moved = pa.array(rng.choice(["BR", "IN"], len(table)))
    country = pc.if_else(pc.and_(recent, pa.array(rng.random(len(table)) < 0.4)), moved, table["country"])
    table = table.set_column(table.schema.get_field_index("avg_amount_30d"), "avg_amount_30d", amount)
    table = table.set_column(table.schema.get_field_index("country"), "country", country)
    pq.write_table(table, path)


def _empty_sources(root: Path, now: datetime) -> None:
    """The stream view's archive: a few rows, so its batch source can be read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "data" / "payments").mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1, 2, 3], pa.int64()),
                "event_timestamp": pa.array(
                    [now - timedelta(hours=h) for h in (1, 2, 3)], pa.timestamp("us", tz="UTC")
                ),
                "amount": [12.5, 80.0, 7.25],
            }
        ),
        root / "data" / "payments" / "part-0.parquet",
    )


def _entity_rows(now: datetime, rows: int = 400, seed: int = 5) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "user_id": pa.array(rng.integers(1, 1001, rows), pa.int64()),
            "merchant_id": pa.array(rng.integers(1, 101, rows), pa.int64()),
            "amount": rng.gamma(2.0, 40.0, rows),
            "event_timestamp": pa.array(
                [now - timedelta(days=6) + timedelta(seconds=int(s)) for s in rng.integers(0, 5 * 86400, rows)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def _serve_logged(root: Path, users: int = 200, batch: int = 20) -> None:
    """Read `fraud_model_v2` for some users through the real feature server, every read logged."""
    import httpx

    from potluck import FeatureStore
    from potluck.feature_logs import FeatureLogger
    from potluck.server.app import create_app
    from potluck.server.settings import ServerSettings
    from potluck.server.store_backend import StoreBackend

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests_support import serve

    store = FeatureStore(repo_path=root)
    logger = FeatureLogger(queue_rows=100_000, flush_rows=200, flush_interval=0.2, rng=random.Random(1))
    app = create_app(StoreBackend(store), ServerSettings(), feature_log=logger)
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            for first in range(1, users + 1, batch):
                ids = list(range(first, first + batch))
                body = {
                    "feature_service": "fraud_model_v2",
                    "entities": {
                        "user_id": ids,
                        "merchant_id": [1 + i % 100 for i in ids],
                        "amount": [float(20 + i) for i in ids],
                    },
                    "full_feature_names": True,
                }
                response = http.post("/get-online-features", json=body)
                response.raise_for_status()
    finally:
        logger.close()
        store.close()


def build_demo(root: Path, *, skew: bool = True) -> Path:
    """The demo repository with monitoring data in `root` (created; must not exist or be empty)."""
    from potluck import FeatureStore
    from potluck.repo.template import scaffold
    from potluck.saved_dataset import SavedDatasetFileStorage

    scaffold(root, project="demo")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    _drift_last_week(root, now)
    _empty_sources(root, now)
    with (root / "features.py").open("a", encoding="utf-8") as f:
        f.write(EXTRA_FEATURES_PY)
    potluck(root, "apply")
    potluck(root, "materialize-incremental", "now", "--no-progress")
    week1 = (now - timedelta(days=14), now - timedelta(days=7, microseconds=1))
    potluck(root, "monitor", "baseline", "--name", "first_week", "--view", "user_stats", "--view", "merchant_stats",
            "--start", week1[0].isoformat(), "--end", week1[1].isoformat())  # fmt: skip
    # a quiet run over the first week's second half, then the drifted last week
    potluck(root, "monitor", "run", "--no-alerts", "--start", (now - timedelta(days=10)).isoformat(),
            "--end", week1[1].isoformat(), found=True)  # fmt: skip
    potluck(root, "monitor", "run", "--no-alerts", "--start", (now - timedelta(days=7)).isoformat(), "--end", now.isoformat(),
            found=True)  # fmt: skip
    store = FeatureStore(repo_path=root)
    try:
        job = store.get_historical_features(
            _entity_rows(now), store.get_feature_service("fraud_model_v2"), full_feature_names=True
        )
        store.create_saved_dataset(
            from_=job,
            name=SAVED_DATASET,
            storage=SavedDatasetFileStorage(path="data/saved/fraud_training.parquet"),
            tags={"team": "risk"},
            feature_service=store.get_feature_service("fraud_model_v2"),
        )
    finally:
        store.close()
    if skew:
        _serve_logged(root)
        potluck(root, "skew", "-s", "fraud_model_v2", "-t", SAVED_DATASET, "--no-alerts", "--sample", "200", found=True)
    return root


@contextmanager
def ui_server(root: Path, **settings: Any) -> Iterator[str]:
    """The web UI of the repository in `root` (`settings`: ServerSettings fields, e.g. auth="on"), served by
    uvicorn on a free loopback port as `potluck ui` builds it; yields its URL."""
    from potluck import FeatureStore
    from potluck.server.settings import ServerSettings
    from potluck.ui.serve import build_ui

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests_support import serve

    store = FeatureStore(repo_path=root)
    try:
        with serve(build_ui(store, ServerSettings(**settings))) as url:
            yield url
    finally:
        store.close()
