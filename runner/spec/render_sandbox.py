"""The Jinja sandbox every template text renders in: immutable, strict, and bounded.

Role in the flow: `runner.spec.render_jinja.jinja_environment` builds it once, with
`make_environment()`, the first time a text needs Jinja. On top of jinja2's
ImmutableSandboxedEnvironment (no unsafe attribute, no mutation of lists and dicts) every way a
template can spend time or memory reports to the render's budget (`runner.spec.render_limits`):

  - loops: every `{% for %}` iterates through the `runner_steps` filter the parser wraps its
    iterable in (one step per item), and a recursive loop's `loop(...)` call too;
  - calls, filters and tests: one step each (a filter mapping over a list steps per item);
  - sizes, checked before anything is built: `*`, `+`, `~` and `join` on strings and lists,
    `%` and the `format` filter (printf widths and precisions, `*` ones too), `str.format`
    and `format_map` (each field's spec), `center`/`ljust`/`rjust`/`zfill`/`expandtabs`,
    `center`/`indent`/`replace`/`batch`/`slice`/`tojson` filters, big integers (`*`, `**`),
    `lipsum`; every string a filter or call returns is charged to the budget;
  - the rendered text's length (`render_limits.Budget.collect`).

Invariants: with `runner.spec.render_jinja`, the only modules importing jinja2 (this one only
when a text needs Jinja); StrictUndefined, no autoescape; every limit error is a
`RenderLimitError` raised inside the template's own frames, so its line is known.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from runner.spec.render_limits import (
    RenderLimitError,
    check_format_spec,
    check_printf,
    check_size,
    check_text,
    current,
    join_bounded,
    tick,
)

__all__ = ["MAX_BITS", "MAX_EXPONENT", "MAX_JSON_INDENT", "MAX_RANGE", "make_environment"]

MAX_BITS = 100_000
"""Largest integer (in bits) `*` and `**` may build."""
MAX_EXPONENT = 1000
MAX_RANGE = 100_000
"""Most items `range()` may hold (jinja2's own sandbox limit, reported as a budget overrun)."""
MAX_JSON_INDENT = 16


def _width(args: tuple[Any, ...], kwargs: dict[str, Any], at: int, name: str, default: Any) -> Any:
    return args[at] if len(args) > at else kwargs.get(name, default)


def _check_str_method(owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Before `owner.name(*args, **kwargs)` builds its result."""
    if name in ("center", "ljust", "rjust", "zfill"):
        width = _width(args, kwargs, 0, "width", 0)
        if isinstance(width, int):
            check_size(width)
    elif name == "expandtabs":
        size = _width(args, kwargs, 0, "tabsize", 8)
        if isinstance(size, int):
            check_size(len(owner) + owner.count("\t") * max(0, size))
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    check_size(len(text) + times * max(0, len(new) - len(old)))


def _check_result(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        check_size(len(value))
    return value


# Filters that turn their value into text (their result is checked too, but only after it is
# built: a container's text is estimated first).
_TEXT_FILTERS = frozenset(
    {
        "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower",
        "pprint", "replace", "safe", "string", "striptags", "title", "tojson", "trim",
        "truncate", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    }
)  # fmt: skip


def _filter_checks(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Before filter `name` runs on (value, *params) = args."""
    if not args:
        return
    value, params = args[0], args[1:]
    if name in _TEXT_FILTERS:  # makes text of its value (and `format` of its arguments)
        check_text(value)
        if name == "format":
            for param in (*params, *kwargs.values()):
                check_text(param)
    if name == "sum" and isinstance(value, list | tuple):  # adding lists or strings copies
        check_size(sum(len(v) for v in value if isinstance(v, str | list | tuple)))
    if name == "center":
        width = _width(params, kwargs, 0, "width", 80)
        if isinstance(width, int):
            check_size(width)
    elif name == "indent":
        width = _width(params, kwargs, 0, "width", 4)
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        text = str(value)
        check_size(len(text) + max(0, pad) * (text.count("\n") + 1))
    elif name == "format":
        check_printf(str(value), kwargs or params)
    elif name in ("batch", "slice"):
        count = _width(params, kwargs, 0, "linecount" if name == "batch" else "slices", 0)
        if isinstance(count, int):
            check_size(count)
    elif name == "tojson":
        indent = _width(params, kwargs, 0, "indent", None)
        if isinstance(indent, int) and indent > MAX_JSON_INDENT:
            raise RenderLimitError(f"tojson indent {indent} is too big (at most {MAX_JSON_INDENT})")
    elif name == "replace":
        old, new, count = (*params[:3], None, None, None)[:3]
        _check_replace(value, old, new, count)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    shift = 1 if hasattr(func, "jinja_pass_arg") else 0  # context/eval_ctx/environment first

    if name == "join":

        @functools.wraps(func)
        def join(*args: Any, **kwargs: Any) -> Any:
            tick()
            if len(args) > shift:
                value = args[shift]
                sep = _width(args[shift + 1 :], kwargs, 0, "d", "")
                if _width(args[shift + 1 :], kwargs, 1, "attribute", None) is None:
                    return join_bounded(value, str(sep))
            return _check_result(func(*args, **kwargs))

        return join

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        tick()
        _filter_checks(name, args[shift:], kwargs)
        return _check_result(func(*args, **kwargs))

    return bounded


def _bounded_test(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        tick()
        return func(*args, **kwargs)

    return bounded


def make_environment() -> Any:
    """The bounded, immutable, strict sandbox (imports jinja2)."""
    import jinja2
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.exceptions import SecurityError
    from jinja2.runtime import LoopContext
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
    from jinja2.utils import generate_lorem_ipsum

    class _Undefined(jinja2.StrictUndefined):
        __slots__ = ()

        @property
        def _undefined_message(self) -> str:
            if self._undefined_hint:
                return self._undefined_hint
            owner = getattr(self._undefined_obj, "_runner_name", None)
            if isinstance(owner, str):
                return f"{owner!r} has no attribute {self._undefined_name!r}"
            return str(super()._undefined_message)

    class _Formatter(SandboxedFormatter):
        def format_field(self, value: Any, format_spec: str) -> Any:
            check_format_spec(format_spec)
            check_text(value)
            return _check_result(super().format_field(value, format_spec))

    class _CodeGenerator(CodeGenerator):
        def visit_Concat(self, node: Any, frame: Any) -> None:  # `a ~ b`: sized first
            self.write("environment.runner_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    @jinja2.pass_context  # never folded into a constant at compile time
    def steps(_context: Any, iterable: Any) -> Any:
        return current().loop(iterable)

    def bounded_range(*args: int) -> range:
        try:
            items = range(*args)
            size = len(items)
        except OverflowError:
            size = MAX_RANGE + 1
        if size > MAX_RANGE:
            raise RenderLimitError(
                f"the template exceeds its budget: a range of more than {MAX_RANGE:,} items"
            )
        return items

    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if isinstance(n, int) and isinstance(max, int):
            check_size(n * max * 12)
        return generate_lorem_ipsum(n=n, html=html, min=min, max=max)

    class _Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})
        code_generator_class = _CodeGenerator
        concat = staticmethod(join_bounded)  # blocks, macros, `{% set %}...{% endset %}`
        runner_join = staticmethod(join_bounded)

        def _parse(self, source: str, name: str | None, filename: str | None) -> Any:
            tree = super()._parse(source, name, filename)
            for loop in tree.find_all(nodes.For):
                loop.iter = nodes.Filter(
                    loop.iter, "runner_steps", [], [], None, None, lineno=loop.iter.lineno
                )
                loop.iter.set_environment(self)
            return tree

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            budget = current()
            budget.tick()
            target = getattr(__obj, "__wrapped__", __obj)
            owner = getattr(target, "__self__", None)
            if type(owner) is str and isinstance(
                target, types.BuiltinMethodType | types.MethodType
            ):
                name = target.__name__
                if name in ("format", "format_map"):
                    if name == "format_map":
                        if kwargs or len(args) != 1:
                            raise TypeError("format_map() takes exactly one argument")
                        mapping: Any = args[0]
                        args, kwargs = (), mapping
                    return _check_result(_Formatter(__self).vformat(owner, args, kwargs))
                if name == "join" and len(args) == 1 and not kwargs:
                    return join_bounded(args[0], owner)
                _check_str_method(owner, name, args, kwargs)
            if isinstance(__obj, LoopContext) and args:  # a recursive loop's `loop(items)`
                args = (budget.loop(args[0]), *args[1:])
            return _check_result(super().call(__context, __obj, *args, **kwargs))

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(seq, str | list | tuple) and isinstance(times, int):
                        check_size(len(seq) * max(0, times))
                if isinstance(left, int) and isinstance(right, int):
                    _check_bits(left.bit_length() + right.bit_length())
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                if abs(right) > MAX_EXPONENT:
                    raise SecurityError(f"exponent too large (at most {MAX_EXPONENT})")
                _check_bits(left.bit_length() * max(0, right))
            elif operator == "+":
                if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                    check_size(len(left) + len(right))
            elif operator == "%" and isinstance(left, str):
                check_printf(left, right)
                for item in right if isinstance(right, tuple) else (right,):
                    check_text(item)
            return _check_result(super().call_binop(context, operator, left, right))

    def finalize(value: Any) -> Any:  # every `{{ value }}` before it becomes text
        check_text(value)
        return value

    env = _Sandbox(
        finalize=finalize,
        undefined=_Undefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    env.filters["runner_steps"] = steps
    tests: dict[str, Any] = env.tests
    env.tests = {name: _bounded_test(test) for name, test in tests.items()}
    env.globals["lipsum"] = lipsum
    env.globals["range"] = bounded_range
    return env


def _check_bits(bits: int) -> None:
    if bits > MAX_BITS:
        raise RenderLimitError(
            f"the template exceeds its budget: an integer of about {bits:,} bits "
            f"(at most {MAX_BITS:,})"
        )
