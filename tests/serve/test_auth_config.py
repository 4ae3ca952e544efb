"""The `auth:` block's model: strict, bounded, keys by reference only, and what the
authenticator makes of it when serve starts (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from runner.serve.authn import Authenticator, AuthSetupError, Unauthenticated
from runner.spec.models.auth import AuthConfig

KEY = {"name": "app", "key": "${APP_KEY}", "workspaces": ["w1"], "permissions": ["chat:access"]}
JWT = {"issuer": "https://i.example", "audience": "api://runner", "jwks_url": "https://i.example/k"}


def problems(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        AuthConfig.model_validate(body)
    return str(raised.value)


def test_a_valid_block_and_its_defaults() -> None:
    config = AuthConfig.model_validate({"api_keys": [KEY], "jwt": JWT})
    assert config.jwt is not None and config.jwt.algorithms == ["RS256"]
    assert config.jwt.claims.user_id == "sub" and config.jwt.leeway_s == 30


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "declare api_keys, jwt or both"),
        ({"api_keys": [{**KEY, "key": "a-literal-key-in-the-spec"}]}, "reference"),
        ({"api_keys": [{**KEY, "workspaces": ["*", "w1"]}]}, "stands alone"),
        ({"api_keys": [{**KEY, "permissions": ["root"]}]}, "chat:access"),
        ({"api_keys": [KEY, KEY]}, "unique"),
        ({"api_keys": [KEY], "extra": 1}, "Extra inputs"),
        ({"jwt": {**JWT, "algorithms": ["HS256"]}}, "RS256"),
        ({"jwt": {**JWT, "jwks_url": "http://keys.example/k"}}, "https"),
        ({"jwt": {**JWT, "leeway": "1h"}}, "leeway"),
        ({"jwt": {**JWT, "claims": {"user_id": "a.b.c.d.e"}}}, "user_id"),
    ],
)
def test_bad_blocks_say_what_is_wrong(body: dict[str, Any], says: str) -> None:
    assert says in problems(body)


def test_a_literal_key_is_not_echoed_in_the_message_the_cli_prints() -> None:
    with pytest.raises(ValidationError) as raised:
        AuthConfig.model_validate({"api_keys": [{**KEY, "key": "sekrit-sekrit-sekrit"}]})
    shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in raised.value.errors())
    assert "sekrit" not in shown


async def test_keys_resolve_at_start_and_match_in_constant_time() -> None:
    config = AuthConfig.model_validate({"api_keys": [KEY]})
    with pytest.raises(AuthSetupError, match="APP_KEY"):
        Authenticator.from_config(config, {})
    with pytest.raises(AuthSetupError, match="shorter than 16"):
        Authenticator.from_config(config, {"APP_KEY": "short"})
    authenticator = Authenticator.from_config(config, {"APP_KEY": "k" * 32})
    identity = await authenticator.authenticate("k" * 32)
    assert identity.user_id == "app" and identity.covers("w1") and not identity.covers("w2")
    for bad in (None, "", "k" * 31, "k" * 33):
        with pytest.raises(Unauthenticated):
            await authenticator.authenticate(bad)
