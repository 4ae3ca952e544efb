"""The function tools of each agent and the Python functions that implement them.

Role in the flow: built by the composition root, loaded when the runtime opens and on every
reload (`load`: the declared agents and templates), asked on a turn for the answering agent's
tools (`for_agent`). A function tool's implementation is, in order: the function registered in
code under its name (`Lifecycle.register_tool(name, fn)`, sync or async, for every agent with a
tool of that name), else the spec's `implementation: "package.module:function"`; a tool with
neither is answered with an error output when the model calls it.

`package.module` is imported from `sys.path`, else from the directory of the spec file that
declares the tool (and that directory's parent), so a project can keep its tools next to its
specs. A path that does not resolve is a `ToolImplementationError` naming the spec position
(`file:line:col`) and what is wrong, when the runtime opens: never at the first call.

Invariants: `load` builds the new table first and swaps it in only when every implementation
resolved (a failed reload keeps the old one); the runner-only keys (`implementation`, `timeout`)
never reach Foundry (`runner.spec.render`).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.runtime.errors import ToolImplementationError
from runner.spec.models import Agent, Template, Tool, address_of, parse_duration
from runner.spec.project import Project

__all__ = [
    "DEFAULT_MAX_TOOL_ROUNDS",
    "AgentTools",
    "FunctionTool",
    "ToolCatalog",
    "ToolFunction",
    "resolve_implementation",
]

DEFAULT_MAX_TOOL_ROUNDS = 8
"""Function-call rounds a turn may take when the agent sets no `max_tool_rounds`."""

ToolFunction = Callable[..., Any] | Callable[..., Awaitable[Any]]
"""A tool's implementation: called with the call's arguments as keyword arguments."""


@dataclass(frozen=True)
class FunctionTool:
    """One function tool of an agent: its schema, implementation and per-call timeout."""

    name: str
    parameters: Mapping[str, Any] | None
    implementation: ToolFunction | None
    timeout_s: float | None


@dataclass(frozen=True)
class AgentTools:
    """An agent's function tools by name, and how many rounds a turn may take."""

    functions: Mapping[str, FunctionTool] = field(default_factory=dict)
    max_rounds: int = DEFAULT_MAX_TOOL_ROUNDS


_NONE = AgentTools()


def _import_near(module: str, near: Path | None) -> Any:
    """Import `module` from sys.path, else with its top package found next to `near`."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.partition(".")[0]
        if near is None or exc.name not in (top, module):
            raise
        for directory in (near, near.parent):
            spec = importlib.machinery.PathFinder.find_spec(top, [str(directory)])
            if spec is None or spec.loader is None:
                continue
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[top] = loaded
            try:
                spec.loader.exec_module(loaded)
            except BaseException:
                sys.modules.pop(top, None)
                raise
            return importlib.import_module(module)
        raise


def resolve_implementation(path: str, *, near: Path | None = None) -> ToolFunction:
    """The callable `package.module:function` names; ValueError saying why not."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError("expected 'package.module:function'")
    try:
        found: Any = _import_near(module_name, near)
    except ModuleNotFoundError as exc:
        where = f" (searched sys.path and {near})" if near is not None else ""
        raise ValueError(f"no module named {exc.name!r}{where}") from None
    except Exception as exc:
        raise ValueError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{module_name!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"{attribute!r} in {module_name!r} is not callable")
    function: ToolFunction = found
    return function


class ToolCatalog:
    """Each agent's function tools (see the module docstring)."""

    def __init__(self) -> None:
        self._registered: dict[str, ToolFunction] = {}
        self._agents: dict[str, tuple[Agent, AgentTools]] = {}
        self._declared: Mapping[str, Agent] = {}
        self._templates: Mapping[str, Template] = {}
        self._project = Project()

    def register(self, name: str, function: ToolFunction) -> None:
        """Run `function` for every call of a function tool named `name` (any agent); it
        replaces a spec's `implementation` and an earlier registration."""
        if not callable(function):
            raise TypeError(f"register_tool({name!r}, ...): {function!r} is not callable")
        self._registered[name] = function
        self._agents = {}  # rebuilt on demand with the registration

    def load(
        self, agents: Mapping[str, Agent], templates: Mapping[str, Template], project: Project
    ) -> None:
        """Resolve every declared function tool; ToolImplementationError for a bad path."""
        table = {
            name: (agent, self._build(agent, templates, project))
            for name, agent in sorted(agents.items())
        }
        self._declared, self._templates, self._project = dict(agents), dict(templates), project
        self._agents = table

    def for_agent(self, name: str, spec: Agent | None = None) -> AgentTools:
        """The function tools of agent `name` as `spec` declares it (default: as loaded; an
        agent defined in code since is built on first use); none for an undeclared agent."""
        spec = spec or self._declared.get(name)
        if spec is None:
            return _NONE
        found = self._agents.get(name)
        if found is None or found[0] is not spec:
            found = self._agents[name] = (spec, self._build(spec, self._templates, self._project))
        return found[1]

    def _build(
        self, agent: Agent, templates: Mapping[str, Template], project: Project
    ) -> AgentTools:
        template = templates.get(agent.template) if agent.template else None
        owner: Agent | Template = agent
        tools = agent.tools
        if tools is None and template is not None:
            owner, tools = template, template.tools
        rounds = agent.max_tool_rounds or (template.max_tool_rounds if template else None)
        functions: dict[str, FunctionTool] = {}
        for index, tool in enumerate(tools or ()):
            if tool.type != "function":
                continue
            name = str(getattr(tool, "name", "") or "")
            if name:
                functions[name] = self._function(owner, index, name, tool, project)
        return AgentTools(functions, rounds or DEFAULT_MAX_TOOL_ROUNDS)

    def _function(
        self, owner: Agent | Template, index: int, name: str, tool: Tool, project: Project
    ) -> FunctionTool:
        parameters = getattr(tool, "parameters", None)
        implementation = self._registered.get(name)
        if implementation is None and tool.implementation is not None:
            document = project.document(address_of(owner.kind, owner.name))
            near = None
            where = f"{owner.kind.lower()}.{owner.name}"
            if document is not None:
                position = document.position_of(("tools", index, "implementation"))
                where = str(position)
                if not position.file.startswith("<"):
                    near = Path(position.file).resolve().parent
            try:
                implementation = resolve_implementation(tool.implementation, near=near)
            except ValueError as exc:
                raise ToolImplementationError(
                    f"{where}: {owner.kind.lower()}.{owner.name} tool {name!r}: implementation "
                    f"{tool.implementation!r}: {exc}; fix the path or register the function "
                    "with Lifecycle.register_tool"
                ) from None
        return FunctionTool(
            name=name,
            parameters=parameters if isinstance(parameters, Mapping) else None,
            implementation=implementation,
            timeout_s=parse_duration(tool.timeout) if tool.timeout else None,
        )
