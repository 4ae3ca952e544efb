"""Rendering specifications: resolution, vars precedence, layouts, errors, the sandbox, hashes.

Projects are built from YAML text the way the loader does it (safe_load_all -> KINDS -> Project).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.spec.models import KINDS, Environment
from runner.spec.project import Position, Project, SpecDocument
from runner.spec.render import render_agent
from runner.spec.render_jinja import clear_cache
from runner.spec.render_layout import DEFAULT_LAYOUT
from runner.spec.render_resolve import RenderedAgent, RenderError, resolve_agent

REPO = Path(__file__).resolve().parents[2]
CONTRACT = Path("/work/shared/contract/specs")
EXAMPLE = REPO / "specs"


def project_from_files(root: Path) -> Project:
    project = Project()
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is None:
                continue
            spec = KINDS[doc["kind"]].model_validate(doc)
            assert project.add(SpecDocument(spec, Position(str(path), 1, 1)))
    return project


def project_from_text(text: str) -> Project:
    project = Project()
    for doc in yaml.safe_load_all(textwrap.dedent(text)):
        doc.setdefault("apiVersion", "runner/v1")
        spec = KINDS[doc["kind"]].model_validate(doc)
        assert project.add(SpecDocument(spec, Position("<test>", 1, 1)))
    return project


def env(name: str = "local", **fields: Any) -> Environment:
    return Environment.model_validate(
        {"apiVersion": "runner/v1", "kind": "Environment", "name": name, **fields}
    )


@pytest.fixture(scope="module")
def contract() -> Project:
    if not CONTRACT.is_dir():
        pytest.skip("the shared contract specs are not available here")
    return project_from_files(CONTRACT)


# ---------------------------------------------------------------- the contract agents

TECH_AGENT_1 = """\
You are an expert technical support agent with deep knowledge of Contoso Cloud.

## Personality
Tone: professional; detail: detailed; initiative: proactive; creativity: balanced; empathy: high.
- Be warm and approachable while maintaining expertise
- Provide thorough explanations with examples
- Show empathy for user concerns

## Response templates
- greeting: Hello! I'm here to help you with any questions you might have.
- error: I understand this can be frustrating. Let me help you resolve this issue.
- clarification: I want to make sure I give you the most helpful answer. \
Could you tell me a bit more about...?

## Never
- Being dismissive of user concerns
- Providing incomplete answers
- Using overly technical language without explanation

## Guidelines
- When user reports error or bug: gather detailed information including error messages, \
steps to reproduce, and system environment
- When technical solution provided: explain the solution in simple terms and provide \
step-by-step instructions

