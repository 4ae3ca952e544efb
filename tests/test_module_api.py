"""Every module owns what it exports, and every name is imported from where it lives.

The rules, checked on the source (no module is imported):
  - a module's `__all__` lists only names the module itself defines; only a package's
    `__init__` may list names it takes from its own modules, and then it lists every public name
    it defines or takes from them (its public API, the way httpx checks its `__all__`);
  - `from runner.x import name` takes `name` from the module that defines it, or from a package
    `__init__` whose `__all__` lists it, never through another module that merely imported it;
  - no private name (`_x`) is imported from another module.

  - every package `__init__` has a docstring saying its role and an `__all__` (possibly empty:
    "import from the modules") naming only things that exist.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXEMPT: tuple[str, ...] = ()
# `runner` itself exports `Lifecycle` lazily (a module __getattr__), so `runner validate` never
# imports the runtime: its __all__ is checked by the import test below, not on the source.
LAZY_PACKAGES = ("runner",)


@dataclass
class _Module:
    name: str
    path: Path
    is_package: bool
    defines: set[str] = field(default_factory=set)
    imports: dict[str, str] = field(
        default_factory=dict
    )  # local name -> runner module it came from
    exports: list[str] | None = None
    docstring: str | None = None
    runner_imports: list[tuple[int, str, str]] = field(default_factory=list)  # line, module, name


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _read(root: Path, path: Path) -> _Module:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _Module(_module_name(root, path), path, path.name == "__init__.py")
    module.docstring = ast.get_docstring(tree)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            module.defines.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                module.defines.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                assert isinstance(node.value, ast.List | ast.Tuple), f"{path}: __all__ literal"
                module.exports = [ast.literal_eval(e) for e in node.value.elts]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("runner")
        ):
            for alias in node.names:
                module.imports[alias.asname or alias.name] = node.module
    module.defines.discard("__all__")
    for node in ast.walk(tree):  # lazy imports inside functions count too
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and (node.module == "runner" or node.module.startswith("runner."))
        ):
            for alias in node.names:
                module.runner_imports.append((node.lineno, node.module, alias.name))
    return module


def _modules(root: Path, folders: tuple[str, ...]) -> dict[str, _Module]:
    found = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            module = _read(root, path)
            found[module.name] = module
    return found


def _exempt(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in EXEMPT)


def _violations(root: Path) -> list[str]:
    runner = _modules(root, ("runner",))
    checked = {**runner, **_modules(root, ("tests",))}
    found: list[str] = []
    for module in runner.values():
        if module.is_package and not _exempt(module.name):
            if not module.docstring:
                found.append(f"{module.name}: a package says its role in a docstring")
            if module.exports is None:
                found.append(f"{module.name}: a package lists its public API in __all__")
        if _exempt(module.name) or module.exports is None or module.name in LAZY_PACKAGES:
            continue
        if module.is_package:
            own = {
                n
                for n, source in module.imports.items()
                if source.startswith(module.name + ".") and not n.startswith("_")
            }
            public = own | {n for n in module.defines if not n.startswith("_")}
            if sorted(module.exports) != sorted(public):
                found.append(
                    f"{module.name}: __all__ {sorted(module.exports)} is not its public names "
                    f"{sorted(public)}"
                )
        else:
            for name in module.exports:
                if name not in module.defines:
                    found.append(f"{module.name}: __all__ lists {name!r}, defined elsewhere")
    for module in checked.values():
        if _exempt(module.name):
            continue
        where = module.path.relative_to(root)
        for line, source, name in module.runner_imports:
            if f"{source}.{name}" in runner:
                continue  # a submodule
            if name.startswith("_") and not name.startswith("__") and source != module.name:
                found.append(f"{where}:{line}: imports private {name} from {source}")
                continue
            owner = runner.get(source)
            if owner is None:
                found.append(f"{where}:{line}: imports from unknown module {source}")
            elif name not in owner.defines and not (
                owner.is_package and name in (owner.exports or ())
            ):
                found.append(f"{where}:{line}: imports {name} from {source}, which only imports it")
    return found


def test_every_module_owns_its_exports_and_names_come_from_their_home() -> None:
    assert _violations(ROOT) == []


def test_the_check_sees_a_re_export_a_private_import_and_an_incomplete_package(
    tmp_path: Path,
) -> None:
    files = {
        "runner/__init__.py": '"""root"""\n__all__ = []\n',
        "runner/pkg/__init__.py": (
            "from runner.pkg.home import Thing, helper\n__all__ = ['Thing']\n"
        ),
        "runner/bare/__init__.py": "",
        "runner/pkg/home.py": "class Thing: ...\ndef helper(): ...\ndef _secret(): ...\n",
        "runner/pkg/relay.py": "from runner.pkg.home import Thing\n__all__ = ['Thing']\n",
        "runner/pkg/user.py": (
            "from runner.pkg.relay import Thing\n"
            "def f():\n"
            "    from runner.pkg.home import _secret\n"
        ),
        "tests/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _violations(tmp_path) == [
        "runner.bare: a package says its role in a docstring",
        "runner.bare: a package lists its public API in __all__",
        "runner.pkg: a package says its role in a docstring",
        "runner.pkg: __all__ ['Thing'] is not its public names ['Thing', 'helper']",
        "runner.pkg.relay: __all__ lists 'Thing', defined elsewhere",
        "runner/pkg/user.py:1: imports Thing from runner.pkg.relay, which only imports it",
        "runner/pkg/user.py:3: imports private _secret from runner.pkg.home",
    ]


PACKAGES = sorted(_module_name(ROOT, p) for p in (ROOT / "runner").rglob("__init__.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_api_is_importable_as_listed(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    assert all(hasattr(module, name) for name in module.__all__)
