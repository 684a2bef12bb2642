"""A small HTTP client of the Potluck (and Feast) feature server, with a keep-alive connection pool.

client = Client("http://localhost:6566", api_key="pk_...")
features = client.get_online_features(
    features=["driver_hourly_stats:conv_rate"], entity_rows=[{"driver_id": 1001}]
).to_dict()
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import orjson

from potluck.definitions.errors import PotluckError

if TYPE_CHECKING:
    import httpx
    import pandas as pd

__all__ = [
    "AuthenticationFailed",
    "Client",
    "FeatureServerError",
    "InvalidRequest",
    "OnlineResponse",
    "PermissionDenied",
    "ServiceUnavailable",
]


class FeatureServerError(PotluckError):
    """The feature server refused or failed a request; carries its error code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, retryable: bool = False) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable


class AuthenticationFailed(FeatureServerError):
    """401: no valid credentials."""


class PermissionDenied(FeatureServerError):
    """403: the credentials lack a role or scope."""


class InvalidRequest(FeatureServerError):
    """Another 4xx: the request is malformed, too large, or names unknown objects."""


class ServiceUnavailable(FeatureServerError):
    """503, or the server cannot be reached: retry later."""


def _error_class(status: int) -> type[FeatureServerError]:
    if status == 401:
        return AuthenticationFailed
    if status == 403:
        return PermissionDenied
    if status == 503:
        return ServiceUnavailable
    if 400 <= status < 500:
        return InvalidRequest
    return FeatureServerError


