"""uvicorn's httptools protocol with limits on request heads: size, count and the time to send them.

uvicorn bounds neither the size nor the number of headers, and only times out idle keep-alive
connections: a client sending its headers a byte at a time holds a connection for ever. Here a
connection must deliver each request line and headers within `header_timeout_seconds` (from the
connection, or from the first byte of the next request), in at most `max_header_bytes` and
`max_headers`; otherwise it gets 408 or 431 and is closed. `potluck serve` runs uvicorn with
`HttpProtocol`, which takes its limits from the server settings in the environment
(`potluck.server.factory`); `limited_protocol` builds one with given limits.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from potluck.server.settings import ServerSettings

LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _Refused(Exception):
    """Stops the parser once a request has been refused."""


class LimitedHttpProtocol(HttpToolsProtocol):
    max_header_bytes: ClassVar[int] = 16 * 1024
    max_headers: ClassVar[int] = 100
    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._discarded = 0

    # -- the time to send a head
    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its body has its own timeout
        self._refuse(408, f"the request headers were not received within {self.header_timeout:g} s")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_count = 0
        if self._head_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    # -- the size of a head
    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def _count(self, size: int, headers: int) -> None:
        self._head_bytes += size
        self._head_count += headers
        if self._head_bytes > self.max_header_bytes:
            self._refuse(431, f"the request headers exceed {self.max_header_bytes} bytes")
            raise _Refused
        if self._head_count > self.max_headers:
            self._refuse(431, f"the request has more than {self.max_headers} headers")
            raise _Refused

    # -- refusing
    def _refuse(self, status: int, message: str) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._disarm()
        code = "request_timeout" if status == 408 else "headers_too_large"
        body = b'{"error":{"code":"%s","message":"%s","details":null,"retryable":false}}' % (
            code.encode(),
            message.encode(),
        )
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), body)
        )
        # Lingering close: a socket closed with unread input resets the connection, and the
        # client, still sending, would lose the answer. Finish writing, then drop input a while.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # the parser stopped because of `_Refused`: the answer is sent
            super().send_400_response(msg)


def limited_protocol(settings: ServerSettings) -> type[LimitedHttpProtocol]:
    """A protocol class with the head limits of `settings`."""

    class HttpProtocol(LimitedHttpProtocol):
        max_header_bytes = settings.max_header_bytes
        max_headers = settings.max_headers
        header_timeout = settings.header_timeout_seconds

    return HttpProtocol


def _from_environment() -> type[LimitedHttpProtocol]:
    from potluck.server.factory import settings_from_env

    return limited_protocol(settings_from_env())


HttpProtocol = _from_environment()
