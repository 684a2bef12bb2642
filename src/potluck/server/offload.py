"""Blocking backend calls run off the event loop, in bounded thread pools, with a deadline.

Each kind of call (online reads, pushes, registry and key lookups, the web UI's pages) has its own pool, so a frozen
backend of one kind, or a backlog of one kind of call, cannot take the threads of another. A call
still waiting at its deadline answers 503; its thread finishes when the backend's own timeouts
(socket, statement) end it. A write (`run_write`) is given up only while it has not started.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from potluck.definitions.errors import BackendUnavailableError

P = ParamSpec("P")
T = TypeVar("T")


class Offload:
    """One thread pool per kind of backend call; `run` awaits a call for at most `timeout` seconds."""

    KINDS = ("online", "push", "registry", "auth", "ui")

    def __init__(self, threads: int, timeout: float) -> None:
        self.timeout = timeout
        self._pools = {k: ThreadPoolExecutor(threads, thread_name_prefix=f"potluck-{k}") for k in self.KINDS}

    def _pool(self, kind: str) -> ThreadPoolExecutor:
        return self._pools[kind]

    async def run(self, kind: str, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args)` in the `kind` pool; BackendUnavailableError if it has not returned within the timeout."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool(kind), functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise BackendUnavailableError(f"{what} did not answer within {self.timeout:g} s") from None

    async def run_write(self, kind: str, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """As `run` for a write: BackendUnavailableError if no thread has started it within the timeout.

        A write that has started runs to its end (bounded by the backend's own timeouts) and its
        outcome is returned, so a 503 never stands for a write that happened after all.
        """
        future = self._pool(kind).submit(functools.partial(fn, *args, **kwargs))
        waiting = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), self.timeout)
        except TimeoutError:
            if future.cancel():  # still queued: it will never run
                raise BackendUnavailableError(f"{what} did not answer within {self.timeout:g} s") from None
        return await waiting

    def wait(self, kind: str, what: str, fn: Callable[[], T]) -> T:
        """As `run`, from a thread that is not the event loop's."""
        future = self._pool(kind).submit(fn)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise BackendUnavailableError(f"{what} did not answer within {self.timeout:g} s") from None

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
