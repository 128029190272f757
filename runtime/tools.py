"""What `p2e tools list` shows: the built-in and plugin tools from the registry, and each
MCP server's tools as it lists them now (connecting from this process)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p2engine.contract.errors import InvalidInput
from p2engine.runtime.catalog import mcp_servers
from p2engine.runtime.settings import Settings


@dataclass(frozen=True)
class ListedTool:
    name: str
    source: str  # "built-in", or the MCP server's name
    description: str
    schema: dict[str, Any]
    problem: str | None = None


@dataclass(frozen=True)
class ServerProblem:
    server: str
    problem: str


async def list_tools(
    settings: Settings, server: str | None = None
) -> tuple[list[ListedTool], list[ServerProblem]]:
    """Every tool (or only `server`'s), and the servers that could not be listed."""
    from p2engine.activities.mcp import listing_of
    from p2engine.agents.mcp import McpConnections, McpFailure
    from p2engine.agents.tools import get_tool, load_plugins, registered_tools

    servers = mcp_servers(settings)
    if server is not None and server not in servers:
        known = ", ".join(sorted(servers)) or "none"
        raise InvalidInput(f"unknown MCP server '{server}'; servers: {known}")
    tools: list[ListedTool] = []
    if server is None:
        load_plugins()
        for name in registered_tools():
            tool = get_tool(name)
            tools.append(ListedTool(name, "built-in", tool.description, tool.schema()))
    problems: list[ServerProblem] = []
    connections = McpConnections(servers)
    try:
        for name in sorted(servers) if server is None else [server]:
            try:
                listing = listing_of(name, await connections.list_tools(name), None)
            except McpFailure as exc:
                problems.append(ServerProblem(name, str(exc)))
                continue
            tools += [
                ListedTool(t.name, name, t.description, t.input_schema, t.problem)
                for t in listing.tools
            ]
    finally:
        await connections.close()
    return tools, problems
