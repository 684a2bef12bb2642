"""The contract tests of tests/offline run on every offline engine (tests/offline_engines.py)."""

from offline_engines import offline_engine, store

__all__ = ["offline_engine", "store"]
