"""The `auth:` block of an Environment: who may call `runner serve`, as typed, strict models.

Role in the flow: configuration only (no network, no secret read), validated with every other
spec. `Environment.auth` holds it; `runner serve` reads it from the environment it serves, and
its authenticator (`runner.serve.authn`) resolves the `${VAR}` keys only when serve starts.

```yaml
auth:
  api_keys:
    - name: support-app
      key: ${SUPPORT_APP_KEY}        # a secret by reference, resolved only when serve starts
      workspaces: [workspace-123]    # or ["*"]
      permissions: [chat:access]
  jwt:
    issuer: https://login.microsoftonline.com/<tenant>/v2.0
    audience: api://runner
    jwks_url: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys
    claims: {user_id: oid, workspaces: groups, permissions: roles}
```

Invariants:
  - Unknown fields are errors, nothing is coerced silently (the spec models' `Strict` base).
  - A key is always a `${VAR}` reference (a literal key in a spec file would end up in git).
  - Every list and number is bounded; algorithms are asymmetric only (a JWKS holds public
    keys: HS* would let anyone who can read the JWKS sign tokens; `none` is never allowed).

No `from __future__ import annotations` here (see `base`).
"""

import ipaddress
import re
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from runner.spec.models.base import Duration, Strict, parse_duration
from runner.spec.vocabulary import ALL_WORKSPACES, PERMISSIONS, Permission

__all__ = [
    "ApiKeyConfig",
    "AuthConfig",
    "ClaimsMapping",
    "JwtConfig",
]

Algorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]

WorkspaceName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
ClaimPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^.\s]+(\.[^.\s]+){0,3}$",
        description="A claim name, or a dotted path into nested claims (at most 4 parts).",
    ),
]


def _rs256() -> list[Algorithm]:
    return ["RS256"]


_REFERENCE_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$")


def _workspaces_ok(value: list[str]) -> list[str]:
    if ALL_WORKSPACES in value and len(value) > 1:
        raise ValueError('"*" (every workspace) stands alone: write ["*"] or a list of names')
    if len(set(value)) != len(value):
        raise ValueError("a workspace is listed twice")
    return value


class ApiKeyConfig(Strict):
    """One API key: a name (shown as the caller's user id, never the key), the key by
    reference, and what it may do where."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")
    key: str = Field(
        min_length=4,
        max_length=300,
        description="A ${VAR} reference to the key; resolved only when serve starts.",
    )
    workspaces: list[WorkspaceName] = Field(min_length=1, max_length=256)
    permissions: list[Permission] = Field(min_length=1, max_length=len(PERMISSIONS))

    @field_validator("key")
    @classmethod
    def _key_is_a_reference(cls, value: str) -> str:
        if not _REFERENCE_ONLY.match(value):
            raise ValueError(
                "write the key as a reference to an environment variable, e.g. "
                "${SUPPORT_APP_KEY}: a literal key in a spec file would be committed"
            )
        return value

    @field_validator("workspaces")
    @classmethod
    def _workspaces(cls, value: list[str]) -> list[str]:
        return _workspaces_ok(value)


class ClaimsMapping(Strict):
    """Which claims of a token carry the user id, the workspaces and the permissions."""

    user_id: ClaimPath = "sub"
    workspaces: ClaimPath = "workspaces"
    permissions: ClaimPath = "permissions"


class JwtConfig(Strict):
    """Tokens from an OIDC issuer (Entra ID or any other), checked against its JWKS."""

    issuer: str = Field(min_length=1, max_length=500)
    audience: str | list[str] = Field(min_length=1)
    jwks_url: str = Field(min_length=1, max_length=2000)
    claims: ClaimsMapping = Field(default_factory=ClaimsMapping)
    algorithms: list[Algorithm] = Field(default_factory=_rs256, min_length=1)
    leeway: Duration = Field(default="30s", description="Clock skew allowed on exp/nbf/iat.")
    jwks_cache: Duration = Field(default="5m", description="How long fetched keys are kept.")
    jwks_timeout: Duration = Field(default="5s", description="Connect and read timeout.")
    jwks_max_bytes: int = Field(default=1_048_576, ge=1024, le=16_777_216)
    max_token_bytes: int = Field(default=16_384, ge=512, le=65_536)

    @field_validator("audience")
    @classmethod
    def _audience(cls, value: str | list[str]) -> str | list[str]:
        items = [value] if isinstance(value, str) else value
        if not 1 <= len(items) <= 32 or any(not a or len(a) > 500 for a in items):
            raise ValueError("audience: 1 to 32 non-empty values of at most 500 characters")
        return value

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value
        if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
            return value
        raise ValueError("jwks_url must be https:// (plain http:// only on loopback)")

    @model_validator(mode="after")
    def _bounded_durations(self) -> Self:
        bounds = {"leeway": (0, 300), "jwks_cache": (10, 86_400), "jwks_timeout": (0.1, 30)}
        for name, (low, high) in bounds.items():
            seconds = parse_duration(getattr(self, name))
            if not low <= seconds <= high:
                raise ValueError(f"{name}: between {low:g}s and {high:g}s")
        return self

    @property
    def leeway_s(self) -> float:
        return parse_duration(self.leeway)

    @property
    def jwks_cache_s(self) -> float:
        return parse_duration(self.jwks_cache)

    @property
    def jwks_timeout_s(self) -> float:
        return parse_duration(self.jwks_timeout)


class AuthConfig(Strict):
    """API keys, JWTs, or both."""

    api_keys: list[ApiKeyConfig] = Field(default_factory=list, max_length=1000)
    jwt: JwtConfig | None = None

    @model_validator(mode="after")
    def _something_declared(self) -> Self:
        if not self.api_keys and self.jwt is None:
            raise ValueError("declare api_keys, jwt or both (an empty auth block admits nobody)")
        names = [k.name for k in self.api_keys]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"api key names must be unique: {', '.join(dupes)}")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