## Capabilities
- technical_analysis
- code_debugging
- system_diagnostics
- documentation_search"""


def test_tech_agent_1_final_instructions_are_exact(contract: Project) -> None:
    rendered = render_agent(contract, "tech-agent-1", contract.environment("local"))
    assert rendered.instructions == TECH_AGENT_1


def test_tech_agent_1_definition_is_the_foundry_prompt_definition(contract: Project) -> None:
    rendered = render_agent(contract, "tech-agent-1", contract.environment("local"))
    assert rendered.definition() == {
        "kind": "prompt",
        "model": "gpt-4o",
        "instructions": TECH_AGENT_1,
        "temperature": 0.2,
        "tools": [{"type": "code_interpreter"}],
        "tool_choice": "auto",
    }
    assert list(rendered.definition())[-1] == "kind"  # as the SDK serializes it
    assert rendered.metadata == {"version": "2.0", "maintainer": "tech-support-team"}
    assert rendered.max_turns == 100
    assert rendered.personality == "friendly-expert"
    assert rendered.capabilities == [
        "technical_analysis",
        "code_debugging",
        "system_diagnostics",
        "documentation_search",
    ]


def test_every_contract_agent_renders_in_every_environment(contract: Project) -> None:
    for environment in contract.environments.values():
        for name in contract.agents:
            rendered = render_agent(contract, name, environment)
            assert rendered.foundry_name == environment.name_prefix + name
            assert rendered.instructions == rendered.instructions.strip()
            for line in rendered.instructions.splitlines():
                assert line == line.rstrip()


def test_standalone_agent_without_personality_keeps_its_text_only(contract: Project) -> None:
    rendered = render_agent(contract, "tech-advisor", contract.environment("local"))
    assert rendered.instructions == "You advise engineering teams on architecture choices."
    assert rendered.definition() == {
        "model": "gpt-4o-mini",
        "instructions": "You advise engineering teams on architecture choices.",
        "kind": "prompt",
    }
    assert rendered.personality is None
    assert rendered.metadata == {}


# ---------------------------------------------------------------- override semantics


def test_agent_fields_win_over_the_template(contract: Project) -> None:
    resolved = resolve_agent(contract, "tech-agent-1")
    assert resolved.temperature == 0.2  # agent
    assert resolved.model == "gpt-4o"  # template
    assert resolved.sources["temperature"] == "agent.tech-agent-1"
    assert resolved.sources["instructions"] == "template.technical-support-v2"
    assert [t.type for t in resolved.tools] == ["code_interpreter"]


def test_agent_personality_overrides_the_templates(contract: Project) -> None:
    billing = render_agent(contract, "billing-agent-1", contract.environment("local"))
    general = render_agent(contract, "general-agent-1", contract.environment("local"))
    assert billing.personality == "concise-analyst"
    assert general.personality == "friendly-expert"
    assert "Tone: formal; detail: concise; initiative: reactive" in billing.instructions
    assert "- Lead with the answer, then the evidence" in billing.instructions
    assert "Being dismissive" not in billing.instructions
    assert billing.definition()["temperature"] == 0.7  # the template's, not overridden


def test_agent_lists_replace_the_templates_instead_of_appending() -> None:
    project = project_from_text(
        """
        kind: Template
        name: t
        model: m
        instructions: hi
        capabilities: [a, b]
        guidelines: [{condition: x, action: y}]
        metadata: {team: t}
        ---
        kind: Agent
        name: x
        template: t
        capabilities: [c]
        metadata: {owner: me}
        """
    )
    rendered = render_agent(project, "x", env())
    assert rendered.capabilities == ["c"]
    assert rendered.metadata == {"owner": "me"}
    assert "- When x: y" in rendered.instructions  # guidelines not overridden: template's


# ---------------------------------------------------------------- vars precedence

VARS_PROJECT = """
kind: Template
name: t
model: m
instructions: "{{ vars.a }} {{ vars.b }} {{ vars.c }} {{ vars.db.host }}:{{ vars.db.port }}"
vars: {a: template, b: template, c: template, db: {host: tpl-host, port: 1}}
---
kind: Agent
name: x
template: t
vars: {b: agent, c: agent, db: {port: 2}}
"""


def test_vars_precedence_is_template_then_agent_then_environment() -> None:
    project = project_from_text(VARS_PROJECT)
    assert render_agent(project, "x", env()).instructions == "template agent agent tpl-host:2"
    overlay = env("prod", vars={"c": "environment", "db": {"host": "prod-host"}})
    assert render_agent(project, "x", overlay).instructions == (
        "template agent environment prod-host:2"
    )


def test_environment_vars_override_agent_vars_in_the_contract(contract: Project) -> None:
    local = render_agent(contract, "general-agent-1", contract.environment("local"))
    prod = render_agent(contract, "general-agent-1", contract.environment("prod"))
    assert local.instructions.startswith("You are a customer service agent for Contoso.\n")
    assert prod.instructions.startswith("You are a customer service agent for Contoso Ltd.\n")
    assert prod.foundry_name == "prod-general-agent-1"


def test_agent_and_env_variables_are_available() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        description: the x agent
        model: m
        instructions: >-
          {{ agent.name }} / {{ agent.description }} /
          {{ env.name }} {{ env.name_prefix }}
        """
    )
    rendered = render_agent(project, "x", env("stage", name_prefix="stg-"))
    assert rendered.instructions == "x / the x agent / stage stg-"


# ---------------------------------------------------------------- errors


def render_error(
    project: Project, name: str = "x", environment: Environment | None = None
) -> RenderError:
    with pytest.raises(RenderError) as caught:
        render_agent(project, name, environment or env())
    return caught.value


