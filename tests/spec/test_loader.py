"""The loader: values and positions from YAML, safety limits, and errors as data (never raised)."""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.spec.loader import discover_files, load_file, load_project, load_text
from runner.spec.project import Position
from runner.spec.yaml_builder import ALIAS_BUDGET
from runner.spec.yaml_reader import DocumentBuilder, parse_yaml

AGENT = """\
apiVersion: runner/v1
kind: Agent
name: helper
model: gpt-4o
instructions: |
  You help.
tools:
  - type: code_interpreter
  - {type: web_search}
"""


def test_positions_point_at_each_value() -> None:
    result = load_text(AGENT, file="a.yaml")
    assert result.problems == []
    (doc,) = result.documents
    assert doc.position == Position("a.yaml", 1, 1)
    assert doc.position_of(("name",)) == Position("a.yaml", 3, 7)
    assert doc.position_of(("instructions",)) == Position("a.yaml", 5, 15)
    assert doc.position_of(("tools", 0, "type")) == Position("a.yaml", 8, 11)
    assert doc.position_of(("tools", 1)) == Position("a.yaml", 9, 5)
    assert doc.position_of(("tools", 1, "type")) == Position("a.yaml", 9, 12)
    # a path that was not written falls back to the nearest written parent
    assert doc.position_of(("tools", 1, "name")) == Position("a.yaml", 9, 5)


def test_multi_document_files_and_empty_documents() -> None:
    text = "# only a comment\n---\n" + AGENT + "---\n---\n" + AGENT.replace("helper", "other")
    result = load_text(text, file="m.yaml")
    assert result.problems == []
    assert [d.spec.name for d in result.documents] == ["helper", "other"]
    assert result.documents[1].position_of(("name",)) == Position("m.yaml", 16, 7)


def test_scalars_follow_yaml_core_types_and_timestamps_stay_text() -> None:
    docs, problems = parse_yaml(
        "a: 1\nb: 0x10\nc: 1.5\nd: true\ne: ~\nf: '1'\ng: 2024-01-02\nh: !!str 12\n",
        file="s.yaml",
    )
    assert problems == []
    assert docs[0].data == {
        "a": 1,
        "b": 16,
        "c": 1.5,
        "d": True,
        "e": None,
        "f": "1",
        "g": "2024-01-02",
        "h": "12",
    }


def test_anchors_and_merge_keys_are_expanded_with_positions() -> None:
    text = (
        "base: &base {model: gpt-4o, temperature: 0.2}\n"
        "agent:\n"
        "  <<: *base\n"
        "  temperature: 0.5\n"
        "list: [*base]\n"
    )
    (doc,), problems = parse_yaml(text, file="x.yaml")
    assert problems == []
    assert doc.data["agent"] == {"model": "gpt-4o", "temperature": 0.5}
    assert doc.data["list"] == [{"model": "gpt-4o", "temperature": 0.2}]
    assert doc.data["list"][0] is not doc.data["base"]  # copies, never shared
    assert doc.positions[("agent", "model")] == Position("x.yaml", 1, 21)
    assert doc.positions[("agent", "temperature")] == Position("x.yaml", 4, 16)
    assert doc.positions[("list", 0)] == Position("x.yaml", 5, 8)
    assert doc.positions[("list", 0, "model")] == Position("x.yaml", 1, 21)


def test_unsafe_tags_are_problems_not_objects() -> None:
    for text in (
        "a: !!python/object/apply:os.system ['true']\n",
        "a: !!python/name:os.system\n",
        "a: !custom x\n",
        "a: !!set {x, y}\n",
        "a: !!binary aGk=\n",
    ):
        _docs, problems = parse_yaml(text, file="t.yaml")
        assert [p.code for p in problems] == ["yaml.tag"], text
        assert (problems[0].line, problems[0].column) == (1, 4)


