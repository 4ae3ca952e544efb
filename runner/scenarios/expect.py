"""A scenario step's `expect`, checked against what the runtime did during the step.

Role: after each step the scenario runner (`runner.scenarios.run`) calls `check_expect` with
what it saw: who answered and the text of the last reply, the session's state, reason and
escalation, and the events emitted during the step (function tools run: `tool:called`, refused:
`tool:refused`, failed: `tool:failed`). Each
mismatch becomes one message saying what was expected and what was seen instead; an empty list
means the step passed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.runtime.events import Event
from runner.spec.models import Expect, Step

__all__ = ["check_expect"]


def _show(value: Any) -> str:
    return "nobody" if value is None else str(value)


def check_expect(
    expect: Expect,
    *,
    step: Step,
    answered: Sequence[str | None],
    current_agent: str | None,
    state: str,
    reason: str | None,
    escalation: Mapping[str, Any] | None,
    events: Sequence[Event],
    reply: str | None = None,
    error: str | None = None,
) -> list[str]:
    problems: list[str] = []
    if expect.error is not None and (error is None or expect.error not in error):
        outcome = f"it failed with {error!r}" if error is not None else "it succeeded"
        problems.append(f"expected the step to fail with {expect.error!r}, {outcome}")
    if expect.reply is not None:
        problems.extend(_reply_problems(expect, reply))
    if expect.tools is not None:
        problems.extend(_tool_problems(expect, events))
    if expect.agent is not None:
        seen = answered[-1] if step.user is not None and answered else current_agent
        if seen != expect.agent:
            problems.append(f"expected agent {expect.agent}, saw {_show(seen)}")
    if expect.handoff is not None:
        want = expect.handoff
        handoffs = [e.data for e in events if e.type == "handoff:initiated"]
        ok = any(
            h.get("to") == want.to
            and (want.from_ is None or h.get("from") == want.from_)
            and (want.trigger is None or h.get("trigger") == want.trigger)
            for h in handoffs
        )
        if not ok:
            wanted = ", ".join(
                f"{k}: {v}"
                for k, v in (("from", want.from_), ("to", want.to), ("trigger", want.trigger))
                if v is not None
            )
            seen_text = (
                ", ".join(
                    f"{_show(h.get('from'))} -> {h.get('to')}"
                    + (f" (trigger {h.get('trigger')})" if h.get("trigger") else "")
                    for h in handoffs
                )
                if handoffs
                else "no handoff"
            )
            problems.append(f"expected handoff {{{wanted}}}, saw {seen_text}")
    if expect.escalation is not None:
        want_esc = expect.escalation
        wanted_items = [
            (k, v)
            for k, v in (
                ("level", want_esc.level),
                ("target", want_esc.target),
                ("status", want_esc.status),
            )
            if v is not None
        ]
        wanted = " ".join(f"{k} {v}" for k, v in wanted_items)
        if escalation is None:
            problems.append(f"expected escalation {wanted}, saw no escalation")
        elif any(escalation.get(k) != v for k, v in wanted_items):
            seen_esc = " ".join(f"{k} {escalation.get(k)}" for k in ("level", "target", "status"))
            problems.append(f"expected escalation {wanted}, saw {seen_esc}")
    if expect.state is not None and state != expect.state:
        problems.append(f"expected state {expect.state}, saw {state}")
    if expect.reason is not None and reason != expect.reason:
        problems.append(f"expected reason {expect.reason}, saw {_show(reason)}")
    if expect.events is not None:
        types = [e.type for e in events]
        position = 0
        missing: str | None = None
        for wanted_type in expect.events:
            try:
                position = types.index(wanted_type, position) + 1
            except ValueError:
                missing = wanted_type
                break
        if missing is not None:
            shown = ", ".join(types) if types else "none"
            problems.append(
                f"expected events [{', '.join(expect.events)}] in this order "
                f"({missing} missing), saw [{shown}]"
            )
    return problems


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reply_problems(expect: Expect, reply: str | None) -> list[str]:
    assert expect.reply is not None
    if reply is None:
        return ["expected a reply, saw no message answered in this step"]
    problems = [
        f"expected the reply to contain {text!r}, saw {_short(reply)!r}"
        for text in expect.reply.contains
        if text not in reply
    ]
    problems.extend(
        f"expected the reply not to contain {text!r}, saw {_short(reply)!r}"
        for text in expect.reply.not_contains
        if text in reply
    )
    return problems


def _tools_in(events: Sequence[Event], kind: str) -> list[str]:
    return [str(e.data.get("tool") or e.data.get("name")) for e in events if e.type == kind]


def _tool_problems(expect: Expect, events: Sequence[Event]) -> list[str]:
    assert expect.tools is not None
    want = expect.tools
    run = _tools_in(events, "tool:called")
    shown = ", ".join(run) if run else "none"
    problems = [
        f"expected tool {name} to be called, saw [{shown}]"
        for name in want.called
        if name not in run
    ]
    problems.extend(
        f"expected tool {name} not to be called, saw [{shown}]"
        for name in want.not_called
        if name in run
    )
    for kind, words, names in (
        ("tool:refused", "refused", want.refused),
        ("tool:failed", "to fail", want.failed),
    ):
        seen = _tools_in(events, kind)
        problems.extend(
            f"expected tool {name} {words}, saw [{', '.join(seen) if seen else 'none'}]"
            for name in names
            if name not in seen
        )
    return problems
