"""Statistics computed in DuckDB equal numpy/scipy on the same data; quantiles within the stated error."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.monitoring.profile import Profile
from potluck.monitoring.statistics import Column, Settings, decile_edges, describe, profile_rows, quantile
from potluck.offline.sql import Sql


def _profile(table: pa.Table, sample_size: int = 10_000, baseline: Profile | None = None) -> Profile:
    con = duckdb.connect()
    try:
        con.register("t", table)
        relation = Sql('"t"')
        columns = [Column(n, "v", t) for n, t in describe(con, relation).items()]
        return profile_rows(
            con,
            relation,
            columns,
            source="t",
            settings=Settings(sample_size=sample_size),
            row_count=table.num_rows,
            baseline=baseline,
        )
    finally:
        con.close()


def _rank_error(values: np.ndarray, estimate: float, q: float) -> float:
    """How far the estimate's rank is from q: 0 when some rank between its lower and upper count is q."""
    n = len(values)
    below, at_most = np.sum(values < estimate) / n, np.sum(values <= estimate) / n
    return 0.0 if below <= q <= at_most else min(abs(below - q), abs(at_most - q))


def test_numeric_statistics_equal_numpy() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    x = rng.lognormal(1, 0.8, n)
    mask = rng.random(n) < 0.07
    p = _profile(pa.table({"x": pa.array(x, mask=mask)}), sample_size=10_000)
    f = p.feature("x")
    kept = x[~mask]
    assert f.count == n
    assert f.nulls == int(mask.sum())
    assert f.null_rate == pytest.approx(mask.mean())
    assert f.mean == pytest.approx(kept.mean(), rel=1e-12)
    assert f.stddev == pytest.approx(kept.std(ddof=1), rel=1e-9)
    assert (f.min, f.max) == (kept.min(), kept.max())
    assert f.approx_distinct == pytest.approx(len(np.unique(kept)), rel=0.05)  # HyperLogLog
    assert len(f.sample or []) == 10_000
    # the documented bound: rank error <= 4 * sqrt(q (1 - q) / S) + 1 / S for a sample of S values
    for name, q in (
        ("p1", 0.01),
        ("p5", 0.05),
        ("p25", 0.25),
        ("p50", 0.5),
        ("p75", 0.75),
        ("p95", 0.95),
        ("p99", 0.99),
    ):
        bound = 4 * math.sqrt(q * (1 - q) / 10_000) + 1e-4
        assert _rank_error(kept, f.quantiles[name], q) <= bound, name
    # its own histogram (a new baseline) counts every non-null value on its decile bins, exactly
    edges = np.array(f.bin_edges)
    expected = np.bincount(np.searchsorted(edges, kept, side="right"), minlength=len(edges) + 1)
    assert f.histogram == expected.tolist()


def test_small_data_quantiles_are_exact() -> None:
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    f = _profile(pa.table({"x": values})).feature("x")
    for name, q in (("p1", 0.01), ("p25", 0.25), ("p50", 0.5), ("p99", 0.99)):
        assert f.quantiles[name] == pytest.approx(np.quantile(values, q))


def test_categorical_boolean_timestamp_array() -> None:
    rng = np.random.default_rng(2)
    n = 50_000
    cats = rng.choice([f"c{i}" for i in range(300)], n, p=np.r_[np.full(10, 0.05), np.full(290, 0.5 / 290)])
    flags = rng.random(n) < 0.3
    stamps = rng.integers(1_700_000_000, 1_700_100_000, n)
    lists = [list(range(k)) for k in rng.poisson(4, n)]
    table = pa.table(
        {
            "cat": pa.array(cats, mask=rng.random(n) < 0.02),
            "flag": flags,
            "ts": pa.array(stamps * 1_000_000, pa.timestamp("us", tz="UTC")),
            "items": pa.array(lists, pa.list_(pa.int64())),
        }
    )
    p = _profile(table)
    c = p.feature("cat")
    values, counts = np.unique(table["cat"].drop_null().to_numpy(zero_copy_only=False), return_counts=True)
    order = sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda vc: (-vc[1], vc[0]))
    assert c.kind == "categorical"
    assert c.top == order[:100]
    assert c.other_count == sum(n for _, n in order[100:])
    assert c.nulls == table["cat"].null_count
    b = p.feature("flag")
    assert (b.kind, b.true_count, b.mean) == ("boolean", int(flags.sum()), pytest.approx(flags.mean()))
    t = p.feature("ts")
    assert t.kind == "timestamp"
    assert (t.min, t.max) == (stamps.min(), stamps.max())
    assert t.mean == pytest.approx(stamps.mean())
    a = p.feature("items")
    lengths = np.array([len(v) for v in lists])
    assert a.kind == "array"
    assert a.mean == pytest.approx(lengths.mean())
    assert a.stddev == pytest.approx(lengths.std(ddof=1))
    assert a.max == lengths.max()


