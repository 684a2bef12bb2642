"""The stream worker: consumes the views' stream sources and writes what they carry, exactly once.

One consumer per source (a source feeding several views is read once). Each batch (up to
`stream.batch_size` messages, or what `stream.batch_interval_seconds` brought) is decoded, then
written in this order: dead letters, online rows (plain views newest-wins, with the on-demand views
stored at write time that read them; aggregation views as tile updates), the offline log, and only
then the consumer's positions are committed. Every step can be repeated without changing its
result, so a batch replayed after a crash (or retried after an outage) leaves what the first run
left:

- tiles keep, per entity and partition, the highest offset applied (`tile_feed.update_tiles`);
- plain rows are newest-wins, and their created time comes from the message (the source's created
  column, else the broker time, else the offset), never from the clock;
- the offline log and the dead-letter file name their files by partition and first offset.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from potluck.definitions import DataSource, FeatureView
from potluck.definitions.errors import BackendUnavailableError, ConfigError, DefinitionError
from potluck.online.protocol import OnlineStore, OnlineView
from potluck.repo.config import StreamConfig
from potluck.retrieval.plans import online_view
from potluck.streaming.decode import (
    BROKER_TIME_COLUMN,
    OFFSET_COLUMN,
    PARTITION_COLUMN,
    DeadLetter,
    Decoded,
    Decoder,
)
from potluck.streaming.offline_log import OfflineLog
from potluck.streaming.on_demand_writes import StoredView, followups
from potluck.streaming.push import prepare_rows
from potluck.streaming.sources import (
    ConsumerOptions,
    StreamConsumer,
    StreamMessage,
    StreamUnavailableError,
    is_stream_source,
    open_consumer,
)
from potluck.streaming.stream_metrics import StreamMetrics

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("potluck.stream")

BACKOFF_START = 0.2  # seconds before the first retry after an outage
BACKOFF_CAP = 10.0
IDLE_PAUSE = 0.05  # seconds to wait when every source answered "nothing" at once
# With exit_when_idle: how long a source may stay unreachable (or its group unjoined) before the run
# ends as "unavailable"; at least this, so a slow group join is not mistaken for an outage.
UNAVAILABLE_AFTER = 30.0
CONSUMER_NAME_ENV = "POTLUCK_STREAM_CONSUMER_NAME"


class DeadLetterSink(Protocol):
    def write(self, letters: Sequence[DeadLetter]) -> str | None: ...


def _is_outage(err: BaseException) -> bool:
    """Whether `err` says a store the batch is written to (online store, dead-letter topic) is unreachable now."""
    if isinstance(err, BackendUnavailableError | StreamUnavailableError | ConnectionError | TimeoutError):
        return True
    kind = type(err)
    if kind.__module__.startswith(("psycopg", "redis")):  # their connection errors, unwrapped
        return any(
            c.__name__ in ("OperationalError", "InterfaceError", "ConnectionError", "TimeoutError")
            for c in kind.__mro__
        )
    if kind.__module__ == "sqlite3" and kind.__name__ == "OperationalError":
        return "locked" in str(err) or "busy" in str(err)
    return False


def consumer_name() -> str:
    """This worker's name in the consumer group: $POTLUCK_STREAM_CONSUMER_NAME, else host and process."""
    return os.environ.get(CONSUMER_NAME_ENV) or f"{socket.gethostname()}-{os.getpid()}"


def select_views(all_views: Mapping[str, FeatureView], names: Sequence[str] | None) -> list[FeatureView]:
    """The views to run: those named (each must read a stream source), else every view on a stream source."""
    if not names:
        return [v for v in all_views.values() if is_stream_source(v.source)]
    from potluck.definitions.errors import suggestion

    out: list[FeatureView] = []
    for name in dict.fromkeys(names):
        view = all_views.get(name)
        if view is None:
            streams = [n for n, v in all_views.items() if is_stream_source(v.source)]
            raise DefinitionError(f"feature view '{name}' does not exist. {suggestion(name, streams)}")
        if not is_stream_source(view.source):
            raise DefinitionError(
                f"feature view '{name}' reads '{view.source.name}' (type {view.source.source_type}), "
                "not a stream source; the stream worker runs views on Kafka or Redis Streams sources"
            )
        out.append(view)
    return out


