"""A demo repository (`potluck init`'s template, applied) and brute-force answers over its Parquet files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from potluck import FeatureStore
from potluck.repo.template import scaffold

TTL = {"user_stats": timedelta(days=2), "merchant_stats": timedelta(days=7)}
KEY = {"user_stats": "user_id", "merchant_stats": "merchant_id"}
FEATURES = {
    "user_stats": ["txn_count_7d", "avg_amount_30d", "country", "is_premium"],
    "merchant_stats": ["risk_score", "category"],
}


def demo_store(path: Path, *, airflow: bool = False) -> FeatureStore:
    scaffold(path, airflow=airflow)
    store = FeatureStore(repo_path=path)
    store.apply()
    return store


def day_interval() -> tuple[datetime, datetime]:
    """The previous full UTC day: the data interval of a daily run now (the demo data reaches the current hour)."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def source_rows(repo: Path, view: str) -> pd.DataFrame:
    name = "user_stats.parquet" if view == "user_stats" else "merchant_stats.parquet"
    frame = pd.read_parquet(repo / "data" / name)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def rows_in(repo: Path, view: str, start: datetime, end: datetime) -> int:
    """Rows with start <= event time < end."""
    ts = source_rows(repo, view)["event_timestamp"]
    return int(((ts >= start) & (ts < end)).sum())


def latest_in(repo: Path, view: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Per entity, the latest row with start <= event time <= end (ties by created time), indexed by key;
    `tied` marks entities whose latest event time is shared by two rows."""
    frame = source_rows(repo, view)
    frame = frame[(frame["event_timestamp"] >= start) & (frame["event_timestamp"] <= end)]
    order = ["event_timestamp", "created"] if "created" in frame.columns else ["event_timestamp"]
    frame = frame.sort_values([KEY[view], *order], kind="stable")
    last = frame.groupby(KEY[view]).tail(1).set_index(KEY[view])
    counts = frame.groupby([KEY[view], "event_timestamp"]).size()
    tied = {k for (k, ts), n in counts.items() if n > 1 and last.loc[k, "event_timestamp"] == ts}
    last["tied"] = [k in tied for k in last.index]
    return last
