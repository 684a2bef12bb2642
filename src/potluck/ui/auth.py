"""Who may see the UI: the feature server's credentials (API keys, OIDC tokens) with the reader role.

Browsers log in at /login by pasting a key or token; it is kept in an HttpOnly, SameSite=Strict
cookie and checked on every request exactly like an `Authorization: Bearer` header (which also
works, for the API).
"""

from __future__ import annotations

from starlette.requests import Request

from potluck.server.auth.authenticator import Authenticator, Blocking
from potluck.server.auth.keys import ApiKeyStore
from potluck.server.auth.policy import ANONYMOUS, Principal
from potluck.server.errors import ApiError
from potluck.server.settings import ServerSettings

COOKIE = "potluck_ui_credential"
ROLE = "reader"


def build_authenticator(settings: ServerSettings, keys: ApiKeyStore | None) -> Authenticator | None:
    """The authenticator when auth is on (the server's rule: on unless bound to loopback), else None."""
    from potluck.definitions.errors import ConfigError

    if not settings.auth_enabled:
        return None
    oidc = None
    if settings.oidc is not None:
        from potluck.server.auth.oidc import OidcVerifier

        oidc = OidcVerifier(settings.oidc)
    if keys is None and oidc is None:
        raise ConfigError("authentication is on but neither an API key store nor OIDC is configured")
    return Authenticator(keys, oidc)


class UiAuth:
    """Checks callers with `authenticator`; its blocking key lookups go through `blocking` (the
    server's "auth" offload pool, with its deadline)."""

    def __init__(self, authenticator: Authenticator | None, blocking: Blocking) -> None:
        self.authenticator = authenticator
        self.blocking = blocking

    @property
    def enabled(self) -> bool:
        return self.authenticator is not None

    async def check(self, credential: str) -> Principal:
        """The principal of a pasted key or token; ApiError 401/403 when it is not accepted."""
        return await self._principal({"authorization": f"Bearer {credential}"})

    async def principal(self, request: Request) -> Principal:
        """The caller of `request`: its Authorization/X-API-Key header, else the login cookie."""
        if self.authenticator is None:
            return ANONYMOUS
        headers: dict[str, str] = {}
        for name in ("authorization", "x-api-key"):
            if name in request.headers:
                headers[name] = request.headers[name]
        cookie = request.cookies.get(COOKIE)
        if not headers and cookie:
            headers["authorization"] = f"Bearer {cookie}"
        return await self._principal(headers)

    async def _principal(self, headers: dict[str, str]) -> Principal:
        if self.authenticator is None:
            return ANONYMOUS
        principal = await self.authenticator.authenticate(headers, self.blocking)
        if not principal.has_role(ROLE):
            raise ApiError(403, "forbidden", f"role '{ROLE}' required to read the UI", {"required_role": ROLE})
        return principal
