"""What runs in a Spark executor's Python worker: one partition's latest rows into the online store.

Each task builds the configured online store from the repository config (its own connections),
writes its rows through `materialize_view` (slices of at most `batch_rows`, the store's
newest-wins `write`) and closes the store. A task Spark retries writes the same rows again, which
newest-wins makes a no-op for rows already written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from potluck.materialize.local import materialize_view
from potluck.online.factory import create_online_store
from potluck.online.protocol import OnlineView

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.repo.config import RepoConfig

# Called in the executor after each written slice with (partition, attempt, rows of the slice).
TaskHook = Callable[[int, int, int], None]

RESULT_SCHEMA = "partition BIGINT, attempt BIGINT, rows_read BIGINT, rows BIGINT"


@dataclass(frozen=True)
class WriteTask:
    """Everything a task needs, shipped to the executors with the function."""

    config: RepoConfig
    target: OnlineView
    batch_rows: int
    progress: Any = None  # a Spark accumulator of written rows
    hook: TaskHook | None = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        attempt = context.attemptNumber() if context is not None else 0
        counted = _Counted(batches)
        store = create_online_store(self.config)
        try:

            def on_slice(rows: int) -> None:
                if self.progress is not None:
                    self.progress.add(rows)
                if self.hook is not None:
                    self.hook(partition, attempt, rows)

            written = materialize_view(counted, store, self.target, batch_rows=self.batch_rows, on_progress=on_slice)
        finally:
            store.close()
        yield pa.RecordBatch.from_pydict(
            {"partition": [partition], "attempt": [attempt], "rows_read": [counted.rows], "rows": [written]},
            schema=pa.schema([(n, pa.int64()) for n in ("partition", "attempt", "rows_read", "rows")]),
        )


class _Counted:
    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            self.rows += batch.num_rows
            yield batch
