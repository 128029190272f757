"""`p2e agent`: the agents defined in config/agents.yml."""

from __future__ import annotations

import typer
from rich.table import Table

from p2engine.cli.common import JsonOption, console, print_json
from p2engine.runtime.settings import load_settings

app = typer.Typer(help="Agents defined in config/agents.yml.", no_args_is_help=True)


@app.command("list")
def list_agents(as_json: JsonOption = False) -> None:
    """List the agents a conversation can run."""
    from p2engine.agents.registry import AgentRegistry

    settings = load_settings()
    registry = AgentRegistry.load(settings.agents_file)
    if as_json:
        print_json([a.model_dump(mode="json") for a in registry.all()])
        return
    table = Table(title=f"Agents ({settings.agents_file.name})")
    for column in ("id", "type", "model", "tools", "description"):
        table.add_column(column)
    for spec in registry.all():
        table.add_row(
            spec.id,
            spec.type,
            (spec.model or settings.default_model) if spec.type == "llm" else "-",
            ", ".join(spec.tools) or "-",
            spec.description,
        )
    console.print(table)
