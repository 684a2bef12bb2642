"""OpenID Connect bearer tokens: signature (JWKS), issuer, audience and expiry, then roles and scopes.

The JWKS is cached for `jwks_cache_seconds`; a token naming a key id the cache lacks refetches it
(a provider rotating keys), at most once per `jwks_refetch_seconds`; after a failed fetch the keys
fetched before keep verifying, without another fetch for `jwks_refetch_seconds`. Fetches block, so the server
runs `signing_key` off the event loop; `cached_key` and `verify` only compute.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from potluck.definitions.errors import BackendUnavailableError, MissingExtraError
from potluck.server.auth.policy import ROLES, Principal, Scope, parse_scope
from potluck.server.settings import OidcSettings

_MAX_JWKS_BYTES = 1024 * 1024


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
        self._keys: dict[str | None, Any] = {}  # kid -> PyJWK
        self._fetched_at = float("-inf")  # when the cached set was fetched
        self._attempted_at = float("-inf")  # when a fetch was last tried
        self._lock = threading.Lock()
        self._issuer = settings.issuer
        self._jwks_url = settings.jwks_url  # with discovery_url: from its document, on the first fetch
        if settings.jwks_file is not None:
            self._keys = self._parse(Path(settings.jwks_file).read_text(encoding="utf-8"))
            self._fetched_at = float("inf")

    # -- keys
    def _parse(self, text: str) -> dict[str | None, Any]:
        jwt = self._jwt
        try:
            keyset = jwt.PyJWKSet.from_dict(json.loads(text))
        except (ValueError, TypeError, jwt.PyJWTError) as err:
            raise BackendUnavailableError(f"the identity provider's JWKS is not a usable key set: {err}") from None
        return {key.key_id: key for key in keyset.keys}

    def _kid(self, token: str) -> str | None:
        jwt = self._jwt
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed token")
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            raise InvalidToken(f"token algorithm {alg!r} is not accepted")
        return kid

    def _lookup(self, kid: str | None) -> Any:
        if kid is None:
            return next(iter(self._keys.values()), None) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def cached_key(self, token: str) -> Any:
        """The token's key from the cached JWKS; None when it must be fetched (call `signing_key`)."""
        kid = self._kid(token)
        now = time.monotonic()
        fresh = now - self._fetched_at < self.settings.jwks_cache_seconds
        key = self._lookup(kid)
        if key is not None and (fresh or self._lock.locked() or self._failed_recently(now)):
            return key  # a stale key verifies while a fetch runs, or after one just failed
        if fresh and now - self._attempted_at < self.settings.jwks_refetch_seconds:
            raise InvalidToken("token signed with an unknown key")
        if self.settings.jwks_file is not None:
            raise InvalidToken("token signed with an unknown key")
        return None

    def signing_key(self, token: str) -> Any:
        """The token's key, refetching the JWKS when it is stale or lacks the key id. Blocks."""
        kid = self._kid(token)
        key = self._lookup(kid)
        # One fetch at a time; a token whose key is cached (if stale) does not wait for it: with a
        # provider that hangs, every request would queue behind one fetch timeout after another.
        if not self._lock.acquire(blocking=key is None):
            return key
        try:
            now = time.monotonic()
            key = self._lookup(kid)
            fresh = now - self._fetched_at < self.settings.jwks_cache_seconds
            if key is not None and (fresh or self._failed_recently(now)):
                return key
            if (not fresh and not self._failed_recently(now)) or (
                now - self._attempted_at >= self.settings.jwks_refetch_seconds
            ):
                self._attempted_at = now
                try:
                    self._keys = self._fetch()
                    self._fetched_at = time.monotonic()
                except BackendUnavailableError:
                    if key is None:
                        raise
                    return key  # the provider is down: the key it served before still verifies
        finally:
            self._lock.release()
        key = self._lookup(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        return key

    def _failed_recently(self, now: float) -> bool:
        """The last fetch failed less than `jwks_refetch_seconds` ago (so the next one waits)."""
        return self._attempted_at > self._fetched_at and now - self._attempted_at < self.settings.jwks_refetch_seconds

    def _fetch(self) -> dict[str | None, Any]:
        if self._jwks_url is None:
            self._discover()
        assert self._jwks_url is not None
        return self._parse(self._get(self._jwks_url, "JWKS"))

    def _discover(self) -> None:
        """The JWKS URL (and, unless set, the issuer) from the provider's discovery document."""
        url = self.settings.discovery_url
        assert url is not None
        try:
            document = json.loads(self._get(url, "discovery document"))
        except ValueError:
            document = None
        jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
        issuer = document.get("issuer") if isinstance(document, dict) else None
        if not isinstance(jwks_uri, str) or not (self._issuer or isinstance(issuer, str)):
            raise BackendUnavailableError(
                f"the identity provider's discovery document at {url} names no jwks_uri and issuer"
            )
        self._issuer = self._issuer or issuer
        self._jwks_url = jwks_uri

    def _get(self, url: str, what: str) -> str:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            context = self._tls_context if url.lower().startswith("https:") else None
            with urllib.request.urlopen(
                request, timeout=self.settings.jwks_timeout_seconds, context=context
            ) as response:
                return str(response.read(_MAX_JWKS_BYTES).decode("utf-8"))
        except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts, bad encoding
            raise BackendUnavailableError(f"the identity provider's {what} cannot be fetched: {err}") from None

    @functools.cached_property
    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.ca_cert_file)
        if not self.settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    # -- claims
    def verify(self, token: str, key: Any) -> Principal:
        """The principal of `token`, checked against `key` (from `cached_key` or `signing_key`)."""
        jwt = self._jwt
        s = self.settings
        if self._issuer is None:  # keys come only with the discovery document, which names it
            raise InvalidToken("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=s.algorithms,
                audience=s.audience,
                issuer=self._issuer,
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
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("token algorithm does not match its key") from None
        except (jwt.PyJWTError, TypeError, ValueError, KeyError):  # a key of another type, a bad encoding
            raise InvalidToken("invalid token") from None
        roles = frozenset(r for path in s.roles_claims for r in _strings(_claim(claims, path)) if r in ROLES)
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
