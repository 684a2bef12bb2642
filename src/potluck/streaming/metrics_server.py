"""The stream worker's `/metrics` endpoint: a small HTTP server over one StreamMetrics' own registry.

Import it from `potluck.streaming.stream_metrics` (this module is kept free of it to avoid a cycle).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from potluck.definitions.errors import PotluckError

if TYPE_CHECKING:
    from potluck.streaming.stream_metrics import StreamMetrics


def prometheus_module() -> Any:
    """prometheus_client, or an error naming the extra that installs it."""
    try:
        import prometheus_client
    except ImportError:
        raise PotluckError("exporting stream metrics needs prometheus-client: pip install 'potluck[stream]'") from None
    return prometheus_client


class MetricsServer:
    """A running endpoint; `stop()` (or calling it, or leaving the `with` block) closes its socket and thread."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = server.server_address[0]
        self.port: int = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()

    __call__ = stop

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_metrics(metrics: StreamMetrics, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
    """Serve `metrics` on http://host:port/metrics (port 0: a free one, see `.port`) in a daemon thread."""
    prometheus = prometheus_module()
    try:
        server, thread = prometheus.start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as err:
        raise PotluckError(
            f"cannot serve stream metrics on {host}:{port}: {err.strerror or err}; "
            "choose another --metrics-port (or 0 for a free one)"
        ) from None
    return MetricsServer(server, thread)
