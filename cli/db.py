"""`p2e db`: a local PostgreSQL server for the store, the tool cache and the ledger, shared
by every worker and CLI on this machine (`P2E_DATABASE_URL`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from p2engine.cli.common import JsonOption, console, note, print_json
from p2engine.runtime.settings import load_settings

if TYPE_CHECKING:
    from p2engine.runtime.postgres_server import PostgresServer

app = typer.Typer(
    help="A local PostgreSQL for state that workers share (P2E_DATABASE_URL).",
    no_args_is_help=True,
)


def _server() -> PostgresServer:
    """The server of this state dir (`<state dir>/postgres`)."""
    from p2engine.runtime.postgres_server import PostgresServer

    return PostgresServer(load_settings().state_dir / "postgres")


@app.command()
def start() -> None:
    """Start the server in the background (made the first time; a no-op if it runs).

    The last line printed is its URL: set P2E_DATABASE_URL to it in the environment of every
    worker and CLI that should share it."""
    server = _server()
    running = server.status().running
    url = server.start()
    note("already running" if running else f"started PostgreSQL in {server.data}")
    note("use it with: export P2E_DATABASE_URL=" + url)
    console.print(url, highlight=False, soft_wrap=True)


@app.command()
def stop() -> None:
    """Stop the server; its data stays for the next start."""
    server = _server()
    if not server.stop():
        note("PostgreSQL is not running")
        raise typer.Exit(1)
    console.print(f"stopped PostgreSQL ({server.data})", highlight=False)


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Whether the server runs, and its URL; exit 1 when it does not run."""
    found = _server().status()
    if as_json:
        print_json({"running": found.running, "url": found.url, "data_dir": str(found.data_dir)})
    else:
        console.print(f"running   {'yes' if found.running else 'no'}", highlight=False)
        console.print(f"url       {found.url or '-'}", highlight=False)
        console.print(f"data dir  {found.data_dir}", highlight=False)
    if not found.running:
        raise typer.Exit(1)
