"""A streamed turn: the reply's text as it arrives, the turn's tool events, then the reply.

Role: `Session.stream(text)` / `Lifecycle.stream(session_id, text, auth=...)` ->
`SessionService.stream` -> `stream_turn`, which runs the same turn as `send` (`Turns.send` with
an `on_text` sink: the provider streams, `stream: true`) and yields, in order:

  TurnChunk(type="text", text=...)    each piece of reply text as the provider hands it over
  TurnChunk(type="tool", event=...)   the session's `tool:called` / `tool:completed` /
                                      `tool:failed` / `tool:refused` events between rounds
  TurnChunk(type="reply", reply=...)  last: the `TurnReply`, exactly what `send` returns

A turn that fails raises its error from the iterator (after the chunks that came before).

Invariants: the text of every round's message is streamed; the chunks arrive in the order the
provider produced them (a remote provider's worker thread hands them to the event loop in
order). Leaving the loop early does not cancel the turn: it completes (and is recorded) as if
sent, its error, if any, logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from runner.providers.base import TextSink
from runner.runtime.events import Event, EventBus
from runner.runtime.sessions.handles import TurnChunk, TurnReply

__all__ = ["stream_turn"]

log = logging.getLogger("runner.runtime")


def _retrieve(task: asyncio.Task[TurnReply]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a streamed turn nobody read to the end failed: %s", task.exception())


async def stream_turn(
    send: Callable[[TextSink], Awaitable[TurnReply]], events: EventBus, session_id: str
) -> AsyncIterator[TurnChunk]:
    """Run `send(on_text)` and yield its chunks (see the module docstring)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[TurnChunk | None] = asyncio.Queue()

    def on_text(piece: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, TurnChunk("text", text=piece))

    def on_tool(event: Event) -> None:
        if event.data.get("session_id") == session_id:
            queue.put_nowait(TurnChunk("tool", event=event))

    off = events.on("tool:*", on_tool)

    async def run() -> TurnReply:
        try:
            return await send(on_text)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = loop.create_task(run())
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        yield TurnChunk("reply", reply=await task)
    finally:
        off()
        if not task.done():
            task.add_done_callback(_retrieve)
