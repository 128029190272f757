"""`p2e eval`: the evaluators that score conversations."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.common import JsonOption, console, print_json
from runtime.settings import load_settings

app = typer.Typer(help="Evaluators that score conversation steps.", no_args_is_help=True)


@app.command("list")
def list_evaluators(as_json: JsonOption = False) -> None:
    """List the evaluators `--eval` and agents.yml `eval:` can name: built in, from plugins,
    and configured in config/evals.yml."""
    from evals.config import load_evaluators
    from evals.registry import registered_evaluators

    settings = load_settings()
    load_evaluators(settings.evals_file)
    evaluators = registered_evaluators()
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "version": e.version,
                    "kind": e.kind,
                    "trigger": e.trigger,
                    "source": e.source,
                    "description": e.description,
                }
                for e in evaluators
            ]
        )
        return
    table = Table(title=f"Evaluators (built in, plugins, {settings.evals_file.name})")
    for column in ("id", "kind (from)", "scores"):
        table.add_column(column, no_wrap=True)
    table.add_column("description")
    scores = {"step": "each step", "tool": "tool results", "final": "final answer"}
    for e in evaluators:
        table.add_row(
            f"{e.id} v{e.version}", f"{e.kind} ({e.source})", scores[e.trigger], e.description
        )
    console.print(table)
