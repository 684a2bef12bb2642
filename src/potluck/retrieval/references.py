"""Resolving what a caller asks for (`"view:feature"`, `"view@vN:feature"`, a FeatureService, its name) into views.

`view@vN` names the view's applied definition vN (`view@latest` is the view itself). Training
data can use any version; serving has only the current one (docs/adr/0007-feature-view-versions.md).
A pinned reference's columns are named as Feast names them: `feature`, or `view@vN__feature`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from potluck.definitions import FeatureService, FeatureView
from potluck.definitions.errors import DefinitionError, RetrievalError, UnknownFeatureError, suggestion
from potluck.definitions.field import Field
from potluck.definitions.versions import parse_version, version_tag
from potluck.registry.snapshot import RegistrySnapshot

FeatureRequest = Sequence[str] | FeatureService | str
VersionsOf = Callable[[str], dict[int, FeatureView]]  # a view's applied definitions by number


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


@dataclass(frozen=True)
class Reference:
    """One requested feature: its view, the view's version (None: current), and the alias it is served under."""

    view: str
    feature: str
    alias: str = ""
    version: int | None = None


def _split_version(view_name: str, ref: str) -> tuple[str, int | None]:
    """`view@vN` -> (view, N); `view@latest` and `view` -> (view, None)."""
    if "@" not in view_name:
        return view_name, None
    base, text = view_name.split("@", 1)
    try:
        return base, parse_version(text, f"feature reference {ref!r}")
    except DefinitionError as err:
        raise RetrievalError(str(err)) from None


def parse_references(features: FeatureRequest, snapshot: RegistrySnapshot) -> list[Reference]:
    """The requested features, in request order."""
    if isinstance(features, FeatureService) or (isinstance(features, str) and ":" not in features):
        service = _service(features, snapshot)
        out: list[Reference] = []
        for view_name, selected, alias in service.selections:
            names = selected
            if not names:
                view = snapshot.views().get(view_name) or snapshot.of_kind("on_demand_feature_view").get(view_name)
                names = list(getattr(view, "feature_names", []))
            out.extend(Reference(view_name, name, alias) for name in names)
        return out
    if isinstance(features, str):
        features = [features]
    if not features:
        raise RetrievalError("no features requested: pass 'view:feature' references or a feature service")
    refs: list[Reference] = []
    for ref in features:
        if not isinstance(ref, str) or ref.count(":") != 1 or ref.startswith(":") or ref.endswith(":"):
            raise RetrievalError(f"feature reference {ref!r} must look like 'view:feature' or 'view@vN:feature'")
        view_name, name = ref.split(":")
        base, version = _split_version(view_name, ref)
        refs.append(Reference(base, name, version=version))
    return refs


def _version_of(view: FeatureView, ref: Reference, versions: VersionsOf | None) -> FeatureView:
    """The definition a pinned reference asks for; without `versions` (serving) only the current one."""
    wanted = ref.version
    current = view.current_version_number or 0
    if wanted is None or wanted == current:
        return view
    asked = f"'{ref.view}@{version_tag(wanted)}:{ref.feature}'"
    if versions is None:
        raise RetrievalError(
            f"feature view '{ref.view}' serves only its current version {version_tag(current)} online, but "
            f"{asked} asks for {version_tag(wanted)}; use '{ref.view}:{ref.feature}' (or "
            f"'{ref.view}@{version_tag(current)}:{ref.feature}'), or read {version_tag(wanted)} in training data"
        )
    known = versions(ref.view)
    if wanted not in known:
        shown = ", ".join(version_tag(n) for n in sorted(known))
        raise RetrievalError(
            f"feature view '{ref.view}' has no version {version_tag(wanted)} (in {asked}); its versions are {shown}"
        )
    return known[wanted]


def resolve_features(
    features: FeatureRequest,
    snapshot: RegistrySnapshot,
    *,
    full_feature_names: bool,
    versions: VersionsOf | None = None,
) -> list[ViewSelection]:
    """Views and features for a request, with output names checked for collisions.

    `versions` gives a view's applied definitions (training data); without it, references to a
    version other than the current one are refused (serving).
    """
    return resolve_references(
        parse_references(features, snapshot), snapshot, full_feature_names=full_feature_names, versions=versions
    )


def output_name(key: str, feature: str, full_feature_names: bool) -> str:
    return f"{key}__{feature}" if full_feature_names else feature


def check_collisions(owners: dict[str, str], key: str, names: Sequence[str]) -> None:
    """Record `names` as coming from `key`; a name two views give is an error."""
    for name in names:
        if name in owners:
            raise RetrievalError(
                f"feature '{name}' is requested from both '{owners[name]}' and '{key}'; "
                "pass full_feature_names=True to name columns 'view__feature'"
            )
        owners[name] = key


def resolve_references(
    refs: Sequence[Reference],
    snapshot: RegistrySnapshot,
    *,
    full_feature_names: bool,
    versions: VersionsOf | None = None,
    owners: dict[str, str] | None = None,
) -> list[ViewSelection]:
    """As `resolve_features`, for parsed references; `owners` collects output name -> view key."""
    views = snapshot.views()
    grouped: dict[str, tuple[FeatureView, list[Field], str]] = {}
    for ref in refs:
        view_name, feature_name, alias = ref.view, ref.feature, ref.alias
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
        view = _version_of(view, ref, versions)
        field = next((f for f in view.features if f.name == feature_name), None)
        if field is None:
            shown = view_name if ref.version is None else f"{view_name}@{version_tag(ref.version)}"
            raise UnknownFeatureError(
                f"feature view '{shown}' has no feature '{feature_name}'. "
                f"{suggestion(feature_name, view.feature_names)}"
            )
        key = alias or view_name
        if ref.version is not None:
            key = f"{key}@{version_tag(ref.version)}"
        entry = grouped.setdefault(key, (view, [], alias))
        if field not in entry[1]:
            entry[1].append(field)
    selections = []
    owners = {} if owners is None else owners
    for key, (view, fields, _alias) in grouped.items():
        names = tuple(output_name(key, f.name, full_feature_names) for f in fields)
        check_collisions(owners, key, names)
        selections.append(ViewSelection(view, tuple(fields), names))
    return selections
