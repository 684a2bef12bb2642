"""`FeatureLogger`: samples online requests and hands them to a writer from a background thread.

The request path only draws a random number and appends the JSON body it already built to a
bounded queue; a full queue drops the request's rows (counted). A thread hands the queue to the
writer (by default a `ProcessWriter`, whose child process converts and writes Parquet files)
every `flush_rows` queued rows or `flush_interval` seconds, and once more at shutdown. A failing
write is counted and logged, never raised into a request.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from potluck.feature_logs.spec import LogSpec
from potluck.feature_logs.writer import LogRecord, rows_of

log = logging.getLogger("potluck.feature_logs")
_ERROR_LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class LogStats:
    """Counters since start, per feature service, and the rows waiting to be written."""

    logged_rows: dict[str, int]
    dropped_rows: dict[str, int]
    flush_errors: dict[str, int]
    queued_rows: int


class LogWriter(Protocol):
    def write(self, spec: LogSpec, records: Sequence[LogRecord]) -> int:
        """Write the records of one service; return the rows left out (values that do not convert)."""
        ...

    def close(self) -> None: ...


class FeatureLogger:
    def __init__(
        self,
        *,
        queue_rows: int,
        flush_rows: int,
        flush_interval: float,
        rng: random.Random | None = None,
        writer: LogWriter | None = None,
    ) -> None:
        """`writer` defaults to a `ProcessWriter` (a child process converts and writes)."""
        self._max_rows = queue_rows
        self._flush_rows = flush_rows
        self._interval = flush_interval
        self._random = (rng or random.Random()).random
        if writer is None:
            from potluck.feature_logs.process import ProcessWriter

            writer = ProcessWriter()
        self._writer = writer
        self._lock = threading.Lock()
        self._queue: deque[LogRecord] = deque()
        self._pending = 0  # rows queued or being written
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._logged: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._last_error_log: dict[str, float] = {}

    # -- the request path ---------------------------------------------------------------------
    def offer(
        self,
        spec: LogSpec,
        request_id: str | None,
        rows: int,
        body: bytes | Callable[[], bytes],
        entities: Mapping[str, list[Any]] | None = None,
    ) -> bool:
        """Queue a sample of one answered request (`rows` entity rows, its JSON `body`, or a function
        that builds it, called only for a sampled request with room in the queue; the request's
        `entities`, of which the spec's request fields are kept); True when it was queued. Never
        blocks, never raises."""
        rate = spec.sample_rate
        if rate < 1.0 and self._random() >= rate:
            return False
        if not isinstance(body, bytes):
            if self._closed or self._pending + rows > self._max_rows:
                with self._lock:
                    self._dropped[spec.service] += rows
                return False
            try:
                body = body()
            except Exception as err:
                self._failed(spec.service, rows, err)
                return False
        with self._lock:
            if self._closed or self._pending + rows > self._max_rows:
                self._dropped[spec.service] += rows
                return False
            self._pending += rows
            request = {n: entities[n] for n, _ in spec.request_fields if n in entities} if entities else None
            self._queue.append((spec, request_id, time.time(), rows, body, request))
            wake = self._pending >= self._flush_rows
            start = self._thread is None
            if start:
                self._thread = threading.Thread(target=self._run, name="potluck-feature-log", daemon=True)
        if start:
            assert self._thread is not None
            self._thread.start()
        if wake:
            self._wake.set()
        return True

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closed
            try:
                self.flush()
            except Exception:  # a bug here must not stop logging for good
                log.exception("the feature log writer failed")
            if closing:
                return

    def flush(self) -> None:
        """Write everything queued now (the writer thread does this on its own)."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
        if not batch:
            return
        groups: dict[LogSpec, list[LogRecord]] = {}
        for record in batch:
            groups.setdefault(record[0], []).append(record)
        try:
            for spec, records in groups.items():
                rows = sum(rows_of(r) for r in records)
                try:
                    skipped = self._writer.write(spec, records)
                except Exception as err:
                    self._failed(spec.service, rows, err)
                    continue
                if skipped:
                    self._failed(spec.service, skipped, ValueError("values that do not convert to the log's types"))
                with self._lock:
                    self._logged[spec.service] += rows - skipped
        finally:
            with self._lock:
                self._pending -= sum(rows_of(r) for r in batch)

    def _failed(self, service: str, rows: int, err: Exception) -> None:
        with self._lock:
            self._errors[service] += 1
            self._dropped[service] += rows
            count = self._errors[service]
        now = time.monotonic()
        if now - self._last_error_log.get(service, -_ERROR_LOG_EVERY_S) >= _ERROR_LOG_EVERY_S:
            self._last_error_log[service] = now
            log.error(
                "feature service '%s': %d logged rows could not be written (%d failed writes so far): %s: %s",
                service,
                rows,
                count,
                type(err).__name__,
                err,
            )

    # -- shutdown and metrics -------------------------------------------------------------------
    def close(self, timeout: float = 30.0) -> None:
        """Stop taking requests and write what is queued (waits at most `timeout` seconds)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            log.error("the feature log writer did not finish within %.0f s; queued rows are lost", timeout)
            return
        self._writer.close()

    def stats(self) -> LogStats:
        with self._lock:
            return LogStats(dict(self._logged), dict(self._dropped), dict(self._errors), self._pending)
