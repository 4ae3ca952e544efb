"""Agent rendering: typed specs -> the desired Foundry definition, for one Environment.

Flow: `resolve_agent` (`render_resolve`) merges an Agent with its Template and resolves its
Personality; `prepare_agent` checks what does not depend on the environment, and
`PreparedAgent.render(env)` renders every Jinja2 text of the result and composes the final
instructions with a *layout*; `render_agent` does both for one environment. The result,
`RenderedAgent`, is what plan/apply compare and send: `definition()` is the Foundry prompt-agent
definition, `content_hash()` its stable fingerprint. `runner.spec.checks` prepares every agent and
renders it in every environment, and reports a `RenderError` at the file:line:col of the faulty
text.

This module is the composition; each step owns its names:
  `render_resolve`  merging agent + template (`ResolvedAgent`), metadata checks, the texts to
                    render, `RenderedAgent`, `RenderError`;
  `render_jinja`    one text: the compiled-text cache (`compile_text`, `clear_cache`), the
                    sandboxed Jinja Environment, `render_text_at` and its error translation;
  `render_fast`     the no-Jinja fast paths for plain and simple texts, and output tidying;
  `render_layout`   `DEFAULT_LAYOUT`, its no-Jinja renderer, the personality/guideline views;
  `render_split`    cutting the pieces that read session values out of a text;
  `render_session`  the session plan: the structured inputs a version declares, a session's.

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
  `prefs`         the session's preferences (declared on the Agent or Template), by name
  `features`      the session's feature toggles (true/false), by name

Session values (`prefs`, `features`, and `vars` keys a Workspace sets) are never baked into the
version: each top-level piece of a text that reads one becomes a Foundry structured-input
placeholder (`{{formality}}` for a plain `{{ prefs.formality }}`, else a computed
`{{runner_<hash>}}`), declared in the definition's `structured_inputs` and filled per request
(`runner.spec.render_session`). One version serves every combination.

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

from collections.abc import Callable, Mapping
from typing import Any

from runner.providers.base import placeholder_names
from runner.spec.models import RUNNER_ONLY_TOOL_KEYS, Environment, Tool, address_of
from runner.spec.project import Project
from runner.spec.render_jinja import (
    TOP_LEVEL_VARIABLES,
    RenderContext,
    as_is,
    fixed_text,
    named_view,
    render_text_at,
)
from runner.spec.render_layout import DEFAULT_LAYOUT, guideline_view, personality_view
from runner.spec.render_resolve import (
    RenderedAgent,
    RenderError,
    ResolvedAgent,
    check_metadata,
    merge_vars,
    resolve_agent,
    texts_to_render,
)
from runner.spec.render_session import (
    UNAVAILABLE_TOOLS_INPUT,
    ComputedInput,
    SessionPlan,
    SessionSpec,
    cut_text,
    layout_filler,
)
from runner.spec.render_split import unslot

__all__ = ["PreparedAgent", "prepare_agent", "render_agent"]


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
    check_metadata(resolved)
    return PreparedAgent(resolved)


class PreparedAgent:
    """An agent resolved and checked once, with its environment-independent template variables
    built once, ready to render in every environment."""

    def __init__(self, resolved: ResolvedAgent) -> None:
        self.resolved = resolved
        self._hint_base = ", ".join(
            [resolved.address]
            + ([address_of("Template", resolved.template)] if resolved.template else [])
        )
        self._personality_view = (
            personality_view(resolved.personality) if resolved.personality is not None else None
        )
        # Values shared by every environment's context (the sandbox is immutable: templates
        # cannot change them). The `_Named` views Jinja needs are built on first need.
        self._agent = {"name": resolved.name, "description": resolved.description}
        self._guidelines = [guideline_view(g) for g in resolved.guidelines]
        self._capabilities = list(resolved.capabilities)
        self._named_shared: tuple[Any, Any, Any] | None = None
        self._spec = SessionSpec(
            preferences=resolved.preferences,
            features=resolved.features,
            overlaid=resolved.overlaid,
            function_tools=frozenset(
                str(getattr(t, "name", "")) for t in resolved.tools if t.type == "function"
            ),
        )
        self._computed: list[ComputedInput] = []
        self._slots: list[list[str] | None] = []
        self._texts = []
        for address, path, source in texts_to_render(resolved):
            cut, names = cut_text(self._spec, self._computed, resolved.name, address, path, source)
            self._texts.append((address, path, cut))
            self._slots.append(names)
        layout = resolved.layout if resolved.layout is not None else DEFAULT_LAYOUT
        self._layout, self._layout_slots = cut_text(
            self._spec,
            self._computed,
            resolved.name,
            resolved.source_of("layout"),
            ("layout",),
            layout,
            stage="layout",
        )
        # Something varies per session: declared preferences or features, or a text was cut.
        self._session = bool(
            self._spec.preferences or self._spec.features or any(self._slots) or self._layout_slots
        )
        self._plans: dict[int, tuple[Environment, SessionPlan]] = {}
        # A text without template syntax is the same tidied text in every environment.
        self._fixed = [fixed_text(source) for _address, _path, source in self._texts]
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
                named_view("agent", self._agent),
                named_view("personality", view) if view is not None else None,
                named_view("guidelines", self._guidelines),
            )
        return shared

    def render(self, env: Environment) -> RenderedAgent:
        """Render every text for `env`; RenderError on any faulty text."""
        resolved = self.resolved
        instructions = self.instructions(env)
        assert resolved.model is not None  # checked by prepare_agent
        plan = self.session_plan(env)
        return RenderedAgent(
            name=resolved.name,
            foundry_name=env.name_prefix + resolved.name,
            model=resolved.model,
            instructions=instructions,
            temperature=resolved.temperature,
            top_p=resolved.top_p,
            tool_choice=resolved.tool_choice,
            tools=[
                _tool_body(t) for t in resolved.tools if self._spec.in_version(t.type, env.features)
            ],
            description=resolved.description,
            metadata=dict(resolved.metadata),
            max_turns=resolved.max_turns,
            capabilities=list(resolved.capabilities),
            personality=resolved.personality_name,
            structured_inputs=plan.structured_inputs() if plan is not None else {},
            session=plan,
        )

    def session_plan(self, env: Environment) -> SessionPlan | None:
        """The agent's session-time side in `env` (None: nothing varies per session)."""
        if not self._session:
            return None
        cached = self._plans.get(id(env))
        if cached is None or cached[0] is not env:
            self.instructions(env)
            cached = self._plans[id(env)]
        return cached[1]

    def instructions(self, env: Environment) -> str:
        """The final instructions for `env` (what `render(env).instructions` holds)."""
        resolved = self.resolved
        agent_name = resolved.name
        merged_vars = merge_vars(resolved.vars, env.vars)
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
                "vars": named_view("vars", merged_vars),
                "agent": agent,
                "env": named_view("env", env_view),
                "personality": personality,
                "guidelines": guidelines,
                "capabilities": list(resolved.capabilities),
            }

        context = RenderContext(values, named)
        rendered = [
            render_text_at(source, context, address, path, agent_name, hint_sources)
            if fixed is None
            else fixed
            for fixed, (address, path, source) in zip(self._fixed, self._texts, strict=True)
        ]
        if self._session:
            slots = self._slots
            rendered = [unslot(r, n) if n else r for r, n in zip(rendered, slots, strict=True)]

        layout_source = resolved.layout if resolved.layout is not None else DEFAULT_LAYOUT
        layout_values = dict(values)
        layout_values["instructions"] = rendered[0]
        personality: dict[str, Any] | None = None
        at = 1
        written_personality = self._personality_view
        if resolved.personality is not None and written_personality is not None:
            p = resolved.personality
            modifiers, templates, prohibited = self._counts
            personality = {
                **written_personality,
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
            wrap = as_is if layout_source == DEFAULT_LAYOUT else named_view
            out = named()
            out["instructions"] = layout_values["instructions"]
            if personality is not None:
                out["personality"] = wrap("personality", personality)
            out["guidelines"] = wrap("guidelines", rendered_guidelines)
            return out

        text = render_text_at(
            self._layout,
            RenderContext(layout_values, layout_named),
            resolved.source_of("layout"),
            ("layout",),
            agent_name,
            hint_sources,
            (*TOP_LEVEL_VARIABLES, "instructions"),
        )
        if not self._session:
            return text
        text = unslot(text, self._layout_slots or [])
        return self._with_session(env, text, values, layout_values)

    def _with_session(
        self,
        env: Environment,
        text: str,
        text_values: dict[str, Any],
        layout_values: dict[str, Any],
    ) -> str:
        """`text` (the version's instructions) with the session plan for `env` built, checked
        (every computed piece renders with the defaults) and kept for `render`."""
        spec = self._spec
        prefs = {
            name: env.preferences.get(name, p.default)
            for name, p in spec.preferences.items()
            if name in env.preferences or p.has_default
        }
        features = {name: env.features.get(name, f.default) for name, f in spec.features.items()}

        plan = SessionPlan(
            agent=self.resolved.name,
            spec=spec,
            preferences=prefs,
            features=features,
            text_values=text_values,
            computed=self._computed,
            layout_values=layout_filler(layout_values),
        )
        if plan.notice:
            text += "\n\n{{" + UNAVAILABLE_TOOLS_INPUT + "}}"
        declared = plan.structured_inputs()  # renders every piece with the defaults
        unknown = [name for name in placeholder_names(text) if name not in declared]
        if unknown:
            raise RenderError(
                f"the instructions hold {{{{{unknown[0]}}}}}, which Foundry reads as a "
                "structured-input placeholder, and no such input is declared; declare a "
                f"preference {unknown[0]!r}, or write the braces another way",
                address=self.resolved.source_of("layout"),
                path=("layout",),
                agent=self.resolved.name,
            )
        self._plans[id(env)] = (env, plan)
        return text


_by_priority: Callable[[Mapping[str, Any]], int] = lambda g: int(g["priority"])  # noqa: E731


def _tool_body(tool: Tool) -> dict[str, Any]:
    body: dict[str, Any] = tool.model_dump(
        mode="json", by_alias=True, exclude=set(RUNNER_ONLY_TOOL_KEYS)
    )
    return body
