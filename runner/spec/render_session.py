"""Session-time values of an agent: the structured inputs its version declares and each session
fills.

Role in the flow: `runner.spec.render` builds a `SessionPlan` for an agent with declared
preferences or features, or texts reading `vars` a Workspace overrides. The plan knows the
pieces `runner.spec.render_split` cut out of its texts (each a computed input `runner_<hash>`),
the preferences and features it declares, and the function tools features switch. It gives:
  - `structured_inputs()`: the definition's `structured_inputs` (Foundry's
    `PromptAgentDefinition.structured_inputs`): every declared preference (schema, default), every
    per-session feature (boolean), every computed piece, and `runner_unavailable_tools` when
    features switch function tools, each with its `default_value` for this environment;
  - `inputs(...)`: the values one session sends with every response request (the request's
    top-level `structured_inputs`), from its effective preferences, features and workspace vars.

Invariants: the version's instructions with `inputs(...)` put into their `{{name}}` placeholders
read as the agent's texts rendered with those values (see `render_split` for the whitespace
rules); no value is computed from anything but the plan and its arguments, so the same arguments
give the same inputs in any process; a failing piece is a `RenderError` at its text and line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.providers.base import fill_placeholders
from runner.spec.models import Feature, Preference
from runner.spec.project import PathItem
from runner.spec.render_fast import tidy
from runner.spec.render_jinja import (
    RenderContext,
    TextLocation,
    compile_text,
    error_code,
    error_line,
    explain,
    named_view,
)
from runner.spec.render_resolve import RenderError, merge_vars
from runner.spec.render_split import Cut, derived_name, split_text

__all__ = [
    "UNAVAILABLE_TOOLS_INPUT",
    "ComputedInput",
    "SessionPlan",
    "SessionSpec",
    "cut_text",
    "layout_filler",
    "unavailable_tools_text",
]

UNAVAILABLE_TOOLS_INPUT = "runner_unavailable_tools"
"""The computed input naming the function tools switched off for the session."""


def unavailable_tools_text(tools: Sequence[str]) -> str:
    """What the model is told about the function tools switched off for its session."""
    if not tools:
        return ""
    return (
        "These tools are unavailable in this session; do not call them: "
        + ", ".join(sorted(tools))
        + "."
    )


@dataclass(frozen=True)
class SessionSpec:
    """What an agent declares for sessions (the same in every environment)."""

    preferences: Mapping[str, Preference] = field(default_factory=dict)
    features: Mapping[str, Feature] = field(default_factory=dict)
    overlaid: frozenset[str] = frozenset()
    function_tools: frozenset[str] = frozenset()

    def fixed_features(self) -> dict[str, tuple[str, ...]]:
        """Features that switch server-side tools (by type): fixed per environment, because
        server-side tools are part of the agent version."""
        return {
            name: tuple(t for t in f.tools if t not in self.function_tools)
            for name, f in self.features.items()
            if any(t not in self.function_tools for t in f.tools)
        }

    def gated_tools(self) -> dict[str, tuple[str, ...]]:
        """Function tool -> the features that switch it on (any one of them suffices)."""
        gates: dict[str, list[str]] = {}
        for name, f in self.features.items():
            for tool in f.tools:
                if tool in self.function_tools:
                    gates.setdefault(tool, []).append(name)
        return {tool: tuple(names) for tool, names in gates.items()}

    def in_version(self, tool_type: str, env_features: Mapping[str, bool]) -> bool:
        """False for a server-side tool a feature switches off in the environment (per
        environment only: server-side tools are part of the version)."""
        for name, types in self.fixed_features().items():
            if tool_type in types and not env_features.get(name, self.features[name].default):
                return False
        return True

    def disabled_tools(self, features: Mapping[str, bool]) -> list[str]:
        """The function tools switched off by `features` (effective values), sorted."""
        return sorted(
            tool
            for tool, names in self.gated_tools().items()
            if not any(features.get(n, False) for n in names)
        )


@dataclass(frozen=True)
class ComputedInput:
    """A piece cut out of one text, computed per session: `stage` "text" pieces see the agent's
    variables, "layout" pieces the layout's (with the session's texts)."""

    name: str
    cut: Cut
    address: str
    path: tuple[PathItem, ...]
    stage: str


class SessionPlan:
    """The session-time side of one agent in one environment (see the module docstring)."""

    def __init__(
        self,
        *,
        agent: str,
        spec: SessionSpec,
        preferences: Mapping[str, Any],
        features: Mapping[str, bool],
        text_values: Mapping[str, Any],
        computed: Sequence[ComputedInput],
        layout_values: Callable[[Mapping[str, Any]], dict[str, Any]] | None,
    ) -> None:
        self.agent = agent
        self.spec = spec
        self.default_preferences = dict(preferences)  # declared < environment
        self.default_features = dict(features)
        self._text_values = text_values
        self.computed = tuple(computed)
        self._layout_values = layout_values
        self.notice = bool(spec.gated_tools())
        self._defaults: dict[str, Any] | None = None
        fixed = spec.fixed_features()
        self._switchable = [name for name in spec.features if name not in fixed]

    # ------------------------------------------------------------ the definition

    def session_features(self) -> list[str]:
        """Features a workspace or session may switch (those not fixed per environment)."""
        return self._switchable

    def defaults(self) -> dict[str, Any] | None:
        """The inputs with no workspace and no session values (None: a required preference
        has no default). Computed once, so a faulty piece fails `runner validate`: a required
        preference is rendered with a sample value (its first allowed value or example)."""
        if self._defaults is None:
            prefs = {
                name: self.default_preferences.get(name, _sample(p))
                for name, p in self.spec.preferences.items()
            }
            self._defaults = self.inputs(
                preferences=prefs, features=self.default_features, vars=None
            )
        if any(name not in self.default_preferences for name in self.spec.preferences):
            return None
        return self._defaults

    def structured_inputs(self) -> dict[str, dict[str, Any]]:
        """The definition's `structured_inputs`: name -> {description, default_value, schema,
        required}."""
        defaults = self.defaults()
        out: dict[str, dict[str, Any]] = {}
        for name, pref in self.spec.preferences.items():
            entry: dict[str, Any] = {}
            if pref.description:
                entry["description"] = pref.description
            if name in self.default_preferences:
                entry["default_value"] = self.default_preferences[name]
            entry["schema"] = pref.input_schema()
            if pref.required:
                entry["required"] = True
            out[name] = entry
        for name in self.session_features():
            feature = self.spec.features[name]
            about = "Feature toggle" + (f": {feature.description}" if feature.description else "")
            if feature.tools:
                about += f" (enables: {', '.join(feature.tools)})"
            out[name] = {
                "description": about,
                "default_value": self.default_features.get(name, feature.default),
                "schema": {"type": "boolean"},
            }
        for item in self.computed:
            out[item.name] = _computed_entry(
                f"Computed by runner for each session from {item.address} "
                f"{'.'.join(str(p) for p in item.path)} (line {item.cut.line})",
                None if defaults is None else defaults[item.name],
            )
        if self.notice:
            out[UNAVAILABLE_TOOLS_INPUT] = _computed_entry(
                "Computed by runner for each session: the function tools switched off",
                None if defaults is None else defaults[UNAVAILABLE_TOOLS_INPUT],
            )
        return out

    # ------------------------------------------------------------ one session

    def inputs(
        self,
        *,
        preferences: Mapping[str, Any],
        features: Mapping[str, bool],
        vars: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The structured inputs of a session with these effective preferences and features
        (every declared one present) and workspace `vars` (None: no workspace overlay)."""
        inputs: dict[str, Any] = {name: preferences[name] for name in self.spec.preferences}
        for name in self.session_features():
            inputs[name] = bool(features.get(name, False))
        if self.computed:
            text_values = dict(self._text_values)
            if vars:
                text_values["vars"] = merge_vars(text_values["vars"], vars)
            text_values["prefs"] = dict(preferences)
            text_values["features"] = {n: bool(features.get(n, False)) for n in self.spec.features}
            layout: dict[str, Any] | None = None
            for item in self.computed:
                if item.stage == "text":
                    inputs[item.name] = self._compute(item, text_values)
                    continue
                if layout is None:
                    assert self._layout_values is not None
                    layout = self._layout_values(inputs)
                    for key in ("vars", "prefs", "features"):
                        layout[key] = text_values[key]
                inputs[item.name] = fill_placeholders(self._compute(item, layout), inputs)
        if self.notice:
            inputs[UNAVAILABLE_TOOLS_INPUT] = unavailable_tools_text(
                self.spec.disabled_tools(features)
            )
        return inputs

    def _compute(self, item: ComputedInput, values: dict[str, Any]) -> str:
        cut = item.cut

        def named() -> dict[str, Any]:
            return {key: named_view(key, value) for key, value in values.items()}

        try:
            out = compile_text(cut.source).render(RenderContext(values, named))
        except Exception as exc:  # any template failure is the spec author's to fix
            line = error_line(exc)
            where = TextLocation(item.address, item.path, self.agent, item.address)
            raise RenderError(
                explain(exc, where),
                address=item.address,
                path=item.path,
                line=None if line is None else cut.line + max(0, line - 1 - cut.prelude_lines),
                agent=self.agent,
                code=error_code(exc),
            ) from None
        return tidy(out) if cut.whole else out