def created_times(table: pa.Table) -> Any:
    """A created time per decoded row that a replay gives again: the broker time, else (no broker
    time) the offset itself as microseconds since the epoch.

    Rows of one key with equal event and created times are resolved by write order (a later row of
    a batch, or a later write, wins), and the worker writes in offset order, so the newest message wins.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    ts = pa.timestamp("us", tz="UTC")
    offsets = pc.cast(table.column(OFFSET_COLUMN), pa.int64())
    broker = pc.cast(pc.cast(table.column(BROKER_TIME_COLUMN), ts), pa.int64())
    return pc.cast(pc.if_else(pc.is_null(broker), offsets, broker), ts)


@dataclass
class ViewTarget:
    view: FeatureView
    online: OnlineView
    stored: list[StoredView]


@dataclass
class SourceRun:
    """One source's consumer and the views it feeds."""

    source: DataSource
    targets: list[ViewTarget]
    options: ConsumerOptions
    decoder: Decoder
    offline_log: OfflineLog | None
    logged: list[int] = field(default_factory=list)  # indexes of the targets whose rows go to the offline log
    consumer: StreamConsumer | None = None
    backoff: float = 0.0  # seconds to wait before reconnecting (0: the broker answered last time)
    lag_at: float = 0.0
    lag: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkerSummary:
    """What a run did (totals)."""

    messages: int = 0
    batches: int = 0
    dead_letters: int = 0
    late: int = 0
    replayed: int = 0
    written: dict[str, int] = field(default_factory=dict)  # view -> rows (plain) or events applied (tiles)
    offline_rows: int = 0
    pauses: int = 0
    stopped_by: str = ""  # idle | signal | stop | unavailable

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "batches": self.batches,
            "dead_letters": self.dead_letters,
            "late": self.late,
            "replayed": self.replayed,
            "written": dict(self.written),
            "offline_rows": self.offline_rows,
            "pauses": self.pauses,
            "stopped_by": self.stopped_by,
        }


