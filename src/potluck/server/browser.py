"""Requests a web page could send: a JSON content type on every POST, and only configured Origins.

A page on any site can make a browser POST `text/plain` (or a form) to a loopback server without a
CORS preflight; requiring `application/json` forces the preflight, which this server never grants.
A request carrying an `Origin` (or `Sec-Fetch-Site: cross-site`) that is not allowed is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

from potluck.server.errors import ApiError

_JSON = b"application/json"


def _is_json(content_type: bytes) -> bool:
    media, _, params = content_type.partition(b";")
    if media.strip().lower() != _JSON:
        return False
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip().lower() == b"charset" and value.strip().strip(b'"').lower() not in (b"utf-8", b"utf8"):
            return False
    return True


def media_refusal(scope: Scope) -> ApiError | None:
    """415 for a POST whose body is not declared as JSON."""
    if scope["method"] != "POST":
        return None
    content_type: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
            break
    if content_type is not None and _is_json(content_type):
        return None
    shown = None if content_type is None else content_type.decode("latin-1")[:100]
    return ApiError(
        415,
        "unsupported_media_type",
        "POST bodies must be sent as 'Content-Type: application/json' (got "
        + ("none" if shown is None else f"'{shown}'")
        + ")",
        {"content_type": shown},
    )


class BrowserRules:
    """The Origin checks of one server; `refusal(scope)` is the error to answer, or None."""

    def __init__(self, allowed_origins: Iterable[str]) -> None:
        self.allowed = frozenset(o.lower().encode("latin-1") for o in allowed_origins)

    def refusal(self, scope: Scope) -> ApiError | None:
        origin: bytes | None = None
        cross_site = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                cross_site = value.strip().lower() == b"cross-site"
        if origin is not None and origin.strip().lower() not in self.allowed:
            shown = origin.decode("latin-1")[:200]
            return ApiError(
                403,
                "origin_not_allowed",
                f"requests from origin '{shown}' are not allowed; "
                "add it to feature_server.allowed_origins to allow them",
                {"origin": shown, "setting": "feature_server.allowed_origins"},
            )
        if cross_site and origin is None:
            return ApiError(
                403,
                "origin_not_allowed",
                "cross-site requests are not allowed; add the calling origin to feature_server.allowed_origins",
                {"setting": "feature_server.allowed_origins"},
            )
        return None
