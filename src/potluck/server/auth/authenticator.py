"""From request headers to a `Principal`, or a 401."""

from __future__ import annotations

from collections.abc import Mapping

from potluck.server.auth.keys import PREFIX, ApiKeyStore
from potluck.server.auth.oidc import InvalidToken, OidcVerifier
from potluck.server.auth.policy import Principal
from potluck.server.errors import ApiError

_CHALLENGE = 'Bearer realm="potluck"'


def unauthorized(message: str, invalid_token: bool = False) -> ApiError:
    challenge = _CHALLENGE + (', error="invalid_token"' if invalid_token else "")
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": challenge})


class Authenticator:
    """API keys (`Authorization: Bearer pk_...` or `X-API-Key`) and, optionally, OIDC bearer tokens."""

    def __init__(self, keys: ApiKeyStore | None, oidc: OidcVerifier | None = None) -> None:
        self.keys = keys
        self.oidc = oidc

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        credential = headers.get("x-api-key")
        authorization = headers.get("authorization")
        if credential is None and authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise unauthorized("use 'Authorization: Bearer <key or token>' or the X-API-Key header")
            credential = value.strip()
        if not credential:
            raise unauthorized("credentials required: send an API key or a bearer token")
        if credential.startswith(PREFIX) or self.oidc is None:
            principal = self.keys.verify(credential) if self.keys is not None else None
            if principal is None:
                raise unauthorized("invalid or revoked API key", invalid_token=True)
            return principal
        try:
            return self.oidc.verify(credential)
        except InvalidToken as err:
            raise unauthorized(str(err), invalid_token=True) from None
