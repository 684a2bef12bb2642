"""`FeatureView`: a group of features read from one source and keyed by entities."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple, TypeVar

from potluck.definitions.aggregation import Aggregation
from potluck.definitions.base import Definition, check_name, check_tags, check_text
from potluck.definitions.entity import Entity
from potluck.definitions.errors import DefinitionError, suggestion
from potluck.definitions.field import Field
from potluck.definitions.sources import DataSource
from potluck.definitions.versions import LATEST, parse_version, version_tag

ONLINE_GENERATION = "online_generation"  # the registry row's key for `FeatureView.online_generation`
CURRENT_VERSION = "current_version_number"  # the registry row's key for `FeatureView.current_version_number`


class MaterializedInterval(NamedTuple):
    """One recorded materialization of a view: event times from `start_date` to `end_date` (UTC)."""

    start_date: datetime
    end_date: datetime


class FeatureViewProjection:
    """A selection of a view's features, optionally under another name (`view[["a", "b"]]`)."""

    __slots__ = ("features", "name", "name_alias")

    def __init__(self, name: str, features: list[Field], name_alias: str = "") -> None:
        self.name = name
        self.features = features
        self.name_alias = name_alias

    @property
    def name_to_use(self) -> str:
        return self.name_alias or self.name

    def to_spec(self) -> dict[str, Any]:
        return {
            "feature_view_name": self.name,
            "name_alias": self.name_alias,
            "features": [f.name for f in self.features],
        }

    def __repr__(self) -> str:
        return f"FeatureViewProjection({self.name!r}, {[f.name for f in self.features]!r})"


FeatureViewT = TypeVar("FeatureViewT", bound="FeatureView")


