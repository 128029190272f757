"""The tool registry and the built-in tools (importing this package registers them)."""

from agents.tools import weather
from agents.tools.registry import Tool, ToolError, get_tool, registered_tools, tool

__all__ = ["Tool", "ToolError", "get_tool", "registered_tools", "tool", "weather"]
