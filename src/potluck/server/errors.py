"""The one error shape of the server: {"error": {"code", "message", "details", "retryable"}}."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from potluck.definitions.errors import BackendUnavailableError, DefinitionError, NotFoundError, RetrievalError

log = logging.getLogger("potluck.server")


class ApiError(Exception):
    """An error answered with `status` and the error body; raised anywhere in a request."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        retryable: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.headers = headers or {}


def error_response(err: ApiError) -> Response:
    body = {"error": {"code": err.code, "message": err.message, "details": err.details, "retryable": err.retryable}}
    return Response(
        orjson.dumps(body, default=str), status_code=err.status, media_type="application/json", headers=err.headers
    )


def unavailable(message: str, retry_after: int) -> ApiError:
    return ApiError(503, "unavailable", message, retryable=True, headers={"Retry-After": str(retry_after)})


def translate(exc: BaseException, retry_after: int) -> ApiError:
    """Map an exception raised while serving to the error the client sees."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, (RetrievalError, DefinitionError)):
        return ApiError(422, "invalid_request", str(exc))
    if isinstance(exc, BackendUnavailableError):
        log.warning("backend unavailable: %s", exc)
        return unavailable("a backing store is unavailable; retry shortly", retry_after)
    log.error("unexpected error while serving a request", exc_info=exc)
    return ApiError(500, "internal", "internal server error")


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as [{"field": "entities.driver_id.0", "message": ...}], without echoing input."""
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        out.append({"field": ".".join(loc) or "(body)", "message": str(e.get("msg", "invalid")), "type": e.get("type")})
    return out
