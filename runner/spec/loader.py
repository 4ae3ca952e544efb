"""YAML files -> typed spec documents with a source map: the first step of the flow.

`load_project(paths)` reads every `*.yaml`/`*.yml` (any case) under the given files or folders
(recursive, sorted, multi-document files included), validates each document against its kind's
model and indexes the valid ones into a `Project`. Nothing is raised for bad input: every finding
becomes a `Problem` at a 1-based `file:line:col`, and all problems from all files are returned
together.

The steps, one module each:

- `yaml_reader.parse_yaml`: text -> `RawDocument`s (values + source map) under the safety limits
  (`ALIAS_BUDGET`, `MAX_DEPTH`, safe tags only); scalars are built by `yaml_scalars`.
- `load_documents.validate_document`: `RawDocument` -> `SpecDocument`, pydantic errors
  translated to positions and messages.
- here: finding the files, reading and decoding them, and indexing documents into a `Project`.
  This module is the entry point for files and folders; each step's own names (`parse_yaml`,
  `RawDocument`, `ALIAS_BUDGET`, `validate_document`, ...) are imported from its module.

Invariants: input that cannot be read is a `file.read` error, never an absence: a folder that
cannot be listed, a file that cannot be opened or that vanished between listing and reading
(nothing is planned, so nothing it declared is deleted); file names are reported as the user
gave them; no environment variable is read and
no `${VAR}` is resolved; a document with a YAML-level problem is not validated further, but its
kind and name (when readable) are kept in `LoadResult.invalid`. Where they are not (a syntax error
hides the rest of its file, a document has no usable kind or name, a file cannot be read),
`invalid` says which kind may be missing (`project.missing_kind`): references that could point
into it are unknown, not wrong, and are not reported (one mistake, one error).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from runner.spec.load_documents import validate_document
from runner.spec.models import KINDS
from runner.spec.project import Problem, Project, SpecDocument, missing_kind
from runner.spec.yaml_reader import parse_yaml

__all__ = [
    "FileResult",
    "LoadResult",
    "build_project",
    "discover_files",
    "is_spec_file_name",
    "load_file",
    "load_project",
    "load_text",
]

_YAML_EXTENSIONS = (".yaml", ".yml")


@dataclass
class FileResult:
    """What one file holds: valid documents, problems, and addresses of invalid documents."""

    file: str
    documents: list[SpecDocument] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)
    """Addresses of invalid documents, and `missing_kind` entries for unreadable ones."""
    document_count: int = 0


@dataclass
class LoadResult:
    project: Project
    problems: list[Problem]
    files: list[str] = field(default_factory=list)
    invalid: frozenset[str] = frozenset()
    """Addresses of documents that exist but failed to load (references to them are not unknown),
    and `missing_kind` entries for the kinds a file or document that could not be read may hold."""
    document_count: int = 0


# Problems after which the file's remaining documents (of any kind) were never read.
_FILE_UNREAD = frozenset({"yaml.syntax", "yaml.depth", "file.read", "file.encoding"})


def load_text(text: str, *, file: str) -> FileResult:
    """Parse and validate the documents of one file's text."""
    raws, problems = parse_yaml(text, file=file)
    result = FileResult(file=file, problems=problems, document_count=len(raws))
    if any(p.code in _FILE_UNREAD for p in problems):
        result.invalid.add(missing_kind(None))
    for raw in raws:
        doc, doc_problems, address = validate_document(raw)
        result.problems.extend(doc_problems)
        if doc is not None:
            result.documents.append(doc)
        elif address is not None:
            result.invalid.add(address)
        else:
            data = raw.data
            kind = data.get("kind") if type(data) is dict else None
            result.invalid.add(
                missing_kind(kind if isinstance(kind, str) and kind in KINDS else None)
            )
    return result


