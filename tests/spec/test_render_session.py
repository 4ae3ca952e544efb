"""Session-time values in rendering: preferences, features and workspace vars become Foundry
structured inputs, one version serves every combination, and filling a version's placeholders
with a session's inputs reads as the texts rendered with that session's values."""

from __future__ import annotations

import itertools
import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.providers.base import fill_placeholders, placeholder_names
from runner.spec.models import KINDS, Environment
from runner.spec.project import Position, Project, SpecDocument
from runner.spec.render import prepare_agent, render_agent
from runner.spec.render_fast import tidy
from runner.spec.render_jinja import RenderContext, named_view, render_text_at
from runner.spec.render_resolve import RenderError
from runner.spec.render_session import UNAVAILABLE_TOOLS_INPUT
from runner.spec.render_split import split_text

PREFS = """
preferences:
  formality:
    description: How formal replies are
    values: [casual, professional, formal]
    default: professional
  verbosity:
    values: [concise, balanced]
    default: balanced
features:
  refunds:
    description: May issue refunds
    tools: [issue_refund]
tools:
  - type: function
    name: issue_refund
    parameters: {type: object}
"""


def project(text: str) -> Project:
    out = Project()
    for doc in yaml.safe_load_all(textwrap.dedent(text)):
        doc.setdefault("apiVersion", "runner/v1")
        assert out.add(SpecDocument(KINDS[doc["kind"]].model_validate(doc), Position("<t>", 1, 1)))
    return out


def env(name: str = "local", **fields: Any) -> Environment:
    return Environment.model_validate(
        {"apiVersion": "runner/v1", "kind": "Environment", "name": name, **fields}
    )


def agent_doc(instructions: str, extra: str = PREFS, layout: str | None = None) -> str:
    body = {
        "kind": "Agent",
        "name": "concierge",
        "model": "gpt-4o",
        "instructions": instructions,
        **yaml.safe_load(textwrap.dedent(extra)),
    }
    if layout is not None:
        body["layout"] = layout
    return yaml.safe_dump(body, sort_keys=False)


def full_render(source: str, values: dict[str, Any]) -> str:
    """What the text renders to with the session's values as ordinary variables."""

    def named() -> dict[str, Any]:
        return {k: named_view(k, v) for k, v in values.items()}

    return render_text_at(
        source, RenderContext(values, named), "agent.t", ("instructions",), "t", ""
    )


# ---------------------------------------------------------------- one version, many sessions


def test_a_preference_becomes_a_placeholder_and_a_declared_input() -> None:
    p = project(agent_doc("Reply in a {{ prefs.formality }} tone.\nBe brief."))
    rendered = render_agent(p, "concierge", env())
    assert rendered.instructions.startswith("Reply in a {{formality}} tone.\nBe brief.")
    inputs = rendered.definition()["structured_inputs"]
    assert inputs["formality"] == {
        "description": "How formal replies are",
        "default_value": "professional",
        "schema": {"type": "string", "enum": ["casual", "professional", "formal"]},
    }
    assert inputs["verbosity"]["default_value"] == "balanced"
    assert inputs["refunds"] == {
        "description": "Feature toggle: May issue refunds (enables: issue_refund)",
        "default_value": False,
        "schema": {"type": "boolean"},
    }
    # every placeholder the instructions hold is declared (Foundry refuses others)
    assert set(placeholder_names(rendered.instructions)) <= set(inputs)
    assert list(rendered.definition())[-1] == "kind"


