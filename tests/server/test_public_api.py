"""The public names of the server and client modules exist and nothing else is advertised."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["potluck.server", "potluck.server.auth", "potluck.client"])
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__, key=lambda n: (not n.isupper(), n))
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


@pytest.mark.parametrize("module", ["app", "backend", "openapi", "schemas", "errors", "metrics", "limits"])
def test_http_layer_does_not_import_the_store(module: str) -> None:
    source = importlib.import_module(f"potluck.server.{module}").__file__
    assert source is not None
    with open(source, encoding="utf-8") as f:
        text = f.read()
    assert "potluck.store" not in text
    assert "fastapi" not in text
