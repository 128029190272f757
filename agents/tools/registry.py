"""Tools are registered by decorator; the registry yields the JSON schema a model sees."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


class ToolError(Exception):
    """A failure the model should read and react to (bad city, bad arguments, ...)."""


ToolFn = Callable[[Any], Any | Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    fn: ToolFn

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema, which litellm passes to every provider."""
        parameters = self.input_model.model_json_schema()
        parameters.pop("title", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    async def call(self, arguments: BaseModel) -> Any:
        result = self.fn(arguments)
        return await result if inspect.isawaitable(result) else result


_TOOLS: dict[str, Tool] = {}


def tool(name: str, description: str, input_model: type[BaseModel]) -> Callable[[ToolFn], ToolFn]:
    def register(fn: ToolFn) -> ToolFn:
        if name in _TOOLS:
            raise ValueError(f"tool '{name}' is registered twice")
        _TOOLS[name] = Tool(name, description, input_model, fn)
        return fn

    return register


def get_tool(name: str) -> Tool:
    try:
        return _TOOLS[name]
    except KeyError:
        raise ToolError(f"unknown tool '{name}'") from None


def registered_tools() -> list[str]:
    return sorted(_TOOLS)
