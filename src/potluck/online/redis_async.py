"""Non-blocking Redis reads for the feature server: one pipelined asyncio connection per event loop.

redis-py's asyncio client costs about 100 µs of CPU per MGET and its synchronous client blocks
the event loop for the whole round trip (see docs/adr/0005). Here a command is one future;
hiredis packs commands and parses replies. Requests from concurrent HTTP handlers share the
connection: a command on an idle connection is written at once, the commands issued while others
are in flight go out together at the end of the loop's turn, and replies come back in order and
complete the oldest waiting future.

Only what the read path needs: MGET (plus AUTH and SELECT at connect) on a single server. Behind
Redis Sentinel, each new connection first asks the sentinels for the primary (SENTINEL MASTER,
skipping one that is down or flagged down) and checks it answers ROLE as a master; the killed or
demoted primary's connection drops, and the next read connects to the new one.
"""

from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module
import weakref
from dataclasses import dataclass
from typing import Any, cast

from potluck.definitions.errors import BackendUnavailableError, MissingExtraError


@dataclass(frozen=True)
class AsyncRedisSettings:
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_verify: bool = True
    connect_timeout: float = 3.0
    timeout: float = 3.0  # for each reply
    sentinels: tuple[tuple[str, int], ...] = ()  # set: host and port are found through these
    sentinel_master: str = "mymaster"
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def ssl_context(self) -> ssl_module.SSLContext | None:
        if not self.ssl:
            return None
        context = ssl_module.create_default_context(cafile=self.ssl_ca_certs)
        if not self.ssl_verify:
            context.check_hostname = False
            context.verify_mode = ssl_module.CERT_NONE
        return context


class _Waiter:
    __slots__ = ("deadline", "future")

    def __init__(self, future: asyncio.Future[Any], deadline: float) -> None:
        self.future = future
        self.deadline = deadline


