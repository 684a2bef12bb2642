"""`create_app`: the HTTP feature server over a `ServingBackend`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio.to_thread
import orjson
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from potluck.definitions.errors import BackendUnavailableError, ConfigError, NotFoundError
from potluck.feature_logs import FeatureLogger
from potluck.server.auth.audit import AuditLog
from potluck.server.auth.authenticator import Authenticator, has_credentials
from potluck.server.auth.keys import ApiKeyStore
from potluck.server.auth.policy import ANONYMOUS, MATERIALIZE, READ, WRITE, Principal
from potluck.server.backend import MonitoringBackend, Resource, ServingBackend
from potluck.server.browser import BrowserRules, media_refusal
from potluck.server.errors import ApiError, error_response, translate, unavailable, validation_details
from potluck.server.limits import BodyLimitMiddleware, BodyReader
from potluck.server.metrics import ServerMetrics
from potluck.server.offload import Offload
from potluck.server.openapi import ROUTES, build_openapi
from potluck.server.schemas import (
    GetOnlineFeaturesRequest,
    MaterializeIncrementalRequest,
    MaterializeRequest,
    PushRequest,
    WriteToOnlineStoreRequest,
)
from potluck.server.serialize import EPOCH, dumps, online_body
from potluck.server.settings import ServerSettings

if TYPE_CHECKING:
    from potluck.monitoring.gauges import MonitorSnapshot

log = logging.getLogger("potluck.server")
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")
Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def parse_body(model: type[M], body: bytes, scope: Scope) -> M:
    """The request body as `model`; 415 unless it was sent as JSON (checked after authentication)."""
    refusal = media_refusal(scope)
    if refusal is not None:
        raise refusal
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        errors = err.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise ApiError(400, "malformed_json", "the request body is not valid JSON") from None
        raise ApiError(
            422, "invalid_request", "the request body does not match the schema", validation_details(errors)
        ) from None


def _utc(ts: datetime, field: str = "end_ts") -> datetime:
    try:
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except OverflowError:
        raise ApiError(422, "invalid_request", f"'{field}' is out of the supported range", [{"field": field}]) from None


def _interval(req: BaseModel) -> tuple[datetime | None, datetime]:
    """(start, end) of a materialization in UTC; start is None for an incremental run.

    With `disable_event_timestamp` (Feast's flag) every row up to now is materialized.
    """
    if isinstance(req, MaterializeIncrementalRequest):
        return None, _utc(req.end_ts)
    assert isinstance(req, MaterializeRequest)
    if req.disable_event_timestamp:
        return EPOCH, datetime.now(UTC)
    assert req.start_ts is not None  # the model checks both
    assert req.end_ts is not None
    return _utc(req.start_ts, "start_ts"), _utc(req.end_ts)


def _check_rows(rows: int, limit: int, code: str, what: str) -> None:
    if rows > limit:
        raise ApiError(413, code, f"{rows} {what}; the limit is {limit}", {"limit": limit, "rows": rows})


class FeatureServer:
    """The request handlers and what they share; one per app."""

    def __init__(
        self,
        backend: ServingBackend,
        settings: ServerSettings,
        authenticator: Authenticator | None,
        audit: AuditLog | None,
        offload: Offload,
        feature_log: FeatureLogger,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.authenticator = authenticator
        self.audit = audit
        self.offload = offload
        self.feature_log = feature_log
        monitoring = self._monitoring if isinstance(backend, MonitoringBackend) else None
        self.metrics = ServerMetrics(self._freshness, feature_log.stats, monitoring)

    def _freshness(self) -> dict[str, float | None]:
        # Called while /metrics renders (in a worker thread): a frozen registry costs at most the timeout.
        return self.offload.wait("registry", "the registry", self.backend.freshness)

    def _monitoring(self) -> MonitorSnapshot:
        backend = cast(MonitoringBackend, self.backend)
        return self.offload.wait("registry", "the registry", backend.monitoring)

    async def _blocking_auth(self, fn: Callable[..., R], *args: Any) -> R:
        return await self.offload.run("auth", "the credential check", fn, *args)

    # -- auth ------------------------------------------------------------------------------------
    async def authenticate(self, request: Request) -> Principal:
        return await self.principal_of(request.scope)

    def require_role(self, principal: Principal, role: str, action: str) -> None:
        if not principal.has_role(role):
            raise ApiError(
                403, "forbidden", f"role '{role}' required for {action}", {"required_role": role, "action": action}
            )

    def require_scope(self, principal: Principal, resources: list[Resource], verb: str) -> None:
        if principal.scopes is None:
            return
        who = "token" if principal.actor.startswith("oidc:") else "key"
        if not resources:
            raise ApiError(
                403, "forbidden", f"{who} not allowed to {verb}: the request touches no resource in its scopes"
            )
        denied = principal.denied(resources)
        if denied is not None:
            kind = denied.kind.replace("_", " ")
            raise ApiError(
                403,
                "forbidden",
                f"{who} not allowed to {verb} {kind} '{denied.name}'",
                {"resource": {"kind": denied.kind, "name": denied.name}, "permission": verb},
            )

    def scoped(self, principal: Principal, lookup: Callable[..., R], *args: Any) -> R:
        """`lookup(*args)` (a resource lookup); a not-found error suggests only names `principal` may see."""
        try:
            return lookup(*args)
        except NotFoundError as err:
            if principal.scopes is None or err.candidates is None:
                raise
            raise err.among(self._visible(principal, err.kind, err.candidates)) from None

    def _visible(self, principal: Principal, kind: str | None, names: tuple[str, ...]) -> list[str]:
        visible = []
        for name in names:
            try:
                if kind == "feature_view":
                    resources = self.backend.view_resources([name])
                elif kind == "feature_service":
                    resources = self.backend.read_resources(None, name)
                elif kind == "push_source":
                    resources = self.backend.push_resources(name)
                else:
                    continue  # names of kinds that scopes do not cover are not suggested
            except Exception:
                continue
            if resources and principal.denied(resources) is None:
                visible.append(name)
        return visible

    # -- handlers ----------------------------------------------------------------------------------
    async def get_online_features(self, request: Request) -> Response:
        # Reached only when the Starlette app is served without `OnlineFeaturesRoute` in front.
        body = await self.online_features(await self.authenticate(request), await request.body(), request.scope)
        return Response(body, media_type="application/json")

    async def principal_of(self, scope: Scope) -> Principal:
        """The caller of an HTTP request, from its ASGI scope."""
        if self.authenticator is None:
            client = scope.get("client")
            return Principal(actor=f"anonymous@{client[0] if client else 'unknown'}", roles=ANONYMOUS.roles)
        return await self.authenticator.authenticate(Headers(scope=scope), self._blocking_auth)

    async def online_features(self, principal: Principal, body: bytes, scope: Scope) -> bytes:
        """POST /get-online-features: the JSON answer to a request body from `principal`."""
        self.require_role(principal, "reader", "POST /get-online-features")
        req = parse_body(GetOnlineFeaturesRequest, body, scope)
        rows = req.row_count
        _check_rows(rows, self.settings.max_entity_rows, "too_many_entity_rows", "entity rows requested")
        if principal.scopes is not None:
            resources = self.scoped(principal, self.backend.read_resources, req.features, req.feature_service)
            self.require_scope(principal, resources, READ)
        started = time.perf_counter()
        result = await self.backend.get_online_features(
            req.features, req.feature_service, req.entities, req.full_feature_names
        )
        metrics = self.metrics
        metrics.online_read.observe(time.perf_counter() - started)
        metrics.entities.observe(rows)
        if result.views is not None:
            metrics.observe_statuses(result.views, result.statuses)
        else:
            metrics.observe_names(result.feature_names, result.statuses, skip=len(req.entities))
        body = online_body(result, req.include_feature_view_version_metadata)
        if req.feature_service is not None and self.settings.feature_log_enabled:
            self._log_features(req.feature_service, rows, body, req.entities, scope)
        return body

    def _log_features(self, service: str, rows: int, body: bytes, entities: dict[str, list[Any]], scope: Scope) -> None:
        """Hand a sample of an answered read (its JSON body) to the feature log; never fails a request."""
        try:
            spec = self.backend.feature_logging(service)
            if spec is not None:
                self.feature_log.offer(spec, _request_id(scope), rows, body, entities)
        except Exception as err:
            log.warning("feature service '%s': request not logged: %s: %s", service, type(err).__name__, err)

    async def push(self, request: Request) -> Response:
        principal = await self.authenticate(request)
        self.require_role(principal, "writer", "POST /push")
        req = parse_body(PushRequest, await request.body(), request.scope)
        rows = req.row_count
        _check_rows(rows, self.settings.max_push_rows, "too_many_rows", "rows pushed")
        if principal.scopes is not None:
            self.require_scope(
                principal, self.scoped(principal, self.backend.push_resources, req.push_source_name), WRITE
            )
        # A push may append a Parquet file: keep it off the event loop that serves reads, in a pool of
        # its own, so a backlog of pushes to a frozen store takes no thread that /metrics needs.
        written = await self.offload.run_write(
            "push", "the online store", self.backend.push, req.push_source_name, req.df, req.to, req.idempotency_key
        )
        self.metrics.pushed_rows.labels(req.push_source_name).inc(written)
        return _json({"status": "ok", "rows": written})

    async def write_to_online_store(self, request: Request) -> Response:
        principal = await self.authenticate(request)
        self.require_role(principal, "writer", "POST /write-to-online-store")
        req = parse_body(WriteToOnlineStoreRequest, await request.body(), request.scope)
        _check_rows(req.row_count, self.settings.max_push_rows, "too_many_rows", "rows written")
        view = req.feature_view_name
        if principal.scopes is not None:
            self.require_scope(principal, self.scoped(principal, self.backend.view_resources, [view]), WRITE)
        # the same pool as pushes: writes never take the threads of reads or of /metrics
        written = await self.offload.run_write(
            "push", "the online store", self.backend.write_to_online_store, view, req.df
        )
        self.metrics.written_rows.labels(view).inc(written)
        return _json({"status": "ok", "rows": written})

    async def materialize(self, request: Request) -> Response:
        return await self._admin(request, "materialize", MaterializeRequest)

    async def materialize_incremental(self, request: Request) -> Response:
        return await self._admin(request, "materialize-incremental", MaterializeIncrementalRequest)

    async def _admin(self, request: Request, action: str, model: type[BaseModel]) -> Response:
        principal = await self.authenticate(request)
        route = f"POST /{action}"
        try:
            self.require_role(principal, "admin", route)
        except ApiError as err:
            await self._audit(principal.actor, action, "-", f"denied: {err.message}")
            raise
        req = parse_body(model, await request.body(), request.scope)
        views: list[str] | None = getattr(req, "feature_views", None)
        start, end = _interval(req)
        if start is not None and start > end:
            raise ApiError(422, "invalid_request", "'start_ts' is after 'end_ts'", [{"field": "start_ts"}])
        resource = ",".join(views) if views else "*"
        try:
            if principal.scopes is not None:
                self.require_scope(principal, self.scoped(principal, self.backend.view_resources, views), MATERIALIZE)
            if start is not None:
                await anyio.to_thread.run_sync(self.backend.materialize, start, end, views)
            else:
                await anyio.to_thread.run_sync(self.backend.materialize_incremental, end, views)
        except Exception as exc:
            failure = translate(exc, self.settings.retry_after_seconds)
            outcome = "denied" if failure.status == 403 else "failed"
            await self._audit(principal.actor, action, resource, f"{outcome}: {failure.code}")
            raise failure from None
        await self._audit(principal.actor, action, resource, "ok")
        return _json({"status": "ok", "feature_views": views})

    async def _audit(self, actor: str, action: str, resource: str, outcome: str) -> None:
        log.info("audit actor=%s action=%s resource=%s outcome=%s", actor, action, resource, outcome)
        if self.audit is None:
            return
        try:
            await self.offload.run("registry", "the audit log", self.audit.record, actor, action, resource, outcome)
        except Exception as err:
            log.error("could not write the audit log: %s", type(err).__name__)

    async def health(self, request: Request) -> Response:
        # Pure: never waits on a backend or a thread, whatever the backends do.
        return _json({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        try:
            ok, reason = await self.offload.run("online", "the readiness check", self.backend.ready)
        except BackendUnavailableError as err:
            ok, reason = False, str(err)
        if ok:
            return _json({"status": "ready"})
        if await self._may_see_detail(request):
            raise unavailable(f"not ready: {reason}", self.settings.retry_after_seconds)
        raise unavailable("not ready", self.settings.retry_after_seconds)

    async def _may_see_detail(self, request: Request) -> bool:
        """Why the server is not ready names hosts and databases: only for metrics (or admin) callers."""
        if self.authenticator is None:
            return True
        if not has_credentials(request.headers):
            return False
        try:
            return (await self.authenticate(request)).has_role("metrics")
        except Exception:
            return False

    async def metrics_endpoint(self, request: Request) -> Response:
        if not self.settings.public_metrics:
            principal = await self.authenticate(request)
            self.require_role(principal, "metrics", "GET /metrics")
        body = await anyio.to_thread.run_sync(self.metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _request_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID (a printable value of at most 128 characters), else None."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if 0 < len(value) <= 128 and value.isascii():
                text: str = value.decode("ascii")
                if text.isprintable():
                    return text
            return None
    return None


def _guarded(handler: Handler, retry_after: int) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(translate(exc, retry_after))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


class OnlineFeaturesRoute:
    """POST /get-online-features answered straight from ASGI; everything else goes to `app`.

    The same handler as the routed endpoint, with the body limit and request metrics of the
    middleware stack, but without its per-request layers (router, middleware, Request and
    Response objects): the hot path of the server.
    """

    PATH = "/get-online-features"
    _CONTENT_TYPE = (b"content-type", b"application/json")

    def __init__(self, app: Starlette, server: FeatureServer, rules: BrowserRules, body: BodyReader) -> None:
        self.app = app
        self.server = server
        self.rules = rules
        self.body = body
        self.retry_after = server.settings.retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        server = self.server
        try:
            refusal = self.rules.refusal(scope)
            if refusal is not None:
                raise refusal
            body = await self.body.read(scope, receive)
            if body is None:  # the client went away
                return
            payload = await server.online_features(await server.principal_of(scope), body, scope)
        except Exception as exc:
            failure = translate(exc, self.retry_after)
            await self.body.respond(failure, scope, receive, send)
            server.metrics.observe_request(self.PATH, "POST", failure.status, time.perf_counter() - started)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [self._CONTENT_TYPE, (b"content-length", str(len(payload)).encode("ascii"))],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        server.metrics.observe_request(self.PATH, "POST", 200, time.perf_counter() - started)


class MetricsMiddleware:
    """Counts and times every request, labelled by route (unknown paths share one label)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope["path"]
            endpoint = path if path in self.paths else "other"
            self.metrics.observe_request(endpoint, scope["method"], status, time.perf_counter() - started)


def create_app(
    backend: ServingBackend,
    settings: ServerSettings,
    *,
    keys: ApiKeyStore | None = None,
    audit: AuditLog | None = None,
    offload: Offload | None = None,
    feature_log: FeatureLogger | None = None,
) -> OnlineFeaturesRoute:
    """An ASGI app serving `backend`. With auth on, `keys` (or `settings.oidc`) must be given.

    `offload` runs the blocking backend calls of requests (default: one built from `settings`).
    `feature_log` logs the reads of feature services with a logging_config (default: one built
    from `settings`); the app's lifespan shutdown writes what it has queued.

    Online reads are answered by `OnlineFeaturesRoute` ahead of the Starlette app, which serves
    every other route; `.app.state.feature_server` is the shared `FeatureServer`.
    """
    authenticator: Authenticator | None = None
    if settings.auth_enabled:
        oidc = None
        if settings.oidc is not None:
            from potluck.server.auth.oidc import OidcVerifier

            oidc = OidcVerifier(settings.oidc)
        if keys is None and oidc is None:
            raise ConfigError("authentication is on but neither an API key store nor OIDC is configured")
        authenticator = Authenticator(keys, oidc)
    if offload is None:
        offload = Offload(settings.backend_threads, settings.backend_timeout_seconds)
    if feature_log is None:
        feature_log = FeatureLogger(
            queue_rows=settings.feature_log_queue_rows,
            flush_rows=settings.feature_log_flush_rows,
            flush_interval=settings.feature_log_flush_interval_seconds,
        )
    server = FeatureServer(backend, settings, authenticator, audit, offload, feature_log)
    rules = BrowserRules(settings.allowed_origins)
    body = BodyReader(settings.max_body_bytes, settings.body_timeout_seconds)
    handlers: dict[str, Handler] = {
        "get_online_features": server.get_online_features,
        "push": server.push,
        "write_to_online_store": server.write_to_online_store,
        "materialize": server.materialize,
        "materialize_incremental": server.materialize_incremental,
        "health": server.health,
        "ready": server.ready,
        "metrics": server.metrics_endpoint,
    }
    routes = [
        Route(r.path, _guarded(handlers[r.name], settings.retry_after_seconds), methods=[r.method], name=r.name)
        for r in ROUTES
    ]
    document = orjson.dumps(build_openapi(settings))

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    routes.append(Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        return error_response(ApiError(exc.status_code, code, message, headers=dict(exc.headers or {})))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(feature_log.close, settings.feature_log_shutdown_timeout_seconds)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(MetricsMiddleware, metrics=server.metrics, paths=frozenset(r.path for r in ROUTES)),
            Middleware(BodyLimitMiddleware, rules=rules, body=body),
        ],
        exception_handlers={StarletteHTTPException: http_error},
    )
    app.state.feature_server = server
    return OnlineFeaturesRoute(app, server, rules, body)
