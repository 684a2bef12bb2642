"""`ConflictPolicy` at Feast's import path `feast.labeling.conflict_policy`."""

from potluck.definitions.label_view import ConflictPolicy

__all__ = ["ConflictPolicy"]