def _unreadable(exc: OSError, *, folder: bool = False) -> str:
    """Why a spec file or folder cannot be read, and that nothing is planned without it."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) and not folder:
        return (
            f"the file vanished while the specs were read ({reason}); "
            "nothing is planned from a partial read: run again when it is back (or gone)"
        )
    what = "folder" if folder else "file"
    return (
        f"cannot read this {what} ({reason}); its documents would be missing from the specs, "
        f"so nothing is planned: make it readable (or remove it)"
    )


def is_spec_file_name(filename: str) -> bool:
    """The loader's rule: `*.yaml`/`*.yml` in any case (`.YAML`), not hidden."""
    return filename.lower().endswith(_YAML_EXTENSIONS) and not filename.startswith(".")


def load_file(path: str | os.PathLike[str]) -> FileResult:
    """Read one file (reported under the name as given) and load its documents."""
    file = os.fspath(path)
    try:
        with open(file, "rb", buffering=0) as handle:  # one read of the whole file: no buffer
            data = handle.readall()
    except OSError as exc:
        return FileResult(file=file, problems=[Problem(file, 1, 1, "file.read", _unreadable(exc))])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            try:
                text = data.decode("utf-16")
            except UnicodeDecodeError:
                text = ""
            else:
                return load_text(text, file=file)
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return FileResult(
            file=file,
            problems=[
                Problem(
                    file,
                    line,
                    column,
                    "file.encoding",
                    f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                )
            ],
        )
    return load_text(text, file=file)


def discover_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[Problem]]:
    """YAML files under `paths`, each folder walked recursively in sorted order (hidden skipped).

    Names keep the form the user gave (`specs/teams/a.yaml` for `specs`); a path given twice,
    or a file inside a folder also given, is read once.
    """
    files: list[str] = []
    problems: list[Problem] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if len(paths) == 1:  # one folder cannot list a file twice
            files.append(name)
            return
        real = os.path.realpath(name)
        if real not in seen:
            seen.add(real)
            files.append(name)

    for given in paths:
        name = os.fspath(given)
        if os.path.isdir(name):
            found: list[tuple[tuple[str, ...], str]] = []

            def unreadable(exc: OSError, top: str = name) -> None:
                where = exc.filename if isinstance(exc.filename, str) else top
                problems.append(Problem(where, 1, 1, "file.read", _unreadable(exc, folder=True)))

            for root, dirs, filenames in os.walk(name, onerror=unreadable):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                rel = os.path.relpath(root, name)
                parts = () if rel == "." else tuple(rel.split(os.sep))
                for filename in filenames:
                    if is_spec_file_name(filename):
                        found.append(((*parts, filename), os.path.join(root, filename)))
            for _key, full in sorted(found):
                add(full)
        elif os.path.exists(name) or os.path.islink(name):
            add(name)  # reading it reports what is wrong (a dangling link, no permission)
        else:
            problems.append(Problem(name, 1, 1, "file.read", "no such file or directory"))
    return files, problems


def build_project(documents: Iterable[SpecDocument]) -> tuple[Project, list[Problem]]:
    """Index documents by kind and name; a second document with a taken name is a problem."""
    project = Project()
    problems: list[Problem] = []
    for doc in documents:
        if not project.add(doc):
            first = project.document(doc.address)
            assert first is not None
            where = first.position_of(("name",))
            problems.append(
                Problem.at(
                    doc.position_of(("name",)),
                    "name.duplicate",
                    f"{doc.kind} {doc.spec.name!r} is already defined at {where}",
                )
            )
    return project, problems


def load_project(paths: Sequence[str | os.PathLike[str]]) -> LoadResult:
    """Load every YAML file under `paths` into a Project, with every problem found on the way."""
    files, problems = discover_files(paths)
    documents: list[SpecDocument] = []
    invalid: set[str] = {missing_kind(None)} if problems else set()
    count = 0
    for file in files:
        result = load_file(file)
        if any(p.code in _FILE_UNREAD for p in result.problems):
            invalid.add(missing_kind(None))
        problems.extend(result.problems)
        documents.extend(result.documents)
        invalid |= result.invalid
        count += result.document_count
    project, duplicates = build_project(documents)
    problems.extend(duplicates)
    return LoadResult(
        project=project,
        problems=problems,
        files=files,
        invalid=frozenset(invalid - {doc.address for doc in project}),
        document_count=count,
    )
