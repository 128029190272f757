"""The peer for bench/step_overhead.py: the same weather conversation as an OpenAI Agents SDK
agent on Temporal (the `temporalio-openai-agents` plugin), with a fake zero-latency model
served through the plugin's model provider.

Like ours, the agent asks the model, calls `get_weather` (an activity, as the plugin's
`activity_as_tool` runs it) once per city, and asks the model again, until the model
answers. The fake model decides from its input alone, as the scripted one does: the next
city not looked up yet, else the answer; so concurrent conversations do not share state.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


def _sdk_importable() -> None:
    """`python -m bench...` runs from the repository root, whose `agents/` folder (ours, the
    package `p2engine.agents`) would shadow the SDK's top-level `agents`: drop that entry
    of the path before the SDK is imported."""
    root = str(Path(__file__).resolve().parent.parent)
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != Path(root)]
    sys.path.append(root)  # still importable as `bench`, after the SDK


if not workflow.unsafe.in_sandbox():  # the sandbox's re-import finds the SDK imported
    _sdk_importable()
    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # no trace export offline

with workflow.unsafe.imports_passed_through():
    from agents.items import TResponseInputItem
    from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
    from temporalio.openai_agents.testing import ResponseBuilders, TestModelProvider
    from temporalio.openai_agents.workflow import activity_as_tool

    # mypy checks from the repository root too, where `agents` is ours: the same shadow.
    from agents import Agent, Model, ModelResponse, Runner, Usage  # type: ignore[attr-defined]
    from p2engine.agents.tools.weather import WEATHER


@activity.defn
async def get_weather(city: str) -> str:
    """Current weather for a city (the same fixed data as ours)."""
    temperature, condition, humidity = WEATHER[city]
    return json.dumps({"city": city, "temperature": temperature, "condition": condition,
                       "humidity": humidity})  # fmt: skip


class CityModel(Model):  # type: ignore[misc]
    """Calls get_weather for each city of the question in turn, then answers."""

    async def get_response(
        self, system_instructions: str | None, input: str | list[TResponseInputItem],
        *args: Any, **kwargs: Any,
    ) -> ModelResponse:  # fmt: skip
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        question = next(str(i.get("content")) for i in items if i.get("role") == "user")
        cities = [c for c in WEATHER if c in question]
        done = sum(1 for i in items if i.get("type") == "function_call_output")
        if done < len(cities):
            arguments = json.dumps({"city": cities[done]})
            response = ResponseBuilders.tool_call(arguments, "get_weather", call_id=f"c{done}")
        else:
            response = ResponseBuilders.output_message(f"The weather in {len(cities)} cities.")
        response.usage = Usage()
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


@workflow.defn
class WeatherAgent:
    @workflow.run
    async def run(self, question: str) -> str:
        agent = Agent(
            name="agent_alpha",
            instructions="Answer weather questions; use get_weather.",
            tools=[activity_as_tool(get_weather, start_to_close_timeout=timedelta(seconds=30))],
        )
        result = await Runner.run(agent, input=question, max_turns=50)
        return str(result.final_output)


def plugin() -> OpenAIAgentsPlugin:
    return OpenAIAgentsPlugin(
        model_params=ModelActivityParameters(start_to_close_timeout=timedelta(seconds=30)),
        model_provider=TestModelProvider(CityModel()),
    )


async def peer_client(address: str, namespace: str) -> Client:
    """A client with the plugin's payload converter, as the peer's users connect."""
    return await Client.connect(address, namespace=namespace, plugins=[plugin()])


@asynccontextmanager
async def peer_worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with Worker(
        client, task_queue=task_queue, workflows=[WeatherAgent], activities=[get_weather]
    ):
        yield
