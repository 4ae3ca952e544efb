"""The runtime: sessions, teams and handoffs, escalation, pools, monitoring and events over what
was applied. `from runner import Lifecycle` (the facade, `runner.runtime.lifecycle`).

Its parts, bottom up; each may import only what is above it in this list (and
`runner.sqlitefile`, `runner.spec`, `runner.plan`, `runner.apply`, `runner.providers`,
`runner.state`), never what is below
(`tests/test_layering.py` enforces the order and that there is no import cycle):

  clock, config, errors, events, redis_wire, events_redis, auth, context   neutral modules
               every part may use (redis_wire: one Redis connection driven directly, for the
               paths that talk to Redis on every session; events_redis: the event bus across
               instances, through Redis pub/sub)
  tracing      OpenTelemetry spans of turns, provider calls, handoffs, escalations, tool calls
  routing      pure text matching of handoff triggers, and member selection
  escalation   the pure escalation engine: which level opens, the life of an escalation
  teams        the router seam (what a router is asked and decides), the team router,
               live member availability
  pools        resource pools: session slots, token budgets, warnings, analytics; limits
               shared by many processes (Redis, or the registry file of one host)
  monitoring   performance figures, alerts evaluated on them, the alert relay, channels
  tools        function tools run by the runtime: each agent's functions, running the calls
               a response asks for, the rounds of a turn until a message
  sessions     applied state, agent catalog, session table, admission, turns, decisions
               applied and queued handoffs served, the session API
  status       system status, analytics and insights
  operators    escalation desk, human queue, the operator API
  assembly     the composition root: opens stores and provider, builds and wires the parts
  lifecycle    the `Lifecycle` facade

Where a lower part needs something from a higher one it declares a small Protocol (or takes a
callable) for exactly that, and the composition root passes the implementation. The package
itself exports nothing, so importing one part never imports the others.
"""

__all__: list[str] = []
