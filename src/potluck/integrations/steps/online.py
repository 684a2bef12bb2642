"""After materializing: the online store serves what the offline store says it should.

Per view, entity keys are sampled (seeded) from the offline rows of the run's interval; they are
read online as a client would (ttl at read time), and recomputed offline with
`get_historical_features` as of the view's materialization watermark (what the online store was
last brought up to), with the view's ttl counted back from now, as serving does. Values are
compared as the skew report compares them (`monitoring.consistency.same`): floats within a
relative or absolute tolerance, anything else equal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.integrations.steps.interval import Interval
from potluck.integrations.steps.materialize import online_view_names
from potluck.integrations.steps.report import CheckFailed, bullet_list

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.definitions import FeatureView
    from potluck.store import FeatureStore

_BATCH_ROWS = 65_536


def sample_keys(store: FeatureStore, view: FeatureView, interval: Interval, size: int, seed: int) -> pa.Table:
    """Up to `size` distinct entity keys of the view with a row in [start, end], chosen with `seed` from the
    keys in sorted order (the same keys on every run over the same data)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from potluck.retrieval.plans import full_view_query

    keys = list(view.join_keys)
    query = full_view_query(view, str(store.repo_path))
    batches = [
        batch.select(keys) for batch in store._offline.latest_rows(query, interval.start, interval.end, _BATCH_ROWS)
    ]
    if not batches:
        return pa.table({k: pa.array([], type=pa.int64()) for k in keys})
    table = pa.Table.from_batches(batches)
    for k in keys:
        table = table.filter(pc.is_valid(table.column(k)))
    table = table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))
    chosen = sorted(random.Random(seed).sample(range(table.num_rows), min(size, table.num_rows)))
    return table.take(pa.array(chosen, type=pa.int64()))