def test_undefined_var_in_template_text_points_at_the_template() -> None:
    project = project_from_text(
        """
        kind: Template
        name: customer-service
        model: m
        instructions: |
          You are a customer service agent
          for {{ vars.company }}.
        ---
        kind: Agent
        name: x
        template: customer-service
        """
    )
    error = render_error(project)
    assert error.address == "template.customer-service"
    assert error.path == ("instructions",)
    assert error.line == 2
    assert error.message.startswith(
        "'vars' has no attribute 'company' (undefined variable in template)"
    )
    assert "vars.company" in error.message
    assert "agent.x" in error.message and "environment.local" in error.message
    assert str(error).startswith("template.customer-service.instructions (line 2): ")


def test_undefined_var_in_agent_override_points_at_the_agent() -> None:
    project = project_from_text(
        """
        kind: Template
        name: t
        model: m
        instructions: fine
        ---
        kind: Agent
        name: x
        template: t
        instructions: "{{ vars.missing }}"
        """
    )
    error = render_error(project)
    assert (error.address, error.path) == ("agent.x", ("instructions",))


def test_undefined_nested_var_names_the_nested_mapping() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        model: m
        instructions: "{{ vars.db.host }}"
        vars: {db: {port: 5432}}
        """
    )
    assert render_error(project).message.startswith("'vars.db' has no attribute 'host'")


def test_undefined_top_level_name_suggests_vars() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        model: m
        instructions: "{{ company }}"
        """
    )
    message = render_error(project).message
    assert message.startswith("'company' is undefined (undefined variable in template)")
    assert "vars.company" in message


def test_default_filter_covers_an_undefined_var() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        model: m
        instructions: "{{ vars.product | default('software systems') }}"
        """
    )
    assert render_agent(project, "x", env()).instructions == "software systems"


def test_undefined_var_in_a_personality_modifier_points_at_the_personality() -> None:
    project = project_from_text(
        """
        kind: Personality
        name: p
        prompt_modifiers: [one, two, "mention {{ vars.brand }}"]
        ---
        kind: Agent
        name: x
        model: m
        instructions: hi
        personality: p
        """
    )
    error = render_error(project)
    assert (error.address, error.path) == ("personality.p", ("prompt_modifiers", 2))


def test_personality_texts_and_guidelines_are_rendered_with_vars() -> None:
    project = project_from_text(
        """
        kind: Personality
        name: p
        prompt_modifiers: ["speak for {{ vars.brand }}"]
        response_templates: {greeting: "Welcome to {{ vars.brand }}"}
        prohibited_behaviors: ["badmouthing {{ vars.rival }}"]
        ---
        kind: Agent
        name: x
        model: m
        instructions: hi
        personality: p
        vars: {brand: Acme, rival: Globex}
        guidelines:
          - {condition: "asked about {{ vars.rival }}", action: "stay neutral", priority: 2}
          - {condition: "always", action: "say {{ vars.brand }}", priority: 1}
        """
    )
    assert render_agent(project, "x", env()).instructions == (
        "hi\n\n## Personality\n- speak for Acme\n\n## Response templates\n"
        "- greeting: Welcome to Acme\n\n## Never\n- badmouthing Globex\n\n"
        "## Guidelines\n- When always: say Acme\n- When asked about Globex: stay neutral"
    )


def test_undefined_var_in_a_guideline_points_at_the_guideline() -> None:
    project = project_from_text(
        """
        kind: Template
        name: t
        model: m
        instructions: hi
        guidelines: [{condition: ok, action: fine}, {condition: ok, action: "{{ vars.x }}"}]
        ---
        kind: Agent
        name: x
        template: t
        """
    )
    error = render_error(project)
    assert (error.address, error.path) == ("template.t", ("guidelines", 1, "action"))


def test_syntax_error_is_a_render_error_with_its_line() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        model: m
        instructions: |
          fine
          {% if vars.x %}never closed
        """
    )
    error = render_error(project)
    assert (error.address, error.path) == ("agent.x", ("instructions",))
    assert error.message.startswith("template syntax error: ")
    assert error.line is not None and error.line >= 2


