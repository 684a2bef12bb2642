"""Which columns a stream source's messages must carry for the views that read it, and their types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from potluck.definitions.types import PotluckType
from potluck.streaming.push import pushed_fields

if TYPE_CHECKING:
    import pyarrow as pa

    from potluck.definitions import DataSource, FeatureView

TIME_TYPE_NAME = "timestamp"
# Roles of a needed column: a key or the event time must be present and not null; a feature must be
# present (null is fine); the created time may be absent or null (the decode time is used then).
KEY, FEATURE, EVENT_TIME, CREATED_TIME = "key", "feature", "event_time", "created_time"


@dataclass(frozen=True, slots=True)
class Target:
    """One declared type of a column: its Arrow form and name (`dtype` None for time columns)."""

    arrow: pa.DataType
    type_name: str
    dtype: PotluckType | None


@dataclass(frozen=True, slots=True)
class Needed:
    """A column the decoded table holds: `name` there, `source_column` in the message.

    `targets` lists each distinct type the views declare for it (the first is the output's type);
    it is empty for a join key no view's schema declares (typed per batch: Int64 or String).
    """

    name: str
    source_column: str
    role: str
    targets: tuple[Target, ...]

    @property
    def required(self) -> bool:
        return self.role in (KEY, EVENT_TIME)


def time_target() -> Target:
    import pyarrow as pa

    return Target(pa.timestamp("us", tz="UTC"), TIME_TYPE_NAME, None)


def field_target(dtype: PotluckType) -> Target:
    return Target(dtype.to_arrow(), dtype.name, dtype)


def decode_plan(source: DataSource, views: Sequence[FeatureView]) -> list[Needed]:
    """The needed columns in output order: join keys and fields per view, then the time columns."""
    roles: dict[str, str] = {}
    targets: dict[str, list[Target]] = {}

    def add(name: str, role: str, target: Target | None) -> None:
        if roles.get(name) != KEY:
            roles[name] = role
        found = targets.setdefault(name, [])
        if target is not None and target not in found:
            found.append(target)

    for view in views:
        declared = {f.name: f for f in view.entity_columns}
        for key in view.join_keys:
            add(key, KEY, field_target(declared[key].dtype) if key in declared else None)
        for f in pushed_fields(view):
            add(f.name, FEATURE, field_target(f.dtype))
    plan = [Needed(n, source.column_for(n), roles[n], tuple(targets[n])) for n in roles]
    plan.append(Needed(source.timestamp_field, source.timestamp_field, EVENT_TIME, (time_target(),)))
    if source.created_timestamp_column:
        created = source.created_timestamp_column
        plan.append(Needed(created, created, CREATED_TIME, (time_target(),)))
    return plan
