"""`ValueType` at the import path Feast repositories use (`feast.value_type`)."""

from potluck.definitions.types import ValueType

__all__ = ["ValueType"]
