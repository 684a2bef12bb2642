"""Reads of concurrent requests answered by one worker thread in turns."""

from __future__ import annotations

import asyncio
import threading

import pytest

from potluck.definitions.errors import BackendUnavailableError
from potluck.server.coalesce import CoalescedReads


def test_concurrent_calls_get_their_own_answers_and_errors() -> None:
    reads = CoalescedReads(timeout=5)

    def fail() -> int:
        raise ValueError("bad request")

    async def main() -> list[object]:
        calls = [asyncio.create_task(reads.run(lambda i=i: i * i)) for i in range(200)]
        calls.append(asyncio.create_task(reads.run(fail)))
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        reads.close()
    assert answers[:200] == [i * i for i in range(200)]
    assert isinstance(answers[200], ValueError)


def test_a_stuck_call_answers_503_and_calls_that_gave_up_are_skipped_afterwards() -> None:
    reads = CoalescedReads(timeout=0.3)
    release = threading.Event()
    ran: list[int] = []

    def stuck() -> str:
        release.wait(10)
        return "late"

    def record(i: int) -> int:
        ran.append(i)
        return i

    async def main() -> tuple[list[object], int]:
        first = asyncio.create_task(reads.run(stuck))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(reads.run(lambda i=i: record(i))) for i in range(50)]
        outcomes = await asyncio.gather(first, *waiting, return_exceptions=True)
        release.set()
        after = await reads.run(lambda: record(99))
        return outcomes, after

    try:
        outcomes, after = asyncio.run(main())
    finally:
        reads.close()
    assert all(isinstance(o, BackendUnavailableError) for o in outcomes)
    assert after == 99
    assert ran == [99]  # the 50 that had answered 503 were never run


def test_the_error_names_the_backend() -> None:
    reads = CoalescedReads(timeout=0.1)
    release = threading.Event()

    async def main() -> None:
        await reads.run(lambda: release.wait(5))

    try:
        with pytest.raises(BackendUnavailableError, match=r"the online store did not answer within 0\.1 s"):
            asyncio.run(main())
    finally:
        release.set()
        reads.close()
