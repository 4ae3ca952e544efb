"""Providers: where plan/apply and the runtime meet an agent service.

`build_provider(env)` is the one factory: `local` -> `LocalProvider` on the environment's SQLite
store, `foundry` -> `FoundryProvider` on the environment's endpoint. `${VAR}` / `${VAR:-default}`
references in the endpoint (and data_dir) are resolved here with `runner.spec.secrets.resolve`, at
the moment the provider is built, never earlier (so `runner validate` needs no secrets).

Invariant: importing this package never imports `azure.*` (nor the local store); each provider
module is imported only when it is built, so `runner validate` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runner.paths import local_store_path
from runner.providers.base import (
    AgentVersion,
    ConversationMessage,
    NotFoundError,
    Provider,
    ProviderError,
    Reply,
    TextSink,
    ToolCall,
    ToolOutput,
    TransientError,
)

if TYPE_CHECKING:
    from runner.spec.models import Environment

__all__ = [
    "AgentVersion",
    "ConversationMessage",
    "NotFoundError",
    "Provider",
    "ProviderError",
    "Reply",
    "TextSink",
    "ToolCall",
    "ToolOutput",
    "TransientError",
    "build_provider",
]


def _resolve(text: str, environ: Mapping[str, str], *, env_name: str, field: str) -> str:
    """Resolve `${VAR}` / `${VAR:-default}` in one value of the environment, or explain why not."""
    from runner.spec.secrets import MissingSecretError, SecretSyntaxError, resolve

    try:
        return resolve(text, environ, address=f"environment.{env_name}")
    except MissingSecretError as exc:
        raise ProviderError(
            f"environment {env_name!r}: {field} refers to ${{{exc.name}}}, but {exc}",
            code="configuration",
        ) from None
    except SecretSyntaxError as exc:
        raise ProviderError(
            f"environment {env_name!r}: {field}: {exc}", code="configuration"
        ) from None


def build_provider(
    env: Environment, *, environ: Mapping[str, str] | None = None, read_only: bool = False
) -> Provider:
    """The provider for `env`, ready to use; the caller closes it. `read_only` (plan): the local
    provider creates and writes nothing (Foundry is only ever read by a plan anyway).

    ProviderError (code `configuration`) when the endpoint names an unset variable or is not
    usable (e.g. plain http to a non-loopback host).
    """
    environ = os.environ if environ is None else environ
    if env.provider == "local":
        from runner.providers.local import LocalProvider

        data_dir = env.data_dir
        if data_dir is not None:
            data_dir = _resolve(data_dir, environ, env_name=env.name, field="data_dir")
        return LocalProvider.open(local_store_path(data_dir), read_only=read_only)
    if not env.endpoint:
        raise ProviderError(
            f"environment {env.name!r}: a foundry environment needs 'endpoint'",
            code="configuration",
        )
    endpoint = _resolve(env.endpoint, environ, env_name=env.name, field="endpoint").strip()
    from runner.providers.foundry import FoundryProvider

    return FoundryProvider(endpoint, preview_features=env.preview_features)
