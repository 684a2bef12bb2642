"""Logged requests -> one Arrow table per feature service -> Parquet files, partitioned Hive style.

A file is written under a hidden temporary name in its partition folder, flushed to disk, then
renamed: readers (which skip names starting with '.') never see a half-written file, even when
the process is killed mid-write.
"""

from __future__ import annotations

import base64
import math
import os
import pickle
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from potluck.feature_logs.spec import (
    STATUS_CODES,
    LogSpec,
)

# One sampled request as the request path hands it over: (spec, request id or None, log time in
# seconds since the epoch, entity rows, the JSON body of the answer, the request's columns of the
# spec's request fields or None). The body already exists and holds every value, status and event
# time served (and the join keys, echoed first): nothing is copied or converted for the log while
# the request is answered.
# The SDK hands over the same shape pickled instead (see `served.served_body`).
LogRecord = tuple[LogSpec, str | None, float, int, bytes, Mapping[str, list[Any]] | None]

_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_US_PER_DAY = 86_400_000_000
_NOT_FOUND_CODE = STATUS_CODES["NOT_FOUND"]
_PICKLE = b"\x80"  # the first byte of a pickle (protocol 2 and later); a JSON body starts with '{'
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class LogShapeError(ValueError):
    """An online answer does not have the columns its service's log expects."""


def rows_of(record: LogRecord) -> int:
    return record[3]


def _array(values: list[Any], dtype: Any) -> Any:
    """A column of served JSON values as `dtype` (the JSON spelling of floats, bytes, times undone)."""
    import pyarrow as pa

    try:
        return pa.array(values, type=dtype)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    return pa.array([_from_json(v, dtype) for v in values], type=dtype)


def _from_json(value: Any, dtype: Any) -> Any:
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_floating(dtype) and isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if (pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype)) and isinstance(value, str):
        return base64.b64decode(value)
    if pa.types.is_timestamp(dtype) and isinstance(value, str):
        return datetime.fromisoformat(value)
    if (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) and isinstance(value, list):
        return [_from_json(v, dtype.value_type) for v in value]
    return value


def _answer(body: Any) -> Mapping[str, Any]:
    """An answer as `{"metadata": {"feature_names": [...]}, "results": [{"values", "statuses",
    "event_timestamps"}, ...]}`: a JSON body (the server's) or a pickled one (the SDK's)."""
    import orjson

    if body[:1] == _PICKLE:  # an SDK read's answer (see served.py), from this process's own logger
        unpickled: Mapping[str, Any] = pickle.loads(body)
        return unpickled
    parsed: Mapping[str, Any] = orjson.loads(body)
    return parsed