def _epoch_seconds(stamp: str) -> int:
    """An RFC 3339 time from the server as whole seconds since the epoch."""
    import math
    from datetime import UTC, datetime

    when = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("z", "+00:00"))
    return math.floor((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


class OnlineResponse:
    """The server's column-oriented answer (Feast's shape)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.feature_names: list[str] = list(body["metadata"]["feature_names"])
        self.results: list[dict[str, Any]] = list(body["results"])
        for column in self.results:
            column["values"] = decode_values(column["values"])

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        """{name: [value per entity row]}; with timestamps each column is followed by
        `name__ts`: its event times in whole seconds since the epoch (0 when not found), as Feast's."""
        out: dict[str, list[Any]] = {}
        for name, column in zip(self.feature_names, self.results, strict=True):
            out[name] = column["values"]
            if include_event_timestamps:
                out[f"{name}__ts"] = [_epoch_seconds(t) for t in column["event_timestamps"]]
        return out

    def statuses(self) -> dict[str, list[str]]:
        return {name: column["statuses"] for name, column in zip(self.feature_names, self.results, strict=True)}

    def to_df(self, include_event_timestamps: bool = False) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.to_dict(include_event_timestamps))

    def __repr__(self) -> str:
        return f"OnlineResponse(feature_names={self.feature_names!r})"


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float_like(value: Any) -> bool:
    if isinstance(value, str):
        return value in _NON_FINITE
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def decode_values(values: list[Any]) -> list[Any]:
    """A served column with "NaN", "Infinity", "-Infinity" back as floats.

    The server writes non-finite floats as those strings (JSON has no such numbers). A column is
    decoded when it holds one of them and otherwise only numbers and nulls, i.e. a float column;
    a string column holding only those three strings (and nulls) is read as floats too.
    """
    if any(isinstance(v, list) for v in values):
        return [decode_values(v) if isinstance(v, list) else v for v in values]
    if not any(isinstance(v, str) and v in _NON_FINITE for v in values):
        return values
    if not all(_float_like(v) for v in values):
        return values
    return [_NON_FINITE[v] if isinstance(v, str) else v for v in values]


def _columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {name: [row.get(name) for row in rows] for name in names}


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot send a value of type {type(value).__name__}")


def _df_columns(df: Any) -> dict[str, list[Any]]:
    if isinstance(df, Mapping):
        return {str(k): list(v) for k, v in df.items()}
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        out: dict[str, list[Any]] = {}
        for name in df.columns:
            series = df[name]
            if pd.api.types.is_datetime64_any_dtype(series):
                out[str(name)] = [None if pd.isna(v) else v.isoformat() for v in series]
            else:
                out[str(name)] = [None if _isnull(v) else v for v in series.tolist()]
        return out
    raise TypeError("df must be a pandas DataFrame or a dict of column lists")


def _iso(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.isoformat()


def _isnull(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class Client:
    """A feature server client. Thread-safe; reuse one instance (it pools connections)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 10.0,
        *,
        max_connections: int = 32,
        verify: bool | str = True,
    ) -> None:
        import httpx

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            verify=verify,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        content = orjson.dumps(body, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
        try:
            response = self._http.post(path, content=content)
        except httpx.TransportError as err:
            raise ServiceUnavailable(
                0, "unreachable", f"feature server {self.url} unreachable: {err}", retryable=True
            ) from None
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            body = {}
        if response.status_code >= 400:
            err = body.get("error") if isinstance(body, dict) else None
            if not isinstance(err, dict):
                err = {"code": "http_error", "message": response.text[:200] or response.reason_phrase}
            raise _error_class(response.status_code)(
                response.status_code,
                str(err.get("code", "http_error")),
                str(err.get("message", "")),
                err.get("details"),
                bool(err.get("retryable", response.status_code == 503)),
            )
        return body if isinstance(body, dict) else {}

    def get_online_features(
        self,
        features: Sequence[str] | None = None,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | None = None,
        full_feature_names: bool = False,
        feature_service: str | None = None,
        *,
        entities: Mapping[str, Sequence[Any]] | None = None,
    ) -> OnlineResponse:
        """Latest feature values. Entities as rows (`[{"driver_id": 1}]`) or columns (`{"driver_id": [1]}`)."""
        if (features is None) == (feature_service is None):
            raise ValueError("give exactly one of features and feature_service")
        if entity_rows is not None and entities is not None:
            raise ValueError("give entity_rows or entities, not both")
        if entities is None:
            if isinstance(entity_rows, Mapping):
                entities = entity_rows
            else:
                entities = _columns(list(entity_rows or []))
        body: dict[str, Any] = {
            "entities": {k: list(v) for k, v in entities.items()},
            "full_feature_names": full_feature_names,
        }
        if feature_service is not None:
            body["feature_service"] = feature_service
        else:
            body["features"] = list(features or [])
        return OnlineResponse(self._post("/get-online-features", body))

    def push(self, push_source_name: str, df: Any, to: str = "online", *, idempotency_key: str | None = None) -> int:
        """Write rows (a pandas DataFrame or a dict of column lists); returns the rows written.

        A push repeated with the same `idempotency_key` updates the tiles of aggregation views once."""
        body: dict[str, Any] = {"push_source_name": push_source_name, "df": _df_columns(df), "to": to}
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        return int(self._post("/push", body).get("rows", 0))

    def write_to_online_store(self, feature_view_name: str, df: Any) -> int:
        """Write rows to one feature view's online table (newest wins); returns the rows written."""
        body = {"feature_view_name": feature_view_name, "df": _df_columns(df), "allow_registry_cache": True}
        return int(self._post("/write-to-online-store", body).get("rows", 0))

    def materialize(
        self, start_date: datetime | date, end_date: datetime | date, feature_views: Sequence[str] | None = None
    ) -> None:
        body: dict[str, Any] = {"start_ts": _iso(start_date), "end_ts": _iso(end_date)}
        if feature_views is not None:
            body["feature_views"] = list(feature_views)
        self._post("/materialize", body)

    def materialize_incremental(self, end_date: datetime | date, feature_views: Sequence[str] | None = None) -> None:
        body: dict[str, Any] = {"end_ts": _iso(end_date)}
        if feature_views is not None:
            body["feature_views"] = list(feature_views)
        self._post("/materialize-incremental", body)

    def health(self) -> bool:
        try:
            return self._http.get("/health").status_code == 200
        except Exception:
            return False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
