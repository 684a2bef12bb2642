"""Feast's `feast.infra.offline_stores` import paths, for the objects Potluck has."""
