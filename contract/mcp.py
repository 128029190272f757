"""Tools from MCP servers: a server as settings (or an agent) define it, what a conversation
knows of it, and what its list and call activities carry.

A server's definition (its command, environment, URL and the names of the environment
variables its headers come from) stays with the worker, which reads its settings; a
conversation's input and history name only the server, its tools and their limits, so no
secret enters a history. An MCP tool is named `server.tool`; models see `server__tool`
(function names may not hold a dot), and the step maps it back.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SEPARATOR = "."
WIRE_SEPARATOR = "__"
# The `_meta` key a side-effecting call's business key travels in, for servers that
# deduplicate by it.
BUSINESS_KEY_META = "p2engine/business_key"
SERVER_NAME = r"^[A-Za-z0-9_\-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class McpServer(_Strict):
    """One MCP server: a command run over stdio, or a streamable HTTP URL."""

    command: str | None = Field(default=None, description="stdio: the program to run")
    args: list[str] = []
    env: dict[str, str] = Field(default={}, description="stdio: added to the environment")
    url: str | None = Field(default=None, description="streamable HTTP: the endpoint")
    headers: dict[str, str] = Field(
        default={}, description="header -> the environment variable its value is read from"
    )
    timeout_s: float = Field(default=30.0, gt=0, description="each list or call")
    max_attempts: int = Field(default=3, ge=1, description="transport failures are retried")
    side_effects: list[str] = Field(
        default=[], description="tools with side effects: deduplicated, keyed in _meta"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError("give a command (stdio) or a url (streamable HTTP), one of the two")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("an MCP url starts http:// or https://")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    def info(self, name: str) -> McpServerInfo:
        return McpServerInfo(
            name=name,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            side_effects=self.side_effects,
        )


class McpServerInfo(_Strict):
    """What a conversation knows of a server to schedule its activities: no secrets."""

    name: str
    timeout_s: float = 30.0
    max_attempts: int = 3
    side_effects: list[str] = []


def qualified(server: str, tool: str) -> str:
    return f"{server}{SEPARATOR}{tool}"


def split(name: str) -> tuple[str, str | None]:
    """`server.tool` -> (server, tool); `server` -> (server, None)."""
    server, _, tool = name.partition(SEPARATOR)
    return server, tool or None


def wire_name(name: str) -> str:
    """The function name a model sees for tool `name` (a dot is not allowed there)."""
    return name.replace(SEPARATOR, WIRE_SEPARATOR, 1)


def selection(entries: list[str]) -> dict[str, list[str] | None]:
    """An agent's `mcp:` list as server -> its tools (None: every one)."""
    chosen: dict[str, list[str] | None] = {}
    for entry in entries:
        server, tool = split(entry)
        if tool is None:
            chosen[server] = None
        elif (tools := chosen.setdefault(server, [])) is not None:
            tools.append(tool)
    return chosen


class McpTool(_Strict):
    """One tool as its server lists it; `problem` says why it cannot be called."""

    name: str = Field(description="server.tool")
    tool: str = Field(description="the server's own name for it")
    description: str = ""
    input_schema: dict[str, Any] = {}
    problem: str | None = Field(default=None, description="e.g. an invalid input schema")

    def function_schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema a model is offered."""
        return {
            "type": "function",
            "function": {
                "name": wire_name(self.name),
                "description": self.description,
                "parameters": self.input_schema or {"type": "object", "properties": {}},
            },
        }


class McpListing(_Strict):
    """A server's tools as listed for one conversation (the agent's selection of them);
    stored whole, so the history keeps only its ref and names."""

    server: str
    tools: list[McpTool]


class McpListInput(_Strict):
    server: str
    only: list[str] | None = Field(default=None, description="the agent's selection")
    store_id: str | None = None


class McpListed(_Strict):
    """What the workflow keeps of a listing."""

    server: str
    ref: str = Field(description="the McpListing in the store")
    tools: list[str] = Field(description="the callable tools, server.tool")


class McpCallInput(_Strict):
    conversation_id: str
    agent_id: str
    step: int
    server: str
    listing: str = Field(description="the ref of the McpListing the tool is in")
    call_id: str
    name: str = Field(description="server.tool")
    arguments: str = "{}"
    business_key: str | None = Field(default=None, description="side-effecting tools only")
