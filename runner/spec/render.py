"""Agent resolution and instruction rendering: typed specs -> the desired Foundry definition.

Flow: `resolve_agent` merges an Agent with its Template and resolves its Personality;
`render_agent` renders every Jinja2 text of the result for one Environment and composes the final
instructions with a *layout*. The result, `RenderedAgent`, is what plan/apply compare and send:
`definition()` is the Foundry prompt-agent definition, `content_hash()` its stable fingerprint.
`runner.spec.checks` calls `render_agent` for every agent in every environment and reports a
`RenderError` at the file:line:col of the faulty text.

Merging (template -> agent):
  - every PromptFields field the agent sets replaces the template's value as a whole (lists and
    `metadata` included: an agent's `guidelines` replace the template's, they are not appended);
  - `vars` are merged, never replaced (nested mappings merge key by key);
  - the personality is the agent's if set, else the template's.

Variables visible to every text, and their precedence (lowest to highest):
  `vars`          template.vars < agent.vars < environment.vars. The environment is the
                  deployment-time override, like a Kustomize overlay: `prod` may set
                  `vars.company` for every agent at once. Nested mappings merge key by key.
  `agent`         {name, description}
  `env`           {name, name_prefix}
  `personality`   the resolved Personality as a mapping (name, description, traits, traits_text,
                  prompt_modifiers, response_templates, prohibited_behaviors), or None
  `guidelines`    the guidelines as written, [{condition, action, priority}]
  `capabilities`  list of capability names

Rendered texts: `instructions`, each personality `prompt_modifiers` item, each
`response_templates` value, each `prohibited_behaviors` item, and each guideline's
`condition`/`action`. The layout (`DEFAULT_LAYOUT`, or `layout` on the Agent or Template) then
sees the rendered pieces: `instructions` (str), `personality` (rendered mapping or None),
`guidelines` (rendered, sorted by priority, 1 first; ties keep written order), `capabilities`,
`vars`, `agent`, `env`.

Invariants:
  - Jinja runs in an immutable sandbox with StrictUndefined and no autoescape: an undefined
    variable, a syntax error, an unsafe attribute (`''.__class__`) or any other failure is a
    `RenderError` naming the document (`agent.x`, `template.t`, `personality.p`), the path inside
    it and, when Jinja knows it, the line inside the text. Nothing else escapes `render_agent`.
  - Output is deterministic: the same specs give byte-identical instructions and the same
    `content_hash()` in any process. Lines carry no trailing whitespace, runs of blank lines
    collapse to one, and the text has no leading or trailing blank lines.
  - Rendering reads no environment variable: `${VAR}` references in `env.vars` are rendered as
    written. A caller that wants values passes an environment resolved with
    `runner.spec.secrets.resolve_model`.
  - Compiled templates are cached by source text and the Jinja Environment is built once, so a
    project of thousands of agents sharing a few templates renders in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import TracebackType
from typing import Any

from runner.providers.base import ADDRESS_KEY, ENVIRONMENT_KEY, HASH_KEY, MANAGED_BY_KEY
from runner.spec.models import (
    Agent,
    Environment,
    Guideline,
    Personality,
    Template,
    Tool,
    address_of,
)
from runner.spec.project import Project

__all__ = [
    "DEFAULT_LAYOUT",
    "MAX_USER_METADATA",
    "RESERVED_METADATA_KEYS",
    "PreparedAgent",
    "RenderError",
    "RenderedAgent",
    "ResolvedAgent",
    "clear_cache",
    "prepare_agent",
    "render_agent",
    "resolve_agent",
    "traits_text",
]

PathItem = str | int

# Keys runner writes into every managed agent's Foundry metadata; user metadata may not use them.
RESERVED_METADATA_KEYS: frozenset[str] = frozenset(
    {MANAGED_BY_KEY, ADDRESS_KEY, ENVIRONMENT_KEY, HASH_KEY}
)
# Foundry allows 16 metadata pairs per version; runner keeps the reserved ones for itself.
MAX_USER_METADATA = 16 - len(RESERVED_METADATA_KEYS)
_MAX_METADATA_KEY = 64
_MAX_METADATA_VALUE = 512

# Largest string/list a template may build with `*` (guards the sandbox against memory bombs).
_MAX_PRODUCT_LEN = 1_000_000

DEFAULT_LAYOUT = """\
{{ instructions }}
{% if personality %}

## Personality
{% if personality.traits_text %}
{{ personality.traits_text }}
{% endif %}
{% for modifier in personality.prompt_modifiers %}
- {{ modifier }}
{% endfor %}
{% if personality.response_templates %}

