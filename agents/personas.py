"""Personas: behaviour templates in config/personas/<name>.md, sent as a system message.

Templates use the standard library's `string.Template` (`$agent_id`, `$description`,
`$tools`): three substitutions do not earn a template engine.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from p2engine.contract.errors import ConfigError, read_config_text

SUFFIX = ".md"
PLACEHOLDERS = frozenset({"agent_id", "description", "tools"})
NO_PERSONA = "none"  # the runtime override that removes an agent's persona


class PersonaLibrary:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob(f"*{SUFFIX}") if p.stem != NO_PERSONA)

    def template(self, name: str) -> Template:
        path = self.directory / f"{name}{SUFFIX}"
        if not path.exists():
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown persona '{name}'; known personas: {known}")
        template = Template(read_config_text(path, "persona"))
        unknown = set(template.get_identifiers()) - PLACEHOLDERS
        if unknown or not template.is_valid():
            problem = f"unknown placeholder ${sorted(unknown)[0]}" if unknown else "a stray $"
            raise ConfigError(f"{path}: {problem} (allowed: ${', $'.join(sorted(PLACEHOLDERS))})")
        return template

    def render(self, name: str, *, agent_id: str, description: str, tools: list[str]) -> str:
        return self.template(name).substitute(
            agent_id=agent_id, description=description, tools=", ".join(tools) or "none"
        )

    def check(self) -> None:
        """Fail early on a template that would fail at its first use."""
        for name in self.names():
            self.template(name)