def validate_online(
    store: FeatureStore,
    interval: Interval,
    views: Sequence[str] | None = None,
    *,
    sample: int = 100,
    seed: int = 0,
    rel_tolerance: float = 1e-6,
    abs_tolerance: float = 1e-9,
    max_mismatch_rate: float = 0.0,
    examples: int = 5,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Compare sampled online values with the offline result; raise `CheckFailed` when more than
    `max_mismatch_rate` of the compared values differ (a value on one side only counts as differing).

    Views with windowed aggregations or label rules are not compared here (their online values are
    not single offline rows).
    """
    now = now or datetime.now(UTC)
    snapshot = store._snapshot()
    watermarks = {f.feature_view: f.materialized_until for f in store.freshness()}
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    shown: list[dict[str, Any]] = []
    for name in online_view_names(store, views):
        view = snapshot.feature_view(name)
        if getattr(view, "aggregations", None) or type(view).__name__ == "LabelView":
            results.append({"view": name, "compared": 0, "skipped": "aggregations or labels"})
            continue
        as_of = watermarks.get(name)
        entry = _compare_view(store, view, interval, as_of, now, sample, seed, (rel_tolerance, abs_tolerance))
        bad = entry.pop("_bad")
        results.append(entry)
        for example in bad[:examples]:
            shown.append(example)
        lines += [_describe(e) for e in bad]
    compared = sum(r["compared"] for r in results)
    differing = sum(r.get("mismatch", 0) + r.get("missing_online", 0) + r.get("missing_offline", 0) for r in results)
    summary: dict[str, Any] = {
        "step": "validate_online",
        "project": store.project,
        **interval.to_json(),
        "sample": sample,
        "seed": seed,
        "compared": compared,
        "differing": differing,
        "mismatch_rate": differing / compared if compared else 0.0,
        "views": results,
        "examples": shown,
        "ok": True,
    }
    if compared and differing / compared > max_mismatch_rate:
        summary["ok"] = False
        title = (
            f"online validation: {differing} of {compared} sampled values differ between the online and the offline "
            f"store (allowed rate {max_mismatch_rate:g}); a stale value needs its interval materialized again "
            "(potluck materialize START END --views VIEW), an online-only write needs its writer found:"
        )
        raise CheckFailed(bullet_list(title, lines), summary)
    return summary


def _compare_view(
    store: FeatureStore,
    view: FeatureView,
    interval: Interval,
    as_of: datetime | None,
    now: datetime,
    size: int,
    seed: int,
    tolerance: tuple[float, float],
) -> dict[str, Any]:
    import pyarrow as pa

    from potluck.monitoring.consistency import json_value, recompute_offline, same
    from potluck.retrieval.references import ViewSelection

    keys = sample_keys(store, view, interval, size, seed)
    names = [f"{view.name}__{f.name}" for f in view.features]
    entry: dict[str, Any] = {
        "view": view.name,
        "as_of": as_of.isoformat() if as_of else None,
        "sampled": keys.num_rows,
        "compared": 0,
        "mismatch": 0,
        "missing_online": 0,
        "missing_offline": 0,
        "_bad": [],
    }
    if keys.num_rows == 0:
        return entry
    rows = {k: keys.column(k).to_pylist() for k in keys.column_names}
    online = store.get_online_features([f"{view.name}:{f.name}" for f in view.features], rows, full_feature_names=True)
    stamp = as_of or interval.end
    entity = keys.append_column("event_timestamp", pa.array([stamp] * keys.num_rows, pa.timestamp("us", tz="UTC")))
    selection = ViewSelection(view, tuple(view.features), tuple(names))
    offline = recompute_offline(store, [selection], entity, [now] * keys.num_rows, availability_time=False)
    off_ts = offline.event_ts.get(view.name)
    rel, absolute = tolerance
    for name, feature in zip(names, view.features, strict=True):
        served = online.values[name]
        status = online.statuses[name]
        served_ts = online.event_timestamps[name]
        expected = offline.values[name]
        for i in range(keys.num_rows):
            a, b = _aware(served[i]), _aware(expected[i])
            entry["compared"] += 1
            if a is None and b is None:
                continue
            kind = "missing_online" if a is None else "missing_offline" if b is None else None
            if kind is None and same(a, b, rel, absolute):
                continue
            kind = kind or "mismatch"
            entry[kind] += 1
            entry["_bad"].append(
                {
                    "view": view.name,
                    "feature": feature.name,
                    "kind": kind,
                    "keys": {k: json_value(v[i]) for k, v in rows.items()},
                    "online": json_value(a),
                    "online_status": str(status[i]),
                    "online_event_timestamp": json_value(served_ts[i]),
                    "offline": json_value(b),
                    "offline_event_timestamp": json_value(off_ts[i]) if off_ts else None,
                    "never_materialized": as_of is None,
                    "cause": _cause(served_ts[i], off_ts[i] if off_ts else None, as_of),
                }
            )
    return entry


def _cause(online_ts: datetime | None, offline_ts: datetime | None, as_of: datetime | None) -> str | None:
    """What the event times say about a difference."""
    if as_of is None:
        return "the view was never materialized"
    if online_ts is not None and (offline_ts is None or _aware(online_ts) > _aware(offline_ts)):
        return "online-only write (newer than the offline rows; a push or stream wrote it)"
    if offline_ts is not None and (online_ts is None or _aware(offline_ts) > _aware(online_ts)):
        return "stale online value (materialize the interval again)"
    if online_ts is not None:
        return "different value for the same event"
    return None


def _describe(e: dict[str, Any]) -> str:
    keys = ", ".join(f"{k}={v!r}" for k, v in e["keys"].items())
    text = (
        f"{e['view']}:{e['feature']} for {keys}: {e['kind'].replace('_', ' ')}: online {e['online']!r} "
        f"({e['online_status']}, event {e['online_event_timestamp']}), offline {e['offline']!r} "
        f"(event {e['offline_event_timestamp']})"
    )
    return text + (f"; {e['cause']}" if e["cause"] else "")


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
