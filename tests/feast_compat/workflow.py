"""One workflow over the `feast init` repository, written against Feast's API.

Run as is by Feast's interpreter and, after `to_potluck` changed only its imports, by Potluck's.
Usage: python workflow.py REPO_DIR OUTPUT_JSON [--labels]. Prints nothing; writes every result as JSON.
With --labels (the repository keeps its label view) the label view's rows are read too.
"""

import json
import math
import sys
from datetime import datetime, timedelta

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

STATS = ("conv_rate", "acc_rate", "avg_daily_trips", "driver_metadata", "driver_config", "driver_profile")
ODFV = ("conv_rate_plus_val1", "conv_rate_plus_val2")
LABELS = ("is_reliable", "quality_score", "reviewer_notes", "labeler")


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


def frame(df, entity_rows):
    """Rows as dicts (sorted by key and time), the column names in the order returned, the input's row count."""
    rows = [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]
    rows.sort(key=lambda r: (r["driver_id"], r["event_timestamp"], r.get("label", 0)))
    return {"columns": [str(c) for c in df.columns], "rows": rows, "entity_rows": len(entity_rows)}


def online(response, timestamps=False):
    return plain(response.to_dict(include_event_timestamps=True) if timestamps else response.to_dict())


def main(repo, out, labels):
    store = FeatureStore(repo_path=repo)
    stats = pd.read_parquet(f"{repo}/data/driver_stats.parquet")
    last = pd.Timestamp(stats["event_timestamp"].max()).to_pydatetime()
    first = pd.Timestamp(stats["event_timestamp"].min()).to_pydatetime()
    drivers = sorted(int(d) for d in stats["driver_id"].unique())
    times = [first - timedelta(hours=1), first, first + timedelta(hours=30, minutes=5), last, last + timedelta(days=2)]
    pairs = [(d, t) for d in drivers for t in times]
    entity_df = pd.DataFrame(
        [
            {"driver_id": d, "event_timestamp": t, "label": i, "val_to_add": i, "val_to_add_2": 10 * i}
            for i, (d, t) in enumerate(pairs)
        ]
    )
    features = [f"driver_hourly_stats:{name}" for name in STATS]
    odfv = [f"transformed_conv_rate:{name}" for name in ODFV]
    result = {}

    def historical(key, refs, entities=entity_df, **kwargs):
        result[key] = frame(
            store.get_historical_features(entity_df=entities, features=refs, **kwargs).to_df(), entities
        )

    historical("historical", features + odfv)
    historical("historical_odfv_only", features[:1] + odfv)
    historical("historical_full_names", features[:2] + odfv, full_feature_names=True)
    for service in ("driver_activity_v1", "driver_activity_v2"):
        historical(f"historical_{service}", store.get_feature_service(service))

    end = last + timedelta(minutes=30)
    store.materialize_incremental(end_date=end)
    rows = [{"driver_id": d, "val_to_add": 1000 + i, "val_to_add_2": 2000 + 2 * i} for i, d in enumerate(drivers)]
    rows.append({"driver_id": 999999, "val_to_add": 7, "val_to_add_2": 8})
    read = store.get_online_features
    result["online_features"] = online(read(features=features + odfv, entity_rows=rows))
    result["online_timestamps"] = online(read(features=features[:2] + odfv, entity_rows=rows), timestamps=True)
    result["online_full_names"] = online(read(features=features[:2] + odfv, entity_rows=rows, full_feature_names=True))
    for service in ("driver_activity_v1", "driver_activity_v2", "driver_activity_v3"):
        result[f"online_{service}"] = online(read(features=store.get_feature_service(service), entity_rows=rows))
    result["online_driver_activity_v2_full_names"] = online(
        read(features=store.get_feature_service("driver_activity_v2"), entity_rows=rows, full_feature_names=True)
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
    result["online_after_push"] = online(
        read(features=store.get_feature_service("driver_activity_v3"), entity_rows=rows[:2])
    )
    fresh_odfv = [f"transformed_conv_rate_fresh:{name}" for name in ODFV]
    result["online_fresh_after_push"] = online(
        read(features=["driver_hourly_stats_fresh:conv_rate", *fresh_odfv], entity_rows=rows, full_feature_names=True)
    )
    after = pd.DataFrame(
        {
            "driver_id": [drivers[0], drivers[1]],
            "event_timestamp": [end + timedelta(minutes=1)] * 2,
            "val_to_add": [5, 6],
            "val_to_add_2": [50, 60],
        }
    )
    historical("historical_after_push", features[:3], after)
    historical("historical_fresh_after_push", ["driver_hourly_stats_fresh:conv_rate", *fresh_odfv], after)
    historical("historical_driver_activity_v3_after_push", store.get_feature_service("driver_activity_v3"), after)

    if labels:
        label_time = end - timedelta(hours=2)
        store.push(
            "driver_quality_labels_push",
            pd.DataFrame(
                {
                    "driver_id": [drivers[0], drivers[0], drivers[1]],
                    "is_reliable": [1, 0, 1],
                    "quality_score": [0.5, 0.75, 0.25],
                    "reviewer_notes": ["ok", "late twice", "fine"],
                    "labeler": ["alice", "bob", "alice"],
                    "event_timestamp": [label_time, label_time + timedelta(minutes=1), label_time],
                }
            ),
            to=PushMode.ONLINE_AND_OFFLINE,
        )
        label_refs = [f"driver_quality_labels:{name}" for name in LABELS]
        result["online_labels"] = online(read(features=label_refs, entity_rows=[{"driver_id": d} for d in drivers]))
        label_rows = pd.DataFrame(
            {
                "driver_id": [drivers[0], drivers[1], drivers[2], drivers[0]],
                "event_timestamp": [end, end, end, label_time - timedelta(hours=1)],
                "label": [0, 1, 2, 3],
            }
        )
        historical("historical_labels", label_refs, label_rows)

    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--labels" in sys.argv[3:])
