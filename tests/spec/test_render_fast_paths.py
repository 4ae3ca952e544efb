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

from runner.spec import render_fast, render_jinja
from runner.spec.project import Project
from runner.spec.render import render_agent
from runner.spec.render_jinja import clear_cache
from runner.spec.render_layout import DEFAULT_LAYOUT
from runner.spec.render_resolve import RenderError

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
        "vars": render_jinja.named_view("vars", VARS),
        "agent": render_jinja.named_view("agent", {"name": "a-1", "description": None}),
        "env": render_jinja.named_view("env", {"name": "prod", "name_prefix": "prod-"}),
        "personality": None,
        "guidelines": render_jinja.named_view("guidelines", []),
        "capabilities": ["search", "math"],
    }
    values.update(over)
    return values


def _where() -> Any:
    return render_jinja.TextLocation(
        address="agent.a-1", path=("instructions",), agent="a-1", hint_sources="x"
    )


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except RenderError as exc:
        return "error", (exc.message, exc.line, exc.path, exc.address)


def _with_jinja(source: str, values: dict[str, Any]) -> tuple[str, Any]:
    """The reference: Template.render in the sandbox, as render.py did before the fast paths."""

    def call() -> str:
        try:
            env = render_jinja.jinja_environment()
            code = env.compile(source, name=None, filename=render_jinja.TEMPLATE_FILENAME)
            template = env.template_class.from_code(env, code, env.make_globals(None), None)
            text = template.render(values)
        except Exception as exc:
            from jinja2.exceptions import TemplateSyntaxError

            line = (
                exc.lineno
                if isinstance(exc, TemplateSyntaxError)
                else render_jinja.template_line(exc.__traceback__)
            )
            raise RenderError(
                render_jinja.explain(exc, _where()),
                address="agent.a-1",
                path=("instructions",),
                line=line,
            ) from None
        return render_fast.tidy(text)

    return _outcome(call)


def _fast(source: str, values: dict[str, Any]) -> tuple[str, Any]:
    clear_cache()
    return _outcome(
        lambda: render_jinja.render_text(source, render_jinja.RenderContext(values), where=_where())
    )


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
        personality = render_jinja.named_view(
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
        guidelines=render_jinja.named_view("guidelines", guidelines),
        capabilities=some(3),
    )


def test_the_default_layout_renders_as_jinja_does() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        values = _layout_values(rng)
        assert _fast(DEFAULT_LAYOUT, values) == _with_jinja(DEFAULT_LAYOUT, values)


