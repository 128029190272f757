"""MCP tools as a conversation uses them: which listings it asks for, which tool a call
names, and how its activity is scheduled. Pure, tested without Temporal.

A conversation lists its agent's MCP tools when it starts (and again after continue-as-new
or in a branch: a listing is not carried over, so a server's new tools are seen); the
listings' refs go with every model step, and a call to `server.tool` runs as an MCP call
activity with the server's timeout and attempts.
"""

from __future__ import annotations

from collections.abc import Sequence

from p2engine.contract.agent import AgentSpec
from p2engine.contract.mcp import McpCallInput, McpListed, McpListInput, McpServerInfo, selection
from p2engine.contract.models import Catalog, ToolInfo
from p2engine.workflows.options import ActivityOptions, tool_activity

# An attempt's bound beyond the server's own timeout: the worker's timeout fires first and
# says which server did not answer, where Temporal's would only say the attempt timed out.
ATTEMPT_MARGIN_S = 5.0


def listing_requests(agent: AgentSpec, store_id: str | None) -> list[McpListInput]:
    """One listing per server the agent names, of the tools it chose there."""
    return [
        McpListInput(server=server, only=tools, store_id=store_id)
        for server, tools in selection(agent.mcp).items()
    ]


def tools_by_name(listed: Sequence[McpListed]) -> dict[str, McpListed]:
    """Each callable MCP tool (server.tool) -> the listing it is in."""
    return {name: listing for listing in listed for name in listing.tools}


def tool_info(name: str, server: McpServerInfo) -> ToolInfo:
    """What the dedup policy and the activity options read of an MCP tool: side-effect
    free unless the server's config marks it."""
    tool = name.partition(".")[2]
    return ToolInfo(
        name=name,
        side_effect_free=tool not in server.side_effects,
        timeout_s=server.timeout_s + ATTEMPT_MARGIN_S,
        max_attempts=server.max_attempts,
    )


def list_options(server: McpServerInfo) -> ActivityOptions:
    """A listing is bounded and retried as the server's calls are."""
    attempt_s = server.timeout_s + ATTEMPT_MARGIN_S
    return tool_activity(
        ToolInfo(name=server.name, timeout_s=attempt_s, max_attempts=server.max_attempts)
    )


def call_input(
    listing: McpListed,
    *,
    conversation_id: str,
    agent_id: str,
    step: int,
    call_id: str,
    name: str,
    arguments: str,
    business_key: str,
    info: ToolInfo,
) -> McpCallInput:
    """The call activity's input; the business key goes only with side-effecting tools."""
    return McpCallInput(
        conversation_id=conversation_id,
        agent_id=agent_id,
        step=step,
        server=listing.server,
        listing=listing.ref,
        call_id=call_id,
        name=name,
        arguments=arguments,
        business_key=None if info.side_effect_free else business_key,
    )


def server_info(catalog: Catalog, listing: McpListed) -> McpServerInfo:
    return catalog.mcp_server(listing.server)
