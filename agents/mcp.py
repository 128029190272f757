"""Connections to MCP servers, one per server per process, opened on first use and reused
by every list and call until the process closes them (the worker at shutdown, the CLI when
it is done).

Each connection lives in a task of its own, which enters the MCP client and exits it: the
SDK's transports hold anyio cancel scopes that must be left by the task that entered them,
while the calls come from many activity tasks. A connection that failed in transport is
dropped, and the next use opens a fresh one.

Only stateless use is supported: a retried call may land on another worker, whose session
with the server is another, so a server that keeps state between calls of a session would
see them split. The official SDK (`mcp`) speaks the protocol; temporalio-mcp, which runs
MCP operations from workflow code through its own activities, is not used, since ours are
tool calls of the agent loop with their arguments checked, results stored and names
qualified, in activities of the conversation's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, Tool
from mcp_types import RequestParamsMeta

from p2engine.contract.mcp import McpServer

_T = TypeVar("_T")


class McpFailure(Exception):
    """A server could not be reached or answered outside the protocol; `retryable` says
    whether another attempt may go otherwise (a transport failure may, a missing command or
    a protocol error will not)."""

    def __init__(self, server: str, problem: str, *, retryable: bool) -> None:
        super().__init__(f"MCP server '{server}': {problem}")
        self.server = server
        self.retryable = retryable


@dataclass
class _Connection:
    client: Client
    stop: asyncio.Event
    task: asyncio.Task[None]


class McpConnections:
    """The open connections of one process to the servers in `servers`."""

    def __init__(
        self, servers: Mapping[str, McpServer], environ: Mapping[str, str] | None = None
    ) -> None:
        self.servers = dict(servers)
        self._environ = os.environ if environ is None else environ
        self._open: dict[str, _Connection] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def list_tools(self, name: str) -> list[Tool]:
        """Every tool the server lists, all pages."""
        server = self._server(name)

        async def listed(client: Client) -> list[Tool]:
            tools: list[Tool] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                tools.extend(page.tools)
                if not (cursor := page.next_cursor):
                    return tools

        return await self._using(name, server, listed)

    async def call_tool(
        self, name: str, tool: str, arguments: dict[str, Any], meta: RequestParamsMeta | None
    ) -> CallToolResult:
        server = self._server(name)

        async def called(client: Client) -> CallToolResult:
            return await client.call_tool(
                tool, arguments, read_timeout_seconds=server.timeout_s, meta=meta
            )

        return await self._using(name, server, called)

    async def close(self) -> None:
        for name in list(self._open):
            await self._drop(name)

    def _server(self, name: str) -> McpServer:
        server = self.servers.get(name)
        if server is None:
            known = ", ".join(sorted(self.servers)) or "none"
            raise McpFailure(name, f"not configured here (servers: {known})", retryable=False)
        return server

    async def _using(
        self, name: str, server: McpServer, use: Callable[[Client], Awaitable[_T]]
    ) -> _T:
        """`use(client)` on the server's connection, bounded by its timeout; a transport
        failure drops the connection."""
        try:
            async with asyncio.timeout(server.timeout_s):
                client = await self._client(name, server)
                return await use(client)
        except MCPError as exc:  # the server answered with a JSON-RPC error
            problem = f"error {exc.error.code}: {exc.error.message}"
            raise McpFailure(name, problem, retryable=False) from None
        except McpFailure:
            await self._drop(name)
            raise
        except TimeoutError:
            await self._drop(name)
            problem = f"no answer within {server.timeout_s:g} s"
            raise McpFailure(name, problem, retryable=True) from None
        except (OSError, httpx2.HTTPError, ExceptionGroup, RuntimeError, ValueError) as exc:
            await self._drop(name)
            raise McpFailure(name, _reason(exc), retryable=True) from exc

    async def _client(self, name: str, server: McpServer) -> Client:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if (open_ := self._open.get(name)) is not None and not open_.task.done():
                return open_.client
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            stop = asyncio.Event()
            client = self._make(name, server)
            task = asyncio.create_task(_hold(name, client, ready, stop), name=f"mcp {name}")
            try:
                await ready
            except BaseException:
                stop.set()
                raise
            self._open[name] = _Connection(client, stop, task)
            return client

    def _make(self, name: str, server: McpServer) -> Client:
        if server.command is not None:
            parameters = StdioServerParameters(
                command=server.command, args=server.args, env=server.env or None
            )
            return Client(stdio_client(parameters), read_timeout_seconds=server.timeout_s)
        assert server.url is not None
        headers = {}
        for header, variable in server.headers.items():
            value = self._environ.get(variable)
            if value is None:
                raise McpFailure(
                    name, f"header {header}: ${variable} is not set here", retryable=False
                )
            headers[header] = value
        http = httpx2.AsyncClient(headers=headers, timeout=server.timeout_s)
        return Client(
            streamable_http_client(server.url, http_client=http),
            read_timeout_seconds=server.timeout_s,
        )

    async def _drop(self, name: str) -> None:
        open_ = self._open.pop(name, None)
        if open_ is None:
            return
        open_.stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(open_.task, timeout=5)


async def _hold(
    name: str, client: Client, ready: asyncio.Future[Client], stop: asyncio.Event
) -> None:
    """Enter `client`, hand it over, and leave it when told (or when it fails)."""
    try:
        async with client:
            ready.set_result(client)
            await stop.wait()
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(_opening_failure(name, exc))
        elif not isinstance(exc, asyncio.CancelledError | Exception):
            raise


def _opening_failure(name: str, exc: BaseException) -> BaseException:
    """What stopped a connection from opening, as the caller classifies it."""
    found = exc
    while isinstance(found, BaseExceptionGroup) and found.exceptions:
        found = found.exceptions[0]
    if isinstance(found, FileNotFoundError):
        return McpFailure(name, f"no such command: {found.filename}", retryable=False)
    return exc


def _reason(exc: BaseException) -> str:
    """One line from what may be an exception group of the SDK's tasks."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
