"""The package layout is the flow: data moves forward only, and nothing reaches back up.

    spec -> plan -> apply -> runtime -> watch | scenarios -> serve -> cli

Every `import` in `runner/` counts: at module level, inside a function, under `TYPE_CHECKING`,
and `importlib.import_module("runner....")` by name (a lazy or type-only import is still a
dependency). Three rules are checked against that graph:

  - there is no import cycle anywhere in `runner/`;
  - each layer imports only the layers before it, and the heavy third-party SDKs are confined
    to the one module that needs them (`runner validate` must never pay for the Azure SDK);
  - inside the runtime, each part imports only the parts declared before it in
    `RUNTIME_ORDER` (the order `runner/runtime/__init__.py` documents).

Each check is itself tested on a small synthetic `runner/` tree, so it is known to fail.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "runner"

_BEFORE_RUNTIME = (
    "runner.errors",
    "runner.paths",
    "runner.telemetry",
    "runner.sqlitefile",
    "runner.spec",
    "runner.plan",
    "runner.apply",
    "runner.providers",
    "runner.state",
)

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
        "runner.telemetry",
        "runner.spec",
        "runner.plan",
        "runner.providers.base",
        "runner.state.base",
    ),
    "runtime": _BEFORE_RUNTIME,
    "watch": (*_BEFORE_RUNTIME, "runner.runtime"),
    "scenarios": (*_BEFORE_RUNTIME, "runner.runtime"),
    "serve": (*_BEFORE_RUNTIME, "runner.runtime", "runner.watch"),
    "report": (),  # pure: plain records in, text and HTML out
}

# third-party package -> the only runner modules that may import it
CONFINED: dict[str, tuple[str, ...]] = {
    "azure": ("runner.providers.foundry", "runner.providers.foundry_errors"),
    "openai": ("runner.providers.foundry", "runner.providers.foundry_errors"),
    "watchfiles": ("runner.watch.watcher",),
    "jinja2": ("runner.spec.render_jinja", "runner.spec.render_sandbox"),
    "re2": ("runner.spec.patterns",),
    # the PostgreSQL state backend (the `postgres` extra): its pool and its schema only
    "psycopg": ("runner.state.pg_database", "runner.state.pg_schema"),
    "psycopg_pool": ("runner.state.pg_database",),
    # runner serve's service stack: only the serve package (never validate, plan or the runtime)
    "fastapi": (
        "runner.serve.app",
        "runner.serve.deps",
        "runner.serve.fastlane",
        "runner.serve.operator_console",
        "runner.serve.routes_operators",
        "runner.serve.routes_sessions",
        "runner.serve.routes_status",
    ),
    "starlette": ("runner.serve.app", "runner.serve.tracing"),
    "socketio": ("runner.serve.realtime",),
    "uvicorn": ("runner.serve.server",),
    "prometheus_client": ("runner.serve.metrics",),
    "jwt": ("runner.serve.authn", "runner.serve.jwks"),
    "opentelemetry": ("runner.telemetry",),
    # many hosts: the optional redis extra
    "redis": (
        "runner.runtime.redis_wire",
        "runner.runtime.pools.redis_limits",
        "runner.runtime.events_redis",
    ),
}

# The runtime's parts, bottom up: a module of one part may import the parts before it (and
# its own), never one after it.
RUNTIME_ORDER: tuple[str, ...] = (
    "clock",
    "config",
    "errors",
    "events",
    "redis_wire",
    "events_redis",
    "auth",
    "context",
    "tracing",
    "routing",
    "escalation",
    "teams",
    "pools",
    "monitoring",
    "tools",
    "sessions",
    "status",
    "operators",
    "assembly",
    "lifecycle",
)


# ---------------------------------------------------------------- the import graph


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line, imported module, names imported from it) for every import in the file, wherever
    it stands, plus `importlib.import_module("...")` / `__import__("...")` with a literal."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base, tuple(a.name for a in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value, ()


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of `root` (a `runner/` tree) it imports, however it imports them.
    `from p import name` depends on module `p.name` when that is a module, else on `p`."""
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for _line, imported, names in _imports(path, module):
            targets = [f"{imported}.{n}" for n in names if f"{imported}.{n}" in files]
            if len(targets) < len(names) or not names:
                targets.append(imported)
            for target in targets:
                found = resolve(target)
                if found is not None and found != module:
                    graph[module].add(found)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (an import cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


# ---------------------------------------------------------------- the rules


def _layer_violations(root: Path = RUNNER) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        layer = module.split(".")[1] if module.count(".") >= 1 else ""
        for line, imported, _names in _imports(path, module):
            where = f"{path.relative_to(root.parent)}:{line}: {module} imports {imported}"
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


def _runtime_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["runner", "runtime"] else None


def _order_violations(root: Path = RUNNER) -> list[str]:
    """Imports of a runtime part by a part declared before it (or of an undeclared part)."""
    rank = {part: i for i, part in enumerate(RUNTIME_ORDER)}
    found = []
    for module, targets in sorted(import_graph(root).items()):
        mine = _runtime_part(module)
        if mine is None:
            continue
        if mine not in rank:
            found.append(f"{module}: part '{mine}' is not in RUNTIME_ORDER")
            continue
        for target in sorted(targets):
            theirs = _runtime_part(target)
            if theirs is not None and theirs != mine and rank.get(theirs, len(rank)) > rank[mine]:
                found.append(f"{module} ({mine}) imports {target} ({theirs}), declared after it")
    return found


def test_no_import_cycle_anywhere_in_runner() -> None:
    assert find_cycles(import_graph(RUNNER)) == []


def test_every_import_respects_the_flow() -> None:
    assert _layer_violations() == []


def test_runtime_parts_import_only_parts_declared_before_them() -> None:
    assert _order_violations() == []


def test_runtime_order_is_every_part_in_the_documented_order() -> None:
    parts = {p.stem for p in (RUNNER / "runtime").iterdir() if p.suffix == ".py" or p.is_dir()}
    assert parts - {"__init__", "__pycache__"} == set(RUNTIME_ORDER)
    doc = ast.get_docstring(ast.parse((RUNNER / "runtime" / "__init__.py").read_text())) or ""
    listing = doc[doc.index("Its parts") :]
    places = [re.search(rf"\b{part}\b", listing) for part in RUNTIME_ORDER]
    starts = [m.start() if m is not None else -1 for m in places]
    assert -1 not in starts and starts == sorted(starts)


# ---------------------------------------------------------------- the checks can fail


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "runner"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return root


@pytest.mark.parametrize(
    "closing",
    [
        "from runner.a import A\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from runner.a import A\n",
        "def f():\n    from runner.a import A\n",
        "import importlib\ndef f():\n    return importlib.import_module('runner.a')\n",
        "def f():\n    from . import a\n",
    ],
    ids=["top-level", "type-checking", "in-function", "importlib", "relative"],
)
def test_the_cycle_check_sees_a_cycle_however_it_is_closed(tmp_path: Path, closing: str) -> None:
    root = _tree(
        tmp_path,
        {"a.py": "from runner.b import B\nA = 1\n", "b.py": "B = 2\n", "c.py": "import runner.a\n"},
    )
    assert find_cycles(import_graph(root)) == []
    (root / "b.py").write_text(closing + "B = 2\n")
    assert find_cycles(import_graph(root)) == [["runner.a", "runner.b"]]


def test_the_cycle_check_sees_a_long_cycle_through_packages(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "p/x.py": "from runner.q import y\n",
            "q/y.py": "import runner.r.z\n",
            "r/z.py": "from runner.p.x import thing\n",
        },
    )
    assert find_cycles(import_graph(root)) == [["runner.p.x", "runner.q.y", "runner.r.z"]]