def test_duplicate_key_is_reported_at_the_second_key() -> None:
    _, problems = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", file="d.yaml")
    assert [(p.code, p.line, p.column) for p in problems] == [("yaml.duplicate-key", 4, 3)]
    assert "first written at line 3, column 3" in problems[0].message


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_after_a_bounded_amount_of_work() -> None:
    small = _laughs(3)  # 111 values through aliases: fine
    docs, problems = parse_yaml(small, file="ok.yaml")
    assert problems == [] and len(docs) == 1

    _, problems = parse_yaml(_laughs(10), file="lol.yaml")  # 10**9 values if expanded
    assert [p.code for p in problems] == ["yaml.alias-limit"]
    assert problems[0].line == 5  # the first alias past the budget (a4 holds 11,111 values)

    def best_time(levels: int) -> float:
        # best of 5: a single sample on a busy 2-core machine can include a scheduler pause
        times = []
        for _ in range(5):
            started = time.perf_counter()
            parse_yaml(_laughs(levels), file="lol.yaml")
            times.append(time.perf_counter() - started)
        return min(times)

    # Work is bounded by the budget: 10 levels cost what 5 levels (just past the budget) cost.
    assert best_time(10) < 20 * best_time(5) + 0.05
    assert ALIAS_BUDGET < 10**5


def test_recursive_and_unknown_aliases_are_problems() -> None:
    _, problems = parse_yaml("a: &a [1, *a]\n", file="r.yaml")
    assert [p.code for p in problems] == ["yaml.alias"]
    assert "refers to itself" in problems[0].message
    _, problems = parse_yaml("a: *nope\n", file="r.yaml")
    assert [p.code for p in problems] == ["yaml.alias"]


def test_deep_nesting_is_refused_without_crashing() -> None:
    _, problems = parse_yaml("[" * 200_000 + "]" * 200_000, file="deep.yaml")
    assert [p.code for p in problems] == ["yaml.depth"]
    _, problems = parse_yaml("- " * 5_000 + "x\n", file="deep.yaml")
    assert [p.code for p in problems] == ["yaml.depth"]


def test_syntax_errors_are_reported_at_their_mark() -> None:
    _, problems = parse_yaml("a: [1, 2\nb: 3\n", file="s.yaml")
    assert [p.code for p in problems] == ["yaml.syntax"]
    assert problems[0].line == 2


def test_documents_before_a_syntax_error_are_kept() -> None:
    result = load_text(AGENT + "---\na: b: c\n", file="s.yaml")
    assert [d.spec.name for d in result.documents] == ["helper"]
    assert [p.code for p in result.problems] == ["yaml.syntax"]


def test_file_names_are_reported_as_given(tmp_path: Path, monkeypatch: object) -> None:
    (tmp_path / "specs" / "teams").mkdir(parents=True)
    (tmp_path / "specs" / "b.yml").write_text(AGENT)
    (tmp_path / "specs" / "teams" / "a.yaml").write_text(AGENT.replace("helper", "x"))
    (tmp_path / "specs" / "notes.txt").write_text("not yaml")
    (tmp_path / "specs" / ".hidden").mkdir()
    (tmp_path / "specs" / ".hidden" / "c.yaml").write_text("bad: [")
    import os

    os.chdir(tmp_path)
    try:
        files, problems = discover_files(["specs", "specs/b.yml"])
    finally:
        os.chdir("/")
    assert files == ["specs/b.yml", "specs/teams/a.yaml"]
    assert problems == []


def test_unreadable_and_non_utf8_files_are_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    result = load_file(bad)
    assert [(p.code, p.line, p.column) for p in result.problems] == [("file.encoding", 1, 10)]
    result = load_file(tmp_path / "missing.yaml")
    assert [p.code for p in result.problems] == ["file.read"]
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes(AGENT.encode("utf-16"))
    assert [d.spec.name for d in load_file(utf16).documents] == ["helper"]


def test_invalid_documents_are_remembered_so_references_are_not_doubled(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(AGENT + "temprature: 1\n")
    result = load_project([tmp_path])
    assert result.invalid == {"agent.helper"}
    assert result.project.agents == {}


def test_problems_from_all_files_are_collected(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: [\n")
    (tmp_path / "b.yaml").write_text(AGENT.replace("kind: Agent", "kind: Agnet"))
    (tmp_path / "c.yaml").write_text(AGENT)
    result = load_project([tmp_path])
    assert sorted(p.code for p in result.problems) == ["kind.unknown", "yaml.syntax"]
    assert list(result.project.agents) == ["helper"]
    assert result.document_count == 2


# ---------------------------------------------------------------- properties: never raises

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
spec_like = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["runner/v1", "runner/v2"]),
        "kind": st.sampled_from(["Agent", "Team", "ResourcePool", "Alert", "Scenario", "Bogus"]),
        "name": st.text(max_size=8),
    },
    optional={
        "members": yaml_values,
        "model": yaml_values,
        "agents": yaml_values,
        "steps": yaml_values,
        "instructions": yaml_values,
        "extra": yaml_values,
    },
)
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_gives_problems_not_exceptions(text: str) -> None:
    result = load_text(text, file="any.yaml")
    for problem in result.problems:
        assert problem.line >= 1 and problem.column >= 1


