"""`p2e tools`: the tools agents can call, built in and from MCP servers."""

from __future__ import annotations

from typing import Annotated

import typer

from p2engine.cli.common import JsonOption, console, print_json, run_async
from p2engine.cli.tables import Col, print_table
from p2engine.runtime.settings import load_settings

app = typer.Typer(help="The tools agents can call.", no_args_is_help=True)


@app.command("list")
def list_tools(
    server: Annotated[
        str | None, typer.Option("--server", "-s", help="Only this MCP server's tools.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the built-in and plugin tools and every MCP server's tools (as the server lists
    them now), with their input schemas in --json."""
    from p2engine.runtime.tools import list_tools as listed

    tools, problems = run_async(listed(load_settings(), server))
    if as_json:
        print_json(
            {
                "tools": [
                    {"name": t.name, "source": t.source, "description": t.description,
                     "schema": t.schema, "problem": t.problem}
                    for t in tools
                ],
                "unreachable": {p.server: p.problem for p in problems},
            }
        )  # fmt: skip
    else:
        rows = [[t.name, t.source, t.problem or " ".join(t.description.split())] for t in tools]
        print_table(
            console,
            "tools (agents.yml `tools:` names the built-in ones, `mcp:` the servers' ones)",
            [Col("name"), Col("source"), Col("description", "text")],
            rows,
        )
        for problem in problems:
            console.print(f"not listed: {problem.problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
