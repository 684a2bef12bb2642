"""The HTTP feature server: Feast-compatible routes over a `ServingBackend`.

Names are loaded on first use so that reading `feature_store.yaml` (which validates the
`feature_server:` section) does not import the web framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from potluck.server.app import create_app
    from potluck.server.backend import OnlineResult, Resource, ServingBackend
    from potluck.server.settings import OidcSettings, ServerSettings

_EXPORTS = {
    "create_app": "potluck.server.app",
    "OnlineResult": "potluck.server.backend",
    "Resource": "potluck.server.backend",
    "ServingBackend": "potluck.server.backend",
    "OidcSettings": "potluck.server.settings",
    "ServerSettings": "potluck.server.settings",
}

__all__ = ["OidcSettings", "OnlineResult", "Resource", "ServerSettings", "ServingBackend", "create_app"]


def __getattr__(name: str) -> Any:
    import importlib

    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'potluck.server' has no attribute {name!r}")
