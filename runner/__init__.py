"""runner: declarative lifecycle management for LLM agents on Azure AI Foundry.

Flow: spec (YAML -> typed specs) -> plan (pure diff) -> apply (executor + registry) -> runtime.
`Lifecycle` (the runtime API) is imported lazily so `runner validate` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Lifecycle", "__version__"]

if TYPE_CHECKING:
    from runner.runtime.lifecycle import Lifecycle


def __getattr__(name: str) -> Any:
    if name == "Lifecycle":
        from runner.runtime.lifecycle import Lifecycle

        return Lifecycle
    raise AttributeError(name)
