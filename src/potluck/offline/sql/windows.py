"""Windowed aggregations in training data: each entity row's aggregates, exactly by the window rule.

The rule (`potluck.aggregation.rule`): with window W and hop h, the value at t aggregates the key's
events with `floor(t / h) * h - W < event_ts <= t`, and a lifetime window every event `<= t`.
Times are compared as integer microseconds, so the exclusive lower bound is exact.

Plan (cost about linear in entity rows + events). The entity rows are added to the events as probe
rows with null values, and one window per aggregation, partitioned by the join keys and ordered by
time, reads each probe's frame `RANGE BETWEEN (t - lower(t) - 1) PRECEDING AND CURRENT ROW`: the
offset depends on the row (the sawtooth), and `CURRENT ROW` brings in the events at exactly t (its
peers). Probes carry nulls, which every function skips. Windows sharing keys and order share one
sort. A key with no event at or before t ("never seen") gets nulls for every function, `count`
included; a key seen but with an empty window gets `count` 0 and nulls elsewhere.

The join plan: each view is one join of entity rows to the events of the same key inside the
widest window (W + h), grouped per entity row, with one filter per window. Its cost grows with
entity rows x events per window, so it wins when windows hold few events per key (the engine
chooses by `choose_join`, from the source's size and key count). It is also the plan of
availability-time mode, where an event also needs `created_ts <= t` (a null created time counts
as available): two independent conditions, which no single frame expresses.
"""

from __future__ import annotations

from dataclasses import replace

from potluck.offline.protocol import ViewQuery, WindowedFeature
from potluck.offline.sql.dialect import Dialect, Sql, join

_SQL_FUNCTIONS = {
    "count": "count",
    "sum": "sum",
    "mean": "avg",
    "min": "min",
    "max": "max",
    "stddev": "stddev_samp",
    "variance": "var_samp",
}


def _floor_mod(dialect: Dialect, us: str, hop: int) -> str:
    """`t mod h`, floored (SQL's modulo truncates towards zero)."""
    return dialect.mod(f"({dialect.mod(us, hop)} + {hop})", hop)


def _offset(dialect: Dialect, us: str, window: int, hop: int) -> str:
    """`t - lower(t) - 1` = `(t mod h) + W - 1`."""
    return f"({_floor_mod(dialect, us, hop)} + {window - 1})"


def _lower(dialect: Dialect, us: str, window: int, hop: int) -> str:
    """The rule's exclusive lower bound `floor(t / h) * h - W`, on integer microseconds."""
    return f"({us} - {_floor_mod(dialect, us, hop)} - {window})"


def _call(dialect: Dialect, agg: WindowedFeature, value: str, last_key: str, where: str | None = None) -> str:
    if agg.function == "last":
        return dialect.arg_max(value, last_key, where)
    call = f"{_SQL_FUNCTIONS[agg.function]}({value})"
    return call + (f" FILTER (WHERE {where})" if where else "")


def earliest_event(view: ViewQuery) -> int | None:
    """How far before the earliest entity time events can matter (microseconds): max(W + h); None for lifetime."""
    spans = []
    for a in view.aggregations:
        if a.window_us is None or a.hop_us is None:
            return None
        spans.append(a.window_us + a.hop_us)
    return max(spans, default=0)


# Measured on DuckDB (2 threads): the join costs about 0.22 s per million (entity row, event) pairs,
# the windows about 1.6 s per million rows (events + entity rows); the join is chosen while its pairs
# stay under this many per row of the window plan (break-even is near 6; kept lower for safety).
JOIN_PAIRS_PER_ROW = 4.0


def choose_join(view: ViewQuery, entity_rows: int, events: int, keys: int, span_us: int) -> bool:
    """Whether the join plan is cheaper: its estimated (entity row, event) pairs against events + entity rows.

    Pairs per entity row: the events of a key (`events / keys`) times the share of the source's time
    span the widest window covers (a lifetime window: half of them, on average).
    """
    if keys <= 0 or events <= 0:
        return True
    per_key = events / keys
    widest = earliest_event(view)
    share = 0.5 if widest is None else min(1.0, widest / max(span_us, 1))
    pairs = entity_rows * per_key * share
    return pairs <= JOIN_PAIRS_PER_ROW * (events + entity_rows)


