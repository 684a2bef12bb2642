"""Entity rows for training data without an entity dataframe: every entity seen in a time range.

For `get_historical_features(start_date=, end_date=)` the entity rows are the distinct join-key
values of the requested views' rows with start <= event time <= end, each at `end`; the
point-in-time join then gives every entity's latest values as of `end` (ttl applies as usual).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from potluck.definitions.errors import RetrievalError

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.offline.protocol import OfflineStore, ViewQuery
    from potluck.retrieval.references import ViewSelection

EVENT_TIMESTAMP = "event_timestamp"


def entity_snapshot(
    offline: OfflineStore,
    selections: Sequence[ViewSelection],
    queries: Sequence[ViewQuery],
    start: datetime | None,
    end: datetime,
    batch_rows: int,
) -> pa.Table:
    """Distinct join keys of the views' rows in [start, end], with `event_timestamp` = end."""
    import pyarrow as pa

    keys = {tuple(q.join_keys) for q in queries}
    if len(keys) != 1:
        described = ", ".join(f"'{q.view_name}' ({', '.join(q.join_keys)})" for q in queries)
        raise RetrievalError(
            f"without an entity dataframe every requested view needs the same join keys; got {described}: "
            "pass an entity dataframe instead"
        )
    join_keys = list(next(iter(keys)))
    parts: list[pa.Table] = []
    for query in queries:
        for batch in offline.latest_rows(query, start, end, batch_rows):
            parts.append(pa.Table.from_batches([batch]).select(join_keys))
    if parts:
        rows = pa.concat_tables(parts, promote_options="permissive").group_by(join_keys).aggregate([])
    else:
        types = {f.name: f.dtype.to_arrow() for s in selections for f in s.view.entity_columns}
        rows = pa.table({k: pa.array([], types.get(k, pa.string())) for k in join_keys})
    stamp = pa.array([end] * rows.num_rows, pa.timestamp("us", tz="UTC"))
    return rows.append_column(EVENT_TIMESTAMP, stamp)
