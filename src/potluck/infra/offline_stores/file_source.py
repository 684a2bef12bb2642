"""`FileSource` at the import path Feast repositories use (`feast.infra.offline_stores.file_source`)."""

from potluck.definitions.sources import FileSource

__all__ = ["FileSource"]
