"""The `runner` program's own process: big imports kept out of the cyclic garbage collector's way.

Role: a `runner` command is one short process. What it imports (runner's spec models, and for a
Foundry environment the azure-ai-projects SDK, which brings openai's types and
azure.storage.blob with it) is a few hundred thousand objects that all live until the process
ends. CPython's cyclic collector traces them anyway: over and over while they are being made,
on every later full collection, and once more as the interpreter shuts down, and it never finds
anything to free among them. Measured on `runner apply` of 200 agents (bench/plan_apply.py (c)),
that tracing was over a quarter of the process's CPU time (0.55 s of 1.99 s), much of it at exit.

`importing()` pauses the collector around a block that imports big packages (the verb's module,
the provider), and in the `runner` program (`console()`) then moves everything alive out of the
collector's sight (`gc.freeze()`, the use the Python documentation gives it). What the command
makes after that is collected as usual, at exit too, so connections and files it drops are still
finalized (closing a SQLite connection is what removes its -wal and -shm files).

`main()` called in process (tests, tools) gets the pause only: nothing is frozen in a process
runner does not own, where freezing would keep that process's garbage alive for good.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

__all__ = ["console", "importing"]

_program = False  # this process is the `runner` program (set by console())


def console(main: Callable[[], int]) -> NoReturn:
    """Run `main` as the process's whole life and exit with its code."""
    global _program
    _program = True
    sys.exit(main())


@contextmanager
def importing() -> Iterator[None]:
    """The block's imports made without the collector tracing them (see the module docstring)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
        if _program:
            gc.freeze()
