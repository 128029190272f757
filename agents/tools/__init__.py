"""The tool registry and the built-in tools (importing this package registers them)."""

from p2engine.agents.tools import delegate, ledger, weather
from p2engine.agents.tools.registry import (
    Tool,
    ToolError,
    get_tool,
    load_plugins,
    registered_tools,
    tool,
)

__all__ = [
    "Tool",
    "ToolError",
    "delegate",
    "get_tool",
    "ledger",
    "load_plugins",
    "registered_tools",
    "tool",
    "weather",
]