def test_current_profile_uses_the_baselines_bins_and_categories() -> None:
    rng = np.random.default_rng(3)
    base = _profile(pa.table({"x": rng.normal(0, 1, 30_000), "c": rng.choice(["a", "b"], 30_000)}))
    current_x = rng.normal(0.5, 1, 30_000)
    current_c = np.array(["z"] * 29_990 + ["a"] * 10)
    settings_ = Settings(top_k=1)
    con = duckdb.connect()
    con.register("t", pa.table({"x": current_x, "c": current_c}))
    relation = Sql('"t"')
    columns = [Column(n, "v", t) for n, t in describe(con, relation).items()]
    cur = profile_rows(con, relation, columns, source="t", settings=settings_, baseline=base)
    x = cur.feature("x")
    assert x.mean == pytest.approx(current_x.mean(), rel=1e-12)  # sums around the baseline's mean
    assert x.stddev == pytest.approx(current_x.std(ddof=1), rel=1e-9)
    edges = np.array(base.feature("x").bin_edges)
    assert x.bin_edges == base.feature("x").bin_edges
    assert (
        x.histogram == np.bincount(np.searchsorted(edges, current_x, side="right"), minlength=len(edges) + 1).tolist()
    )
    # "a" is outside the current top 1 but the baseline has it: its count is kept
    assert dict(cur.feature("c").top or []) == {"z": 29_990, "a": 10}


def test_sample_is_seeded_and_stable(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    table = pa.table({"x": rng.normal(0, 1, 100_000)})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=5000)
    a, b = _profile(table, 1000), _profile(table, 1000)
    assert a.feature("x").sample == b.feature("x").sample
    assert len(a.feature("x").sample or []) == 1000


def test_sample_is_the_same_with_or_without_the_cut_off() -> None:
    """Collecting rows under the hash cut-off and keeping the smallest hashes select the same values."""
    rng = np.random.default_rng(6)
    table = pa.table({"x": pa.array(rng.normal(0, 1, 60_000), mask=rng.random(60_000) < 0.1)})
    con = duckdb.connect()
    try:
        con.register("t", table)
        relation, columns = Sql('"t"'), [Column("x", None, "DOUBLE")]
        settings_ = Settings(sample_size=2000)
        cut = profile_rows(con, relation, columns, source="t", settings=settings_, row_count=60_000)
        whole = profile_rows(con, relation, columns, source="t", settings=settings_, row_count=None)
    finally:
        con.close()
    assert cut.feature("x").sample == whole.feature("x").sample
    assert len(cut.feature("x").sample or []) == 2000


def test_profile_json_round_trip() -> None:
    rng = np.random.default_rng(5)
    p = _profile(
        pa.table({"x": rng.normal(0, 1, 1000), "c": rng.choice(["a", "b"], 1000), "f": rng.random(1000) < 0.5})
    )
    again = Profile.from_json(p.to_json())
    assert again.to_dict() == p.to_dict()
    assert p.to_arrow().num_rows == 3
    assert list(p.to_pandas()["feature"]) == ["x", "c", "f"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300), st.floats(0, 1))
def test_quantile_equals_numpy(values: list[float], q: float) -> None:
    ordered = sorted(values)
    assert quantile(ordered, q) == pytest.approx(float(np.quantile(ordered, q)), rel=1e-9, abs=1e-6)
    edges = decile_edges(ordered, 10)
    assert edges == sorted(set(edges))
    assert all(e > ordered[0] for e in edges)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)), min_size=1, max_size=200),
)
def test_moments_equal_numpy_on_any_values(values: list[float | None]) -> None:
    f = _profile(pa.table({"x": pa.array(values, pa.float64())})).feature("x")
    kept = np.array([v for v in values if v is not None])
    assert f.nulls == len(values) - len(kept)
    if len(kept) == 0:
        assert f.mean is None
        assert f.sample == []
        return
    assert f.mean == pytest.approx(kept.mean(), rel=1e-9, abs=1e-6)
    assert (f.min, f.max) == (kept.min(), kept.max())
    if len(kept) > 1:
        assert f.stddev == pytest.approx(kept.std(ddof=1), rel=1e-6, abs=1e-6)
    assert sorted(f.sample or []) == sorted(kept.tolist())  # fewer values than the sample size: all of them
