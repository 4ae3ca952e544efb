"""The spec files a watch covers, and the parse result of each, kept across reloads.

Role in the flow: the first step of a reload (files -> load). `SpecFiles` maps file-system
paths (what `watchfiles` reports: absolute, maybe through a symlink) to the names the loader
gives them (under the spec path as the user wrote it), decides which changes can matter, and
re-reads only the files a change stands for; every other file's `FileResult` is kept.

Invariants:
  - The disk is read again, events are not trusted: a changed path (file or folder; created,
    modified, deleted or renamed) is resolved to the spec files it stands for *now*, plus the
    tracked files that were under it.
  - The loader's rules decide what is a spec file (`is_spec_file`: `*.yaml`/`*.yml`, not
    hidden, not in a hidden folder), so editors' temp and swap files never count, and the
    files and their order are those `discover_files` gives on a full load.
  - A file that held documents and now reads as 0 bytes is read again after `empty_grace`
    (a plain save truncates before it writes), so a save caught half-way does not read as
    "its agents were removed".
  - Input that cannot be read is an error, never a deletion: a tracked file whose folder can no
    longer be searched, or that can no longer be opened, is re-read into its `file.read`
    problem (the reload is `invalid`); a folder that cannot be listed is one too.
  - A re-read reports a file as changed only when its documents (specs and where they start)
    or its problems differ: a re-save or a comment edit changes nothing downstream.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from runner.spec.loader import FileResult, discover_files, is_spec_file_name, load_file
from runner.spec.project import Problem, SpecDocument

__all__ = ["SpecFiles", "SpecRoot", "is_spec_file"]

_SortKey = tuple[int, tuple[str, ...]]


def is_spec_file(name: str) -> bool:
    """The loader's rule: `*.yaml`/`*.yml` in any case, not hidden (editor temp and swap files
    never are)."""
    return is_spec_file_name(os.path.basename(name))


@dataclass(frozen=True)
class SpecRoot:
    """One spec path as given (file names are reported under it), and where it really is."""

    given: str
    absolute: str
    real: str
    is_dir: bool

    @classmethod
    def of(cls, given: str) -> SpecRoot:
        return cls(given, os.path.abspath(given), os.path.realpath(given), os.path.isdir(given))


class SpecFiles:
    """Every spec file under the roots and its last parse result, in the loader's order."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.roots = [SpecRoot.of(os.fspath(p)) for p in paths]
        self.results: dict[str, FileResult] = {}
        """Parse result by file name (as the loader names it)."""
        self._order: dict[str, _SortKey] = {}
        self._folder_problems: list[Problem] = []
        """Folders found unreadable by the last look at them (a `file.read` error each)."""

    @property
    def watch_paths(self) -> list[str]:
        """Folders to watch: each folder given, and the folder of each file given."""
        seen: dict[str, None] = {}
        for root in self.roots:
            seen[root.absolute if root.is_dir else os.path.dirname(root.absolute)] = None
        return list(seen)

    def missing_roots(self) -> list[str]:
        """The spec paths (as given) that are gone, or no longer the kind they were."""
        return [
            r.given
            for r in self.roots
            if not (os.path.isdir(r.absolute) if r.is_dir else os.path.isfile(r.absolute))
        ]

    def gone_problems(self) -> list[Problem]:
        """A `file.read` problem for each spec path that is gone (see `missing_roots`)."""
        return [
            Problem(
                given,
                1,
                1,
                "file.read",
                f"the spec folder {given!r} is gone; the last good state is kept and nothing is "
                "planned or applied until it is back",
            )
            for given in self.missing_roots()
        ]

    def emptied_problems(self, *, had_documents: bool) -> list[Problem]:
        """Problems when no spec path holds a document (nor a problem) any more, where the good
        state `had_documents`: an emptied folder is not a request to delete."""
        if not had_documents or any(
            r.documents or r.problems or r.invalid for r in self.results.values()
        ):
            return []
        return [
            Problem(
                root.given,
                1,
                1,
                "file.read",
                f"{root.given!r} holds no spec documents any more; an emptied folder is not a "
                "request to delete: the last good state is kept (`runner destroy` removes all)",
            )
            for root in self.roots
        ]

    @property
    def root_paths(self) -> list[str]:
        """The spec paths as given: a reload of them re-reads every file under them."""
        return [root.given for root in self.roots]

    def root_identities(self) -> tuple[tuple[int, int] | None, ...]:
        """(device, inode) of each spec path, None when gone: a change means a root was deleted,
        replaced (`mv new specs`) or came back, and the watch must be armed again."""
        found: list[tuple[int, int] | None] = []
        for root in self.roots:
            try:
                st = os.stat(root.absolute)
            except OSError:
                found.append(None)
            else:
                found.append((st.st_dev, st.st_ino))
        return tuple(found)

    def arm_paths(self) -> tuple[list[str], bool]:
        """What to watch now, and whether recursively: the spec paths while they all exist;
        else, flat, the nearest existing folder above each missing one (its parent, to see it
        come back) and the spec paths that remain."""
        if not self.missing_roots():
            return self.watch_paths, True
        seen: dict[str, None] = {}
        for root in self.roots:
            path = root.absolute if root.is_dir else os.path.dirname(root.absolute)
            while not os.path.isdir(path) and os.path.dirname(path) != path:
                path = os.path.dirname(path)
            seen[path] = None
        return list(seen), False

    @property
    def first_root(self) -> str:
        """Where to report a problem that belongs to no file (an unknown environment)."""
        return self.roots[0].given if self.roots else "."

    def is_relevant(self, path: str) -> bool:
        """Whether a change at `path` can matter: a spec file (or a folder) under a spec path."""
        name = self.display_name(path)
        if name is None:
            return False
        if is_spec_file(name):
            return True
        # a folder created, renamed or deleted: its files are looked at by `read_changes`
        return os.path.isdir(path) or any(f.startswith(name + os.sep) for f in self.results)

    def display_name(self, path: str) -> str | None:
        """The name the loader gives `path` (under the root as given), or None if outside."""
        absolute = os.path.abspath(path)
        for root in self.roots:
            for base in (root.absolute, root.real):
                if not root.is_dir:
                    if absolute == base:
                        return root.given
                    continue
                if absolute == base:
                    return root.given
                if absolute.startswith(base + os.sep):
                    rel = os.path.relpath(absolute, base)
                    if any(part.startswith(".") for part in rel.split(os.sep)):
                        return None  # the loader skips hidden folders and files
                    return os.path.join(root.given, rel)
        return None

    def sort_key(self, name: str) -> _SortKey:
        """The loader's order: by root as given, then by path parts."""
        return self._order.get(name, (len(self.roots), (name,)))

    def load_all(self) -> tuple[list[str], list[Problem]]:
        """Forget everything and read every spec file; (the files, discovery problems)."""
        files, problems = discover_files([r.given for r in self.roots])
        self.results = {}
        self._order = {}
        self._folder_problems = []  # `start` reports these itself
        for name in files:
            self._track(name)
            self.results[name] = load_file(name)
        return files, problems

    def read_changes(
        self, changed: Sequence[str], *, sleep: Callable[[float], None], empty_grace: float
    ) -> set[str]:
        """Re-read every spec file a changed path stands for; the names whose result changed."""
        names: set[str] = set()
        folders_changed: set[str] = set()  # folders that became unreadable or readable again
        for path in changed:
            name = self.display_name(path)
            if name is None:
                continue
            if os.path.isdir(name):
                found, problems = discover_files([name])
                names.update(found)
                prefix = name.rstrip(os.sep) + os.sep
                names.update(f for f in self.results if f.startswith(prefix))
                kept = [p for p in self._folder_problems if not _under(p.file, name)]
                if kept + problems != self._folder_problems:
                    folders_changed.add(name)
                self._folder_problems = kept + problems
            elif is_spec_file(name):
                names.add(name)
            else:  # a folder that went away
                prefix = name.rstrip(os.sep) + os.sep
                names.update(f for f in self.results if f.startswith(prefix))
        touched: set[str] = set()
        for name in names:
            if _unreadable(name):  # not gone: reading it says why (a `file.read` problem)
                result = load_file(name)
                if name not in self.results:
                    self._track(name)
                if name not in self.results or not _same_file_result(self.results[name], result):
                    touched.add(name)
                self.results[name] = result
            elif os.path.isfile(name):
                previous = self.results.get(name)
                if previous is not None and previous.documents and _is_empty(name):
                    # a plain save truncates before it writes: give the writer a moment before
                    # reading "no documents" (which would remove the file's agents)
                    sleep(empty_grace)
                result = load_file(name)
                if previous is None:
                    self._track(name)
                if previous is None or not _same_file_result(previous, result):
                    touched.add(name)
                self.results[name] = result
            elif name in self.results:
                del self.results[name]
                touched.add(name)
        return touched | folders_changed

    def collect(self) -> tuple[list[Problem], list[SpecDocument], set[str]]:
        """Every file's (problems, documents, invalid addresses), in the loader's order."""
        problems: list[Problem] = list(self._folder_problems)
        documents: list[SpecDocument] = []
        skip: set[str] = set()
        for name in sorted(self.results, key=self.sort_key):
            result = self.results[name]
            problems.extend(result.problems)
            documents.extend(result.documents)
            skip |= result.invalid
        return problems, documents, skip

    def _track(self, name: str) -> None:
        for index, root in enumerate(self.roots):
            if name == root.given:
                self._order[name] = (index, ())
                return
            if root.is_dir and name.startswith(root.given.rstrip(os.sep) + os.sep):
                rel = os.path.relpath(name, root.given)
                self._order[name] = (index, tuple(rel.split(os.sep)))
                return
        self._order[name] = (len(self.roots), (name,))


def _under(file: str, folder: str) -> bool:
    return file == folder or file.startswith(folder.rstrip(os.sep) + os.sep)


def _unreadable(name: str) -> bool:
    """Whether `name` exists (or may: a folder above it cannot be searched) but cannot be
    looked at: an error to report, never a file that went away."""
    try:
        os.stat(name)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return not os.access(name, os.R_OK) if os.path.isfile(name) else False


def _is_empty(name: str) -> bool:
    try:
        return os.path.getsize(name) == 0
    except OSError:
        return False


def _same_file_result(a: FileResult, b: FileResult) -> bool:
    """Same documents (specs and where they start) and the same problems."""
    return (
        a.problems == b.problems
        and a.invalid == b.invalid
        and len(a.documents) == len(b.documents)
        and all(
            x.spec == y.spec and x.position == y.position and x.positions == y.positions
            for x, y in zip(a.documents, b.documents, strict=True)
        )
    )
