"""A label view's conflict policy in the point-in-time join: which labeler's label an entity row gets.

The rule (docs/semantics.md, "Label views"). The candidates of an entity row at time t are the
label rows of its key that any view's join accepts (`event_ts <= t`, the ttl, availability
time). Each labeler's vote is its newest candidate, by the join's own sort key. Then:

- `labeler_priority`: the labelers are grouped by rank (its place in the priority list, every
  unlisted or null labeler sharing the rank after the last); the newest candidate of the best
  rank that has one wins (for the unlisted rank, that is the newest candidate of any of them).
- `majority_vote`: per label column, each labeler votes its newest candidate's value, null votes
  are not counted, the most frequent value wins, a tie goes to the value of the newest vote
  (event time, then created time, then storage order). A null labeler is one labeler. The
  labeler column comes back null: no single labeler wrote the resolved row.

How. The "newest candidate per group" step is the ordinary point-in-time join of the view with
the group (rank, or labeler) as one more join key, over the entity rows expanded by the groups
their key has rows for: the candidate rule keeps its one home in `query.py`. That join returns,
besides the features, each vote's event time, created time and storage position; the policy is
then one window (priority) or two aggregations per label column (majority) keyed by the entity
row, all inside the engine, spilling like the rest of the join.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from potluck.definitions.field import Field
from potluck.offline.protocol import LabelRule, ViewQuery
from potluck.offline.sql.dialect import Dialect, Sql, join
from potluck.offline.sql.query import EntityInput, SourceInput
from potluck.types import Int64, UnixTimestamp

GROUP = "__potluck_g"  # the rank (priority) or the labeler (vote), a join key of the inner join
OUTER = "__potluck_outer"  # the entity row the expanded row belongs to
_ETS = "__potluck_ets"
_VOTE_TS = "__potluck_vote_ts"  # the vote's event time, created time (-infinity when null) and position
_VOTE_CREATED = "__potluck_vote_created"
_VOTE_POSITION = "__potluck_vote_pos"
_ORDINAL = "__potluck_ord"

PRIORITY = "labeler_priority"
MAJORITY = "majority_vote"

CandidateJoin = Callable[[EntityInput, Sequence[tuple[ViewQuery, SourceInput]]], Sql]


def _group(dialect: Dialect, rule: LabelRule, labeler: str) -> Sql:
    if rule.policy == PRIORITY:
        ranks = [
            Sql(f"WHEN {labeler} = ") + dialect.param(name) + f" THEN {i}" for i, name in enumerate(rule.priorities)
        ]
        if not ranks:
            return Sql("0")
        return Sql("CASE ") + join(ranks, " ") + f" ELSE {len(rule.priorities)} END"
    if rule.policy == MAJORITY:
        # Text that tells a null labeler apart from every named one ('' against '=' || name).
        return Sql(
            f"CASE WHEN {labeler} IS NULL THEN '' ELSE '=' || CAST({labeler} AS {dialect.type_names['String']}) END"
        )
    raise ValueError(f"unknown conflict policy {rule.policy!r}")


def resolved_labels_sql(
    dialect: Dialect,
    view: ViewQuery,
    source: SourceInput,
    entity: EntityInput,
    *,
    entity_cte: str,
    row: str,
    ts: str,
    candidates: CandidateJoin,
) -> Sql:
    """A query with one row per entity row that has a candidate: `row`, then `__f<i>` per feature.

    `entity_cte` names the relation of the entity rows (`row`, the join keys, `ts` in naive UTC).
    `candidates` is the point-in-time join itself, run unordered.
    """
    rule = view.labels
    assert rule is not None
    q = dialect.quote
    table = view.source
    labeler = q(table.columns.get(rule.labeler_field, rule.labeler_field))
    ts_raw = q(table.timestamp_column)
    event = ts_raw if source.timestamp_is_utc_naive else dialect.to_utc(ts_raw, source.timestamp_type)
    if table.created_timestamp_column:
        created_raw = q(table.created_timestamp_column)
        created_utc = created_raw if source.created_is_utc_naive else dialect.to_utc(created_raw, source.created_type)
        created = f"COALESCE({created_utc}, {dialect.min_timestamp})"
    else:
        created = dialect.min_timestamp
    wrapped = (
        Sql(
            f"(SELECT *, {source.ordinal} AS {q(_ORDINAL)}, {event} AS {q(_VOTE_TS)}, "
            f"{created} AS {q(_VOTE_CREATED)}, {source.ordinal_number or source.ordinal} AS {q(_VOTE_POSITION)}, "
        )
        + _group(dialect, rule, labeler)
        + f" AS {q(GROUP)} FROM "
        + source.relation
        + f" AS {q('__potluck_lsrc')})"
    )
    inner_source = replace(source, relation=wrapped, ordinal=q(_ORDINAL))
    extra = {name: name for name in (GROUP, _VOTE_TS, _VOTE_CREATED, _VOTE_POSITION)}
    inner_view = ViewQuery(
        view_name=view.view_name,
        source=replace(table, columns={**table.columns, **extra}),
        join_keys=(*view.join_keys, GROUP),
        features=(
            *view.features,
            Field(name=_VOTE_TS, dtype=UnixTimestamp),
            Field(name=_VOTE_CREATED, dtype=UnixTimestamp),
            Field(name=_VOTE_POSITION, dtype=Int64),
        ),
        output_names=(
            *(f"__potluck_lf{j}" for j in range(len(view.features))),
            _VOTE_TS,
            _VOTE_CREATED,
            _VOTE_POSITION,
        ),
        ttl=view.ttl,
    )
    # The entity rows, each once per group its key has label rows in.
    key_cols = [q(table.columns.get(k, k)) for k in view.join_keys]
    pairs = (
        Sql(f"SELECT DISTINCT {', '.join(f'{c} AS {q(k)}' for c, k in zip(key_cols, view.join_keys, strict=True))}, ")
        + f"{q(GROUP)} FROM "
        + wrapped
        + f" AS {q('__potluck_src')} WHERE {' AND '.join(f'{c} IS NOT NULL' for c in key_cols)}"
    )
    e, p = "__potluck_le", "__potluck_lp"
    on = " AND ".join(f"{dialect.qualified(e, k)} = {dialect.qualified(p, k)}" for k in view.join_keys)
    expanded = (
        Sql(
            f"(SELECT {dialect.qualified(e, row)} AS {q(OUTER)}, {dialect.qualified(e, row)} AS {q(row)}, "
            + ", ".join(dialect.qualified(e, k) for k in view.join_keys)
            + f", {dialect.qualified(p, GROUP)}, {dialect.qualified(e, ts)} AS {q(_ETS)} "
            f"FROM {q(entity_cte)} AS {q(e)} JOIN ("
        )
        + pairs
        + f") AS {q(p)} ON {on})"
    )
    inner_entity = EntityInput(
        relation=expanded,
        columns=(OUTER, *view.join_keys, GROUP, _ETS),
        timestamp_column=_ETS,
        timestamp_is_utc_naive=True,
        min_timestamp=entity.min_timestamp,
        max_timestamp=entity.max_timestamp,
        timestamp_type=dialect.utc_timestamp_type,
    )
    votes = candidates(inner_entity, [(inner_view, inner_source)])
    found = Sql("(SELECT * FROM (") + votes + f") AS {q('__potluck_found')} WHERE {q(_VOTE_POSITION)} IS NOT NULL)"
    if rule.policy == PRIORITY:
        picked = ", ".join(f"{q(f'__potluck_lf{j}')} AS {q(f'__f{j}')}" for j in range(len(view.features)))
        rank = f"row_number() OVER (PARTITION BY {q(OUTER)} ORDER BY {q(GROUP)}) AS {q('__potluck_rank')}"
        select = Sql(f"SELECT {q(OUTER)} AS {q(row)}, {picked}, {rank} FROM ") + found + f" AS {q('__potluck_votes')}"
        return dialect.filtered(select, f"{q('__potluck_rank')} = 1")
    return _majority(dialect, view, rule, found, row)


def _majority(dialect: Dialect, view: ViewQuery, rule: LabelRule, found: Sql, row: str) -> Sql:
    q = dialect.quote
    newest = dialect.composite([q(_VOTE_TS), q(_VOTE_CREATED), q(_VOTE_POSITION)])
    ctes: list[Sql] = [Sql(f"{q('__potluck_votes')} AS {dialect.materialized}") + found]
    cols: list[str] = []
    joins: list[str] = []
    for j, f in enumerate(view.features):
        name = q(f"__f{j}")
        if f.name == rule.labeler_field:
            cols.append(f"CAST(NULL AS {dialect.type_name(f.dtype)}) AS {name}")
            continue
        value = q(f"__potluck_lf{j}")
        tally, winner = q(f"__potluck_tally{j}"), q(f"__potluck_win{j}")
        ctes.append(
            Sql(
                f"{tally} AS (SELECT {q(OUTER)}, {value} AS {q('v')}, count(*) AS {q('n')}, "
                f"{dialect.arg_max(newest, newest)} AS {q('newest')} FROM {q('__potluck_votes')} WHERE {value} IS NOT NULL "
                f"GROUP BY {q(OUTER)}, {value})"
            )
        )
        order = dialect.composite([q("n"), q("newest")])
        ctes.append(
            Sql(
                f"{winner} AS (SELECT {q(OUTER)}, {dialect.arg_max(q('v'), order)} AS {q('v')} FROM {tally} "
                f"GROUP BY {q(OUTER)})"
            )
        )
        cols.append(f"{dialect.qualified(f'w{j}', 'v')} AS {name}")
        joins.append(
            f"LEFT JOIN {winner} AS {q(f'w{j}')} ON {dialect.qualified(f'w{j}', OUTER)} = "
            f"{dialect.qualified('r', OUTER)}"
        )
    rows = f"(SELECT DISTINCT {q(OUTER)} FROM {q('__potluck_votes')}) AS {q('r')}"
    return (
        Sql("WITH ")
        + join(ctes, ", ")
        + f" SELECT {dialect.qualified('r', OUTER)} AS {q(row)}"
        + "".join(f", {c}" for c in cols)
        + f" FROM {rows} "
        + " ".join(joins)
    )
