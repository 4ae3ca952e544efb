"""ResourcePool: which agents share limits, how they are allocated, scaled and monitored.

Role in the flow: the runtime enforces `max_concurrent_sessions`, `max_tokens_per_minute` and the
`sessions`/`tokens` alert thresholds; the other limits, the allocation and `scaling` are reported
only (Foundry-hosted prompt agents neither expose nor accept them). `runner.spec.checks` checks
membership (an agent is in at most one pool), weights and ordered min/max pairs.

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Annotated, Literal

from pydantic import Field

from runner.spec.models.base import (
    Comparison,
    Duration,
    Envelope,
    Fraction,
    Name,
    NonNegInt,
    PositiveInt,
    Strict,
)
from runner.spec.models.costs import Budget

__all__ = [
    "AlertThresholds",
    "Allocation",
    "ElasticLimits",
    "Monitoring",
    "PoolLimits",
    "PriorityWeights",
    "ResourcePool",
    "Scaling",
    "ScalingTrigger",
]


class PoolLimits(Strict):
    max_memory_mb: PositiveInt | None = None
    max_cpu_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    max_concurrent_sessions: PositiveInt | None = None
    max_tokens_per_minute: PositiveInt | None = None
    max_network_bytes_per_second: PositiveInt | None = None
    max_storage_mb: PositiveInt | None = None


class PriorityWeights(Strict):
    response_time: Fraction = 0.25
    throughput: Fraction = 0.25
    quality: Fraction = 0.25
    cost: Fraction = 0.25


class ElasticLimits(Strict):
    min_memory_mb: NonNegInt | None = None
    max_memory_mb: NonNegInt | None = None
    min_cpu_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    max_cpu_percent: Annotated[float, Field(ge=0, le=100)] | None = None


class Allocation(Strict):
    strategy: Literal["conservative", "balanced", "aggressive"] = "balanced"
    reserved_memory_mb: NonNegInt | None = None
    reserved_cpu_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    priority_weights: PriorityWeights = Field(default_factory=PriorityWeights)
    elastic_limits: ElasticLimits = Field(default_factory=ElasticLimits)


class ScalingTrigger(Strict):
    name: Name
    metric: Literal["memory", "cpu", "sessions", "tokens", "response_time", "error_rate"]
    condition: Comparison
    threshold: float
    duration: Duration = "60s"
    action: Literal["scale_up", "scale_down"]
    priority: NonNegInt = 1


class Scaling(Strict):
    enabled: bool = False
    triggers: list[ScalingTrigger] = Field(default_factory=list)
    cooldown: Duration = "5m"
    min_instances: NonNegInt = 1
    max_instances: PositiveInt = 1
    scale_up_threshold: Fraction = 0.8
    scale_down_threshold: Fraction = 0.3
    predictive: bool = False


class AlertThresholds(Strict):
    memory: Fraction | None = None
    cpu: Fraction | None = None
    sessions: Fraction | None = None
    tokens: Fraction | None = None


class Monitoring(Strict):
    enabled: bool = True
    interval: Duration = "15s"
    alert_thresholds: AlertThresholds = Field(default_factory=AlertThresholds)
    retention_days: PositiveInt = 30
    aggregation_level: Literal["basic", "detailed"] = "basic"


class ResourcePool(Envelope):
    kind: Literal["ResourcePool"]
    agents: list[str] = Field(min_length=1)
    limits: PoolLimits = Field(default_factory=PoolLimits)
    allocation: Allocation = Field(default_factory=Allocation)
    scaling: Scaling = Field(default_factory=Scaling)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    budget: Budget | None = Field(
        default=None, description="What the pool's agents may spend per day or month."
    )
