"""MCP tools without a server: names, selections, definitions, listings with their schemas
checked, arguments checked against them, what a call is scheduled with, and the catalog
that keeps server definitions (and their secrets) out of conversations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mcp.types import Tool
from pydantic import ValidationError

from p2engine.activities.mcp import checked_arguments, listing_of
from p2engine.contract.errors import ConfigError
from p2engine.contract.mcp import (
    McpListed,
    McpServer,
    McpServerInfo,
    McpTool,
    selection,
    split,
    wire_name,
)
from p2engine.contract.models import ToolInfo
from p2engine.runtime.catalog import load_catalog, mcp_servers
from p2engine.runtime.settings import PROJECT_ROOT, Settings
from p2engine.workflows import mcp

TIME = McpTool(
    name="time.get_current_time",
    tool="get_current_time",
    input_schema={
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
    },
)


def test_names_split_and_a_model_sees_them_without_a_dot() -> None:
    assert split("time.get_current_time") == ("time", "get_current_time")
    assert split("time") == ("time", None)
    assert wire_name("time.get_current_time") == "time__get_current_time"
    assert TIME.function_schema()["function"]["name"] == "time__get_current_time"


def test_an_agent_s_selection_is_a_whole_server_or_some_of_its_tools() -> None:
    chosen = selection(["time", "everything.echo", "everything.add", "time.convert_time"])
    assert chosen == {"time": None, "everything": ["echo", "add"]}


def test_a_server_is_a_command_or_a_url_one_of_the_two() -> None:
    assert McpServer(command="mcp-server-time").transport == "stdio"
    assert McpServer(url="http://127.0.0.1:3001/mcp").transport == "http"
    for bad in ({}, {"command": "x", "url": "http://h/mcp"}, {"url": "ftp://h/mcp"}):
        with pytest.raises(ValidationError):
            McpServer.model_validate(bad)


def test_a_listing_keeps_the_agent_s_choice_and_marks_an_invalid_schema() -> None:
    tools = [
        Tool(name="echo", input_schema={"type": "object"}),
        Tool(name="broken", input_schema={"type": "object", "properties": {"x": {"type": 5}}}),
        Tool(name="other", input_schema={"type": "object"}),
    ]
    listing = listing_of("s", tools, ["echo", "broken"])
    assert [t.name for t in listing.tools] == ["s.echo", "s.broken"]
    echo, broken = listing.tools
    assert echo.problem is None
    assert broken.problem is not None and "input schema is invalid" in broken.problem


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ('{"timezone": "UTC"}', None),
        ('{"timezone": 5}', "invalid arguments: timezone: 5 is not of type 'string'"),
        ("{}", "invalid arguments: arguments: 'timezone' is a required property"),
        ("[1]", "invalid arguments: an object is expected"),
        ("{nope", "invalid arguments: not JSON"),
    ],
)
def test_arguments_are_checked_against_the_tool_s_schema(raw: str, problem: str | None) -> None:
    _, found = checked_arguments(TIME, raw)
    assert found == problem if problem is None else (found or "").startswith(problem)


def test_a_call_is_bounded_by_its_server_and_keyed_only_when_it_has_side_effects() -> None:
    server = McpServerInfo(name="s", timeout_s=4, max_attempts=2, side_effects=["pay"])
    pay, read = mcp.tool_info("s.pay", server), mcp.tool_info("s.read", server)
    assert not pay.side_effect_free and read.side_effect_free
    assert pay.timeout_s == 4 + mcp.ATTEMPT_MARGIN_S and pay.max_attempts == 2
    listed = McpListed(server="s", ref="r" * 64, tools=["s.pay", "s.read"])

    def call(name: str, info: ToolInfo) -> str | None:
        made = mcp.call_input(listed, conversation_id="c", agent_id="a", step=2, call_id="1",
                              name=name, arguments="{}", business_key="key", info=info)  # fmt: skip
        return made.business_key

    assert call("s.pay", pay) == "key" and call("s.read", read) is None
    assert mcp.tools_by_name([listed]) == {"s.pay": listed, "s.read": listed}


def team(tmp_path: Path, *extra: dict[str, object]) -> Path:
    data = yaml.safe_load((PROJECT_ROOT / "config" / "agents.yml").read_text())
    data["agents"] += list(extra)
    path = tmp_path / "agents.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_agent_s_own_server_stays_with_the_worker_not_in_the_catalog(tmp_path: Path) -> None:
    own = {"command": "python3", "env": {"TOKEN": "s3cret"}}
    agents = team(tmp_path, {"id": "keeper", "mcp": ["vault"], "mcp_servers": {"vault": own}})
    settings = Settings(agents_file=agents)
    catalog = load_catalog(settings)
    keeper = catalog.agent("keeper")
    assert keeper is not None and keeper.mcp_servers == {} and keeper.mcp == ["vault"]
    assert "s3cret" not in catalog.model_dump_json()
    assert catalog.mcp_server("vault") == McpServerInfo(name="vault")
    assert mcp_servers(settings)["vault"].env == {"TOKEN": "s3cret"}


def test_one_name_defined_twice_otherwise_is_refused(tmp_path: Path) -> None:
    agents = team(
        tmp_path,
        {"id": "a1", "mcp_servers": {"x": {"command": "python3"}}},
        {"id": "a2", "mcp_servers": {"x": {"command": "python3", "args": ["-V"]}}},
    )
    with pytest.raises(ConfigError, match="defines MCP server 'x' otherwise"):
        load_catalog(Settings(agents_file=agents))