class FeatureView(Definition):
    kind = "feature_view"
    # Assigned by the registry, not declared: which online namespace holds the view's rows.
    # Not part of the definition's content (to_spec, equality, plan).
    online_generation: int = 0
    # Filled from the registry's recorded runs when the view is read through a FeatureStore.
    materialization_intervals: list[MaterializedInterval]
    # Assigned by the registry too: the number of the applied definition this object is (v0, v1, ...);
    # None for a view not applied yet. Not part of the definition's content either.
    current_version_number: int | None = None
    # Windowed aggregations (stream and batch views); a plain view has none. When there are some,
    # `features` are their outputs and `input_fields` the source columns they read.
    aggregations: tuple[Aggregation, ...] = ()
    # The stored `view_type` of subclasses kept under the same registry kind ("batch").
    view_type: ClassVar[str] = ""
    _view_types: ClassVar[dict[str, type[FeatureView]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.view_type:
            FeatureView._view_types[cls.view_type] = cls

    def __init__(
        self,
        *,
        name: str,
        source: DataSource,
        schema: Sequence[Field] | None = None,
        entities: Sequence[Entity] | None = None,
        ttl: timedelta | None = timedelta(0),
        online: bool = True,
        offline: bool = False,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        join_keys: Sequence[str] | None = None,
        version: str = "latest",
        enable_validation: bool = False,
    ) -> None:
        kind_label = type(self).__name__  # "FeatureView", or a subclass's name in its messages
        self.name = check_name(kind_label, name)
        label = f"{kind_label} '{name}'"
        pinned = parse_version(version, label)
        # `version` says which applied definition `apply` makes current (not part of the content)
        self.version = LATEST if pinned is None else version_tag(pinned)
        if not isinstance(enable_validation, bool):
            raise DefinitionError(f"{label}: 'enable_validation' must be True or False")
        self.enable_validation = enable_validation
        if not isinstance(source, DataSource):
            raise DefinitionError(f"{label}: 'source' must be a data source such as FileSource, got {source!r}")
        self.source = source
        ents = list(entities or [])
        names: list[str] = []
        keys: list[str] = []
        for i, ent in enumerate(ents):
            if isinstance(ent, Entity):
                names.append(ent.name)
                keys.append(ent.join_key)
            elif isinstance(ent, str) and join_keys is not None:
                names.append(ent)
            else:
                raise DefinitionError(f"{label}: 'entities[{i}]' must be an Entity object, got {ent!r}")
        if join_keys is not None:
            keys = list(join_keys)
        if len(set(names)) != len(names):
            raise DefinitionError(f"{label}: 'entities' lists the same entity twice")
        if len(set(keys)) != len(keys):
            raise DefinitionError(f"{label}: two of its entities share the join key; join keys must differ")
        self.entity_names = names
        self.join_keys = keys
        if ttl is None:
            ttl = timedelta(0)
        if not isinstance(ttl, timedelta) or ttl < timedelta(0):
            raise DefinitionError(f"{label}: 'ttl' must be a non-negative datetime.timedelta, got {ttl!r}")
        self.ttl = ttl
        fields = list(schema or [])
        seen: set[str] = set()
        for i, f in enumerate(fields):
            if not isinstance(f, Field):
                raise DefinitionError(f"{label}: 'schema[{i}]' must be a Field, got {f!r}")
            if f.name in seen:
                raise DefinitionError(f"{label}: the schema declares field '{f.name}' twice")
            seen.add(f.name)
        self.entity_columns = [f for f in fields if f.name in keys]
        self.features = [f for f in fields if f.name not in keys]
        self.input_fields = list(self.features)
        reserved = {source.timestamp_field, source.created_timestamp_column} - {""}
        for f in self.features:
            if f.name in reserved:
                raise DefinitionError(
                    f"{label}: field '{f.name}' is the source's timestamp column; remove it from the schema"
                )
        if not isinstance(online, bool) or not isinstance(offline, bool):
            raise DefinitionError(f"{label}: 'online' and 'offline' must be True or False")
        self.online = online
        self.offline = offline
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")
        self.projection = FeatureViewProjection(self.name, list(self.features))
        self.materialization_intervals = []

    @property
    def entities(self) -> list[str]:
        return list(self.entity_names)

    @property
    def schema(self) -> list[Field]:
        return [*self.entity_columns, *self.features]

    @property
    def event_timestamp_field(self) -> str:
        """The column holding each row's event time."""
        return self.source.timestamp_field

    @property
    def batch_source(self) -> DataSource:
        return self.source

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Field:
        for f in self.features:
            if f.name == name:
                return f
        raise DefinitionError(
            f"FeatureView '{self.name}' has no feature '{name}'. {suggestion(name, self.feature_names)}"
        )

    def __getitem__(self, names: str | Sequence[str]) -> FeatureView:
        """A copy of this view restricted to some features, for use in a FeatureService."""
        wanted = [names] if isinstance(names, str) else list(names)
        chosen = [self.feature(n) for n in wanted]
        clone = copy.copy(self)
        clone.projection = FeatureViewProjection(self.name, chosen, self.projection.name_alias)
        return clone

    def with_name(self, alias: str) -> FeatureView:
        clone = copy.copy(self)
        clone.projection = FeatureViewProjection(self.name, list(self.projection.features), alias)
        return clone

    def to_spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": list(self.entity_names),
            "join_keys": list(self.join_keys),
            "ttl_seconds": self.ttl.total_seconds(),
            "entity_columns": [f.to_spec() for f in self.entity_columns],
            "features": [f.to_spec() for f in self.features],
            "source": self.source.to_spec(),
            "online": self.online,
            "offline": self.offline,
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
            # Written only when set, so views applied before the option existed keep their content.
            **({"enable_validation": True} if self.enable_validation else {}),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FeatureView:
        view_type = spec.get("view_type", "")
        if cls is FeatureView and view_type:
            if view_type not in FeatureView._view_types:
                raise DefinitionError(f"FeatureView '{spec.get('name')}': unknown view_type {view_type!r}")
            return FeatureView._view_types[view_type].from_spec(spec)
        view = cls(name=spec["name"], schema=cls.stored_schema(spec), **cls.common_spec_arguments(spec))
        return cls.restore_registry_fields(view, spec)

    @staticmethod
    def stored_schema(spec: Mapping[str, Any], fields: str = "features") -> list[Field]:
        """The schema a stored spec was declared with: its entity columns, then its `fields` list."""
        return [Field.from_spec(f) for f in [*spec.get("entity_columns", []), *spec[fields]]]

    @staticmethod
    def common_spec_arguments(spec: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor arguments every kind of feature view stores the same way."""
        return {
            "source": DataSource.from_spec(spec["source"]),
            "entities": spec["entities"],
            "join_keys": spec["join_keys"],
            "ttl": timedelta(seconds=spec.get("ttl_seconds", 0)),
            "online": spec.get("online", True),
            "offline": spec.get("offline", False),
            "description": spec.get("description", ""),
            "tags": spec.get("tags"),
            "owner": spec.get("owner", ""),
            "enable_validation": spec.get("enable_validation", False),
        }

    @staticmethod
    def restore_registry_fields(view: FeatureViewT, spec: Mapping[str, Any]) -> FeatureViewT:
        """Set what the registry assigns (online generation, version number) from a stored spec."""
        label = f"{type(view).__name__} '{view.name}'"
        generation = spec.get(ONLINE_GENERATION, 0)
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise DefinitionError(f"{label}: '{ONLINE_GENERATION}' must be a non-negative integer")
        view.online_generation = generation
        current = spec.get(CURRENT_VERSION)
        if current is not None and (not isinstance(current, int) or isinstance(current, bool) or current < 0):
            raise DefinitionError(f"{label}: '{CURRENT_VERSION}' must be a non-negative integer")
        view.current_version_number = current
        return view

    @property
    def pinned_version(self) -> int | None:
        """The version number `version=` pins, or None for 'latest'."""
        return parse_version(self.version, f"FeatureView '{self.name}'")
