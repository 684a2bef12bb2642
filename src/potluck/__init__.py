"""Potluck: a feature store for machine learning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from potluck.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    ValueType,
)
from potluck.definitions.errors import PotluckError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from potluck.store import FeatureStore

__all__ = [
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "PotluckError",
    "PushSource",
    "ValueType",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # FeatureStore pulls in the engines; keep `import potluck` light for definition files.
    if name == "FeatureStore":
        from potluck.store import FeatureStore

        return FeatureStore
    raise AttributeError(f"module 'potluck' has no attribute {name!r}")
