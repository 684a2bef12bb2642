"""`OnDemandFeatureView`: features computed by a user function from feature views and request data.

The function itself is never part of the definition's stored content: only where it lives (its
module, relative to the feature repository, and its qualified name) and a SHA-256 of its source.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from potluck.definitions.base import Definition, check_name, check_tags, check_text
from potluck.definitions.entity import Entity
from potluck.definitions.errors import DefinitionError, suggestion
from potluck.definitions.feature_view import ONLINE_GENERATION, FeatureView, FeatureViewProjection
from potluck.definitions.field import Field
from potluck.definitions.request_source import RequestSource

MODES = ("pandas", "python", "arrow")
# Modules of repository files are imported under this prefix (see potluck.repo.loader); the
# registry stores the module name without it, relative to the repository.
REPO_MODULE_PREFIX = "potluck_repo_"
_REPO_MODULE = re.compile(re.escape(REPO_MODULE_PREFIX) + r"\d+\.")


def repository_module(module: str) -> str:
    """A function's module name as the registry stores it: relative to the feature repository."""
    return _REPO_MODULE.sub("", module, count=1)


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class UdfLocation:
    """Where a view's function lives and what its source hashes to."""

    module: str
    qualname: str
    source_sha256: str

    @property
    def file(self) -> str:
        """The repository file that defines the module (relative path)."""
        return self.module.replace(".", "/") + ".py"

    def to_spec(self) -> dict[str, str]:
        return {"module": self.module, "qualname": self.qualname, "source_sha256": self.source_sha256}


def locate_udf(label: str, udf: Callable[..., Any]) -> UdfLocation:
    if not callable(udf) or not hasattr(udf, "__qualname__"):
        raise DefinitionError(f"{label}: 'udf' must be a function, got {udf!r}")
    if "<lambda>" in udf.__qualname__ or "<locals>" in udf.__qualname__:
        raise DefinitionError(
            f"{label}: its function '{udf.__qualname__}' must be defined with 'def' at the top level of a "
            "repository file, so every process can import it"
        )
    try:
        source = inspect.getsource(udf)
    except (OSError, TypeError):
        raise DefinitionError(
            f"{label}: the source of its function '{udf.__qualname__}' cannot be read; "
            "define it in a Python file of the feature repository"
        ) from None
    return UdfLocation(repository_module(udf.__module__), udf.__qualname__, source_sha256(source))


def _fields(label: str, what: str, schema: object) -> list[Field]:
    if isinstance(schema, (str, bytes)) or not isinstance(schema, Sequence) or not schema:
        raise DefinitionError(f"{label}: '{what}' must be a non-empty list of Field objects")
    seen: set[str] = set()
    for i, f in enumerate(schema):
        if not isinstance(f, Field):
            raise DefinitionError(f"{label}: '{what}[{i}]' must be a Field, got {f!r}")
        if f.name in seen:
            raise DefinitionError(f"{label}: '{what}' declares field '{f.name}' twice")
        seen.add(f.name)
    return list(schema)


