"""The task queue of a conversation's model steps and tool calls (contract/routing.py), as
keyword arguments for `workflow.execute_activity`. Unrouted, none is given, so the command
is the one a conversation has always issued and old histories replay unchanged."""

from __future__ import annotations

from typing import TypedDict

from p2engine.contract.routing import Routing, model_queue


class QueueOption(TypedDict, total=False):
    task_queue: str


def model_step(routing: Routing | None, model: str, main: str) -> QueueOption:
    queue = model_queue(routing, model, main) if routing else None
    return {"task_queue": queue} if queue else {}


def tool_call(routing: Routing | None) -> QueueOption:
    return {"task_queue": routing.tools} if routing and routing.tools else {}
