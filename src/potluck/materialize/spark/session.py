"""The Spark session of the engine: the running one, or one built from `batch_engine.spark_conf`.

The engine works in its own child session (`newSession`): it shares the running SparkContext but
has its own SQL settings (time zone UTC) and temporary views, so a caller's session is unchanged.
Executors' Python workers must import potluck: a session built here runs them on this
interpreter unless `PYSPARK_PYTHON` says otherwise (PySpark reads that variable when the
SparkContext starts, not the `spark.pyspark.python` setting).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXTRA = "pip install 'potluck[spark]'"


def import_pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise ConfigError(f"batch_engine.type spark.engine needs pyspark; install it with {EXTRA}") from None
    return pyspark


def engine_session(spark_conf: Mapping[str, Any]) -> SparkSession:
    """A child session of the active Spark session (built from `spark_conf` when none runs), in UTC."""
    import_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None:
        builder = SparkSession.builder.appName("potluck-materialize")
        conf = {str(k): _text(v) for k, v in spark_conf.items()}
        os.environ.setdefault("PYSPARK_PYTHON", conf.get("spark.pyspark.python", sys.executable))
        conf.setdefault("spark.ui.showConsoleProgress", "false")
        for key, value in conf.items():
            builder = builder.config(key, value)
        active = builder.getOrCreate()
    session = active.newSession()
    for key, value in spark_conf.items():
        if str(key).startswith("spark.sql."):
            session.conf.set(str(key), _text(value))
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
