"""`StreamFeatureView` and `BatchFeatureView`: feature views that may declare windowed aggregations.

With `aggregations=`, the schema declares the source columns they read (and optionally the join
keys), and the view's features are the aggregation outputs (names and types by
`potluck.aggregation.rule`). Without, they are plain feature views. A stream view is its own
registry kind; a batch view is stored as a feature view (`view_type: batch`), as in Feast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from potluck.definitions.aggregation import Aggregation, check_aggregations
from potluck.definitions.base import check_column
from potluck.definitions.entity import Entity
from potluck.definitions.errors import DefinitionError, PotluckWarning
from potluck.definitions.feature_view import FeatureView, FeatureViewProjection
from potluck.definitions.field import Field
from potluck.definitions.sources import DataSource, PushSource
from potluck.definitions.stream_sources import KafkaSource, RedisStreamSource

STREAM_SOURCES = (PushSource, KafkaSource, RedisStreamSource)


class TransformationNotAppliedWarning(PotluckWarning):
    """A stream view's decorated function is recorded but not run (see `stream_feature_view`)."""


def _declare_aggregations(view: FeatureView, aggregations: object, view_hop: timedelta | None, label: str) -> None:
    """Turn a view's schema features into inputs and its aggregations into its features."""
    aggs, outputs = check_aggregations(label, aggregations, view.input_fields, view_hop)
    if not aggs:
        return
    declared = {f.name: f for f in view.input_fields}
    for out in outputs:
        if out.name in view.join_keys:
            raise DefinitionError(f"{label}: aggregation output '{out.name}' has the name of a join key; rename it")
        same = declared.get(out.name)
        # A Feast repository may list the outputs in the schema too: accepted when the type agrees.
        if same is not None and same.dtype != out.dtype and all(a.column != out.name for a in aggs):
            raise DefinitionError(
                f"{label}: schema field '{out.name}' is an aggregation output of type {out.dtype.name}, "
                f"but is declared {same.dtype.name}; fix its dtype or remove it from the schema"
            )
    used = {a.column for a in aggs}
    outputs_named = {o.name for o in outputs}
    view.input_fields = [f for f in view.input_fields if f.name in used or f.name not in outputs_named]
    view.aggregations = tuple(aggs)
    view.features = outputs
    view.projection = FeatureViewProjection(view.name, list(outputs))


def _hop_seconds(hop: timedelta | None) -> float | None:
    return None if hop is None else hop.total_seconds()


def _aggregation_spec(view: FeatureView) -> dict[str, Any]:
    if not view.aggregations:
        return {}
    return {
        "aggregations": [a.to_spec() for a in view.aggregations],
        "inputs": [f.to_spec() for f in view.input_fields],
    }


def _schema_of(spec: Mapping[str, Any]) -> list[Field]:
    return FeatureView.stored_schema(spec, "inputs" if spec.get("aggregations") else "features")


def _aggregations_of(spec: Mapping[str, Any]) -> list[Aggregation] | None:
    stored = spec.get("aggregations")
    return [Aggregation.from_spec(a) for a in stored] if stored else None


class StreamFeatureView(FeatureView):
    """A view fed by a stream (`PushSource` now, `KafkaSource` declared), usually with aggregations."""

    kind = "stream_feature_view"

    def __init__(
        self,
        *,
        name: str,
        source: DataSource,
        entities: Sequence[Entity] | None = None,
        schema: Sequence[Field] | None = None,
        aggregations: Sequence[Aggregation] | None = None,
        timestamp_field: str = "",
        ttl: timedelta | None = timedelta(0),
        online: bool = True,
        offline: bool = False,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        mode: str = "python",
        udf: Callable[..., Any] | None = None,
        udf_string: str = "",
        enable_tiling: bool = False,
        tiling_hop_size: timedelta | None = None,
        join_keys: Sequence[str] | None = None,
        version: str = "latest",
        enable_validation: bool = False,
    ) -> None:
        label = f"StreamFeatureView '{name}'"
        if not isinstance(source, STREAM_SOURCES):
            raise DefinitionError(
                f"{label}: 'source' must be a PushSource, KafkaSource or RedisStreamSource, got {type(source).__name__}; "
                "use a FeatureView or BatchFeatureView for a batch source"
            )
        super().__init__(
            name=name,
            source=source,
            schema=schema,
            entities=entities,
            ttl=ttl,
            online=online,
            offline=offline,
            description=description,
            tags=tags,
            owner=owner,
            join_keys=join_keys,
            version=version,
            enable_validation=enable_validation,
        )
        if tiling_hop_size is not None and not isinstance(tiling_hop_size, timedelta):
            raise DefinitionError(f"{label}: 'tiling_hop_size' must be a datetime.timedelta, got {tiling_hop_size!r}")
        self.tiling_hop_size = tiling_hop_size
        if not isinstance(enable_tiling, bool):
            raise DefinitionError(f"{label}: 'enable_tiling' must be True or False")
        if aggregations and not timestamp_field:
            raise DefinitionError(
                f"{label}: its aggregations need a timestamp field; pass timestamp_field='...', the column "
                f"holding each event's time (the source's is '{source.timestamp_field}')"
            )
        self.timestamp_field = check_column(label, timestamp_field, field="timestamp_field") if timestamp_field else ""
        self.udf = udf
        self.udf_name = "" if udf is None else str(getattr(udf, "__qualname__", getattr(udf, "__name__", "")))
        self.mode = mode
        _declare_aggregations(self, aggregations, tiling_hop_size, label)

    @property
    def event_timestamp_field(self) -> str:
        """The column holding each event's time: `timestamp_field`, else the source's."""
        return self.timestamp_field or self.source.timestamp_field

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        spec.update(_aggregation_spec(self))
        spec["timestamp_field"] = self.timestamp_field
        if self.tiling_hop_size is not None:
            spec["tiling_hop_size_seconds"] = _hop_seconds(self.tiling_hop_size)
        if self.udf_name:
            spec["udf_name"] = self.udf_name
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> StreamFeatureView:
        hop = spec.get("tiling_hop_size_seconds")
        view = cls(
            name=spec["name"],
            schema=_schema_of(spec),
            aggregations=_aggregations_of(spec),
            timestamp_field=spec.get("timestamp_field", ""),
            tiling_hop_size=None if hop is None else timedelta(seconds=float(hop)),
            **cls.common_spec_arguments(spec),
        )
        view.udf_name = str(spec.get("udf_name", ""))
        return cls.restore_registry_fields(view, spec)


