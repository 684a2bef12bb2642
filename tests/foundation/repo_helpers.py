"""Building small feature repositories on disk for tests."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

YAML = """\
project: {project}
registry: {registry}
provider: local
online_store:
  path: data/online.db
"""

FEATURES = """\
from datetime import timedelta

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from potluck.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
source = FileSource(name="driver_source", path="data/driver.parquet", timestamp_field="ts", created_timestamp_column="created")
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours={ttl_hours}),
    schema=[{fields}],
    source=source,
    tags={{"team": "core"}},
)
service = FeatureService(name="driver_service", features=[driver_stats[["conv_rate"]]])
"""

DEFAULT_FIELDS = (
    'Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64), Field(name="city", dtype=String)'
)


def write_driver_data(path: Path) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2, 1], pa.int64()),
                "ts": pa.array([base, base, base + timedelta(hours=1)], pa.timestamp("us", tz="UTC")),
                "created": pa.array([base, base, base + timedelta(hours=1)], pa.timestamp("us", tz="UTC")),
                "conv_rate": [0.1, 0.2, 0.3],
                "trips": pa.array([1, 2, 3], pa.int64()),
                "city": ["a", "b", "c"],
            }
        ),
        path,
    )


def make_repo(
    root: Path,
    *,
    project: str = "test_project",
    registry: str = "data/registry.db",
    ttl_hours: int = 24,
    fields: str = DEFAULT_FIELDS,
    extra_files: dict[str, str] | None = None,
) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(YAML.format(project=project, registry=registry))
    (root / "features.py").write_text(FEATURES.format(ttl_hours=ttl_hours, fields=fields))
    for name, body in (extra_files or {}).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(body))
    if not (root / "data" / "driver.parquet").exists():
        write_driver_data(root / "data" / "driver.parquet")
    return root