def test_the_version_is_the_same_for_every_combination_and_inputs_differ() -> None:
    p = project(
        agent_doc(
            "Reply in a {{ prefs.formality }} tone.\n"
            "{% if prefs.verbosity == 'concise' %}\nThree sentences at most.\n{% endif %}\n"
            "{% if features.refunds %}\nYou may refund.\n{% endif %}\nThanks."
        )
    )
    rendered = render_agent(p, "concierge", env())
    plan = rendered.session
    seen = set()
    for formality, verbosity, refunds in itertools.product(
        ["casual", "formal"], ["concise", "balanced"], [True, False]
    ):
        inputs = plan.inputs(
            preferences={"formality": formality, "verbosity": verbosity},
            features={"refunds": refunds},
            vars=None,
        )
        filled = fill_placeholders(rendered.instructions, inputs)
        assert f"Reply in a {formality} tone." in filled
        assert ("Three sentences at most." in filled) == (verbosity == "concise")
        assert ("You may refund." in filled) == refunds
        assert ("unavailable in this session" in filled) == (not refunds)
        seen.add(filled)
    assert len(seen) == 8
    # the definition did not depend on any of them
    assert render_agent(p, "concierge", env()).content_hash() == rendered.content_hash()


def test_an_agent_without_session_values_renders_exactly_as_before() -> None:
    p = project(agent_doc("Plain {{ vars.x | default('text') }}.", extra="{}"))
    rendered = render_agent(p, "concierge", env())
    assert "structured_inputs" not in rendered.definition()
    assert rendered.session is None
    assert rendered.instructions == "Plain text."


def test_changing_a_default_changes_the_definition() -> None:
    text = agent_doc("Reply in a {{ prefs.formality }} tone.")
    before = render_agent(project(text), "concierge", env())
    after = render_agent(
        project(text.replace("default: professional", "default: formal")), "concierge", env()
    )
    assert before.instructions == after.instructions
    assert before.content_hash() != after.content_hash()
    assert after.structured_inputs["formality"]["default_value"] == "formal"


def test_environment_values_are_the_version_defaults() -> None:
    p = project(agent_doc("{{ prefs.formality }}{% if features.refunds %} refunds{% endif %}"))
    rendered = render_agent(
        p, "concierge", env(preferences={"formality": "casual"}, features={"refunds": True})
    )
    inputs = rendered.structured_inputs
    assert inputs["formality"]["default_value"] == "casual"
    assert inputs["refunds"]["default_value"] is True
    computed = [n for n in inputs if n.startswith("runner_") and n != UNAVAILABLE_TOOLS_INPUT]
    assert [inputs[n]["default_value"] for n in computed] == [" refunds"]
    assert inputs[UNAVAILABLE_TOOLS_INPUT]["default_value"] == ""


def test_workspace_vars_are_read_per_session_and_other_vars_are_baked_in() -> None:
    p = project(
        agent_doc(
            "Welcome to {{ vars.company }} ({{ vars.city }}).", extra="vars: {company: A, city: B}"
        )
        + "---\nkind: Workspace\nname: vip\nvars: {company: VIP}\n"
    )
    rendered = render_agent(p, "concierge", env())
    assert "({{" not in rendered.instructions and "(B)." in rendered.instructions
    [name] = placeholder_names(rendered.instructions)
    assert name.startswith("runner_")
    plan = rendered.session
    assert plan.inputs(preferences={}, features={}, vars=None)[name] == "A"
    assert plan.inputs(preferences={}, features={}, vars={"company": "VIP"})[name] == "VIP"
    assert rendered.structured_inputs[name]["default_value"] == "A"


def test_layout_may_read_session_values_and_sees_the_session_texts() -> None:
    p = project(
        agent_doc(
            "Tone: {{ prefs.formality }}.",
            layout="{% if features.refunds %}REFUNDS\n{% endif %}{{ instructions }}\n"
            "{% if prefs.verbosity == 'concise' %}{{ instructions | upper }}{% endif %}",
        )
    )
    rendered = render_agent(p, "concierge", env())
    inputs = rendered.session.inputs(
        preferences={"formality": "formal", "verbosity": "concise"},
        features={"refunds": True},
        vars=None,
    )
    filled = fill_placeholders(rendered.instructions, inputs)
    assert filled.startswith("REFUNDS\nTone: formal.\nTONE: FORMAL.")


