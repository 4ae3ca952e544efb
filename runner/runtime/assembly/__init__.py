"""The composition root of the runtime: it picks the implementations and builds the parts.

Role: `open_parts` (behind `Lifecycle.open`) opens the registry, the runtime's SQLite stores
and the provider, and builds `RuntimeParts`, which constructs every part of the runtime with
its collaborators and runs their life (load, reload, start, sweep, close). The `Lifecycle`
facade (`runner.runtime.lifecycle`) is a thin API over these parts.

May import: every runtime package below it, `runner.state` (including the SQLite stores it
chooses), `runner.providers`, `runner.spec`, `runner.paths`. Never the facade.
"""

from runner.runtime.assembly.opening import Opener, SpecsArg, open_parts
from runner.runtime.assembly.parts import RuntimeParts

__all__ = ["Opener", "RuntimeParts", "SpecsArg", "open_parts"]