class _RedisProtocol(asyncio.Protocol):
    """One connection: commands go out in order, each reply completes the oldest waiter."""

    def __init__(self, hiredis: Any, timeout: float) -> None:
        self._pack = hiredis.pack_command
        self._reply_error = hiredis.ReplyError
        self._reader = hiredis.Reader()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._outgoing: list[bytes] = []
        self.closed_reason: str | None = None

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiters = self._waiters
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if not waiters:  # a reply nobody asked for: the stream is out of step
                self._abort("unexpected reply")
                return
            future = waiters.popleft().future
            if future.done():  # its caller was cancelled; the reply is dropped
                continue
            if isinstance(reply, self._reply_error):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(self.closed_reason or (f"connection lost: {exc}" if exc else "connection closed by the server"))
        self._transport = None

    # -- commands
    @property
    def usable(self) -> bool:
        return self._transport is not None and self.closed_reason is None and not self._transport.is_closing()

    def command(self, *args: Any) -> asyncio.Future[Any]:
        transport = self._transport
        if transport is None or self.closed_reason is not None:
            raise ConnectionError(self.closed_reason or "not connected")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        packed = self._pack(args)
        if not self._waiters and not self._outgoing:
            # An idle connection (light load): send at once, latency is what counts.
            transport.write(packed)
        else:
            # Commands already in flight (concurrent requests): those issued in this turn of the
            # loop go out in one write at its end.
            self._outgoing.append(packed)
            if len(self._outgoing) == 1:
                loop.call_soon(self._flush)
        self._waiters.append(_Waiter(future, loop.time() + self._timeout))
        if self._timer is None:
            self._timer = loop.call_at(self._waiters[0].deadline, self._check_deadline)
        return future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self._transport is not None and self.closed_reason is None:
            self._transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    def _check_deadline(self) -> None:
        """One timer per connection: fires at the oldest waiter's deadline, or is moved to the new oldest."""
        self._timer = None
        waiters = self._waiters
        if not waiters:
            return
        loop = asyncio.get_running_loop()
        head = waiters[0].deadline
        if head <= loop.time():
            self._abort(f"no reply within {self._timeout:g} s")
        else:
            self._timer = loop.call_at(head, self._check_deadline)

    def _abort(self, reason: str) -> None:
        self.closed_reason = reason
        self._fail_all(reason)
        if self._transport is not None:
            self._transport.abort()

    def _fail_all(self, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiters:
            future = self._waiters.popleft().future
            if not future.done():
                future.set_exception(ConnectionError(reason))

    def close(self) -> None:
        if self._transport is not None:
            self.closed_reason = self.closed_reason or "closed"
            self._transport.close()


class AsyncRedisReader:
    """MGET over one pipelined connection per event loop; reconnects after a failure on the next call."""

    def __init__(self, settings: AsyncRedisSettings, where: str) -> None:
        try:
            import hiredis
        except ImportError:
            raise MissingExtraError("hiredis", "redis") from None
        self._hiredis = hiredis
        self._settings = settings
        self._where = where
        self._connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _RedisProtocol] = (
            weakref.WeakKeyDictionary()
        )
        self._connecting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _unavailable(self, reason: object) -> BackendUnavailableError:
        return BackendUnavailableError(f"Redis at {self._where} is unavailable: {reason}")

    async def mget(self, keys: list[bytes]) -> list[bytes | None]:
        connection = self._connections.get(asyncio.get_running_loop())
        if connection is None or not connection.usable:
            connection = await self._connect()
        try:
            reply: list[bytes | None] = await connection.command(b"MGET", *keys)
        except ConnectionError as err:
            raise self._unavailable(err) from err
        except self._hiredis.ReplyError as err:  # e.g. LOADING, NOAUTH after a restart, OOM
            raise BackendUnavailableError(f"Redis at {self._where} answered with an error: {err}") from err
        return reply

    async def _connect(self) -> _RedisProtocol:
        loop = asyncio.get_running_loop()
        lock = self._connecting.get(loop)
        if lock is None:
            lock = self._connecting[loop] = asyncio.Lock()
        async with lock:
            current = self._connections.get(loop)
            if current is not None and current.usable:
                return current
            s = self._settings
            host, port = (await self._primary()) if s.sentinels else (s.host, s.port)
            protocol: _RedisProtocol | None = None
            try:
                async with asyncio.timeout(s.connect_timeout):
                    protocol = await self._open(host, port, s.username, s.password)
                    if s.db:
                        await protocol.command(b"SELECT", s.db)
                    if s.sentinels:
                        role = await protocol.command(b"ROLE")
                        if not role or role[0] != b"master":
                            raise ConnectionError(f"{host}:{port}, named by the sentinels, is not a primary (yet)")
            except (TimeoutError, OSError, ConnectionError, self._hiredis.ReplyError) as err:
                if protocol is not None:
                    protocol.close()
                reason = f"no connection within {s.connect_timeout:g} s" if isinstance(err, TimeoutError) else err
                raise self._unavailable(reason) from err
            self._connections[loop] = protocol
            return protocol

    async def _open(self, host: str, port: int, username: str | None, password: str | None) -> _RedisProtocol:
        s = self._settings
        _, protocol = await asyncio.get_running_loop().create_connection(
            lambda: _RedisProtocol(self._hiredis, s.timeout), host, port, ssl=s.ssl_context()
        )
        if password is not None:
            await protocol.command(b"AUTH", *((username, password) if username else (password,)))
        return protocol

    async def _primary(self) -> tuple[str, int]:
        """The primary the first answering sentinel names, unless it flags it down."""
        s = self._settings
        problems: list[str] = []
        for host, port in s.sentinels:
            protocol: _RedisProtocol | None = None
            try:
                async with asyncio.timeout(s.connect_timeout):
                    protocol = await self._open(host, port, s.sentinel_username, s.sentinel_password)
                    reply = await protocol.command(b"SENTINEL", b"MASTER", s.sentinel_master)
            except (TimeoutError, OSError, ConnectionError, self._hiredis.ReplyError) as err:
                problems.append(f"sentinel {host}:{port}: {err or type(err).__name__}")
                continue
            finally:
                if protocol is not None:
                    protocol.close()
            state = dict(zip(reply[::2], reply[1::2], strict=True))
            flags = set(state.get(b"flags", b"").split(b","))
            if b"master" in flags and not flags & {b"s_down", b"o_down"}:
                return state[b"ip"].decode(), int(state[b"port"])
            problems.append(f"sentinel {host}:{port}: the primary is down ({state.get(b'flags', b'').decode()})")
        raise self._unavailable(f"no primary for '{s.sentinel_master}': {'; '.join(problems)}")

    def close(self) -> None:
        """Close every connection; callable from any thread, including after its loop has ended."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, connection in list(self._connections.items()):
            if loop.is_closed():
                continue  # its transport went with it
            if loop is current or not loop.is_running():
                connection.close()
            else:
                loop.call_soon_threadsafe(connection.close)
        self._connections.clear()
