"""Seeded synthetic data and feature repositories for the side-by-side benchmarks.

Two feature views over Parquet files:
  user_stats      keyed by user_id (Int64), 10 features of mixed types with nulls, ttl 3 days
  merchant_stats  keyed by merchant_id (Int64), 4 features, ttl 7 days
Feature rows span `--days` days ending at `--anchor`. About 5% of feature rows repeat another row's
(key, event_timestamp) with a different created_timestamp, so created_timestamp decides those ties;
(key, event_timestamp, created_timestamp) is always unique, so the expected answer is unambiguous.

The entity dataframe (row_id, user_id, merchant_id, event_timestamp, label) has rows before any
feature data, inside the ttl windows, beyond them, exactly on a feature row's timestamp, exactly on
the inclusive ttl bound and one second past it, ids with no feature rows at all, and exact duplicates
(same keys, timestamp and label; only row_id, the input position, differs).

Usage: python benchmarks/generate.py --entity-rows 1000000 --user-rows 1000000 --out benchmarks/data/x
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

US = 1_000_000
DAY_US = 86_400 * US
USER_TTL = timedelta(days=3)
MERCHANT_TTL = timedelta(days=7)
NULL_FRACTION = 0.05
TIE_FRACTION = 0.05
DEFAULT_ANCHOR = "2024-02-01"

USER_FEATURES: list[tuple[str, str]] = [
    ("txn_count_7d", "Int64"),
    ("txn_count_30d", "Int64"),
    ("amount_sum_7d", "Float64"),
    ("amount_avg_30d", "Float64"),
    ("amount_max_7d", "Float32"),
    ("decline_rate_30d", "Float32"),
    ("account_age_days", "Int64"),
    ("risk_score", "Float64"),
    ("segment", "String"),
    ("home_country", "String"),
]
MERCHANT_FEATURES: list[tuple[str, str]] = [
    ("merchant_txn_count_1d", "Int64"),
    ("merchant_fraud_rate", "Float32"),
    ("merchant_avg_ticket", "Float64"),
    ("merchant_category", "String"),
]
# The 12 features read online: 8 from user_stats and all 4 of merchant_stats.
ONLINE_USER_FEATURES = [name for name, _ in USER_FEATURES[:8]]
ALL_REFS = [f"user_stats:{n}" for n, _ in USER_FEATURES] + [f"merchant_stats:{n}" for n, _ in MERCHANT_FEATURES]
ONLINE_REFS = [f"user_stats:{n}" for n in ONLINE_USER_FEATURES] + [f"merchant_stats:{n}" for n, _ in MERCHANT_FEATURES]

SEGMENTS = ["bronze", "silver", "gold", "platinum"]
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR", "MX", "IN", "JP", "AU", "CA", "ZA"]
CATEGORIES = ["grocery", "fuel", "travel", "electronics", "fashion", "restaurants", "gaming", "pharmacy"]


@dataclass(frozen=True)
class Spec:
    entity_rows: int
    user_rows: int
    merchant_rows: int
    users: int
    merchants: int
    days: int = 30
    seed: int = 42
    anchor: str = DEFAULT_ANCHOR  # feature data ends at this UTC date (exclusive)

    @property
    def name(self) -> str:
        return (
            f"e{self.entity_rows}_u{self.user_rows}_m{self.merchant_rows}_U{self.users}_M{self.merchants}"
            f"_d{self.days}_s{self.seed}_a{self.anchor}"
        )

    @property
    def end(self) -> datetime:
        return datetime.fromisoformat(self.anchor).replace(tzinfo=UTC)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype("int64"), type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _null_mask(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < NULL_FRACTION


def _strings(rng: np.random.Generator, n: int, choices: list[str]) -> pa.Array:
    idx = pa.array(rng.integers(0, len(choices), n).astype("int32"), mask=_null_mask(rng, n))
    return pa.DictionaryArray.from_arrays(idx, pa.array(choices)).cast(pa.string())


def _feature_column(rng: np.random.Generator, n: int, kind: str, i: int) -> pa.Array:
    mask = _null_mask(rng, n)
    if kind == "Int64":
        return pa.array(rng.integers(0, 6 + 14 * i, n, dtype="int64"), mask=mask)
    if kind == "Float64":
        return pa.array(rng.gamma(2.0, 50.0 + i, n), mask=mask)
    if kind == "Float32":
        return pa.array(rng.random(n).astype("float32"), mask=mask)
    raise ValueError(kind)


def _unique_created(keys: np.ndarray, ev: np.ndarray, created: np.ndarray) -> np.ndarray:
    """Nudge created timestamps by 1 us until (key, event, created) is unique."""
    # Only rows sharing (key, event) can collide; find them with one sort of a combined key.
    combo = keys * (1 << 40) + (ev - ev.min()) // US
    order = np.argsort(combo, kind="stable")
    sc = combo[order]
    same = np.zeros(combo.size, dtype=bool)
    eq = sc[1:] == sc[:-1]
    same[order[1:][eq]] = True
    same[order[:-1][eq]] = True
    rows = np.flatnonzero(same)
    while rows.size:
        sub = rows[np.lexsort((created[rows], ev[rows], keys[rows]))]
        k, e, c = keys[sub], ev[sub], created[sub]
        dup = (k[1:] == k[:-1]) & (e[1:] == e[:-1]) & (c[1:] == c[:-1])
        if not dup.any():
            break
        created[sub[1:][dup]] += 1
    return created


def feature_table(
    rng: np.random.Generator, spec: Spec, rows: int, keys: int, key_name: str, features: list[tuple[str, str]]
) -> pa.Table:
    start_us = int(spec.start.timestamp()) * US
    span_s = spec.days * 86_400
    key = rng.integers(0, keys, rows).astype("int64")
    ev = start_us + rng.integers(0, span_s, rows).astype("int64") * US  # whole seconds
    ties = np.flatnonzero(rng.random(rows) < TIE_FRACTION)
    src = rng.integers(0, rows, ties.size)
    key[ties] = key[src]
    ev[ties] = ev[src]
    created = ev + rng.integers(1, 3_600 * US, rows).astype("int64")
    created = _unique_created(key, ev, created)
    cols: dict[str, pa.Array] = {key_name: pa.array(key)}
    for i, (name, kind) in enumerate(features):
        if kind == "String":
            cols[name] = _strings(
                rng, rows, SEGMENTS if "segment" in name else COUNTRIES if "country" in name else CATEGORIES
            )
        else:
            cols[name] = _feature_column(rng, rows, kind, i)
    cols["event_timestamp"] = _ts(ev)
    cols["created_timestamp"] = _ts(created)
    return pa.table(cols)


def entity_table(rng: np.random.Generator, spec: Spec, users: pa.Table) -> pa.Table:
    n = spec.entity_rows
    start_us = int(spec.start.timestamp()) * US
    end_us = int(spec.end.timestamp()) * US
    # Up to 2 days before the first feature row and 5 days past the last (beyond both ttls).
    lo, hi = start_us - 2 * DAY_US, end_us + 5 * DAY_US
    user_id = rng.integers(0, max(1, int(spec.users * 1.02)), n).astype("int64")  # ~2% unknown ids
    merchant_id = rng.integers(0, max(1, int(spec.merchants * 1.02)), n).astype("int64")
    ts = lo + rng.integers(0, (hi - lo) // US, n).astype("int64") * US
    # Rows placed exactly on a user feature row's timestamp, on its inclusive ttl bound, and 1 s past it.
    fu = users.column("user_id").to_numpy()
    fe = users.column("event_timestamp").cast(pa.int64()).to_numpy()
    ttl_us = int(USER_TTL.total_seconds()) * US
    for frac, offset in ((0.03, 0), (0.03, ttl_us), (0.02, ttl_us + US)):
        rows = np.flatnonzero(rng.random(n) < frac)
        pick = rng.integers(0, fu.size, rows.size)
        user_id[rows] = fu[pick]
        ts[rows] = fe[pick] + offset
    label = rng.integers(0, 2, n).astype("int64")
    dups = np.flatnonzero(rng.random(n) < 0.05)
    src = rng.integers(0, n, dups.size)
    for arr in (user_id, merchant_id, ts, label):
        arr[dups] = arr[src]
    return pa.table(
        {
            "row_id": pa.array(np.arange(n, dtype="int64")),
            "user_id": pa.array(user_id),
            "merchant_id": pa.array(merchant_id),
            "event_timestamp": _ts(ts),
            "label": pa.array(label),
        }
    )


def generate(spec: Spec, out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    t0 = time.perf_counter()
    users = feature_table(rng, spec, spec.user_rows, spec.users, "user_id", USER_FEATURES)
    merchants = feature_table(rng, spec, spec.merchant_rows, spec.merchants, "merchant_id", MERCHANT_FEATURES)
    entities = entity_table(rng, spec, users)
    t1 = time.perf_counter()
    pq.write_table(users, out / "user_stats.parquet", row_group_size=1 << 20)
    pq.write_table(merchants, out / "merchant_stats.parquet", row_group_size=1 << 20)
    pq.write_table(entities, out / "entity_df.parquet", row_group_size=1 << 20)
    t2 = time.perf_counter()
    for tool in ("potluck", "feast"):
        write_repo(out / "repos" / tool, tool, out)
    (out / "spec.json").write_text(json.dumps(asdict(spec), indent=2))
    return {"generate_s": round(t1 - t0, 3), "write_s": round(t2 - t1, 3)}


def ensure_dataset(spec: Spec, root: Path) -> Path:
    """The dataset's folder under `root`, generated first if missing."""
    out = root / spec.name
    if not (out / "spec.json").exists():
        timings = generate(spec, out)
        print(f"generated {out} in {timings}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------------
# Feature repositories: identical definitions apart from the import lines and the store config.

FEATURES_PY = """\
from datetime import timedelta

from {lib} import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from {lib}.types import Float32, Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.INT64)

user_stats_source = FileSource(
    name="user_stats_source",
    path={user_path!r},
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
)
merchant_stats_source = FileSource(
    name="merchant_stats_source",
    path={merchant_path!r},
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
)

user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(seconds={user_ttl}),
    schema=[
        Field(name="user_id", dtype=Int64),
{user_fields}
    ],
    source=user_stats_source,
    online=True,
)
merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(seconds={merchant_ttl}),
    schema=[
        Field(name="merchant_id", dtype=Int64),
{merchant_fields}
    ],
    source=merchant_stats_source,
    online=True,
)

fraud_model = FeatureService(name="fraud_model", features=[user_stats, merchant_stats])
"""


def _fields(features: list[tuple[str, str]]) -> str:
    return "\n".join(f'        Field(name="{name}", dtype={kind}),' for name, kind in features)


def store_yaml(offline: str = "duckdb", online: str = "sqlite", redis: str = "127.0.0.1:6379") -> str:
    if online == "redis":
        online_cfg = f'  type: redis\n  connection_string: "{redis}"\n'
    else:
        online_cfg = "  type: sqlite\n  path: data/online_store.db\n"
    return (
        "project: bench\n"
        "registry: data/registry.db\n"
        "provider: local\n"
        f"offline_store:\n  type: {offline}\n"
        f"online_store:\n{online_cfg}"
        "entity_key_serialization_version: 3\n"
    )


def write_repo(
    dest: Path,
    tool: str,
    data_dir: Path,
    offline: str = "duckdb",
    online: str = "sqlite",
    redis: str = "127.0.0.1:6379",
) -> Path:
    """Write `features.py` and `feature_store.yaml` for `tool` ("potluck" or "feast") into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "data").mkdir(exist_ok=True)
    data_dir = data_dir.resolve()
    (dest / "features.py").write_text(
        FEATURES_PY.format(
            lib=tool,
            user_path=str(data_dir / "user_stats.parquet"),
            merchant_path=str(data_dir / "merchant_stats.parquet"),
            user_ttl=int(USER_TTL.total_seconds()),
            merchant_ttl=int(MERCHANT_TTL.total_seconds()),
            user_fields=_fields(USER_FEATURES),
            merchant_fields=_fields(MERCHANT_FEATURES),
        )
    )
    (dest / "feature_store.yaml").write_text(store_yaml(offline, online, redis))
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entity-rows", type=int, default=100_000)
    p.add_argument("--user-rows", type=int, default=100_000)
    p.add_argument("--merchant-rows", type=int, default=None, help="default: user rows / 10")
    p.add_argument("--users", type=int, default=None, help="default: user rows / 10")
    p.add_argument("--merchants", type=int, default=None, help="default: merchant rows / 20")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--anchor", default=DEFAULT_ANCHOR, help="UTC date the feature data ends at")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    merchant_rows = a.merchant_rows if a.merchant_rows is not None else max(1, a.user_rows // 10)
    spec = Spec(
        entity_rows=a.entity_rows,
        user_rows=a.user_rows,
        merchant_rows=merchant_rows,
        users=a.users if a.users is not None else max(1, a.user_rows // 10),
        merchants=a.merchants if a.merchants is not None else max(1, merchant_rows // 20),
        days=a.days,
        seed=a.seed,
        anchor=a.anchor,
    )
    print(json.dumps(generate(spec, a.out)))


if __name__ == "__main__":
    main()
