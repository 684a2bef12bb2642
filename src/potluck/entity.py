"""`Entity` at the import path Feast repositories use (`feast.entity`)."""

from potluck.definitions.entity import Entity

__all__ = ["Entity"]
