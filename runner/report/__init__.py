"""`runner report`: what the runtime did over a period — sessions, response times, tokens, cost
and resolution over time, per agent and team — as a terminal summary or an HTML page.

`figures` sums the registry's session rows and turn log (plain records) into a `Report`;
`text` prints it; `html` draws it (inline SVG, no script). Nothing here reads a file or a
database: `runner.cli.report` does, and hands the records over.
"""

from runner.report.figures import (
    Figures,
    Report,
    SessionRecord,
    TurnRecord,
    build_report,
)
from runner.report.html import render_html
from runner.report.text import render_text

__all__ = [
    "Figures",
    "Report",
    "SessionRecord",
    "TurnRecord",
    "build_report",
    "render_html",
    "render_text",
]
