"""The package layout is the flow: data moves forward only, and nothing reaches back up.

    spec -> plan -> apply -> runtime -> watch -> cli

Every `import` in `runner/` (at module level or inside a function: a lazy import is still a
dependency) is checked against what its layer may use, and the heavy third-party SDKs are confined
to the one module that needs them (`runner validate` must never pay for the Azure SDK).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "runner"

# layer -> runner modules (prefixes) it may import besides itself
ALLOWED: dict[str, tuple[str, ...]] = {
    "spec": ("runner.errors", "runner.paths", "runner.providers.base"),
    "plan": ("runner.errors", "runner.spec", "runner.providers.base", "runner.state.base"),
    "state": (
        "runner.errors",
        "runner.paths",
        "runner.sqlitefile",
        "runner.spec",
        "runner.providers.base",
    ),
    "providers": ("runner.errors", "runner.paths", "runner.sqlitefile", "runner.spec"),
    "apply": (
        "runner.errors",
        "runner.spec",
        "runner.plan",
        "runner.providers.base",
        "runner.state.base",
    ),
    "runtime": (
        "runner.errors",
        "runner.paths",
        "runner.spec",
        "runner.plan",
        "runner.apply",
        "runner.providers",
        "runner.state",
    ),
    "watch": (
        "runner.errors",
        "runner.paths",
        "runner.spec",
        "runner.plan",
        "runner.apply",
        "runner.providers",
        "runner.state",
        "runner.runtime",
    ),
}

# third-party package -> the only runner modules that may import it
CONFINED: dict[str, tuple[str, ...]] = {
    "azure": ("runner.providers.foundry",),
    "openai": ("runner.providers.foundry",),
    "watchfiles": ("runner.watch.watcher",),
    "jinja2": ("runner.spec.render_jinja",),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(RUNNER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _violations() -> list[str]:
    found = []
    for path in sorted(RUNNER.rglob("*.py")):
        module = _module_name(path)
        layer = module.split(".")[1] if module.count(".") >= 1 else ""
        for line, imported in _imports(path):
            where = f"{path.relative_to(RUNNER.parent)}:{line}: {module} imports {imported}"
            top = imported.split(".")[0]
            if top in CONFINED and module not in CONFINED[top]:
                found.append(f"{where} (only {', '.join(CONFINED[top])} may)")
            if top != "runner" or layer not in ALLOWED:
                continue
            if imported == "runner" or imported.startswith(f"runner.{layer}"):
                continue
            if not any(
                imported == allowed or imported.startswith(allowed + ".")
                for allowed in ALLOWED[layer]
            ):
                found.append(f"{where} (layer '{layer}' may use {', '.join(ALLOWED[layer])})")
    return found


def test_every_import_respects_the_flow() -> None:
    assert _violations() == []


def test_the_check_sees_a_backward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule itself can fail: a planner module importing the runtime is reported."""
    fake = tmp_path / "runner"
    (fake / "plan").mkdir(parents=True)
    (fake / "plan" / "bad.py").write_text(
        "def f():\n"
        "    from runner.runtime.lifecycle import Lifecycle\n"
        "    import azure.ai.projects\n"
    )
    monkeypatch.setattr(f"{__name__}.RUNNER", fake)
    assert _violations() == [
        "runner/plan/bad.py:2: runner.plan.bad imports runner.runtime.lifecycle "
        "(layer 'plan' may use runner.errors, runner.spec, runner.providers.base, "
        "runner.state.base)",
        "runner/plan/bad.py:3: runner.plan.bad imports azure.ai.projects "
        "(only runner.providers.foundry may)",
    ]
