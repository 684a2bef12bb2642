"""A real `moto_server` (the DynamoDB emulator) on a loopback port, for the DynamoDB online store's tests.

Credentials are dummies, given to the store's client only (never put in this process's environment).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def _unreachable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_installed() -> bool:
    try:
        import moto.moto_server.werkzeug_app  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto server started for this test session (stopped at its end).

    It is moto_server serving one request at a time (`moto_serial_server.py` says why).
    """
    if not _moto_installed():
        _unreachable("moto is not installed (pip install 'moto[server,dynamodb]', in the dev extra)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    script = Path(__file__).with_name("moto_serial_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _unreachable(f"moto_server did not start on {url}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def dummy_credentials() -> Iterator[None]:
    """Dummy AWS credentials in the environment while a client is built (botocore reads them then)."""
    saved = {k: os.environ.get(k) for k in DUMMY_CREDENTIALS}
    os.environ.update(DUMMY_CREDENTIALS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dynamodb_spec(endpoint: str, **extra: Any) -> dict[str, Any]:
    """A store spec whose tables all start with a prefix of its own (dropped by `drop_tables`)."""
    prefix = "t" + uuid.uuid4().hex[:10]
    return {
        "region": REGION,
        "endpoint_url": endpoint,
        "table_name_template": prefix + ".{project}.{table_name}",
        **extra,
    }


def build_dynamodb_store(spec: dict[str, Any]) -> Any:
    from potluck.online.dynamodb import DynamoDBOnlineStore
    from potluck.online.dynamodb_config import DynamoDBOnlineStoreConfig

    with dummy_credentials():
        return DynamoDBOnlineStore(DynamoDBOnlineStoreConfig(type="dynamodb", **spec))


@functools.cache
def client(endpoint: str) -> Any:
    """A plain boto3 client of the emulator (built once per endpoint: building one takes a while)."""
    import boto3

    with dummy_credentials():
        return boto3.session.Session().client("dynamodb", region_name=REGION, endpoint_url=endpoint)


def table_names(endpoint: str, prefix: str) -> list[str]:
    names: list[str] = []
    for page in client(endpoint).get_paginator("list_tables").paginate():
        names += [n for n in page["TableNames"] if n.startswith(prefix)]
    return names


def drop_tables(spec: dict[str, Any]) -> None:
    """Delete the tables a test made (by its spec's prefix)."""
    prefix = spec["table_name_template"].split(".", 1)[0] + "."
    for name in table_names(spec["endpoint_url"], prefix):
        client(spec["endpoint_url"]).delete_table(TableName=name)
