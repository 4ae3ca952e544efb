"""The pinned installs match pyproject.toml, and CI runs what the README says.

`constraints.txt` (installed by the README's commands and by .ci/run's first test run) must pin
every declared dependency at a version its specifier allows; `.ci/floors.txt` (.ci/run's second
run) must pin every one at exactly its declared floor. A dependency added, or a floor raised,
without running `.ci/lock` fails here, on the machine of whoever edited pyproject.toml, rather
than as a puzzling install in CI. (`packaging` comes with pytest.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "constraints.txt"
FLOORS = REPO / ".ci" / "floors.txt"
REGENERATE = "run .ci/lock to re-pin after editing pyproject.toml"


def declared() -> list[tuple[str, Requirement]]:
    """(extra or '', requirement) for every dependency in pyproject.toml, extras included; an
    extra that pulls in another of the project's own extras (`runner[serve]`) is not one."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [("", Requirement(text)) for text in project.get("dependencies", [])]
    for extra, texts in project.get("optional-dependencies", {}).items():
        found.extend((extra, Requirement(text)) for text in texts)
    own = canonicalize_name(project["name"])
    return [(extra, req) for extra, req in found if canonicalize_name(req.name) != own]


def pins(path: Path) -> dict[str, set[Version]]:
    """name -> the versions a requirements file pins it at (one per environment marker fork)."""
    pinned: dict[str, set[Version]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # uv pip compile writes exactly `name==version`
        assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pinned.setdefault(canonicalize_name(req.name), set()).add(Version(spec.version))
    return pinned


def floor(req: Requirement) -> Version | None:
    lower = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=", "===")]
    return max(lower, default=None)


def applies(extra: str, req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate({"extra": extra})


DECLARED = declared()
IDS = [f"{extra or 'main'}:{req.name}" for extra, req in DECLARED]


def test_pyproject_declares_dependencies() -> None:
    # Guards the parametrised tests below against passing by having nothing to check.
    assert len(DECLARED) >= 10
    assert any(extra == "dev" for extra, _ in DECLARED)


@pytest.mark.parametrize(("extra", "req"), DECLARED, ids=IDS)
def test_every_dependency_declares_a_floor(extra: str, req: Requirement) -> None:
    assert floor(req) is not None, (
        f"pyproject.toml: {req} has no lower bound; give it the oldest version the tests pass "
        "on (`>=X`), or `pip install -c .ci/floors.txt` would test an arbitrarily old release"
    )


@pytest.mark.parametrize(("extra", "req"), DECLARED, ids=IDS)
def test_constraints_pin_every_dependency_within_its_specifier(
    extra: str, req: Requirement
) -> None:
    if not applies(extra, req):
        pytest.skip(f"{req} does not apply here")
    versions = pins(LOCK).get(canonicalize_name(req.name))
    assert versions, f"constraints.txt does not pin {req.name}: {REGENERATE}"
    outside = sorted(str(v) for v in versions if v not in req.specifier)
    assert outside == [], f"constraints.txt pins {req.name}=={outside} outside {req}: {REGENERATE}"


@pytest.mark.parametrize(("extra", "req"), DECLARED, ids=IDS)
def test_floors_pin_every_dependency_at_its_floor(extra: str, req: Requirement) -> None:
    if not applies(extra, req):
        pytest.skip(f"{req} does not apply here")
    versions = pins(FLOORS).get(canonicalize_name(req.name))
    assert versions, f".ci/floors.txt does not pin {req.name}: {REGENERATE}"
    assert versions == {floor(req)}, (
        f".ci/floors.txt pins {req.name} at {sorted(map(str, versions))}, but its declared "
        f"floor is {floor(req)} ({req}): {REGENERATE}; if the floor cannot be installed or "
        "resolved with the other floors, raise it in pyproject.toml"
    )


def test_ci_runs_the_readme_test_command_on_the_pinned_set() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^    (.*\.venv/bin/pip install .*)$", readme, re.MULTILINE)
    assert len(commands) == 2, commands  # install + main job, and the tests
    assert all("-c constraints.txt" in command for command in commands), commands
    (tests,) = [command for command in commands if "-m pytest" in command]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert any(line.startswith(tests) for line in ci), f".ci/run does not run {tests!r}"
