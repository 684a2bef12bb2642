"""OIDC bearer tokens verified against a JWKS served over HTTP (and from a file)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from memory_backend import MemoryBackend
from server_support import serve

from potluck.server import OidcSettings, ServerSettings, create_app

ISSUER = "https://idp.example.test/realms/ml"
AUDIENCE = "potluck-server"
READ = {"features": ["driver_stats:trips"], "entities": {"driver_id": [1001]}}


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


class Idp:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks = {"keys": [_jwk(self.key, "k1")]}

    def token(self, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "realm_access": {"roles": ["reader"]},
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def idp() -> Idp:
    return Idp()


@contextmanager
def serve_jwks(body: Callable[[], bytes], routes: dict[str, Callable[[], bytes]] | None = None) -> Iterator[str]:
    """A key-set endpoint on loopback answering `body()` to every GET (`routes[path]()` for those
    paths); yields its URL, `http://127.0.0.1:PORT/certs`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = (routes or {}).get(self.path, body)()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/certs"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def jwks_url(idp: Idp) -> Iterator[str]:
    body = json.dumps(idp.jwks).encode()
    with serve_jwks(lambda: body) as url:
        yield url


@pytest.fixture(scope="module")
def url(jwks_url: str) -> Iterator[str]:
    oidc = OidcSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_url, roles_claim="realm_access.roles")
    app = create_app(MemoryBackend(), ServerSettings(auth="on", oidc=oidc))
    with serve(app) as base:
        yield base


def _read(url: str, token: str) -> httpx.Response:
    return httpx.post(url + "/get-online-features", json=READ, headers={"Authorization": f"Bearer {token}"})


def test_valid_token(url: str, idp: Idp) -> None:
    r = _read(url, idp.token())
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "token expired"),
        ({"aud": "someone-else"}, "token has the wrong audience"),
        ({"iss": "https://evil.example.test"}, "token has the wrong issuer"),
        ({"exp": None}, "invalid token"),
    ],
)
def test_rejected_tokens(url: str, idp: Idp, overrides: dict[str, Any], message: str) -> None:
    r = _read(url, idp.token(**overrides))
    assert r.status_code == 401, r.text
    assert r.json()["error"]["message"] == message
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_bad_signature(url: str, idp: Idp) -> None:
    r = _read(url, idp.token(key=idp.other))
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "token signature does not verify"
    tampered = idp.token()
    head, payload, sig = tampered.split(".")
    r = _read(url, f"{head}.{payload}.{sig[:-4]}AAAA")
    assert r.status_code == 401
    assert _read(url, "not.a.jwt").status_code == 401


def test_roles_and_scopes_from_claims(url: str, idp: Idp) -> None:
    push = {"push_source_name": "driver_push", "df": {"driver_id": [1]}}
    r = httpx.post(url + "/push", json=push, headers={"Authorization": f"Bearer {idp.token()}"})
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "role 'writer' required for POST /push"
    writer = idp.token(realm_access={"roles": ["writer", "unknown-role"]})
    r = httpx.post(url + "/push", json=push, headers={"Authorization": f"Bearer {writer}"})
    assert r.status_code == 200, r.text
    scoped = idp.token(potluck_scopes=["feature_view:merchant"])
    r = _read(url, scoped)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "token not allowed to read feature view 'driver_stats'"
    assert _read(url, idp.token(realm_access={"roles": []})).status_code == 403


def test_jwks_file(idp: Idp, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(idp.jwks))
    oidc = OidcSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=str(path), roles_claim="realm_access.roles")
    app = create_app(MemoryBackend(), ServerSettings(auth="on", oidc=oidc))
    with serve(app) as base:
        assert _read(base, idp.token()).status_code == 200
        assert _read(base, idp.token(key=idp.other)).status_code == 401


def test_unreachable_jwks_is_503(idp: Idp) -> None:
    from server_support import free_port

    oidc = OidcSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=f"http://127.0.0.1:{free_port()}/certs")
    app = create_app(MemoryBackend(), ServerSettings(auth="on", oidc=oidc))
    with serve(app) as base:
        r = _read(base, idp.token())
        assert r.status_code == 503
        assert r.json()["error"]["retryable"] is True


