"""Modules at the import paths of Feast's `feast.infra.offline_stores.contrib` package."""
