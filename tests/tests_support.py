"""Reaching the real servers the tests use: skipped off CI when unreachable, failing in CI."""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_HOST = os.environ.get("POTLUCK_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("POTLUCK_TEST_PG_PORT", "5432"))
POSTGRES_USER = os.environ.get("POTLUCK_TEST_PG_USER", "postgres")
REDIS_HOST = os.environ.get("POTLUCK_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("POTLUCK_TEST_REDIS_PORT", "6379"))


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Fail in CI, skip elsewhere, when a server a test needs is not running."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: real backends are required)")
    pytest.skip(f"{message}; start it to run this test")
