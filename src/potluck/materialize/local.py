"""Local materialization: stream latest-row batches from the offline engine into the online store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from potluck.online.protocol import OnlineStore, OnlineView

if TYPE_CHECKING:
    import pyarrow as pa


def materialize_view(
    rows: Iterable[pa.RecordBatch],
    store: OnlineStore,
    view: OnlineView,
    *,
    batch_rows: int = 50_000,
    on_progress: Callable[[int], None] | None = None,
    write: Callable[[OnlineView, pa.Table], int] | None = None,
) -> int:
    """Write every batch of `rows` to `store` in slices of at most `batch_rows`; returns rows written.

    Only one slice is held at a time beyond what the iterator itself holds, so memory does not
    grow with the number of rows. `on_progress` gets the number of rows of each written slice.
    `write` replaces `store.write` (to write what follows each slice, too).
    """
    import pyarrow as pa

    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    write_slice = write if write is not None else store.write
    total = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal total, pending, pending_rows
        if not pending_rows:
            return
        table = pa.Table.from_batches(pending)
        pending, pending_rows = [], 0
        total += write_slice(view, table)
        if on_progress is not None:
            on_progress(table.num_rows)

    for batch in rows:
        offset = 0
        while offset < batch.num_rows:
            take = min(batch_rows - pending_rows, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            pending_rows += take
            offset += take
            if pending_rows >= batch_rows:
                flush()
    flush()
    return total
