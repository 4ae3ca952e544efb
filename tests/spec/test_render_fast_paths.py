"""Rendering without Jinja gives Jinja's output and errors, byte for byte.

`runner.spec.render` skips Jinja for texts without template syntax, renders simple
`{{ a.b }}` / `{{ a.b | default('x') }}` substitutions and the default layout itself, and hands
anything else (or anything off the simple path, such as a missing value) to Jinja. These tests
compare every fast path with the real sandboxed Jinja rendering.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.spec import render
from runner.spec.project import Project
from runner.spec.render import DEFAULT_LAYOUT, RenderError, clear_cache, render_agent

from .test_render import CONTRACT, EXAMPLE, project_from_files, project_from_text

VARS: dict[str, Any] = {
    "company": "Contoso",
    "num": 3,
    "flag": True,
    "none": None,
    "zero": -0.0,
    "list": [1, "a", {"k": "v"}],
    "nested": {"deep": "D", "more": {"x": "y"}},
    "items": "shadowed by dict.items",
    "not": "kw",
    "true": "t",
    "_x": "underscore",
    "multi": "line one  \n\n\n\nline two\r\nthree",
}


def _values(**over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "vars": render._named("vars", VARS),
        "agent": render._named("agent", {"name": "a-1", "description": None}),
        "env": render._named("env", {"name": "prod", "name_prefix": "prod-"}),
        "personality": None,
        "guidelines": render._named("guidelines", []),
        "capabilities": ["search", "math"],
    }
    values.update(over)
    return values


def _where() -> Any:
    return render._Where(address="agent.a-1", path=("instructions",), agent="a-1", hint_sources="x")


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except RenderError as exc:
        return "error", (exc.message, exc.line, exc.path, exc.address)


def _with_jinja(source: str, values: dict[str, Any]) -> tuple[str, Any]:
    """The reference: Template.render in the sandbox, as render.py did before the fast paths."""

    def call() -> str:
        try:
            env = render._jinja_env()
            code = env.compile(source, name=None, filename=render._TEMPLATE_FILENAME)
            template = env.template_class.from_code(env, code, env.make_globals(None), None)
            text = template.render(values)
        except Exception as exc:
            from jinja2.exceptions import TemplateSyntaxError

            line = (
                exc.lineno
                if isinstance(exc, TemplateSyntaxError)
                else render._template_line(exc.__traceback__)
            )
            raise RenderError(
                render._explain(exc, _where()),
                address="agent.a-1",
                path=("instructions",),
                line=line,
            ) from None
        return render._tidy(text)

    return _outcome(call)


def _fast(source: str, values: dict[str, Any]) -> tuple[str, Any]:
    clear_cache()
    return _outcome(lambda: render._render_text(source, render._Context(values), where=_where()))


DATA = ["", "a", " x ", "{", "}", "{ {", "%}", "#}", "\n", "\n\n\n", "  \n ", "\t", "\u2028", "é"]
TAGS = [
    "{{ vars.company }}",
    "{{vars.company}}",
    "{{  agent.name  }}",
    "{{ vars.missing }}",
    "{{ vars.missing | default('d') }}",
    '{{ vars.num|default("x y") }}',
    '{{ vars.none | default("n") }}',
    "{{ vars.items }}",
    "{{ vars.nested.deep }}",
    "{{ vars.nested.more }}",
    "{{ vars.nested.missing | default('z') }}",
    "{{ vars.missing.deep | default('z') }}",
    "{{ vars.company.upper }}",
    "{{ vars.company.missing | default('q') }}",
    "{{ env.name }}",
    "{{ env }}",
    "{{ personality.name }}",
    "{{ personality }}",
    "{{ vars.not }}",
    "{{ vars.true }}",
    "{{ true }}",
    "{{ vars._x }}",
    "{{ vars._runner_name }}",
    "{{ vars.__class__ }}",
    "{{ nope }}",
    "{{ nope | default('x') }}",
    "{{ range }}",
    "{{ vars.flag }}",
    "{{ vars.zero }}",
    "{{ vars.list }}",
    "{{ vars.multi }}",
    "{{ capabilities }}",
    "{{ guidelines }}",
    "{{ capabilities.missing | default('c') }}",
    "{{- vars.company }}",
    "{{ vars.company -}}",
    "{{ vars.company | default('a', true) }}",
    "{{ vars.company | upper }}",
    "{{ vars['company'] }}",
    "{{ vars.company }",
    "{{ vars. company }}",
    "{{ vars.company | default('}}') }}",
    "{% if vars.flag %}yes{% endif %}",
    "{# note #}",
]


@pytest.mark.parametrize("tag", TAGS)
def test_each_tag_alone_and_framed_renders_as_jinja_does(tag: str) -> None:
    for before, after in itertools.product(DATA, DATA):
        source = before + tag + after
        values = _values()
        assert _fast(source, values) == _with_jinja(source, values), repr(source)


def test_random_mixtures_render_as_jinja_does() -> None:
    rng = random.Random(20240611)
    pieces = DATA + TAGS + ["\r\n", "\r", "x\r\ny", "{{", "}}}", "{{{ vars.company }}}"]
    for _ in range(3000):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        values = _values()
        assert _fast(source, values) == _with_jinja(source, values), repr(source)


def test_texts_without_template_syntax_render_as_jinja_does() -> None:
    rng = random.Random(7)
    alphabet = ["a", " ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\u2028", "\x85", "{", "}"]
    for _ in range(3000):
        source = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if any(mark in source for mark in ("{{", "{%", "{#")):
            continue
        assert _fast(source, _values()) == _with_jinja(source, _values()), repr(source)


def _layout_values(rng: random.Random) -> dict[str, Any]:
    texts = ["", "x", "two words", "line\nbreak", "  padded  ", "trail\n\n\n", "ünï"]

    def some(n: int) -> list[str]:
        return [rng.choice(texts) for _ in range(rng.randint(0, n))]

    personality = None
    if rng.random() < 0.7:
        personality = render._named(
            "personality",
            {
                "name": "p",
                "description": None,
                "traits": {},
                "traits_text": rng.choice(["", "Tone: formal."]),
                "prompt_modifiers": some(3),
                "response_templates": {f"k{i}": t for i, t in enumerate(some(3))},
                "prohibited_behaviors": some(3),
            },
        )
    guidelines = [
        {"condition": rng.choice(texts), "action": rng.choice(texts), "priority": 1}
        for _ in range(rng.randint(0, 3))
    ]
    return _values(
        instructions=rng.choice([*texts, "Hello {{ not rendered }}"]),
        personality=personality,
        guidelines=render._named("guidelines", guidelines),
        capabilities=some(3),
    )


def test_the_default_layout_renders_as_jinja_does() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        values = _layout_values(rng)
        assert _fast(DEFAULT_LAYOUT, values) == _with_jinja(DEFAULT_LAYOUT, values)


def _jinja_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every text through Jinja, as render.py did before the fast paths."""
    compile_ = render._compile.__wrapped__

    def through_jinja(source: str) -> render._Compiled:
        compiled = compile_(source)
        compiled.parts = None
        compiled.layout = False
        compiled.template()
        return compiled

    monkeypatch.setattr(render, "_compile", through_jinja)


