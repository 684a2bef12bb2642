"""The feature log's writer process: turns the records the server sends into Parquet files.

Parsing answers and converting them to Arrow costs CPU under the interpreter lock; done in the
server's process it would hold up the event loop. The server sends the records (the answers' JSON
bodies) here over a pipe; this process converts and writes them, and answers each flush with its
outcome.

Frames, both ways: an 8-byte big-endian length, then a pickle. In: ("spec", id, LogSpec),
("rows", id, [record without its spec, ...]), ("flush", id) -> out: (rows written, rows left out,
error message or None). It ignores SIGINT and SIGTERM (the server shuts it down by closing the
pipe, after a last flush) and ends at end of input, so a killed server leaves no writer behind. It
runs at a lower CPU priority than the server (nice 10).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from typing import IO, Any

from potluck.feature_logs.spec import LogSpec
from potluck.feature_logs.writer import LogRecord, rows_of, write_records

LENGTH_BYTES = 8


def write_frame(out: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(len(data).to_bytes(LENGTH_BYTES, "big"))
    out.write(data)


def read_frame(inp: IO[bytes]) -> Any:
    """The next message, or None at end of input."""
    head = inp.read(LENGTH_BYTES)
    if len(head) < LENGTH_BYTES:
        return None
    size = int.from_bytes(head, "big")
    data = inp.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    specs: dict[int, LogSpec] = {}
    pending: dict[int, list[LogRecord]] = {}
    while (message := read_frame(inp)) is not None:
        kind, sid = message[0], message[1]
        if kind == "spec":
            specs[sid] = message[2]
        elif kind == "rows":
            spec = specs[sid]
            pending.setdefault(sid, []).extend((spec, *r) for r in message[2])
        elif kind == "flush":
            records = pending.pop(sid, [])
            rows = sum(rows_of(r) for r in records)
            try:
                skipped = write_records(specs[sid], records)
                reply: tuple[int, int, str | None] = (rows - skipped, skipped, None)
            except Exception as err:
                reply = (0, rows, f"{type(err).__name__}: {err}")
            write_frame(out, reply)
            out.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(10)  # the server's requests come first when the CPU is busy; the log can wait
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray output must not corrupt the replies
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
