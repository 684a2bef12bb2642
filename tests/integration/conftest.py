"""Fixtures of the end-to-end tests: a feature repository on each online store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_support import _drop_postgres_schema, _require, build_repo

from dynamodb_support import DUMMY_CREDENTIALS, moto_server  # noqa: F401  (the session fixture)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def online_kind(request: pytest.FixtureRequest) -> str:
    """The online store of the test's repositories ("dynamodb": a moto server, given by a test's own parameters)."""
    _require(request.param)
    return str(request.param)


@pytest.fixture
def repo_factory(
    tmp_path: Path, online_kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    """Builds repositories on the test's online store; tears each down afterwards."""
    from potluck import FeatureStore

    made: list[Path] = []
    endpoint = None
    if online_kind == "dynamodb":
        endpoint = request.getfixturevalue("moto_server")
        for key, value in DUMMY_CREDENTIALS.items():
            monkeypatch.setenv(key, value)

    def make(name: str = "repo") -> Path:
        root = build_repo(tmp_path / name, online_kind, endpoint)
        made.append(root)
        return root

    yield make
    for root in made:
        store = FeatureStore(repo_path=root)
        try:
            store.teardown()
        finally:
            store.close()
        if online_kind == "postgres":
            _drop_postgres_schema(root)
