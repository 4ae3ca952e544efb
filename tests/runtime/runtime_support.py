"""Helpers shared by the runtime tests (importable: tests/runtime is on sys.path)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from runner.spec.models import KINDS, address_of
from runner.spec.project import Position, Project, SpecDocument

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contract" / "specs"
AUTH = {"user_id": "user-456", "workspace_id": "workspace-123", "permissions": ["chat:access"]}


def operator(name: str, workspace: str = "workspace-123") -> dict[str, Any]:
    """An operator of `workspace` named `name` (the operator API's `auth=`)."""
    return {"user_id": name, "workspace_id": workspace, "permissions": ["operator"]}


OPS = operator("ops")  # an operator of AUTH's workspace, for listings
ADMIN = {"user_id": "admin", "workspaces": ["*"], "permissions": ["admin"]}


def project_from(*texts: str, base: Path | None = None) -> Project:
    """A Project from YAML texts (and the contract folder when `base` is given)."""
    project = Project()
    sources: list[tuple[str, str]] = []
    if base is not None:
        for path in sorted(base.rglob("*.yaml")):
            sources.append((str(path), path.read_text()))
    sources.extend(("<test>", t) for t in texts)
    for where, text in sources:
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            spec = KINDS[doc["kind"]].model_validate(doc)
            project.remove(address_of(doc["kind"], spec.name))  # later texts override
            project.add(SpecDocument(spec=spec, position=Position(where, 1, 1)))
    return project


def contract_project(*extra: str) -> Project:
    return project_from(*extra, base=CONTRACT)


def copy_contract(dest: Path) -> Path:
    shutil.copytree(CONTRACT, dest)
    return dest
