"""Escalation engine: level evaluation, every transition legal and illegal, effects, and the
contract scenarios driven at the engine level (routing + escalation, no runtime)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.runtime.escalation import (
    STATUSES,
    Escalation,
    EscalationStateError,
    EscalationStatus,
    accept_suggestion,
    approve,
    claim,
    effect_of,
    evaluate_levels,
    hand_back,
    handoff_target,
    next_level,
    open_escalation,
    reject,
    resolve,
)
from runner.runtime.routing import compile_team, decide_handoff, select_member
from runner.spec.models import KINDS, EscalationLevel, EscalationPath, Scenario, Team

CONTRACT = Path("/work/shared/contract/specs")
NOW = 1_700_000_000.0


def load(name: str) -> list[Any]:
    with (CONTRACT / name).open() as fh:
        return [KINDS[doc["kind"]].model_validate(doc) for doc in yaml.safe_load_all(fh)]


@pytest.fixture(scope="module")
def contract() -> tuple[Team, EscalationPath, dict[str, Scenario]]:
    docs = load("teams/customer-support.yaml")
    team = next(d for d in docs if isinstance(d, Team))
    path = next(d for d in docs if isinstance(d, EscalationPath))
    assert team.workflow.escalation_path == path.name
    scenarios = {s.name: s for s in load("scenarios/customer-support.yaml")}
    return team, path, scenarios


def level(n: int, target: str = "human", **kw: Any) -> EscalationLevel:
    when = kw.pop("when", {"turns_above": 0})
    return EscalationLevel.model_validate({"level": n, "target": target, "when": when, **kw})


def path_of(*levels: EscalationLevel) -> EscalationPath:
    return EscalationPath.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "EscalationPath",
            "name": "p",
            "levels": [lv.model_dump() for lv in levels],
        }
    )


def evaluate(path: EscalationPath, **kw: Any) -> int | None:
    args: dict[str, Any] = {"fired_trigger": None, "turn": 1, "text": "", "no_free_member": False}
    args.update(kw)
    found = evaluate_levels(path, **args)
    return found.level if found is not None else None


# ---------------------------------------------------------------- level evaluation


def test_each_condition_kind(contract: tuple[Team, EscalationPath, dict[str, Scenario]]) -> None:
    _, path, _ = contract
    assert evaluate(path, fired_trigger="technical-issue-detected") == 1
    assert evaluate(path, fired_trigger="billing-question") is None
    assert evaluate(path, turn=20) is None
    assert evaluate(path, turn=21) == 2
    words = path_of(level(1, when={"keywords": ["lawyer", "sue you"]}))
    assert evaluate(words, text="I will SUE  you") == 1
    assert evaluate(words, text="my lawyers") is None
    pattern = path_of(level(1, when={"pattern": r"\bGDPR\b"}))
    assert evaluate(pattern, text="a GDPR request") == 1
    assert evaluate(pattern, text="a gdpr request") is None
    nfm = path_of(level(1, when={"no_free_member": True}), level(2, when={"no_free_member": False}))
    assert evaluate(nfm, no_free_member=True) == 1
    assert evaluate(nfm, no_free_member=False) is None


def test_any_condition_of_a_level_holds() -> None:
    p = path_of(level(1, when={"trigger": "t", "turns_above": 5, "keywords": ["angry"]}))
    assert evaluate(p, fired_trigger="t") == 1
    assert evaluate(p, turn=6) == 1
    assert evaluate(p, text="I am ANGRY") == 1
    assert evaluate(p, turn=5, text="calm") is None


def test_the_most_severe_holding_level_wins(
    contract: tuple[Team, EscalationPath, dict[str, Scenario]],
) -> None:
    _, path, _ = contract
    assert evaluate(path, fired_trigger="technical-issue-detected", turn=21) == 2
    p = path_of(level(3, when={"turns_above": 9}), level(1), level(2, when={"keywords": ["x"]}))
    assert evaluate(p, turn=2, text="x") == 2
    assert evaluate(p, turn=10, text="x") == 3


def test_next_level_never_reopens_nor_goes_down() -> None:
    p = path_of(level(1), level(2, when={"turns_above": 3}), level(3, when={"keywords": ["now"]}))

    def nxt(opened: set[int], **kw: Any) -> int | None:
        args: dict[str, Any] = {"fired_trigger": None, "turn": 1, "text": ""}
        args.update(kw)
        lv = next_level(p, opened=opened, no_free_member=False, **args)
        return lv.level if lv is not None else None

    assert nxt(set()) == 1
    assert nxt({1}) is None
    assert nxt({1}, turn=4) == 2
    assert nxt({1, 2}, turn=5) is None
    assert nxt({2}, turn=1) is None  # level 1 holds but is below an opened level
    assert nxt({1, 2}, text="now") == 3
    assert nxt({3}, text="now", turn=9) is None


# ---------------------------------------------------------------- opening


@pytest.mark.parametrize(
    ("auto", "approval", "status", "events"),
    [
        (True, False, "in_effect", ("escalation:opened",)),
        (False, True, "pending_approval", ("escalation:opened", "escalation:pending_approval")),
        (True, True, "pending_approval", ("escalation:opened", "escalation:pending_approval")),
        (False, False, "suggested", ("escalation:opened", "escalation:suggested")),
    ],
)
def test_open_status_follows_the_level_flags(
    auto: bool, approval: bool, status: str, events: tuple[str, ...]
) -> None:
    lv = level(4, "billing", auto_escalate=auto, requires_approval=approval, notify=["slack"])
    esc, emitted = open_escalation(lv, session_id="s-1", now=NOW, escalation_id="e-1")
    assert (esc.status, emitted) == (status, events)
    assert (esc.id, esc.session_id, esc.level, esc.target, esc.opened_at, esc.notify) == (
        "e-1",
        "s-1",
        4,
        "billing",
        NOW,
        ("slack",),
    )
    assert esc.decided_by is None and not esc.terminal


# ---------------------------------------------------------------- transitions


def esc_in(
    status: EscalationStatus, target: str = "human", operator: str | None = None
) -> Escalation:
    return Escalation(
        id="e-9",
        session_id="s-9",
        level=2,
        target=target,
        status=status,
        opened_at=NOW,
        operator=operator,
    )


ACTIONS = {
    "approve": lambda e: approve(e, by="sup", now=NOW + 1),
    "accept_suggestion": lambda e: accept_suggestion(e, by="sup", now=NOW + 1),
    "reject": lambda e: reject(e, by="sup", now=NOW + 1, reason="not needed"),
    "claim": lambda e: claim(e, operator="op", now=NOW + 1),
    "hand_back": lambda e: hand_back(e, operator="op", now=NOW + 1),
    "resolve": lambda e: resolve(e, by="op", now=NOW + 1),
}
LEGAL: dict[str, dict[str, tuple[str, str]]] = {
    "approve": {"pending_approval": ("approved", "escalation:approved")},
    "accept_suggestion": {"suggested": ("approved", "escalation:approved")},
    "reject": {
        "pending_approval": ("rejected", "escalation:rejected"),
        "suggested": ("rejected", "escalation:rejected"),
    },
    "claim": {
        "in_effect": ("claimed", "escalation:claimed"),
        "approved": ("claimed", "escalation:claimed"),
    },
    "hand_back": {"claimed": ("handed_back", "escalation:handed_back")},
    "resolve": {
        "in_effect": ("resolved", "escalation:resolved"),
        "approved": ("resolved", "escalation:resolved"),
        "claimed": ("resolved", "escalation:resolved"),
    },
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_transition_is_legal_or_raises(action: str, status: EscalationStatus) -> None:
    before = esc_in(status, operator="op" if status in ("claimed", "handed_back") else None)
    legal = LEGAL[action].get(status)
    if legal is None:
        with pytest.raises(EscalationStateError, match=rf"cannot .*e-9.*it is {status}"):
            ACTIONS[action](before)
        return
    after, events = ACTIONS[action](before)
    assert (after.status, events) == (legal[0], (legal[1],))
    assert before.status == status  # frozen: the old value is untouched
    assert (after.id, after.level, after.opened_at) == (before.id, before.level, NOW)


def test_transitions_record_who_and_when() -> None:
    pending, _ = open_escalation(
        level(2, requires_approval=True), session_id="s", now=NOW, escalation_id="e"
    )
    approved, _ = approve(pending, by="supervisor-1", now=NOW + 5)
    assert (approved.decided_by, approved.decided_at) == ("supervisor-1", NOW + 5)
    rejected, _ = reject(pending, by="supervisor-2", now=NOW + 6, reason="handled")
    assert (rejected.decided_by, rejected.reason, rejected.terminal) == (
        "supervisor-2",
        "handled",
        True,
    )
    claimed, _ = claim(approved, operator="op-7", now=NOW + 7)
    assert (claimed.operator, claimed.claimed_at) == ("op-7", NOW + 7)
    back, _ = hand_back(claimed, operator="op-7", now=NOW + 8)
    assert (back.closed_by, back.closed_at, back.terminal) == ("op-7", NOW + 8, True)
    done, _ = resolve(claimed, by="op-7", now=NOW + 9)
    assert (done.status, done.closed_at) == ("resolved", NOW + 9)


def test_claim_needs_a_human_target_and_hand_back_the_claimer() -> None:
    with pytest.raises(EscalationStateError, match="not a human"):
        claim(esc_in("in_effect", target="technical_support"), operator="op", now=NOW)
    claimed, _ = claim(esc_in("approved"), operator="alice", now=NOW)
    with pytest.raises(EscalationStateError, match="claimed by 'alice'"):
        hand_back(claimed, operator="bob", now=NOW)


def test_round_trip_through_a_dict() -> None:
    esc, _ = open_escalation(
        level(1, notify=["slack", "email"]), session_id="s", now=NOW, escalation_id="e"
    )
    esc, _ = accept_suggestion(esc, by="op", now=NOW + 1)
    assert Escalation.from_dict(esc.as_dict()) == esc
    with pytest.raises(EscalationStateError, match="unknown escalation status"):
        Escalation.from_dict({**esc.as_dict(), "status": "closed"})


# ---------------------------------------------------------------- effects


@pytest.mark.parametrize("status", STATUSES)
def test_effect_of_each_status(status: EscalationStatus) -> None:
    human = effect_of(esc_in(status))
    spec = effect_of(esc_in(status, target="technical_support"))
    assert human == ("awaiting_human" if status in ("in_effect", "approved", "claimed") else "none")
    assert spec == ("handoff" if status in ("in_effect", "approved") else "none")


def test_handoff_target_is_none_when_already_there() -> None:
    esc = esc_in("in_effect", target="technical_support")
    assert handoff_target(esc, current_specialization="customer_service") == "technical_support"
    assert handoff_target(esc, current_specialization="technical_support") is None
    assert handoff_target(esc_in("in_effect"), current_specialization="x") is None
    assert handoff_target(replace(esc, status="resolved"), current_specialization="x") is None


# ---------------------------------------------------------------- contract scenarios


@dataclass
class Engine:
    """The coordinator's per-message use of routing + escalation, as the runtime will do it."""

    team: Team
    path: EscalationPath
    agent: str = "general-agent-1"
    state: str = "active"
    turn: int = 0
    escalation: Escalation | None = None
    opened: set[int] = field(default_factory=set)
    handoffs: list[tuple[str, str, str | None]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.matchers = compile_team(self.team)

    def specialization(self) -> str | None:
        return next((m.specialization for m in self.team.members if m.agent == self.agent), None)

    def user(self, text: str) -> None:
        self.turn += 1
        self.handoffs, self.events = [], []
        if self.state == "awaiting_human":
            return
        d = decide_handoff(
            self.team,
            current_agent=self.agent,
            text=text,
            turn=self.turn,
            workloads={},
            matchers=self.matchers,
        )
        if d.to_agent is not None:
            self.handoffs.append((self.agent, d.to_agent, d.trigger_name))
            self.agent = d.to_agent
            if d.action == "human":
                self.state = "awaiting_human"
        lv = next_level(
            self.path,
            opened=self.opened,
            fired_trigger=d.trigger_name,
            turn=self.turn,
            text=text,
            no_free_member=d.no_free_member,
        )
        if lv is not None:
            esc, events = open_escalation(
                lv,
                session_id="s-1",
                now=NOW + self.turn,
                escalation_id=f"esc-{len(self.opened) + 1}",
            )
            self.opened.add(lv.level)
            self.apply(esc, events)

    def apply(self, esc: Escalation, events: tuple[str, ...]) -> None:
        self.escalation = esc
        self.events.extend(events)
        if effect_of(esc) == "awaiting_human":
            self.state = "awaiting_human"
        target = handoff_target(esc, current_specialization=self.specialization())
        if target is not None:
            chosen = select_member(self.team, target, workloads={}, exclude=(self.agent,))
            assert chosen is not None
            self.handoffs.append((self.agent, chosen.agent, None))
            self.agent = chosen.agent

    def run(self, scenario: Scenario) -> None:
        for step in scenario.steps:
            if step.user is not None:
                for _ in range(step.repeat):
                    self.user(step.user)
            elif step.approve is not None:
                assert self.escalation is not None and step.by is not None
                self.apply(*approve(self.escalation, by=step.by, now=NOW + 100))
            elif step.end is not None:
                continue  # session ending is the runtime's part
            self.check(step.expect)

    def check(self, expect: Any) -> None:
        if expect is None:
            return
        if expect.agent is not None:
            assert self.agent == expect.agent
        if expect.state is not None and expect.state != "ended":
            assert self.state == expect.state
        if expect.handoff is not None:
            assert len(self.handoffs) == 1, self.handoffs  # never handed off twice
            frm, to, trigger = self.handoffs[0]
            assert to == expect.handoff.to
            assert expect.handoff.from_ in (None, frm)
            assert expect.handoff.trigger in (None, trigger)
        if expect.escalation is not None:
            esc = self.escalation
            assert esc is not None
            assert expect.escalation.level in (None, esc.level)
            assert expect.escalation.target in (None, esc.target)
            assert expect.escalation.status in (None, esc.status)


@pytest.mark.parametrize(
    "name",
    [
        "technical-issue-reaches-tech-support",
        "asking-for-a-person-waits-for-a-human",
        "long-conversation-escalates-after-approval",
    ],
)
def test_contract_scenario_at_engine_level(
    name: str, contract: tuple[Team, EscalationPath, dict[str, Scenario]]
) -> None:
    team, path, scenarios = contract
    Engine(team, path).run(scenarios[name])


def test_technical_issue_records_level_1_without_a_second_handoff(
    contract: tuple[Team, EscalationPath, dict[str, Scenario]],
) -> None:
    team, path, _ = contract
    engine = Engine(team, path)
    engine.user("Hi, I have a question about my account settings")
    assert (engine.agent, engine.escalation, engine.handoffs) == ("general-agent-1", None, [])
    engine.user("The dashboard shows an Error every time I log in")
    assert engine.handoffs == [("general-agent-1", "tech-agent-1", "technical-issue-detected")]
    esc = engine.escalation
    assert esc is not None and (esc.level, esc.target, esc.status) == (
        1,
        "technical_support",
        "in_effect",
    )
    assert engine.events == ["escalation:opened"] and effect_of(esc) == "handoff"
    engine.user("Thanks, clearing the cache fixed it")
    assert engine.agent == "tech-agent-1" and engine.handoffs == [] and engine.opened == {1}


def test_long_conversation_waits_for_approval_then_a_human(
    contract: tuple[Team, EscalationPath, dict[str, Scenario]],
) -> None:
    team, path, _ = contract
    engine = Engine(team, path)
    for _ in range(20):
        engine.user("I still have a question about my plan")
    assert engine.escalation is None
    engine.user("I still have a question about my plan")
    esc = engine.escalation
    assert esc is not None and (esc.level, esc.target, esc.status) == (
        2,
        "human",
        "pending_approval",
    )
    assert engine.events == ["escalation:opened", "escalation:pending_approval"]
    assert engine.state == "active" and effect_of(esc) == "none"
    engine.user("still there?")
    assert engine.escalation == esc and engine.events == []  # not re-opened
    engine.apply(*approve(esc, by="supervisor-1", now=NOW + 50))
    assert engine.escalation is not None and engine.escalation.status == "approved"
    assert engine.escalation.decided_by == "supervisor-1"
    assert engine.events == ["escalation:approved"] and engine.state == "awaiting_human"
