"""`FeatureView(version="vN")`: applying makes the view's recorded vN definition current again.

The declared body must be one of the view's applied definitions (Feast's way is to change only
`version=` and leave the body as it was); a body matching none of them would be silently
ignored, so it is an error. Pinning the next, not yet recorded number declares that version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from potluck.definitions import Definition, FeatureView
from potluck.definitions.errors import RepositoryError
from potluck.definitions.versions import version_tag
from potluck.registry.versions import FeatureViewVersion, content_hash

VersionsOf = Callable[[str], list[FeatureViewVersion]]


def has_pins(objects: Sequence[Definition]) -> bool:
    return any(isinstance(o, FeatureView) and o.pinned_version is not None for o in objects)


def apply_pins(
    objects: Sequence[Definition], versions_of: VersionsOf, where: Callable[[Definition], str]
) -> list[Definition]:
    """`objects` with each pinned view replaced by its recorded definition (`version` kept)."""
    out: list[Definition] = []
    for obj in objects:
        pin = obj.pinned_version if isinstance(obj, FeatureView) else None
        if not isinstance(obj, FeatureView) or pin is None:
            out.append(obj)
            continue
        label = f"{where(obj)}: FeatureView '{obj.name}'"
        versions = {v.number: v for v in versions_of(obj.name)}
        shown = ", ".join(version_tag(n) for n in sorted(versions)) or "none yet"
        following = max(versions) + 1 if versions else 0
        if pin not in versions:
            if pin != following:
                raise RepositoryError(
                    f"{label}: version='{version_tag(pin)}' does not exist (applied versions: {shown}); pin one "
                    f"of them, or '{version_tag(following)}' to declare the next version"
                )
            out.append(obj)  # declares the next version: applied as a new definition with that number
            continue
        if content_hash(obj.to_spec()) not in {v.content_hash for v in versions.values()}:
            raise RepositoryError(
                f"{label}: version='{version_tag(pin)}' makes the recorded {version_tag(pin)} current, but the "
                f"declared definition matches none of the view's applied versions ({shown}), so its edits would "
                "be ignored; remove version= to apply them as a new version, or undo them"
            )
        restored = versions[pin].view()
        restored.version = obj.version
        out.append(restored)
    return out
