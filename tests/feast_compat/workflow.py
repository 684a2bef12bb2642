"""One workflow over the `feast init` repository, written against Feast's API.

Run as is by Feast's interpreter and, after `to_potluck` changed only its imports, by Potluck's.
Usage: python workflow.py REPO_DIR OUTPUT_JSON. Prints nothing; writes every result as JSON.
"""

import json
import math
import sys
from datetime import datetime, timedelta

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode


def plain(value):
    """A JSON-comparable form of a returned value (numpy scalars, timestamps, maps, NaN)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(p, tuple) and len(p) == 2 for p in value):
            return {str(k): plain(v) for k, v in sorted(value)}  # a map given as key-value pairs
        return [plain(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime)):
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def frame(df):
    rows = [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]
    return sorted(rows, key=lambda r: (r["driver_id"], r["event_timestamp"]))


def main(repo, out):
    store = FeatureStore(repo_path=repo)
    stats = pd.read_parquet(f"{repo}/data/driver_stats.parquet")
    last = pd.Timestamp(stats["event_timestamp"].max()).to_pydatetime()
    first = pd.Timestamp(stats["event_timestamp"].min()).to_pydatetime()
    drivers = sorted(int(d) for d in stats["driver_id"].unique())
    times = [first - timedelta(hours=1), first, first + timedelta(hours=30, minutes=5), last, last + timedelta(days=2)]
    entity_df = pd.DataFrame(
        [
            {"driver_id": d, "event_timestamp": t, "label": i}
            for i, (d, t) in enumerate((d, t) for d in drivers for t in times)
        ]
    )
    features = [
        f"driver_hourly_stats:{name}"
        for name in ("conv_rate", "acc_rate", "avg_daily_trips", "driver_metadata", "driver_config", "driver_profile")
    ]
    result = {}
    result["historical"] = frame(store.get_historical_features(entity_df=entity_df, features=features).to_df())

    end = last + timedelta(minutes=30)
    store.materialize_incremental(end_date=end)
    rows = [{"driver_id": d} for d in drivers] + [{"driver_id": 999999}]
    result["online_features"] = plain(store.get_online_features(features=features, entity_rows=rows).to_dict())
    result["online_full_names"] = plain(
        store.get_online_features(features=features[:2], entity_rows=rows, full_feature_names=True).to_dict()
    )
    for service in ("driver_activity_v1", "driver_activity_v2"):
        result[f"online_{service}"] = plain(
            store.get_online_features(features=store.get_feature_service(service), entity_rows=rows).to_dict()
        )

    pushed = pd.DataFrame.from_dict(
        {
            "driver_id": [drivers[0]],
            "event_timestamp": [end],
            "created": [end],
            "conv_rate": [1.0],
            "acc_rate": [1.0],
            "avg_daily_trips": [1000],
            "driver_metadata": [{"vehicle_type": "truck", "rating": "5.0"}],
            "driver_config": [json.dumps({"max_distance_km": 500, "preferred_zones": ["north"]})],
            "driver_profile": [{"name": "driver_updated", "age": "30"}],
        }
    )
    store.push("driver_stats_push_source", pushed, to=PushMode.ONLINE_AND_OFFLINE)
    result["online_after_push"] = plain(
        store.get_online_features(
            features=store.get_feature_service("driver_activity_v3"), entity_rows=rows[:2]
        ).to_dict()
    )
    after = pd.DataFrame({"driver_id": [drivers[0]], "event_timestamp": [end + timedelta(minutes=1)]})
    result["historical_after_push"] = frame(
        store.get_historical_features(entity_df=after, features=features[:3]).to_df()
    )
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