def stream_feature_view(
    *,
    source: DataSource,
    entities: Sequence[Entity] | None = None,
    schema: Sequence[Field] | None = None,
    aggregations: Sequence[Aggregation] | None = None,
    timestamp_field: str = "",
    ttl: timedelta | None = None,
    online: bool = True,
    description: str = "",
    tags: dict[str, str] | None = None,
    owner: str = "",
    mode: str = "spark",
    name: str | None = None,
    enable_validation: bool = False,
    version: str = "latest",
) -> Callable[[Callable[..., Any]], StreamFeatureView]:
    """Declare a stream view named after the decorated function, as Feast does.

    The function (a transformation of the stream's rows in Feast) is not run: events are
    aggregated as they arrive, and a `TransformationNotAppliedWarning` says so. Transform events
    before they are pushed, or compute derived values in an on-demand feature view.
    """

    def decorate(udf: Callable[..., Any]) -> StreamFeatureView:
        view_name = name or str(getattr(udf, "__name__", ""))
        warnings.warn(
            f"StreamFeatureView '{view_name}': its function '{getattr(udf, '__qualname__', udf)}' is not run; "
            "events are aggregated as they arrive. Transform them before pushing, or use an on-demand feature view",
            TransformationNotAppliedWarning,
            stacklevel=2,
        )
        return StreamFeatureView(
            name=view_name,
            source=source,
            entities=entities,
            schema=schema,
            aggregations=aggregations,
            timestamp_field=timestamp_field,
            ttl=ttl,
            online=online,
            description=description,
            tags=tags,
            owner=owner,
            mode=mode,
            udf=udf,
            version=version,
            enable_validation=enable_validation,
        )

    return decorate


class BatchFeatureView(FeatureView):
    """A view over a batch source, optionally with aggregations (stored as a feature view)."""

    view_type = "batch"

    def __init__(
        self,
        *,
        name: str,
        source: DataSource,
        entities: Sequence[Entity] | None = None,
        schema: Sequence[Field] | None = None,
        aggregations: Sequence[Aggregation] | None = None,
        ttl: timedelta | None = None,
        online: bool = False,
        offline: bool = False,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        mode: str = "python",
        udf: Callable[..., Any] | None = None,
        udf_string: str = "",
        batch_engine: dict[str, Any] | None = None,
        join_keys: Sequence[str] | None = None,
        version: str = "latest",
        enable_validation: bool = False,
    ) -> None:
        label = f"BatchFeatureView '{name}'"
        if udf is not None or udf_string:
            raise DefinitionError(
                f"{label}: transformations ('udf') are not supported; precompute the columns in the source, "
                "or use an on-demand feature view"
            )
        super().__init__(
            name=name,
            source=source,
            schema=schema,
            entities=entities,
            ttl=ttl,
            online=online,
            offline=offline,
            description=description,
            tags=tags,
            owner=owner,
            join_keys=join_keys,
            version=version,
            enable_validation=enable_validation,
        )
        self.mode = mode
        _declare_aggregations(self, aggregations, None, label)

    @property
    def event_timestamp_field(self) -> str:
        return self.source.timestamp_field

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        spec["view_type"] = self.view_type
        spec.update(_aggregation_spec(self))
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> BatchFeatureView:
        view = cls(
            name=spec["name"],
            schema=_schema_of(spec),
            aggregations=_aggregations_of(spec),
            **cls.common_spec_arguments(spec),
        )
        return cls.restore_registry_fields(view, spec)
