"""Personas: behaviour templates in config/personas/<name>.md, sent as a system message.

Templates use the standard library's `string.Template` (`$agent_id`, `$description`,
`$tools`): three substitutions do not earn a template engine. The catalog carries each
template's text, so a config names the persona it ran by content (AgentConfig.persona_text)
and a step renders it from that text with `render`, whatever the worker's disk holds.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from p2engine.contract.agent_config import NO_PERSONA
from p2engine.contract.errors import ConfigError, read_config_text

SUFFIX = ".md"
PLACEHOLDERS = frozenset({"agent_id", "description", "tools"})


def render(template: str, *, agent_id: str, description: str, tools: list[str]) -> str:
    """A persona template's text for one agent: its placeholders filled, no tools 'none'."""
    return Template(template).substitute(
        agent_id=agent_id, description=description, tools=", ".join(tools) or "none"
    )


class PersonaLibrary:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob(f"*{SUFFIX}") if p.stem != NO_PERSONA)

    def text(self, name: str) -> str:
        """The template's text, checked: only known placeholders, no stray `$`."""
        path = self.directory / f"{name}{SUFFIX}"
        if not path.exists():
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown persona '{name}'; known personas: {known}")
        text = read_config_text(path, "persona")
        template = Template(text)
        unknown = set(template.get_identifiers()) - PLACEHOLDERS
        if unknown or not template.is_valid():
            problem = f"unknown placeholder ${sorted(unknown)[0]}" if unknown else "a stray $"
            raise ConfigError(f"{path}: {problem} (allowed: ${', $'.join(sorted(PLACEHOLDERS))})")
        return text

    def texts(self) -> dict[str, str]:
        """Every template's text by name, each checked: what a catalog carries."""
        return {name: self.text(name) for name in self.names()}

    def render(self, name: str, *, agent_id: str, description: str, tools: list[str]) -> str:
        return render(self.text(name), agent_id=agent_id, description=description, tools=tools)
