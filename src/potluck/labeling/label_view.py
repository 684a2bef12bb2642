"""`LabelView` at Feast's import path `feast.labeling.label_view`."""

from potluck.definitions.label_view import LabelView

__all__ = ["LabelView"]
