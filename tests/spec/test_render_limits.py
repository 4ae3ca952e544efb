"""Issue 9 finding 4: template rendering has a budget per text (steps, time, sizes, output).

Each bomb the finding names, and the others the sandbox could be made to build, is a
RenderError with code `render.limit` at its line, raised before the memory is taken: each case
below would take gigabytes or hours without the budget. `runner validate` reports them at
file:line:col (tests/spec/negative/render-limit).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from runner.spec import render_limits
from runner.spec.render_jinja import RenderContext, clear_cache, render_text_at
from runner.spec.render_limits import Limits, RenderCancelled
from runner.spec.render_resolve import RenderError


def render(source: str, values: dict[str, Any] | None = None) -> str:
    return render_text_at(
        source, RenderContext(values or {}), "agent.a", ("instructions",), "a", "x"
    )


def overrun(source: str) -> RenderError:
    with pytest.raises(RenderError) as info:
        render(source)
    assert info.value.code == "render.limit", info.value.message
    assert info.value.message.startswith(("the template exceeds its budget", "tojson indent"))
    return info.value


BIG = 1_500_000_000
BOMBS = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
    "{% endfor %}",
    "center filter": f"{{{{ 'x'|center({BIG}) }}}}",
    "center method": f"{{{{ 'x'.center({BIG}) }}}}",
    "ljust": f"{{{{ 'x'.ljust({BIG}) }}}}",
    "rjust": f"{{{{ 'x'.rjust({BIG}) }}}}",
    "zfill": f"{{{{ 'x'.zfill({BIG}) }}}}",
    "expandtabs": "{{ ('\\t' * 1000).expandtabs(100000) }}",
    "format filter width": f"{{{{ '%{BIG}s'|format('x') }}}}",
    "format filter star width": f"{{{{ '%*s'|format({BIG}, 'x') }}}}",
    "format filter precision": f"{{{{ '%.{BIG}f'|format(1.5) }}}}",
    "str.format width": f"{{{{ '{{:>{BIG}}}'.format('x') }}}}",
    "str.format nested width": f"{{{{ '{{:>{{}}}}'.format('x', {BIG}) }}}}",
    "str.format_map": f"{{{{ '{{a:>{BIG}}}'.format_map({{'a': 1}}) }}}}",
    "percent": f"{{{{ '%{BIG}d' % 3 }}}}",
    "percent dict": f"{{{{ '%(a){BIG}s' % {{'a': 1}} }}}}",
    "string repetition": f"{{{{ 'x' * {BIG} }}}}",
    "list repetition": f"{{{{ ([1] * {BIG})|length }}}}",
    "range": f"{{{{ range({BIG})|length }}}}",
    "doubling with ~": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "output length": "{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}",
    "indent": f"{{{{ 'a\\nb'|indent({BIG}) }}}}",
    "join filter": "{{ (['x' * 1000000] * 1000)|join }}",
    "str.join": "{{ ''.join(['x' * 1000000] * 1000) }}",
    "replace": "{{ ('x' * 100000)|replace('x', 'y' * 100000) }}",
    "str.replace": "{{ ('x' * 100000).replace('x', 'y' * 100000) }}",
    "batch": f"{{{{ [1]|batch({BIG}, 0)|list|length }}}}",
    "slice": f"{{{{ [1]|slice({BIG})|list|length }}}}",
    "big integers": "{% set ns = namespace(n=10) %}{% for i in range(40) %}"
    "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ 1 }}",
    "power": "{{ (10 ** 1000) ** 1000 }}",
    "recursive loop": "{% for i in [range(100000)] recursive %}{% if loop.depth < 3 %}"
    "{{ loop(range(100000)) }}{% endif %}{% endfor %}",
    "block set": "{% set x %}{% for i in range(100000) %}{{ 'z' * 1000 }}{% endfor %}"
    "{% endset %}{{ x|length }}",
    "macro": "{% macro m() %}{% for i in range(100000) %}{{ 'z' * 1000 }}{% endfor %}"
    "{% endmacro %}{{ m()|length }}",
    "lipsum": "{{ lipsum(1000000) }}",
    "recursion": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "nested list output": "{% set l = range(100000)|list %}{{ [l] * 1000 }}",
    "nested list string": "{% set l = range(100000)|list %}{{ ([l] * 1000)|string }}",
    "nested list join": "{% set l = range(100000)|list %}{{ ([l] * 1000)|join }}",
    "nested list ~": "{% set l = range(100000)|list %}{{ ([l] * 1000) ~ 'x' }}",
    "nested list str.format": "{% set l = range(100000)|list %}{{ '{}'.format([l] * 1000) }}",
    "nested list %": "{% set l = range(100000)|list %}{{ '%s' % ([l] * 1000,) }}",
    "sum of lists": "{{ ([[1] * 100000] * 1000)|sum(start=[])|length }}",
    "tojson indent": f"{{{{ [[1]]|tojson({BIG}) }}}}",
}


@pytest.mark.parametrize("source", list(BOMBS.values()), ids=list(BOMBS))
def test_each_bomb_is_a_render_limit(source: str) -> None:
    overrun(source)


def test_the_line_of_the_overrun_is_named() -> None:
    error = overrun("first line\nsecond\n{{ 'x'|center(1500000000) }}\nlast")
    assert error.line == 3
    error = overrun(
        "a\n{% for i in range(100000) %}\n{% for j in range(100000) %}.{% endfor %}\n{% endfor %}"
    )
    assert error.line in (2, 3)


def test_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_limits, "LIMITS", Limits(seconds=0.2, steps=10**12))
    error = overrun("{% set l = range(100000)|list %}{{ l|select('in', l)|list|length }}")
    assert "takes too long" in error.message


def test_budget_is_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_limits, "LIMITS", Limits(steps=50))
    loop = "{% for i in range(40) %}{{ i }}{% endfor %}"
    for _ in range(5):  # 40 steps each: never adds up across texts
        assert render(loop).startswith("0123")
    overrun("{% for i in range(60) %}{{ i }}{% endfor %}")


def test_cancel_stops_a_render_in_progress() -> None:
    clear_cache()
    outcome: list[BaseException | str] = []
    started = threading.Event()

    def work() -> None:
        try:
            started.set()
            render("{% set l = range(100000)|list %}{{ l|select('in', l)|list|length }}")
            outcome.append("finished")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    started.wait()
    try:
        worker.join(0.3)
        render_limits.cancel_rendering()
        worker.join(30)
    finally:
        render_limits.allow_rendering()
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], RenderCancelled)


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ '%5s'|format('a') }} "
        "{{ '{:>4}'.format('b') }} {{ 'c'|center(5) }} {{ ['a', 'b']|join(',') }} {{ 'a' ~ 'b' }}"
        " {{ 'x' * 3 }} {{ [1] + [2] }} {{ '%d%%' % 5 }} {{ 'a\\nb'|indent(2) }}"
        " {% for x in [1, [2, [3]]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}"
        " {{ ['a', 'b']|map('upper')|join }} {{ 'ab'.replace('a', 'z') }}"
        " {{ '{a}'.format_map({'a': 1}) }}"
    )
    assert render(source) == "012     a    b   c   a,b ab xxx [1, 2] 5% a\n  b 123 AB zb 1"
    big = "{% set l = range(100000)|list %}{{ ([l] * 1000)|length }} {{ {'a': [1]} }}"
    assert render(big) == "1000 {'a': [1]}"  # a big value is fine until it becomes text