def _everything(project: Project) -> list[tuple[str, Any]]:
    envs = list(project.environments.values())
    out = []
    for name in project.agents:
        for env in envs:
            out.append(_outcome(lambda name=name, env=env: render_agent(project, name, env)))
    return out


@pytest.mark.parametrize("root", [CONTRACT, EXAMPLE], ids=["contract", "example"])
def test_projects_render_as_with_jinja_only(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    project = project_from_files(root)
    clear_cache()
    fast = _everything(project)
    _jinja_only(monkeypatch)
    assert fast == _everything(project)


def test_errors_and_layouts_render_as_with_jinja_only(monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_from_text(
        """
kind: Personality
name: p
traits: {formality: formal}
prompt_modifiers: ["Be {{ vars.tone | default('kind') }}", "{{ vars.missing }}", plain]
response_templates: {hi: "Hi from {{ vars.company }}"}
---
kind: Template
name: t
model: m
personality: p
instructions: "You are {{ agent.name }} in {{ env.name }} for {{ vars.company }}."
guidelines: [{condition: "{{ vars.when }}", action: act, priority: 2}, {condition: c, action: a}]
vars: {company: Contoso, when: angry}
---
kind: Agent
name: x
template: t
---
kind: Agent
name: y
model: m
instructions: "{{ vars.nested.deep }} {{ vars.nested.gone | default('dflt') }}"
layout: "{{ instructions }} / {{ capabilities | join(',') }}"
capabilities: [a, b]
vars: {nested: {deep: D}}
---
kind: Agent
name: z
template: t
personality: p
vars: {missing: here}
---
kind: Environment
name: local
---
kind: Environment
name: prod
name_prefix: prod-
vars: {company: Fabrikam, tone: terse}
"""
    )
    clear_cache()
    fast = _everything(project)
    assert any(kind == "error" for kind, _ in fast)
    assert any(kind == "ok" for kind, _ in fast)
    _jinja_only(monkeypatch)
    assert fast == _everything(project)


def test_validate_without_template_syntax_does_not_import_jinja(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: runner/v1\nkind: Agent\nname: a\nmodel: m\n"
        "instructions: 'Hi {{ vars.who | default(\"all\") }} from {{ agent.name }}'\n"
        "guidelines: [{condition: c, action: a}]\n",
        encoding="utf-8",
    )
    code = (
        "import sys\n"
        "from runner.cli.main import main\n"
        f"rc = main(['validate', {str(tmp_path)!r}])\n"
        "print('JINJA', sorted(m for m in sys.modules if m.split('.')[0] == 'jinja2'))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "JINJA []" in proc.stdout
