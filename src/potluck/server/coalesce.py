"""Blocking reads of many concurrent requests answered by one worker thread in turns.

Each request crossing to a thread and back on its own costs more than a SQLite lookup. Here the
requests that arrive while the worker is busy wait in a list, and the worker's next turn answers
all of them and wakes their coroutines with one call into the loop. A request still waiting at its
deadline answers 503; the worker finishes it when the backend's own timeouts end the call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from potluck.definitions.errors import BackendUnavailableError

Call = Callable[[], Any]


class _Waiting:
    """One request's call; `abandoned` once it has answered 503, so a late turn skips it."""

    __slots__ = ("abandoned", "call", "future")

    def __init__(self, call: Call, future: asyncio.Future[Any]) -> None:
        self.call = call
        self.future = future
        self.abandoned = False


class CoalescedReads:
    def __init__(self, timeout: float, what: str = "the online store") -> None:
        self.timeout = timeout
        self.what = what
        self._pending: list[_Waiting] = []
        self._lock = threading.Lock()
        self._busy = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="potluck-reads")

    async def run(self, call: Call) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        waiting = _Waiting(call, future)
        with self._lock:
            self._pending.append(waiting)
            start = not self._busy
            self._busy = True
        if start:
            self._pool.submit(self._drain, loop)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            waiting.abandoned = True  # after a frozen backend resumes, the worker skips it
            raise BackendUnavailableError(f"{self.what} did not answer within {self.timeout:g} s") from None

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._busy = False
                    return
            outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
            for waiting in batch:
                if waiting.abandoned:
                    continue
                try:
                    outcomes.append((waiting.future, True, waiting.call()))
                except Exception as exc:
                    outcomes.append((waiting.future, False, exc))
            try:
                loop.call_soon_threadsafe(_settle, outcomes)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
