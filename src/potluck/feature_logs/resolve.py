"""A feature service's log (`LogSpec`) as the registry defines it, cached per registry version."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.feature_logs.spec import LogSpec

if TYPE_CHECKING:
    from potluck.registry.snapshot import RegistrySnapshot
    from potluck.store import FeatureStore


def log_spec(store: FeatureStore, feature_service: str) -> LogSpec | None:
    """The log of a feature service as the registry defines it now (None: it has no logging_config)."""
    return spec_of(store.registry_snapshot(), store.repo_path, feature_service)


def spec_of(snapshot: RegistrySnapshot, repo_path: str | Path, feature_service: str) -> LogSpec | None:
    """The log of `feature_service` in `snapshot` (None: it has no logging_config)."""
    from potluck.definitions import FeatureService
    from potluck.retrieval.on_demand import resolve_request

    service = snapshot.get(FeatureService.kind, feature_service)
    assert isinstance(service, FeatureService)
    config = service.logging_config
    if config is None:
        return None
    keys: dict[str, Any] = {}
    features: list[tuple[str, Any]] = []
    widths: list[int] = []
    request = resolve_request(service, snapshot, full_feature_names=True)
    for selection in request.selections:
        for key_field in selection.view.entity_columns:
            keys.setdefault(key_field.name, key_field.dtype)
        features.extend((name, f.dtype) for name, f in zip(selection.output_names, selection.features, strict=True))
        widths.append(len(selection.features))
    for source in request.inputs:
        for key_field in source.view.entity_columns:
            keys.setdefault(key_field.name, key_field.dtype)
    request_fields: dict[str, Any] = {}
    for computed in request.on_demand:  # logged after the regular views, as they are served
        features.extend((name, f.dtype) for name, f in zip(computed.output_names, computed.features, strict=True))
        widths.extend([1] * len(computed.features))  # each output has its own status
        for f in computed.view.request_fields:
            if f.name not in keys:
                request_fields.setdefault(f.name, f.dtype)
    destination = config.destination
    path = Path(destination.path)
    return LogSpec(
        service=service.name,
        sample_rate=config.sample_rate,
        path=path if path.is_absolute() else Path(repo_path) / path,
        partition_by=tuple(destination.partition_columns),
        keys=tuple(keys.items()),
        features=tuple(features),
        view_widths=tuple(widths),
        request_fields=tuple(request_fields.items()),
    )


class LogSpecs:
    """`log_spec` of each service, computed once per registry version (a request only looks it up)."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._specs: dict[tuple[int, str], LogSpec | None] = {}
        self._lock = threading.Lock()

    def get(self, feature_service: str) -> LogSpec | None:
        key = (self._store.registry_snapshot().version, feature_service)
        try:
            return self._specs[key]
        except KeyError:
            pass
        spec = log_spec(self._store, feature_service)
        with self._lock:
            if len(self._specs) > 256:
                self._specs.clear()
            self._specs[key] = spec
        return spec
