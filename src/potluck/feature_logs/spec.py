"""What one feature service logs: its columns (Feast's log schema) and where the files go."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

LOG_TIMESTAMP = "__log_timestamp"
LOG_DATE = "__log_date"
REQUEST_ID = "__request_id"
TIMESTAMP_SUFFIX = "__timestamp"
STATUS_SUFFIX = "__status"

# Feast's FieldStatus numbers (serving.proto), as its loggers write them.
STATUS_CODES: dict[str, int] = {"INVALID": 0, "PRESENT": 1, "NULL_VALUE": 2, "NOT_FOUND": 3, "OUTSIDE_MAX_AGE": 4}


@dataclass(frozen=True, eq=False)
class LogSpec:
    """The log of one feature service at one registry version.

    `keys` are the join keys (taken from the request's entities), `features` the columns
    `{view}__{feature}` in the order the online answer lists its features; each with its Potluck
    type (anything with `to_arrow()`: the server's process never needs pyarrow for the log).
    `view_widths` counts the features of each view, in that order: the features of one view come
    from one stored row, so they share one status and one event time per entity row (an on-demand
    view's outputs each count as a view of one: each has its own status). `request_fields` are
    the request data the service's on-demand views read (taken from the request's entities), as
    Feast logs them.
    """

    service: str
    sample_rate: float
    path: Path
    partition_by: tuple[str, ...]  # folder levels: `__log_date` first, then join keys
    keys: tuple[tuple[str, Any], ...]
    features: tuple[tuple[str, Any], ...]
    view_widths: tuple[int, ...]
    request_fields: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if sum(self.view_widths) != len(self.features):
            raise ValueError("LogSpec: view_widths must add up to the number of features")

    @cached_property
    def schema(self) -> Any:
        import pyarrow as pa

        timestamp = pa.timestamp("us", tz="UTC")
        fields = [pa.field(name, dtype.to_arrow()) for name, dtype in (*self.keys, *self.request_fields)]
        for name, dtype in self.features:
            fields += [
                pa.field(name, dtype.to_arrow()),
                pa.field(name + TIMESTAMP_SUFFIX, timestamp),
                pa.field(name + STATUS_SUFFIX, pa.int32()),
            ]
        fields += [
            pa.field(LOG_TIMESTAMP, timestamp),
            pa.field(LOG_DATE, pa.date32()),
            pa.field(REQUEST_ID, pa.string()),
        ]
        return pa.schema(fields)
