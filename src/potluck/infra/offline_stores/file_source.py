"""File sources and the file logging destination (`feast.infra.offline_stores.file_source`)."""

from potluck.definitions.feature_logging import FileLoggingDestination
from potluck.definitions.sources import FileSource

__all__ = ["FileLoggingDestination", "FileSource"]
