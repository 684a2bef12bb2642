"""From request headers to a `Principal`, or a 401."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from potluck.server.auth.keys import PREFIX, ApiKeyStore
from potluck.server.auth.oidc import InvalidToken, OidcVerifier
from potluck.server.auth.policy import Principal
from potluck.server.errors import ApiError

_CHALLENGE = 'Bearer realm="potluck"'
# Runs a blocking call (a key lookup in the registry database, a JWKS fetch) off the event loop.
Blocking = Callable[..., Awaitable[Any]]


def unauthorized(message: str, invalid_token: bool = False) -> ApiError:
    challenge = _CHALLENGE + (', error="invalid_token"' if invalid_token else "")
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": challenge})


def _credential(headers: Mapping[str, str]) -> str:
    credential = headers.get("x-api-key")
    authorization = headers.get("authorization")
    if credential is None and authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("use 'Authorization: Bearer <key or token>' or the X-API-Key header")
        credential = value.strip()
    if not credential:
        raise unauthorized("credentials required: send an API key or a bearer token")
    return credential


def has_credentials(headers: Mapping[str, str]) -> bool:
    return "x-api-key" in headers or "authorization" in headers


class Authenticator:
    """API keys (`Authorization: Bearer pk_...` or `X-API-Key`) and, optionally, OIDC bearer tokens.

    Cached answers are given on the event loop; lookups that need the registry database or the
    identity provider run through `blocking`.
    """

    def __init__(self, keys: ApiKeyStore | None, oidc: OidcVerifier | None = None) -> None:
        self.keys = keys
        self.oidc = oidc

    async def authenticate(self, headers: Mapping[str, str], blocking: Blocking) -> Principal:
        credential = _credential(headers)
        if credential.startswith(PREFIX) or self.oidc is None:
            principal: Principal | None = None
            if self.keys is not None:
                hit = self.keys.cached(credential)
                principal = hit[0] if hit is not None else await blocking(self.keys.verify, credential)
            if principal is None:
                raise unauthorized("invalid or revoked API key", invalid_token=True)
            return principal
        oidc = self.oidc
        try:
            key = oidc.cached_key(credential)
            if key is None:
                key = await blocking(oidc.signing_key, credential)
            return oidc.verify(credential, key)
        except InvalidToken as err:
            raise unauthorized(str(err), invalid_token=True) from None
