"""`SdkFeatureLog`: `FeatureStore.get_online_features` logs feature services as the server does.

The same `FeatureLogger` (sampling, bounded queue, drops counted, a background thread handing
batches to a writer process) and the same files. The logger starts on the first logged read;
what is queued is written at `FeatureStore.close()` or at interpreter exit.
"""

from __future__ import annotations

import atexit
import functools
import logging
import random
import threading
import time
from typing import TYPE_CHECKING

from potluck.feature_logs.logger import FeatureLogger, LogStats, LogWriter
from potluck.feature_logs.resolve import LogSpecs
from potluck.feature_logs.served import served_body

if TYPE_CHECKING:
    from potluck.retrieval.online import OnlineResponse
    from potluck.store import FeatureStore

log = logging.getLogger("potluck.feature_logs")
_WARN_EVERY_S = 60.0


class SdkFeatureLog:
    def __init__(
        self,
        store: FeatureStore,
        *,
        enabled: bool = True,
        queue_rows: int = 50_000,
        flush_rows: int = 10_000,
        flush_interval: float = 5.0,
        close_timeout: float = 30.0,
        writer: LogWriter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`writer` defaults to a writer process (`ProcessWriter`); `rng` draws the samples."""
        self.enabled = enabled
        self._rng = rng
        self._specs = LogSpecs(store)
        self._settings = (queue_rows, flush_rows, flush_interval)
        self._close_timeout = close_timeout
        self._writer = writer
        self._logger: FeatureLogger | None = None
        self._lock = threading.Lock()
        self._last_warning = -_WARN_EVERY_S

    def _started(self) -> FeatureLogger:
        logger = self._logger
        if logger is not None:
            return logger
        with self._lock:
            if self._logger is None:
                queue_rows, flush_rows, interval = self._settings
                self._logger = FeatureLogger(
                    queue_rows=queue_rows,
                    flush_rows=flush_rows,
                    flush_interval=interval,
                    writer=self._writer,
                    rng=self._rng,
                )
                atexit.register(self.close)
            return self._logger

    def log(self, feature_service: str, response: OnlineResponse) -> None:
        """Offer a sample of one answered read; never raises (a failure is logged once a minute)."""
        if not self.enabled:
            return
        try:
            spec = self._specs.get(feature_service)
            if spec is not None:
                body = functools.partial(served_body, response)
                self._started().offer(spec, None, response.num_rows, body, response.request_columns or None)
        except Exception as err:
            now = time.monotonic()
            if now - self._last_warning >= _WARN_EVERY_S:
                self._last_warning = now
                log.warning("feature service '%s': read not logged: %s: %s", feature_service, type(err).__name__, err)

    def stats(self) -> LogStats:
        logger = self._logger
        return logger.stats() if logger is not None else LogStats({}, {}, {}, 0)

    def flush(self) -> None:
        """Write what is queued now (the logger's thread does so on its own)."""
        logger = self._logger
        if logger is not None:
            logger.flush()

    def close(self) -> None:
        """Write what is queued (within the close timeout) and stop the writer."""
        with self._lock:
            logger, self._logger = self._logger, None
        if logger is None:
            return
        atexit.unregister(self.close)
        logger.close(self._close_timeout)


def sdk_feature_log(store: FeatureStore) -> SdkFeatureLog:
    """The SDK's feature log under the `feature_server` settings of `feature_store.yaml` (the server's)."""
    from potluck.server.settings import ServerSettings

    settings = store.config.feature_server or ServerSettings()
    return SdkFeatureLog(
        store,
        enabled=settings.feature_log_enabled,
        queue_rows=settings.feature_log_queue_rows,
        flush_rows=settings.feature_log_flush_rows,
        flush_interval=settings.feature_log_flush_interval_seconds,
        close_timeout=settings.feature_log_shutdown_timeout_seconds,
    )
