"""MCP tools as activities: a server's tools listed for a conversation, and one tool called.

A listing is stored whole (names, descriptions, input schemas) and the workflow keeps its
ref, so the history holds each schema once and every step reads it from the store. A tool
whose input schema is not valid JSON Schema is listed with its problem and not offered.
A call's arguments are checked against the schema before the server sees them: a model's
bad arguments come back as an `error` outcome it can read, like a server's tool error. A
transport failure is retried (the activity's policy); a protocol error, a missing command
or an unconfigured server is not.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from mcp.types import CallToolResult, ImageContent, TextContent, Tool
from mcp_types import RequestParamsMeta
from temporalio import activity
from temporalio.exceptions import ApplicationError

from p2engine.agents.mcp import McpConnections, McpFailure
from p2engine.contract.mcp import (
    BUSINESS_KEY_META,
    McpCallInput,
    McpListed,
    McpListing,
    McpListInput,
    McpTool,
    qualified,
)
from p2engine.contract.models import ToolOutcome, ToolStatus, preview
from p2engine.contract.names import MCP_CALL, MCP_FAILED, MCP_LIST
from p2engine.store.base import ArtifactStore

LISTINGS_KEPT = 64


class McpListings:
    """Listings read from the store by ref, the last few kept: a ref never changes."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self._kept: dict[str, McpListing] = {}

    async def get(self, ref: str) -> McpListing:
        if (kept := self._kept.get(ref)) is None:
            kept = McpListing.model_validate_json(await self.store.get_text(ref))
            if len(self._kept) >= LISTINGS_KEPT:
                self._kept.pop(next(iter(self._kept)))
            self._kept[ref] = kept
        return kept

    async def offered(self, refs: list[str]) -> list[McpTool]:
        """The tools a model may call from these listings (those without a problem)."""
        return [t for ref in refs for t in (await self.get(ref)).tools if t.problem is None]


class McpActivities:
    def __init__(self, listings: McpListings, connections: McpConnections) -> None:
        self.store = listings.store
        self.listings = listings
        self.connections = connections

    @activity.defn(name=MCP_LIST)
    async def list_tools(self, inp: McpListInput) -> McpListed:
        try:
            tools = await self.connections.list_tools(inp.server)
        except McpFailure as exc:
            raise _failure(exc) from None
        listing = listing_of(inp.server, tools, inp.only)
        ref = await self.store.put_text(listing.model_dump_json())
        callable_ = [t.name for t in listing.tools if t.problem is None]
        return McpListed(server=inp.server, ref=ref, tools=callable_)

    @activity.defn(name=MCP_CALL)
    async def call_tool(self, inp: McpCallInput) -> ToolOutcome:
        listing = await self.listings.get(inp.listing)
        tool = next((t for t in listing.tools if t.name == inp.name), None)
        if tool is None:
            return await self._outcome("error", {"error": f"{inp.name} is not listed"})
        if tool.problem is not None:
            return await self._outcome("error", {"error": f"{inp.name}: {tool.problem}"})
        arguments, problem = checked_arguments(tool, inp.arguments)
        if problem is not None:
            return await self._outcome("error", {"error": problem})
        # An open map: the business key is an extra item the SDK passes on as it is.
        key: dict[str, Any] = {BUSINESS_KEY_META: inp.business_key}
        meta = cast(RequestParamsMeta, key) if inp.business_key else None
        try:
            result = await self.connections.call_tool(inp.server, tool.tool, arguments, meta)
        except McpFailure as exc:
            raise _failure(exc) from None
        return await self._outcome(
            "error" if result.is_error else "ok", await self._content(result)
        )

    async def _content(self, result: CallToolResult) -> dict[str, Any]:
        """The result as the model reads it: its structured content (or else its text),
        and each image as a ref to its bytes in the store."""
        content: dict[str, Any] = {}
        texts = [block.text for block in result.content if isinstance(block, TextContent)]
        if result.structured_content is not None:  # its text is the same, serialised
            content["structured"] = result.structured_content
        elif texts:
            content["text"] = "\n".join(texts)
        images = [block for block in result.content if isinstance(block, ImageContent)]
        if images:
            content["images"] = [
                {"mime_type": image.mime_type, "ref": await self.store.put_bytes(_decoded(image))}
                for image in images
            ]
        if result.is_error:
            content = {"error": content.get("text", "the tool failed"), **content}
        return content

    async def _outcome(self, status: ToolStatus, content: dict[str, Any]) -> ToolOutcome:
        text = json.dumps(content, sort_keys=True)
        return ToolOutcome(
            status=status, result_ref=await self.store.put_text(text), preview=preview(text)
        )


def listing_of(server: str, tools: list[Tool], only: list[str] | None) -> McpListing:
    """The agent's selection of a server's tools, each schema checked."""
    chosen = [t for t in tools if only is None or t.name in only]
    return McpListing(server=server, tools=[_tool(server, t) for t in chosen])


def _tool(server: str, tool: Tool) -> McpTool:
    schema = dict(tool.input_schema or {})
    problem = None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        problem = f"the server's input schema is invalid: {exc.message}"
    return McpTool(
        name=qualified(server, tool.name),
        tool=tool.name,
        description=tool.description or "",
        input_schema=schema,
        problem=problem,
    )


def checked_arguments(tool: McpTool, raw: str) -> tuple[dict[str, Any], str | None]:
    """The model's arguments, or why they do not fit the tool's schema (one line)."""
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        return {}, f"invalid arguments: not JSON ({exc.msg})"
    if not isinstance(arguments, dict):
        return {}, "invalid arguments: an object is expected"
    errors = sorted(Draft202012Validator(tool.input_schema).iter_errors(arguments), key=str)
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "arguments"
        return arguments, f"invalid arguments: {where}: {first.message}"
    return arguments, None


def _decoded(image: ImageContent) -> bytes:
    return base64.b64decode(image.data)


def _failure(exc: McpFailure) -> ApplicationError:
    return ApplicationError(str(exc), type=MCP_FAILED, non_retryable=not exc.retryable)
