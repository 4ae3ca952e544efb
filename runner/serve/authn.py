"""Authentication: a bearer token (API key or JWT) -> the caller (an `AuthContext`).

Role: the first thing every REST call and every Socket.io connection goes through. Built once
when serve starts, from the environment's `auth:` block (`Authenticator.from_config`, which
resolves the `${VAR}` keys then) or, with no `auth:` declared, from one random key with every
permission (`Authenticator.generated`, Jupyter's pattern; serve then binds loopback only).

Invariants:
  - API keys are held as SHA-256 digests and compared with `hmac.compare_digest` against every
    configured key (no early exit), so timing tells nothing about a key. Keys and tokens are
    never logged or put in an error message; a key shorter than 16 characters is refused at
    start.
  - JWTs: the algorithm must be one the config allows (never `none`, never HS*), the key comes
    from the issuer's JWKS by `kid`, `exp`, `iss` and `aud` are required and checked with the
    configured leeway. Claims are read through the configured mapping, each list bounded.
  - Every failure is `Unauthenticated` (401) with a reason that names no secret; an issuer
    whose keys cannot be fetched is `JwksUnavailable` (503).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from runner.runtime.auth import AuthContext
from runner.serve.identity import caller_of
from runner.serve.jwks import JwksCache, UnknownKey
from runner.spec.models.auth import AuthConfig, JwtConfig
from runner.spec.secrets import MissingSecretError, SecretSyntaxError, resolve
from runner.spec.vocabulary import ALL_WORKSPACES, PERMISSIONS

__all__ = ["AuthSetupError", "Authenticator", "Unauthenticated"]

MIN_KEY_LENGTH = 16
MAX_CLAIM_ITEMS = 256
MAX_CLAIM_TEXT = 256
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class Unauthenticated(Exception):
    """No credentials, or credentials that do not check out (401)."""


class AuthSetupError(Exception):
    """The `auth:` block cannot be used (a key's variable is unset or too short)."""


@dataclass(frozen=True, slots=True)
class _Key:
    digest: bytes
    caller: AuthContext


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class Authenticator:
    def __init__(self, keys: Sequence[_Key], jwt_config: JwtConfig | None = None) -> None:
        self._keys = tuple(keys)
        self._jwt = jwt_config
        self._jwks = (
            None
            if jwt_config is None
            else JwksCache(
                jwt_config.jwks_url,
                ttl=jwt_config.jwks_cache_s,
                timeout=jwt_config.jwks_timeout_s,
                max_bytes=jwt_config.jwks_max_bytes,
            )
        )
        self.max_token_bytes = 16_384 if jwt_config is None else jwt_config.max_token_bytes

    @classmethod
    def from_config(cls, config: AuthConfig, environ: Mapping[str, str]) -> Authenticator:
        """Resolve every key now (serve is starting); AuthSetupError naming key and variable."""
        keys: list[_Key] = []
        for entry in config.api_keys:
            where = f"auth.api_keys[{entry.name}].key"
            try:
                value = resolve(entry.key, environ, address=where)
            except (MissingSecretError, SecretSyntaxError) as exc:
                raise AuthSetupError(str(exc)) from None
            if len(value) < MIN_KEY_LENGTH:
                raise AuthSetupError(
                    f"{where}: the key is shorter than {MIN_KEY_LENGTH} characters; use a "
                    "random one, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
                )
            keys.append(
                _Key(_digest(value), caller_of(entry.name, entry.workspaces, entry.permissions))
            )
        return cls(keys, config.jwt)

    @classmethod
    def generated(
        cls, user_id: str = "local-admin", *, key: str | None = None
    ) -> tuple[Authenticator, str]:
        """One random key (or `key`: the one the workers of `--workers` share) with every
        permission in every workspace, and the key."""
        key = key or secrets.token_urlsafe(32)
        return cls([_Key(_digest(key), caller_of(user_id, [ALL_WORKSPACES], PERMISSIONS))]), key

    async def authenticate(self, token: str | None) -> AuthContext:
        if not token:
            raise Unauthenticated("no credentials: send Authorization: Bearer <key or token>")
        if len(token) > self.max_token_bytes:
            raise Unauthenticated("the credentials are too long")
        found = self._match_key(token)
        if found is not None:
            return found
        if self._jwt is not None and _JWT_SHAPE.match(token):
            return await self._verify_jwt(token, self._jwt)
        raise Unauthenticated("the key or token is not valid")

    def _match_key(self, token: str) -> AuthContext | None:
        digest = _digest(token)
        found: AuthContext | None = None
        for key in self._keys:  # every key, always: no early exit
            if hmac.compare_digest(digest, key.digest):
                found = key.caller
        return found

    async def _verify_jwt(self, token: str, config: JwtConfig) -> AuthContext:
        assert self._jwks is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the token is not a well-formed JWT") from None
        if header.get("alg") not in config.algorithms:
            raise Unauthenticated("the token's algorithm is not allowed")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_CLAIM_TEXT):
            raise Unauthenticated("the token's key id is not valid")
        try:
            key = await self._jwks.key(kid)
        except UnknownKey as exc:
            raise Unauthenticated(str(exc)) from None
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token was refused: {exc}") from None
        mapping = config.claims
        user = _claim(claims, mapping.user_id)
        if not isinstance(user, str | int) or not str(user) or len(str(user)) > MAX_CLAIM_TEXT:
            raise Unauthenticated(f"the token has no usable {mapping.user_id!r} claim")
        return caller_of(
            str(user),
            _claim_list(claims, mapping.workspaces),
            _claim_list(claims, mapping.permissions),
        )


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _claim_list(claims: Mapping[str, Any], path: str) -> list[str]:
    """A claim as a list of strings: a list, or one string of space-separated values."""
    value = _claim(claims, path)
    if value is None:
        return []
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_CLAIM_ITEMS:
        raise Unauthenticated(f"the token's {path!r} claim is not a list of at most 256 values")
    if not all(isinstance(i, str) and 0 < len(i) <= MAX_CLAIM_TEXT for i in items):
        raise Unauthenticated(f"the token's {path!r} claim holds a value that is not a name")
    return list(items)
