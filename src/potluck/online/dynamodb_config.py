"""The DynamoDB online store's `feature_store.yaml` section and its table names.

Kept apart from the store so that reading a config never imports boto3.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from potluck.definitions.errors import ConfigError

if TYPE_CHECKING:
    from potluck.online.protocol import OnlineView

# DynamoDB's own limits (moto does not enforce them all): checked here, before any call.
MAX_BATCH_GET_KEYS = 100  # keys per BatchGetItem call, over all its tables
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")
_FIELDS = {"project", "table_name"}


class DynamoDBOnlineStoreConfig(BaseModel):
    """`online_store: {type: dynamodb, region: ..., ...}` (Feast's keys and meanings)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["dynamodb"]
    region: str
    # One table per view; {table_name} is the view's name (with its online generation, docs/online-stores.md).
    table_name_template: str = "{project}.{table_name}"
    batch_size: int = Field(default=MAX_BATCH_GET_KEYS, ge=1, le=MAX_BATCH_GET_KEYS)  # keys per BatchGetItem
    endpoint_url: str | None = None
    consistent_reads: bool = False
    tags: dict[str, str] | None = None  # added to every table created
    max_read_workers: int = Field(default=10, ge=1, le=256)  # BatchGetItem calls in flight for one read
    max_write_workers: int = Field(default=16, ge=1, le=256)  # conditional writes in flight for one write
    max_pool_connections: int = Field(default=50, ge=1)  # HTTP connections (raised to the workers' need)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=10.0, gt=0)
    total_max_retry_attempts: int | None = Field(default=3, ge=1)
    retry_mode: Literal["legacy", "standard", "adaptive"] | None = "adaptive"
    table_ready_timeout_seconds: float = Field(default=300.0, gt=0)  # waiting for a table to be ACTIVE or gone

    @field_validator("table_name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as err:
            raise ValueError(f"is not a valid template ({err}); use e.g. '{{project}}.{{table_name}}'") from None
        if not fields <= _FIELDS:
            raise ValueError(f"may use only {{project}} and {{table_name}}, not {', '.join(sorted(fields - _FIELDS))}")
        if "table_name" not in fields:
            raise ValueError("must contain {table_name}: every view needs its own table")
        return value


def table_name(template: str, view: OnlineView) -> str:
    """The DynamoDB table of a view: the template filled in, the generation after the view's name.

    View and project names never contain '.', so `view.g12` is never another view's name.
    """
    name = f"{view.name}.g{view.generation}" if view.generation else view.name
    table = template.format(project=view.project, table_name=name)
    if not _TABLE_NAME.fullmatch(table):
        raise ConfigError(
            f"online_store.table_name_template '{template}' gives the table name '{table}' for feature view "
            f"'{view.name}', which DynamoDB refuses: a table name has 3 to 255 characters among letters, "
            "digits, '_', '-' and '.'"
        )
    return table
