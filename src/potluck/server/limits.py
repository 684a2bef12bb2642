"""Request bodies: a size limit (Content-Length or chunked), a read timeout, and errors that let the client finish.

An error answered before the body was read (413 on a declared size, 401, 403, 415) first reads
and discards the rest of the body, up to a bound: closing a socket with unread data in it resets
the connection, and a client still sending (urllib, requests) would see the reset, not the error.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from potluck.server.browser import BrowserRules
from potluck.server.errors import ApiError, error_response

DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # past this, an error is answered and the connection closed
DRAIN_PAUSE_SECONDS = 1.0
_READ = "potluck.body_read"  # scope key: the body was read to its end (or cannot be read any more)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body exceeds the limit of {limit} bytes")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class BodyReader:
    """Reads request bodies of at most `max_bytes`, each within `timeout` seconds."""

    def __init__(self, max_bytes: int, timeout: float) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout

    def _timed_out(self, scope: Scope) -> ApiError:
        scope[_READ] = True
        return ApiError(
            408,
            "request_timeout",
            f"the request body was not received within {self.timeout:g} s",
            headers={"Connection": "close"},
        )

    async def read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None if the client went away; ApiError 413 past `max_bytes`, 408 when too slow.

        A declared Content-Length over the limit is refused without reading; a chunked body is
        refused as soon as the bytes read pass the limit.
        """
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            raise _too_large(self.max_bytes)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._read(scope, receive)
        except TimeoutError:
            raise self._timed_out(scope) from None

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope[_READ] = True
            return None
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            scope[_READ] = True
            if len(body) > self.max_bytes:
                raise _too_large(self.max_bytes)
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope[_READ] = True
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if not more:
                scope[_READ] = True
            if size > self.max_bytes:
                raise _too_large(self.max_bytes)
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)

    async def respond(self, err: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer `err`, after discarding what is left of the request body (see the module docstring)."""
        if not scope.get(_READ) and not await self._drain(scope, receive):
            err.headers.setdefault("Connection", "close")
        await error_response(err)(scope, receive, send)

    async def _drain(self, scope: Scope, receive: Receive) -> bool:
        """Read and drop the rest of the body; False when it is too long or too slow to wait for."""
        if any(n == b"expect" and v.lower() == b"100-continue" for n, v in scope["headers"]):
            return True  # the client waits for "100 Continue" before sending: it has sent nothing
        declared = _declared_length(scope)
        if declared is not None and declared > DRAIN_LIMIT_BYTES:
            return False
        # A body of unknown length (chunked) may never end: stop when the client pauses.
        pause = self.timeout if declared is not None else min(self.timeout, DRAIN_PAUSE_SECONDS)
        size = 0
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    async with asyncio.timeout(pause):
                        message = await receive()
                    if message["type"] == "http.disconnect" or not message.get("more_body", False):
                        return True
                    size += len(message.get("body", b""))
                    if size > DRAIN_LIMIT_BYTES:
                        return False
        except TimeoutError:
            return False


class BodyLimitMiddleware:
    """Applies `rules` (see `BrowserRules`), then reads the whole body (see `BodyReader`) before the app runs."""

    def __init__(self, app: ASGIApp, rules: BrowserRules, body: BodyReader) -> None:
        self.app = app
        self.rules = rules
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.rules.refusal(scope)
        if refusal is not None:
            await self.body.respond(refusal, scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self.body.read(scope, receive)
        except ApiError as err:
            await self.body.respond(err, scope, receive, send)
            return
        if body is None:
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
