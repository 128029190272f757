"""Tool registration options and entry-point plugins (agents/tools/registry.py)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

import p2engine.agents.tools.registry as registry
from p2engine.agents.tools import get_tool, load_plugins, registered_tools, tool
from p2engine.agents.tools.registry import _TOOLS, ENTRY_POINT_GROUP
from p2engine.contract.errors import ConfigError
from tests import plugins

NAME = "unit_test_registry_tool"


class _Args(BaseModel):
    text: str = Field(description="what to echo")
    times: int = 1


def _echo(args: Any) -> Any:
    return args.text


@pytest.fixture
def name() -> Iterator[str]:
    assert NAME not in _TOOLS
    yield NAME
    _TOOLS.pop(NAME, None)


def test_decorator_options_are_stored_on_the_tool(name: str) -> None:
    tool(name, "echo", _Args, cache_ttl=60, side_effect_free=True, timeout=2.5, retry=5)(_echo)
    registered = get_tool(name)
    assert registered.cache_ttl_s == 60
    assert registered.side_effect_free is True
    assert registered.timeout_s == 2.5
    assert registered.max_attempts == 5
    assert registered.fn is _echo
    assert registered.input_model is _Args


def test_decorator_defaults(name: str) -> None:
    tool(name, "echo", _Args)(_echo)
    registered = get_tool(name)
    assert registered.cache_ttl_s is None
    assert registered.side_effect_free is False
    assert registered.timeout_s == 30.0
    assert registered.max_attempts == 3


def test_decorator_returns_the_function_unchanged(name: str) -> None:
    assert tool(name, "echo", _Args)(_echo) is _echo


def test_cache_ttl_without_side_effect_free_raises(name: str) -> None:
    with pytest.raises(ValueError, match="cache_ttl needs side_effect_free"):
        tool(name, "echo", _Args, cache_ttl=60)
    assert name not in registered_tools()


@pytest.mark.parametrize(("timeout", "retry"), [(0, 3), (-1, 3), (30, 0)])
def test_bad_timeout_or_retry_raises(name: str, timeout: float, retry: int) -> None:
    with pytest.raises(ValueError, match=name):
        tool(name, "echo", _Args, timeout=timeout, retry=retry)


def test_registering_a_built_in_name_again_raises_and_keeps_the_original() -> None:
    original = get_tool("get_weather")
    with pytest.raises(ValueError, match="'get_weather' is registered twice"):
        tool("get_weather", "impostor", _Args)(_echo)
    assert get_tool("get_weather") is original


def test_schema_has_name_description_and_parameters(name: str) -> None:
    tool(name, "Echo the text.", _Args)(_echo)
    schema = get_tool(name).schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == name
    assert function["description"] == "Echo the text."
    parameters = function["parameters"]
    assert "title" not in parameters
    assert parameters["type"] == "object"
    assert set(parameters["properties"]) == {"text", "times"}
    assert parameters["properties"]["text"]["description"] == "what to echo"
    assert parameters["required"] == ["text"]


# --- entry-point plugins ---------------------------------------------------------------------

PLUGIN_MODULE = "p2e_unit_test_plugin"
PLUGIN_TOOL = "unit_test_plugin_tool"
BROKEN_MODULE = "p2e_unit_test_broken_plugin"
BROKEN_SOURCE = "raise RuntimeError('boom')\n"
PLUGIN_SOURCE = f"""
from pydantic import BaseModel

from p2engine import tool


class Args(BaseModel):
    text: str


@tool({PLUGIN_TOOL!r}, "A tool from a plugin.", Args)
def plugin_tool(args: Args) -> str:
    return args.text
"""


def install_distribution(
    site: Path, entry_name: str, module: str, source: str, dist: str = "p2e_unit_test_plugin"
) -> None:
    plugins.install_distribution(site, ENTRY_POINT_GROUP, entry_name, module, source, dist)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for a throwaway distribution; everything is undone after."""
    saved_path = list(sys.path)
    saved_flag = registry._plugins_loaded
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    registry._plugins_loaded = False
    assert PLUGIN_TOOL not in _TOOLS
    try:
        yield tmp_path
    finally:
        _TOOLS.pop(PLUGIN_TOOL, None)
        sys.modules.pop(PLUGIN_MODULE, None)
        sys.modules.pop(BROKEN_MODULE, None)
        sys.path[:] = saved_path
        registry._plugins_loaded = saved_flag
        importlib.invalidate_caches()


def test_load_plugins_registers_a_plugins_tools(site: Path) -> None:
    install_distribution(site, "unit_plugin", PLUGIN_MODULE, PLUGIN_SOURCE)
    assert PLUGIN_TOOL not in registered_tools()
    load_plugins()
    assert PLUGIN_TOOL in registered_tools()
    assert get_tool(PLUGIN_TOOL).description == "A tool from a plugin."
    assert registry._plugins_loaded is True


def test_load_plugins_runs_once(site: Path) -> None:
    install_distribution(site, "unit_plugin", PLUGIN_MODULE, PLUGIN_SOURCE)
    load_plugins()
    # A plugin installed later is not looked at: entry points are read once per process.
    install_distribution(site, "late_plugin", BROKEN_MODULE, BROKEN_SOURCE, dist="p2e_unit_late")
    load_plugins()
    assert PLUGIN_TOOL in registered_tools()
    assert BROKEN_MODULE not in sys.modules


def test_a_broken_plugin_is_a_config_error_naming_it(site: Path) -> None:
    install_distribution(site, "broken_plugin", BROKEN_MODULE, BROKEN_SOURCE)
    with pytest.raises(ConfigError) as info:
        load_plugins()
    message = str(info.value)
    assert "tool plugin 'broken_plugin'" in message
    assert BROKEN_MODULE in message
    assert "boom" in message
    assert isinstance(info.value.__cause__, RuntimeError)
    assert registry._plugins_loaded is False