def test_the_order_check_sees_a_part_reaching_up(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "runtime/routing/text.py": "def f():\n    from runner.runtime.sessions import t\n",
            "runtime/sessions/t.py": "from runner.runtime.routing import text\n",
            "runtime/gadgets.py": "",
        },
    )
    assert _order_violations(root) == [
        "runner.runtime.gadgets: part 'gadgets' is not in RUNTIME_ORDER",
        "runner.runtime.routing.text (routing) imports runner.runtime.sessions.t (sessions), "
        "declared after it",
    ]


def test_the_check_sees_a_backward_import(tmp_path: Path) -> None:
    """The flow rule itself can fail: a planner module importing the runtime is reported."""
    root = _tree(
        tmp_path,
        {
            "plan/bad.py": (
                "def f():\n"
                "    from runner.runtime.lifecycle import Lifecycle\n"
                "    import azure.ai.projects\n"
            )
        },
    )
    assert _layer_violations(root) == [
        "runner/plan/bad.py:2: runner.plan.bad imports runner.runtime.lifecycle "
        "(layer 'plan' may use runner.errors, runner.spec, runner.providers.base, "
        "runner.state.base)",
        "runner/plan/bad.py:3: runner.plan.bad imports azure.ai.projects "
        "(only runner.providers.foundry, runner.providers.foundry_errors may)",
    ]