def test_missing_template_and_personality_are_render_errors() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        template: nope
        ---
        kind: Agent
        name: y
        model: m
        instructions: hi
        personality: ghost
        """
    )
    error = render_error(project, "x")
    assert (error.address, error.path) == ("agent.x", ("template",))
    assert "'nope' does not exist" in error.message
    error = render_error(project, "y")
    assert (error.address, error.path) == ("agent.y", ("personality",))


def test_template_without_model_is_a_render_error() -> None:
    project = project_from_text(
        """
        kind: Template
        name: t
        instructions: hi
        ---
        kind: Agent
        name: x
        template: t
        """
    )
    error = render_error(project)
    assert (error.address, error.path) == ("agent.x", ("model",))


def test_reserved_metadata_keys_are_refused() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        model: m
        instructions: hi
        metadata: {managed-by: me}
        """
    )
    error = render_error(project)
    assert (error.address, error.path) == ("agent.x", ("metadata", "managed-by"))


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ vars.__class__.__init__.__globals__ }}",
        "{{ capabilities.append('root') }}",
        "{{ vars.update({'a': 1}) }}",
        "{{ 'a' * 10000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_escapes_are_render_errors(text: str) -> None:
    project = Project()
    spec = KINDS["Agent"].model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Agent",
            "name": "x",
            "model": "m",
            "instructions": text,
            "capabilities": ["a"],
            "vars": {"a": 0},
        }
    )
    project.add(SpecDocument(spec, Position("<test>", 1, 1)))
    error = render_error(project)
    assert (error.address, error.path) == ("agent.x", ("instructions",))


def test_runtime_failures_are_render_errors() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        model: m
        instructions: "{{ 1 // vars.zero }}"
        vars: {zero: 0}
        """
    )
    assert "ZeroDivisionError" in render_error(project).message


# ---------------------------------------------------------------- layouts


def test_layout_on_the_template_replaces_the_default() -> None:
    project = project_from_text(
        """
        kind: Personality
        name: p
        traits: {formality: casual}
        prompt_modifiers: ["be {{ vars.mood }}"]
        ---
        kind: Template
        name: t
        model: m
        personality: p
        instructions: "Serve {{ vars.who }}."
        capabilities: [search, math]
        guidelines:
          - {condition: b, action: second, priority: 5}
          - {condition: a, action: first, priority: 1}
        layout: |
          [{{ instructions }}]
          {{ personality.name }}: {{ personality.traits_text }}
          {{- ' ' ~ personality.prompt_modifiers | join(',') }}
          {% for g in guidelines %}{{ g.action }} {% endfor %}

          {{ capabilities | join('+') }} for {{ vars.who }}
        vars: {who: users, mood: calm}
        ---
        kind: Agent
        name: x
        template: t
        """
    )
    # trim_blocks: the newline after a block tag ({% endfor %}) is dropped, as in Ansible/Salt.
    assert render_agent(project, "x", env()).instructions == (
        "[Serve users.]\np: Tone: casual. be calm\nfirst second\nsearch+math for users"
    )


def test_agent_layout_overrides_the_template_layout() -> None:
    project = project_from_text(
        """
        kind: Template
        name: t
        model: m
        instructions: base
        layout: "template layout: {{ instructions }}"
        ---
        kind: Agent
        name: x
        template: t
        layout: "agent layout: {{ instructions }}"
        """
    )
    assert render_agent(project, "x", env()).instructions == "agent layout: base"


def test_undefined_name_in_a_layout_points_at_the_layout() -> None:
    project = project_from_text(
        """
        kind: Template
        name: t
        model: m
        instructions: base
        layout: "{{ instructions }} {{ footer }}"
        ---
        kind: Agent
        name: x
        template: t
        """
    )
    error = render_error(project)
    assert (error.address, error.path) == ("template.t", ("layout",))


def test_output_has_no_trailing_whitespace_and_no_blank_runs() -> None:
    project = project_from_text(
        """
        kind: Agent
        name: x
        model: m
        instructions: "line one   \\n\\n\\n\\nline two\\t\\n\\n"
        """
    )
    assert render_agent(project, "x", env()).instructions == "line one\n\nline two"


def test_default_layout_is_a_jinja_template_constant() -> None:
    assert "{{ instructions }}" in DEFAULT_LAYOUT


# ---------------------------------------------------------------- definition and hash


def make(**changes: Any) -> RenderedAgent:
    fields: dict[str, Any] = {
        "name": "x",
        "foundry_name": "x",
        "model": "gpt-4o",
        "instructions": "hi",
        "temperature": 0.5,
        "top_p": None,
        "tool_choice": None,
        "tools": [],
        "description": "d",
        "metadata": {"k": "v"},
        "max_turns": None,
        "capabilities": [],
        "personality": None,
    }
    fields.update(changes)
    return RenderedAgent(**fields)


def test_definition_omits_none_and_empty_tools() -> None:
    assert make().definition() == {
        "model": "gpt-4o",
        "instructions": "hi",
        "temperature": 0.5,
        "kind": "prompt",
    }
    full = make(top_p=0.9, tool_choice="auto", tools=[{"type": "web_search"}]).definition()
    assert full["top_p"] == 0.9 and full["tool_choice"] == "auto"
    assert full["tools"] == [{"type": "web_search"}]


def test_definition_is_a_copy() -> None:
    agent = make(tools=[{"type": "file_search", "vector_store_ids": ["vs1"]}])
    agent.definition()["tools"][0]["vector_store_ids"].append("vs2")
    assert agent.definition()["tools"][0]["vector_store_ids"] == ["vs1"]


def test_same_input_same_hash_and_every_hashed_field_changes_it() -> None:
    base = make().content_hash()
    assert base == make().content_hash()
    assert len(base) == 64 and int(base, 16) >= 0
    for change in (
        {"model": "gpt-4o-mini"},
        {"instructions": "hello"},
        {"temperature": 0.6},
        {"top_p": 0.5},
        {"tool_choice": "none"},
        {"tools": [{"type": "code_interpreter"}]},
        {"description": "other"},
        {"description": None},
        {"metadata": {"k": "w"}},
        {"metadata": {}},
    ):
        assert make(**change).content_hash() != base, change


def test_hash_ignores_runner_side_fields_and_key_order() -> None:
    base = make().content_hash()
    assert make(foundry_name="prod-x", max_turns=3, capabilities=["a"]).content_hash() == base
    assert make(metadata={"a": "1", "b": "2"}).content_hash() == (
        make(metadata={"b": "2", "a": "1"}).content_hash()
    )


def test_hash_is_stable_across_processes(contract: Project) -> None:
    here = render_agent(contract, "tech-agent-1", contract.environment("local")).content_hash()
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_render import project_from_files, CONTRACT
        from runner.spec.render import render_agent
        p = project_from_files(CONTRACT)
        print(render_agent(p, "tech-agent-1", p.environment("local")).content_hash())
        """
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        assert out.stdout.strip() == here


