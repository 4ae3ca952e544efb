"""Calling the provider from the event loop: inline for the embedded one, a thread for others.

Role: admission (a session's conversation) and the turn path (a reply) call the provider
through `call_provider`, so a remote provider's blocking HTTP never stalls the event loop and
the local provider (SQLite, microseconds) pays for no thread hop.

Invariant: the provider's own exceptions propagate unchanged; callers turn them into the
runtime's errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runner.providers.base import Provider

__all__ = ["call_provider"]


async def call_provider(provider: Provider, fn: Any, /, **kwargs: Any) -> Any:
    """Call a provider method: inline for the local provider, in a thread for remote ones."""
    if provider.remote:
        return await asyncio.to_thread(fn, **kwargs)
    return fn(**kwargs)
