"""An MCP tool call's overhead against a built-in tool's, in one run on one dev server.

The same scripted conversation shape twice: one call of a built-in weather tool, and one
call of the MCP time server's `get_current_time` over stdio. Both run as activities: the
built-in one is `get_weather`'s function registered with a timeout above the bound under
which a side-effect-free tool runs inside the workflow task (`QUICK_TOOL_S`), as every MCP
call is an activity. Each call's time is read from the history, from its activity's
scheduling to its completion (dispatch, the body, the result stored). The two take turns,
`--rounds` times, so drift falls on both; the MCP conversation's listing (once per
conversation, an activity of its own) is reported apart.

    python -m bench.mcp [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from p2engine.agents.tools import tool
from p2engine.agents.tools.weather import WeatherArgs, get_weather
from p2engine.contract.mcp import McpServer
from p2engine.runtime.conversations import start_conversation
from p2engine.runtime.settings import PROJECT_ROOT
from p2engine.runtime.testbed import private_temporal
from p2engine.runtime.worker import build_worker
from p2engine.workflows.calls import QUICK_TOOL_S

# get_weather's function again, under a name of its own and with a timeout above the bound
# for running inside the workflow task: an activity, as an MCP call is.
tool(
    "weather_activity",
    "Current weather for a city.",
    WeatherArgs,
    side_effect_free=True,
    timeout=QUICK_TOOL_S + 30,
)(get_weather)


CITIES = ["Paris", "Oslo", "Lima", "Cairo", "Rome", "Vienna", "Tokyo", "Seoul", "Dubai",
          "Helsinki", "Madrid", "Lisbon", "Berlin", "Prague", "Warsaw", "Athens", "Dublin",
          "Zurich", "Nairobi", "Sydney"]  # fmt: skip
TIME_NOW = 'call time__get_current_time with {"timezone": "UTC"}'
WEATHER = 'call weather_activity with {{"city": "{city}"}}'


async def activity_ms(handle: WorkflowHandle[Any, Any]) -> dict[str, float]:
    """Each activity type's scheduled-to-completed time in the conversation, in ms."""
    history = await handle.fetch_history()
    scheduled: dict[int, tuple[str, float]] = {}
    took: dict[str, float] = {}
    for event in history.events:
        at = event.event_time.ToMicroseconds() / 1000
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name, began = scheduled[
                event.activity_task_completed_event_attributes.scheduled_event_id
            ]
            took[name] = took.get(name, 0.0) + at - began
    return took


async def bench(rounds: int, state_dir: Path) -> int:
    team = yaml.safe_load((PROJECT_ROOT / "config" / "agents.yml").read_text())
    team["agents"].append({"id": "clock", "mcp": ["time"]})
    team["agents"].append({"id": "forecaster", "tools": ["weather_activity"]})
    agents = state_dir / "agents.yml"
    agents.write_text(yaml.safe_dump(team))
    time_server = McpServer(command=str(Path(sys.executable).parent / "mcp-server-time"))
    async with private_temporal(state_dir, "bench-mcp") as temporal:
        settings = temporal.settings.model_copy(
            update={"agents_file": agents, "mcp_servers": {"time": time_server}}
        )
        client = temporal.client
        builtin, mcp, listing = [], [], []
        async with build_worker(client, settings):
            await (await start_conversation(client, settings, "clock", TIME_NOW))[0].result()
            for n in range(rounds):
                city = CITIES[n % len(CITIES)]
                weather, _ = await start_conversation(
                    client, settings, "forecaster", WEATHER.format(city=city)
                )
                await weather.result()
                clock, _ = await start_conversation(client, settings, "clock", TIME_NOW)
                await clock.result()
                builtin.append((await activity_ms(weather))["run_tool"])
                took = await activity_ms(clock)
                mcp.append(took["mcp_call_tool"])
                listing.append(took["mcp_list_tools"])
    b, m, listed = (statistics.median(x) for x in (builtin, mcp, listing))
    print(f"built-in tool call (an activity): median {b:.1f} ms over {rounds} calls")
    print(f"MCP tool call (stdio, time server): median {m:.1f} ms")
    print(f"MCP listing, once per conversation: median {listed:.1f} ms")
    print(f"mcp/built-in: {m / b:.2f}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2e-bench-mcp-") as state_dir:
        sys.exit(asyncio.run(bench(args.rounds, Path(state_dir))))


if __name__ == "__main__":
    main()
