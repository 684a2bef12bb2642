"""OpenID Connect bearer tokens: signature (JWKS), issuer, audience and expiry, then roles and scopes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from potluck.definitions.errors import BackendUnavailableError, MissingExtraError
from potluck.server.auth.policy import ROLES, Principal, Scope, parse_scope
from potluck.server.settings import OidcSettings


class InvalidToken(Exception):
    """A token that does not verify; the message is safe to show the client."""


class OidcVerifier:
    def __init__(self, settings: OidcSettings) -> None:
        try:
            import jwt
        except ImportError:
            raise MissingExtraError("pyjwt", "server") from None
        self._jwt = jwt
        self.settings = settings
        self._client: Any = None
        self._keyset: Any = None
        if settings.jwks_url:
            self._client = jwt.PyJWKClient(
                settings.jwks_url, cache_keys=True, lifespan=settings.jwks_cache_seconds, timeout=5
            )
        else:
            assert settings.jwks_file is not None
            self._keyset = jwt.PyJWKSet.from_dict(json.loads(Path(settings.jwks_file).read_text(encoding="utf-8")))

    def _signing_key(self, token: str) -> Any:
        jwt = self._jwt
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError:
                raise BackendUnavailableError("the identity provider's JWKS cannot be fetched") from None
            except jwt.PyJWTError:
                raise InvalidToken("token signed with an unknown key") from None
        kid = header.get("kid")
        for key in self._keyset.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise InvalidToken("token signed with an unknown key")

    def verify(self, token: str) -> Principal:
        jwt = self._jwt
        s = self.settings
        key = self._signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=s.algorithms,
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token has the wrong audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token has the wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("token signature does not verify") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        roles = frozenset(r for r in _strings(_claim(claims, s.roles_claim)) if r in ROLES)
        scopes: tuple[Scope, ...] | None = None
        if s.scopes_claim and _claim(claims, s.scopes_claim) is not None:
            try:
                scopes = tuple(parse_scope(x) for x in _strings(_claim(claims, s.scopes_claim)))
            except ValueError as err:
                raise InvalidToken(f"token scopes: {err}") from None
        subject = str(claims.get("preferred_username") or claims.get("sub") or "unknown")
        return Principal(actor=f"oidc:{subject}", roles=roles, scopes=scopes)


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