class OnDemandFeatureView(Definition):
    kind = "on_demand_feature_view"
    # Assigned by the registry for views stored at write time (`write_to_online_store=True`): which
    # online namespace holds their rows. Not part of the definition's content.
    online_generation: int = 0

    def __init__(
        self,
        *,
        name: str,
        sources: Sequence[FeatureView | RequestSource],
        schema: Sequence[Field],
        udf: Callable[..., Any] | None = None,
        mode: str = "pandas",
        entities: Sequence[Entity | str] | None = None,
        singleton: bool = False,
        write_to_online_store: bool = False,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        udf_location: UdfLocation | None = None,
        entity_columns: Sequence[Field] | None = None,
    ) -> None:
        self.name = check_name("OnDemandFeatureView", name)
        label = f"OnDemandFeatureView '{name}'"
        if mode not in MODES:
            raise DefinitionError(f"{label}: 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        if not isinstance(singleton, bool) or not isinstance(write_to_online_store, bool):
            raise DefinitionError(f"{label}: 'singleton' and 'write_to_online_store' must be True or False")
        if singleton and mode != "python":
            raise DefinitionError(f"{label}: 'singleton=True' needs mode='python' (one row's values in, one row out)")
        self.singleton = singleton
        self.write_to_online_store = write_to_online_store
        if isinstance(sources, (str, bytes)) or not isinstance(sources, Sequence) or not sources:
            raise DefinitionError(
                f"{label}: 'sources' must be a non-empty list of feature views, view[[...]] selections "
                "and request sources"
            )
        self.source_projections: list[FeatureViewProjection] = []
        self.request_sources: list[RequestSource] = []
        for i, src in enumerate(sources):
            if isinstance(src, FeatureView):
                proj = src.projection
                self.source_projections.append(FeatureViewProjection(proj.name, list(proj.features), proj.name_alias))
            elif isinstance(src, FeatureViewProjection):
                self.source_projections.append(src)
            elif isinstance(src, RequestSource):
                self.request_sources.append(src)
            else:
                raise DefinitionError(
                    f"{label}: 'sources[{i}]' must be a FeatureView, a selection view[['a']] or a RequestSource, "
                    f"got {src!r}"
                )
        used = [p.name_to_use for p in self.source_projections] + [r.name for r in self.request_sources]
        if len(set(used)) != len(used):
            raise DefinitionError(f"{label}: the same source is listed twice in 'sources'; merge the selections")
        self.features = _fields(label, "schema", schema)
        request_fields = {f for r in self.request_sources for f in r.field_names}
        for f in self.features:
            if f.name in request_fields:
                raise DefinitionError(
                    f"{label}: output '{f.name}' is also a request field; request fields are never outputs, "
                    "rename the output"
                )
        names: list[str] = []
        for i, ent in enumerate(entities or []):
            if isinstance(ent, Entity):
                names.append(ent.name)
            elif isinstance(ent, str):
                names.append(check_name(label, ent, field=f"entities[{i}]"))
            else:
                raise DefinitionError(f"{label}: 'entities[{i}]' must be an Entity object, got {ent!r}")
        self.entity_names = names
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")
        self.udf = udf
        if udf is not None:
            self.udf_location = locate_udf(label, udf)
        elif udf_location is not None:
            self.udf_location = udf_location
        else:
            raise DefinitionError(f"{label}: 'udf' is required: the function that computes its features")
        self.projection = FeatureViewProjection(self.name, list(self.features))
        # The typed join keys of a view stored at write time, completed at apply from its sources
        # (or its entities): the keys of its online rows.
        self.entity_columns = list(entity_columns or [])

    @property
    def schema(self) -> list[Field]:
        return list(self.features)

    @property
    def join_keys(self) -> list[str]:
        """The join keys of its stored rows (empty unless `write_to_online_store` and applied)."""
        return [f.name for f in self.entity_columns]

    @property
    def entities(self) -> list[str]:
        return list(self.entity_names)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def request_fields(self) -> list[Field]:
        return [f for r in self.request_sources for f in r.schema]

    @property
    def source_feature_view_projections(self) -> dict[str, FeatureViewProjection]:
        return {p.name_to_use: p for p in self.source_projections}

    @property
    def source_request_sources(self) -> dict[str, RequestSource]:
        return {r.name: r for r in self.request_sources}

    def feature(self, name: str) -> Field:
        for f in self.features:
            if f.name == name:
                return f
        raise DefinitionError(
            f"OnDemandFeatureView '{self.name}' has no feature '{name}'. {suggestion(name, self.feature_names)}"
        )

    def __getitem__(self, names: str | Sequence[str]) -> OnDemandFeatureView:
        """A copy of this view restricted to some features, for use in a FeatureService."""
        wanted = [names] if isinstance(names, str) else list(names)
        chosen = [self.feature(n) for n in wanted]
        clone = copy.copy(self)
        clone.projection = FeatureViewProjection(self.name, chosen, self.projection.name_alias)
        return clone

    def with_name(self, alias: str) -> OnDemandFeatureView:
        clone = copy.copy(self)
        clone.projection = FeatureViewProjection(self.name, list(self.projection.features), alias)
        return clone

    def to_spec(self) -> dict[str, Any]:
        sources: list[dict[str, Any]] = [
            {
                "type": "feature_view",
                "feature_view_name": p.name,
                "name_alias": p.name_alias,
                "features": [f.to_spec() for f in p.features],
            }
            for p in self.source_projections
        ] + [{"type": "request", "source": r.to_spec()} for r in self.request_sources]
        spec: dict[str, Any] = {
            "name": self.name,
            "entities": list(self.entity_names),
            "sources": sources,
            "features": [f.to_spec() for f in self.features],
            "mode": self.mode,
            "singleton": self.singleton,
            "write_to_online_store": self.write_to_online_store,
            "udf": self.udf_location.to_spec(),
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }
        if self.entity_columns:  # only stored views have them; other specs stay as they were
            spec["entity_columns"] = [f.to_spec() for f in self.entity_columns]
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> OnDemandFeatureView:
        sources: list[Any] = []
        for src in spec["sources"]:
            if src.get("type") == "request":
                sources.append(RequestSource._from_spec(src["source"]))
            else:
                sources.append(
                    FeatureViewProjection(
                        src["feature_view_name"],
                        [Field.from_spec(f) for f in src["features"]],
                        src.get("name_alias", ""),
                    )
                )
        udf = spec["udf"]
        view = cls(
            name=spec["name"],
            sources=sources,
            schema=[Field.from_spec(f) for f in spec["features"]],
            mode=spec.get("mode", "pandas"),
            entities=spec.get("entities") or [],
            singleton=spec.get("singleton", False),
            write_to_online_store=spec.get("write_to_online_store", False),
            description=spec.get("description", ""),
            tags=spec.get("tags"),
            owner=spec.get("owner", ""),
            udf_location=UdfLocation(str(udf["module"]), str(udf["qualname"]), str(udf["source_sha256"])),
            entity_columns=[Field.from_spec(f) for f in spec.get("entity_columns") or []],
        )
        generation = spec.get(ONLINE_GENERATION, 0)
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise DefinitionError(
                f"OnDemandFeatureView '{view.name}': '{ONLINE_GENERATION}' must be a non-negative integer"
            )
        view.online_generation = generation
        return view


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | RequestSource],
    schema: Sequence[Field],
    name: str | None = None,
    entities: Sequence[Entity | str] | None = None,
    mode: str = "pandas",
    singleton: bool = False,
    write_to_online_store: bool = False,
    description: str = "",
    tags: dict[str, str] | None = None,
    owner: str = "",
) -> Callable[[Callable[..., Any]], OnDemandFeatureView]:
    """Declare an on-demand feature view from the decorated function (the view's name defaults to it)."""

    def decorate(udf: Callable[..., Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name=name or str(getattr(udf, "__name__", "")),
            sources=sources,
            schema=schema,
            udf=udf,
            mode=mode,
            entities=entities,
            singleton=singleton,
            write_to_online_store=write_to_online_store,
            description=description,
            tags=tags,
            owner=owner,
        )

    return decorate
