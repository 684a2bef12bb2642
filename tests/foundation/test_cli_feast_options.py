"""Feast 0.67's CLI spellings on `potluck`: each option parses and has its effect on a real repository."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from repo_helpers import make_repo

from potluck import FeatureStore
from tests_support import run_cli

TTL_HOURS = 24 * 366 * 30  # the rows of 2024 stay fresh online
START, END = "2023-12-31T00:00:00", "2024-01-02T00:00:00"
SECOND_VIEW = {
    "more.py": """
    from datetime import timedelta

    from potluck import FeatureView, Field
    from potluck.types import Int64
    from features import driver, source

    driver_trips = FeatureView(
        name="driver_trips", entities=[driver], ttl=timedelta(hours=24),
        schema=[Field(name="trips", dtype=Int64)], source=source,
    )
    """
}

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def repo(tmp_path: Path, capsys: Capsys) -> Path:
    root = make_repo(tmp_path / "repo", ttl_hours=TTL_HOURS, extra_files=SECOND_VIEW)
    code, _, err = run_cli(capsys, "-c", str(root), "apply", "-y")
    assert code == 0, err
    return root


def cli(capsys: Capsys, repo: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "-c", str(repo), *args)


def ok(capsys: Capsys, repo: Path, *args: str) -> str:
    code, out, err = cli(capsys, repo, *args)
    assert code == 0, err
    return out


def intervals(capsys: Capsys, repo: Path) -> list[dict[str, str]]:
    return json.loads(ok(capsys, repo, "materialization", "show", "-o", "json"))  # type: ignore[no-any-return]


# -- one function per option: run it, then check what it did -------------------------------------


def online_short_options(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", START, END, "--no-progress")
    out = ok(capsys, repo, "get-online-features", "-f", "driver_stats:trips", "-e", "driver_id=1", "-e", "driver_id=2",
             "-o", "json")
    assert json.loads(out)["values"]["trips"] == [3, 2]
    out = ok(capsys, repo, "get-online-features", "--features", "driver_stats:city", "--entities", "driver_id=2",
             "-o", "json")
    assert json.loads(out)["values"]["city"] == ["b"]


def historical_dataframe(capsys: Capsys, repo: Path) -> None:
    rows = json.dumps([{"event_timestamp": "2024-01-01T00:30:00", "driver_id": 1}, {"event_timestamp": END,
                                                                                    "driver_id": 1}])
    out = ok(capsys, repo, "get-historical-features", "-d", rows, "-f", "driver_stats:trips")
    assert [r["trips"] for r in json.loads(out)] == [1, 3]
    out = ok(capsys, repo, "get-historical-features", "--dataframe", rows, "--features", "driver_stats:conv_rate")
    assert [r["conv_rate"] for r in json.loads(out)] == [0.1, 0.3]


def historical_date_range(capsys: Capsys, repo: Path) -> None:
    out = ok(capsys, repo, "get-historical-features", "-s", "2024-01-01 00:00:00", "-e", "2024-01-01 00:30:00",
             "-f", "driver_stats:trips")
    assert sorted((r["driver_id"], r["trips"]) for r in json.loads(out)) == [(1, 1), (2, 2)]
    out = ok(capsys, repo, "get-historical-features", "--start-date", "2024-01-01T00:30:00", "--end-date", END,
             "-f", "driver_stats:trips")
    assert [(r["driver_id"], r["trips"]) for r in json.loads(out)] == [(1, 3)]  # driver 2 has no row in the range
    code, _, err = cli(capsys, repo, "get-historical-features", "-s", START, "-d", "[]", "-f", "driver_stats:trips")
    assert code == 2 and "--start-date" in err


def materialize_disable_event_timestamp(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", "--disable-event-timestamp", "--no-progress")
    assert {(i["view"], i["start"]) for i in intervals(capsys, repo)} == {
        ("driver_stats", "1970-01-01T00:00:00+00:00"),
        ("driver_trips", "1970-01-01T00:00:00+00:00"),
    }
    code, _, err = cli(capsys, repo, "materialize", START, END, "--disable-event-timestamp")
    assert code == 2 and "not both" in err
    code, _, err = cli(capsys, repo, "materialize")
    assert code == 2 and "--disable-event-timestamp" in err


def materialize_version(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", START, END, "-v", "driver_stats", "--version", "latest", "--no-progress")
    assert [i["view"] for i in intervals(capsys, repo)] == ["driver_stats"]
    code, _, err = cli(capsys, repo, "materialize", START, END, "-v", "driver_stats", "--version", "v7")
    assert code == 2 and "current version" in err
    code, _, err = cli(capsys, repo, "materialize-incremental", END, "--version", "latest")
    assert code == 2 and "exactly one feature view" in err


def incremental_verbose(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize", START, "2024-01-01T00:30:00", "-v", "driver_stats", "--no-progress")
    out = ok(capsys, repo, "materialize-incremental", END, "--verbose", "--feature-views", "driver_stats", "--no-progress")
    line = next(line for line in out.splitlines() if line.startswith("driver_stats:"))
    assert "interval 2024-01-01T00:30:00+00:00 .. 2024-01-02T00:00:00+00:00" in line
    assert "read 1 rows" in line and "wrote 1 rows" in line  # driver 1's row at 01:00
    assert "rows read" in out  # the table's extra column
    quiet = ok(capsys, repo, "materialize-incremental", END, "--feature-views", "driver_stats", "--no-progress")
    assert "rows read" not in quiet and "driver_stats:" not in quiet


def feature_views_alias(capsys: Capsys, repo: Path) -> None:
    ok(capsys, repo, "materialize-incremental", END, "--feature-views", "driver_trips", "--no-progress")
    assert [i["view"] for i in intervals(capsys, repo)] == ["driver_trips"]
    ok(capsys, repo, "materialize", START, END, "--feature-views", "driver_stats", "--no-progress")
    assert sorted(i["view"] for i in intervals(capsys, repo)) == ["driver_stats", "driver_trips"]


def apply_options(capsys: Capsys, repo: Path) -> None:
    (repo / "extra.py").write_text(
        "from potluck import Entity, ValueType\nrider = Entity(name='rider', join_keys=['rider_id'], "
        "value_type=ValueType.INT64)\n"
    )
    code, out, err = cli(capsys, repo, "apply", "-y", "--skip-source-validation", "--skip-feature-view-validation",
                         "--no-progress")
    assert code == 0, err
    assert "--skip-source-validation has no effect" in err and "--skip-feature-view-validation has no effect" in err
    assert "rider" in ok(capsys, repo, "entities", "list")
    code, _, err = cli(capsys, repo, "apply", "-y", "--no-promote")
    assert code == 2 and "--no-promote" in err
    code, _, err = cli(capsys, repo, "plan", "--skip-source-validation")
    assert code == 0 and "has no effect" in err


def tags_filters(capsys: Capsys, repo: Path) -> None:
    listings = {
        "feature-views": ["driver_stats"],
        "entities": [],
        "feature-services": [],
        "data-sources": [],
    }
    for group, tagged in listings.items():
        every = [o["name"] for o in json.loads(ok(capsys, repo, group, "list", "-o", "json"))]
        assert every, group
        for spelling in ("team:core", "team=core", "'team:core'"):
            found = [o["name"] for o in json.loads(ok(capsys, repo, group, "list", "--tags", spelling, "-o", "json"))]
            assert found == tagged, (group, spelling)
        both = ok(capsys, repo, group, "list", "--tags", "team:core, owner:x", "-o", "json")
        assert json.loads(both) == [], group
    projects = json.loads(ok(capsys, repo, "projects", "list", "--tags", "team:core", "-o", "json"))
    assert projects == []
    code, _, err = cli(capsys, repo, "entities", "list", "--tags", "team")
    assert code == 2 and "key:value" in err


def init_options(capsys: Capsys, repo: Path) -> None:
    base = repo.parent
    code, _, err = run_cli(capsys, "init", str(base / "empty"), "-m")
    assert code == 0, err
    assert (base / "empty" / "feature_store.yaml").is_file() and not (base / "empty" / "data" / "labels.parquet").exists()
    code, _, err = run_cli(capsys, "init", str(base / "demo"), "--template", "local")
    assert code == 0, err
    assert (base / "demo" / "data" / "user_stats.parquet").is_file()
    code, _, err = run_cli(capsys, "init", "named_project", "--repo-path", str(base / "elsewhere"), "-t", "minimal")
    assert code == 0, err
    assert FeatureStore(repo_path=base / "elsewhere").project == "named_project"
    code, _, err = run_cli(capsys, "init", str(base / "cloud"), "-t", "aws")
    assert code == 1 and "unknown template 'aws'" in err and "local, minimal" in err
    assert not (base / "cloud").exists()


def registry_dump_alias(capsys: Capsys, repo: Path) -> None:
    assert json.loads(ok(capsys, repo, "registry-dump")) == json.loads(ok(capsys, repo, "registry", "dump"))


def features_list(capsys: Capsys, repo: Path) -> None:
    listed = json.loads(ok(capsys, repo, "features", "list", "--output", "json"))
    assert {"feature_name": "trips", "feature_view": "driver_trips", "dtype": "Int64"} in listed
    assert len(listed) == 4
    described = json.loads(ok(capsys, repo, "features", "describe", "trips"))
    assert sorted(d["feature_view"] for d in described) == ["driver_stats", "driver_trips"]


def projects_list(capsys: Capsys, repo: Path) -> None:
    assert [p["name"] for p in json.loads(ok(capsys, repo, "projects", "list", "-o", "json"))] == ["test_project"]


def delete_object(capsys: Capsys, repo: Path) -> None:
    code, _, err = cli(capsys, repo, "delete", "driver_stats")
    assert code == 1 and "feature service 'driver_service'" in err
    assert "Deleted FeatureService 'driver_service'" in ok(capsys, repo, "delete", "driver_service")
    ok(capsys, repo, "delete", "driver_stats")
    remaining = json.loads(ok(capsys, repo, "registry-dump"))["objects"]["feature_view"]
    assert [v["name"] for v in remaining] == ["driver_trips"]
    code, _, err = cli(capsys, repo, "delete", "driver_trip")
    assert code == 1 and "Did you mean 'driver_trips'" in err


def yaml_path_environment(capsys: Capsys, repo: Path) -> None:
    other = repo / "conf" / "other.yaml"
    other.parent.mkdir()
    other.write_text((repo / "feature_store.yaml").read_text().replace("test_project", "other_project"))
    for name in ("FEAST_FS_YAML_FILE_PATH", "POTLUCK_FS_YAML_FILE_PATH"):
        with pytest.MonkeyPatch.context() as env:
            env.setenv(name, str(other))
            assert json.loads(ok(capsys, repo, "projects", "list", "-o", "json"))[0]["name"] == "other_project"
    out = ok(capsys, repo, "-f", str(other), "projects", "list", "-o", "json")
    assert json.loads(out)[0]["name"] == "other_project"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FEATURE_REPO_DIR_ENV_VAR", str(repo))
        code, out, err = run_cli(capsys, "projects", "list", "-o", "json")
        assert code == 0, err
        assert json.loads(out)[0]["name"] == "test_project"


CASES: list[Callable[[Capsys, Path], None]] = [
    online_short_options,
    historical_dataframe,
    historical_date_range,
    materialize_disable_event_timestamp,
    materialize_version,
    incremental_verbose,
    feature_views_alias,
    apply_options,
    tags_filters,
    init_options,
    registry_dump_alias,
    features_list,
    projects_list,
    delete_object,
    yaml_path_environment,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_feast_option(case: Callable[[Capsys, Path], None], repo: Path, capsys: Capsys) -> None:
    case(capsys, repo)


def test_log_level(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "potluck.cli", "-c", str(root), *args, "projects", "list"],
                              capture_output=True, text=True, check=False)

    assert "potluck.cli INFO" in run("--log-level", "info").stderr
    assert "potluck.cli INFO" in run("--log-level", "DEBUG").stderr
    assert "potluck.cli" not in run("--log-level", "warning").stderr
    assert "potluck.cli" not in run().stderr
    bad = run("--log-level", "loud")
    assert bad.returncode == 2 and "DEBUG, INFO, WARNING, ERROR, CRITICAL" in bad.stderr
