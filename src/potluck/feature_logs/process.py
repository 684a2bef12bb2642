"""`ProcessWriter`: the feature log written by a child process (see `child`), off the server's lock."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from potluck.feature_logs.child import read_frame, write_frame
from potluck.feature_logs.spec import LogSpec
from potluck.feature_logs.writer import LogRecord, rows_of

log = logging.getLogger("potluck.feature_logs")


class LogWriteError(RuntimeError):
    """The writer process could not write a batch (its rows are lost), or it stopped."""


class ProcessWriter:
    """Sends records to a writer process, started on first use and restarted if it dies.

    The records hold the answers' JSON bodies: sending them costs little more than a copy, and the
    parsing and conversion happen in the writer process. Called from one thread at a time.
    """

    def __init__(self, chunk_rows: int = 500, close_timeout: float = 30.0) -> None:
        self._chunk_rows = chunk_rows
        self._close_timeout = close_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._ids: weakref.WeakKeyDictionary[LogSpec, int] = weakref.WeakKeyDictionary()
        self._next_id = 0
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "potluck.feature_logs.child"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            self._ids = weakref.WeakKeyDictionary()
        return self._proc

    def write(self, spec: LogSpec, records: Sequence[LogRecord]) -> int:
        """Write `records` of `spec`'s service; returns the rows left out (values that do not convert)."""
        with self._lock:
            proc = self._process()
            assert proc.stdin is not None
            assert proc.stdout is not None
            try:
                sid = self._ids.get(spec)
                if sid is None:
                    sid = self._ids[spec] = self._next_id
                    self._next_id += 1
                    write_frame(proc.stdin, ("spec", sid, spec))
                chunk: list[Any] = []
                rows = 0
                for record in records:
                    chunk.append(record[1:])
                    rows += rows_of(record)
                    if rows >= self._chunk_rows:
                        write_frame(proc.stdin, ("rows", sid, chunk))
                        chunk, rows = [], 0
                if chunk:
                    write_frame(proc.stdin, ("rows", sid, chunk))
                write_frame(proc.stdin, ("flush", sid))
                proc.stdin.flush()
                reply = read_frame(proc.stdout)
            except (OSError, ValueError) as err:
                self._stop(proc)
                raise LogWriteError(f"the feature log writer process failed: {err}") from err
            if reply is None:
                self._stop(proc)
                raise LogWriteError(f"the feature log writer process exited (code {proc.poll()})")
            _, skipped, error = reply
            if error is not None:
                raise LogWriteError(error)
            return int(skipped)

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._proc = None

    def close(self) -> None:
        """End the writer process after what it was sent is written."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(self._close_timeout)
            except (OSError, subprocess.TimeoutExpired):
                log.error("the feature log writer process did not finish; stopping it")
                proc.kill()
                proc.wait()
            finally:
                if proc.stdout is not None:
                    proc.stdout.close()
