"""Label views and their conflict policies, at the import path Feast repositories use (`feast.labeling`)."""

from potluck.definitions.label_view import ConflictPolicy, LabelView

__all__ = ["ConflictPolicy", "LabelView"]
