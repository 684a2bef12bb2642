"""`FeatureStore.run_stream`: the worker wired to a store's registry, online and offline stores,
dead-letter sink and metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from potluck.definitions import DataSource
from potluck.definitions.errors import ConfigError
from potluck.streaming.decode import DeadLetter
from potluck.streaming.stream_metrics import StreamMetrics
from potluck.streaming.worker import DeadLetterSink, StreamWorker, select_views

if TYPE_CHECKING:
    from potluck.store import FeatureStore


class _TopicSink:
    """Dead letters produced to a Kafka topic (of the source's cluster)."""

    def __init__(self, sender: Any) -> None:
        self._sender = sender

    def write(self, letters: Sequence[DeadLetter]) -> str | None:
        self._sender.send(letters)
        return None


class _PerSource:
    """One dead-letter sink per source: a folder, or a topic for Kafka sources."""

    def __init__(self, store: FeatureStore, sources: Sequence[DataSource]) -> None:
        settings = store.config.stream.dead_letter
        self._sinks: dict[str, DeadLetterSink] = {}
        for source in sources:
            if settings.topic:
                servers = getattr(source, "kafka_bootstrap_servers", None)
                if not servers:
                    raise ConfigError(
                        f"feature_store.yaml: key 'stream.dead_letter.topic': source '{source.name}' is not a Kafka "
                        "source; dead letters of other sources go to a folder (remove the topic, or run those "
                        "views in a worker of their own)"
                    )
                import importlib

                topics = importlib.import_module("potluck.streaming.sources.kafka_dead_letter")  # the kafka plugin's
                self._sinks[source.name] = _TopicSink(
                    topics.KafkaDeadLetterTopic(servers, settings.topic, dict(store.config.stream.settings))
                )
            else:
                from potluck.streaming.dead_letter import DeadLetterFile

                self._sinks[source.name] = DeadLetterFile(store.config.resolve(settings.path))

    def write(self, letters: Sequence[DeadLetter]) -> str | None:
        by_source: dict[str, list[DeadLetter]] = {}
        for letter in letters:
            by_source.setdefault(letter.source, []).append(letter)
        for name, some in by_source.items():
            self._sinks[name].write(some)
        return None


def run_stream(
    store: FeatureStore,
    views: Sequence[str] | None = None,
    *,
    exit_when_idle: float | None = None,
    offline: bool | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    progress: bool = False,
) -> dict[str, Any]:
    """Run the stream worker for `views` (default: every view on a stream source); returns its summary.

    `progress`: a live progress line on stderr when it is a terminal."""
    store.refresh_registry()
    snapshot = store.registry_snapshot()
    chosen = select_views(snapshot.feature_views(), views)
    config = store.config.stream
    if offline is not None:
        config = config.model_copy(update={"offline": offline})
    sources = list({v.source.name: v.source for v in chosen}.values())
    metrics = StreamMetrics()
    server = None
    if metrics_port is not None:
        from potluck.streaming.metrics_server import serve_metrics

        server = serve_metrics(metrics, host=metrics_host, port=metrics_port)
    worker = StreamWorker(
        chosen,
        project=store.project,
        repo_path=str(store.repo_path),
        config=config,
        online=store._online,
        offline=store._offline if config.offline else None,
        dead_letters=_PerSource(store, sources),
        stored_for=lambda view: store._stored_reading(snapshot, [view]),
        metrics=metrics,
    )
    from potluck.streaming.progress import ProgressLine

    line = ProgressLine(metrics) if progress else None
    try:
        if line is not None:
            line.start()
        summary = worker.run(exit_when_idle=exit_when_idle)
    finally:
        if line is not None:
            line.stop()
        if server is not None:
            server.stop()
    return dataclasses.asdict(summary)