## Response templates
{% for key, text in personality.response_templates.items() %}
- {{ key }}: {{ text }}
{% endfor %}
{% endif %}
{% if personality.prohibited_behaviors %}

## Never
{% for item in personality.prohibited_behaviors %}
- {{ item }}
{% endfor %}
{% endif %}
{% endif %}
{% if guidelines %}

## Guidelines
{% for g in guidelines %}
- When {{ g.condition }}: {{ g.action }}
{% endfor %}
{% endif %}
{% if capabilities %}

## Capabilities
{% for c in capabilities %}
- {{ c }}
{% endfor %}
{% endif %}
"""

# Trait -> label in the human sentence ("Tone: professional; detail: detailed; ...").
_TRAIT_LABELS: tuple[tuple[str, str], ...] = (
    ("formality", "Tone"),
    ("verbosity", "detail"),
    ("helpfulness", "initiative"),
    ("creativity", "creativity"),
    ("empathy", "empathy"),
)


# ---------------------------------------------------------------- errors


class RenderError(Exception):
    """A text that cannot be rendered, located in the document that holds it.

    `address` is the document (`agent.x`, `template.t`, `personality.p`); `path` is the value
    inside it (`("instructions",)`, `("prompt_modifiers", 2)`); `line` is the 1-based line inside
    that text when Jinja knows it; `agent` is the agent being rendered when the error came up.
    """

    def __init__(
        self,
        message: str,
        *,
        address: str,
        path: tuple[PathItem, ...] = (),
        line: int | None = None,
        agent: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.address = address
        self.path = path
        self.line = line
        self.agent = agent

    def __str__(self) -> str:
        where = self.address + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path
        )
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


# ---------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ResolvedAgent:
    """An Agent merged with its Template, before any text is rendered.

    `sources` maps each PromptFields field name to the address of the document that supplied it
    (the agent's or the template's), so a render error points at the text that was actually used.
    """

    name: str
    description: str | None
    template: str | None
    model: str | None
    instructions: str | None
    temperature: float | None
    top_p: float | None
    tool_choice: str | None
    max_turns: int | None
    personality_name: str | None
    personality: Personality | None
    tools: tuple[Tool, ...]
    capabilities: tuple[str, ...]
    guidelines: tuple[Guideline, ...]
    metadata: Mapping[str, str]
    layout: str | None
    vars: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return address_of("Agent", self.name)

    def source_of(self, field_name: str) -> str:
        return self.sources.get(field_name, self.address)


_MERGED_FIELDS = (
    "model",
    "instructions",
    "temperature",
    "top_p",
    "tool_choice",
    "max_turns",
    "personality",
    "tools",
    "capabilities",
    "guidelines",
    "metadata",
    "layout",
)


def _merge_vars(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge_vars(old, value)
        else:
            merged[key] = value
    return merged


def resolve_agent(project: Project, name: str) -> ResolvedAgent:
    """Merge agent `name` with its template and resolve its personality.

    RenderError when the agent, its template or its personality does not exist.
    """
    agent: Agent | None = project.agents.get(name)
    if agent is None:
        raise RenderError(
            f"no agent named {name!r} in the project", address=address_of("Agent", name)
        )
    agent_address = address_of("Agent", name)
    template: Template | None = None
    if agent.template is not None:
        template = project.templates.get(agent.template)
        if template is None:
            known = ", ".join(sorted(project.templates)) or "none declared"
            raise RenderError(
                f"template {agent.template!r} does not exist (known templates: {known})",
                address=agent_address,
                path=("template",),
                agent=name,
            )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field_name in _MERGED_FIELDS:
        value = getattr(agent, field_name)
        source = agent_address
        if value is None and template is not None:
            value = getattr(template, field_name)
            source = address_of("Template", template.name)
        values[field_name] = value
        if value is not None:
            sources[field_name] = source
    merged_vars = _merge_vars(template.vars if template is not None else {}, agent.vars)

    personality: Personality | None = None
    personality_name: str | None = values["personality"]
    if personality_name is not None:
        personality = project.personalities.get(personality_name)
        if personality is None:
            known = ", ".join(sorted(project.personalities)) or "none declared"
            raise RenderError(
                f"personality {personality_name!r} does not exist (known personalities: {known})",
                address=sources["personality"],
                path=("personality",),
                agent=name,
            )
    return ResolvedAgent(
        name=name,
        description=agent.description,
        template=agent.template,
        model=values["model"],
        instructions=values["instructions"],
        temperature=values["temperature"],
        top_p=values["top_p"],
        tool_choice=values["tool_choice"],
        max_turns=values["max_turns"],
        personality_name=personality_name,
        personality=personality,
        tools=tuple(values["tools"] or ()),
        capabilities=tuple(values["capabilities"] or ()),
        guidelines=tuple(values["guidelines"] or ()),
        metadata=dict(values["metadata"] or {}),
        layout=values["layout"],
        vars=merged_vars,
        sources=sources,
    )


# ---------------------------------------------------------------- the rendered agent


@dataclass(frozen=True)
class RenderedAgent:
    """What one agent is in one environment: the Foundry definition plus runner-side settings."""

    name: str
    foundry_name: str
    model: str
    instructions: str
    temperature: float | None
    top_p: float | None
    tool_choice: str | None
    tools: list[dict[str, Any]]
    description: str | None
    metadata: dict[str, str]
    max_turns: int | None
    capabilities: list[str]
    personality: str | None

    def definition(self) -> dict[str, Any]:
        """The prompt-agent definition as the SDK sends it: None values omitted, `kind` last."""
        body: dict[str, Any] = {"model": self.model, "instructions": self.instructions}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.tools:
            body["tools"] = json.loads(json.dumps(self.tools))
        if self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        body["kind"] = "prompt"
        return body

    def content_hash(self) -> str:
        """sha256 hex of the canonical JSON of definition + description + user metadata."""
        payload = {
            "definition": self.definition(),
            "description": self.description,
            "metadata": self.metadata,
        }
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- Jinja machinery


class _Named(dict[str, Any]):
    """A mapping that knows its name in templates, so an undefined key reads `'vars.db'`."""

    __slots__ = ("_runner_name",)

    def __init__(self, name: str, items: Mapping[str, Any]) -> None:
        super().__init__(items)
        self._runner_name = name


def _as_is(name: str, value: Any) -> Any:
    return value


def _named(name: str, value: Any) -> Any:
    if isinstance(value, dict) or isinstance(value, Mapping):  # noqa: SIM101 - dict: no ABC check
        return _Named(name, {k: _named(f"{name}.{k}", v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [_named(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return value


_TEMPLATE_FILENAME = "<runner-template>"
_MARKS = ("{{", "{%", "{#")


def _jinja_env() -> Any:
    """The sandboxed Jinja Environment, built (and jinja2 imported) on first use only: texts
    without template syntax, simple `{{ a.b }}` substitutions and the default layout never need
    it, so a project made only of those does not pay for importing jinja2."""
    global _ENV
    if _ENV is not None:
        return _ENV
    import jinja2
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

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

    class _Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if (
                        isinstance(seq, str | list | tuple)
                        and isinstance(times, int)
                        and len(seq) * times > _MAX_PRODUCT_LEN
                    ):
                        raise SecurityError(
                            f"a {type(seq).__name__} of more than {_MAX_PRODUCT_LEN} items "
                            "is too big"
                        )
            if operator == "**" and isinstance(right, int) and abs(right) > 1000:
                raise SecurityError("exponent too large (at most 1000)")
            return super().call_binop(context, operator, left, right)

    _ENV = _Sandbox(
        undefined=_Undefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return _ENV


_ENV: Any = None

# A "simple" text is plain data, `{{ name.attr... }}` / `{{ name.attr | default('text') }}`
# substitutions and `{% if name.attr... %}` blocks (optionally `== 'text'` / `!= 'text'`, one
# optional `{% else %}`, not nested) holding data and substitutions. It is rendered here with
# exactly Jinja's semantics for that subset (the lexer's `trim_blocks`/`lstrip_blocks` handling of
# block tags; a name from the context, each attribute looked up as the sandbox does: a real
# attribute first, then the mapping's key; Python's `==`, `!=` and truth; `str()` of a scalar
# value) and handed to Jinja whenever anything is off the simple path (an attribute of the object
# itself or one starting with '_', a missing value, a non-mapping, a value that is not a plain
# scalar): Jinja then renders it or raises the error it always raised.
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAMES = r"(" + _IDENT + r"(?:\." + _IDENT + r")*)"
_LITERAL = r"(?:\"([^\"\\\n{}%]*)\"|'([^'\\\n{}%]*)')"
_SIMPLE_TAG = re.compile(
    r"\{\{ *" + _NAMES + r" *"
    r"(?:\| *default\( *(?:\"([^\"\\\n{}]*)\"|'([^'\\\n{}]*)') *\) *)?\}\}"
)
_IF_TAG = re.compile(r"\{% *if +" + _NAMES + r" *(?:(==|!=) *" + _LITERAL + r" *)?%\}")
_ELSE_TAG = re.compile(r"\{% *else *%\}")
_ENDIF_TAG = re.compile(r"\{% *endif *%\}")
_TAG_START = re.compile(r"\{[{%#]")
_LSTRIP = re.compile(r"\s+")  # Jinja's lexer: what lstrip_blocks removes before a block tag
_NO_DEFAULT: Any = object()
_ABSENT: Any = object()
# Values the fast path prints or tests; anything else (a list, a mapping, a tuple, a subclass)
# goes to Jinja, which prints the `_Named` view of it.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_TESTABLE = _SCALARS | {dict, list}


class _If:
    """`{% if names [op literal] %}body{% else %}orelse{% endif %}` of a simple text."""

    __slots__ = ("body", "literal", "names", "op", "orelse")

    def __init__(self, names: tuple[str, ...], op: str | None, literal: str | None) -> None:
        self.names = names
        self.op = op
        self.literal = literal
        self.body: list[_Part] = []
        self.orelse: list[_Part] | None = None


_Part = str | tuple[tuple[str, ...], Any] | _If


_DICT_ATTRIBUTES = frozenset(dir(dict))


def _plain_names(dotted: str) -> tuple[str, ...] | None:
    """`a.b.c` as names, or None when an attribute is one a mapping has (`items`) or starts with
    '_': the sandbox would find it on the object (or refuse it), never as a key; Jinja decides."""
    names = tuple(dotted.split("."))
    for attr in names[1:]:
        if attr[0] == "_" or attr in _DICT_ATTRIBUTES:
            return None
    return names


def _simple_parts(source: str) -> tuple[_Part, ...] | None:
    """`source` as data, simple substitutions and simple ifs, or None when Jinja must handle it."""
    if "\r" in source:
        return None  # Jinja normalises newlines in data, not in values: let it do so
    if source.endswith("\n"):
        source = source[:-1]  # keep_trailing_newline=False
    parts: list[_Part] = []
    target = parts
    block: _If | None = None
    at = 0
    line_starting = True  # the lexer's: the previous token ended a line
    while True:
        mark = _TAG_START.search(source, at)
        if mark is None:
            break
        start = mark.start()
        data = source[at:start]
        if at and data.startswith("}"):
            return None
        kind = source[start + 1]
        if kind == "{":
            match = _SIMPLE_TAG.match(source, start)
            if match is None:
                return None
            if data:
                target.append(data)
            names = _plain_names(match.group(1))
            if names is None:
                return None
            double, single = match.group(2), match.group(3)
            default = double if double is not None else single
            target.append((names, _NO_DEFAULT if default is None else default))
            at = match.end()
            line_starting = False
            continue
        if kind == "#":
            return None
        # A block tag: lstrip_blocks drops the blanks between the line start and the tag.
        if data:
            line_at = data.rfind("\n") + 1
            if (line_at or line_starting) and _LSTRIP.fullmatch(data, line_at):
                data = data[:line_at]
            if data:
                target.append(data)
        match = _IF_TAG.match(source, start)
        if match is not None:
            if block is not None:
                return None  # nested
            names = _plain_names(match.group(1))
            if names is None:
                return None
            double, single = match.group(3), match.group(4)
            block = _If(names, match.group(2), double if double is not None else single)
            target = block.body
        elif (match := _ELSE_TAG.match(source, start)) is not None:
            if block is None or block.orelse is not None:
                return None
            block.orelse = target = []
        elif (match := _ENDIF_TAG.match(source, start)) is not None:
            if block is None:
                return None
            parts.append(block)
            block = None
            target = parts
        else:
            return None
        at = match.end()
        # trim_blocks: the first newline after a block tag goes.
        line_starting = source.startswith("\n", at)
        if line_starting:
            at += 1
    if block is not None:
        return None
    data = source[at:]
    if at and data.startswith("}"):
        return None
    if data:
        parts.append(data)
    return tuple(parts)


class _Context:
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


class _Compiled:
    """One text, ready to render: plain data, simple substitutions, the default layout, or a
    Jinja template (compiled on first need)."""

    __slots__ = ("_template", "const", "layout", "parts", "source")

    def __init__(self, source: str, parts: tuple[_Part, ...] | None) -> None:
        self.source = source
        self.parts = parts
        self.layout = parts is None and source == DEFAULT_LAYOUT
        self._template: Any = None
        # The tidied text of plain data (read only while `parts` is set).
        self.const: str | None = None
        if parts is not None and (not parts or (len(parts) == 1 and type(parts[0]) is str)):
            self.const = _tidy("".join(parts))  # type: ignore[arg-type]

    def template(self) -> Any:
        template = self._template
        if template is None:
            env = _jinja_env()
            code = env.compile(self.source, name=None, filename=_TEMPLATE_FILENAME)
            template = env.template_class.from_code(env, code, env.make_globals(None), None)
            self._template = template
        return template

    def render(self, context: _Context) -> str:
        """The rendered text, before `_tidy` (which every caller applies)."""
        parts = self.parts
        if parts is not None:
            out = _render_parts(parts, context.values)
            if out is not None:
                return out
        elif self.layout:
            return _default_layout(context.values)
        template = self.template()
        env = template.environment
        # Template.render without its copy of the variables: the same Context, same errors.
        ctx = template.new_context(context.for_jinja(template), shared=True)
        try:
            return str(env.concat(template.root_render_func(ctx)))
        except Exception:
            env.handle_exception()
            raise  # pragma: no cover - handle_exception always raises


def _lookup(names: tuple[str, ...], default: Any, context: Mapping[str, Any]) -> Any:
    """The value of `name.attr...` as the sandbox finds it, or _ABSENT when Jinja must decide.

    `_simple_parts` keeps no path with an attribute a mapping has (`items`) or one starting with
    '_' (`_runner_name` is one of a `_Named` view): on a plain dict each attribute is its key."""
    value = context.get(names[0], _ABSENT)
    last = len(names) - 1
    i = 0
    while i < last:
        if value is _ABSENT:
            return _ABSENT
        i += 1
        attr = names[i]
        if type(value) is not dict and (not isinstance(value, dict) or hasattr(value, attr)):
            return _ABSENT
        found = value.get(attr, _ABSENT)
        if found is _ABSENT:
            return default if i == last and default is not _NO_DEFAULT else _ABSENT
        value = found
    return value


def _render_parts(parts: Sequence[_Part], context: Mapping[str, Any]) -> str | None:
    out: list[str] = []
    for part in parts:
        kind = type(part)
        if kind is str:
            out.append(part)  # type: ignore[arg-type]
        elif kind is tuple:
            value = _lookup(part[0], part[1], context)  # type: ignore[arg-type,index]
            kind = type(value)
            if kind is str:
                out.append(value)
            elif kind in _SCALARS:
                out.append(str(value))
            else:
                return None
        else:
            block: _If = part  # type: ignore[assignment]
            value = _lookup(block.names, _NO_DEFAULT, context)
            if value is _ABSENT or type(value) not in _TESTABLE:
                return None
            op = block.op
            if op is None:
                chosen = block.body if value else block.orelse
            elif op == "==":
                chosen = block.body if value == block.literal else block.orelse
            else:
                chosen = block.body if value != block.literal else block.orelse
            if chosen:
                text = _render_parts(chosen, context)
                if text is None:
                    return None
                out.append(text)
    return "".join(out)


def _default_layout(context: Mapping[str, Any]) -> str:
    """DEFAULT_LAYOUT rendered without Jinja (the same text, byte for byte; see the tests)."""
    out = [str(context["instructions"]), "\n"]
    personality = context["personality"]
    if personality:
        out.append("\n## Personality\n")
        if personality["traits_text"]:
            out += (str(personality["traits_text"]), "\n")
        for modifier in personality["prompt_modifiers"]:
            out += ("- ", str(modifier), "\n")
        if personality["response_templates"]:
            out.append("\n## Response templates\n")
            for key, text in personality["response_templates"].items():
                out += ("- ", str(key), ": ", str(text), "\n")
        if personality["prohibited_behaviors"]:
            out.append("\n## Never\n")
            for item in personality["prohibited_behaviors"]:
                out += ("- ", str(item), "\n")
    guidelines = context["guidelines"]
    if guidelines:
        out.append("\n## Guidelines\n")
        for g in guidelines:
            out += ("- When ", str(g["condition"]), ": ", str(g["action"]), "\n")
    capabilities = context["capabilities"]
    if capabilities:
        out.append("\n## Capabilities\n")
        for c in capabilities:
            out += ("- ", str(c), "\n")
    return "".join(out)


@lru_cache(maxsize=4096)
def _compile(source: str) -> _Compiled:
    if not any(mark in source for mark in _MARKS):
        return _Compiled(source, (source,))
    compiled = _Compiled(source, _simple_parts(source))
    if compiled.parts is None and not compiled.layout:
        compiled.template()  # a syntax error is raised here, as before
    return compiled


def clear_cache() -> None:
    """Forget compiled templates (tests and long-running watchers)."""
    _compile.cache_clear()


def _template_line(tb: TracebackType | None) -> int | None:
    line: int | None = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_TOP_LEVEL = ("vars", "agent", "env", "personality", "guidelines", "capabilities")
_UNDEFINED_TOP = re.compile(r"^'([^']+)' is undefined$")
_UNDEFINED_ATTR = re.compile(r"^'(vars(?:\.[^']+)?)' has no attribute '([^']+)'$")


@dataclass(frozen=True)
class _Where:
    """Where a text lives, for error messages."""

    address: str
    path: tuple[PathItem, ...]
    agent: str
    hint_sources: str  # "agent.x, template.t or environment.e"
    available: Sequence[str] = _TOP_LEVEL


def _explain(exc: Exception, where: _Where) -> str:
    from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

    text = str(exc)
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


def _render_text(source: str, context: _Context, *, where: _Where) -> str:
    """Render one template text in the sandbox; any failure is a RenderError at `where`."""
    return _render_at(source, context, where.address, where.path, where.agent, where.hint_sources)


def _render_at(
    source: str,
    context: _Context,
    address: str,
    path: tuple[PathItem, ...],
    agent: str,
    hint_sources: str,
    available: Sequence[str] = _TOP_LEVEL,
) -> str:
    """`_render_text` with the `_Where` built only when there is an error to explain."""
    try:
        compiled = _compile(source)
        if compiled.parts is not None and compiled.const is not None:
            return compiled.const
        rendered = compiled.render(context)
    except Exception as exc:  # any template failure is the user's to fix
        from jinja2.exceptions import TemplateSyntaxError  # loaded already: Jinja raised

        line = exc.lineno if isinstance(exc, TemplateSyntaxError) else None
        if not isinstance(exc, TemplateSyntaxError):
            line = _template_line(exc.__traceback__)
        where = _Where(
            address=address,
            path=path,
            agent=agent,
            hint_sources=hint_sources,
            available=available,
        )
        raise RenderError(
            _explain(exc, where),
            address=address,
            path=path,
            line=line,
            agent=agent,
        ) from None
    return _tidy_quick(rendered)


_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


_ASCII_BLANKS = frozenset(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")  # str.isspace() in ASCII


def _tidy_quick(text: str) -> str:
    """`_tidy(text)`, without the work when an ASCII text is already tidy (once its trailing
    newlines are gone): no line break but the newline (nor any other control blank), no blank
    ending a line or the text, no three newlines in a row, no newline starting the text."""
    if not text.isascii():
        return _tidy(text)
    if text[-1:] == "\n":
        text = text.rstrip("\n")  # trailing newlines only end in blank lines, which tidy drops
    if not text:
        return text
    if (
        text[-1] in _ASCII_BLANKS
        or "\r" in text
        or "\x0b" in text
        or "\x0c" in text
        or "\x1c" in text
        or "\x1d" in text
        or "\x1e" in text
        or "\x1f" in text
    ):
        return _tidy(text)
    if "\n" in text and (text[0] == "\n" or " \n" in text or "\t\n" in text or "\n\n\n" in text):
        return _tidy(text)
    return text


def traits_text(personality: Personality) -> str:
    """The traits as one human sentence: `Tone: professional; detail: detailed; ...`."""
    parts = [
        f"{label}: {getattr(personality.traits, trait)}"
        for trait, label in _TRAIT_LABELS
        if getattr(personality.traits, trait) is not None
    ]
    return "; ".join(parts) + "." if parts else ""


def _personality_view(p: Personality) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "traits": p.traits.model_dump(mode="json", exclude_none=True),
        "traits_text": traits_text(p),
        "prompt_modifiers": list(p.prompt_modifiers),
        "response_templates": dict(p.response_templates),
        "prohibited_behaviors": list(p.prohibited_behaviors),
    }


def _guideline_view(g: Guideline) -> dict[str, Any]:
    return {"condition": g.condition, "action": g.action, "priority": g.priority}


# ---------------------------------------------------------------- render_agent


def _check_metadata(resolved: ResolvedAgent) -> None:
    source = resolved.source_of("metadata")
    for key, value in resolved.metadata.items():
        if key in RESERVED_METADATA_KEYS:
            raise RenderError(
                f"metadata key {key!r} is reserved for runner's own bookkeeping; use another key",
                address=source,
                path=("metadata", key),
                agent=resolved.name,
            )
        if len(key) > _MAX_METADATA_KEY or len(value) > _MAX_METADATA_VALUE:
            raise RenderError(
                f"metadata {key!r}: Foundry allows keys of at most {_MAX_METADATA_KEY} characters "
                f"and values of at most {_MAX_METADATA_VALUE}",
                address=source,
                path=("metadata", key),
                agent=resolved.name,
            )
    if len(resolved.metadata) > MAX_USER_METADATA:
        raise RenderError(
            f"{len(resolved.metadata)} metadata entries: Foundry allows 16 per agent and runner "
            f"keeps {len(RESERVED_METADATA_KEYS)}, so at most {MAX_USER_METADATA} are yours",
            address=source,
            path=("metadata",),
            agent=resolved.name,
        )


def _pieces(resolved: ResolvedAgent) -> Iterator[tuple[str, tuple[PathItem, ...], str]]:
    """(address, path, source) of every text rendered before the layout, in a fixed order."""
    if resolved.instructions is not None:
        yield resolved.source_of("instructions"), ("instructions",), resolved.instructions
    p = resolved.personality
    if p is not None:
        p_address = address_of("Personality", p.name)
        for i, text in enumerate(p.prompt_modifiers):
            yield p_address, ("prompt_modifiers", i), text
        for key, text in p.response_templates.items():
            yield p_address, ("response_templates", key), text
        for i, text in enumerate(p.prohibited_behaviors):
            yield p_address, ("prohibited_behaviors", i), text
    g_address = resolved.source_of("guidelines")
    for i, g in enumerate(resolved.guidelines):
        yield g_address, ("guidelines", i, "condition"), g.condition
        yield g_address, ("guidelines", i, "action"), g.action


def render_agent(project: Project, agent_name: str, env: Environment) -> RenderedAgent:
    """Resolve and render agent `agent_name` for `env`; RenderError on any faulty text."""
    return prepare_agent(project, agent_name).render(env)


def prepare_agent(project: Project, agent_name: str) -> PreparedAgent:
    """Resolve agent `agent_name` and check what does not depend on the environment; render it
    for any number of environments with `.render(env)` (as `render_agent` does for one).

    RenderError for an unknown agent, template or personality, a missing model or instructions,
    or bad metadata: the errors `render_agent` raises before it renders any text.
    """
    resolved = resolve_agent(project, agent_name)
    if resolved.model is None:
        raise RenderError(
            "no model: set 'model' on the agent or on its template",
            address=resolved.address,
            path=("model",),
            agent=agent_name,
        )
    if resolved.instructions is None:
        raise RenderError(
            "no instructions: set 'instructions' on the agent or on its template",
            address=resolved.address,
            path=("instructions",),
            agent=agent_name,
        )
    _check_metadata(resolved)
    return PreparedAgent(resolved)


def _fixed_text(source: str) -> str | None:
    """What `_render_at` gives for `source` when it holds no template syntax, else None."""
    try:
        compiled = _compile(source)
    except Exception:  # a syntax error: rendering reports it where it belongs
        return None
    return compiled.const if compiled.parts is not None else None


class PreparedAgent:
    """An agent resolved and checked once, with its environment-independent template variables
    built once, ready to render in every environment."""

    def __init__(self, resolved: ResolvedAgent) -> None:
        self.resolved = resolved
        self._hint_base = ", ".join(
            [resolved.address]
            + ([address_of("Template", resolved.template)] if resolved.template else [])
        )
        personality_view = (
            _personality_view(resolved.personality) if resolved.personality is not None else None
        )
        self._personality_view = personality_view
        # Values shared by every environment's context (the sandbox is immutable: templates
        # cannot change them). The `_Named` views Jinja needs are built on first need.
        self._agent = {"name": resolved.name, "description": resolved.description}
        self._guidelines = [_guideline_view(g) for g in resolved.guidelines]
        self._capabilities = list(resolved.capabilities)
        self._named_shared: tuple[Any, Any, Any] | None = None
        self._pieces = list(_pieces(resolved))
        # A text without template syntax is the same tidied text in every environment.
        self._fixed = [_fixed_text(source) for _address, _path, source in self._pieces]
        p = resolved.personality
        self._counts = (
            (len(p.prompt_modifiers), len(p.response_templates), len(p.prohibited_behaviors))
            if p is not None
            else (0, 0, 0)
        )

    def _shared_named(self) -> tuple[Any, Any, Any]:
        """The `_Named` views of agent, personality and guidelines (built once)."""
        shared = self._named_shared
        if shared is None:
            view = self._personality_view
            shared = self._named_shared = (
                _named("agent", self._agent),
                _named("personality", view) if view is not None else None,
                _named("guidelines", self._guidelines),
            )
        return shared

    def render(self, env: Environment) -> RenderedAgent:
        """Render every text for `env`; RenderError on any faulty text."""
        resolved = self.resolved
        instructions = self.instructions(env)
        assert resolved.model is not None  # checked by prepare_agent
        return RenderedAgent(
            name=resolved.name,
            foundry_name=env.name_prefix + resolved.name,
            model=resolved.model,
            instructions=instructions,
            temperature=resolved.temperature,
            top_p=resolved.top_p,
            tool_choice=resolved.tool_choice,
            tools=[_tool_body(t) for t in resolved.tools],
            description=resolved.description,
            metadata=dict(resolved.metadata),
            max_turns=resolved.max_turns,
            capabilities=list(resolved.capabilities),
            personality=resolved.personality_name,
        )

    def instructions(self, env: Environment) -> str:
        """The final instructions for `env` (what `render(env).instructions` holds)."""
        resolved = self.resolved
        agent_name = resolved.name
        merged_vars = _merge_vars(resolved.vars, env.vars)
        env_view = {"name": env.name, "name_prefix": env.name_prefix}
        hint_sources = f"{self._hint_base} or {address_of('Environment', env.name)}"
        values: dict[str, Any] = {
            "vars": merged_vars,
            "agent": self._agent,
            "env": env_view,
            "personality": self._personality_view,
            "guidelines": self._guidelines,
            "capabilities": self._capabilities,
        }

        def named() -> dict[str, Any]:
            agent, personality, guidelines = self._shared_named()
            return {
                "vars": _named("vars", merged_vars),
                "agent": agent,
                "env": _named("env", env_view),
                "personality": personality,
                "guidelines": guidelines,
                "capabilities": list(resolved.capabilities),
            }

        context = _Context(values, named)
        rendered = [
            _render_at(source, context, address, path, agent_name, hint_sources)
            if fixed is None
            else fixed
            for fixed, (address, path, source) in zip(self._fixed, self._pieces, strict=True)
        ]

        layout_source = resolved.layout if resolved.layout is not None else DEFAULT_LAYOUT
        layout_values = dict(values)
        layout_values["instructions"] = rendered[0]
        personality: dict[str, Any] | None = None
        at = 1
        personality_view = self._personality_view
        if resolved.personality is not None and personality_view is not None:
            p = resolved.personality
            modifiers, templates, prohibited = self._counts
            personality = {
                **personality_view,
                "prompt_modifiers": rendered[at : at + modifiers],
                "response_templates": dict(
                    zip(
                        p.response_templates,
                        rendered[at + modifiers : at + modifiers + templates],
                        strict=True,
                    )
                ),
                "prohibited_behaviors": rendered[
                    at + modifiers + templates : at + modifiers + templates + prohibited
                ],
            }
            layout_values["personality"] = personality
            at += modifiers + templates + prohibited
        rendered_guidelines = [
            {
                "condition": rendered[at + 2 * i],
                "action": rendered[at + 2 * i + 1],
                "priority": g.priority,
            }
            for i, g in enumerate(resolved.guidelines)
        ]
        rendered_guidelines.sort(key=_by_priority)
        layout_values["guidelines"] = rendered_guidelines

        def layout_named() -> dict[str, Any]:
            # The default layout reads only keys that exist: no undefined-variable message to name.
            wrap = _as_is if layout_source == DEFAULT_LAYOUT else _named
            out = named()
            out["instructions"] = layout_values["instructions"]
            if personality is not None:
                out["personality"] = wrap("personality", personality)
            out["guidelines"] = wrap("guidelines", rendered_guidelines)
            return out

        return _render_at(
            layout_source,
            _Context(layout_values, layout_named),
            resolved.source_of("layout"),
            ("layout",),
            agent_name,
            hint_sources,
            (*_TOP_LEVEL, "instructions"),
        )


_by_priority: Callable[[Mapping[str, Any]], int] = lambda g: int(g["priority"])  # noqa: E731


def _tool_body(tool: Tool) -> dict[str, Any]:
    body: dict[str, Any] = tool.model_dump(mode="json", by_alias=True)
    return body
