"""`runner report`'s figures and pages: known records summed per day, agent and team; the HTML
page opened in headless Chromium with every chart drawn and every name escaped."""

from __future__ import annotations

import calendar
from pathlib import Path
from typing import Any

import pytest

from runner.report import SessionRecord, TurnRecord, build_report, render_html, render_text

DAY = 86400.0
START = float(calendar.timegm((2026, 11, 30, 0, 0, 0)))


def records() -> tuple[list[SessionRecord], list[TurnRecord]]:
    sessions = [
        SessionRecord("s1", "team", "customer-support", START + 10, START + 100, "resolved", 2),
        SessionRecord(
            "s2", "team", "customer-support", START + 20, START + DAY + 5, "idle_timeout", 1
        ),
        SessionRecord("s3", "agent", "<b>odd</b>", START + DAY + 10, None, None, 1),
    ]
    turns = [
        TurnRecord(
            START + 11, "s1", "general-agent-1", "customer-support", 100.0, 10, 20, 0.01, False
        ),
        TurnRecord(
            START + 12, "s1", "tech-agent-1", "customer-support", 300.0, 30, 40, 0.05, False
        ),
        TurnRecord(
            START + 21, "s2", "general-agent-1", "customer-support", 200.0, 5, 5, 0.002, True
        ),
        TurnRecord(START + DAY + 11, "s3", "<b>odd</b>", None, 50.0, 1, 2, None, False),
    ]
    return sessions, turns


def test_records_are_summed_per_day_agent_and_team() -> None:
    sessions, turns = records()
    report = build_report(sessions, turns, env="local", since=START, until=START + 3 * DAY)
    assert [d.day for d in report.days] == ["2026-11-30", "2026-12-01", "2026-12-02"]
    first, second, third = report.days
    assert (first.sessions, first.ended, first.resolved, first.turns) == (2, 1, 1, 3)
    assert (first.tokens, first.errors) == (110, 1)
    assert first.cost == pytest.approx(0.062)
    # the failed turn has no response time: p50 and p95 of the two answered ones
    assert first.resolution_rate == 1.0 and first.p50_ms == 100.0 and first.p95_ms == 300.0
    assert (second.sessions, second.ended, second.resolved) == (1, 1, 0)
    assert second.resolution_rate == 0.0
    assert third.turns == 0 and third.resolution_rate is None  # an empty day keeps its place
    team = {t.name: t for t in report.teams}["customer-support"]
    assert (team.sessions, team.ended, team.resolved, team.turns) == (2, 2, 1, 3)
    agents = {a.name: a for a in report.agents}
    assert agents["general-agent-1"].turns == 2 and agents["tech-agent-1"].cost == 0.05
    assert report.priced and report.total.turns == 4
    text = render_text(report)
    assert "sessions 3 started, 2 ended, resolution rate 50%" in text
    assert "turns 4 (1 failed)" in text
    assert "2026-11-30" in text and "customer-support" in text


def test_the_html_report_draws_every_chart_in_chromium(
    chromium: tuple[str, list[str]], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    sessions, turns = records()
    report = build_report(sessions, turns, env="local", since=START, until=START + 3 * DAY)
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    executable, flags = chromium
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=flags, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_file.as_uri())
            charts: dict[str, Any] = page.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('figure[data-chart]')]
                    .map(f => [f.dataset.chart, {
                        bars: f.querySelectorAll('svg rect.bar').length,
                        lines: f.querySelectorAll('svg polyline.line').length,
                        points: f.querySelectorAll('svg circle.point').length,
                        width: f.querySelector('svg').getBoundingClientRect().width,
                        rows: f.querySelectorAll('table tbody tr').length,
                    }]))"""
            )
            injected = page.evaluate("() => document.querySelectorAll('b').length")
        finally:
            browser.close()
    assert errors == []
    assert set(charts) == {
        "sessions",
        "response-times",
        "tokens",
        "cost",
        "quality",
        "agents",
        "teams",
    }
    assert all(chart["width"] > 300 for chart in charts.values())  # laid out, not empty
    assert charts["sessions"]["bars"] == 3 and charts["sessions"]["rows"] == 3
    assert charts["response-times"]["lines"] == 2 and charts["response-times"]["points"] == 4
    assert charts["quality"]["lines"] == 1 and charts["quality"]["points"] == 2
    assert charts["cost"]["bars"] == 3 and charts["tokens"]["bars"] == 3
    assert charts["agents"]["bars"] == 3 and charts["teams"]["rows"] == 1
    assert injected == 0  # a name from the registry is text, never markup
