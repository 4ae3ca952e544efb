"""What every check works with: the project, the documents to leave alone, the problems found.

Role in the flow: `check_project` makes one `CheckContext` and hands it to each concern in turn
(`references`, `foundry`, `values`, `renders`); a check reads documents with `docs(kind)` and
reports with `report` (any finding) or `ref` (a name that must resolve to a declared document).

Invariants: a problem sits at the position of the offending value (`doc.position_of(path)`) and
its message starts with the document (`Team 'support': ...`); a reference to a document that
exists but failed to load (`skip`, from `LoadResult.invalid`) is never reported again, nor is an
undeclared name of a kind whose documents may be missing (`may_be_missing`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from runner.spec.models import address_of
from runner.spec.project import Path, Problem, Project, SpecDocument, kind_may_be_missing
from runner.spec.suggest import did_you_mean

__all__ = ["CheckContext"]


class CheckContext:
    """The project under check, the addresses to skip, and the problems found so far."""

    def __init__(self, project: Project, skip: Collection[str]) -> None:
        self.project = project
        self.skip = skip
        self.problems: list[Problem] = []
        self._by_kind: dict[str, list[SpecDocument]] | None = None

    def report(self, doc: SpecDocument, path: Path, code: str, message: str) -> None:
        """A problem with `doc`, at the value at `path`."""
        label = f"{doc.kind} {doc.spec.name!r}"
        self.problems.append(Problem.at(doc.position_of(path), code, f"{label}: {message}"))

    def ref(
        self,
        doc: SpecDocument,
        path: Path,
        *,
        kind: str,
        name: str,
        known: Collection[str],
        noun: str,
    ) -> bool:
        """Report `name` if no `kind` document has it; True when it resolves (or is skipped).

        An undeclared name while a `kind` document may have failed to load is unknown, not
        wrong: not reported (the load error is), and False (nothing built on it is checked)."""
        if name in known or address_of(kind, name) in self.skip:
            return True
        if self.may_be_missing(kind):
            return False
        hint = did_you_mean(name, sorted(known))
        listing = "" if hint else (" (none declared)" if not known else "")
        self.report(doc, path, f"ref.{kind.lower()}", f"unknown {noun} {name!r}{hint}{listing}")
        return False

    def may_be_missing(self, kind: str) -> bool:
        """Whether some `kind` document may have failed to load before its name was read."""
        return kind_may_be_missing(self.skip, kind)

    def docs(self, kind: str) -> Iterator[SpecDocument]:
        """The documents of `kind`, in load order."""
        by_kind = self._by_kind
        if by_kind is None:  # every check reads one kind: index the documents once
            by_kind = self._by_kind = {}
            for doc in self.project.documents:
                by_kind.setdefault(doc.kind, []).append(doc)
        return iter(by_kind.get(kind, ()))
