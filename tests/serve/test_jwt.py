"""JWTs from an issuer whose keys the test serves on a local JWKS URL: signed tokens are
accepted with the claims mapped to an identity, anything else is a 401; the JWKS fetch is
cached, bounded and follows no redirect."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import socketio
from cryptography.hazmat.primitives.asymmetric import rsa
from serve_support import API, LiveServer

from runner.serve.jwks import JwksCache, JwksUnavailable, fetch_jwks
from runner.spec.models.auth import AuthConfig

ISSUER = "https://issuer.example/tenant/v2.0"
AUDIENCE = "api://runner"


class Issuer:
    """An OIDC issuer's JWKS endpoint on loopback, with a few ways to misbehave."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/keys")
                    self.end_headers()
                    return
                if self.path == "/huge":
                    body = b'{"keys": [' + b" " * 2_000_000 + b"]}"
                else:
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = json.dumps({"keys": [{**jwk, "kid": issuer.kid, "use": "sig"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def token(self, key: Any = None, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": now + 300,
            "iat": now,
            "oid": "user-oid-42",
            "groups": ["it-helpdesk"],
            "roles": ["chat:access", "operator"],
            **claims,
        }
        return jwt.encode(
            body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    yield found
    found.http.shutdown()


@pytest.fixture(scope="module")
def jwt_live(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[LiveServer]:
    auth = AuthConfig.model_validate(
        {
            "jwt": {
                "issuer": ISSUER,
                "audience": AUDIENCE,
                "jwks_url": issuer.url + "/keys",
                "claims": {"user_id": "oid", "workspaces": "groups", "permissions": "roles"},
            }
        }
    )
    server = LiveServer(tmp_path_factory.mktemp("jwt"), auth=auth).start()
    yield server
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_signed_token_is_an_identity(jwt_live: LiveServer, issuer: Issuer) -> None:
    with httpx.Client(base_url=jwt_live.url + API, headers=bearer(issuer.token())) as client:
        made = client.post("/sessions", json={"team": "service-desk"})
        assert made.status_code == 201
        assert made.json()["workspace_id"] == "it-helpdesk"
        assert client.get("/human-queue").status_code == 200  # roles -> operator
        assert client.get("/metrics").status_code == 403  # no metrics:read role
    other = issuer.token(groups=["elsewhere"])
    response = httpx.get(
        jwt_live.url + API + f"/sessions/{made.json()['id']}", headers=bearer(other)
    )
    assert response.status_code == 404


def test_bad_tokens_are_401(jwt_live: LiveServer, issuer: Issuer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "expired": issuer.token(exp=int(time.time()) - 3600),
        "audience": issuer.token(aud="api://someone-else"),
        "issuer": issuer.token(iss="https://evil.example"),
        "signature": issuer.token(key=stranger),
        "unknown kid": issuer.token(kid="key-unknown"),
        "hs256": _hs256_token(),
        "no user": issuer.token(oid=None),
    }
    for why, token in bad.items():
        response = httpx.get(jwt_live.url + API + "/sessions", headers=bearer(token))
        assert response.status_code == 401, why
        assert response.json()["error"]["code"] == "unauthenticated"
        assert token not in response.text


def _hs256_token() -> str:
    """A token whose header says HS256: refused for its algorithm before any key is used."""
    return jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "oid": "x"},
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": "key-1"},
    )


def test_keys_are_fetched_once_and_refetched_rarely(jwt_live: LiveServer, issuer: Issuer) -> None:
    for _ in range(5):
        httpx.get(jwt_live.url + API + "/sessions", headers=bearer(issuer.token()))
    fetched = issuer.requests
    for _ in range(5):
        httpx.get(jwt_live.url + API + "/sessions", headers=bearer(issuer.token(kid="rotated")))
    assert issuer.requests - fetched <= 1


async def test_socketio_takes_the_token_too(jwt_live: LiveServer, issuer: Issuer) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        jwt_live.url,
        namespaces=["/agent-lifecycle"],
        auth={"token": issuer.token()},
        transports=["websocket"],
        wait_timeout=5,
    )
    assert client.connected
    await client.disconnect()


def test_the_jwks_fetch_is_bounded_and_follows_no_redirect(issuer: Issuer) -> None:
    assert fetch_jwks(issuer.url + "/keys", timeout=5, max_bytes=65536)["keys"]
    with pytest.raises(JwksUnavailable, match="redirect"):
        fetch_jwks(issuer.url + "/redirect", timeout=5, max_bytes=65536)
    with pytest.raises(JwksUnavailable, match="larger than"):
        fetch_jwks(issuer.url + "/huge", timeout=5, max_bytes=1_000_000)
    with pytest.raises(JwksUnavailable):
        fetch_jwks("http://127.0.0.1:9/keys", timeout=1, max_bytes=65536)


async def test_a_failed_refresh_keeps_the_keys_held(issuer: Issuer) -> None:
    now = [0.0]
    calls: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        calls.append(url)
        if len(calls) > 1:
            raise JwksUnavailable("issuer down")
        return fetch_jwks(url, timeout=5, max_bytes=65536)

    cache = JwksCache(
        issuer.url + "/keys", ttl=60, timeout=5, max_bytes=65536, clock=lambda: now[0], fetch=fetch
    )
    first = await cache.key("key-1")
    now[0] = 120.0  # stale: refetch fails, the key held is still used
    assert (await cache.key("key-1")).key_id == first.key_id
    assert len(calls) == 2
    await asyncio.sleep(0)
