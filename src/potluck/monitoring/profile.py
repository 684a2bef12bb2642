"""Profiles: the statistics of a set of features over some data, and their JSON and Arrow forms.

A `Profile` is plain data: it is what a baseline stores (JSON in the registry database) and what
drift compares. Numbers are Python floats and ints; timestamps are seconds since the epoch (UTC).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import PotluckError
from potluck.monitoring.report import KINDS, Kind

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FORMAT_VERSION = 1
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class ProfileError(PotluckError, ValueError):
    """A profile's JSON could not be read."""


def quantile_name(q: float) -> str:
    return f"p{round(q * 100):d}"


@dataclass
class FeatureProfile:
    """Statistics of one feature (a column). Fields that do not apply to its kind are None.

    numeric, timestamp (seconds since the epoch) and array (lengths) features fill the moments,
    quantiles, histogram and sample; categorical and boolean features fill `top` and `other_count`.
    The histogram counts non-null values per bin of `bin_edges` (interior edges e1 < ... < ek;
    bins (-inf, e1), [e1, e2), ..., [ek, +inf)).
    """

    view: str | None
    name: str
    kind: Kind
    dtype: str
    count: int  # rows
    nulls: int
    mean: float | None = None
    stddev: float | None = None  # sample standard deviation (ddof = 1)
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)  # "p1" .. "p99"
    approx_distinct: int | None = None
    bin_edges: list[float] | None = None
    histogram: list[int] | None = None
    sample: list[float] | None = None  # seeded, bounded, non-null values (for KS)
    top: list[tuple[str, int]] | None = None  # most frequent values, most frequent first
    other_count: int | None = None  # non-null values outside `top`
    true_count: int | None = None  # booleans

    @property
    def null_rate(self) -> float | None:
        return self.nulls / self.count if self.count else None

    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.view, self.name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["null_rate"] = self.null_rate
        if self.top is not None:
            data["top"] = [[v, c] for v, c in self.top]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureProfile:
        values = {k: v for k, v in data.items() if k != "null_rate"}
        if values.get("kind") not in KINDS:
            raise ProfileError(f"feature '{values.get('name')}': kind {values.get('kind')!r} is not one of {KINDS}")
        if values.get("top") is not None:
            values["top"] = [(str(v), int(c)) for v, c in values["top"]]
        try:
            return cls(**values)
        except TypeError as err:
            raise ProfileError(f"feature '{values.get('name')}': {err}") from None


@dataclass
class Profile:
    """Statistics of features over one set of rows: a view's source in a time range, a dataset, logs."""

    source: str  # what was profiled: "view:NAME", "dataset:PATH", "service:NAME", ...
    features: list[FeatureProfile]
    start: datetime | None = None
    end: datetime | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seed: int = 0
    sample_size: int = 0
    row_count: int = 0

    def feature(self, name: str, view: str | None = None) -> FeatureProfile:
        for f in self.features:
            if f.name == name and (view is None or f.view == view):
                return f
        names = ", ".join(f"{f.view}:{f.name}" if f.view else f.name for f in self.features)
        raise KeyError(f"profile of {self.source} has no feature '{name}'; it has {names}")

    @property
    def views(self) -> list[str]:
        return sorted({f.view for f in self.features if f.view})

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "source": self.source,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "created_at": _iso(self.created_at),
            "seed": self.seed,
            "sample_size": self.sample_size,
            "row_count": self.row_count,
            "features": [f.to_dict() for f in self.features],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise ProfileError(f"not a profile of format version {FORMAT_VERSION}")
        try:
            return cls(
                source=str(data["source"]),
                features=[FeatureProfile.from_dict(f) for f in data["features"]],
                start=_time(data.get("start")),
                end=_time(data.get("end")),
                created_at=_time(data.get("created_at")) or datetime.now(UTC),
                seed=int(data.get("seed", 0)),
                sample_size=int(data.get("sample_size", 0)),
                row_count=int(data.get("row_count", 0)),
            )
        except KeyError as err:
            raise ProfileError(f"profile is missing the key {err}") from None

    @classmethod
    def from_json(cls, text: str) -> Profile:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ProfileError(f"not valid JSON: {err}") from None
        return cls.from_dict(data)

    # -- tables -----------------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """One row per feature: the scalar statistics, quantiles as columns p1 .. p99, top values as a list."""
        import pyarrow as pa

        rows = []
        for f in self.features:
            row: dict[str, Any] = {
                "view": f.view,
                "feature": f.name,
                "kind": f.kind,
                "dtype": f.dtype,
                "count": f.count,
                "nulls": f.nulls,
                "null_rate": f.null_rate,
                "mean": f.mean,
                "stddev": f.stddev,
                "min": f.min,
                "max": f.max,
            }
            for q in QUANTILES:
                row[quantile_name(q)] = f.quantiles.get(quantile_name(q))
            row["approx_distinct"] = f.approx_distinct
            row["top"] = [{"value": v, "count": c} for v, c in f.top] if f.top is not None else None
            row["other_count"] = f.other_count
            rows.append(row)
        schema = pa.schema(
            [
                ("view", pa.string()),
                ("feature", pa.string()),
                ("kind", pa.string()),
                ("dtype", pa.string()),
                ("count", pa.int64()),
                ("nulls", pa.int64()),
                ("null_rate", pa.float64()),
                ("mean", pa.float64()),
                ("stddev", pa.float64()),
                ("min", pa.float64()),
                ("max", pa.float64()),
                *[(quantile_name(q), pa.float64()) for q in QUANTILES],
                ("approx_distinct", pa.int64()),
                ("top", pa.list_(pa.struct([("value", pa.string()), ("count", pa.int64())]))),
                ("other_count", pa.int64()),
            ]
        )
        return pa.Table.from_pylist(rows, schema=schema)

    def to_pandas(self) -> pd.DataFrame:
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame

    to_df = to_pandas


def finite(value: Any) -> float | None:
    """A float, or None for null, NaN and infinities (JSON has no place for them)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ProfileError(f"'{value}' is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
