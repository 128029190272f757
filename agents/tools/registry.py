"""Tools are registered by decorator; the registry yields the JSON schema a model sees.

Third-party packages add tools through the `p2engine.tools` entry-point group: each entry
point names a module (importing it runs its `@tool` decorators) or a registered function.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from p2engine.contract.models import DEFAULT_TOOL_TIMEOUT_S
from p2engine.contract.plugins import load_entry_points

if TYPE_CHECKING:
    from p2engine.ledger.base import Ledger

ENTRY_POINT_GROUP = "p2engine.tools"


class ToolError(Exception):
    """A failure the model should read and react to (bad city, bad arguments, ...)."""


@dataclass(frozen=True)
class ToolContext:
    """What the workflow says about a call, for tools that take a second argument.

    `agent_id` is the acting agent as the workflow knows it, never a model argument;
    `business_key` (contract/ids.py) is computed in the workflow, so a side effect keyed on
    it happens once however often the activity is retried. It is not the duplicate-call key,
    which names a tool and its arguments and is the same for two calls alike.
    """

    agent_id: str
    conversation_id: str
    step: int
    business_key: str
    services: ToolServices


@dataclass(frozen=True)
class ToolServices:
    """Shared resources the worker gives to tools."""

    ledger: Ledger | None = None


def invalid_arguments(exc: ValidationError) -> str:
    """One line the model can act on: which argument is wrong and why."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "invalid arguments: " + "; ".join(parts)


ToolFn = Callable[..., Any | Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    fn: ToolFn
    cache_ttl_s: float | None = None
    side_effect_free: bool = False
    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S
    max_attempts: int = 3
    takes_context: bool = False

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema, which litellm passes to every provider.

        A fresh copy of the one built at first use: pydantic's schema generation costs more
        than the rest of a scripted model step, and a provider may edit what it is given
        (decoding the kept JSON copies it in a third of the time of a deep copy)."""
        return json.loads(self._schema_json)  # type: ignore[no-any-return]

    @cached_property
    def _schema_json(self) -> str:
        parameters = self.input_model.model_json_schema()
        parameters.pop("title", None)
        return json.dumps(
            {
                "type": "function",
                "function": {
                    "name": self.name,
                    "description": self.description,
                    "parameters": parameters,
                },
            }
        )

    async def call(self, arguments: BaseModel, context: ToolContext | None = None) -> Any:
        if self.takes_context and context is None:
            raise ToolError(f"tool '{self.name}' runs only inside a conversation")
        result = self.fn(arguments, context) if self.takes_context else self.fn(arguments)
        return await result if inspect.isawaitable(result) else result


_TOOLS: dict[str, Tool] = {}


def tool(
    name: str,
    description: str,
    input_model: type[BaseModel],
    *,
    cache_ttl: float | None = None,
    side_effect_free: bool = False,
    timeout: float = DEFAULT_TOOL_TIMEOUT_S,
    retry: int = 3,
) -> Callable[[ToolFn], ToolFn]:
    """Register a tool.

    `cache_ttl` (seconds) serves repeated calls from the tool cache and needs
    `side_effect_free`, which also exempts the tool from duplicate-call policies. `timeout`
    bounds one attempt; `retry` is the number of attempts for unexpected failures. A function
    with a second parameter receives the call's `ToolContext`.
    """
    if cache_ttl is not None and not side_effect_free:
        raise ValueError(f"tool '{name}': cache_ttl needs side_effect_free=True")
    if timeout <= 0 or retry < 1:
        raise ValueError(f"tool '{name}': timeout must be > 0 and retry >= 1")

    def register(fn: ToolFn) -> ToolFn:
        if name in _TOOLS:
            raise ValueError(f"tool '{name}' is registered twice")
        takes_context = len(inspect.signature(fn).parameters) >= 2
        _TOOLS[name] = Tool(
            name,
            description,
            input_model,
            fn,
            cache_ttl,
            side_effect_free,
            timeout,
            retry,
            takes_context,
        )
        return fn

    return register


def get_tool(name: str) -> Tool:
    try:
        return _TOOLS[name]
    except KeyError:
        raise ToolError(f"unknown tool '{name}'") from None


def registered_tools() -> list[str]:
    return sorted(_TOOLS)


_plugins_loaded = False


def load_plugins() -> None:
    """Import every `p2engine.tools` entry point once; a broken plugin is a config error."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    load_entry_points(ENTRY_POINT_GROUP, "tool")
    _plugins_loaded = True