# ---------------------------------------------------------------- errors at their text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hi {{ prefs.tone }}", "prefs.tone: nothing named 'tone' is declared"),
        ("{% if features.beta %}x{% endif %}", "features.beta: nothing named 'beta'"),
        ("{% set t = prefs.formality %}{{ t }}", "{% set %} reads a session value"),
    ],
)
def test_undeclared_or_unusable_session_values_are_render_errors(text: str, message: str) -> None:
    with pytest.raises(RenderError) as info:
        render_agent(project(agent_doc("line\n" + text)), "concierge", env())
    assert message in info.value.message
    assert info.value.address == "agent.concierge" and info.value.path == ("instructions",)
    assert info.value.line == 2


def test_a_faulty_piece_fails_at_its_line_when_the_defaults_render() -> None:
    text = "a\nb\n{% if prefs.formality %}\n{{ vars.missing }}\n{% endif %}"
    with pytest.raises(RenderError) as info:
        prepare_agent(project(agent_doc(text)), "concierge").instructions(env())
    assert "vars.missing" in info.value.message
    assert info.value.line == 4


def test_literal_braces_that_look_like_a_placeholder_are_refused() -> None:
    with pytest.raises(RenderError) as info:
        render_agent(
            project(agent_doc("{{ prefs.formality }} {{ '{{other}}' }}")), "concierge", env()
        )
    assert "{{other}}" in info.value.message


def test_a_server_side_tool_switched_by_a_feature_is_per_environment() -> None:
    extra = """
    features:
      web: {default: false, tools: [web_search]}
    tools:
      - type: web_search
    """
    p = project(agent_doc("Hi", extra=extra))
    off = render_agent(p, "concierge", env())
    on = render_agent(p, "concierge", env("prod", features={"web": True}))
    assert off.tools == [] and on.tools == [{"type": "web_search"}]
    assert off.structured_inputs == {}  # not switchable per session: no input at all


# ---------------------------------------------------------------- exactness of the cut

FRAGMENTS = [
    "Static line.\n",
    "Tone {{ prefs.formality }} here.\n",
    "{% if prefs.verbosity == 'concise' %}\nShort.\n{% endif %}\n",
    "  {% if features.refunds %}\n  Refunds ok.\n  {% else %}\n  No refunds.\n  {% endif %}\n",
    "{% for i in range(2) %}{{ prefs.formality }}-{{ i }} {% endfor %}\n",
    "{%- if features.refunds %} +R{% endif -%}\n",
    "{# a comment with {{ prefs.formality }} #}Tail.\n",
    "{% raw %}{{ not a placeholder }}{% endraw %}\n",
    "{{ vars.company }} and {{ vars.city }}\n",
    "{% set n = 3 %}\n",
    "{% if n is defined and prefs.formality == 'formal' %}Formal {{ n }}.{% endif %}\n",
    "{{ prefs.formality | upper }}!\n",
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=7))
def test_filling_the_version_reads_as_the_text_rendered_for_the_session(
    fragments: list[str],
) -> None:
    source = "".join(fragments)
    base = {"vars": {"company": "Acme", "city": "Oslo"}}
    p = project(
        agent_doc(source, extra=PREFS + "vars: {company: Acme, city: Oslo}")
        + "---\nkind: Workspace\nname: w\nvars: {company: Zed}\n"
    )
    rendered = render_agent(p, "concierge", env())
    for formality, verbosity, refunds, company in itertools.product(
        ["casual", "formal"], ["concise", "balanced"], [True, False], [None, "Zed"]
    ):
        values = {
            **base,
            "prefs": {"formality": formality, "verbosity": verbosity},
            "features": {"refunds": refunds},
        }
        if company:
            values["vars"] = {**base["vars"], "company": company}
        expected = full_render(source, values)
        inputs = rendered.session.inputs(
            preferences=values["prefs"],
            features=values["features"],
            vars={"company": company} if company else None,
        )
        filled = fill_placeholders(rendered.instructions, inputs)
        filled = filled.replace("\n\n" + inputs.get(UNAVAILABLE_TOOLS_INPUT, ""), "")
        assert tidy(filled) == tidy(expected), source
    # a text reading no session value is not cut at all
    if split_text(source, {"company"}) is None:
        assert "{{" not in rendered.instructions.split("\n\n")[0].replace("{{ not", "")
