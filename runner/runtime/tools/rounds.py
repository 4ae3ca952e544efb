"""The rounds of one turn: run the calls a reply asks for, send the outputs back, until a message.

Role in the flow: the turn path (`runner.runtime.sessions.turns`) hands `ToolRounds.answer` the
provider's first reply when it holds function calls, with `respond` (one more provider request:
the outputs chained to the reply's response) and the session's `refusal` seam. Each round runs
the reply's calls (`ToolRunner`) and sends their outputs back; the reply of the last round is a
message.

Invariants: token usage is summed over every request of the turn. At most the agent's
`max_tool_rounds` rounds run; a reply still asking for functions after them ends the turn with
`ToolRoundLimitError` (never a hang), after one last request answers its calls with an error
output ("not run: round limit"), so the conversation holds no unanswered call and the session's
next message is accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from runner.providers.base import Reply, ToolOutput
from runner.runtime.errors import ToolRoundLimitError
from runner.runtime.tools.calls import Refusal, ToolRunner
from runner.runtime.tools.catalog import AgentTools

__all__ = ["Respond", "RoundsResult", "ToolRounds"]

log = logging.getLogger("runner.runtime")

Respond = Callable[[Sequence[ToolOutput], str], Awaitable[Reply]]
"""(outputs, the response they answer) -> the provider's next reply."""


@dataclass(frozen=True)
class RoundsResult:
    """The turn's final reply, with the usage of every request of the turn summed."""

    reply: Reply
    input_tokens: int
    output_tokens: int
    rounds: int
    tools: tuple[str, ...]


class ToolRounds:
    """The function-call loop of a turn (see the module docstring)."""

    def __init__(self, runner: ToolRunner) -> None:
        self._runner = runner

    async def answer(
        self,
        reply: Reply,
        *,
        tools: AgentTools,
        respond: Respond,
        session_id: str,
        agent: str,
        refusal: Refusal | None,
        closing: Respond | None = None,
    ) -> RoundsResult:
        """Rounds until a message; `closing` (default `respond`) answers the calls left at the
        round limit (a streamed turn closes without streaming: the turn fails anyway)."""
        input_tokens, output_tokens = reply.input_tokens, reply.output_tokens
        rounds = 0
        asked: list[str] = []
        while reply.tool_calls:
            if rounds >= tools.max_rounds:
                pending = [c.name for c in reply.tool_calls]
                await self._close(reply, closing or respond, tools.max_rounds)
                raise ToolRoundLimitError(session_id, agent, tools.max_rounds, pending)
            rounds += 1
            asked.extend(c.name for c in reply.tool_calls)
            outputs = await self._runner.run(
                reply.tool_calls,
                tools=tools,
                session_id=session_id,
                agent=agent,
                parallel=reply.parallel_tool_calls,
                refusal=refusal,
            )
            reply = await respond(outputs, reply.response_id)
            input_tokens += reply.input_tokens
            output_tokens += reply.output_tokens
        return RoundsResult(reply, input_tokens, output_tokens, rounds, tuple(asked))

    @staticmethod
    async def _close(reply: Reply, respond: Respond, limit: int) -> None:
        """Answer the calls left so none stays pending (best effort: logged, never raised)."""
        text = f"Error: not run: this turn reached its limit of {limit} tool rounds."
        try:
            await respond(
                [ToolOutput(c.call_id, text) for c in reply.tool_calls], reply.response_id
            )
        except Exception:
            log.warning("could not answer the calls left at the round limit", exc_info=True)
