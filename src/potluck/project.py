"""`Project` at the import path Feast repositories use (`feast.project`)."""

from potluck.definitions.project import Project

__all__ = ["Project"]