def _jinja_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every text through Jinja, as render.py did before the fast paths."""
    compile_ = render_jinja.compile_text.__wrapped__

    def through_jinja(source: str) -> render_jinja.CompiledText:
        compiled = compile_(source)
        compiled.parts = None
        compiled.layout = False
        compiled.template()
        return compiled

    monkeypatch.setattr(render_jinja, "compile_text", through_jinja)


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


# ---------------------------------------------------------------- plain values, ifs, tidy

# The renderer reads plain mappings on its fast paths and gives Jinja the `_Named` views only
# when Jinja runs; simple `{% if %}` blocks are rendered without Jinja; `tidy_quick` skips the
# work on texts that are already tidy. Each is compared with the reference path here.

PLAIN_VARS: dict[str, Any] = {
    **VARS,
    "tier": "gold",
    "empty": "",
    "int0": 0,
    "emptylist": [],
    "emptydict": {},
    "tup": (1, 2),
    "tupdict": {"inner": ("a",)},
}


def _plain_values() -> dict[str, Any]:
    return {
        "vars": PLAIN_VARS,
        "agent": {"name": "a-1", "description": None},
        "env": {"name": "prod", "name_prefix": "prod-"},
        "personality": None,
        "guidelines": [],
        "capabilities": ["search", "math"],
    }


def _named_values() -> dict[str, Any]:
    return _values(vars=render_jinja.named_view("vars", PLAIN_VARS))


def _fast_plain(source: str, named: dict[str, Any]) -> tuple[str, Any]:
    """The production route: plain values, the `_Named` views (`named`) given to Jinja only."""
    clear_cache()
    context = render_jinja.RenderContext(_plain_values(), lambda: named)
    return _outcome(lambda: render_jinja.render_text(source, context, where=_where()))


IF_TAGS = [
    "{% if vars.tier == 'gold' %}",
    "{%if vars.tier=='gold'%}",
    '{% if vars.tier != "gold" %}',
    "{% if vars.tier == 'silver' %}",
    "{% if vars.flag %}",
    "{% if vars.none %}",
    "{% if vars.empty %}",
    "{% if vars.int0 %}",
    "{% if vars.num == '3' %}",
    "{% if vars.zero %}",
    "{% if vars.list %}",
    "{% if vars.emptylist %}",
    "{% if vars.emptydict %}",
    "{% if vars.tup %}",
    "{% if vars.nested %}",
    "{% if vars.nested.deep == 'D' %}",
    "{% if vars.nested.more %}",
    "{% if vars.missing %}",
    "{% if vars.missing == 'x' %}",
    "{% if vars.items %}",
    "{% if vars._x %}",
    "{% if vars._runner_name %}",
    "{% if vars %}",
    "{% if personality %}",
    "{% if personality.name %}",
    "{% if capabilities %}",
    "{% if nope %}",
    "{% if not vars.flag %}",
    "{% if vars.flag and vars.tier %}",
    "{%- if vars.flag %}",
    "{% if vars.flag -%}",
    "{%+ if vars.flag %}",
    "{% if vars.tier == 'a\\'b' %}",
    "{% if vars.tier == '%}' %}",
    "{% ifvars.flag %}",
    "{% elif vars.flag %}",
]
ELSE_TAGS = ["{% else %}", "{%else%}", "{%- else %}", "{% else -%}"]
ENDIF_TAGS = ["{% endif %}", "{%endif%}", "{%- endif %}", "{% endif -%}", "{% endif %}\n"]
IF_DATA = ["", " ", "  ", "\t", "\n", " \n", "\n  ", "x", " y ", "\n\n", "\u2028", "}", "{", "é"]
IF_BODY = ["", "yes", "\n", " no \n", "{{ vars.company }}", "{{ vars.tup }}", "{{ vars.list }}"]


def _if_source(rng: random.Random) -> str:
    # Half the texts use only tags the fast path takes (so it runs, not only hands over).
    simple = rng.random() < 0.5
    ifs = IF_TAGS[:13] if simple else IF_TAGS
    elses = ELSE_TAGS[:2] if simple else ELSE_TAGS
    endifs = [ENDIF_TAGS[0], ENDIF_TAGS[1], ENDIF_TAGS[4]] if simple else ENDIF_TAGS
    bodies = IF_BODY[:5] if simple else IF_BODY
    out = [rng.choice(IF_DATA)]
    for _ in range(rng.randint(1, 3)):
        out.append(rng.choice(ifs))
        out += [rng.choice(IF_DATA), rng.choice(bodies), rng.choice(IF_DATA)]
        if rng.random() < 0.4:
            out += [rng.choice(elses), rng.choice(IF_DATA), rng.choice(bodies)]
        if rng.random() < 0.95:  # sometimes unbalanced: a syntax error both ways
            out.append(rng.choice(endifs))
        out += [rng.choice(IF_DATA), rng.choice([*IF_DATA, *TAGS[: 3 if simple else 6]])]
    return "".join(out)


def test_simple_ifs_render_as_jinja_does() -> None:
    rng = random.Random(1123)
    for _ in range(3000):
        source = _if_source(rng)
        named = _named_values()
        expected = _with_jinja(source, named)
        assert _fast(source, named) == expected, repr(source)
        assert _fast_plain(source, named) == expected, repr(source)


def test_each_if_tag_framed_renders_as_jinja_does() -> None:
    for tag, before, after in itertools.product(IF_TAGS, IF_DATA, IF_DATA):
        source = f"{before}{tag}{after}B{after}{{% else %}}E{{% endif %}}{before}"
        named = _named_values()
        assert _fast_plain(source, named) == _with_jinja(source, named), repr(source)


def test_simple_ifs_skip_jinja() -> None:
    source = (
        "  {% if vars.tier == 'gold' %}\n  Fast {{ agent.name }}.\n  {% else %}\nSlow.{% endif %}"
    )
    compiled = render_jinja.compile_text(source)
    assert compiled.parts is not None
    assert render_fast.render_parts(compiled.parts, _plain_values()) == "  Fast a-1.\n"


@pytest.mark.parametrize("tag", TAGS)
def test_tags_on_plain_values_render_as_jinja_does(tag: str) -> None:
    extra = ["{{ vars.tup }}", "{{ vars.tupdict }}", "{{ vars.tupdict.inner }}"]
    for before, after, more in itertools.product(DATA[:6], DATA[:6], ["", *extra]):
        source = before + tag + after + more
        named = _named_values()
        assert _fast_plain(source, named) == _with_jinja(source, named), repr(source)


def test_tidy_quick_is_tidy() -> None:
    rng = random.Random(99)
    blanks = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    breaks = [chr(c) for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)]
    alphabet = ["a", "b c", " ", "\t", "\n", "\n", "\n\n", "é", *blanks, *breaks, "\r\n"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        assert render_fast.tidy_quick(text) == render_fast.tidy(text), repr(text)
    for text in ["", "a", "a\n", "\na", "a \nb", "a\n\nb", "a\n\n\nb", "a\t", "a\x1fb", "x\x85"]:
        assert render_fast.tidy_quick(text) == render_fast.tidy(text), repr(text)


def test_ifs_and_plain_values_render_projects_as_with_jinja_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = project_from_text(
        """
