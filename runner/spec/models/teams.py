"""Teams and escalation: members, their handoff triggers, the workflow, escalation levels.

Role in the flow: the runtime's router reads a Team's members and triggers to decide handoffs,
and its escalation state machine reads the EscalationPath's levels; `runner.spec.checks` checks
that every target is a specialization of the team or `HUMAN` (`runner.spec.vocabulary`).

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from runner.spec.models.base import (
    Envelope,
    Name,
    NonNegInt,
    PositiveInt,
    Regex,
    Strict,
    check_regex,
)

__all__ = [
    "EscalationLevel",
    "EscalationPath",
    "EscalationWhen",
    "HandoffTrigger",
    "Team",
    "TeamMember",
    "TriggerWhen",
    "Workflow",
]


class TriggerWhen(Strict):
    keywords: list[Annotated[str, Field(min_length=1)]] | None = None
    pattern: Regex | None = None
    requested: list[Annotated[str, Field(min_length=1)]] | None = None
    turns_above: NonNegInt | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return value if value is None else check_regex(value)

    @model_validator(mode="after")
    def _at_least_one(self) -> "TriggerWhen":
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError("'when' needs one of keywords, pattern, requested, turns_above")
        return self


class HandoffTrigger(Strict):
    name: Name
    when: TriggerWhen
    target: str = Field(description="A specialization in the team, or 'human'.")
    priority: NonNegInt = 1
    active: bool = True


class TeamMember(Strict):
    agent: str
    role: Literal["primary", "specialist", "supervisor", "backup"] = "specialist"
    specialization: str
    priority: NonNegInt = 1
    max_workload: PositiveInt = 10
    capabilities: list[str] = Field(default_factory=list)
    handoff_triggers: list[HandoffTrigger] = Field(default_factory=list)
    availability: Literal["available", "busy", "offline"] = "available"


class Workflow(Strict):
    escalation_path: str | None = None
    parallel_processing: bool = False
    requires_human_approval: bool = False
    on_no_free_member: Literal["escalate", "wait"] = Field(
        default="escalate",
        description="A handoff whose specialization has no free member: follow the escalation "
        "path, or queue until a member frees up.",
    )
    preserve_full_context: bool = True


class Team(Envelope):
    kind: Literal["Team"]
    workspace: str | None = None
    members: list[TeamMember] = Field(min_length=1)
    workflow: Workflow = Field(default_factory=Workflow)


class EscalationWhen(Strict):
    trigger: str | None = None
    turns_above: NonNegInt | None = None
    keywords: list[Annotated[str, Field(min_length=1)]] | None = None
    pattern: Regex | None = None
    no_free_member: bool | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return value if value is None else check_regex(value)

    @model_validator(mode="after")
    def _at_least_one(self) -> "EscalationWhen":
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError(
                "'when' needs one of trigger, turns_above, keywords, pattern, no_free_member"
            )
        return self


class EscalationLevel(Strict):
    level: PositiveInt
    target: str = Field(description="A specialization in the team, or 'human'.")
    when: EscalationWhen
    auto_escalate: bool = False
    requires_approval: bool = False
    notify: list[str] = Field(default_factory=list)


class EscalationPath(Envelope):
    kind: Literal["EscalationPath"]
    levels: list[EscalationLevel] = Field(min_length=1)
