"""File sources, the file logging destination and saved dataset storage (`feast.infra.offline_stores.file_source`)."""

from potluck.definitions.feature_logging import FileLoggingDestination
from potluck.definitions.saved_dataset import SavedDatasetFileStorage
from potluck.definitions.sources import FileSource

__all__ = ["FileLoggingDestination", "FileSource", "SavedDatasetFileStorage"]