def test_feast_auth_discovery_url_finds_keys_and_issuer(idp: Idp, tmp_path: Path) -> None:
    """Feast's `auth: {type: oidc, auth_discovery_url, client_id}`: keys and issuer from the discovery
    document; roles from Keycloak's per-client claim and the top-level `roles` claim."""
    from potluck.repo.config import load_config

    jwks = json.dumps(idp.jwks).encode()
    discovery: dict[str, Any] = {}
    with serve_jwks(lambda: jwks, {"/.well-known/openid-configuration": lambda: json.dumps(discovery).encode()}) as url:
        discovery.update(issuer=ISSUER, jwks_uri=url)
        base_url = url.removesuffix("/certs")
        (tmp_path / "feature_store.yaml").write_text(
            "project: p\nauth:\n  type: oidc\n  client_id: feast-client\n"
            f"  auth_discovery_url: {base_url}/.well-known/openid-configuration\n  audience: {AUDIENCE}\n"
        )
        server = load_config(tmp_path).feature_server
        assert server is not None
        app = create_app(MemoryBackend(), server)
        with serve(app) as base:
            assert _read(base, idp.token(realm_access=None, roles=["reader"])).status_code == 200
            client_role = {"feast-client": {"roles": ["reader"]}}
            assert _read(base, idp.token(realm_access=None, resource_access=client_role)).status_code == 200
            assert _read(base, idp.token(realm_access=None)).status_code == 403  # no role
            assert _read(base, idp.token(iss="https://evil.example.test")).status_code == 401
            assert _read(base, idp.token(aud="someone-else")).status_code == 401


def test_oidc_settings_need_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        OidcSettings(issuer=ISSUER, audience=AUDIENCE)


class RotatingIdp:
    """An identity provider whose published JWKS the test changes, counting the fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.fetches = 0

    def publish(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def body(self) -> bytes:
        return json.dumps({"keys": [_jwk(k, kid) for kid, k in self.keys.items()]}).encode()

    def token(self, kid: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bob", "exp": now + 300, "realm_access": {"roles": ["reader"]}}
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def rotating() -> Iterator[tuple[RotatingIdp, str]]:
    provider = RotatingIdp()

    def body() -> bytes:
        provider.fetches += 1
        return provider.body()

    with serve_jwks(body) as url:
        yield provider, url


def test_token_with_another_algorithm_than_its_key_is_401(url: str, idp: Idp) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "eve", "exp": now + 300}
    ec_key = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "k1"})  # k1 is an RSA key
    r = _read(url, forged)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthenticated"
    hs = jwt.encode(claims, "secret-of-at-least-32-bytes-length!!", algorithm="HS256", headers={"kid": "k1"})
    assert _read(url, hs).status_code == 401


def test_newly_published_key_is_fetched_on_first_use(rotating: tuple[RotatingIdp, str]) -> None:
    provider, jwks = rotating
    oidc = OidcSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=jwks,
        roles_claim="realm_access.roles",
        jwks_cache_seconds=3600,
        jwks_refetch_seconds=3.0,  # wide enough that the 5 reads below fall in one window
    )
    app = create_app(MemoryBackend(), ServerSettings(auth="on", oidc=oidc))
    with serve(app) as base:
        assert _read(base, provider.token("k1")).status_code == 200
        assert provider.fetches == 1
        provider.publish("k2")
        time.sleep(3.1)
        r = _read(base, provider.token("k2"))
        assert r.status_code == 200, r.text  # refetched at once, not after the hour of cache
        assert provider.fetches == 2
        # an unknown key id refetches at most once per jwks_refetch_seconds
        provider.publish("k3")
        unknown = provider.token("k3")
        del provider.keys["k3"]
        time.sleep(3.1)
        statuses = [_read(base, unknown).status_code for _ in range(5)]
        assert statuses == [401] * 5
        assert provider.fetches == 3
        assert _read(base, provider.token("k1")).status_code == 200
        assert provider.fetches == 3


def test_hanging_jwks_after_the_cache_expired_keeps_the_known_key(idp: Idp) -> None:
    """A provider that hangs once the cache is stale: one fetch at a time, the known key verifies meanwhile."""
    body = json.dumps(idp.jwks).encode()
    hang = threading.Event()
    fetches = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(time.monotonic())
            if hang.is_set():
                time.sleep(10)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    oidc = OidcSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=f"http://127.0.0.1:{httpd.server_address[1]}/certs",
        roles_claim="realm_access.roles",
        jwks_cache_seconds=1,
        jwks_refetch_seconds=60,
        jwks_timeout_seconds=2,
    )
    app = create_app(MemoryBackend(), ServerSettings(auth="on", oidc=oidc, backend_timeout_seconds=4))
    try:
        with serve(app) as base:
            token = idp.token()
            assert _read(base, token).status_code == 200
            hang.set()
            time.sleep(1.5)  # the cache is stale now
            statuses: list[int] = []

            def read() -> None:
                statuses.append(_read(base, token).status_code)

            threads = [threading.Thread(target=read) for _ in range(24)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            # At most the request that fetches waits out the provider; the others verify with the key
            # fetched before instead of queueing behind one fetch timeout after another.
            assert statuses.count(200) >= 23, statuses
            assert len(fetches) == 2  # the first fetch, then one attempt: a failure is not retried at once
            after = [_read(base, token).status_code for _ in range(3)]
            assert after == [200, 200, 200]
            assert len(fetches) == 2
    finally:
        httpd.shutdown()
        httpd.server_close()
