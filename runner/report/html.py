"""The HTML report: one self-contained page (inline SVG charts, no script, no CDN) of a
`Report` — sessions, response times, tokens, cost and resolution over time, per agent and team.

Role: `runner report --html FILE` writes `render_html(report)`. Every chart is a `<figure
data-chart=...>` with its numbers in a table beside it (screen readers and copy-paste read the
table; the SVG has a title). Every text from the registry is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from runner.report.figures import Figures, Report

__all__ = ["render_html"]

W, H, PAD = 640, 220, 40
COLOURS = ("#1f6feb", "#d4731a", "#2da44e", "#8250df")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _scale(values: Sequence[float | None]) -> float:
    top = max((v for v in values if v is not None), default=0.0)
    return top if top > 0 else 1.0


def _axis(labels: Sequence[str], top: float, unit: str) -> str:
    step = (W - 2 * PAD) / max(1, len(labels))
    marks = [
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" class="axis"/>',
        f'<text x="{PAD - 4}" y="{PAD}" text-anchor="end">{escape(_fmt(top))}</text>',
        f'<text x="{PAD - 4}" y="{H - PAD}" text-anchor="end">0</text>',
        f'<text x="{PAD}" y="{PAD - 12}">{escape(unit)}</text>',
    ]
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            x = PAD + step * (i + 0.5)
            marks.append(
                f'<text x="{x:.1f}" y="{H - PAD + 16}" text-anchor="middle">'
                f"{escape(label[5:] if len(label) == 10 else label)}</text>"
            )
    return "".join(marks)


def _bars(labels: Sequence[str], values: Sequence[float], unit: str, title: str) -> str:
    top = _scale(values)
    step = (W - 2 * PAD) / max(1, len(labels))
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = (H - 2 * PAD) * value / top
        x = PAD + step * i + step * 0.15
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{H - PAD - height:.1f}" width="{step * 0.7:.1f}" '
            f'height="{height:.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: '
            f"{escape(_fmt(value, 4))}</title></rect>"
        )
    return _svg(title, _axis(labels, top, unit) + "".join(bars))


def _lines(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], unit: str, title: str
) -> str:
    top = _scale([v for values in series.values() for v in values])
    step = (W - 2 * PAD) / max(1, len(labels))
    drawn, legend = [], []
    for n, (name, values) in enumerate(series.items()):
        points = [
            f"{PAD + step * (i + 0.5):.1f},{H - PAD - (H - 2 * PAD) * v / top:.1f}"
            for i, v in enumerate(values)
            if v is not None
        ]
        colour = COLOURS[n % len(COLOURS)]
        if points:
            drawn.append(
                f'<polyline class="line" fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
            drawn.extend(
                f'<circle class="point" cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" '
                f'fill="{colour}"/>'
                for p in points
            )
        legend.append(
            f'<text x="{W - PAD - 120 * (len(series) - n)}" y="{PAD - 12}" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    return _svg(title, _axis(labels, top, unit) + "".join(drawn) + "".join(legend))


def _svg(title: str, body: str) -> str:
    return (
        f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(key: str, caption: str, chart: str, table: str) -> str:
    return (
        f'<figure data-chart="{key}"><figcaption>{escape(caption)}</figcaption>{chart}'
        f"<details><summary>Numbers</summary>{table}</details></figure>"
    )


def _subjects(kind: str, subjects: list[Figures], currency: str) -> str:
    if not subjects:
        return f"<p>No {kind} in this period.</p>"
    names = [s.name for s in subjects]
    chart = _bars(names, [float(s.turns) for s in subjects], "turns", f"Turns per {kind}")
    table = _table(
        [kind, "sessions", "turns", "tokens", f"cost ({currency})", "p95 ms", "resolved"],
        [
            [
                s.name,
                str(s.sessions),
                str(s.turns),
                f"{s.tokens:,}",
                _fmt(s.cost, 4),
                _fmt(s.p95_ms),
                "-" if s.resolution_rate is None else f"{s.resolution_rate:.0%}",
            ]
            for s in subjects
        ],
    )
    return _figure(f"{kind}s", f"Per {kind}", chart, table)


def render_html(report: Report) -> str:
    """The whole page."""
    days = report.days
    labels = [d.day for d in days]
    total = report.total
    figures = [
        _figure(
            "sessions",
            "Sessions started per day",
            _bars(labels, [float(d.sessions) for d in days], "sessions", "Sessions per day"),
            _table(
                ["day", "started", "ended", "resolved"],
                [[d.day, str(d.sessions), str(d.ended), str(d.resolved)] for d in days],
            ),
        ),
        _figure(
            "response-times",
            "Response time per day (p50 and p95, ms)",
            _lines(
                labels,
                {"p50": [d.p50_ms for d in days], "p95": [d.p95_ms for d in days]},
                "ms",
                "Response times per day",
            ),
            _table(
                ["day", "p50 ms", "p95 ms", "turns"],
                [[d.day, _fmt(d.p50_ms), _fmt(d.p95_ms), str(d.turns)] for d in days],
            ),
        ),
        _figure(
            "tokens",
            "Tokens per day",
            _bars(labels, [float(d.tokens) for d in days], "tokens", "Tokens per day"),
            _table(["day", "tokens"], [[d.day, f"{d.tokens:,}"] for d in days]),
        ),
        _figure(
            "cost",
            f"Cost per day ({report.currency})" + ("" if report.priced else ": no pricing"),
            _bars(labels, [d.cost for d in days], report.currency, "Cost per day"),
            _table(["day", f"cost ({report.currency})"], [[d.day, _fmt(d.cost, 4)] for d in days]),
        ),
        _figure(
            "quality",
            "Resolution rate per day (sessions that ended resolved)",
            _lines(
                labels,
                {"resolved": [d.resolution_rate for d in days]},
                "share",
                "Resolution rate per day",
            ),
            _table(
                ["day", "ended", "resolution rate"],
                [
                    [
                        d.day,
                        str(d.ended),
                        "-" if d.resolution_rate is None else f"{d.resolution_rate:.0%}",
                    ]
                    for d in days
                ],
            ),
        ),
        _subjects("agent", report.agents, report.currency),
        _subjects("team", report.teams, report.currency),
    ]
    summary = _table(
        [
            "sessions",
            "turns",
            "errors",
            "tokens",
            f"cost ({report.currency})",
            "p95 ms",
            "resolution rate",
        ],
        [
            [
                str(total.sessions),
                str(total.turns),
                str(total.errors),
                f"{total.tokens:,}",
                _fmt(total.cost, 4),
                _fmt(total.p95_ms),
                "-" if total.resolution_rate is None else f"{total.resolution_rate:.0%}",
            ]
        ],
    )
    period = f"{labels[0]} to {labels[-1]}" if labels else "no days"
    title = f"runner report: {report.env}, {period}"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><section aria-label='Summary'>{summary}</section>"
        + "".join(figures)
        + "</body></html>\n"
    )


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:760px;color:#1f2328}
figure{margin:2rem 0}figcaption{font-weight:600;margin-bottom:.5rem}
svg text{font-size:11px;fill:#57606a}.axis{stroke:#d0d7de}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:2px 8px;
text-align:right}th:first-child,td:first-child{text-align:left}
"""
