"""The figures of a report: sessions and turns read from the registry, summed per day, agent
and team.

Role: `runner report` reads session rows and the turn log from the environment's state
(`runner.state`) and hands them here as plain records; `build_report` sums them into a
`Report`, which `runner.report.text` prints and `runner.report.html` draws. Pure: no I/O, no
clock (the caller gives the period).

Quality over time is the resolution rate: the share of the sessions that ended on a day that
ended `resolved`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Figures", "Report", "SessionRecord", "TurnRecord", "build_report"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    kind: str  # agent | team
    target: str
    created_at: float
    ended_at: float | None
    reason: str | None
    turns: int


@dataclass(frozen=True, slots=True)
class TurnRecord:
    at: float
    session_id: str
    agent: str | None
    team: str | None
    ms: float
    input_tokens: int
    output_tokens: int
    cost: float | None
    error: bool


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


@dataclass(slots=True)
class Figures:
    """The sums of one day, agent or team (`label`)."""

    label: str
    sessions: int = 0
    ended: int = 0
    resolved: int = 0
    turns: int = 0
    errors: int = 0
    tokens: int = 0
    cost: float = 0.0
    times: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.label

    @property
    def day(self) -> str:
        return self.label

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.ended if self.ended else None

    @property
    def p50_ms(self) -> float | None:
        return _quantile(self.times, 0.5)

    @property
    def p95_ms(self) -> float | None:
        return _quantile(self.times, 0.95)


@dataclass(slots=True)
class Report:
    env: str
    since: float
    until: float
    currency: str
    days: list[Figures]
    agents: list[Figures]
    teams: list[Figures]
    priced: bool

    @property
    def total(self) -> Figures:
        whole = Figures("total")
        for day in self.days:
            whole.sessions += day.sessions
            whole.ended += day.ended
            whole.resolved += day.resolved
            whole.turns += day.turns
            whole.errors += day.errors
            whole.tokens += day.tokens
            whole.cost += day.cost
            whole.times.extend(day.times)
        return whole


def _of(subjects: dict[str, Figures], name: str) -> Figures:
    found = subjects.get(name)
    if found is None:
        found = subjects[name] = Figures(name)
    return found


def _day(moment: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(moment))


def build_report(
    sessions: Iterable[SessionRecord],
    turns: Iterable[TurnRecord],
    *,
    env: str,
    since: float,
    until: float,
    currency: str = "USD",
) -> Report:
    """Sum the records that fall in [since, until) per UTC day, agent and team."""
    days: dict[str, Figures] = {}
    moment = since
    while moment < until:  # every day of the period, empty ones too (charts keep their axis)
        days[_day(moment)] = Figures(_day(moment))
        moment += 86400.0
    agents: dict[str, Figures] = {}
    teams: dict[str, Figures] = {}
    priced = False
    for s in sessions:
        subject = _of(teams if s.kind == "team" else agents, s.target)
        if since <= s.created_at < until:
            days.setdefault(_day(s.created_at), Figures(_day(s.created_at))).sessions += 1
            subject.sessions += 1
        if s.ended_at is not None and since <= s.ended_at < until:
            day = days.setdefault(_day(s.ended_at), Figures(_day(s.ended_at)))
            day.ended += 1
            subject.ended += 1
            if s.reason == "resolved":
                day.resolved += 1
                subject.resolved += 1
    for t in turns:
        if not since <= t.at < until:
            continue
        day = days.setdefault(_day(t.at), Figures(_day(t.at)))
        owners = [day]
        if t.agent:
            owners.append(_of(agents, t.agent))
        if t.team:
            owners.append(_of(teams, t.team))
        for figures in owners:
            figures.turns += 1
            figures.errors += int(t.error)
            figures.tokens += t.input_tokens + t.output_tokens
            figures.cost += t.cost or 0.0
            if not t.error:  # a failed turn has no response time
                figures.times.append(t.ms)
        priced = priced or t.cost is not None
    return Report(
        env=env,
        since=since,
        until=until,
        currency=currency,
        days=[days[k] for k in sorted(days)],
        agents=sorted(agents.values(), key=lambda f: (-f.turns, f.name)),
        teams=sorted(teams.values(), key=lambda f: (-f.sessions, f.name)),
        priced=priced,
    )
