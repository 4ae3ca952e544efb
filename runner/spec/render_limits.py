"""The budget of rendering one template text: steps, time, output and the size of what it builds.

Role in the flow: `runner.spec.render_jinja.CompiledText.render` renders every Jinja text inside
`rendering()`, which makes a `Budget` current; the sandbox (`runner.spec.render_sandbox`) asks
it at every loop iteration, call, filter and test (`tick`), and checks every width, repeat,
concatenation and format against `LIMITS` before it builds anything. An overrun raises
`RenderLimitError`, which the renderer turns into a `render.limit` problem at the text's
file:line:col. `cancel_rendering()` (watch's SIGTERM handler) makes the next step of any render
raise `RenderCancelled`, a BaseException nothing on the way catches, so a process stops within
a blink whatever it is rendering.

Limits (per text, `LIMITS`): `steps` loop iterations, calls, filters and tests; `seconds` of
wall time; `output` characters of the rendered text; `value` characters (or items) of any one
string or list the template builds, and so of any width, precision or padding; `built`
characters built in all (what `~`, `+`, `*`, `%`, `format`, padding, `join` and filters make).
Each is far above what an instructions text needs and far below what would hurt a process.

Invariants: no jinja2 import here (pure checks, usable before a template is compiled); a check
raises before the allocation it guards; the budget is per render (a ContextVar), so renders in
several threads never share it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LIMITS",
    "Budget",
    "Limits",
    "RenderCancelled",
    "RenderLimitError",
    "allow_rendering",
    "cancel_rendering",
    "check_format_spec",
    "check_printf",
    "check_size",
    "check_text",
    "current",
    "join_bounded",
    "rendering",
    "tick",
]


@dataclass(frozen=True)
class Limits:
    """What one text may cost (see the module docstring)."""

    steps: int = 1_000_000
    seconds: float = 5.0
    output: int = 1_000_000
    value: int = 1_000_000
    built: int = 50_000_000


LIMITS = Limits()
"""The limits every render uses (tests replace it with smaller ones)."""


class RenderLimitError(Exception):
    """A text went over its budget: the message says which limit and what to do."""


class RenderCancelled(BaseException):
    """Rendering was cancelled (`cancel_rendering`): the process is stopping."""


_CANCELLED = [False]


def cancel_rendering() -> None:
    """Make every render, now and later, stop at its next step with RenderCancelled (any
    thread, or a signal handler)."""
    _CANCELLED[0] = True


def allow_rendering() -> None:
    """Undo `cancel_rendering` (tests)."""
    _CANCELLED[0] = False


def _over(what: str, limit: int | float, unit: str) -> RenderLimitError:
    return RenderLimitError(
        f"the template exceeds its budget: {what} (at most {limit:,} {unit}); "
        "render less, e.g. loop over fewer items or pad to a smaller width"
    )


class Budget:
    """The running costs of one render against `limits`."""

    __slots__ = ("built", "deadline", "limits", "steps")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self.built = 0
        self.deadline = time.monotonic() + limits.seconds

    def tick(self) -> None:
        """One step (a loop iteration, a call, a filter or a test)."""
        self.steps += 1
        if self.steps > self.limits.steps:
            raise _over("too many loop iterations and calls", self.limits.steps, "steps per text")
        if _CANCELLED[0]:
            raise RenderCancelled()
        if time.monotonic() > self.deadline:
            raise _over("rendering takes too long", self.limits.seconds, "seconds per text")

    def build(self, size: int) -> None:
        """`size` characters (or items) about to be built."""
        if size > self.limits.value:
            raise _over(f"a value of {size:,} characters or items", self.limits.value, "per value")
        self.built += size
        if self.built > self.limits.built:
            raise _over("too much text built", self.limits.built, "characters per text")

    def loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """`iterable`, one step per item."""
        for item in iterable:
            self.tick()
            yield item

    def collect(self, chunks: Iterable[str]) -> str:
        """The rendered text from the template's chunks, stopped at the output limit."""
        out: list[str] = []
        size = 0
        limit = self.limits.output
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise _over("the rendered text is too long", limit, "characters per text")
            out.append(chunk)
        return "".join(out)


_CURRENT: ContextVar[Budget | None] = ContextVar("runner_render_budget", default=None)


def current() -> Budget:
    """The budget of the render in progress (a fresh one outside any render: a constant folded
    at compile time is checked against the same limits)."""
    budget = _CURRENT.get()
    return budget if budget is not None else Budget(LIMITS)


@contextmanager
def rendering() -> Iterator[Budget]:
    """Make a fresh budget current for one render."""
    budget = Budget(LIMITS)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def tick() -> None:
    """One step of the render in progress (nothing outside a render but the cancel check)."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.tick()
    elif _CANCELLED[0]:
        raise RenderCancelled()


def check_size(size: int) -> None:
    """`size` characters or items are about to be built by the render in progress."""
    current().build(size)


def join_bounded(parts: Iterable[Any], sep: str = "") -> str:
    """`sep.join(map(str, parts))`, checked piece by piece before it is built."""
    limit = LIMITS.value
    texts: list[str] = []
    size = 0
    for part in parts:
        if type(part) is not str:
            check_text(part)
            part = str(part)
        size += len(part) + (len(sep) if texts else 0)
        if size > limit:
            check_size(size)  # raises
        texts.append(part)
    check_size(size)
    return sep.join(texts)


_CONTAINERS = (list, tuple, dict, set, frozenset)


def check_text(value: Any) -> None:
    """`str(value)` is about to be built: for a container (lists of lists of the same big list
    are cheap to make, their text is not) its size is estimated first, stopping as soon as it
    is over the value limit. Anything else converts in proportion to what already exists."""
    if not isinstance(value, _CONTAINERS):
        return
    limit = LIMITS.value
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, _CONTAINERS):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 8
        if total > limit:
            raise _over(
                f"the text of a value of more than {limit:,} characters", limit, "per value"
            )


_DIGITS = re.compile(r"\d+")


def check_format_spec(spec: str) -> None:
    """A `str.format` field's spec (`>30`, `.2f`, `0{w}` already filled): its width and
    precision are values the field will build."""
    check_size(sum(int(d) for d in _DIGITS.findall(spec)))


_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def check_printf(fmt: str, args: Any) -> None:
    """`fmt % args` (or `fmt|format(*args)`): the widths and precisions it asks for, with `*`
    taken from `args`, are values the result will build."""
    seq: Sequence[Any] = args if isinstance(args, tuple) else (args,)
    if isinstance(args, Mapping):
        seq = ()
    at = 0
    total = 0
    for match in _PRINTF.finditer(fmt):
        if match.group(4) == "%":
            continue
        for part in (match.group(2), match.group(3)):
            if part == "*":
                value = seq[at] if at < len(seq) else 0
                at += 1
                total += value if isinstance(value, int) and value > 0 else 0
            elif part:
                total += int(part)
        at += 1
    check_size(total)
