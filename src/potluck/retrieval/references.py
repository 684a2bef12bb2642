"""Resolving what a caller asks for (`"view:feature"`, a FeatureService, its name) into views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from potluck.definitions import FeatureService, FeatureView
from potluck.definitions.errors import RetrievalError, UnknownFeatureError, suggestion
from potluck.definitions.field import Field
from potluck.registry.snapshot import RegistrySnapshot

FeatureRequest = Sequence[str] | FeatureService | str


@dataclass(frozen=True)
class ViewSelection:
    """The features wanted from one view, and the column names they come out as."""

    view: FeatureView
    features: tuple[Field, ...]
    output_names: tuple[str, ...]


def _service(request: FeatureService | str, snapshot: RegistrySnapshot) -> FeatureService:
    if isinstance(request, FeatureService):
        return request
    services = snapshot.of_kind(FeatureService.kind)
    if request not in services:
        lead = f"feature service '{request}' does not exist."
        raise UnknownFeatureError(
            f"{lead} {suggestion(request, services)}",
            lead=lead,
            name=request,
            kind=FeatureService.kind,
            candidates=services,
        )
    found = services[request]
    assert isinstance(found, FeatureService)
    return found


def _unversioned(view_name: str, ref: str) -> str:
    """The view of `view@latest` (the current definition); other versions are refused, naming the fix."""
    if "@" not in view_name:
        return view_name
    base, version = view_name.split("@", 1)
    if version == "latest":
        return base
    raise RetrievalError(
        f"feature reference {ref!r} asks for version '{version}' of view '{base}', but feature views keep no "
        f"version history here: only the current definition is served; use '{base}:{ref.split(':', 1)[1]}'"
    )


def parse_references(features: FeatureRequest, snapshot: RegistrySnapshot) -> list[tuple[str, str, str]]:
    """(view, feature, alias) triples, in request order."""
    if isinstance(features, FeatureService) or (isinstance(features, str) and ":" not in features):
        service = _service(features, snapshot)
        out: list[tuple[str, str, str]] = []
        for view_name, selected, alias in service.selections:
            names = selected
            if not names:
                view = snapshot.of_kind(FeatureView.kind).get(view_name)
                names = view.feature_names if isinstance(view, FeatureView) else []
            out.extend((view_name, name, alias) for name in names)
        return out
    if isinstance(features, str):
        features = [features]
    if not features:
        raise RetrievalError("no features requested: pass 'view:feature' references or a feature service")
    refs: list[tuple[str, str, str]] = []
    for ref in features:
        if not isinstance(ref, str) or ref.count(":") != 1 or ref.startswith(":") or ref.endswith(":"):
            raise RetrievalError(f"feature reference {ref!r} must look like 'view:feature'")
        view_name, name = ref.split(":")
        refs.append((_unversioned(view_name, ref), name, ""))
    return refs


def resolve_features(
    features: FeatureRequest, snapshot: RegistrySnapshot, *, full_feature_names: bool
) -> list[ViewSelection]:
    """Views and features for a request, with output names checked for collisions."""
    views = snapshot.of_kind(FeatureView.kind)
    grouped: dict[str, tuple[FeatureView, list[Field], str]] = {}
    for view_name, feature_name, alias in parse_references(features, snapshot):
        view = views.get(view_name)
        if not isinstance(view, FeatureView):
            lead = f"feature view '{view_name}' (in '{view_name}:{feature_name}') does not exist."
            raise UnknownFeatureError(
                f"{lead} {suggestion(view_name, views)}",
                lead=lead,
                name=view_name,
                kind=FeatureView.kind,
                candidates=views,
            )
        field = next((f for f in view.features if f.name == feature_name), None)
        if field is None:
            raise UnknownFeatureError(
                f"feature view '{view_name}' has no feature '{feature_name}'. "
                f"{suggestion(feature_name, view.feature_names)}"
            )
        key = alias or view_name
        entry = grouped.setdefault(key, (view, [], alias))
        if field not in entry[1]:
            entry[1].append(field)
    selections = []
    owners: dict[str, str] = {}
    for key, (view, fields, _alias) in grouped.items():
        names = tuple(f"{key}__{f.name}" if full_feature_names else f.name for f in fields)
        for name in names:
            if name in owners:
                raise RetrievalError(
                    f"feature '{name}' is requested from both '{owners[name]}' and '{key}'; "
                    "pass full_feature_names=True to name columns 'view__feature'"
                )
            owners[name] = key
        selections.append(ViewSelection(view, tuple(fields), names))
    return selections
