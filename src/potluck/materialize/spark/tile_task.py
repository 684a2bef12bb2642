"""What runs in a Spark executor's Python worker for an aggregation view: one partition's keys'
tiles rebuilt from their events and written to the online store.

Every key's events are in one partition, in source order (`spark/tiles.py`). The task builds the
configured online store from the repository config (its own connections), rebuilds the tiles with
the local engine's code (`materialize.tiles.backfill_batches`: compare-and-set writes of at most a
few thousand entities, holding at most `batch_rows` events beyond the current key's) and closes
the store. A rebuild from the same events, watermark and write time gives the same record, and it
keeps the record's push marks, stream offsets and tiles after the watermark: a task Spark retries
rewrites what its first attempt wrote, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from potluck.materialize.tiles import backfill_batches
from potluck.online.factory import create_online_store
from potluck.online.protocol import OnlineView

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.materialize.spark.executor import TaskHook
    from potluck.repo.config import RepoConfig


@dataclass(frozen=True)
class TileTask:
    """Everything a task needs, shipped to the executors with the function."""

    config: RepoConfig
    target: OnlineView
    marks: dict[int, int]
    now: int
    batch_rows: int
    position: str  # the column of source positions, dropped before the rebuild
    progress: Any = None  # a Spark accumulator of events written
    hook: TaskHook | None = None  # called after each written group with (partition, attempt, events)

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        attempt = context.attemptNumber() if context is not None else 0
        spec = self.target.tiles
        assert spec is not None

        def on_written(events: int) -> None:
            if self.progress is not None:
                self.progress.add(events)
            if self.hook is not None:
                self.hook(partition, attempt, events)

        events = (b.drop_columns([self.position]) for b in batches)
        store = create_online_store(self.config)
        try:
            read, written = backfill_batches(
                store, self.target, spec, events, marks=self.marks, now=self.now, batch_rows=self.batch_rows,
                on_written=on_written,
            )  # fmt: skip
        finally:
            store.close()
        yield pa.RecordBatch.from_pydict(
            {"partition": [partition], "attempt": [attempt], "rows_read": [read], "rows": [written]},
            schema=pa.schema([(n, pa.int64()) for n in ("partition", "attempt", "rows_read", "rows")]),
        )
