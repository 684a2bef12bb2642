"""`FeatureStore` at the import path Feast code uses (`feast.feature_store`), loaded on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from potluck.store import FeatureStore

__all__ = ["FeatureStore"]


def __getattr__(name: str) -> Any:
    # The store pulls in the engines; importing this module alone stays light.
    if name == "FeatureStore":
        from potluck.store import FeatureStore

        return FeatureStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