def inputs_view(view: ViewQuery) -> ViewQuery:
    """The view as the source projection reads it: its distinct input columns as features."""
    fields = view.source_fields
    return replace(view, features=fields, output_names=tuple(f.name for f in fields), aggregations=())


def aggregation_ctes(
    dialect: Dialect,
    view: ViewQuery,
    index: int,
    events_cte: Sql,
    first_cte: Sql,
    entity_cte: str,
    entity_ts: str,
    row: str,
    *,
    availability_time: bool,
    joined: bool = False,
) -> tuple[list[Sql], str]:
    """CTEs giving, per entity row (`__row`), the view's aggregates `__a<j>` (null for a key never seen).

    `events_cte` is the source projection of `inputs_view(view)` (`__k<i>`, `__f<i>`, `__t`, `__c`,
    `__o`), restricted to the times that can matter; `first_cte` the same without a lower time bound,
    for when each key was first seen.
    """
    q = dialect.quote
    n_keys = len(view.join_keys)
    keys = [q(f"__k{i}") for i in range(n_keys)]
    inputs = [f.name for f in view.source_fields]
    slot = {name: i for i, name in enumerate(inputs)}
    ev, fs, un, agg, out = (f"__potluck_a{index}_{s}" for s in ("ev", "first", "u", "w", "out"))
    ctes: list[Sql] = [Sql(f"{q(ev)} AS (") + events_cte + ")"]
    # When each key was first seen (in availability mode: first available).
    seen_at = "greatest(__t, __c)" if availability_time else "__t"
    ctes.append(
        Sql(f"{q(fs)} AS (SELECT {', '.join(keys)}, min({seen_at}) AS {q('__first')} FROM (")
        + first_cte
        + f") AS {q('__potluck_f')} GROUP BY {', '.join(keys)})"
    )
    last_key = dialect.composite([q("__t"), q("__c"), q("__o")])
    if availability_time or joined or not dialect.supports_row_frames:
        body = _joined(dialect, view, index, ev, entity_cte, entity_ts, row, slot, availability_time)
    else:
        body = _windowed(dialect, view, ev, entity_cte, entity_ts, row, slot, last_key, un, agg)
    ctes.extend(body)
    # The probes' aggregates, nulled for keys not seen yet (`count` of a seen key is never null).
    e = "__potluck_e"
    on = " AND ".join(
        f"{dialect.qualified(fs, f'__k{i}')} = {dialect.qualified(e, k)}" for i, k in enumerate(view.join_keys)
    )
    seen = f"{dialect.qualified(fs, '__first')} <= {dialect.qualified(e, entity_ts)}"
    cols = [f"{dialect.qualified(e, row)} AS {q('__row')}"]
    for j, a in enumerate(view.aggregations):
        value = dialect.qualified(agg, f"__a{j}")
        if a.function == "count":
            value = f"COALESCE({value}, 0)"
        cols.append(f"CASE WHEN {seen} THEN {value} END AS {q(f'__a{j}')}")
    ctes.append(
        Sql(
            f"{q(out)} AS (SELECT {', '.join(cols)} FROM {q(entity_cte)} AS {q(e)} "
            f"LEFT JOIN {q(fs)} ON {on} "
            f"LEFT JOIN {q(agg)} ON {dialect.qualified(agg, '__row')} = {dialect.qualified(e, row)})"
        )
    )
    return ctes, out


