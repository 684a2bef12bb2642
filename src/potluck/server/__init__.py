"""The HTTP feature server: Feast-compatible routes over a `ServingBackend`."""

from potluck.server.app import create_app
from potluck.server.backend import OnlineResult, Resource, ServingBackend
from potluck.server.settings import OidcSettings, ServerSettings

__all__ = ["OidcSettings", "OnlineResult", "Resource", "ServerSettings", "ServingBackend", "create_app"]
