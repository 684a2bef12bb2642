"""Statistics of features computed inside DuckDB, in one scan of the rows.

One `SELECT` aggregates every numeric-like and boolean feature at once: count, nulls, mean, sample
stddev, min, max, approximate distinct count (HyperLogLog), a seeded sample, the histogram on given
bin edges. A second `SELECT` over the categorical columns only counts every value (top values are
cut in the same query; the distinct count is exact). Each column is read once.
Quantiles are exact quantiles of the sample (linear interpolation), so they are approximate
beyond `sample_size` non-null values; docs/monitoring.md states the error.

The sample: each row gets `hash(position, seed)` (a stable 64-bit hash of the row's position, or of
its values when the rows have no stored position) and a feature's sample is its `sample_size`
non-null values with the smallest hashes: a uniform sample without replacement, the same in every
run over the same rows. When the row count is known, only rows whose hash is under a cut-off that
keeps about three times `sample_size` rows are collected (then sorted by hash and cut to size);
otherwise `arg_min(value, hash, sample_size)` keeps the smallest as the scan goes.

Histograms are cumulative counts (`count_if(value >= edge)` per edge), differenced afterwards.
With a baseline, mean and variance come from sums of `value - baseline mean` (cheaper than
Welford's updates, and exact enough since the shift is near the data); without, from DuckDB's
`avg` and `stddev_samp`.

A profile made without bin edges (a new baseline) takes a second scan to count its own decile bins.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from potluck.monitoring.profile import QUANTILES, FeatureProfile, Profile, finite, quantile_name
from potluck.monitoring.report import Kind
from potluck.offline.sql import DUCKDB, Sql

_HASH = "__potluck_hash"
_NUMERIC = frozenset(
    [
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "DOUBLE",
        "REAL",
    ]
)
_OVERSAMPLE = 3  # rows kept by the hash cut-off, as a multiple of sample_size


@dataclass(frozen=True)
class Settings:
    sample_size: int = 10_000
    seed: int = 0
    top_k: int = 100
    bins: int = 10


@dataclass(frozen=True)
class Column:
    name: str
    view: str | None
    sql_type: str
    column: str | None = None  # the column holding it, when not `name` (`view__feature` in training data)

    @property
    def ref(self) -> str:
        return DUCKDB.quote(self.column or self.name)

    @property
    def kind(self) -> Kind:
        return kind_of(self.sql_type)


def kind_of(sql_type: str) -> Kind:
    """A feature's kind from its DuckDB type."""
    t = sql_type.upper()
    if t in _NUMERIC or t.startswith("DECIMAL"):
        return "numeric"
    if t == "BOOLEAN":
        return "boolean"
    if t in ("VARCHAR", "UUID") or t.startswith("ENUM"):
        return "categorical"
    if t.startswith(("TIMESTAMP", "DATE")):
        return "timestamp"
    if t.endswith("]"):
        return "array"
    return "other"


def describe(cursor: Any, relation: Sql) -> dict[str, str]:
    rows = cursor.execute("DESCRIBE SELECT * FROM " + relation.text, list(relation.params)).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


@dataclass(frozen=True)
class _Plan:
    column: Column
    alias: str
    value: str  # SQL of the numeric value statistics are taken of (numeric-like kinds)
    edges: tuple[float, ...] | None
    categories: tuple[str, ...]  # a baseline's categories whose counts are always kept
    shift: float | None = None  # a baseline's mean: moments from sums of (value - shift)


def _value_sql(column: Column) -> str:
    ref = column.ref
    kind = column.kind
    if kind == "timestamp":
        return f"epoch({ref})"
    if kind == "array":
        return f"CAST(len({ref}) AS DOUBLE)"
    return f"CAST({ref} AS DOUBLE)"


def _aggregates(plan: _Plan, settings: Settings, cutoff: int | None, histograms_only: bool) -> list[str]:
    c = plan.column
    ref, a, v = c.ref, plan.alias, plan.value
    # cumulative counts per edge (count_if is several times cheaper than a histogram of a CASE)
    hist = [f"count_if({v} >= {float(e)!r}) AS {a}_ge{i}" for i, e in enumerate(plan.edges or ())]
    if histograms_only:
        return [f"count({v}) AS {a}_count", *hist]
    out = [f"count({ref}) AS {a}_count"]
    kind = c.kind
    if kind in ("numeric", "timestamp", "array"):
        if plan.shift is not None:  # shifted sums: cheaper than Welford's updates, exact enough near the mean
            d = f"({v} - ({plan.shift!r}))"
            out += [f"sum({d}) AS {a}_s1", f"sum({d} * {d}) AS {a}_s2"]
        else:
            out += [f"avg({v}) AS {a}_mean", f"stddev_samp({v}) AS {a}_std"]
        out += [
            f"min({v}) AS {a}_min",
            f"max({v}) AS {a}_max",
            f"approx_count_distinct({v if kind == 'array' else ref}) AS {a}_distinct",
            *hist,
        ]
        if cutoff is None:  # otherwise the rows under the cut-off are collected once for every feature
            out.append(f"arg_min({v}, {_HASH}, {settings.sample_size}) FILTER (WHERE {v} IS NOT NULL) AS {a}_sample")
    elif kind == "boolean":
        out += [f"count_if({ref}) AS {a}_true"]
    elif kind == "categorical":
        out += [f"histogram(CAST({ref} AS VARCHAR)) AS {a}_freq"]
    return out


