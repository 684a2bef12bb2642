"""Feast's `feast.infra` import paths, for the objects Potluck has."""
