"""Values that must fit together: pool weights and ranges, one default environment, durations
and regular expressions.

Role in the flow: the third concern `check_project` runs. A pool's `priority_weights` sum to 1
(`value.weights`), its min/max pairs are ordered (`value.range`), at most one environment is the
default (`env.default`), and every duration and regular expression can be read
(`value.duration`, `value.regex`). An environment with `pricing` prices every model its agents
use (`cost.unpriced`, once per environment and model, at the table).

Invariant: durations and regexes are checked by the models already; checking them again here
guards what the runtime relies on: `parse_duration` and `compile_pattern` (RE2) cannot fail
later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from runner.spec.checks.context import CheckContext
from runner.spec.models import Agent, Environment, ResourcePool, Template, parse_duration
from runner.spec.patterns import PatternSyntaxError, compile_pattern
from runner.spec.project import Path, SpecDocument

__all__ = ["check_values"]

_WEIGHT_TOLERANCE = 1e-6


def check_values(ctx: CheckContext) -> None:
    """Every value problem of the project."""
    _check_pools(ctx)
    _check_default_environment(ctx)
    _check_durations_and_regexes(ctx)
    _check_prices(ctx)


def _check_pools(ctx: CheckContext) -> None:
    for doc in ctx.docs("ResourcePool"):
        pool = doc.spec
        assert isinstance(pool, ResourcePool)
        weights = pool.allocation.priority_weights
        total = weights.response_time + weights.throughput + weights.quality + weights.cost
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            ctx.report(
                doc,
                ("allocation", "priority_weights"),
                "value.weights",
                f"priority_weights sum to {total:g}, not 1 (response_time "
                f"{weights.response_time:g} + throughput {weights.throughput:g} + quality "
                f"{weights.quality:g} + cost {weights.cost:g}; unset weights are 0.25)",
            )
        elastic = pool.allocation.elastic_limits
        _check_ordered(
            ctx,
            doc,
            ("allocation", "elastic_limits"),
            ("min_memory_mb", elastic.min_memory_mb),
            ("max_memory_mb", elastic.max_memory_mb),
        )
        _check_ordered(
            ctx,
            doc,
            ("allocation", "elastic_limits"),
            ("min_cpu_percent", elastic.min_cpu_percent),
            ("max_cpu_percent", elastic.max_cpu_percent),
        )
        scaling = pool.scaling
        _check_ordered(
            ctx,
            doc,
            ("scaling",),
            ("min_instances", scaling.min_instances),
            ("max_instances", scaling.max_instances),
        )
        _check_ordered(
            ctx,
            doc,
            ("scaling",),
            ("scale_down_threshold", scaling.scale_down_threshold),
            ("scale_up_threshold", scaling.scale_up_threshold),
            strict=True,
        )


def _check_ordered(
    ctx: CheckContext,
    doc: SpecDocument,
    base: Path,
    low: tuple[str, float | None],
    high: tuple[str, float | None],
    *,
    strict: bool = False,
) -> None:
    (low_name, low_value), (high_name, high_value) = low, high
    if low_value is None or high_value is None:
        return
    bad = low_value >= high_value if strict else low_value > high_value
    if bad:
        relation = "below" if strict else "at most"
        ctx.report(
            doc,
            (*base, low_name),
            "value.range",
            f"{low_name} ({low_value:g}) must be {relation} {high_name} ({high_value:g})",
        )


def _check_default_environment(ctx: CheckContext) -> None:
    first: SpecDocument | None = None
    for doc in ctx.docs("Environment"):
        env = doc.spec
        assert isinstance(env, Environment)
        if not env.default:
            continue
        if first is None:
            first = doc
            continue
        where = first.position_of(("default",))
        ctx.report(
            doc,
            ("default",),
            "env.default",
            f"environment {first.spec.name!r} is already the default ({where}); "
            "at most one environment is the default",
        )


def _check_durations_and_regexes(ctx: CheckContext) -> None:
    for doc in ctx.project.documents:
        for path, value in _strings_at(doc, _DURATION_PATHS.get(doc.kind, ())):
            try:
                parse_duration(value)
            except ValueError as exc:
                ctx.report(doc, path, "value.duration", str(exc))
        for path, value in _strings_at(doc, _REGEX_PATHS.get(doc.kind, ())):
            try:
                compile_pattern(value)
            except PatternSyntaxError as exc:
                ctx.report(doc, path, "value.regex", exc.message)


_DURATION_PATHS: dict[str, tuple[Path, ...]] = {
    "ResourcePool": (
        ("scaling", "cooldown"),
        ("monitoring", "interval"),
        ("scaling", "triggers", "*", "duration"),
    ),
    "Alert": (("window",),),
    "Channel": (("timeout",),),
    "Scenario": (("session", "idle_timeout"), ("steps", "*", "advance")),
}
_REGEX_PATHS: dict[str, tuple[Path, ...]] = {
    "Team": (("members", "*", "handoff_triggers", "*", "when", "pattern"),),
    "EscalationPath": (("levels", "*", "when", "pattern"),),
}


def _strings_at(doc: SpecDocument, patterns: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """(path, value) for the string values at `patterns` ('*' = every list item)."""
    data = doc.spec.model_dump(by_alias=True) if patterns else {}
    for pattern in patterns:
        stack: list[tuple[Path, Any]] = [((), data)]
        for step in pattern:
            following: list[tuple[Path, Any]] = []
            for path, value in stack:
                if step == "*" and isinstance(value, list):
                    following.extend(((*path, i), v) for i, v in enumerate(value))
                elif isinstance(value, dict) and value.get(step) is not None:
                    following.append(((*path, step), value[step]))
            stack = following
        for path, value in stack:
            if isinstance(value, str):
                yield path, value


def _agent_models(ctx: CheckContext) -> dict[str, list[str]]:
    """model deployment -> the agents using it (own `model`, else their template's)."""
    templates = {
        doc.spec.name: doc.spec.model
        for doc in ctx.docs("Template")
        if isinstance(doc.spec, Template)
    }
    used: dict[str, list[str]] = {}
    for doc in ctx.docs("Agent"):
        agent = doc.spec
        assert isinstance(agent, Agent)
        model = agent.model or templates.get(agent.template or "")
        if model is not None:
            used.setdefault(model, []).append(agent.name)
    return used


def _check_prices(ctx: CheckContext) -> None:
    priced_envs = [
        doc
        for doc in ctx.docs("Environment")
        if isinstance(doc.spec, Environment) and doc.spec.pricing is not None
    ]
    if not priced_envs:
        return
    used = _agent_models(ctx)
    for doc in priced_envs:
        assert isinstance(doc.spec, Environment) and doc.spec.pricing is not None
        table = doc.spec.pricing.models
        for model, agents in sorted(used.items()):
            if model in table:
                continue
            names = ", ".join(sorted(agents)[:3]) + (", ..." if len(agents) > 3 else "")
            ctx.report(
                doc,
                ("pricing", "models"),
                "cost.unpriced",
                f"model {model!r} ({len(agents)} agent{'s' if len(agents) != 1 else ''}: {names}) "
                f"has no price here; add pricing.models.{model} with input_per_1k and "
                "output_per_1k",
            )
