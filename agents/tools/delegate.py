"""delegate: hand a task to another agent of the team.

The workflow runs it as a child conversation, never as an activity; the registry entry gives
the model its schema and the workflow its argument model.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from p2engine.agents.tools.registry import ToolError, tool

DELEGATE = "delegate"


class DelegateArgs(BaseModel):
    agent_id: str = Field(min_length=1, description="id of the agent to hand the task to")
    message: str = Field(min_length=1, description="the task, written for that agent")


@tool(
    DELEGATE,
    "Hand a task to another agent and get its answer back.",
    DelegateArgs,
    side_effect_free=True,
)
def delegate(args: DelegateArgs) -> None:
    raise ToolError("delegate runs as a child conversation, not as a tool activity")
