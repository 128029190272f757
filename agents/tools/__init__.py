"""The tool registry and the built-in tools (importing this package registers them)."""

from agents.tools import delegate, ledger, weather
from agents.tools.registry import Tool, ToolError, get_tool, load_plugins, registered_tools, tool

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