def _windowed(
    dialect: Dialect,
    view: ViewQuery,
    ev: str,
    entity_cte: str,
    entity_ts: str,
    row: str,
    slot: dict[str, int],
    last_key: str,
    un: str,
    agg: str,
) -> list[Sql]:
    q = dialect.quote
    n_keys = len(view.join_keys)
    keys = [q(f"__k{i}") for i in range(n_keys)]
    values = [q(f"__f{i}") for i in range(len(slot))]
    us = q("__us")
    frames = sorted({(a.window_us, a.hop_us) for a in view.aggregations if a.window_us is not None})
    offsets = {frame: f"__off{m}" for m, frame in enumerate(frames)}
    # The sort key of `last` rides through the window only when some aggregation needs it.
    wants_last = any(a.function == "last" for a in view.aggregations)
    event_cols = [*keys, f"{dialect.epoch_micros(q('__t'))} AS {us}", *values]
    if wants_last:
        event_cols.append(f"{last_key} AS {q('__lk')}")
    event_cols.append(f"CAST(NULL AS BIGINT) AS {q('__row')}")
    probe_ts = dialect.epoch_micros(q(entity_ts))
    probe_cols = [f"{q(k)} AS {q(f'__k{i}')}" for i, k in enumerate(view.join_keys)]
    probe_cols += [f"{probe_ts} AS {us}", *(f"NULL AS {v}" for v in values)]
    if wants_last:
        probe_cols.append(f"NULL AS {q('__lk')}")
    probe_cols.append(f"{q(row)} AS {q('__row')}")
    not_null = " AND ".join([f"{q(entity_ts)} IS NOT NULL", *(f"{q(k)} IS NOT NULL" for k in view.join_keys)])
    extra = [
        f"CASE WHEN {q('__row')} IS NULL THEN 0 ELSE {_offset(dialect, us, w, h)} END AS {q(name)}"
        for (w, h), name in offsets.items()
        if w is not None and h is not None
    ]
    union = Sql(
        f"{q(un)} AS (SELECT {', '.join(['*', *extra])} FROM (SELECT {', '.join(event_cols)} FROM {q(ev)} "
        f"UNION ALL SELECT {', '.join(probe_cols)} FROM {q(entity_cte)} WHERE {not_null}) AS {q('__potluck_union')})"
    )
    order = f"PARTITION BY {', '.join(keys)} ORDER BY {us}"
    cols = [q("__row")]
    for j, a in enumerate(view.aggregations):
        if a.window_us is None or a.hop_us is None:
            frame = "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
        else:
            frame = f"RANGE BETWEEN {q(offsets[(a.window_us, a.hop_us)])} PRECEDING AND CURRENT ROW"
        call = _call(dialect, a, q(f"__f{slot[a.input.name]}"), q("__lk"))
        cols.append(f"{call} OVER ({order} {frame}) AS {q(f'__a{j}')}")
    select = Sql(f"SELECT {', '.join(cols)} FROM {q(un)}")
    return [union, Sql(f"{q(agg)} AS (") + dialect.filtered(select, f"{q('__row')} IS NOT NULL") + ")"]


def _joined(
    dialect: Dialect,
    view: ViewQuery,
    index: int,
    ev: str,
    entity_cte: str,
    entity_ts: str,
    row: str,
    slot: dict[str, int],
    availability_time: bool,
) -> list[Sql]:
    q = dialect.quote
    e, s = "__potluck_e", "__potluck_s"
    t_us = dialect.epoch_micros(dialect.qualified(e, entity_ts))
    ev_us = dialect.epoch_micros(dialect.qualified(s, "__t"))
    on: list[str] = [
        f"{dialect.qualified(s, f'__k{i}')} = {dialect.qualified(e, k)}" for i, k in enumerate(view.join_keys)
    ]
    on.append(f"{dialect.qualified(s, '__t')} <= {dialect.qualified(e, entity_ts)}")
    if availability_time:
        on.append(f"{dialect.qualified(s, '__c')} <= {dialect.qualified(e, entity_ts)}")
    widest = earliest_event(view)
    if widest is not None:
        # Every window's lower bound is at or after t - (W + h): a range the join can use.
        on.append(f"{ev_us} > {t_us} - {widest}")
    joined_key = dialect.composite([dialect.qualified(s, c) for c in ("__t", "__c", "__o")])
    cols = [f"{dialect.qualified(e, row)} AS {q('__row')}"]
    for j, a in enumerate(view.aggregations):
        value = dialect.qualified(s, f"__f{slot[a.input.name]}")
        where = None
        if a.window_us is not None and a.hop_us is not None:
            where = f"{ev_us} > {_lower(dialect, t_us, a.window_us, a.hop_us)}"
        call = _call(dialect, a, value, joined_key, where)
        cols.append(f"{call} AS {q(f'__a{j}')}")
    agg = f"__potluck_a{index}_w"
    return [
        Sql(
            f"{q(agg)} AS (SELECT {', '.join(cols)} FROM {q(entity_cte)} AS {q(e)} JOIN {q(ev)} AS {q(s)} ON "
            + join(on, " AND ").text
            + f" GROUP BY {dialect.qualified(e, row)})"
        )
    ]
