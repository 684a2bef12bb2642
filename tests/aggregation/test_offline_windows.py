"""Training data for aggregation views, on every offline engine, against the brute-force reference on random events."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregation_reference import close, expected
from offline_engines import Engine
from potluck.aggregation.rule import FUNCTIONS, default_hop, micros
from potluck.definitions.field import Field
from potluck.offline.protocol import SourceTable, ViewQuery, WindowedFeature
from potluck.types import Float64, Int64, String

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_US = micros(T0 - datetime(1970, 1, 1, tzinfo=UTC))
WINDOWS = [timedelta(seconds=1), timedelta(seconds=10), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1),
           timedelta(days=7), timedelta(days=30)]  # fmt: skip
COLUMNS = {"x": Int64, "y": Float64, "s": String}
FUNCTIONS_OF = {
    "x": FUNCTIONS,
    "y": FUNCTIONS,
    "s": ("count", "min", "max", "last"),
}


def _when(us: int) -> datetime:
    return T0 + timedelta(microseconds=us)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    window = draw(st.sampled_from([*WINDOWS, None]))
    base = window or timedelta(hours=1)
    w_us = micros(base)
    hop: timedelta | None = None
    if window is not None:
        divisor = draw(st.sampled_from([0, 1, 2, 4, 5]))  # 0: the default hop
        if divisor and w_us % divisor == 0 and (w_us // divisor) % 1_000_000 == 0:
            hop = timedelta(microseconds=w_us // divisor)
    h_us = micros(hop or (default_hop(window) if window is not None else base))
    # Times on a coarse grid (ties, exact window and tile edges) plus some off-grid ones.
    grid = st.integers(min_value=-8, max_value=40).map(lambda i: i * h_us // 4)
    jitter = st.integers(min_value=-3 * w_us, max_value=3 * w_us)
    times = st.one_of(grid, grid.map(lambda t: t + 1), grid.map(lambda t: t - 1), jitter)
    events = []
    for i in range(draw(st.integers(min_value=0, max_value=40))):
        ts = draw(times)
        events.append(
            {
                "key": draw(st.integers(min_value=0, max_value=3)),
                "ts": ts,
                "created": draw(st.none() | times | st.just(ts)),
                "x": draw(st.none() | st.integers(min_value=-(2**40), max_value=2**40)),
                "y": draw(st.none() | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
                "s": draw(st.none() | st.sampled_from(["a", "b", "c", "é"])),
                "arrival": i,
            }
        )
    entity = [
        {"key": draw(st.none() | st.integers(min_value=0, max_value=4)), "t": draw(times)}
        for _ in range(draw(st.integers(min_value=1, max_value=12)))
    ]
    column = draw(st.sampled_from(sorted(COLUMNS)))
    functions = draw(st.lists(st.sampled_from(FUNCTIONS_OF[column]), min_size=1, max_size=4, unique=True))
    return {
        "window": window,
        "hop": hop,
        "h_us": h_us if window is not None else None,
        "events": events,
        "entity": entity,
        "column": column,
        "functions": functions,
        "split": draw(st.integers(min_value=0, max_value=len(events))),
        "availability": draw(st.booleans()),
    }


def _write(path: Path, events: list[dict[str, Any]], split: int) -> None:
    path.mkdir()
    for n, part in enumerate((events[:split], events[split:])):
        pq.write_table(
            pa.table(
                {
                    "user_id": pa.array([e["key"] for e in part], pa.int64()),
                    "ts": pa.array([_when(e["ts"]) for e in part], pa.timestamp("us", tz="UTC")),
                    "created": pa.array(
                        [None if e["created"] is None else _when(e["created"]) for e in part],
                        pa.timestamp("us", tz="UTC"),
                    ),
                    "x": pa.array([e["x"] for e in part], pa.int64()),
                    "y": pa.array([e["y"] for e in part], pa.float64()),
                    "s": pa.array([e["s"] for e in part], pa.string()),
                }
            ),
            path / f"part-{n}.parquet",
        )


def _query(sc: dict[str, Any], path: Path) -> ViewQuery:
    column = sc["column"]
    features, aggs = [], []
    window_us = None if sc["window"] is None else micros(sc["window"])
    for fn in sc["functions"]:
        out_type = {"count": Int64, "mean": Float64, "stddev": Float64, "variance": Float64}.get(fn, COLUMNS[column])
        if fn == "sum":
            out_type = Int64 if column == "x" else Float64
        features.append(Field(name=f"{fn}_{column}", dtype=out_type))
        aggs.append(WindowedFeature(Field(name=column, dtype=COLUMNS[column]), fn, window_us, sc["h_us"]))
    return ViewQuery(
        view_name="agg",
        source=SourceTable(
            name="events",
            path=str(path),
            file_format="parquet",
            timestamp_column="ts",
            created_timestamp_column="created",
            columns={"user_id": "user_id", column: column},
        ),
        join_keys=("user_id",),
        features=tuple(features),
        output_names=tuple(f.name for f in features),
        ttl=timedelta(0),
        aggregations=tuple(aggs),
    )


def _check(store: Engine, sc: dict[str, Any], plan: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events"
        _write(path, sc["events"], sc["split"])
        entity = pa.table(
            {
                "user_id": pa.array([r["key"] for r in sc["entity"]], pa.int64()),
                "event_timestamp": pa.array([_when(r["t"]) for r in sc["entity"]], pa.timestamp("us", tz="UTC")),
            }
        )
        view = _query(sc, path)
        got = store.get_historical_features(
            entity, [view], availability_time=sc["availability"], aggregation_plan=plan
        ).to_arrow()
    assert got.num_rows == len(sc["entity"])
    # The rule works on times since the Unix epoch (hops need not divide T0); arrival order offline
    # is the physical order: file by file, row by row (the events' order).
    events = [
        {
            **e,
            "ts": e["ts"] + T0_US,
            "created": None if e["created"] is None else e["created"] + T0_US,
            "value": e[sc["column"]],
        }
        for e in sc["events"]
    ]
    window = None if sc["window"] is None else micros(sc["window"])
    for i, entity_row in enumerate(sc["entity"]):
        r = {**entity_row, "t": entity_row["t"] + T0_US}
        for fn, name in zip(sc["functions"], view.output_names, strict=True):
            actual = got.column(name)[i].as_py()
            seen = r["key"] is not None and any(
                e["key"] == r["key"]
                and e["ts"] <= r["t"]
                and (not sc["availability"] or e["created"] is None or e["created"] <= r["t"])
                for e in events
            )
            want = (
                expected(events, r["key"], r["t"], fn, window, sc["h_us"], availability=sc["availability"])
                if seen
                else None
            )
            if fn in ("variance", "stddev") and isinstance(want, float):
                ok = close(actual, want, rel=1e-9, abs_tol=1e-6)
            else:
                ok = close(actual, want)
            assert ok, (fn, i, r, actual, want)


def test_matches_the_reference(store: Engine) -> None:
    @settings(
        max_examples=store.examples(90),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(sc=scenarios(), plan=st.sampled_from(["window", "join", None]))
    def check(sc: dict[str, Any], plan: str | None) -> None:
        _check(store, sc, store.plan(plan))

    check()


@pytest.mark.parametrize("plan", ["window", "join"])
def test_the_sawtooth_at_fixed_points(store: Engine, plan: str) -> None:
    h = 3_600_000_000
    events = [
        {"key": 1, "ts": t, "created": None, "x": 1, "y": None, "s": None, "arrival": i}
        for i, t in enumerate([h, h + 1, 2 * h, 3 * h - 1, 3 * h])
    ]
    sc = {
        "window": timedelta(hours=2),
        "hop": timedelta(hours=1),
        "h_us": h,
        "events": events,
        "entity": [{"key": 1, "t": t} for t in (3 * h, 3 * h + 1, 4 * h - 1, 4 * h, 0, 5 * h)] + [{"key": 9, "t": h}],
        "column": "x",
        "functions": ["count", "sum"],
        "split": 2,
        "availability": False,
    }
    _check(store, sc, plan)


@pytest.mark.parametrize("window", [timedelta(hours=2), None])
def test_availability_time_per_entity_row(store: Engine, window: timedelta | None) -> None:
    h = 3_600_000_000
    rows = [(h, h), (h + 5, 10 * h), (2 * h, None), (3 * h, 30 * h)]  # (ts, created)
    events = [
        {"key": 1, "ts": t, "created": c, "x": i, "y": float(i), "s": "abcd"[i], "arrival": i}
        for i, (t, c) in enumerate(rows)
    ]
    sc = {
        "window": window,
        "hop": None,
        "h_us": h // 12 if window else None,
        "events": events,
        "entity": [{"key": 1, "t": t} for t in (2 * h, 4 * h, 11 * h, 12 * h, 40 * h)],
        "column": "x",
        "functions": ["count", "sum", "last"],
        "split": 1,
        "availability": True,
    }
    _check(store, sc)


def test_the_plan_follows_the_estimated_cost() -> None:
    from potluck.offline.sql.windows import choose_join

    view = _query(
        {"column": "x", "functions": ["count"], "window": timedelta(days=7), "h_us": 3_600_000_000}, Path("/x")
    )
    month = micros(timedelta(days=30))
    assert choose_join(view, 1_000_000, 10_000_000, 100_000, month)  # ~23 events per window: join
    assert not choose_join(view, 1_000_000, 10_000_000, 1_000, month)  # ~2,300: windows
    lifetime = _query({"column": "x", "functions": ["count"], "window": None, "h_us": None}, Path("/x"))
    assert not choose_join(lifetime, 1_000_000, 10_000_000, 10_000, month)
