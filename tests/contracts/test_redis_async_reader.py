"""The non-blocking Redis reader against private redis-server processes: auth, db, timeouts, restarts."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from potluck.definitions.errors import BackendUnavailableError
from potluck.online.redis_async import AsyncRedisReader, AsyncRedisSettings
from tests_support import free_port, start_redis_server

pytestmark = pytest.mark.redis


@contextmanager
def private_redis(folder: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A private redis-server on `port`, stopped on exit."""
    proc = start_redis_server(port, folder, *extra)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client(port: int, password: str | None = None, db: int = 0):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis(port=port, password=password, db=db)


def test_auth_and_db_are_applied_on_connect(tmp_path: Path) -> None:
    port = free_port()
    with private_redis(tmp_path, port, "--requirepass", "s3cret"):
        _client(port, "s3cret", db=3).mset({b"a": b"1", b"b": b"2"})
        good = AsyncRedisReader(AsyncRedisSettings("127.0.0.1", port, db=3, password="s3cret"), f"127.0.0.1:{port}")
        assert asyncio.run(good.mget([b"b", b"missing", b"a"])) == [b"2", None, b"1"]
        good.close()

        wrong_db = AsyncRedisReader(AsyncRedisSettings("127.0.0.1", port, password="s3cret"), "here")
        assert asyncio.run(wrong_db.mget([b"a"])) == [None]

        bad = AsyncRedisReader(AsyncRedisSettings("127.0.0.1", port, password="nope"), f"127.0.0.1:{port}")
        with pytest.raises(BackendUnavailableError, match=f"Redis at 127.0.0.1:{port} is unavailable"):
            asyncio.run(bad.mget([b"a"]))


def test_a_server_that_stops_answering_times_out_and_the_next_call_reconnects(tmp_path: Path) -> None:
    port = free_port()
    with private_redis(tmp_path, port):
        _client(port).set(b"k", b"v")
        reader = AsyncRedisReader(AsyncRedisSettings("127.0.0.1", port, timeout=0.3), "here")

        async def scenario() -> None:
            assert await reader.mget([b"k"]) == [b"v"]
            _client(port).client_pause(1500)  # the server holds every reply of other clients
            started = time.monotonic()
            results = await asyncio.gather(*(reader.mget([b"k"]) for _ in range(5)), return_exceptions=True)
            assert time.monotonic() - started < 1.2  # failed at the timeout, not when the pause ended
            assert all(isinstance(r, BackendUnavailableError) for r in results), results
            assert "no reply within 0.3 s" in str(results[0])
            await asyncio.sleep(1.5)
            assert await reader.mget([b"k"]) == [b"v"]  # a fresh connection, in step again

        asyncio.run(scenario())
        reader.close()


def test_pending_reads_fail_fast_when_the_server_dies_and_recover_after_restart(tmp_path: Path) -> None:
    port = free_port()
    reader = AsyncRedisReader(AsyncRedisSettings("127.0.0.1", port, connect_timeout=1), "here")

    async def read() -> list[bytes | None]:
        return await reader.mget([b"k"])

    with private_redis(tmp_path, port) as proc:
        _client(port).set(b"k", b"before")
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(read()) == [b"before"]
            proc.kill()
            proc.wait()
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                loop.run_until_complete(read())
            with pytest.raises(BackendUnavailableError):
                loop.run_until_complete(read())  # reconnect refused: fails fast as well
            assert time.monotonic() - started < 1.0
            with private_redis(tmp_path, port):
                _client(port).set(b"k", b"after")
                assert loop.run_until_complete(read()) == [b"after"]
        finally:
            reader.close()
            loop.close()


def test_error_replies_fail_only_their_own_call(tmp_path: Path) -> None:
    port = free_port()
    with private_redis(tmp_path, port):
        _client(port).set(b"k", b"v")
        reader = AsyncRedisReader(AsyncRedisSettings("127.0.0.1", port), "here")

        async def scenario() -> None:
            ok = await reader.mget([b"k"])
            with pytest.raises(BackendUnavailableError):
                await reader.mget([])  # MGET without keys: the server answers with an error
            assert ok == await reader.mget([b"k"])

        asyncio.run(scenario())
        reader.close()
