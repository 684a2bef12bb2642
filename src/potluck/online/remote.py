"""An online store that is a feature server: reads and writes go over HTTP to Potluck (or Feast).

`online_store: {type: remote, path: http://feature-server:6566, api_key: pk_...}` serves one team's
SDK from a central server. Reads use `POST /get-online-features` (one request per view and batch of
entity rows), writes `POST /write-to-online-store`. The server owns the tables: `create` and
`teardown` do nothing here (the server's own `apply` creates and drops them).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from potluck.definitions.errors import (
    BackendUnavailableError,
    ConfigError,
    MissingExtraError,
    NotFoundError,
    PotluckError,
    RetrievalError,
)
from potluck.definitions.types import Array, PotluckType, is_basic
from potluck.online.typed_values import from_wire, to_wire

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.client import Client, FeatureServerError
    from potluck.online.protocol import OnlineView, ReadRequest, ReadResult
    from potluck.repo.config import RepoConfig

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# the time columns of /write-to-online-store, as Feast's remote client names them
WIRE_EVENT_TIME, WIRE_CREATED_TIME = "event_timestamp", "created"


class RemoteOnlineStoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["remote"]
    path: str = Field(default="http://localhost:6566", description="The feature server's base URL.")
    api_key: str | None = None  # sent as a bearer token
    timeout_seconds: float = Field(default=10.0, gt=0)
    cert: str = ""  # a CA bundle to trust (a server with a self-signed certificate); "": the system's
    connection_pool_size: int = Field(default=50, ge=1)
    # Feast's pool keys: idle connections are closed by the client library; retries are left to callers
    connection_idle_timeout: int = Field(default=300, ge=0)
    connection_retries: int = Field(default=3, ge=0)
    read_batch_size: int = Field(default=1000, ge=1)  # entity rows per request (the server's max_entity_rows)
    write_batch_size: int = Field(default=1000, ge=1)  # rows per request; halved on a 413


def _client_class() -> type[Client]:
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise MissingExtraError("httpx", "server") from None
    from potluck.client import Client

    return Client


# ---------------------------------------------------------------- values on the wire


def _iso(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).isoformat()


def _micros(text: str) -> int:
    stamp = datetime.fromisoformat(text)
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
    return (stamp - EPOCH) // timedelta(microseconds=1)


def _time_column(column: pa.ChunkedArray | pa.Array) -> list[str | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.type.tz is None:
        column = pc.assume_timezone(column, "UTC")
    micros = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return [None if us is None else _iso(us) for us in micros]


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _wire_column(dtype: PotluckType, column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column as the server reads it: times as RFC 3339, bytes as base64, non-finite floats as strings."""
    import pyarrow as pa

    from potluck.server.serialize import json_values

    if not is_basic(dtype):
        return [to_wire(dtype, v) for v in column.to_pylist()]
    base = dtype.base_type.name if isinstance(dtype, Array) else dtype.name
    if base == "UnixTimestamp":
        if isinstance(dtype, Array):
            flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            times = iter(_time_column(flat.flatten()))
            return [None if row is None else [next(times) for _ in row] for row in flat.to_pylist()]
        return _time_column(column)
    values: list[Any] = column.to_pylist()
    if base in ("Float32", "Float64"):
        return json_values(values)
    if base != "Bytes":
        return values
    if isinstance(dtype, Array):
        return [None if row is None else [None if v is None else _base64(v) for v in row] for row in values]
    return [None if v is None else _base64(v) for v in values]


def _from_wire(dtype: PotluckType) -> Callable[[Any], Any] | None:
    """How a served value of `dtype` is read back (None: as it is)."""
    if not is_basic(dtype):
        return lambda v: from_wire(dtype, v)
    base = dtype.base_type.name if isinstance(dtype, Array) else dtype.name
    scalar: Callable[[Any], Any] | None = None
    if base == "Bytes":
        scalar = base64.b64decode
    elif base == "UnixTimestamp":
        scalar = lambda v: EPOCH + timedelta(microseconds=_micros(v))  # noqa: E731
    if scalar is None or not isinstance(dtype, Array):
        return scalar
    element = scalar
    return lambda row: [None if v is None else element(v) for v in row]


# ---------------------------------------------------------------- the store


