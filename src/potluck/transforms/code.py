"""Finding an on-demand view's function in the feature repository, checked against the registry.

Nothing is ever unpickled or executed from the registry: the registry says where the function
lives and what its source hashes to; the function is imported from the repository's file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from potluck.definitions.errors import RepositoryError, TransformCodeError
from potluck.definitions.on_demand import OnDemandFeatureView, UdfLocation, locate_udf

Udf = Callable[..., Any]


def _namespace(location: UdfLocation, repo: Path, label: str) -> dict[str, object]:
    from potluck.repo.loader import import_file

    path = repo / location.file
    if not path.is_file():
        raise TransformCodeError(
            f"{label}: its function '{location.qualname}' lives in {location.file}, which is not in the "
            f"feature repository at {repo}; deploy the server with the repository the view was applied from"
        )
    added = str(repo) not in sys.path
    if added:
        sys.path.insert(0, str(repo))
    try:
        return import_file(path, repo)
    except RepositoryError as err:
        raise TransformCodeError(f"{label}: {location.file} cannot be imported: {err}") from None
    finally:
        if added:
            sys.path.remove(str(repo))


def _find(namespace: dict[str, object], location: UdfLocation, label: str) -> Udf:
    head, *rest = location.qualname.split(".")
    found: object = namespace.get(head)
    for part in rest:
        found = getattr(found, part, None)
    if isinstance(found, OnDemandFeatureView):  # the decorator binds the view to the function's name
        found = found.udf
    if not callable(found):
        raise TransformCodeError(
            f"{label}: {location.file} no longer defines its function '{location.qualname}'; "
            "restore it, or run apply with the current code"
        )
    return found


def load_udf(view: OnDemandFeatureView, repo_path: str | Path) -> Udf:
    """The view's function, imported from the repository; its source must hash as registered.

    Each call imports the file again (callers keep the function per registry version).
    """
    location = view.udf_location
    repo = Path(repo_path).resolve()
    label = f"on-demand feature view '{view.name}'"
    udf = _find(_namespace(location, repo, label), location, label)
    current = locate_udf(label, udf)
    if current.source_sha256 != location.source_sha256:
        raise TransformCodeError(
            f"{label}: its function '{location.qualname}' in {location.file} differs from the registered one "
            "(the source hash does not match); run apply to register the current code, or deploy the "
            "repository version that was applied"
        )
    return udf
