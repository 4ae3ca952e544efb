"""One text, rendered: the compiled-text cache, the Jinja sandbox, and errors as RenderError.

Role in the flow: `runner.spec.render` renders every text of an agent with `render_text_at`
(and asks `fixed_text` once per agent for the texts without template syntax). `compile_text`
turns a text into a `CompiledText` (cached by source text): plain data, a fast-path text
(`runner.spec.render_fast`), the default layout (`runner.spec.render_layout`) or a Jinja
template; `CompiledText.render(RenderContext)` renders it. A failure becomes a `RenderError`
whose message `explain` words and whose line `error_line` finds.

Invariants:
  - jinja2 is imported only when a text needs it (`jinja_environment`, on first use, or to
    explain an exception Jinja raised): a project of plain and simple texts never imports it.
    With `runner.spec.render_sandbox`, the only module that imports jinja2.
  - Jinja runs in the sandbox of `runner.spec.render_sandbox` (immutable, StrictUndefined, no
    autoescape, built once), each render within its budget (`runner.spec.render_limits`):
    steps, time, output and sizes; an overrun is a RenderError with code `render.limit`.
  - Jinja sees the `named_view`s of the variables, so an undefined key reads `'vars.db'`;
    the views are built only when Jinja runs.
  - `render_text_at` and `fixed_text` call `compile_text` through this module's namespace: a test
    that replaces `compile_text` here routes every text through Jinja.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

from runner.spec.project import PathItem
from runner.spec.render_fast import Part, render_parts, simple_parts, tidy, tidy_quick
from runner.spec.render_layout import DEFAULT_LAYOUT, render_default_layout
from runner.spec.render_limits import RenderLimitError, rendering
from runner.spec.render_resolve import RenderError

__all__ = [
    "TEMPLATE_FILENAME",
    "TOP_LEVEL_VARIABLES",
    "CompiledText",
    "RenderContext",
    "TextLocation",
    "as_is",
    "clear_cache",
    "compile_text",
    "error_code",
    "error_line",
    "explain",
    "fixed_text",
    "jinja_environment",
    "named_view",
    "render_text",
    "render_text_at",
    "template_line",
]


class _Named(dict[str, Any]):
    """A mapping that knows its name in templates, so an undefined key reads `'vars.db'`."""

    __slots__ = ("_runner_name",)

    def __init__(self, name: str, items: Mapping[str, Any]) -> None:
        super().__init__(items)
        self._runner_name = name


def as_is(name: str, value: Any) -> Any:
    """`value` itself: what a layout that reads only existing keys sees instead of a view."""
    return value


def named_view(name: str, value: Any) -> Any:
    """`value` with every mapping inside it knowing its name (`vars`, `vars.db`, ...)."""
    if isinstance(value, dict) or isinstance(value, Mapping):  # noqa: SIM101 - dict: no ABC check
        return _Named(name, {k: named_view(f"{name}.{k}", v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [named_view(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return value


TEMPLATE_FILENAME = "<runner-template>"
_MARKS = ("{{", "{%", "{#")


def jinja_environment() -> Any:
    """The sandboxed Jinja Environment (`runner.spec.render_sandbox`), built (and jinja2
    imported) on first use only: texts without template syntax, simple `{{ a.b }}`
    substitutions and the default layout never need it, so a project made only of those does
    not pay for importing jinja2."""
    global _ENV
    if _ENV is None:
        from runner.spec.render_sandbox import make_environment

        _ENV = make_environment()
    return _ENV


_ENV: Any = None


class RenderContext:
    """The variables of one render. `values` are what the fast paths read; Jinja gets the
    `_Named` views of them (so an undefined key reads `'vars.db'`), built by `named` on first
    need only, with its globals added once."""

    __slots__ = ("_jinja", "_named", "values")

    def __init__(
        self, values: dict[str, Any], named: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.values = values
        self._named = named
        self._jinja: dict[str, Any] | None = None

    def for_jinja(self, template: Any) -> dict[str, Any]:
        # What Template.render passes its context: the globals overridden by the variables.
        if self._jinja is None:
            values = self.values if self._named is None else self._named()
            self._jinja = {**template.globals, **values}
        return self._jinja


class CompiledText:
    """One text, ready to render: plain data, simple substitutions, the default layout, or a
    Jinja template (compiled on first need)."""

    __slots__ = ("_template", "const", "layout", "parts", "source")

    def __init__(self, source: str, parts: tuple[Part, ...] | None) -> None:
        self.source = source
        self.parts = parts
        self.layout = parts is None and source == DEFAULT_LAYOUT
        self._template: Any = None
        # The tidied text of plain data (read only while `parts` is set).
        self.const: str | None = None
        if parts is not None and (not parts or (len(parts) == 1 and type(parts[0]) is str)):
            self.const = tidy("".join(parts))  # type: ignore[arg-type]

    def template(self) -> Any:
        template = self._template
        if template is None:
            env = jinja_environment()
            code = env.compile(self.source, name=None, filename=TEMPLATE_FILENAME)
            template = env.template_class.from_code(env, code, env.make_globals(None), None)
            self._template = template
        return template

    def render(self, context: RenderContext) -> str:
        """The rendered text, before `tidy` (which every caller applies)."""
        parts = self.parts
        if parts is not None:
            out = render_parts(parts, context.values)
            if out is not None:
                return out
        elif self.layout:
            return render_default_layout(context.values)
        template = self.template()
        env = template.environment
        # Template.render without its copy of the variables: the same Context, same errors;
        # within the text's budget (steps, time, sizes, output: `runner.spec.render_limits`).
        ctx = template.new_context(context.for_jinja(template), shared=True)
        try:
            with rendering() as budget:
                return budget.collect(template.root_render_func(ctx))
        except Exception:
            env.handle_exception()
            raise  # pragma: no cover - handle_exception always raises


@lru_cache(maxsize=4096)
def compile_text(source: str) -> CompiledText:
    if not any(mark in source for mark in _MARKS):
        return CompiledText(source, (source,))
    compiled = CompiledText(source, simple_parts(source))
    if compiled.parts is None and not compiled.layout:
        compiled.template()  # a syntax error is raised here, as before
    return compiled


def clear_cache() -> None:
    """Forget compiled templates (tests and long-running watchers)."""
    compile_text.cache_clear()


def template_line(tb: TracebackType | None) -> int | None:
    line: int | None = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


TOP_LEVEL_VARIABLES = ("vars", "agent", "env", "personality", "guidelines", "capabilities")
_UNDEFINED_TOP = re.compile(r"^'([^']+)' is undefined$")
_UNDEFINED_ATTR = re.compile(r"^'(vars(?:\.[^']+)?)' has no attribute '([^']+)'$")


@dataclass(frozen=True)
class TextLocation:
    """Where a text lives, for error messages."""

    address: str
    path: tuple[PathItem, ...]
    agent: str
    hint_sources: str  # "agent.x, template.t or environment.e"
    available: Sequence[str] = TOP_LEVEL_VARIABLES


def explain(exc: Exception, where: TextLocation) -> str:
    from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

    text = str(exc)
    if isinstance(exc, RenderLimitError):
        return text
    if isinstance(exc, RecursionError):
        return (
            "the template exceeds its budget: it recurses too deeply (a macro or a recursive "
            "loop calling itself without end)"
        )
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"not allowed in templates (sandbox): {text}"
    if isinstance(exc, UndefinedError):
        attr = _UNDEFINED_ATTR.match(text)
        if attr is not None:
            dotted = f"{attr.group(1)}.{attr.group(2)}"
            return (
                f"{text} (undefined variable in template): set {dotted} in {where.hint_sources}, "
                f"or write {{{{ {dotted} | default('...') }}}}"
            )
        top = _UNDEFINED_TOP.match(text)
        if top is not None:
            names = ", ".join(where.available)
            return (
                f"{text} (undefined variable in template): the variables are {names}; "
                f"did you mean vars.{top.group(1)}?"
            )
        return f"{text} (undefined value in template)"
    return f"template failed: {type(exc).__name__}: {text}"


def error_code(exc: Exception) -> str:
    """The problem code of a render failure: `render.limit` for an overrun of the budget."""
    limit = isinstance(exc, RenderLimitError | RecursionError)
    return "render.limit" if limit else "render.template"


def error_line(exc: Exception) -> int | None:
    """The 1-based line inside the text where `exc` arose, when Jinja knows it."""
    from jinja2.exceptions import TemplateSyntaxError  # loaded already: Jinja raised

    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    return template_line(exc.__traceback__)


def fixed_text(source: str) -> str | None:
    """What `render_text_at` gives for `source` when it holds no template syntax, else None."""
    try:
        compiled = compile_text(source)
    except Exception:  # a syntax error: rendering reports it where it belongs
        return None
    return compiled.const if compiled.parts is not None else None


def render_text(source: str, context: RenderContext, *, where: TextLocation) -> str:
    """Render one template text in the sandbox; any failure is a RenderError at `where`."""
    return render_text_at(
        source, context, where.address, where.path, where.agent, where.hint_sources
    )


def render_text_at(
    source: str,
    context: RenderContext,
    address: str,
    path: tuple[PathItem, ...],
    agent: str,
    hint_sources: str,
    available: Sequence[str] = TOP_LEVEL_VARIABLES,
) -> str:
    """`render_text` with the `TextLocation` built only when there is an error to explain."""
    try:
        compiled = compile_text(source)
        if compiled.parts is not None and compiled.const is not None:
            return compiled.const
        rendered = compiled.render(context)
    except Exception as exc:  # any template failure is the user's to fix
        line = error_line(exc)
        where = TextLocation(
            address=address,
            path=path,
            agent=agent,
            hint_sources=hint_sources,
            available=available,
        )
        raise RenderError(
            explain(exc, where),
            address=address,
            path=path,
            line=line,
            agent=agent,
            code=error_code(exc),
            detail=str(exc),
        ) from None
    return tidy_quick(rendered)