class RemoteOnlineStore:
    """The `OnlineStore` protocol over a feature server's HTTP API. Thread-safe."""

    def __init__(self, config: RemoteOnlineStoreConfig, repo_config: RepoConfig | None = None) -> None:
        self.config = config
        verify: bool | str = True
        if config.cert:
            verify = repo_config.resolve(config.cert) if repo_config is not None else config.cert
        self.client = _client_class()(
            config.path,
            api_key=config.api_key,
            timeout=config.timeout_seconds,
            max_connections=config.connection_pool_size,
            verify=verify,
        )

    def create(self, views: Sequence[OnlineView]) -> None:
        """Nothing to do: the server's `apply` created the tables."""

    def teardown(self, views: Sequence[OnlineView]) -> None:
        """Nothing to do: the server's `apply` (or `teardown`) drops the tables."""

    def close(self) -> None:
        self.client.close()

    # -- errors
    def _failure(self, err: FeatureServerError) -> PotluckError:
        text = str(err)
        message = text if text.startswith("feature server ") else f"feature server {self.config.path}: {text}"
        if err.status in (0, 502, 503, 504) or err.retryable:
            return BackendUnavailableError(message)
        if err.status == 404:
            return NotFoundError(message)
        if err.status in (401, 403):
            return ConfigError(f"{message}; check online_store.api_key and its role")
        if 400 <= err.status < 500:
            return RetrievalError(message)
        return BackendUnavailableError(message)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from potluck.client import FeatureServerError

        try:
            return fn(*args, **kwargs)
        except FeatureServerError as err:
            raise self._failure(err) from None

    # -- writes
    def write(self, view: OnlineView, rows: pa.Table) -> int:
        import pyarrow.compute as pc

        from potluck.online.rows import CREATED_TIMESTAMP, EVENT_TIMESTAMP, check_times

        names = set(rows.column_names)
        missing = [k for k in (*view.join_keys, EVENT_TIMESTAMP) if k not in names]
        if missing:
            raise PotluckError(f"rows written to online view '{view.name}' lack the column(s) {', '.join(missing)}")
        check_times(view, rows)
        valid = rows.column(EVENT_TIMESTAMP).is_valid()
        for key in view.join_keys:
            valid = pc.and_(valid, rows.column(key).is_valid())
        if not pc.all(valid).as_py():
            rows = rows.filter(valid)
        if rows.num_rows == 0:
            return 0
        columns: dict[str, list[Any]] = {f.name: _wire_column(f.dtype, rows.column(f.name)) for f in view.key_fields}
        for f in view.features:
            columns[f.name] = _wire_column(f.dtype, rows.column(f.name)) if f.name in names else [None] * rows.num_rows
        columns[WIRE_EVENT_TIME] = _time_column(rows.column(EVENT_TIMESTAMP))
        if CREATED_TIMESTAMP in names:
            columns[WIRE_CREATED_TIME] = _time_column(rows.column(CREATED_TIMESTAMP))
        else:
            columns[WIRE_CREATED_TIME] = [None] * rows.num_rows
        size = self.config.write_batch_size
        for start in range(0, rows.num_rows, size):
            self._send(view.name, {k: v[start : start + size] for k, v in columns.items()})
        return int(rows.num_rows)

    def _send(self, name: str, columns: dict[str, list[Any]]) -> None:
        from potluck.client import FeatureServerError

        try:
            self.client.write_to_online_store(name, columns)
        except FeatureServerError as err:
            rows = len(next(iter(columns.values())))
            if err.status != 413 or rows < 2:
                raise self._failure(err) from None
            half = rows // 2  # the body or the row count is over the server's limit: smaller requests
            self._send(name, {k: v[:half] for k, v in columns.items()})
            self._send(name, {k: v[half:] for k, v in columns.items()})

    # -- reads
    def read(self, requests: Sequence[ReadRequest]) -> list[ReadResult]:
        return [self._read_view(r.view, r.keys) for r in requests]

    def _read_view(self, view: OnlineView, keys: Sequence[bytes]) -> ReadResult:
        from potluck.online.protocol import ReadResult

        rows: list[list[Any] | None] = [None] * len(keys)
        event_ts: list[int | None] = [None] * len(keys)
        positions: list[int] = []
        entities: dict[str, list[Any]] = {k: [] for k in view.join_keys}
        for i, key in enumerate(keys):
            try:
                values = view.key_encoder.decode(key)
            except (ValueError, IndexError, UnicodeDecodeError):
                continue  # not a key of this view: never stored
            positions.append(i)
            for name in view.join_keys:
                entities[name].append(_key_value(values[name]))
        size = self.config.read_batch_size
        starts = range(0, len(positions), size) if positions else [0]  # an empty read still asks the server
        for start in starts:
            chunk = positions[start : start + size]
            batch = {k: v[start : start + size] for k, v in entities.items()}
            for pos, row, ts in zip(chunk, *self._lookup(view, batch), strict=True):
                rows[pos], event_ts[pos] = row, ts
        return ReadResult(rows, event_ts)

    def _lookup(
        self, view: OnlineView, entities: dict[str, list[Any]]
    ) -> tuple[list[list[Any] | None], list[int | None]]:
        features = [f"{view.name}:{f.name}" for f in view.features]
        response = self._call(self.client.get_online_features, features, entities=entities, full_feature_names=True)
        by_name = dict(zip(response.feature_names, response.results, strict=True))
        columns = []
        for f in view.features:
            column = by_name[f"{view.name}__{f.name}"]
            convert = _from_wire(f.dtype)
            values = column["values"]
            if convert is not None:
                values = [None if v is None else convert(v) for v in values]
            columns.append((values, column["statuses"], column["event_timestamps"]))
        n = len(next(iter(entities.values()))) if entities else 0
        rows: list[list[Any] | None] = []
        stamps: list[int | None] = []
        for i in range(n):
            found = [c for c in columns if c[1][i] != "NOT_FOUND"]
            if not found:
                rows.append(None)
                stamps.append(None)
                continue
            rows.append([c[0][i] for c in columns])
            stamps.append(_micros(found[0][2][i]))
        return rows, stamps


def _key_value(value: Any) -> Any:
    if isinstance(value, bytes):
        raise RetrievalError("a Bytes join key cannot be sent to a feature server (JSON has no bytes)")
    return value