def test_rendering_is_deterministic(contract: Project) -> None:
    first = render_agent(contract, "general-agent-1", contract.environment("prod"))
    clear_cache()
    second = render_agent(contract, "general-agent-1", contract.environment("prod"))
    assert first == second


# ---------------------------------------------------------------- scale


def test_a_thousand_agents_compile_each_text_once() -> None:
    docs = [
        f"kind: Template\nname: t{i}\nmodel: m\ninstructions: 'T{i} for {{{{ vars.who }}}}'\n"
        f"guidelines: [{{condition: c{i}, action: a}}]\nvars: {{who: all}}"
        for i in range(3)
    ]
    docs += [
        f"kind: Agent\nname: a{i}\ntemplate: t{i % 3}\nvars: {{who: n{i}}}" for i in range(1000)
    ]
    project = project_from_text("\n---\n".join(docs))
    from runner.spec import render_jinja

    clear_cache()
    outputs = [render_agent(project, f"a{i}", env()).instructions for i in range(1000)]
    assert outputs[7].startswith("T1 for n7")
    # 3 instructions + 3 conditions + 1 action + the default layout
    assert render_jinja.compile_text.cache_info().misses == 8


# ---------------------------------------------------------------- the example project


def test_example_project_renders_every_agent_everywhere() -> None:
    project = project_from_files(EXAMPLE)
    kinds = {doc.kind for doc in project}
    assert kinds == set(KINDS)
    assert 5 <= len(project.agents) <= 8
    for environment in project.environments.values():
        for name in project.agents:
            render_agent(project, name, environment)
    prod = render_agent(project, "triage-agent", project.environment("prod"))
    assert prod.foundry_name == "prod-triage-agent"
    assert "Fabrikam Inc" in prod.instructions


def test_example_files_point_at_the_schema_with_the_right_relative_path() -> None:
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        depth = len(path.relative_to(EXAMPLE).parts) - 1
        expected = "# yaml-language-server: $schema=" + "../" * (depth + 1)
        expected += "schemas/runner.schema.json"
        assert path.read_text(encoding="utf-8").splitlines()[0] == expected, path
