"""Shared fixtures (a fresh PostgreSQL database per test, one of each server per run) and the run's
organisation for speed: the Feast and Airflow environments install in the background from the start,
and under pytest-xdist the tests sharing one Spark session or one module's fixtures run on one worker."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# In CI, property-based and fuzz tests replay the same examples on every run, so a result depends
# on the code alone; locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")

from tests_support import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, require_server  # noqa: E402


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards; yields its URL."""
    require_server("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    import psycopg

    name = f"potluck_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def feast_python() -> Path:
    """Feast 0.67's interpreter in its own virtual environment (installed on first use)."""
    from feast_support import ensure_feast

    return ensure_feast()


@pytest.fixture(scope="session")
def airflow_command() -> Path:
    """The `airflow` command of Airflow 3.x in its own virtual environment (installed on first use)."""
    from airflow_support import ensure_airflow

    return ensure_airflow()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """A Tansu Kafka-protocol broker on loopback for the whole session; yields its bootstrap "127.0.0.1:PORT".

    Tests isolate themselves by unique topic and group names (`stream_support.unique_name`).
    """
    from stream_support import start_tansu, stop_tansu
    from tests_support import free_port

    port = free_port()
    proc = start_tansu(port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_tansu(proc)


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A primary, a replica and three sentinels (master name "m") on loopback for the whole session.

    Yields the sentinels' "host:port"s. Shared by the contract suites; nothing may kill its processes
    (the failover tests start their own).
    """
    from sentinel_support import SentinelGroup

    group = SentinelGroup(tmp_path_factory.mktemp("redis-sentinel")).start()
    try:
        yield group.sentinel_hosts
    finally:
        group.stop()


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """One local Spark session (local[2,2], 127.0.0.1, no UI) for every Spark test; stopped at the end."""
    from spark_support import start_spark

    session = start_spark()
    try:
        yield session
    finally:
        session.stop()


# Fixtures whose environment the run installs in the background as soon as a collected test needs it.
_PREFETCHED = {"feast_python": "feast_support", "airflow_command": "airflow_support"}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start installing the environments the selected tests need while the first tests run (in the
    first xdist worker only: every worker collects the same tests)."""
    import importlib

    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        return

    from venv_prefetch import prefetch

    needed = {name for item in session.items for name in getattr(item, "fixturenames", ()) if name in _PREFETCHED}
    prefetch(importlib.import_module(_PREFETCHED[name]).INSTALL for name in sorted(needed))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that may wait for an environment's install has the install's time on top of its own."""
    for item in items:
        if item.get_closest_marker("timeout") is None and _PREFETCHED.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.timeout(1800))


def pytest_unconfigure(config: pytest.Config) -> None:
    from venv_prefetch import stop_all

    stop_all()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `pytest -n N --dist loadgroup`: the run's groups of `xdist_groups.py`."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist_groups import GroupScheduling

    return GroupScheduling(config, log)