@_SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_problems_not_exceptions(
    tmp_path_factory: object, data: bytes
) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".yaml") as handle:
        handle.write(data)
        handle.flush()
        load_file(handle.name)


@_SETTINGS
@given(st.lists(yaml_values | spec_like, min_size=1, max_size=3))
def test_arbitrary_structures_dumped_to_yaml_load_without_exceptions(docs: list[object]) -> None:
    text = yaml.safe_dump_all(docs)
    result = load_text(text, file="dump.yaml")
    for problem in result.problems:
        assert problem.line >= 1 and problem.column >= 1


# ---------------------------------------------------------------- the event loop's fast paths


def _parsed(text: str, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> Any:
    monkeypatch.setattr(DocumentBuilder, "fast_paths", fast)
    documents, problems = parse_yaml(text, file="f.yaml")
    return (
        [(d.file, d.data, d.position, d.positions, d.key_positions, d.sound) for d in documents],
        problems,
    )


_SCALARS = ["a", "1", "-2.5", "true", "null", "~", "''", "'q'", '"d"', "2001-01-01", "1e3", "x y"]
_TAGGED = ["!!str 3", "!!int zz", "!!int 7", "!custom v", "!!float 1", "!!null ''", "!!binary x"]


def _random_yaml(rng: random.Random) -> str:
    """Shared objects (anchors and aliases), merge keys, tags, duplicates, styles, depth."""
    shared: list[Any] = []

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 3 or roll < 0.35:
            return rng.choice([*_SCALARS, "TAGGED", "TAGGED"])
        if shared and roll < 0.45:
            return rng.choice(shared)
        if roll < 0.75:
            made: Any = {
                rng.choice(["k1", "k2", "k3", "<<", "name", "TAGGED"]): value(depth + 1)
                for _ in range(rng.randint(0, 4))
            }
        else:
            made = [value(depth + 1) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.3:
            shared.append(made)
        return made

    docs = []
    for _ in range(rng.randint(1, 3)):
        style = rng.choice([None, True, False])
        text = yaml.dump(
            value(0), default_flow_style=style, sort_keys=False, width=rng.choice([20, 80])
        )
        text = text.replace("'<<'", "<<")
        while "TAGGED" in text:
            text = text.replace("TAGGED", rng.choice([*_TAGGED, "k1", "dup"]), 1)
        if rng.random() < 0.1:
            text = "[" * 105 + "x" + "]" * 105 + "\n"  # deeper than MAX_DEPTH
        if rng.random() < 0.1:
            text += "? [complex]\n: key\n"
        docs.append(text)
    return "---\n".join(docs)


def test_the_event_loop_fast_paths_build_what_the_general_path_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(5)
    fixed = [
        AGENT,
        "a: &x {b: 1, c: [1, 2]}\nd: *x\ne:\n  <<: *x\n  b: 2\n",
        "a: &l [1, &m {k: v}]\nb: [*l, *m]\nc: {<<: [*m, {z: 1}], k: w}\n",
        "k: 1\nk: 2\n- bad\n",
        "a: {b: 1, b: 2, c: {d: [1, {e: 2, e: 3}]}}\n",
        "x: !!set {a, b}\ny: [!custom z, !!str 1, !!int q]\n",
        "<<: 1\na: b\n",
        "- - - - 1\n  - 2\n- &a [*a]\n",
        "a: *undefined\n",
        "",
        "---\n---\nk: v\n...\n---\n- 1\n",
    ]
    # Near the alias budget: the size counted for each nested collection decides the outcome.
    for n, k in itertools.product((8, 9, 10), range(5, 10)):
        inner = ", ".join(["1"] * n)
        for first in (f"[[{inner}]]", f"{{k: [{inner}]}}", f"\n  - k: {{j: [{inner}]}}"):
            fixed.append(
                f"a: &a {first}\nb: &b [{', '.join(['*a'] * 10)}]\n"
                f"c: &c [{', '.join(['*b'] * 10)}]\nd: [{', '.join(['*c'] * k)}]\n"
            )
    for text in fixed + [_random_yaml(rng) for _ in range(400)]:
        assert _parsed(text, monkeypatch, fast=True) == _parsed(text, monkeypatch, fast=False), text
