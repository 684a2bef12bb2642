"""`create_ui_app`: the web UI's pages, its JSON API under /api and its static files."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from potluck.definitions.errors import BackendUnavailableError
from potluck.server.errors import ApiError, unavailable
from potluck.server.offload import Offload
from potluck.server.settings import ServerSettings
from potluck.ui.auth import COOKIE, UiAuth, build_authenticator
from potluck.ui.data import SECTIONS, UiData
from potluck.ui.format import FILTERS
from potluck.ui.openapi import build_openapi
from potluck.ui.pages import Pages

if TYPE_CHECKING:
    from potluck.server.auth.keys import ApiKeyStore
    from potluck.store import FeatureStore

HERE = Path(__file__).parent
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
Handler = Callable[[Request], Awaitable[Response]]
# The pages and the API read the registry and the monitoring tables: blocking calls, run off the event
# loop in the "ui" pool of an Offload, so a frozen backend answers 503 and never stalls the loop (which,
# mounted in the feature server, also serves online reads).
BlockingHandler = Callable[[Request], Response]


def _jinja() -> Any:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - the extra is missing
        from potluck.definitions.errors import ConfigError

        raise ConfigError("the web UI needs Jinja2: pip install 'potluck[ui]'") from None
    return jinja2


class SecurityHeaders:
    """The Content-Security-Policy and friends on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status_code=status, media_type="application/json"
    )


def _api_error(err: ApiError) -> Response:
    body = {"error": {"code": err.code, "message": err.message, "details": err.details}}
    response = _json(body, err.status)
    for key, value in err.headers.items():
        response.headers[key] = value
    return response


def create_ui_app(
    store: FeatureStore,
    settings: ServerSettings | None = None,
    *,
    keys: ApiKeyStore | None = None,
    offload: Offload | None = None,
    monitoring_ttl: float = 5.0,
) -> Starlette:
    """The UI over `store`; with auth on (the server's rule), `keys` (or `settings.oidc`) check callers.

    `offload` is the feature server's when the UI is mounted in it; alone, the UI makes its own.
    """
    settings = settings or ServerSettings()
    own_offload = offload is None
    runner = offload or Offload(settings.backend_threads, settings.backend_timeout_seconds)
    jinja2 = _jinja()
    data = UiData(store, monitoring_ttl=monitoring_ttl, wait_seconds=settings.backend_timeout_seconds)

    async def check_credential(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await runner.run("auth", "the credential check", fn, *args)
        except BackendUnavailableError:
            raise unavailable("the API key store did not answer; retry shortly", settings.retry_after_seconds) from None

    auth = UiAuth(build_authenticator(settings, keys), check_credential)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
    )
    env.filters.update(FILTERS)
    pages = Pages(data, env, auth)
    secure_cookie = settings.tls_cert_file is not None

    async def off_loop(handler: BlockingHandler, request: Request) -> Response:
        try:
            return await runner.run("ui", "the registry or the monitoring tables", handler, request)
        except BackendUnavailableError as exc:
            import logging

            logging.getLogger("potluck.ui").warning("UI request %s: %s", request.url.path, exc)
            raise unavailable(
                "the registry or the monitoring tables did not answer; retry shortly", settings.retry_after_seconds
            ) from None

    def page_guard(handler: BlockingHandler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                await auth.principal(request)
                return await off_loop(handler, request)
            except ApiError as err:
                if err.status == 401:
                    root = request.scope.get("root_path", "")
                    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                    return RedirectResponse(f"{root}/login?next={target}", status_code=303)
                response = pages.error(request, err.status, err.message)
                for key, value in err.headers.items():
                    response.headers[key] = value
                return response

        return endpoint

    def api_guard(handler: BlockingHandler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                await auth.principal(request)
                return await off_loop(handler, request)
            except ApiError as err:
                return _api_error(err)

        return endpoint

    def api_not_found(kind: str, name: str) -> Response:
        return _api_error(ApiError(404, "not_found", f"no {kind} '{name}'", {"kind": kind, "name": name}))

    # -- API -------------------------------------------------------------------------------------
    from potluck.ui import views

    def api_overview(request: Request) -> Response:
        return _json(views.overview(data))

    def api_lineage(request: Request) -> Response:
        return _json(views.lineage_json(data.catalog().lineage))

    def api_search(request: Request) -> Response:
        query = request.query_params.get("q", "")
        return _json({"query": query, "results": views.search_json(data.catalog(), query)})

    def api_list(section: str) -> BlockingHandler:
        def endpoint(request: Request) -> Response:
            return _json(views.listing(data.catalog(), section))

        return endpoint

    def api_object(section: str) -> BlockingHandler:
        def endpoint(request: Request) -> Response:
            name = request.path_params["name"]
            found = views.object_json(data, section, name)
            if found is None:
                return api_not_found(section.rstrip("s").replace("-", "_"), name)
            return _json(found)

        return endpoint

    document = orjson.dumps(build_openapi())

    async def api_openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    # -- login -----------------------------------------------------------------------------------
    def _next(request: Request, given: str | None) -> str:
        root = request.scope.get("root_path", "")
        if given and given.startswith("/") and not given.startswith("//"):
            return given
        return f"{root}/"

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return pages.login(request, request.query_params.get("next", ""), None)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        credential = (form.get("credential") or [""])[0].strip()
        target = (form.get("next") or [""])[0]
        if not auth.enabled:
            return RedirectResponse(_next(request, target), status_code=303)
        try:
            await auth.check(credential)
        except ApiError as err:
            return pages.login(request, target, err.message, status=err.status)
        response = RedirectResponse(_next(request, target), status_code=303)
        root = request.scope.get("root_path", "") or "/"
        response.set_cookie(COOKIE, credential, httponly=True, samesite="strict", secure=secure_cookie, path=root)
        return response

    async def logout(request: Request) -> Response:
        root = request.scope.get("root_path", "") or "/"
        response = RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)
        response.delete_cookie(COOKIE, path=root, httponly=True, samesite="strict", secure=secure_cookie)
        return response

    routes: list[Any] = [
        Route("/", page_guard(pages.overview), name="overview"),
        Route("/lineage", page_guard(pages.lineage)),
        Route("/search", page_guard(pages.search)),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/api/overview", api_guard(api_overview)),
        Route("/api/lineage", api_guard(api_lineage)),
        Route("/api/search", api_guard(api_search)),
        Route("/api/openapi.json", api_openapi),
    ]
    for section in SECTIONS:
        routes += [
            Route(f"/{section}", page_guard(pages.listing(section))),
            Route(f"/{section}/{{name}}", page_guard(pages.object_page(section))),
            Route(f"/api/{section}", api_guard(api_list(section))),
            Route(f"/api/{section}/{{name}}", api_guard(api_object(section))),
        ]
    routes.append(Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        if request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/"):
            return _api_error(
                ApiError(exc.status_code, "not_found" if exc.status_code == 404 else "http_error", message)
            )
        return pages.error(request, exc.status_code, message)

    async def server_error(request: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger("potluck.ui").exception("error while answering %s", request.url.path)
        if request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/"):
            return _api_error(ApiError(500, "internal_error", "the UI could not answer; see the server log"))
        return HTMLResponse(
            "<!doctype html><title>Error</title><p>The UI could not answer; see the server log.</p>", 500
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if own_offload:
            runner.close()

    app = Starlette(
        routes=routes,
        exception_handlers={StarletteHTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeaders)
    app.state.ui_data = data
    return app
