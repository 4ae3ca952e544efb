"""Every name has one home: modules export only what they define, packages list their API.

  - A package's `__init__` has a docstring saying its role, and `__all__` lists its public API:
    every listed name exists (checked by importing the package), and it imports nothing it
    does not list (nothing else is re-exported through it).
  - A module's `__all__`, where it has one, names only what the module itself defines, and no
    module re-exports an import with the `import x as x` idiom.
  - No private name (`_x`) is imported from another module of runner.

A test reaching for a name imports it from the module that defines it, or from its package.
`PENDING` lists the packages whose clean-up is being done separately (issue 16, outside the
runtime); remove an entry once that package follows these rules.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "runner"

PENDING: tuple[str, ...] = ("runner.apply", "runner.plan", "runner.providers", "runner.spec")


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _in_scope(module: str) -> bool:
    return not any(module == p or module.startswith(p + ".") for p in PENDING)


def _modules(root: Path = RUNNER) -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        if _in_scope(module):
            yield module, path, ast.parse(path.read_text(encoding="utf-8"))


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id == "__all__":
            return [str(ast.literal_eval(e)) for e in getattr(value, "elts", [])]
    return None


def _top_level(tree: ast.Module) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside module-level `if` / `try` blocks."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        yield node
        if isinstance(node, ast.If | ast.Try):
            pending.extend([*node.body, *node.orelse, *getattr(node, "finalbody", [])])
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in _top_level(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _imported(tree: ast.Module) -> Iterator[tuple[int, str, str, bool]]:
    """(line, module, name as bound, re-exported with the `x as x` idiom) of every module-level
    import."""
    for node in _top_level(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                bound = alias.asname or alias.name
                yield node.lineno, node.module or "", bound, alias.asname == alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                yield node.lineno, alias.name, bound, alias.asname == alias.name


def _problems(root: Path = RUNNER) -> list[str]:
    found: list[str] = []
    for module, path, tree in _modules(root):
        where = path.relative_to(root.parent)
        exported = _declared_all(tree)
        if path.name == "__init__.py":
            if not ast.get_docstring(tree):
                found.append(f"{where}: a package needs a docstring saying its role")
            if exported is None:
                found.append(f"{where}: a package lists its public API in __all__")
                continue
            for line, source, bound, _idiom in _imported(tree):
                if bound not in exported and source != "typing":  # typing: not API
                    found.append(f"{where}:{line}: imports {bound} without listing it")
            continue
        own = _defined(tree)
        for name in exported or ():
            if name not in own:
                found.append(f"{where}: __all__ lists {name}, which {module} does not define")
        for line, source, bound, idiom in _imported(tree):
            if idiom:
                found.append(f"{where}:{line}: re-exports {bound} ({source}) with `as {bound}`")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runner"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(
                            f"{where}:{node.lineno}: imports private {alias.name} "
                            f"from {node.module}"
                        )
    return found


def test_modules_export_only_their_own_names_and_import_no_private_ones() -> None:
    assert _problems() == []


def _packages() -> list[str]:
    return [
        _module_name(p, RUNNER)
        for p in sorted(RUNNER.rglob("__init__.py"))
        if _in_scope(_module_name(p, RUNNER))
    ]


@pytest.mark.parametrize("package", _packages())
def test_every_name_a_package_lists_exists(package: str) -> None:
    imported = importlib.import_module(package)
    missing = [name for name in imported.__all__ if not hasattr(imported, name)]
    assert missing == []


def test_the_export_check_can_fail(tmp_path: Path) -> None:
    root = tmp_path / "runner"
    (root / "pkg").mkdir(parents=True)
    (root / "__init__.py").write_text('"""runner."""\n__all__: list[str] = []\n')
    (root / "pkg" / "__init__.py").write_text(
        "from runner.pkg.impl import Thing, helper\n__all__ = ['Thing']\n"
    )
    (root / "pkg" / "impl.py").write_text(
        "from runner.pkg.other import _secret\n"
        "from runner.pkg.other import Moved as Moved\n"
        "__all__ = ['Thing', 'helper', 'Moved']\n"
        "class Thing: ...\n"
        "def helper(): ...\n"
    )
    (root / "pkg" / "other.py").write_text("_secret = 1\nclass Moved: ...\n")
    assert _problems(root) == [
        "runner/pkg/__init__.py: a package needs a docstring saying its role",
        "runner/pkg/__init__.py:1: imports helper without listing it",
        "runner/pkg/impl.py: __all__ lists Moved, which runner.pkg.impl does not define",
        "runner/pkg/impl.py:2: re-exports Moved (runner.pkg.other) with `as Moved`",
        "runner/pkg/impl.py:1: imports private _secret from runner.pkg.other",
    ]