_SAMPLED = ("numeric", "timestamp", "array")


def _sampled_rows(plans: Sequence[_Plan], cutoff: int) -> str:
    """One list of the rows under the hash cut-off, with every sampled feature's value (one FILTER
    for all features: DuckDB slices the whole input once per filtered aggregate)."""
    fields = ", ".join(f"'{p.alias}': {p.value}" for p in plans if p.column.kind in _SAMPLED)
    return f"list({{'h': {_HASH}, {fields}}}) FILTER (WHERE {_HASH} < {cutoff}::UBIGINT) AS __sampled"


def _outer(plan: _Plan, settings: Settings, params: list[Any], cutoff: int | None) -> list[str]:
    """Columns of the outer query: samples cut to size, categorical frequency maps cut to the top values."""
    a = plan.alias
    kind = plan.column.kind
    if kind in _SAMPLED and cutoff is not None:
        ordered = f"list_sort(list_transform(list_filter(__sampled, lambda r: r.{a} IS NOT NULL), lambda r: {{'h': r.h, 'v': r.{a}}}))"
        return [f"list_transform(list_slice({ordered}, 1, {settings.sample_size}), lambda r: r.v) AS {a}_sample"]
    if kind != "categorical":
        return []
    entries = f"map_entries({a}_freq)"
    top = (
        f"list_slice(list_sort(list_transform({entries}, lambda e: {{'n': -CAST(e.value AS BIGINT), 'v': e.key}})), "
        f"1, {settings.top_k}) AS {a}_top"
    )
    params.append(list(plan.categories))
    kept = f"list_filter({entries}, lambda e: list_contains(?::VARCHAR[], e.key)) AS {a}_kept"
    return [top, kept, f"cardinality({a}_freq) AS {a}_distinct"]


def profile_rows(
    cursor: Any,
    relation: Sql,
    columns: Sequence[Column],
    *,
    source: str,
    settings: Settings,
    position: str | None = None,
    row_count: int | None = None,
    baseline: Profile | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Profile:
    """The profile of `columns` over the rows of `relation` (a DuckDB relation on `cursor`).

    With a `baseline`, each feature's histogram uses the baseline's bin edges, the baseline's
    categories are always counted and moments are sums around the baseline's mean (one scan);
    without, a second scan counts the profile's own bins.
    """
    plans = []
    for i, column in enumerate(columns):
        base = _baseline_feature(baseline, column)
        edges = tuple(base.bin_edges) if base is not None and base.bin_edges is not None else None
        categories = tuple(v for v, _ in base.top) if base is not None and base.top else ()
        shift = base.mean if base is not None and base.kind == column.kind and base.top is None else None
        plans.append(_Plan(column, f"a{i}", _value_sql(column), edges, categories, shift))
    hashed = _hashed(relation, columns, position, settings.seed)
    cutoff = None
    if row_count is not None and row_count > _OVERSAMPLE * settings.sample_size:
        cutoff = int(_OVERSAMPLE * settings.sample_size / row_count * 2**64)
    # Categorical features in a query of their own (over their columns only): DuckDB counts
    # dictionary-encoded strings without decoding them there, but not next to other aggregates
    # (measured: 10x the CPU and 2 GB more memory for 10M rows). Every column is still read once.
    grouped = [p for p in plans if p.column.kind == "categorical"]
    others = [p for p in plans if p.column.kind != "categorical"]
    row: dict[str, Any] = {}
    if others or not grouped:
        row.update(_run(cursor, hashed, others, settings, cutoff, histograms_only=False))
    if grouped:
        row.update(_run(cursor, relation, grouped, settings, None, histograms_only=False))
    features = [_feature(p, row, settings) for p in plans]
    own_bins = [(p, f) for p, f in zip(plans, features, strict=True) if p.edges is None and f.sample]
    if own_bins:
        for _, f in own_bins:
            f.bin_edges = decile_edges(f.sample or [], settings.bins)
        replans = [_Plan(p.column, p.alias, p.value, tuple(f.bin_edges or ()), ()) for p, f in own_bins]
        hist_row = _run(cursor, hashed, replans, settings, None, histograms_only=True)
        for p, f in own_bins:
            f.histogram = _histogram(hist_row, p.alias, len(f.bin_edges or ()))
    return Profile(
        source=source,
        features=features,
        start=start,
        end=end,
        seed=settings.seed,
        sample_size=settings.sample_size,
        row_count=int(row["__rows"]),
    )


def _hashed(relation: Sql, columns: Sequence[Column], position: str | None, seed: int) -> Sql:
    keys = position if position is not None else ", ".join(c.ref for c in columns) or "1"
    return f"(SELECT *, hash({keys}, {int(seed)}) AS {_HASH} FROM " + relation + ")"


def _run(
    cursor: Any, relation: Sql, plans: Sequence[_Plan], settings: Settings, cutoff: int | None, histograms_only: bool
) -> dict[str, Any]:
    inner = ["count(*) AS __rows"]
    for p in plans:
        inner += _aggregates(p, settings, cutoff, histograms_only)
    if cutoff is not None and not histograms_only and any(p.column.kind in _SAMPLED for p in plans):
        inner.append(_sampled_rows(plans, cutoff))
    else:
        cutoff = None
    params: list[Any] = []
    hidden = ["__sampled"] if cutoff is not None else []
    hidden += [f"{p.alias}_freq" for p in plans if p.column.kind == "categorical"]
    outer = [f"* EXCLUDE ({', '.join(hidden)})" if hidden else "*"]
    if not histograms_only:
        for p in plans:
            outer += _outer(p, settings, params, cutoff)
    text = f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {relation.text})"
    result = cursor.execute(text, [*params, *relation.params])  # the order of the placeholders in the text
    names = [d[0] for d in result.description]
    rows = result.fetchall()  # one row; fetched to the end so the cursor is free for the next query
    return dict(zip(names, rows[0] if rows else (), strict=True))


