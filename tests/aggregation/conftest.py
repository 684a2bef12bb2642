"""The contract tests of tests/aggregation that take `store` run on every offline engine (tests/offline_engines.py)."""

from offline_engines import offline_engine, store

__all__ = ["offline_engine", "store"]
