"""Runtime settings read once from environment variables (seed 000 names where they apply).

- AGENT_LIFECYCLE_MONITORING_ENABLED (true): false = no figures collected, no Alert evaluated.
- AGENT_LIFECYCLE_AUTO_SCALING_ENABLED (true): false = no scaling recommendations in analytics.
- AGENT_LIFECYCLE_PERFORMANCE_OPTIMIZATION_ENABLED (true): false = insights carry no
  recommendations.
- AGENT_DEFAULT_SESSION_LIMIT (unset): enforced; concurrent sessions per agent that no pool
  with max_concurrent_sessions covers.
- AGENT_DEFAULT_MEMORY_LIMIT_MB (2048), AGENT_DEFAULT_CPU_LIMIT_PERCENT (80): reported only
  (prompt agents run in Foundry, not in this process).
- AGENT_DEFAULT_IDLE_TIMEOUT_MS (300000): idle timeout of a session that sets none; 0 = never.
- AGENT_DEFAULT_MAX_SESSION_DURATION_MS (7200000): older sessions end (`max_duration`); 0 = never.
- AGENT_PERFORMANCE_ALERT_THRESHOLD_MS (5000): built-in slow-response threshold (health,
  insights).
- AGENT_PERFORMANCE_MONITORING_INTERVAL_MS (30000): period of the background sweeper (idle
  expiry, alert windows, token windows).
- AGENT_LIFECYCLE_PERSIST_INTERVAL_MS (1000): turn counters are written behind at most this late.
- RUNNER_POOL_LIMITS (host): where pool limits are held when the Environment declares no
  `redis:`: `host` (the SQLite registry file, shared by every process of the host that opens
  it) or `process` (this process's own counts: for a registry this process cannot write, or one
  process that wants no shared bookkeeping). With `state: postgresql://` and no `redis:` the
  limits are each process's own whatever this says (the runtime warns when it opens).
- RUNNER_POOL_LEASE_TTL_MS (30000): shared limits: how long a dead process's slots stay taken.
- AGENT_LIFECYCLE_SESSION_LEASE_MS (30000): how long a session's lease outlives an instance
  that died holding it (mid-turn); renewed while the turn runs. Another instance takes the
  session over after it.

Invariant: parsing never raises; a malformed value falls back to the default and is listed in
`RuntimeConfig.problems` (reported by `get_system_status`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class RuntimeConfig:
    monitoring_enabled: bool = True
    auto_scaling_enabled: bool = True
    optimization_enabled: bool = True
    default_session_limit: int | None = None
    default_memory_limit_mb: int = 2048
    default_cpu_limit_percent: float = 80.0
    default_idle_timeout_s: float = 300.0
    max_session_duration_s: float = 7200.0
    alert_threshold_ms: float = 5000.0
    monitoring_interval_s: float = 30.0
    persist_interval_s: float = 1.0
    pool_limits: str = "host"
    pool_lease_ttl_s: float = 30.0
    session_lease_s: float = 30.0
    problems: tuple[str, ...] = field(default=())

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RuntimeConfig:
        problems: list[str] = []

        def flag(name: str, default: bool) -> bool:
            raw = environ.get(name)
            if raw is None or raw.strip() == "":
                return default
            value = raw.strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            problems.append(f"{name}={raw!r} is not true/false; using {default}")
            return default

        def number(name: str, default: float, *, minimum: float = 0.0) -> float:
            raw = environ.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                value = minimum - 1
            if value < minimum:
                problems.append(f"{name}={raw!r} is not a number >= {minimum:g}; using {default:g}")
                return default
            return value

        limit_raw = environ.get("AGENT_DEFAULT_SESSION_LIMIT")
        session_limit: int | None = None
        if limit_raw is not None and limit_raw.strip():
            limit = number("AGENT_DEFAULT_SESSION_LIMIT", 0, minimum=1)
            session_limit = int(limit) if limit >= 1 else None
        scope = (environ.get("RUNNER_POOL_LIMITS") or "host").strip().lower()
        if scope not in ("process", "host"):
            problems.append(f"RUNNER_POOL_LIMITS={scope!r} is not host or process; using host")
            scope = "host"
        return cls(
            monitoring_enabled=flag("AGENT_LIFECYCLE_MONITORING_ENABLED", True),
            auto_scaling_enabled=flag("AGENT_LIFECYCLE_AUTO_SCALING_ENABLED", True),
            optimization_enabled=flag("AGENT_LIFECYCLE_PERFORMANCE_OPTIMIZATION_ENABLED", True),
            default_session_limit=session_limit,
            default_memory_limit_mb=int(number("AGENT_DEFAULT_MEMORY_LIMIT_MB", 2048, minimum=1)),
            default_cpu_limit_percent=number("AGENT_DEFAULT_CPU_LIMIT_PERCENT", 80.0, minimum=1),
            default_idle_timeout_s=number("AGENT_DEFAULT_IDLE_TIMEOUT_MS", 300_000.0) / 1000,
            max_session_duration_s=number("AGENT_DEFAULT_MAX_SESSION_DURATION_MS", 7_200_000.0)
            / 1000,
            alert_threshold_ms=number("AGENT_PERFORMANCE_ALERT_THRESHOLD_MS", 5000.0, minimum=1),
            monitoring_interval_s=number(
                "AGENT_PERFORMANCE_MONITORING_INTERVAL_MS", 30_000.0, minimum=10
            )
            / 1000,
            persist_interval_s=number("AGENT_LIFECYCLE_PERSIST_INTERVAL_MS", 1000.0, minimum=1)
            / 1000,
            pool_limits=scope,
            pool_lease_ttl_s=number("RUNNER_POOL_LEASE_TTL_MS", 30_000.0, minimum=300) / 1000,
            session_lease_s=number("AGENT_LIFECYCLE_SESSION_LEASE_MS", 30_000.0, minimum=100)
            / 1000,
            problems=tuple(problems),
        )
