"""Windowed aggregations: the window rule, mergeable partial aggregates, and the offline plan.

`potluck.aggregation.Aggregation` is the declaration (Feast's import path); it is loaded lazily
because the definitions themselves import the rule from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from potluck.definitions.aggregation import Aggregation

__all__ = ["Aggregation"]


def __getattr__(name: str) -> Any:
    if name == "Aggregation":
        from potluck.definitions.aggregation import Aggregation

        return Aggregation
    raise AttributeError(f"module 'potluck.aggregation' has no attribute {name!r}")
