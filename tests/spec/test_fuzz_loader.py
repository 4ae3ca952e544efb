"""Property-based fuzzing of the loader and validator: no exception, no hang, never exit 3.

Three sources of input, each checked the way `runner validate` checks a folder (load, then the
semantic checks): arbitrary text, documents built from the real kinds with random values, and the
contract specs with random edits (characters inserted, deleted or replaced). Every finding must
be a `Problem`; `runner validate` on the result must exit 0 or 1.

Bounded in CI by the `runner-ci` hypothesis profile (a fixed number of examples per property, a
per-example deadline); run it longer with `RUNNER_FUZZ_EXAMPLES`, e.g.

    RUNNER_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/spec/test_fuzz_loader.py
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.cli.main import main  # imported once, not inside a timed example
from runner.spec.checks import check_project
from runner.spec.loader import build_project, load_project, load_text
from runner.spec.models import KINDS

CONTRACT = Path("/work/shared/contract/specs")
EXAMPLES = int(os.environ.get("RUNNER_FUZZ_EXAMPLES", "60"))

settings.register_profile(
    "runner-fuzz",
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),  # a hang fails the example instead of the run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("RUNNER_FUZZ_EXAMPLES") is None,  # CI: the same examples
    database=None,
)
FUZZ = settings.get_profile("runner-fuzz")


def check_text(text: str, name: str = "fuzz.yaml") -> None:
    """Load and check `text` as one file: every finding is a Problem, nothing raises."""
    result = load_text(text, file=name)
    for problem in result.problems:
        assert problem.file == name and problem.line >= 1 and problem.column >= 1
        assert problem.message
    project, problems = build_project(result.documents)
    if not [p for p in [*result.problems, *problems] if p.severity == "error"]:
        for problem in check_project(project):
            assert problem.message and problem.line >= 1


def validate_exit_code(files: dict[str, str]) -> int:
    """`runner validate` on a folder holding `files` (in this process): its exit code."""
    with tempfile.TemporaryDirectory() as folder:
        for rel, text in files.items():
            path = Path(folder) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", folder])
    assert "internal error" not in err.getvalue(), err.getvalue()
    return code


# ---------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["${VAR}", "${X:-d}", "{{ vars.x }}", "{% if x %}y{% endif %}", "5s", "1h"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def _field_names(kind: str) -> list[str]:
    model = KINDS[kind]
    return [info.alias or name for name, info in model.model_fields.items()]


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A document of a real kind: some of its real fields (random values), maybe a stray one."""
    kind = draw(st.sampled_from(sorted(KINDS)))
    fields = draw(st.lists(st.sampled_from(_field_names(kind)), max_size=6, unique=True))
    document: dict[str, Any] = {"apiVersion": "runner/v1", "kind": kind}
    document["name"] = draw(
        st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), values)
    )
    for field in fields:
        if field not in ("apiVersion", "kind", "name"):
            document[field] = draw(values)
    if draw(st.booleans()):
        document[draw(st.text(max_size=10))] = draw(values)
    return document


def _contract_texts() -> list[str]:
    if not CONTRACT.is_dir():
        return ["apiVersion: runner/v1\nkind: Agent\nname: a\nmodel: m\ninstructions: hi\n"]
    return [p.read_text(encoding="utf-8") for p in sorted(CONTRACT.rglob("*.yaml"))]


CONTRACT_TEXTS = _contract_texts()


@st.composite
def edited_contract(draw: st.DrawFn) -> str:
    """A contract spec file with a few random edits."""
    text = draw(st.sampled_from(CONTRACT_TEXTS))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(
            st.one_of(
                st.text(max_size=8),
                st.sampled_from(
                    ["\n", ": ", "- ", "{", "[", "&a ", "*a", "!!python/object ", "\t"]
                ),
            )
        )
        if action == "insert":
            text = text[:at] + piece + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=20)) :]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    return text


# ---------------------------------------------------------------- properties


@FUZZ
@given(st.text(max_size=400))
def test_any_text_loads_into_problems_never_an_exception(text: str) -> None:
    check_text(text)


@FUZZ
@given(st.lists(documents(), min_size=1, max_size=5))
def test_documents_of_real_kinds_with_random_values(docs: list[dict[str, Any]]) -> None:
    check_text(yaml.safe_dump_all(docs, allow_unicode=True, sort_keys=False))


@FUZZ
@given(edited_contract())
def test_edited_contract_specs(text: str) -> None:
    check_text(text)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 6))
@given(
    st.dictionaries(
        st.sampled_from(["a.yaml", "b.YML", "sub/c.yaml", "d.txt"]),
        st.one_of(edited_contract(), st.text(max_size=200)),
        min_size=1,
        max_size=3,
    )
)
def test_validate_never_exits_3(files: dict[str, str]) -> None:
    assert validate_exit_code(files) in (0, 1)


def test_the_contract_specs_themselves_still_load_cleanly() -> None:
    """The fuzzer's seed corpus is valid: edits, not the corpus, make the problems."""
    if CONTRACT.is_dir():
        assert load_project([CONTRACT]).problems == []
