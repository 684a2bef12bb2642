"""The event scan of a batch source: every event of a view in a time range, grouped by key.

Backfilling online tiles (materialize of an aggregation view) reads a view's raw events, not
its latest rows. Rows come ordered by the join keys, then physical position, so a reader can
finish one key's events before the next key starts and ties of `last` keep the offline order.
"""

from __future__ import annotations

from datetime import datetime

from potluck.offline.protocol import ViewQuery
from potluck.offline.sql.dialect import Dialect, Sql
from potluck.offline.sql.query import SourceInput, source_cte


def events_sql(
    dialect: Dialect,
    view: ViewQuery,
    source: SourceInput,
    start: datetime | None,
    end: datetime,
    *,
    position: str | None = None,
) -> Sql:
    """Events with `start <= event_ts <= end` (no lower bound when `start` is None): the join keys,
    the view's features (named by field), `event_timestamp` and `created_timestamp` (UTC).

    With `position`, the rows come unordered with their source position in that column, for an
    engine that groups them by key itself (and orders each key's rows by it)."""
    q = dialect.quote
    cols = [f"{q(f'__k{i}')} AS {q(k)}" for i, k in enumerate(view.join_keys)]
    cols += [
        f"{dialect.cast(q(f'__f{i}'), dialect.type_name(f.dtype))} AS {q(f.name)}" for i, f in enumerate(view.features)
    ]
    cols.append(f"{dialect.cast(q('__t'), dialect.utc_timestamptz_type)} AS {q('event_timestamp')}")
    cols.append(f"{dialect.cast(q('__cr'), dialect.utc_timestamptz_type)} AS {q('created_timestamp')}")
    order = ", ".join([*(q(f"__k{i}") for i in range(len(view.join_keys))), q("__o")])
    cte = source_cte(dialect, view, source, lower=start, upper=end, raw_created=True)
    if position is not None:
        cols.append(f"{q('__o')} AS {q(position)}")
        return Sql(f"WITH {q('__potluck_ev')} AS (") + cte + f") SELECT {', '.join(cols)} FROM {q('__potluck_ev')}"
    return (
        Sql(f"WITH {q('__potluck_ev')} AS (")
        + cte
        + f") SELECT {', '.join(cols)} FROM {q('__potluck_ev')} ORDER BY {order}"
    )