def _feature(plan: _Plan, row: dict[str, Any], settings: Settings) -> FeatureProfile:
    c, a = plan.column, plan.alias
    total = int(row["__rows"])
    count = int(row[f"{a}_count"] or 0)
    f = FeatureProfile(view=c.view, name=c.name, kind=c.kind, dtype=c.sql_type, count=total, nulls=total - count)
    if c.kind in ("numeric", "timestamp", "array"):
        if plan.shift is not None:
            f.mean, f.stddev = _shifted_moments(plan.shift, count, row[f"{a}_s1"], row[f"{a}_s2"])
        else:
            f.mean, f.stddev = finite(row[f"{a}_mean"]), finite(row[f"{a}_std"])
        f.min = finite(row[f"{a}_min"])
        f.max = finite(row[f"{a}_max"])
        f.approx_distinct = int(row[f"{a}_distinct"] or 0)
        sample = sorted(v for v in (row[f"{a}_sample"] or []) if v is not None and math.isfinite(v))
        f.sample = sample
        f.quantiles = {quantile_name(q): quantile(sample, q) for q in QUANTILES} if sample else {}
        if plan.edges is not None:
            f.bin_edges = list(plan.edges)
            f.histogram = _histogram(row, a, len(plan.edges))
    elif c.kind == "boolean":
        f.true_count = int(row[f"{a}_true"] or 0)
        f.top = [("true", f.true_count), ("false", count - f.true_count)]
        f.mean = f.true_count / count if count else None
        f.other_count = 0
    elif c.kind == "categorical":
        f.approx_distinct = int(row[f"{a}_distinct"] or 0)
        top = [(str(e["v"]), -int(e["n"])) for e in row[f"{a}_top"] or []]
        listed = {v for v, _ in top}
        kept = sorted(
            ((str(e["key"]), int(e["value"])) for e in row[f"{a}_kept"] or [] if str(e["key"]) not in listed),
            key=lambda item: (-item[1], item[0]),
        )
        f.top = top + kept
        f.other_count = count - sum(n for _, n in f.top)
    return f


def _histogram(row: dict[str, Any], alias: str, edges: int) -> list[int]:
    """Counts per bin from the non-null count and the cumulative counts `value >= edge i`."""
    at_least = [int(row[f"{alias}_count"] or 0)] + [int(row[f"{alias}_ge{i}"] or 0) for i in range(edges)]
    return [a - b for a, b in itertools.pairwise([*at_least, 0])]


def _shifted_moments(shift: float, n: int, s1: Any, s2: Any) -> tuple[float | None, float | None]:
    """Mean and sample stddev from n, sum(x - shift) and sum((x - shift)^2)."""
    if n == 0 or s1 is None or s2 is None:
        return None, None
    mean = finite(shift + s1 / n)
    if n < 2:
        return mean, None
    variance = max((s2 - s1 * s1 / n) / (n - 1), 0.0)
    return mean, finite(math.sqrt(variance))


def _baseline_feature(baseline: Profile | None, column: Column) -> FeatureProfile | None:
    if baseline is None:
        return None
    return match_feature(baseline, column.view, column.name)


def match_feature(profile: Profile, view: str | None, name: str) -> FeatureProfile | None:
    """The profile's feature `name` of `view`; else the only feature of that name, whatever its view."""
    same = [f for f in profile.features if f.name == name]
    exact = [f for f in same if f.view == view]
    if exact:
        return exact[0]
    return same[0] if len(same) == 1 else None


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly between ranks (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def decile_edges(ordered: Sequence[float], bins: int) -> list[float]:
    """Interior bin edges at the 1/bins .. (bins-1)/bins quantiles, repeated values dropped."""
    if not ordered:
        return []
    low = ordered[0]
    edges = [e for e in sorted({quantile(ordered, j / bins) for j in range(1, bins)}) if e > low]
    if not edges and ordered[-1] > low:  # mostly one value: split it from the rest
        edges = [next(v for v in ordered if v > low)]
    return edges
