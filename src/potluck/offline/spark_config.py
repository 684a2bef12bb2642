"""`offline_store: type: spark`: the Spark offline store's section of `feature_store.yaml` (Feast's keys).

Kept apart from the store so that reading a config never imports pyspark.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SparkConfValue = str | bool | int | float


class SparkOfflineStoreConfig(BaseModel):
    """Feast's `SparkOfflineStoreConfig` keys.

    `spark_conf` settings build the session when none is active in the process (an active one,
    such as a notebook's, is reused as it is, except that its session time zone is set to UTC);
    `staging_location` is the folder (or URL Spark can write to) for results handed to the driver
    in batches, default a temporary folder; `region` is accepted for Feast compatibility only.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["spark"] = "spark"
    spark_conf: dict[str, SparkConfValue] | None = None
    staging_location: str | None = None
    region: str | None = None

    def conf_strings(self) -> dict[str, str]:
        """The settings as Spark takes them: booleans as `true`/`false`, numbers in decimal."""
        out: dict[str, str] = {}
        for key, value in (self.spark_conf or {}).items():
            out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out
