"""The terminal summary of a `Report`: totals, then one line per day, agent and team.

Role: what `runner report` prints (and all it prints without `--html`); plain columns that
read in any terminal and paste into an issue.
"""

from __future__ import annotations

from runner.report.figures import Figures, Report

__all__ = ["render_text"]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _subject_lines(kind: str, subjects: list[Figures], currency: str) -> list[str]:
    if not subjects:
        return []
    width = max(len(kind), *(len(s.name) for s in subjects))
    lines = [
        "",
        f"{kind:<{width}}  {'sessions':>8}  {'turns':>6}  {'tokens':>9}  "
        f"{'cost ' + currency:>12}  {'p95 ms':>7}  {'resolved':>8}",
    ]
    for s in subjects:
        lines.append(
            f"{s.name:<{width}}  {s.sessions:>8}  {s.turns:>6}  {s.tokens:>9,}  "
            f"{s.cost:>12.4f}  {_ms(s.p95_ms):>7}  {_rate(s.resolution_rate):>8}"
        )
    return lines


def render_text(report: Report) -> str:
    total = report.total
    first = report.days[0].day if report.days else "-"
    last = report.days[-1].day if report.days else "-"
    lines = [
        f"Environment {report.env!r}, {first} to {last} (UTC)",
        f"  sessions {total.sessions} started, {total.ended} ended, resolution rate "
        f"{_rate(total.resolution_rate)}",
        f"  turns {total.turns} ({total.errors} failed), p50 {_ms(total.p50_ms)} ms, "
        f"p95 {_ms(total.p95_ms)} ms",
        f"  tokens {total.tokens:,}, cost "
        + (f"{total.cost:.4f} {report.currency}" if report.priced else "- (no pricing)"),
        "",
        f"{'day':<10}  {'sessions':>8}  {'turns':>6}  {'tokens':>9}  {'cost':>10}  "
        f"{'p95 ms':>7}  {'resolved':>8}",
    ]
    for d in report.days:
        lines.append(
            f"{d.day:<10}  {d.sessions:>8}  {d.turns:>6}  {d.tokens:>9,}  {d.cost:>10.4f}  "
            f"{_ms(d.p95_ms):>7}  {_rate(d.resolution_rate):>8}"
        )
    lines += _subject_lines("agent", report.agents, report.currency)
    lines += _subject_lines("team", report.teams, report.currency)
    return "\n".join(lines) + "\n"
