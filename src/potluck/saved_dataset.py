"""Saved datasets, at the import path Feast users know (`feast.saved_dataset`)."""

from potluck.definitions.saved_dataset import SavedDataset, SavedDatasetFileStorage, SavedDatasetStorage

__all__ = ["SavedDataset", "SavedDatasetFileStorage", "SavedDatasetStorage"]