def _computed_entry(description: str, default: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"description": description}
    if default is not None:
        entry["default_value"] = default
    entry["schema"] = {"type": "string"}
    return entry


def _sample(pref: Preference) -> Any:
    """A value of a required preference to render its pieces with when checking them."""
    if pref.values:
        return pref.values[0]
    schema = pref.schema_ or {}
    for key in ("examples", "enum"):
        found = schema.get(key)
        if isinstance(found, list) and found:
            return found[0]
    kind = schema.get("type")
    samples: dict[str, Any] = {
        "string": "",
        "integer": 0,
        "number": 0,
        "boolean": False,
        "array": [],
        "object": {},
    }
    return samples.get(kind if isinstance(kind, str) else "string", "")


def cut_text(
    spec: SessionSpec,
    computed: list[ComputedInput],
    agent: str,
    address: str,
    path: tuple[PathItem, ...],
    source: str,
    *,
    stage: str = "text",
) -> tuple[str, list[str] | None]:
    """`source` as the version renders it, and the input name of each of its slots (None:
    nothing in it varies per session); new computed pieces are appended to `computed`.

    RenderError for a preference or feature the text reads and the agent does not declare, and
    for a `{% set %}` (or macro, import) reading a session value."""
    try:
        split = split_text(source, spec.overlaid)
    except RenderError as exc:
        raise RenderError(
            exc.message, address=address, path=path, line=exc.line, agent=agent, detail=exc.detail
        ) from None
    if split is None:
        return source, None
    for root, used, declared, key in (
        ("prefs", split.prefs, spec.preferences, "preferences"),
        ("features", split.features, spec.features, "features"),
    ):
        for name in sorted(used - set(declared)):
            known = ", ".join(sorted(declared)) or "none"
            raise RenderError(
                f"{root}.{name}: nothing named {name!r} is declared under '{key}:' (declared: "
                f"{known}); declare it on the agent or its template",
                address=address,
                path=path,
                line=source.count("\n", 0, max(0, source.find(f"{root}.{name}"))) + 1,
                agent=agent,
            )
    names: list[str] = []
    for cut in split.cuts:
        if cut.direct is not None:
            names.append(cut.direct)
            continue
        name = derived_name(f"{stage}:{cut.source}")
        names.append(name)
        if all(c.name != name for c in computed):
            computed.append(ComputedInput(name, cut, address, path, stage))
    return split.definition, names


def layout_filler(
    layout_values: Mapping[str, Any],
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function giving the layout's variables with one session's inputs put into the texts
    (instructions, personality texts, guidelines), for the layout's computed pieces."""

    def fill(inputs: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(layout_values)
        out["instructions"] = fill_placeholders(layout_values["instructions"], inputs)
        written = layout_values.get("personality")
        if written is not None and "prompt_modifiers" in written:
            out["personality"] = {
                **written,
                "prompt_modifiers": [
                    fill_placeholders(t, inputs) for t in written["prompt_modifiers"]
                ],
                "response_templates": {
                    k: fill_placeholders(t, inputs)
                    for k, t in written["response_templates"].items()
                },
                "prohibited_behaviors": [
                    fill_placeholders(t, inputs) for t in written["prohibited_behaviors"]
                ],
            }
        out["guidelines"] = [
            {
                **g,
                "condition": fill_placeholders(g["condition"], inputs),
                "action": fill_placeholders(g["action"], inputs),
            }
            for g in layout_values["guidelines"]
        ]
        return out

    return fill
