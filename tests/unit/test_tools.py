"""The tool registry, the built-in get_weather tool and the run_tool activity."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import p2engine.activities  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP)
from p2engine.activities.tools import ToolActivities
from p2engine.agents.tools import ToolError, get_tool, registered_tools, tool
from p2engine.agents.tools.registry import _TOOLS
from p2engine.agents.tools.weather import WeatherArgs
from p2engine.contract.models import ToolCallRequest, ToolInput, ToolOutcome
from p2engine.contract.states import State
from p2engine.store import tool_cache
from p2engine.store.artifacts import LocalArtifactStore
from p2engine.store.base import ArtifactNotFound
from p2engine.store.tool_cache import SqliteToolCache


class _EchoArgs(BaseModel):
    text: str


@pytest.fixture
def throwaway_name() -> Iterator[str]:
    name = "unit_test_throwaway_tool"
    assert name not in _TOOLS
    yield name
    _TOOLS.pop(name, None)


def test_get_weather_is_registered() -> None:
    assert "get_weather" in registered_tools()
    assert get_tool("get_weather").name == "get_weather"


def test_get_weather_schema_is_an_openai_function_schema() -> None:
    schema = get_tool("get_weather").schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "get_weather"
    assert isinstance(function["description"], str)
    assert function["description"]
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert "city" in parameters["properties"]
    assert "city" in parameters["required"]


async def test_get_weather_is_case_insensitive() -> None:
    result = await get_tool("get_weather").call(WeatherArgs(city="paris"))
    assert result["city"] == "Paris"
    assert isinstance(result["temperature"], int | float)
    assert result["unit"] == "celsius"


async def test_get_weather_converts_to_fahrenheit() -> None:
    result = await get_tool("get_weather").call(WeatherArgs(city="Paris", unit="fahrenheit"))
    assert result["temperature"] == 59.0
    assert result["unit"] == "fahrenheit"


async def test_get_weather_unknown_city_raises_tool_error_naming_it() -> None:
    with pytest.raises(ToolError, match="Atlantis"):
        await get_tool("get_weather").call(WeatherArgs(city="Atlantis"))


def test_get_unknown_tool_raises_tool_error() -> None:
    with pytest.raises(ToolError, match="nope"):
        get_tool("nope")


def test_registering_a_name_twice_raises(throwaway_name: str) -> None:
    def echo(args: Any) -> Any:
        return args.text

    tool(throwaway_name, "echo", _EchoArgs)(echo)
    assert throwaway_name in registered_tools()
    with pytest.raises(ValueError, match=throwaway_name):
        tool(throwaway_name, "echo again", _EchoArgs)(echo)
    assert get_tool(throwaway_name).description == "echo"


async def test_registered_sync_tool_can_be_called(throwaway_name: str) -> None:
    def echo(args: Any) -> Any:
        return {"echo": args.text}

    tool(throwaway_name, "echo", _EchoArgs)(echo)
    assert await get_tool(throwaway_name).call(_EchoArgs(text="hi")) == {"echo": "hi"}


# --- the run_tool activity -------------------------------------------------------------------


def tool_input(name: str, arguments: str) -> ToolInput:
    return ToolInput(
        conversation_id="conv-1",
        agent_id="agent_alpha",
        step=2,
        call=ToolCallRequest(id="call_1", name=name, arguments=arguments),
    )


async def run(store: LocalArtifactStore, name: str, arguments: str) -> ToolOutcome:
    cache = SqliteToolCache(store.directory.root / "cache.db")
    return await ToolActivities(store, cache).run_tool(tool_input(name, arguments))


async def stored(store: LocalArtifactStore, outcome: ToolOutcome) -> Any:
    assert outcome.result_ref is not None
    return json.loads(await store.get_text(outcome.result_ref))


async def test_run_tool_ok_stores_the_json_result(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    outcome = await run(store, "get_weather", '{"city": "Paris"}')
    assert outcome.status == "ok"
    result = await stored(store, outcome)
    assert result["city"] == "Paris"
    assert result["temperature"] == 15
    assert "Paris" in outcome.preview


async def test_run_tool_malformed_arguments_is_an_error_naming_the_field(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path)
    outcome = await run(store, "get_weather", '{"town": 1}')
    assert outcome.status == "error"
    error = (await stored(store, outcome))["error"]
    assert "invalid arguments" in error
    assert "city" in error


async def test_run_tool_invalid_json_is_an_error(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    outcome = await run(store, "get_weather", "not json")
    assert outcome.status == "error"
    assert "invalid arguments" in (await stored(store, outcome))["error"]


async def test_run_tool_unknown_tool_is_an_error(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    outcome = await run(store, "nope", "{}")
    assert outcome.status == "error"
    assert "nope" in (await stored(store, outcome))["error"]


async def test_run_tool_unknown_city_is_an_error(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    outcome = await run(store, "get_weather", '{"city": "Atlantis"}')
    assert outcome.status == "error"
    assert "Atlantis" in (await stored(store, outcome))["error"]


async def test_a_call_given_a_result_parent_stores_its_result_node_there(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    cache = SqliteToolCache(tmp_path / "cache.db")
    inp = tool_input("get_weather", '{"city": "Paris"}').model_copy(
        update={"result_parent": "call-node-ref"}
    )
    outcome = await ToolActivities(store, cache).run_tool(inp)
    node = await store.get_node(inp.result_node(outcome).ref())
    assert (node.kind, node.parent, node.step) == (State.TOOL_RESULT, "call-node-ref", 2)
    assert (node.tool_call_id, node.tool_name, node.result_ref) == (
        "call_1",
        "get_weather",
        outcome.result_ref,
    )


async def test_a_call_without_a_result_parent_stores_no_node(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    inp = tool_input("get_weather", '{"city": "Paris"}')
    outcome = await run(store, "get_weather", '{"city": "Paris"}')
    node = inp.model_copy(update={"result_parent": "call-node-ref"}).result_node(outcome)
    with pytest.raises(ArtifactNotFound):
        await store.get_node(node.ref())


# --- the tool cache --------------------------------------------------------------------------


class _Clock:
    """Stands in for the `time` module of store.tool_cache."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(tool_cache, "time", fake)
    return fake


