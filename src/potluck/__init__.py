"""Potluck: a feature store for machine learning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from potluck.definitions import (
    Aggregation,
    BatchFeatureView,
    ConflictPolicy,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    KafkaSource,
    LabelView,
    OnDemandFeatureView,
    PostgreSQLSource,
    Project,
    PushSource,
    RedisStreamSource,
    RequestSource,
    StreamFeatureView,
    ValueType,
)
from potluck.definitions.errors import PotluckError

# Loaded here, as a submodule, before the name is bound to the decorator: a later
# `import potluck.on_demand_feature_view` (Feast's import path) then leaves the decorator in place.
from potluck.on_demand_feature_view import on_demand_feature_view
from potluck.stream_feature_view import stream_feature_view

__version__ = "0.1.0"

if TYPE_CHECKING:
    from potluck.client import Client
    from potluck.repo.config import RepoConfig
    from potluck.store import FeatureStore
    from potluck.streaming.push import PushMode

__all__ = [
    "Aggregation",
    "BatchFeatureView",
    "Client",
    "ConflictPolicy",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "LabelView",
    "KafkaSource",
    "OnDemandFeatureView",
    "PostgreSQLSource",
    "PotluckError",
    "Project",
    "PushMode",
    "PushSource",
    "RedisStreamSource",
    "RequestSource",
    "RepoConfig",
    "StreamFeatureView",
    "ValueType",
    "__version__",
    "on_demand_feature_view",
    "stream_feature_view",
]


_LAZY = {
    "FeatureStore": "potluck.store",
    "Client": "potluck.client",
    "PushMode": "potluck.streaming.push",
    "RepoConfig": "potluck.repo.config",
}


def __getattr__(name: str) -> Any:
    # These pull in engines and HTTP clients; keep `import potluck` light for definition files.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'potluck' has no attribute {name!r}")
