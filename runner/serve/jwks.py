"""The issuer's signing keys (JWKS), fetched with bounds and kept for a while.

Role: used by the JWT verifier (`runner.serve.authn`) to find the public key a token names
(`kid`). PyJWT's own `PyJWKClient` follows redirects and reads bodies of any size; this one
does neither, so it fetches with the standard library and hands the document to PyJWT's
`PyJWKSet`.

Invariants:
  - A fetch has a timeout, reads at most `max_bytes`, follows no redirect (a 3xx is an error:
    keys are never taken from wherever a redirect points) and accepts at most 100 keys.
  - Keys are kept for `ttl` seconds; a token naming an unknown `kid` (key rotation) triggers a
    refetch at most once every `min_refetch` seconds, so bad tokens cannot make the server
    hammer the issuer. Concurrent misses share one fetch.
  - When a refetch fails, the keys held are kept and used; with none held, `JwksUnavailable`.
  - Fetches run in a worker thread: the event loop never blocks on the issuer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt

__all__ = ["JwksCache", "JwksUnavailable", "UnknownKey", "fetch_jwks"]

log = logging.getLogger("runner.serve.jwks")

MAX_KEYS = 100


class JwksUnavailable(Exception):
    """The issuer's keys cannot be had now (503)."""


class UnknownKey(Exception):
    """The token names a key the issuer does not publish (401)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect refused ({code})", headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch_jwks(url: str, *, timeout: float, max_bytes: int) -> dict[str, Any]:
    """The JWKS document at `url` (bounded, no redirects); JwksUnavailable on any failure."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise JwksUnavailable(f"could not fetch the JWKS from {url}: {exc}") from None
    if len(body) > max_bytes:
        raise JwksUnavailable(f"the JWKS at {url} is larger than {max_bytes} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        raise JwksUnavailable(f"the JWKS at {url} is not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or len(keys) > MAX_KEYS:
        raise JwksUnavailable(f"the JWKS at {url} has no 'keys' list of at most {MAX_KEYS}")
    return {"keys": keys}


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        timeout: float,
        max_bytes: int,
        min_refetch: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refetch = min_refetch
        self._clock = clock
        self._fetch = fetch or (lambda u: fetch_jwks(u, timeout=timeout, max_bytes=max_bytes))
        self._keys: dict[str, jwt.PyJWK] = {}
        self._unnamed: list[jwt.PyJWK] = []
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self.ttl

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        every = [*self._keys.values(), *self._unnamed]
        return every[0] if len(every) == 1 else None

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The signing key `kid` (None: the only key published)."""
        found = self._lookup(kid)
        if found is not None and self._fresh():
            return found
        async with self._lock:
            found = self._lookup(kid)
            recently = (
                self._fetched_at is not None and self._clock() - self._fetched_at < self.min_refetch
            )
            if found is not None and self._fresh():
                return found
            if not recently or not self._fresh():
                await self._refresh()
            found = self._lookup(kid)
        if found is None:
            raise UnknownKey(f"the token's key {kid!r} is not in the issuer's JWKS")
        return found

    async def _refresh(self) -> None:
        try:
            document = await asyncio.to_thread(self._fetch, self.url)
            key_set = jwt.PyJWKSet.from_dict(document)
        except (JwksUnavailable, jwt.PyJWKSetError, jwt.InvalidKeyError) as exc:
            if self._fetched_at is None:
                raise JwksUnavailable(str(exc)) from None
            log.warning("JWKS refresh failed, keeping the keys held: %s", exc)
            self._fetched_at = self._clock()  # retry after min_refetch, not on every token
            return
        finally:
            self.fetches += 1
        self._keys = {k.key_id: k for k in key_set.keys if k.key_id}
        self._unnamed = [k for k in key_set.keys if not k.key_id]
        self._fetched_at = self._clock()