def counting_tool(name: str, **options: Any) -> list[str]:
    """Register `name` with the given options; returns the list of texts it was called with."""
    calls: list[str] = []

    def echo(args: Any) -> Any:
        calls.append(args.text)
        return {"echo": args.text, "call": len(calls)}

    tool(name, "echo", _EchoArgs, **options)(echo)
    return calls


def activities_for(tmp_path: Path) -> ToolActivities:
    return ToolActivities(
        LocalArtifactStore(tmp_path / "artifacts"), SqliteToolCache(tmp_path / "cache.db")
    )


async def test_cached_tool_answers_a_repeated_call_from_the_cache(
    tmp_path: Path, throwaway_name: str, clock: _Clock
) -> None:
    calls = counting_tool(throwaway_name, side_effect_free=True, cache_ttl=60)
    acts = activities_for(tmp_path)
    first = await acts.run_tool(tool_input(throwaway_name, '{"text": "hi"}'))
    clock.now += 30
    second = await acts.run_tool(tool_input(throwaway_name, '{ "text" :   "hi" }'))
    assert first.status == second.status == "ok"
    assert first.cached is False
    assert second.cached is True
    assert calls == ["hi"]
    assert second.result_ref == first.result_ref
    assert second.preview == first.preview


async def test_cached_tool_is_called_again_for_different_arguments(
    tmp_path: Path, throwaway_name: str, clock: _Clock
) -> None:
    calls = counting_tool(throwaway_name, side_effect_free=True, cache_ttl=60)
    acts = activities_for(tmp_path)
    first = await acts.run_tool(tool_input(throwaway_name, '{"text": "hi"}'))
    second = await acts.run_tool(tool_input(throwaway_name, '{"text": "ho"}'))
    assert second.cached is False
    assert calls == ["hi", "ho"]
    assert second.result_ref != first.result_ref


async def test_cached_tool_is_called_again_once_the_ttl_expired(
    tmp_path: Path, throwaway_name: str, clock: _Clock
) -> None:
    calls = counting_tool(throwaway_name, side_effect_free=True, cache_ttl=60)
    acts = activities_for(tmp_path)
    await acts.run_tool(tool_input(throwaway_name, '{"text": "hi"}'))
    clock.now += 61
    again = await acts.run_tool(tool_input(throwaway_name, '{"text": "hi"}'))
    assert again.status == "ok"
    assert again.cached is False
    assert calls == ["hi", "hi"]


async def test_tool_without_cache_ttl_is_never_cached(
    tmp_path: Path, throwaway_name: str, clock: _Clock
) -> None:
    calls = counting_tool(throwaway_name, side_effect_free=True)
    acts = activities_for(tmp_path)
    outcomes = [await acts.run_tool(tool_input(throwaway_name, '{"text": "hi"}')) for _ in range(2)]
    assert [o.cached for o in outcomes] == [False, False]
    assert calls == ["hi", "hi"]


async def test_tool_errors_are_not_cached(tmp_path: Path, clock: _Clock) -> None:
    acts = activities_for(tmp_path)
    first = await acts.run_tool(tool_input("get_weather", '{"city": "Atlantis"}'))
    second = await acts.run_tool(tool_input("get_weather", '{"city": "Atlantis"}'))
    assert first.status == second.status == "error"
    assert second.cached is False