kind: Personality
name: p
traits: {formality: formal}
prompt_modifiers: ["{% if vars.tier == 'gold' %}Fast{% else %}Slow{% endif %}", "{{ vars.l }}"]
response_templates: {hi: "{% if vars.missing %}x{% endif %}"}
---
kind: Template
name: t
model: m
personality: p
instructions: |
  You are {{ agent.name }}.
  {% if vars.tier == 'gold' %}Prioritise speed.{% endif %}
    {% if env.name_prefix %}
  Prefixed {{ env.name_prefix }}.
    {% endif %}
  Product: {{ vars.product | default('our software') }}.
vars: {tier: gold, l: [1, 2]}
---
kind: Agent
name: x
template: t
---
kind: Agent
name: y
template: t
layout: "{% if personality %}{{ personality.name }}{% endif %}|{{ instructions }}|{{ vars.nope }}"
vars: {tier: silver, product: P}
---
kind: Agent
name: z
template: t
personality: p
vars: {missing: here}
layout: "{{ guidelines }}{% if vars.tier %}{{ instructions }}{% endif %}"
---
kind: Environment
name: local
---
kind: Environment
name: prod
name_prefix: prod-
vars: {tier: platinum}
"""
    )
    clear_cache()
    fast = _everything(project)
    assert any(kind == "error" for kind, _ in fast)
    assert any(kind == "ok" for kind, _ in fast)
    _jinja_only(monkeypatch)
    assert fast == _everything(project)


def test_the_bench_project_renders_as_with_jinja_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_validate", Path(__file__).resolve().parents[2] / "bench" / "validate.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.generate(tmp_path, 200)
    project = project_from_files(tmp_path)
    clear_cache()
    fast = _everything(project)
    assert all(kind == "ok" for kind, _ in fast)
    _jinja_only(monkeypatch)
    assert fast == _everything(project)