def build_table(spec: LogSpec, records: Sequence[LogRecord]) -> Any:
    """The log rows of `records` (all of `spec`'s service) as one table of `spec.schema`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys: dict[str, list[Any]] = {name: [] for name, _ in spec.keys}
    given: dict[str, list[Any]] = {name: [] for name, _ in spec.request_fields}
    width = len(spec.features)
    # the first feature of each view: its statuses and event times stand for the whole view's
    leads = [sum(spec.view_widths[:v]) for v in range(len(spec.view_widths))]
    values: list[list[Any]] = [[] for _ in range(width)]
    stamps: list[list[str]] = [[] for _ in leads]
    statuses: list[list[int]] = [[] for _ in leads]
    log_us: list[int] = []
    request_ids: list[str] = []
    codes = STATUS_CODES
    for _, request_id, logged_at, rows, body, request in records:
        answer = _answer(body)
        names = answer["metadata"]["feature_names"]
        columns = answer["results"]
        offset = len(columns) - width
        if offset < 0:  # columns of unequal length are caught when the table is assembled
            raise LogShapeError(f"the answer has {len(columns)} columns; the log expects {width} features")
        echoed = {name: j for j, name in enumerate(names[:offset])}  # the join keys, echoed first
        for name, column in keys.items():
            at = echoed.get(name)
            column.extend(columns[at]["values"] if at is not None else [None] * rows)
        for name, column in given.items():
            sent = request.get(name) if request is not None else None
            column.extend(sent if sent is not None and len(sent) == rows else [None] * rows)
        for i in range(width):
            values[i].extend(columns[offset + i]["values"])
        for v, lead in enumerate(leads):
            served = columns[offset + lead]
            statuses[v].extend([codes.get(s, 0) for s in served["statuses"]])
            stamps[v].extend(served["event_timestamps"])
        log_us.extend([round(logged_at * 1_000_000)] * rows)
        request_ids.extend([request_id or str(uuid.uuid4())] * rows)
    ts_type = pa.timestamp("us", tz="UTC")
    schema = spec.schema
    arrays: list[Any] = [_array(keys[name], schema.field(name).type) for name, _ in spec.keys]
    arrays += [_array(given[name], schema.field(name).type) for name, _ in spec.request_fields]
    i = 0
    for v, view_width in enumerate(spec.view_widths):
        view_statuses = pa.array(statuses[v], type=pa.int32())
        # epoch zero is how a value not found is served: the log has no event time for it
        view_stamps = pc.if_else(
            pc.equal(view_statuses, _NOT_FOUND_CODE), pa.scalar(None, ts_type), pa.array(stamps[v]).cast(ts_type)
        )
        for _ in range(view_width):
            name = spec.features[i][0]
            arrays += [_array(values[i], schema.field(name).type), view_stamps, view_statuses]
            i += 1
    arrays += [
        pa.array(log_us, type=ts_type),
        pa.array([us // _US_PER_DAY for us in log_us], type=pa.int32()).cast(pa.date32()),
        pa.array(request_ids, type=pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_records(spec: LogSpec, records: Sequence[LogRecord], chunk_rows: int = 2000) -> int:
    """Write `records` as Parquet; returns the rows left out.

    The table is built `chunk_rows` rows at a time; a chunk that does not convert (a value of the
    wrong type) is converted request by request, leaving out only the requests at fault.
    """
    import pyarrow as pa

    tables: list[Any] = []
    skipped = 0

    def build(chunk: list[LogRecord]) -> None:
        nonlocal skipped
        try:
            tables.append(build_table(spec, chunk))
            return
        except (pa.ArrowException, TypeError, ValueError, OverflowError, KeyError):
            if len(chunk) == 1:
                skipped += rows_of(chunk[0])
                return
        for record in chunk:
            build([record])

    chunk: list[LogRecord] = []
    rows = 0
    for record in records:
        chunk.append(record)
        rows += rows_of(record)
        if rows >= chunk_rows:
            build(chunk)
            chunk, rows = [], 0
    if chunk:
        build(chunk)
    if tables:
        write_partitions(spec, pa.concat_tables(tables))
    return skipped


def _segment(name: str, value: Any) -> str:
    text = _NULL_PARTITION if value is None else str(value)
    return f"{name}={quote(text, safe='')}"


def write_partitions(spec: LogSpec, table: Any) -> list[Path]:
    """Write `table` under `spec.path`, one file per partition; returns the files written."""
    import pyarrow.compute as pc

    columns = list(spec.partition_by)
    if table.num_rows == 0:
        return []
    combos = table.select(columns).group_by(columns).aggregate([]).to_pylist()
    written = []
    for combo in combos:
        part = table
        if len(combos) > 1:
            mask = None
            for name in columns:
                value = combo[name]
                cond = pc.is_null(table[name]) if value is None else pc.equal(table[name], value)
                mask = cond if mask is None else pc.and_(mask, cond)
            part = table.filter(pc.fill_null(mask, False))
        folder = spec.path.joinpath(*(_segment(name, combo[name]) for name in columns))
        written.append(write_file(folder, part))
    return written


def write_file(folder: Path, table: Any) -> Path:
    """`table` as a new Parquet file in `folder`: written hidden, synced, then renamed into view."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{uuid.uuid4().hex}.parquet"
    temporary = folder / f".{final.name}.tmp"
    try:
        with open(temporary, "wb") as out:
            pq.write_table(table, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final
