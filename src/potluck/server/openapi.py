"""The routes of the server and their OpenAPI document, built from the pydantic models.

Handlers parse their bodies themselves (faster, and malformed JSON can be told apart from schema
errors), so the document is assembled here instead of being inferred from handler signatures.
Security requirements and 401/403 responses appear only when authentication is on, and the
entity-row and push-row limits appear as `maxItems`: the document describes the running server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from potluck.server.schemas import (
    ErrorBody,
    GetOnlineFeaturesRequest,
    GetOnlineFeaturesResponse,
    HealthResponse,
    MaterializeIncrementalRequest,
    MaterializeRequest,
    MaterializeResponse,
    PushRequest,
    PushResponse,
    WriteToOnlineStoreRequest,
)
from potluck.server.settings import ServerSettings

_BODY_ERRORS = (400, 403, 404, 408, 413, 415, 422, 503)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    summary: str
    request: type[BaseModel] | None
    response: type[BaseModel] | None  # None: Prometheus text
    role: str | None  # None: no credentials needed
    errors: tuple[int, ...] = ()


ROUTES: tuple[Route, ...] = (
    Route(
        "get_online_features",
        "POST",
        "/get-online-features",
        "Read the latest feature values of entities",
        GetOnlineFeaturesRequest,
        GetOnlineFeaturesResponse,
        "reader",
        _BODY_ERRORS,
    ),
    Route(
        "push", "POST", "/push", "Write rows through a push source", PushRequest, PushResponse, "writer", _BODY_ERRORS
    ),
    Route(
        "write_to_online_store",
        "POST",
        "/write-to-online-store",
        "Write rows to one feature view's (or label view's) online table (newest wins)",
        WriteToOnlineStoreRequest,
        PushResponse,
        "writer",
        _BODY_ERRORS,
    ),
    Route(
        "materialize",
        "POST",
        "/materialize",
        "Copy the latest rows of an interval to the online store",
        MaterializeRequest,
        MaterializeResponse,
        "admin",
        _BODY_ERRORS,
    ),
    Route(
        "materialize_incremental",
        "POST",
        "/materialize-incremental",
        "Materialize from each view's watermark up to end_ts",
        MaterializeIncrementalRequest,
        MaterializeResponse,
        "admin",
        _BODY_ERRORS,
    ),
    Route("health", "GET", "/health", "Liveness", None, HealthResponse, None),
    Route(
        "ready",
        "GET",
        "/ready",
        "Readiness: registry loaded and online store reachable",
        None,
        HealthResponse,
        None,
        (503,),
    ),
    Route("metrics", "GET", "/metrics", "Prometheus metrics", None, None, "metrics"),
)

_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "No valid credentials (see WWW-Authenticate)",
    403: "The credentials lack the role or scope the request needs, or a browser Origin is not allowed",
    404: "An unknown feature, feature view, label view, feature service or push source",
    408: "The request headers or body did not arrive within the configured timeout",
    413: "The body or the number of rows exceeds the configured limit",
    415: "The body is not sent as application/json",
    422: "The body does not match the schema, or the request cannot be served (e.g. a missing join key)",
    431: "The request headers exceed the configured size or count",
    500: "Unexpected server error (the body never carries its details)",
    503: "A backing store is unavailable; retry after Retry-After seconds",
}


def _strip_null_defaults(node: Any) -> None:
    if isinstance(node, dict):
        if "default" in node and node["default"] is None:
            del node["default"]
        for value in node.values():
            _strip_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _strip_null_defaults(value)


def _component_schemas(settings: ServerSettings) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(r.request, "validation") for r in ROUTES if r.request]
    models += [(r.response, "serialization") for r in ROUTES if r.response]
    models.append((ErrorBody, "serialization"))
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = top.get("$defs", {})
    _strip_null_defaults(schemas)
    entities = schemas["GetOnlineFeaturesRequest"]["properties"]["entities"]["additionalProperties"]
    entities["maxItems"] = settings.max_entity_rows
    for body in ("PushRequest", "WriteToOnlineStoreRequest"):
        schemas[body]["properties"]["df"]["additionalProperties"]["maxItems"] = settings.max_push_rows
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _ref(ErrorBody)}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
    if status == 503:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": True}}
    return response


def _operation(route: Route, settings: ServerSettings) -> dict[str, Any]:
    needs_auth = route.role is not None and settings.auth_enabled
    if route.name == "metrics" and settings.public_metrics:
        needs_auth = False
    op: dict[str, Any] = {"operationId": route.name, "summary": route.summary}
    if route.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(route.request)}}}
    if route.response is not None:
        ok = {"description": "OK", "content": {"application/json": {"schema": _ref(route.response)}}}
    else:
        ok = {"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}
    statuses = set(route.errors) | {431, 500}
    if needs_auth:
        statuses |= {401, 403}
        op["security"] = [{"bearerAuth": []}, {"apiKeyAuth": []}]
        op["description"] = f"Requires the '{route.role}' role."
    else:
        op["security"] = []
    op["responses"] = {"200": ok, **{str(s): _error(s) for s in sorted(statuses)}}
    return op


def build_openapi(settings: ServerSettings) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, settings)
    components: dict[str, Any] = {"schemas": _component_schemas(settings)}
    if settings.auth_enabled:
        components["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (pk_...) or, when configured, an OIDC access token",
            },
            "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Potluck feature server",
            "version": "1",
            "description": "Feast-compatible HTTP feature server. Every error body is ErrorBody.",
        },
        "paths": paths,
        "components": components,
    }
