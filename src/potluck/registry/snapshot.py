"""An immutable view of the registry at one version.

A row that cannot be decoded (edited by hand, written by another version) does not break the
others: it is kept aside as a broken object, reported by `warnings` and raised, naming the row,
when asked for. `apply` of a definition with the same kind and name replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from potluck.definitions import DEFINITION_KINDS, VIEW_KINDS, Definition, FeatureView
from potluck.definitions.errors import DefinitionError, PotluckError, not_found
from potluck.definitions.feature_view import CURRENT_VERSION

T = TypeVar("T", bound=Definition)

# Kinds the registry keeps beside the definitions, which no repository declares (so `apply` never
# deletes them): their specs are held as JSON objects, decoded by the part of Potluck that owns them.
RECORD_KINDS = ("saved_dataset",)

KIND_LABELS = {
    "entity": "Entity",
    "data_source": "Data source",
    "feature_view": "Feature view",
    "label_view": "Label view",
    "feature_service": "Feature service",
    "on_demand_feature_view": "On-demand feature view",
    "stream_feature_view": "Stream feature view",
    "saved_dataset": "Saved dataset",
}


def registered_spec(obj: Definition) -> dict[str, Any]:
    """An object's spec as the registry holds it: a feature view's with its current version number."""
    spec = obj.to_spec()
    if isinstance(obj, FeatureView):
        spec[CURRENT_VERSION] = obj.current_version_number
    return spec


def decode(kind: str, spec: Mapping[str, Any]) -> Definition:
    return DEFINITION_KINDS[kind].from_spec(spec)


def _decode_row(kind: str, name: str, spec: str | Mapping[str, Any]) -> Definition:
    """The definition of one registry row; a ValueError says what is wrong with it."""
    if kind not in DEFINITION_KINDS:
        raise ValueError(f"unknown kind '{kind}' (known: {', '.join(DEFINITION_KINDS)})")
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as err:
            raise ValueError(f"the spec is not valid JSON ({err})") from None
    if not isinstance(spec, Mapping):
        raise ValueError(f"the spec is a JSON {type(spec).__name__}, not an object")
    try:
        obj = decode(kind, spec)
        obj.to_spec()  # a field of the wrong type often shows only when encoded again
    except PotluckError as err:
        raise ValueError(f"the spec is invalid ({err})") from None
    except KeyError as err:
        raise ValueError(f"the spec misses the field {err}") from None
    except Exception as err:
        raise ValueError(f"the spec is invalid ({type(err).__name__}: {err})") from None
    if obj.name != name:
        raise ValueError(f"the spec names the object '{obj.name}'")
    if isinstance(obj, FeatureView) and obj.current_version_number is None:
        obj.current_version_number = 0  # registered before versions were numbered: its first version
    return obj


@dataclass(frozen=True)
class RegistrySnapshot:
    """The definitions of one project at one registry version."""

    project: str
    version: int
    objects: dict[str, dict[str, Definition]] = field(default_factory=dict)  # kind -> name -> object
    broken: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> what is wrong
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # RECORD_KINDS -> name -> spec

    @classmethod
    def from_rows(
        cls, project: str, version: int, rows: Iterable[tuple[str, str, str | Mapping[str, Any]]]
    ) -> RegistrySnapshot:
        """Decode rows of (kind, name, spec as JSON text or mapping); undecodable rows are kept aside."""
        objects: dict[str, dict[str, Definition]] = {kind: {} for kind in DEFINITION_KINDS}
        broken: dict[tuple[str, str], str] = {}
        records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in RECORD_KINDS}
        for kind, name, spec in rows:
            if kind in records:
                try:
                    records[kind][name] = json.loads(spec) if isinstance(spec, str) else dict(spec)
                except (json.JSONDecodeError, TypeError, ValueError) as err:
                    broken[(kind, name)] = f"the spec is not a JSON object ({err})"
                continue
            try:
                objects[kind][name] = _decode_row(kind, name, spec)
            except ValueError as err:
                broken[(kind, name)] = str(err)
        return cls(project, version, objects, broken, records)

    def broken_message(self, kind: str, name: str) -> str:
        label = KIND_LABELS.get(kind, kind)
        return (
            f"{label} '{name}' in the registry of project '{self.project}' (row kind='{kind}', name='{name}') "
            f"cannot be read: {self.broken[(kind, name)]}. Apply its definition again to replace it"
        )

    @property
    def warnings(self) -> list[str]:
        """One message per registry row that could not be read."""
        return [self.broken_message(kind, name) for kind, name in sorted(self.broken)]

    def of_kind(self, kind: str) -> dict[str, Definition]:
        return self.objects.get(kind, {})

    def get(self, kind: str, name: str) -> Definition:
        found = self.of_kind(kind)
        if name not in found:
            if (kind, name) in self.broken:
                raise DefinitionError(self.broken_message(kind, name))
            raise not_found(KIND_LABELS.get(kind, kind), name, found, key=kind)
        return found[name]

    def all(self) -> list[Definition]:
        return [obj for kind in DEFINITION_KINDS for obj in self.of_kind(kind).values()]

    def feature_views(self) -> dict[str, FeatureView]:
        """Every feature view by name: regular and batch, stream and label views."""
        out: dict[str, FeatureView] = {}
        for kind in VIEW_KINDS:
            for name, obj in self.of_kind(kind).items():
                if isinstance(obj, FeatureView):
                    out[name] = obj
        return out

    def feature_view(self, name: str) -> FeatureView:
        """The feature view (of any of those kinds) called `name`; an unknown name suggests the nearest."""
        found = self.feature_views()
        if name in found:
            return found[name]
        for kind in VIEW_KINDS:
            if (kind, name) in self.broken:
                raise DefinitionError(self.broken_message(kind, name))
        raise not_found(KIND_LABELS[FeatureView.kind], name, found, key=FeatureView.kind)
