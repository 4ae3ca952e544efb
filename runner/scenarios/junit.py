"""JUnit XML for `runner test --junit FILE`: one testcase per scenario.

Role: CI systems read the file; a failed scenario is a `failure` element carrying the same
message `runner test` prints (scenario, step, file:line:col and what was seen).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from runner.scenarios.run import ScenarioResult

__all__ = ["render_junit"]


def render_junit(results: Sequence[ScenarioResult], *, suite: str = "runner test") -> str:
    """JUnit XML: one testcase per scenario, a failure element with the message."""
    failures = sum(1 for r in results if not r.passed)
    total = sum(r.seconds for r in results)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name={quoteattr(suite)} tests="{len(results)}" failures="{failures}" '
        f'errors="0" time="{total:.3f}">',
        f'  <testsuite name={quoteattr(suite)} tests="{len(results)}" failures="{failures}" '
        f'errors="0" skipped="0" time="{total:.3f}">',
    ]
    for r in results:
        classname = "scenarios" if r.file is None else "scenarios." + Path(r.file).stem
        head = (
            f"    <testcase classname={quoteattr(classname)} name={quoteattr(r.name)} "
            f'time="{r.seconds:.3f}"'
        )
        if r.passed:
            lines.append(head + "/>")
            continue
        message = r.message or "failed"
        lines.append(head + ">")
        lines.append(
            f'      <failure message={quoteattr(message)} type="ScenarioFailure">'
            f"{xml_escape(message)}</failure>"
        )
        lines.append("    </testcase>")
    lines.append("  </testsuite>")
    lines.append("</testsuites>")
    return "\n".join(lines) + "\n"
