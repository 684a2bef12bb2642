"""A real HTTP receiver on loopback for alert tests: records every request, answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """Answers each request with the next scripted reply (then `default`): a status code, 'hang'
    (no answer), or 'huge' (a 500 with a 20 MB body)."""

    url: str = ""
    script: list[int | str] = field(default_factory=list)
    default: int = 200
    hang_seconds: float = 3.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self) -> int | str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.body for r in self.requests]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


@contextmanager
def receiver(*script: int | str, default: int = 200, hang_seconds: float = 3.0) -> Iterator[Receiver]:
    state = Receiver(script=list(script), default=default, hang_seconds=hang_seconds)
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            with state.lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
            reply = state.next_reply()
            if reply == "hang":
                stop.wait(state.hang_seconds)  # longer than the client's timeout
                return
            if reply == "huge":
                self.send_response(500)
                self.send_header("Content-Length", str(20 * 2**20))
                self.end_headers()
                try:
                    for _ in range(20):
                        self.wfile.write(b"x" * 2**20)
                except OSError:  # the client stopped reading
                    pass
                return
            status = int(reply)
            payload = b'{"status":"error","message":"scripted failure"}' if status >= 400 else b'{"status":"success"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