class StreamWorker:
    """Consumes stream sources into the online store (and the offline log) until stopped."""

    def __init__(
        self,
        views: Sequence[FeatureView],
        *,
        project: str,
        repo_path: str,
        config: StreamConfig,
        online: OnlineStore,
        offline: object | None,
        dead_letters: DeadLetterSink,
        stored_for: Callable[[FeatureView], list[StoredView]] = lambda _v: [],
        metrics: StreamMetrics | None = None,
        open: Callable[[DataSource, ConsumerOptions], StreamConsumer] = open_consumer,
    ) -> None:
        if not views:
            raise DefinitionError(
                "no feature view reads a stream source; define a StreamFeatureView on a KafkaSource or "
                "RedisStreamSource (or name views with -v)"
            )
        self.config = config
        self.online = online
        self.dead_letters = dead_letters
        self.metrics = metrics or StreamMetrics()
        self._open = open
        self._stop = threading.Event()
        self.summary = WorkerSummary()
        by_source: dict[str, list[FeatureView]] = {}
        sources: dict[str, DataSource] = {}
        for v in views:
            by_source.setdefault(v.source.name, []).append(v)
            sources[v.source.name] = v.source
        unknown = sorted(set(config.sources) - set(sources))
        if unknown:
            raise ConfigError(
                f"feature_store.yaml: key 'stream.sources.{unknown[0]}' names no stream source of the views run "
                f"(they read {', '.join(repr(s) for s in sources)})"
            )
        self.runs: list[SourceRun] = []
        for name, source_views in by_source.items():
            source = sources[name]
            own = config.sources.get(name)
            options = ConsumerOptions(
                group=config.group(project),
                consumer_name=consumer_name(),
                auto_offset_reset=(
                    own.auto_offset_reset if own and own.auto_offset_reset else config.auto_offset_reset
                ),
                settings={**config.settings, **(own.settings if own else {})},
            )
            to_log = list(source_views) if config.offline else []
            has_batch = getattr(source, "batch_source", None) is not None
            offline_log = (
                OfflineLog(source, to_log, repo_path, offline) if to_log and has_batch and offline is not None else None
            )
            targets = [ViewTarget(v, online_view(v, project), stored_for(v)) for v in source_views]
            logged = [i for i, v in enumerate(source_views) if any(v is w for w in to_log)]
            self.runs.append(SourceRun(source, targets, options, Decoder(source, source_views), offline_log, logged))

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Finish the batch in hand, commit it and return from `run`."""
        self._stop.set()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the worker after its batch (main thread only)."""
        import signal

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: Any) -> None:
            log.info("signal %s: finishing the batch, then stopping", signum)
            self.summary.stopped_by = "signal"
            self._stop.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def run(self, *, exit_when_idle: float | None = None) -> WorkerSummary:
        """Consume until stopped (`stop`, SIGTERM, SIGINT) or, with `exit_when_idle`, until no message
        came for that many seconds; a source that stays unreachable for `max(exit_when_idle,
        UNAVAILABLE_AFTER)` seconds then ends the run as "unavailable" instead of waiting forever."""
        last_message = time.monotonic()
        unready_since: float | None = None
        with self._signals():
            try:
                while not self._stop.is_set():
                    began = time.monotonic()
                    got = 0
                    for run in self.runs:
                        if self._stop.is_set():
                            break
                        got += self._step(run)
                    now = time.monotonic()
                    ready = self._all_ready()
                    unready_since = None if ready or got else (unready_since or now)
                    if got or not ready:  # joining a group (or reconnecting) is not idle
                        last_message = now
                        if (
                            exit_when_idle is not None
                            and unready_since is not None
                            and now - unready_since >= max(exit_when_idle, UNAVAILABLE_AFTER)
                        ):
                            log.error(
                                "a stream source stayed unreachable for %.0f s; stopping (--exit-when-idle)",
                                now - unready_since,
                            )
                            self.summary.stopped_by = "unavailable"
                            break
                        if not got and now - began < IDLE_PAUSE:
                            self._stop.wait(IDLE_PAUSE)
                    elif exit_when_idle is not None and now - last_message >= exit_when_idle:
                        self.summary.stopped_by = self.summary.stopped_by or "idle"
                        break
                    elif now - began < IDLE_PAUSE:  # consumers that answer at once (a standby): no busy loop
                        self._stop.wait(IDLE_PAUSE)
            finally:
                for run in self.runs:
                    self._close(run)
        if not self.summary.stopped_by:
            self.summary.stopped_by = "stop"
        return self.summary

    def _all_ready(self) -> bool:
        return all(run.consumer is not None and run.consumer.ready() for run in self.runs)

    # ------------------------------------------------------------------ one batch

    def _step(self, run: SourceRun) -> int:
        """Read, write and commit one batch of `run`'s source; returns the messages read."""
        messages = self._collect(run)
        if not messages:
            return 0
        started = time.monotonic()
        decoded = run.decoder.decode(messages)
        if not self._with_retries(run, "the online store", lambda: self._write(run, messages, decoded)):
            return len(messages)  # stopped while the stores were down: nothing committed, replayed next time
        positions: dict[str, int] = {}
        for m in messages:
            if m.offset > positions.get(m.partition, -1):
                positions[m.partition] = m.offset
        self._commit(run, positions)
        self.summary.messages += len(messages)
        self.summary.batches += 1
        self.metrics.batch(run.source.name, len(messages), time.monotonic() - started)
        return len(messages)

    def _collect(self, run: SourceRun) -> list[StreamMessage]:
        """Messages until `batch_size` or `batch_interval_seconds` (empty on an outage or when stopped)."""
        size, interval = self.config.batch_size, self.config.batch_interval_seconds
        start = time.monotonic()
        out: list[StreamMessage] = []
        while len(out) < size and not self._stop.is_set():
            remaining = interval - (time.monotonic() - start)
            if remaining <= 0:
                break
            consumer = self._consumer(run)
            if consumer is None:
                return []
            try:
                got = consumer.poll(size - len(out), remaining)
            except StreamUnavailableError as err:
                self._lost(run, err)
                return []
            if run.backoff:
                self.metrics.resumed(run.source.name)
                run.backoff = 0.0
            if not got:
                break
            out.extend(got)
        counts: dict[str, int] = {}
        for m in out:
            counts[m.partition] = counts.get(m.partition, 0) + 1
        for partition, n in counts.items():
            self.metrics.consumed(run.source.name, partition, n)
        return out

    def _write(self, run: SourceRun, messages: Sequence[StreamMessage], decoded: Decoded) -> None:
        """Dead letters, online rows and tiles, then the offline log: each can be written again."""
        if decoded.dead:
            self.dead_letters.write(decoded.dead)
        table = decoded.table
        prepared = [self._prepared(t.view, table) for t in run.targets]
        now = time.time()
        for target, data in zip(run.targets, prepared, strict=True):
            if target.view.online and data.num_rows:
                self._write_online(target, table, data)
        if run.offline_log is not None:
            first: dict[str, int] = {}
            for m in messages:
                first.setdefault(m.partition, m.offset)
            logged = [prepared[i] for i in run.logged]
            self.summary.offline_rows += run.offline_log.write(table, logged, first)
        if decoded.dead:  # counted once the batch is durable
            self.summary.dead_letters += len(decoded.dead)
            self.metrics.dead_lettered(run.source.name, len(decoded.dead))
        for target, data in zip(run.targets, prepared, strict=True):
            if target.view.online and data.num_rows:
                self._latency(target.view.name, data, now)

    def _prepared(self, view: FeatureView, table: pa.Table) -> pa.Table:
        data = prepare_rows(view, table)
        if not view.source.created_timestamp_column:
            data = data.set_column(
                data.schema.get_field_index("created_timestamp"), "created_timestamp", created_times(table)
            )
        return data

    def _write_online(self, target: ViewTarget, decoded: pa.Table, data: pa.Table) -> None:
        name = target.view.name
        if target.online.tiles is None:
            after = (
                followups(
                    target.view, data, target.stored, self.online, {c: decoded.column(c) for c in decoded.column_names}
                )
                if target.stored
                else []
            )
            self.online.write(target.online, data)
            for write in after:
                write()
            self.summary.written[name] = self.summary.written.get(name, 0) + data.num_rows
            self.metrics.written(name, data.num_rows)
            return
        from potluck.streaming.tile_feed import events_from_table, update_tiles

        keys, events = events_from_table(target.online, target.online.tiles, data)
        partitions = decoded.column(PARTITION_COLUMN).to_pylist()
        offsets = decoded.column(OFFSET_COLUMN).to_pylist()
        stats = update_tiles(
            self.online,
            target.online,
            target.online.tiles,
            keys,
            events,
            offsets=list(zip(partitions, offsets, strict=True)),
        )
        self.summary.written[name] = self.summary.written.get(name, 0) + stats.applied
        self.summary.late += stats.late
        self.summary.replayed += stats.replayed
        self.metrics.written(name, stats.applied)
        if stats.late:
            self.metrics.late(name, stats.late)

    def _latency(self, view: str, data: pa.Table, now: float) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        micros = pc.cast(data.column("event_timestamp"), pa.int64()).to_numpy()
        self.metrics.latency(view, now - micros / 1e6)

    # ------------------------------------------------------------------ the broker

    def _consumer(self, run: SourceRun) -> StreamConsumer | None:
        """The run's consumer, (re)connecting after the run's backoff; None when the broker is still
        unreachable (one attempt per step, so the run loop can notice a lasting outage) or when stopped."""
        if run.consumer is not None:
            return run.consumer
        if run.backoff and self._stop.wait(run.backoff * random.uniform(0.5, 1.0)):
            return None
        try:
            run.consumer = self._open(run.source, run.options)
        except StreamUnavailableError as err:
            self._lost(run, err)
            return None
        if run.offline_log is not None:
            run.offline_log.reset()
        return run.consumer

    def _lost(self, run: SourceRun, err: BaseException) -> None:
        """The broker went away: drop the consumer; the next poll reconnects (and redelivers what
        was not committed)."""
        if not run.backoff:  # the metrics log one line per pause
            self.metrics.paused(run.source.name, f"the broker is unavailable: {_line(err)}")
            self.summary.pauses += 1
        run.backoff = min(max(BACKOFF_START, run.backoff * 2), BACKOFF_CAP)
        self._close(run)

    def _commit(self, run: SourceRun, positions: dict[str, int]) -> None:
        consumer = run.consumer
        if consumer is None:
            return
        try:
            consumer.commit(positions)
        except StreamUnavailableError as err:
            self._lost(run, err)  # the batch is replayed after reconnecting; every write of it repeats safely
            return
        now = time.monotonic()
        if now - run.lag_at >= 1.0:
            with suppress(StreamUnavailableError):
                run.lag = consumer.lag()
            run.lag_at = now
        self.metrics.committed(run.source.name, positions, run.lag)

    def _close(self, run: SourceRun) -> None:
        consumer, run.consumer = run.consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception as err:  # closing a broken connection may fail too: nothing left to do
                log.debug("source '%s': closing the consumer: %s", run.source.name, _line(err))

    # ------------------------------------------------------------------ outages

    def _with_retries(self, run: SourceRun, what: str, action: Callable[[], None]) -> bool:
        """Run `action` until it succeeds, pausing with exponential backoff and jitter while `what`
        is unavailable; False when stopped while paused."""
        delay = BACKOFF_START
        paused = False
        while True:
            try:
                action()
            except Exception as err:
                if not _is_outage(err):
                    raise
                if not paused:  # the metrics log one line per pause
                    self.metrics.paused(run.source.name, f"{what} is unavailable: {_line(err)}")
                    self.summary.pauses += 1
                    paused = True
                if self._stop.wait(delay * random.uniform(0.5, 1.0)):
                    return False
                delay = min(delay * 2, BACKOFF_CAP)
                continue
            if paused:
                self.metrics.resumed(run.source.name)
            return True


def _line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
