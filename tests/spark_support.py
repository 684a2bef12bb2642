"""One local Spark session for the whole test run (master local[2,2], loopback only, no UI).

Starting Spark takes seconds, so the `spark_session` fixture (tests/conftest.py) starts it once,
and every Spark test shares it; the Spark offline store reuses the active session. pyspark or a
Java runtime missing fails in CI and skips elsewhere, like an unreachable server.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from typing import Any

import pytest

# Every setting a test session has; benchmarks use the same ones for both stores.
SPARK_TEST_CONF: dict[str, str] = {
    "spark.master": "local[2,2]",  # a failed task is retried once, as on a cluster (local[N] never retries)
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "1g",
    "spark.sql.adaptive.enabled": "true",
}


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the Spark tests are required)")
    pytest.skip(message)


def start_spark(conf: dict[str, str] | None = None) -> Any:
    """A new local Spark session bound to 127.0.0.1 with `SPARK_TEST_CONF` (and `conf` over it)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _unavailable("pyspark is not installed (pip install 'potluck[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _unavailable("no Java runtime (java on PATH or JAVA_HOME) for Spark")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers (the Spark engine) import potluck
    builder = SparkSession.builder.appName("potluck-tests")
    for key, value in {**SPARK_TEST_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("OFF")  # failures reach the tests as exceptions
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    return session
