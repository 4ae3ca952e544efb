"""Function tools run by the runtime: what each agent's functions are, running the calls a
response asks for, and the rounds of a turn until the model answers with a message.

Role in the flow: a turn (`runner.runtime.sessions.turns`) asks the provider for a reply; when
the reply holds `function_call` items, `ToolRounds.answer` runs them (`ToolRunner`: arguments
checked against the tool's `parameters` schema, the function called with a timeout, its result
or an error text the model can read) and sends the outputs back, chained to the response, up to
the agent's `max_tool_rounds`. `ToolCatalog` knows each agent's function tools and their Python
implementations (`implementation: "package.module:function"` in a spec, resolved when the
runtime opens, or `Lifecycle.register_tool`).

  catalog   the function tools of each agent, implementations resolved and registered
  calls     running one response's calls: validation, timeout, events, figures
  rounds    the rounds of one turn, the round limit
"""

from runner.runtime.tools.calls import (
    DEFAULT_TIMEOUT_S,
    MAX_OUTPUT_CHARS,
    MAX_PARALLEL,
    Refusal,
    ToolRunner,
)
from runner.runtime.tools.catalog import (
    DEFAULT_MAX_TOOL_ROUNDS,
    AgentTools,
    FunctionTool,
    ToolCatalog,
    ToolFunction,
    resolve_implementation,
)
from runner.runtime.tools.rounds import Respond, RoundsResult, ToolRounds

__all__ = [
    "DEFAULT_MAX_TOOL_ROUNDS",
    "DEFAULT_TIMEOUT_S",
    "MAX_OUTPUT_CHARS",
    "MAX_PARALLEL",
    "AgentTools",
    "FunctionTool",
    "Refusal",
    "Respond",
    "RoundsResult",
    "ToolCatalog",
    "ToolFunction",
    "ToolRounds",
    "ToolRunner",
    "resolve_implementation",
]
