"""`Field` at the import path Feast repositories use (`feast.field`)."""

from potluck.definitions.field import Field

__all__ = ["Field"]
