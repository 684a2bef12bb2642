"""The Spark session the Spark offline store runs on: the active one, else one built from `spark_conf`.

pyspark is imported here and only when a Spark store is built, with an error naming the extra.
Every query of the store compares timestamps as instants read in UTC, so the session time zone is
set to UTC (on a reused session too; the setting is per session, and queries of other code that
rely on another zone should use a session of their own).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import MissingExtraError

if TYPE_CHECKING:
    from potluck.offline.spark_config import SparkOfflineStoreConfig

# Settings a new session gets unless `spark_conf` sets them.
DEFAULT_CONF: dict[str, str] = {
    "spark.app.name": "potluck",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def import_pyspark() -> Any:
    """The `pyspark.sql` module, or an error naming the extra to install."""
    try:
        import pyspark.sql
    except ImportError:
        raise MissingExtraError("pyspark", "spark") from None
    return pyspark.sql


def spark_session(config: SparkOfflineStoreConfig | None = None) -> Any:
    """The active Spark session, else a new one from `config.spark_conf` over `DEFAULT_CONF`."""
    sql = import_pyspark()
    session = sql.SparkSession.getActiveSession()
    if session is None:
        # Python workers (the Spark engine's writers) import potluck: this interpreter unless told otherwise.
        # PySpark reads the variable when the SparkContext starts; `spark.pyspark.python` is spark-submit's.
        conf_python = (config.conf_strings() if config is not None else {}).get("spark.pyspark.python")
        os.environ.setdefault("PYSPARK_PYTHON", conf_python or sys.executable)
        builder = sql.SparkSession.builder
        conf = {**DEFAULT_CONF, **(config.conf_strings() if config is not None else {})}
        for key, value in conf.items():
            builder = builder.config(key, value)
        if "spark.master" not in conf:
            builder = builder.master("local[*]")
        session = builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session
