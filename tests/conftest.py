"""Shared fixtures: a fresh PostgreSQL database per test."""

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
