"""`potluck init`: a working demo repository with generated sample data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from potluck.definitions.errors import RepositoryError

FEATURE_STORE_YAML = """\
project: {project}
# The registry of definitions: a SQLite file here; use postgresql://... for a team.
registry:
  path: data/registry.db
  cache_ttl_seconds: 5
provider: local
# Training data: DuckDB over the Parquet files in data/.
offline_store:
  type: duckdb
# Serving: the latest feature values in a SQLite file.
online_store:
  type: sqlite
  path: data/online_store.db
entity_key_serialization_version: 3
"""

FEATURES_PY = '''\
"""Feature definitions of the demo: users and merchants of a payments app."""

from datetime import timedelta

from potluck import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from potluck.types import Bool, Float32, Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="A customer")
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.INT64, description="A shop")

user_source = FileSource(
    name="user_stats_source",
    path="data/user_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
merchant_source = FileSource(
    name="merchant_stats_source",
    path="data/merchant_stats.parquet",
    timestamp_field="event_timestamp",
)

user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=2),
    schema=[
        Field(name="txn_count_7d", dtype=Int64, description="Transactions in the last 7 days"),
        Field(name="avg_amount_30d", dtype=Float64, description="Mean amount over 30 days"),
        Field(name="country", dtype=String),
        Field(name="is_premium", dtype=Bool),
    ],
    source=user_source,
    owner="risk-team@example.com",
    tags={"team": "risk"},
)

merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(days=7),
    schema=[
        Field(name="risk_score", dtype=Float32),
        Field(name="category", dtype=String),
    ],
    source=merchant_source,
    tags={"team": "risk"},
)

fraud_model_v1 = FeatureService(
    name="fraud_model_v1",
    features=[user_stats[["txn_count_7d", "avg_amount_30d", "is_premium"]], merchant_stats],
    description="Features of the fraud model",
)
'''

IGNORE = """\
# Paths (globs) that `potluck apply` does not import.
data/
"""


def generate_data(data_dir: Path, *, users: int = 1000, merchants: int = 100, days: int = 14, seed: int = 7) -> None:
    """Write seeded sample data: user and merchant statistics and a labelled entity dataframe."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    span = int((end - start).total_seconds())

    def times(n: int) -> pa.Array:
        offsets = rng.integers(0, span, n)
        return pa.array(
            np.datetime64(start.replace(tzinfo=None), "s") + offsets.astype("timedelta64[s]"),
            pa.timestamp("us", tz="UTC"),
        )

    n = users * days
    event = times(n)
    created = pa.compute.add(event, pa.scalar(timedelta(minutes=5)))
    amount = rng.gamma(2.0, 40.0, n)
    pq.write_table(
        pa.table(
            {
                "user_id": rng.integers(1, users + 1, n).astype("int64"),
                "event_timestamp": event,
                "created": created,
                "txn_count_7d": rng.poisson(12, n).astype("int64"),
                "avg_amount_30d": pa.array(amount, mask=rng.random(n) < 0.02),
                "country": rng.choice(["DE", "FR", "US", "BR", "IN"], n),
                "is_premium": rng.random(n) < 0.2,
            }
        ),
        data_dir / "user_stats.parquet",
    )
    m = merchants * days
    pq.write_table(
        pa.table(
            {
                "merchant_id": rng.integers(1, merchants + 1, m).astype("int64"),
                "event_timestamp": times(m),
                "risk_score": rng.random(m).astype("float32"),
                "category": rng.choice(["food", "travel", "games", "retail"], m),
            }
        ),
        data_dir / "merchant_stats.parquet",
    )
    k = 5000
    pq.write_table(
        pa.table(
            {
                "user_id": rng.integers(1, users + 1, k).astype("int64"),
                "merchant_id": rng.integers(1, merchants + 1, k).astype("int64"),
                "event_timestamp": times(k),
                "is_fraud": rng.random(k) < 0.03,
            }
        ),
        data_dir / "labels.parquet",
    )


TEMPLATES = ("local", "minimal")  # local: the demo with sample data; minimal: only feature_store.yaml
MINIMAL_FEATURES_PY = '''\
"""Feature definitions: declare Entity, FileSource, FeatureView and FeatureService objects here."""
'''


def project_name(folder: str) -> str:
    """A valid project name made from a folder name."""
    project = "".join(c if c.isalnum() else "_" for c in folder).strip("_") or "demo"
    return project if project[0].isalpha() else f"repo_{project}"


AIRFLOW_DAG = "airflow/potluck_feature_pipeline.py"  # where `init --airflow` puts the example DAG
_DAG_REPO_DEFAULT = 'os.environ.get("POTLUCK_REPO_PATH", "")'
AIRFLOW_IGNORE = """\
# The Airflow DAG: copy or link it into Airflow's dags folder; apply does not import it.
airflow/
"""


def example_dag() -> str:
    """The text of the example Airflow DAG (`examples/airflow/potluck_feature_pipeline.py`)."""
    from importlib import resources

    packaged = resources.files("potluck.repo").joinpath("airflow_example_dag.py")
    if packaged.is_file():  # an installed wheel carries a copy
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[3] / "examples" / "airflow" / "potluck_feature_pipeline.py"
    if checkout.is_file():  # an editable install reads the checkout's own
        return checkout.read_text(encoding="utf-8")
    raise RepositoryError(
        "the example Airflow DAG is missing from this installation of potluck; reinstall it, or copy "
        "examples/airflow/potluck_feature_pipeline.py from the source distribution"
    )


def write_airflow_dag(repo: Path) -> Path:
    """Copy the example DAG into `repo`, defaulting to this repository's path, and keep apply away from it."""
    text = example_dag()
    if _DAG_REPO_DEFAULT not in text:
        raise RepositoryError(
            f"the example Airflow DAG has no line {_DAG_REPO_DEFAULT!r} to fill in; reinstall potluck"
        )
    text = text.replace(_DAG_REPO_DEFAULT, f'os.environ.get("POTLUCK_REPO_PATH", {str(repo)!r})', 1)
    target = repo / AIRFLOW_DAG
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    ignore = repo / ".potluckignore"
    current = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if "airflow/" not in current.split():
        ignore.write_text(current + ("" if current.endswith("\n") or not current else "\n") + AIRFLOW_IGNORE)
    return target


def scaffold(
    directory: str | Path,
    *,
    force: bool = False,
    template: str = "local",
    project: str | None = None,
    airflow: bool = False,
) -> Path:
    """Create a repository from `template` in `directory` (project: from the folder name unless given);
    with `airflow`, also the example Airflow DAG in `airflow/`."""
    if template not in TEMPLATES:
        raise RepositoryError(f"unknown template '{template}'; the templates are {', '.join(TEMPLATES)}")
    path = Path(directory).resolve()
    if path.exists() and any(path.iterdir()) and not force:
        raise RepositoryError(f"{path} exists and is not empty; choose another folder or pass --force")
    name = project_name(project if project is not None else path.name)
    (path / "data").mkdir(parents=True, exist_ok=True)
    (path / "feature_store.yaml").write_text(FEATURE_STORE_YAML.format(project=name), encoding="utf-8")
    (path / ".potluckignore").write_text(IGNORE, encoding="utf-8")
    if airflow:
        write_airflow_dag(path)
    if template == "minimal":
        (path / "features.py").write_text(MINIMAL_FEATURES_PY, encoding="utf-8")
        return path
    (path / "features.py").write_text(FEATURES_PY, encoding="utf-8")
    generate_data(path / "data")
    return path
